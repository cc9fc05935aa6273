"""The Celery app and its tasks; fleet-wide rate limiting; hand-backs and ledger retries.

``workers`` turns chunk messages into verdicts and ledger rows. The same
chunk code runs inside a Celery worker (fleet mode) and inside the submitting
process (embedded mode, when no broker URL is set). Provider retries are in
``judges/retry.py``; workers hand chunks back to the queue and retry the ledger.
"""
