"""What an online run says about its window's traffic: weighted means per stratum and overall.

An online run judged a sample of its window, drawn at rate p per stratum, and
each row carries its weight 1/p (``scores.weight``). So the report estimates
the population, not the sample: the mean of each stratum and of the whole
window is the weighted (ratio) mean ``sum(w*y)/sum(w)`` of ``ledger.stats``,
where a stratum sampled at 1 % counts a hundred times as much per row as one
sampled at 100 %. Beside each estimate stand the window's counts
(``window_strata``: seen, filtered, sampled, enqueued, p) and the rows
written (judged, errors, skipped), so a thin stratum is visible as such.

Errors are always clustered (CR1), by the rows' ``cluster`` column (the
trace's session, else its user) unless ``cluster_by`` names a metadata key:

- with ``sample_by = "session"`` the session is the sampling unit, so an
  unclustered error would be too small, not merely optimistic;
- with trace sampling the question asked of a window is "has quality
  drifted?", about the traffic that produced it, and traces of one session
  share a user and a conversation: their verdicts are not independent.
  Where few sampled traces share a session (low rates), the clustered error
  is the unclustered one; rows without a cluster are clusters of one.

For the same reason (the traffic, not this finite set of traces) there is no
finite-population correction: a stratum judged in full still has an interval.
A stratum with eligible traces and no scored row is not represented in the
overall mean (the mean is then of the other strata's traffic); it is listed
in ``unrepresented``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ledger.frames import EvalRows
from ledger.rows import StratumCounts
from ledger.scorecard import MIN_SLICE, NO_VALUE, Card, card, slices_of

#: ``clustered_by`` when the rows' own cluster column is used.
ROW_CLUSTERS = "session, else user"
WHOLE_WINDOW = "all"


@dataclass(frozen=True)
class StratumFigures:
    """One stratum of the window (``stratum`` None: the whole window): its counts and its rows' estimate.

    ``counts`` is None where the scan wrote none for the stratum; for the
    whole window it is the sum over strata, with ``rate`` the fraction of
    eligible (seen, not filtered) traces sampled. ``card`` is None for a
    stratum without rows.
    """

    stratum: str | None
    counts: StratumCounts | None
    card: Card | None

    @property
    def eligible(self) -> int | None:
        """Traces of the stratum that the policy's filter let through: the population the estimate is of."""
        return None if self.counts is None else self.counts.seen - self.counts.filtered


@dataclass(frozen=True)
class PopulationEstimate:
    """One judge's estimate of a window: overall, then per stratum (by name, "(none)" last)."""

    eval: str
    overall: StratumFigures
    strata: tuple[StratumFigures, ...]
    clustered_by: str

    @property
    def unrepresented(self) -> list[str]:
        """Strata with eligible traces but no scored row: the overall mean says nothing about them."""
        return [s.stratum for s in self.strata if s.stratum is not None and (s.eligible or 0) > 0
                and (s.card is None or s.card.estimate is None)]


def total(counts: Sequence[StratumCounts]) -> StratumCounts:
    """The window's counts over all strata; ``rate`` is the fraction of eligible traces sampled."""
    seen, filtered, sampled, enqueued = (sum(getattr(c, name) for c in counts)
                                         for name in ("seen", "filtered", "sampled", "enqueued"))
    eligible = seen - filtered
    return StratumCounts(WHOLE_WINDOW, seen, filtered, sampled, enqueued,
                         min(1.0, sampled / eligible) if eligible > 0 else 0.0)


def estimate_population(rows: EvalRows | None, counts: Sequence[StratumCounts], *, eval_name: str,
                        clustered_by: str = ROW_CLUSTERS, min_slice: int = MIN_SLICE) -> PopulationEstimate:
    """The estimate of one judge's rows (sliced by stratum, with clusters; None: no rows yet) and the window's counts."""
    by_name = {c.stratum: c for c in counts}
    overall_card: Card | None = None
    cards: dict[str, Card] = {}
    if rows is not None and rows.trace_ids:
        overall_card = card(rows, clustered=True)
        # A row without a stratum and one of the sampler's "(none)" stratum are the same stratum.
        strata_of_rows = [None if v == NO_VALUE else v for v in rows.by or [None] * len(rows.trace_ids)]
        labels = np.array([NO_VALUE if v is None else v for v in strata_of_rows], dtype=object)
        for name in slices_of(strata_of_rows):
            cards[name] = card(rows.subset(labels == name), name, binary=overall_card.binary, clustered=True,
                               min_slice=min_slice)
    names = slices_of([None if name == NO_VALUE else name for name in {*by_name, *cards}])
    strata = tuple(StratumFigures(name, by_name.get(name), cards.get(name)) for name in names)
    overall = StratumFigures(None, total(counts) if counts else None, overall_card)
    return PopulationEstimate(eval_name, overall, strata, clustered_by)
