"""The Celery app and its tasks; fleet-wide rate limiting; retries.

``workers`` turns chunk messages into verdicts and ledger rows. The same
chunk code runs inside a Celery worker (fleet mode) and inside the submitting
process (embedded mode, when no broker URL is set).
"""
