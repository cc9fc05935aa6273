"""A chunk for a remote judge: circuit, budget, verdict cache, then calls, then hand-backs.

:func:`judge_remote` is what :func:`workers.chunk.run_chunk` does for a remote
judge once the items that already have a row in this run are set aside:

1. the judge's circuit is open in this run (repeated account errors,
   :mod:`workers.circuit`): every item is recorded as an error naming the cause;
2. the run has a budget (``--max-cost``) and its spend, summed in the ledger,
   has reached it, or the run is online and its judge has spent the day's
   budget (:mod:`online.budget.gate`): every item is recorded as skipped for budget;
3. the verdict cache (unless ``--no-cache``): an item whose content hash has an
   "ok" row under the same judge version, in any run, gets a copy of it
   (``cached``, cost 0, ``saved_usd`` what it cost first) and no call;
4. the rest are leased (:mod:`workers.lease`): an item another delivery is
   judging right now is not called but deferred until that lease ends; an
   item whose row the previous holder wrote meanwhile is skipped;
5. the leased items are judged, every attempt through the fleet's rate limiter;
6. verdicts and errors are written in one transaction, and the leases given
   back; account errors are counted towards the circuit. A verdict whose item
   got a row meanwhile (only when a lease expired under a stalled worker) is
   not written, but what it cost is added to that row, so spend counts every
   call paid for;
7. deferred items (their next wait is longer than ``JUDGEQ_HANDBACK_S``, or
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
from dataclasses import dataclass, field

from judges.base import Judge
from judges.limits import RateLimiter
from judges.record import Record
from judges.retry import Prior, RetryPolicy
from judges.verdict import Verdict
from ledger.rows import ScoreIn
from ledger.store import Ledger
from online.budget.gate import DailyBudgetGate
from runs.message import ChunkMessage
from runs.rows import score_row, write_skipped

from .circuit import Circuit
from .errors import VerdictCountError
from .lease import Lease, Leases, LocalLeases
from .settings import WorkerSettings

log = logging.getLogger(__name__)

#: A record handed back this many times without ending is recorded as an error: a guard against
#: deferrals that never lead to an attempt. Not the bound of an outage, which is the retry budget
#: (JUDGEQ_RETRY_MAX_S): ten minutes of it take about 50 hand-backs with the default settings.
MAX_HANDBACKS = 1000
#: The shortest countdown of a hand-back.
MIN_COUNTDOWN_S = 0.2

@dataclass(frozen=True)
class RemoteServices:
    """What remote chunks share within a worker process (or an embedded run)."""

    limiter: RateLimiter
    circuit: Circuit
    settings: WorkerSettings
    #: Publishes a chunk again after a countdown in seconds.
    requeue: Callable[[ChunkMessage, float], None]
    #: Leases on items being judged (fleet-wide in Redis; in-process by default).
    leases: Leases = field(default_factory=LocalLeases)
    #: Online judges' daily budgets: once spent, their queued items are skipped for budget.
    daily_budget: DailyBudgetGate = field(default_factory=DailyBudgetGate)

    def retry_policy(self) -> RetryPolicy:
        s = self.settings
        return RetryPolicy(attempts=s.retry_attempts, max_total_s=s.retry_max_s, handback_s=s.handback_s)

    @property
    def lease_ttl_s(self) -> float:
        """An item lease outlives a delivery (which judges for a third of the visibility timeout)
        and ends before Redis would redeliver a dead worker's chunk."""
        return self.settings.visibility_timeout / 2

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


def _skip_for_budget(message: ChunkMessage, records: Sequence[Record], reason: str, ledger: Ledger) -> RemoteOutcome:
    """Every item recorded as skipped for budget (status skipped, kind budget), nothing called."""
    return RemoteOutcome(written=write_skipped(message, records, reason, ledger), errors=0, cached=0, deferred=0)


def judge_remote(
    message: ChunkMessage,
    records: Sequence[Record],
    judge: Judge,
    ledger: Ledger,
    services: RemoteServices,
) -> RemoteOutcome:
    """Judge ``records`` (none of which has a row in the run yet); see the module docstring."""
    delivery = _Delivery(message, ledger)
    name = message.judge_name

    cause = services.circuit.open_cause(message.run_id, name)
    if cause is not None:
        error = (f"CircuitOpen: judge {name!r} stopped calling its provider after repeated account errors "
                 f"in this run; last: {cause}")
        failed = [(r, Verdict.failed(r.id, error, attempts=0, error_kind="circuit")) for r in records]
        return RemoteOutcome(written=delivery.write(failed), errors=len(failed), cached=0, deferred=0)

    if message.max_cost_usd is not None:
        spent = ledger.scores.spend(message.run_id)
        if spent >= message.max_cost_usd:
            reason = f"budget: the run spent ${spent:.4f} of its --max-cost ${message.max_cost_usd:g}"
            return _skip_for_budget(message, records, reason, ledger)

    over = services.daily_budget.spent(ledger, message.run_id, name)
    if over is not None:  # an online run's judge has spent the day's budget (online/budget/gate.py)
        return _skip_for_budget(message, records, over, ledger)

    cached_rows: list[ScoreIn] = []
    todo: Sequence[Record] = records
    if not message.no_cache:
        hits = ledger.scores.cached_verdicts(delivery.version, [message.content_hash(r) for r in records])
        if hits:
            todo = []
            for record in records:
                hit = hits.get(message.content_hash(record))
                if hit is None:
                    todo.append(record)
                    continue
                copy = Verdict(record.id, hit.score, hit.label, hit.reason, attempts=0, confidence=hit.confidence,
                               stage=hit.stage, provider_model=hit.provider_model,
                               system_fingerprint=hit.system_fingerprint)  # whose verdict it is
                cached_rows.append(dataclasses.replace(
                    *delivery.rows([(record, copy)]), cached=True, saved_usd=hit.cost_usd + hit.saved_usd))

    prior = {tid: Prior.from_json(body) for tid, body in message.carry.items()}
    lease = services.leases.take(message.run_id, name, [r.id for r in todo], services.lease_ttl_s)
    try:
        ended, deferred = delivery.judge_leased(todo, prior, lease, judge, services)
        ended = delivery.unless_written(ended)
        written = delivery.write(ended, cached_rows) if ended or cached_rows else 0
    finally:
        services.leases.release(lease)  # before the hand-back, which may come back at once
    services.daily_budget.charge(message.run_id, name, sum(v.cost_usd for _, v in ended))
    errors = sum(1 for _, v in ended if v.error is not None)
    account = [v for _, v in ended if v.error_kind == "account"]
    if account and services.circuit.record(message.run_id, name, len(account), account[-1].error or "account error"):
        log.error("judge %s: circuit open in run %s after account errors: %s", name, message.run_id, account[-1].error)
    if deferred:
        _hand_back(message, deferred, services)
    return RemoteOutcome(written=written, errors=errors, cached=len(cached_rows), deferred=len(deferred))


Pairs = list[tuple[Record, Verdict]]


@dataclass(frozen=True)
class _Delivery:
    """One delivery of a remote chunk: its rows, and the steps that hold leases."""

    message: ChunkMessage
    ledger: Ledger

    @property
    def version(self) -> str:
        return str(self.message.judge.get("version"))

    def rows(self, pairs: Sequence[tuple[Record, Verdict]]) -> list[ScoreIn]:
        return [score_row(self.message, r, v, self.version) for r, v in pairs]

    def write(self, pairs: Sequence[tuple[Record, Verdict]], extra: Sequence[ScoreIn] = ()) -> int:
        rows = [*extra, *self.rows(pairs)]
        self.ledger.scores.write_scores(rows)
        return len(rows)

    def judge_leased(self, records: Sequence[Record], prior: dict[str, Prior], lease: Lease, judge: Judge,
                     services: RemoteServices) -> tuple[Pairs, Pairs]:
        """Judge the leased ones of ``records`` that still have no row: (ended, deferred) pairs.

        Those leased by another delivery come back deferred until that lease ends.
        """
        message = self.message
        busy = [(r, _waiting(r.id, prior.get(r.id), lease.busy_s[r.id])) for r in records if r.id not in lease.ids]
        if busy:
            log.info("chunk %s: %d items are being judged by another delivery", message.summary(), len(busy))
        todo = [r for r in records if r.id in lease.ids]
        done = self.ledger.scores.existing(message.run_id, message.judge_name, [r.id for r in todo]) if todo else set()
        todo = [r for r in todo if r.id not in done]  # written by the lease's previous holder
        deadline = time.monotonic() + services.settings.chunk_budget_s
        verdicts = judge.judge(todo, prior=prior, deadline=deadline) if todo else []  # type: ignore[call-arg]
        if len(verdicts) != len(todo):  # a judge bug must not lose items silently
            raise VerdictCountError(f"judge {message.judge_name} returned {len(verdicts)} verdicts for {len(todo)} records")
        ended: Pairs = []
        deferred: Pairs = busy
        for record, verdict in zip(todo, verdicts):
            if verdict.ended:
                ended.append((record, verdict))
            elif message.handbacks + 1 >= MAX_HANDBACKS:
                error = f"{verdict.error or 'not judged'}; handed back to the queue {MAX_HANDBACKS} times"
                ended.append((record, dataclasses.replace(verdict, retry_in_s=None, score=None, error=error,
                                                          error_kind="transient", attempts=max(verdict.attempts, 1))))
            else:
                deferred.append((record, verdict))
        return ended, deferred

    def unless_written(self, ended: Pairs) -> Pairs:
        """``ended`` without the items that got a row while they were judged; what they cost goes onto that row."""
        message = self.message
        there = self.ledger.scores.existing(message.run_id, message.judge_name, [r.id for r, _ in ended]) if ended else set()
        if not there:
            return ended
        self.ledger.scores.add_cost(message.run_id, message.judge_name, self.rows([(r, v) for r, v in ended if r.id in there]))
        log.warning("chunk %s: %d items were judged twice (a lease ran out); their cost is added to the rows there",
                    message.summary(), len(there))
        return [(r, v) for r, v in ended if r.id not in there]


def _waiting(trace_id: str, prior: Prior | None, wait_s: float) -> Verdict:
    """An item not called in this delivery (leased elsewhere): deferred by ``wait_s``, what it spent kept."""
    p = prior or Prior()
    wait_s = max(wait_s, p.not_before - time.time())  # nor before its own backoff ends
    return Verdict.deferred(trace_id, wait_s, attempts=p.attempts, started_at=p.started_at, cost_usd=p.cost_usd,
                            tokens_in=p.tokens_in, tokens_out=p.tokens_out, latency_s=p.latency_s,
                            wait_s=p.waited_s(time.time()),
                            error=p.last_error, answer_errors=p.answer_errors)


def _hand_back(message: ChunkMessage, deferred: Sequence[tuple[Record, Verdict]], services: RemoteServices) -> None:
    """Publish the deferred records again, with what they cost so far, after the shortest of their waits."""
    now = time.time()
    wanted = {record.id for record, _ in deferred}
    carry = {
        record.id: Prior(
            attempts=v.attempts, started_at=v.started_at, not_before=_not_before(v, now),
            cost_usd=v.cost_usd, tokens_in=v.tokens_in, tokens_out=v.tokens_out, latency_s=v.latency_s,
            wait_s=v.wait_s, waiting_since=now, last_error=v.error, answer_errors=v.answer_errors,
        ).to_json()
        for record, v in deferred
    }
    countdown = min(_not_before(v, now) for _, v in deferred) - now  # the waits began when each was deferred
    countdown = min(max(countdown, MIN_COUNTDOWN_S), services.max_countdown_s)
    again = message.model_copy(update={
        "records": [body for body in message.records if str(body.get("id")) in wanted],
        "weights": {k: w for k, w in message.weights.items() if k in wanted},
        "hashes": {k: h for k, h in message.hashes.items() if k in wanted},
        "strata": {k: s for k, s in message.strata.items() if k in wanted},
        "carry": carry,
        "handbacks": message.handbacks + 1,
    })
    if len(again.records) != len(deferred):  # records are re-read by id: never lose one
        again = again.model_copy(update={"records": [record.to_message() for record, _ in deferred]})
    log.info("chunk %s: %d items handed back for %.1fs", message.summary(), len(deferred), countdown)
    services.requeue(again, countdown)


def _not_before(verdict: Verdict, now: float) -> float:
    if verdict.not_before is not None:
        return verdict.not_before
    return now + (verdict.retry_in_s or 0.0)
