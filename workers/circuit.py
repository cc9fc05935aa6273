"""The circuit breaker of a judge in a run: after repeated account errors, stop calling.

Account errors (the provider refuses the key, its permissions or its quota:
``error_kind == "account"``) fail every call of a judge alike. Once
``circuit_threshold`` of them are counted for one judge in one run, fleet-wide,
the circuit opens: the remaining items of that judge in that run are recorded
as errors naming the cause, without calls. The scope is the run, so fixing the
key and submitting again starts closed; ``judgeq resume RUN --retry-errors
account,circuit`` closes it (:meth:`RedisCircuit.close`) before it sends.

:class:`RedisCircuit` counts in Redis (keys ``CIRCUIT_ERRORS`` and
``CIRCUIT_OPEN``, expiring after ``CIRCUIT_TTL_S``); :class:`LocalCircuit`
counts in this process (embedded mode).
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from .keys import CIRCUIT_ERRORS, CIRCUIT_OPEN, CIRCUIT_TTL_S


class Circuit(Protocol):
    """Where account errors are counted and the open circuit is kept."""

    def open_cause(self, run_id: str, judge: str) -> str | None:
        """The cause if the judge's circuit is open in this run, else None."""
        ...

    def record(self, run_id: str, judge: str, errors: int, cause: str) -> bool:
        """Count ``errors`` more account errors; True if the circuit is open now."""
        ...


class LocalCircuit:
    """Counts in this process (embedded mode)."""

    def __init__(self, threshold: int = 3) -> None:
        self.threshold = threshold
        self._counts: dict[tuple[str, str], int] = {}
        self._open: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def open_cause(self, run_id: str, judge: str) -> str | None:
        with self._lock:
            return self._open.get((run_id, judge))

    def record(self, run_id: str, judge: str, errors: int, cause: str) -> bool:
        with self._lock:
            key = (run_id, judge)
            self._counts[key] = self._counts.get(key, 0) + errors
            if self._counts[key] >= self.threshold:
                self._open.setdefault(key, cause)
            return key in self._open


class RedisCircuit:
    """Counts in Redis, for the whole fleet."""

    def __init__(self, client: Any, threshold: int = 3) -> None:
        self.client = client
        self.threshold = threshold

    def open_cause(self, run_id: str, judge: str) -> str | None:
        value = self.client.get(CIRCUIT_OPEN.format(run_id=run_id, judge=judge))
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    def record(self, run_id: str, judge: str, errors: int, cause: str) -> bool:
        key = CIRCUIT_ERRORS.format(run_id=run_id, judge=judge)
        pipe = self.client.pipeline()
        pipe.incrby(key, errors)
        pipe.expire(key, CIRCUIT_TTL_S)
        count, _ = pipe.execute()
        if int(count) >= self.threshold:
            self.client.set(CIRCUIT_OPEN.format(run_id=run_id, judge=judge), cause, ex=CIRCUIT_TTL_S, nx=True)
            return True
        return False

    def close(self, run_id: str, judge: str) -> None:
        """Forget the judge's account errors and open circuit in the run (``judgeq resume --retry-errors account``)."""
        self.client.delete(CIRCUIT_ERRORS.format(run_id=run_id, judge=judge),
                           CIRCUIT_OPEN.format(run_id=run_id, judge=judge))
