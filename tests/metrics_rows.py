"""Ledger rows for the metrics and traces tests: runs, items with metadata, and score rows at chosen times.

The tests compute what the exporter and export-otel should show from these
rows' plain numbers, not through judgeq's code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ledger.models import Run
from ledger.rows import ItemIn, ScoreIn
from ledger.store import Ledger


@dataclass(frozen=True)
class Row:
    """One verdict to write: its trace, slice value (None: no metadata key), score, weight and more."""

    trace_id: str
    locale: str | None
    score: float | None
    weight: float = 1.0
    status: str = "ok"
    cost_usd: float = 0.0
    latency_s: float = 0.0
    cached: bool = False
    ts: datetime | None = None
    label: str | None = None
    reason: str = ""


def make_run(ledger: Ledger, run_id: str, kind: str = "online", dataset_name: str = "prod",
             window: str | None = "2026-11-22T13", judges: Sequence[str] = ("relevance",)) -> None:
    """Create a run (an online one by default) with ``judges``."""
    ledger.runs.create_run(Run(id=run_id, kind=kind, dataset_name=dataset_name,  # type: ignore[arg-type]
                          window=window if kind == "online" else None,
                          dataset_hash=None if kind == "online" else "sha256:test",
                          judges={name: {"name": name} for name in judges}, status="running"))


def write_rows(ledger: Ledger, run_id: str, rows: Sequence[Row], eval_name: str = "relevance",
               version: str = "relevance@0123456789ab", dataset: str = "2026-11-22T13") -> None:
    """Store each row's item (metadata.locale when given) and its score row."""
    items = []
    for seq, row in enumerate(rows):
        meta = {} if row.locale is None else {"locale": row.locale}
        items.append(ItemIn(trace_id=row.trace_id, seq=seq, content_hash=f"h{seq}",
                            record={"id": row.trace_id, "output": "o", "metadata": meta}))
    ledger.runs.add_items(run_id, items)
    ledger.scores.write_scores([ScoreIn(run_id=run_id, trace_id=row.trace_id, eval=eval_name, judge_version=version,
                                 dataset=dataset, status=row.status, score=row.score,  # type: ignore[arg-type]
                                 weight=row.weight, cost_usd=row.cost_usd, latency_s=row.latency_s,
                                 cached=row.cached, stratum=row.locale, ts=row.ts, label=row.label,
                                 reason=row.reason,
                                 error="boom" if row.status == "error" else None,
                                 error_kind="fatal" if row.status == "error" else None) for row in rows])


def weighted_mean(rows: Sequence[Row]) -> float:
    """sum(w x s) / sum(w) over the verdicts (status ok with a score)."""
    scored = [r for r in rows if r.status == "ok" and r.score is not None]
    return sum(r.weight * (r.score or 0.0) for r in scored) / sum(r.weight for r in scored)
