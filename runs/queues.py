"""The Celery queues chunks go to: CPU-bound local judges and I/O-bound remote judges.

Senders (runs/sending.py) and the fleet (workers/app.py, the census) name
them from here; the other Redis keys judgeq writes are in ``workers.keys``.
"""

QUEUE_LOCAL = "local"
QUEUE_REMOTE = "remote"
QUEUES = (QUEUE_LOCAL, QUEUE_REMOTE)
