"""The Celery task: unpack the message, guard against poison, run the chunk.

Judging lives in judges/, writing in ledger/; this module only decides about
delivery. A chunk whose worker died ``max_deliveries`` times is recorded as
failed instead of killing the next worker too.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery import Task

from ledger.errors import LedgerError
from ledger.settings import LedgerSettings
from judges.limits import LocalLimiter, RateLimiter
from ledger.store import Ledger

from .app import app
from .chunk import ChunkOutcome, JudgeCache, execute, fail_chunk
from .keys import DELIVERIES, DELIVERIES_TTL_S
from .circuit import Circuit, LocalCircuit, RedisCircuit
from .keys import QUEUE_REMOTE
from .lease import Leases, LocalLeases, RedisLeases
from .message import ChunkMessage
from .ratelimit import RedisLimiter
from .remote import RemoteServices
from .settings import WorkerSettings

log = logging.getLogger(__name__)


class _ProcessState:
    """Per-process handles, made after fork (a database engine must not cross a fork)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pid = -1
        self.ledger: Ledger | None = None
        self.judges = JudgeCache()
        self.redis: Any = None

    def ensure(self) -> "_ProcessState":
        # Threads pool: many tasks may arrive at once; the pid is set last, under the lock.
        if self.pid != os.getpid():
            with self._lock:
                if self.pid != os.getpid():
                    self.ledger = Ledger(LedgerSettings().ledger_url)
                    self.redis = None
                    self.judges = JudgeCache(self._services())
                    self.pid = os.getpid()
        return self

    def _client(self) -> Any:
        """This process's Redis client on the broker, or None when the broker is not Redis."""
        settings: WorkerSettings = app.judgeq_settings  # type: ignore[attr-defined]
        if not settings.broker_url or not settings.broker_url.startswith(("redis://", "rediss://", "unix://")):
            return None
        if self.redis is None:
            import redis

            self.redis = redis.Redis.from_url(settings.broker_url, socket_timeout=10, socket_connect_timeout=10)
        return self.redis

    def _services(self) -> RemoteServices:
        """The fleet-wide rate limiter and circuit (Redis), or in-process ones without a Redis broker."""
        settings: WorkerSettings = app.judgeq_settings  # type: ignore[attr-defined]
        client = self._client()
        if client is not None:
            limiter: RateLimiter = RedisLimiter(client, settings.rate_period_s, settings.rate_headroom)
            circuit: Circuit = RedisCircuit(client, settings.circuit_threshold)
            leases: Leases = RedisLeases(client)
        else:
            limiter = LocalLimiter(settings.rate_period_s, settings.rate_headroom)
            circuit = LocalCircuit(settings.circuit_threshold)
            leases = LocalLeases()
        return RemoteServices(limiter=limiter, circuit=circuit, settings=settings, requeue=_requeue, leases=leases)

    def deliveries(self, task_id: str) -> int:
        """Count this delivery of ``task_id``; 1 on the first delivery."""
        client = self._client()
        if client is None:
            return 1
        key = DELIVERIES.format(task_id=task_id)
        pipe = client.pipeline()
        pipe.incr(key)
        pipe.expire(key, DELIVERIES_TTL_S)
        count, _ = pipe.execute()
        return int(count)


_state = _ProcessState()


#: While the ledger is unreachable a chunk is put back with this countdown
#: (well under the visibility timeout), up to LEDGER_RETRIES times; after that
#: the items stay without rows and ``judgeq resume`` re-enqueues them.
LEDGER_RETRY_COUNTDOWN_S = 15
LEDGER_RETRIES = 20


@app.task(name="judgeq.judge_chunk", bind=True, max_retries=LEDGER_RETRIES)
def judge_chunk(self: Task, body: dict[str, Any]) -> dict[str, int]:
    """Judge one chunk of records for one judge and write its ledger rows."""
    state = _state.ensure()
    assert state.ledger is not None
    message = ChunkMessage.from_json(body)
    settings: WorkerSettings = app.judgeq_settings  # type: ignore[attr-defined]
    # A retry is a new delivery on purpose; only deliveries of the same try count.
    delivery = state.deliveries(f"{self.request.id}:{self.request.retries}") if self.request.id else 1
    try:
        if delivery > settings.max_deliveries:
            log.error("chunk %s delivered %d times; recording it as failed", message.summary(), delivery)
            error = f"worker lost {delivery - 1} times while judging this chunk (poison message guard)"
            outcome = fail_chunk(message, state.ledger, error)
        else:
            outcome = execute(message, state.ledger, state.judges, state.judges.services)
    except LedgerError as exc:
        log.warning("ledger unavailable for %s: %s; retrying", message.summary(), exc)
        raise self.retry(exc=exc, countdown=LEDGER_RETRY_COUNTDOWN_S) from exc
    return _as_dict(outcome)


def _requeue(message: ChunkMessage, countdown: float) -> None:
    """Hand unfinished items back to the queue: a new chunk task after ``countdown`` seconds."""
    judge_chunk.apply_async(args=[message.to_json()], countdown=countdown, queue=QUEUE_REMOTE,
                            argsrepr=f"({message.summary()})", kwargsrepr="{}")


def _as_dict(outcome: ChunkOutcome) -> dict[str, int]:
    return {"written": outcome.written, "already_done": outcome.already_done, "errors": outcome.errors}
