"""Warm workers: a worker of the remote queue imports litellm and primes its call path before it reports ready.

``import litellm`` takes seconds (5-6 s on a loaded 2-core machine, more
when several processes start at once). Paid on the first chunk, it would
delay the first judgment of every run that reaches a fresh worker by that
much. Celery sends ``celeryd_after_setup`` in the worker's main process after
``--queues`` is applied and before any bootstep starts: before the pool (the
prefork pool's children are forked from this process and inherit the
imported module; the threads pool runs in it) and before the consumer, whose
start is what logs ``ready``. ``worker_process_init`` would not do: the
threads pool, the remote queue's default, never sends it, and in prefork it
runs in the children while the parent may already report ready.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import celeryd_after_setup

from .keys import QUEUE_REMOTE

log = logging.getLogger(__name__)


@celeryd_after_setup.connect
def warm_remote_worker(sender: str, instance: Any, **kwargs: Any) -> None:
    """Before ``ready``: litellm imported and primed, if this worker consumes the remote queue."""
    queues = instance.app.amqp.queues.consume_from  # None: no --queues, so every queue
    if queues is not None and QUEUE_REMOTE not in queues:
        return
    from judges.llm import warm_up

    log.info("litellm imported and primed in %.1fs", warm_up())
