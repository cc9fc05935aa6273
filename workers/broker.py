"""The broker's Redis, for judgeq's own keys (workers/keys.py) beside Celery's queues."""

from __future__ import annotations

from typing import Any

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def redis_for(broker_url: str | None) -> Any:
    """A Redis client on the broker, or None when there is no broker or it is not Redis."""
    if not broker_url or not broker_url.startswith(REDIS_SCHEMES):
        return None
    import redis

    return redis.Redis.from_url(broker_url, socket_timeout=10, socket_connect_timeout=10)
