"""Every Redis key judgeq itself writes (Celery's own keys are kombu's business)."""

PREFIX = "judgeq:"

#: Deliveries seen of one task id: the poison-message guard (workers/tasks.py).
DELIVERIES = PREFIX + "deliveries:{task_id}"
DELIVERIES_TTL_S = 24 * 3600

#: Celery queue names: CPU-bound local judges and I/O-bound remote judges.
QUEUE_LOCAL = "local"
QUEUE_REMOTE = "remote"
QUEUES = (QUEUE_LOCAL, QUEUE_REMOTE)
