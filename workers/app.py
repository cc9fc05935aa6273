"""The Celery app, built explicitly: JSON only, late acknowledgement, results ignored.

No module makes an app at import. :func:`create_app` configures one for a
sender (a dispatcher, a test publishing a message); :func:`create_worker`,
called where a worker, beat or Flower starts (``scheduler.fleet.run_celery``,
as arq's ``create_worker``), adds judgeq's tasks, bound to the process's one
settings object, and the warm-up before ``ready``. Beat and Flower need the
tasks registered too: beat applies them by their registered options, and
Flower's ``async-apply`` only runs a task its app knows.

The ledger, not a result backend, is where progress is counted, so there is
no result backend and no chord: each chunk writes its rows and the submitter
counts them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from celery import Celery
from kombu import Queue

from runs.queues import QUEUES

from .settings import WorkerSettings

if TYPE_CHECKING:
    from .settings import WorkerSections


def create_worker(settings: WorkerSections) -> Celery:
    """The app of a worker, beat or Flower process: judgeq's tasks on it, working with ``settings``.

    ``settings`` is the process's one settings object (``scheduler.settings.CliSettings``),
    built at its entry; the tasks read their sections from it, each when first needed.
    """
    from . import tasks, warm

    app = create_app(settings.worker)
    state = tasks.ProcessState(settings, app)
    tasks.register(app, state)
    warm.warm_before_ready(app, state.prime)
    return app


def create_app(settings: WorkerSettings) -> Celery:
    """A Celery app configured for ``settings``, without tasks: enough to publish them by name."""
    app = Celery("judgeq", broker=settings.broker_url or "memory://")
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        event_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        # At-least-once delivery; the ledger's upsert makes the effect exactly-once.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue=QUEUES[0],
        task_create_missing_queues=False,
        task_send_sent_event=settings.task_events,
        worker_send_task_events=settings.task_events,
        worker_hijack_root_logger=False,
        # Celery's consumer with a workaround for a crash on a Redis restart (see workers/consumer.py).
        worker_consumer="workers.consumer:Consumer",
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=10,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": settings.restore_interval,
            "unacked_restore_throttle": 1,
            # The sweep holds a Redis mutex; kombu keeps a dead holder's for 300 s, longer than the
            # visibility timeout itself: a worker SIGKILLed (OOM) mid-sweep, or Redis killed then, would
            # stop every restore for five minutes. A shorter hold is safe: each restore is a WATCHed
            # transaction, so two sweeps at once restore a chunk once.
            "unacked_mutex_expire": restore_mutex_s(settings.visibility_timeout),
            "socket_timeout": 15,
            "socket_connect_timeout": 10,
            "health_check_interval": 25,
        },
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2},
    )
    return app


def restore_mutex_s(visibility_timeout: int) -> int:
    """How long a restore sweep's mutex outlives a holder that died: a third of the visibility timeout."""
    return max(10, visibility_timeout // 3)

