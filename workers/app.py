"""The Celery app: JSON only, late acknowledgement, results ignored.

The ledger, not a result backend, is where progress is counted, so there is
no result backend and no chord: each chunk writes its rows and the submitter
counts them.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from runs.queues import QUEUES

from . import warm  # noqa: F401 - its signal handler warms the remote queue's workers before they report ready
from .settings import WorkerSettings


def create_app(settings: WorkerSettings | None = None) -> Celery:
    """A Celery app for ``settings`` (read from the environment when not given)."""
    settings = settings or WorkerSettings()
    app = Celery("judgeq", broker=settings.broker_url or "memory://", include=["workers.tasks"])
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
    app.judgeq_settings = settings  # type: ignore[attr-defined]
    return app


def restore_mutex_s(visibility_timeout: int) -> int:
    """How long a restore sweep's mutex outlives a holder that died: a third of the visibility timeout."""
    return max(10, visibility_timeout // 3)


app = create_app()
