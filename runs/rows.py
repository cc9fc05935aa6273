"""The ledger rows of a chunk's items: a verdict's row, and the rows of items no judge answered.

Every row a chunk's item gets is made by :func:`score_row`, whoever writes
it: a worker judging the chunk (``workers.chunk``, ``workers.remote``), a
worker refusing it (poison, a judge it cannot build), the sender (a record too
large to send, :mod:`runs.sending`), or a budget that is spent
(:func:`write_skipped`: ``--max-cost`` at the submit and at the worker, an
online judge's daily budget). One maker, so the rows of one item agree on
weight, stratum, cluster and content hash however it ended.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from judges.record import CLUSTER_KEYS, Record
from judges.verdict import Verdict
from ledger.rows import ScoreIn
from ledger.store import Ledger

from .message import ChunkMessage

#: ``error_kind`` of the rows written for a chunk's items that were not judged (README, "Reliability").
INTERNAL = "internal"  # judgeq's own code raised while judging the chunk (a bug: report it)
POISON = "poison"  # the chunk's worker died JUDGEQ_MAX_DELIVERIES times (a crash, out of memory, a hard time limit)
SETUP = "setup"  # the worker could not build the chunk's judge (another judgeq version, a key it lacks)
TOO_LARGE = "too_large"  # a record larger than a worker admits: never sent (runs.sending.send_chunks)
BUDGET = "budget"  # skipped, not called: the run's --max-cost or the judge's daily budget was spent


@dataclass(frozen=True)
class ChunkOutcome:
    """What one chunk did: rows written, rows already present, errors among the written."""

    written: int
    already_done: int
    errors: int


def score_row(message: ChunkMessage, record: Record, verdict: Verdict, judge_version: str) -> ScoreIn:
    """The ledger row of one verdict."""
    meta = record.metadata
    cluster = next((str(meta[k]) for k in CLUSTER_KEYS if meta.get(k) is not None), None)
    stratum = message.strata.get(record.id, meta.get("stratum"))
    return ScoreIn(
        run_id=message.run_id,
        trace_id=record.id,
        eval=message.judge_name,
        score=verdict.score,
        label=verdict.label,
        reason=verdict.reason,
        judge_version=judge_version,
        dataset=message.dataset,
        cost_usd=verdict.cost_usd,
        latency_s=verdict.latency_s,
        wait_s=verdict.wait_s,
        tokens_in=verdict.tokens_in,
        tokens_out=verdict.tokens_out,
        attempts=verdict.attempts,
        error=verdict.error,
        error_kind=verdict.error_kind,
        status="ok" if verdict.error is None else "error",
        cached=False,
        weight=float(message.weights.get(record.id, 1.0)),
        stratum=None if stratum is None else str(stratum),
        cluster=cluster,
        content_hash=message.content_hash(record),
        confidence=verdict.confidence,
        stage=verdict.stage,
        audit_label=verdict.audit_label,
        audit_score=verdict.audit_score,
        provider_model=verdict.provider_model,
        system_fingerprint=verdict.system_fingerprint,
    )


def write_verdicts(message: ChunkMessage, records: Sequence[Record], verdicts: Sequence[Verdict], ledger: Ledger,
                   already_done: int = 0) -> ChunkOutcome:
    """Write one row per (record, verdict) of the chunk in one transaction."""
    version = str(message.judge.get("version"))
    rows = [score_row(message, record, verdict, version) for record, verdict in zip(records, verdicts)]
    ledger.scores.write_scores(rows)
    errors = sum(1 for v in verdicts if v.error is not None)
    return ChunkOutcome(written=len(rows), already_done=already_done, errors=errors)


def fail_chunk(message: ChunkMessage, ledger: Ledger, error: str, kind: str) -> ChunkOutcome:
    """Record every item of the chunk as failed with ``error`` of ``kind`` (INTERNAL, POISON, TOO_LARGE)."""
    records = [Record.model_validate(r) for r in message.records]
    verdicts = [Verdict.failed(r.id, error, attempts=0, error_kind=kind) for r in records]
    return write_verdicts(message, records, verdicts, ledger)


def skipped_rows(message: ChunkMessage, records: Sequence[Record], reason: str) -> list[ScoreIn]:
    """The rows of ``records`` not judged because a budget is spent: status skipped, kind budget, nothing called."""
    version = str(message.judge.get("version"))
    return [dataclasses.replace(score_row(message, r, Verdict.failed(r.id, reason, attempts=0), version),
                                status="skipped", error_kind=BUDGET) for r in records]


def write_skipped(message: ChunkMessage, records: Sequence[Record], reason: str, ledger: Ledger) -> int:
    """Write :func:`skipped_rows` (the one place skip rows are written); how many."""
    rows = skipped_rows(message, records, reason)
    ledger.scores.write_scores(rows)
    return len(rows)
