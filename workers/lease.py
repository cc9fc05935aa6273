"""Leases on the items a delivery is judging: one paid call per item, however often it is delivered.

Delivery is at-least-once: a chunk can be delivered twice (a visibility
timeout, a restored unacknowledged message), and ``judgeq resume`` sends every
item without a row again while the original chunks may still be queued or
running. The ledger keeps one row per item either way, but both deliveries
would pay the provider. So before calling, a delivery takes a lease on each of
its items (one key per run, judge and item, ``SET NX PX``); an item leased by
another delivery is not called but handed back with a countdown as long as
that lease has left, and when it comes back it finds the holder's row (and is
skipped) or, the holder having died, takes the lease itself. Leases are given
back when the delivery has written its rows or handed its items back, and
expire on their own (half the visibility timeout: longer than a delivery
judges, a third of it) if the holder dies.

:class:`RedisLeases` keeps them in Redis for the fleet (``keys.LEASE``);
:class:`LocalLeases` in this process (embedded mode). A Redis that cannot be
reached counts every item as busy for a few seconds: nothing is called
without a lease.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .keys import LEASE

log = logging.getLogger(__name__)

#: Seconds an item waits when the lease store cannot be reached.
UNREACHABLE_RETRY_S = 5.0

#: Gives a lease back only if it is still ours (it may have expired and been taken since).
_RELEASE = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0
"""


@dataclass(frozen=True)
class Lease:
    """What one take got: the items leased under ``token``, and how long each busy one stays leased."""

    run_id: str
    judge: str
    token: str
    ids: frozenset[str] = frozenset()
    busy_s: dict[str, float] = field(default_factory=dict)


class Leases(Protocol):
    """Where item leases are kept."""

    def take(self, run_id: str, judge: str, trace_ids: Sequence[str], ttl_s: float) -> Lease:
        """Lease the free ones of ``trace_ids`` for ``ttl_s`` seconds."""
        ...

    def release(self, lease: Lease) -> None:
        """Give back what ``lease`` holds (and is still held under its token)."""
        ...


class LocalLeases:
    """Leases in this process (embedded mode)."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str, str], tuple[str, float]] = {}  # key -> (token, monotonic expiry)
        self._lock = threading.Lock()

    def take(self, run_id: str, judge: str, trace_ids: Sequence[str], ttl_s: float) -> Lease:
        token = secrets.token_hex(8)
        now = time.monotonic()
        taken: set[str] = set()
        busy: dict[str, float] = {}
        with self._lock:
            for trace_id in trace_ids:
                key = (run_id, judge, trace_id)
                held = self._held.get(key)
                if held is not None and held[1] > now:
                    busy[trace_id] = held[1] - now
                else:
                    self._held[key] = (token, now + ttl_s)
                    taken.add(trace_id)
        return Lease(run_id, judge, token, frozenset(taken), busy)

    def release(self, lease: Lease) -> None:
        with self._lock:
            for trace_id in lease.ids:
                key = (lease.run_id, lease.judge, trace_id)
                if self._held.get(key, ("", 0.0))[0] == lease.token:
                    del self._held[key]


class RedisLeases:
    """Leases in Redis, for the whole fleet: one round trip to take a chunk's, one to give them back."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._release = client.register_script(_RELEASE)

    def take(self, run_id: str, judge: str, trace_ids: Sequence[str], ttl_s: float) -> Lease:
        import redis

        token = secrets.token_hex(8)
        keys = [_key(run_id, judge, trace_id) for trace_id in trace_ids]
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.set(key, token, nx=True, px=max(1, round(ttl_s * 1000)))
        for key in keys:
            pipe.pttl(key)
        try:
            answers = pipe.execute()
        except redis.RedisError as exc:
            log.warning("cannot take item leases in Redis (%s); trying again in %.0fs", exc, UNREACHABLE_RETRY_S)
            return Lease(run_id, judge, token, frozenset(), {t: UNREACHABLE_RETRY_S for t in trace_ids})
        got, left = answers[: len(keys)], answers[len(keys):]
        taken = frozenset(t for t, ok in zip(trace_ids, got) if ok)
        busy = {t: max(0.0, ms / 1000) if ms > 0 else 0.0 for t, ok, ms in zip(trace_ids, got, left) if not ok}
        return Lease(run_id, judge, token, taken, busy)

    def release(self, lease: Lease) -> None:
        import redis

        if not lease.ids:
            return
        try:
            self._release(keys=[_key(lease.run_id, lease.judge, t) for t in lease.ids], args=[lease.token])
        except redis.RedisError as exc:  # they expire on their own
            log.warning("cannot give item leases back in Redis (%s); they expire on their own", exc)


def _key(run_id: str, judge: str, trace_id: str) -> str:
    return LEASE.format(run_id=run_id, judge=judge, trace_id=trace_id)
