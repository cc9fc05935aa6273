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

A worker of any queue whose pool runs tasks in its own process (threads,
solo) also opens the ledger and Redis there before ``ready``, which its first
chunk would otherwise do before its first call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from celery.signals import celeryd_after_setup

from runs.queues import QUEUE_REMOTE

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)


def warm_before_ready(app: Celery, prime: Callable[[], float]) -> None:
    """Warm the worker that ``app`` starts (``workers.app.create_worker``); ``prime`` opens the ledger and Redis.

    Connected per app, strongly (the handler is a closure nothing else
    holds), and only for a worker of this app: a process that builds more
    than one app (tests) warms each worker once.
    """

    def warm_worker(sender: str, instance: Any, **kwargs: Any) -> None:
        """Before ``ready``: litellm imported and primed for the remote queue; the ledger and Redis opened here."""
        if instance.app is not app:
            return
        queues = instance.app.amqp.queues.consume_from  # None: no --queues, so every queue
        if queues is None or QUEUE_REMOTE in queues:
            from judges.llm import warm_up

            log.info("litellm imported and primed in %.1fs", warm_up())
        if getattr(instance.pool_cls, "__module__", None) in IN_PROCESS_POOLS:
            log.info("ledger and Redis opened in %.2fs", prime())

    celeryd_after_setup.connect(warm_worker, weak=False)


#: Pools whose tasks run in the worker's own process (celery.concurrency's modules): its handles can be
#: opened before ``ready``. Prefork children open theirs after the fork.
IN_PROCESS_POOLS = ("celery.concurrency.thread", "celery.concurrency.solo")
