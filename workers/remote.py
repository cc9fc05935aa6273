"""A chunk for a remote judge: circuit, budget, verdict cache, then calls, then hand-backs.

:func:`judge_remote` is what :func:`workers.chunk.run_chunk` does for a remote
judge once the items that already have a row in this run are set aside:

1. the judge's circuit is open in this run (repeated account errors,
   :mod:`workers.circuit`): every item is recorded as an error naming the cause;
2. the run has a budget (``--max-cost``) and its spend, summed in the ledger,
   has reached it: every item is recorded as skipped for budget;
3. the verdict cache (unless ``--no-cache``): an item whose content hash has an
   "ok" row under the same judge version, in any run, gets a copy of it
   (``cached``, cost 0, ``saved_usd`` what it cost first) and no call;
4. the rest are judged, every attempt through the fleet's rate limiter;
5. verdicts and errors are written in one transaction; account errors are
   counted towards the circuit;
6. deferred items (their next wait is longer than ``JUDGEQ_HANDBACK_S``, or
   would outlast this delivery's budget) are published again as a new chunk
   with a countdown well under the visibility timeout, carrying what was
   spent on them, so that no worker slot sleeps through a long wait.

Every item therefore ends, in this delivery or a later one, as a verdict, an
error (attempts and last cause on the row) or a skip.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from judges.base import Judge
from judges.limits import RateLimiter
from judges.record import Record
from judges.retry import Prior, RetryPolicy
from judges.verdict import Verdict
from ledger.rows import ScoreIn
from ledger.store import Ledger

from .circuit import Circuit
from .message import ChunkMessage
from .settings import WorkerSettings

log = logging.getLogger(__name__)

#: A record handed back this many times without ending is recorded as an error.
MAX_HANDBACKS = 200
#: The shortest countdown of a hand-back.
MIN_COUNTDOWN_S = 0.2

#: Builds the ledger row of one verdict (workers.chunk.score_row).
RowMaker = Callable[[ChunkMessage, Record, Verdict, str], ScoreIn]


@dataclass(frozen=True)
class RemoteServices:
    """What remote chunks share within a worker process (or an embedded run)."""

    limiter: RateLimiter
    circuit: Circuit
    settings: WorkerSettings
    #: Publishes a chunk again after a countdown in seconds.
    requeue: Callable[[ChunkMessage, float], None]

    def retry_policy(self) -> RetryPolicy:
        s = self.settings
        return RetryPolicy(attempts=s.retry_attempts, max_total_s=s.retry_max_s, handback_s=s.handback_s)

    @property
    def max_countdown_s(self) -> float:
        """Countdowns stay well under the visibility timeout (Redis redelivers a message held longer)."""
        return self.settings.visibility_timeout / 4


@dataclass(frozen=True)
class RemoteOutcome:
    """What one delivery of a remote chunk did."""

    written: int
    errors: int
    cached: int
    deferred: int


def judge_remote(
    message: ChunkMessage,
    records: Sequence[Record],
    judge: Judge,
    ledger: Ledger,
    services: RemoteServices,
    make_row: RowMaker,
) -> RemoteOutcome:
    """Judge ``records`` (none of which has a row in the run yet); see the module docstring."""
    version = str(message.judge.get("version"))
    name = message.judge_name

    def write(pairs: Sequence[tuple[Record, Verdict]], extra: Sequence[ScoreIn] = ()) -> int:
        rows = [*extra, *(make_row(message, r, v, version) for r, v in pairs)]
        ledger.write_scores(rows)
        return len(rows)

    cause = services.circuit.open_cause(message.run_id, name)
    if cause is not None:
        error = (f"CircuitOpen: judge {name!r} stopped calling its provider after repeated account errors "
                 f"in this run; last: {cause}")
        failed = [(r, Verdict.failed(r.id, error, attempts=0, error_kind="circuit")) for r in records]
        return RemoteOutcome(written=write(failed), errors=len(failed), cached=0, deferred=0)

    if message.max_cost_usd is not None:
        spent = ledger.spend(message.run_id)
        if spent >= message.max_cost_usd:
            reason = f"budget: the run spent ${spent:.4f} of its --max-cost ${message.max_cost_usd:g}"
            skipped = [dataclasses.replace(make_row(message, r, Verdict.failed(r.id, reason, attempts=0), version),
                                           status="skipped", error_kind="budget") for r in records]
            ledger.write_scores(skipped)
            return RemoteOutcome(written=len(skipped), errors=0, cached=0, deferred=0)

    cached_rows: list[ScoreIn] = []
    todo: Sequence[Record] = records
    if not message.no_cache:
        hits = ledger.cached_verdicts(version, [message.content_hash(r) for r in records])
        if hits:
            todo = []
            for record in records:
                hit = hits.get(message.content_hash(record))
                if hit is None:
                    todo.append(record)
                    continue
                copy = Verdict(record.id, hit.score, hit.label, hit.reason, attempts=0)
                cached_rows.append(dataclasses.replace(
                    make_row(message, record, copy, version), cached=True, saved_usd=hit.cost_usd + hit.saved_usd))

    prior = {tid: Prior.from_json(body) for tid, body in message.carry.items()}
    deadline = time.monotonic() + services.settings.chunk_budget_s
    verdicts = judge.judge(todo, prior=prior, deadline=deadline) if todo else []  # type: ignore[call-arg]
    if len(verdicts) != len(todo):  # a judge bug must not lose items silently
        raise RuntimeError(f"judge {name} returned {len(verdicts)} verdicts for {len(todo)} records")
    ended: list[tuple[Record, Verdict]] = []
    deferred: list[tuple[Record, Verdict]] = []
    for record, verdict in zip(todo, verdicts):
        if verdict.ended:
            ended.append((record, verdict))
        elif message.handbacks + 1 >= MAX_HANDBACKS:
            error = f"{verdict.error or 'not judged'}; handed back to the queue {MAX_HANDBACKS} times"
            ended.append((record, dataclasses.replace(verdict, retry_in_s=None, score=None, error=error,
                                                      error_kind="transient", attempts=max(verdict.attempts, 1))))
        else:
            deferred.append((record, verdict))

    written = write(ended, cached_rows) if ended or cached_rows else 0
    errors = sum(1 for _, v in ended if v.error is not None)
    account = [v for _, v in ended if v.error_kind == "account"]
    if account and services.circuit.record(message.run_id, name, len(account), account[-1].error or "account error"):
        log.error("judge %s: circuit open in run %s after account errors: %s", name, message.run_id, account[-1].error)
    if deferred:
        _hand_back(message, deferred, services)
    return RemoteOutcome(written=written, errors=errors, cached=len(cached_rows), deferred=len(deferred))


def _hand_back(message: ChunkMessage, deferred: Sequence[tuple[Record, Verdict]], services: RemoteServices) -> None:
    """Publish the deferred records again, with what they cost so far, after the shortest of their waits."""
    now = time.time()
    wanted = {record.id for record, _ in deferred}
    carry = {
        record.id: Prior(
            attempts=v.attempts, started_at=v.started_at, not_before=_not_before(v, now),
            cost_usd=v.cost_usd, tokens_in=v.tokens_in, tokens_out=v.tokens_out, latency_s=v.latency_s,
            last_error=v.error, answer_errors=v.answer_errors,
        ).to_json()
        for record, v in deferred
    }
    countdown = min(_not_before(v, now) for _, v in deferred) - now  # the waits began when each was deferred
    countdown = min(max(countdown, MIN_COUNTDOWN_S), services.max_countdown_s)
    again = dataclasses.replace(
        message,
        records=[body for body in message.records if str(body.get("id")) in wanted],
        weights={k: w for k, w in message.weights.items() if k in wanted},
        hashes={k: h for k, h in message.hashes.items() if k in wanted},
        carry=carry,
        handbacks=message.handbacks + 1,
    )
    if len(again.records) != len(deferred):  # records are re-read by id: never lose one
        again = dataclasses.replace(again, records=[record.to_message() for record, _ in deferred])
    log.info("chunk %s: %d items handed back for %.1fs", message.summary(), len(deferred), countdown)
    services.requeue(again, countdown)


def _not_before(verdict: Verdict, now: float) -> float:
    if verdict.not_before is not None:
        return verdict.not_before
    return now + (verdict.retry_in_s or 0.0)
