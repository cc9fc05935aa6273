"""The broker's Redis, for judgeq's own keys (workers/keys.py) beside Celery's queues."""

from __future__ import annotations

from typing import Any

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def redis_for(broker_url: str | None, timeout_s: float = 10) -> Any:
    """A Redis client on the broker (each call bounded by ``timeout_s``), or None without a Redis broker."""
    if not broker_url or not broker_url.startswith(REDIS_SCHEMES):
        return None
    import redis

    return redis.Redis.from_url(broker_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
