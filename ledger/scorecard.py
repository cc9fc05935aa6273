"""A run's scorecard: quality, cost and latency per judge, optionally per slice.

Quality is the weighted mean score with its 95 % interval (``ledger.stats``)
over the rows that count as measurements (status ok, with a score); errors
and skips are counted beside it, never averaged in. A slice (``--by FIELD``)
is flagged ``small`` when it has fewer than ``min_slice`` scored items (or,
clustered, fewer than ``min_slice // 3`` clusters): its interval is shown,
but it is too wide to say much and normal approximations are shaky there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from ledger.frames import EvalRows
from ledger.stats import Estimate, estimate_mean, is_binary, percentiles

#: Judges normalise every score to [0, 1] (a scale = [lo, hi] is mapped onto it).
SCORE_RANGE = (0.0, 1.0)

MIN_SLICE: Final = 30
NO_VALUE: Final = "(none)"  # the slice of items without the --by key


@dataclass(frozen=True)
class Card:
    """One judge's figures over the run, or over one slice of it (``slice`` not None)."""

    eval: str
    slice: str | None
    n: int  # rows written (ok + errors + skipped)
    ok: int  # rows that are measurements
    errors: int
    skipped: int
    binary: bool
    estimate: Estimate | None
    cost_usd: float
    cost_per_item_usd: float | None
    latency_p50_s: float | None  # the judge calls' own time
    latency_p95_s: float | None
    wait_p50_s: float | None = None  # the time waited beside it (rate limit slots, backoff, hand-backs)
    wait_p95_s: float | None = None
    small: bool = False
    unclustered: int = 0  # scored items without the --cluster-by key (each its own cluster)


def card(rows: EvalRows, slice_name: str | None = None, *, binary: bool | None = None,
         clustered: bool = False, min_slice: int = MIN_SLICE) -> Card:
    """The Card of ``rows``; ``binary`` None decides from the scores (all 0 or 1)."""
    status = np.array(rows.status, dtype=object)
    scored = rows.scored
    y = rows.score[scored]
    binary = is_binary(y) if binary is None else binary
    clusters = None
    unclustered = 0
    if clustered and rows.cluster is not None:
        clusters = [rows.cluster[i] for i in np.flatnonzero(scored)]
        unclustered = sum(1 for c in clusters if c is None)
    estimate = estimate_mean(y, rows.weight[scored], clusters, binary=binary, bounds=SCORE_RANGE) if y.size else None
    judged = status != "skipped"
    p50, p95 = percentiles(rows.latency[judged])
    wait50, wait95 = percentiles(rows.wait[judged])
    n = len(rows.trace_ids)
    cost = float(rows.cost.sum())
    small = False
    if slice_name is not None:
        too_few_clusters = (estimate is not None and estimate.n_clusters is not None
                            and estimate.n_clusters < max(2, min_slice // 3))
        small = int(y.size) < min_slice or too_few_clusters
    return Card(
        eval=rows.eval, slice=slice_name, n=n, ok=int(np.count_nonzero(status == "ok")),
        errors=int(np.count_nonzero(status == "error")), skipped=int(np.count_nonzero(status == "skipped")),
        binary=binary, estimate=estimate, cost_usd=cost, cost_per_item_usd=cost / n if n else None,
        latency_p50_s=p50, latency_p95_s=p95, wait_p50_s=wait50, wait_p95_s=wait95, small=small, unclustered=unclustered,
    )


def slices_of(labels: list[str | None]) -> list[str]:
    """The slice names in order (by name; items without the key last)."""
    names = sorted({NO_VALUE if v is None else v for v in labels} - {NO_VALUE})
    return names + ([NO_VALUE] if any(v is None for v in labels) else [])


def scorecard(rows_by_eval: dict[str, EvalRows], *, by: bool = False, clustered: bool = False,
              min_slice: int = MIN_SLICE) -> list[Card]:
    """Per judge, its overall Card followed (with ``by``) by one Card per slice."""
    cards: list[Card] = []
    for name in sorted(rows_by_eval):
        rows = rows_by_eval[name]
        overall = card(rows, clustered=clustered)
        cards.append(overall)
        if by and rows.by is not None:
            labels = np.array([NO_VALUE if v is None else v for v in rows.by], dtype=object)
            for value in slices_of(rows.by):
                cards.append(card(rows.subset(labels == value), value, binary=overall.binary,
                                  clustered=clustered, min_slice=min_slice))
    return cards
