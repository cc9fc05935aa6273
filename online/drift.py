"""Drift statistics: has a slice's score dropped, from the long baseline to the short window, by more than a margin?

Per slice the short window's mean and the long baseline's mean are the
weighted (1/p) ratio means of ``ledger.stats``, with the clustered (CR1,
by session, else user) standard error. Both are computed from
:class:`Moments`, an additive summary of a slice's clusters (each cluster's
total weight ``s_g`` and weighted score ``t_g``):

    mean = sum t / sum s        V = G/(G-1) sum (t_g - mean s_g)^2 / (sum s)^2

which is ``ledger.stats.estimate_mean`` with clusters, expanded into sums
that add up across windows (tests/test_drift_sim.py checks the two agree to
rounding). So a week of hourly windows is summed, not re-read, and the
simulation test runs the exact code the command runs.

The test, per slice: drop = long mean - short mean; H0: drop <= ``min_drop``;
one-sided t on ``(drop - min_drop) / sqrt(se_short^2 + se_long^2)`` with
Welch-Satterthwaite degrees of freedom from the two spans' G-1. The two spans
do not overlap (the long one ends where the short one starts), so the two
means are independent but for sessions straddling the boundary.

Across slices the family-wise error is held at ``alpha`` with **Holm**'s
step-down adjustment (see README, "Drift alerts": an alert pages someone, so
what is controlled is the chance of any false page per check, not the share
of false pages among many true ones as Benjamini-Hochberg would).

A slice is **too small** to tell when the short window holds fewer than
``MIN_ROWS`` scored rows or ``MIN_CLUSTERS`` sessions, or the baseline fewer
than ``MIN_ROWS`` rows (the report's small-slice rule, ``ledger.scorecard``):
it is listed with its figures and not tested, so it neither alerts nor
spends the other slices' share of ``alpha``. A slice with no row in one of
the spans is ``no_data``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
from scipy import special

from ledger.scorecard import MIN_SLICE
from ledger.stats import Estimate, cluster_codes

Status = Literal["alert", "ok", "too_small", "no_data"]
STATUSES: Final = ("alert", "ok", "too_small", "no_data")
ALPHA: Final = 0.05
MIN_ROWS: Final = MIN_SLICE
MIN_CLUSTERS: Final = MIN_SLICE // 3
CORRECTION: Final = "holm"
Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Moments:
    """A slice's rows summed per cluster and then over clusters: all the estimate needs, and additive.

    Adding two Moments is right when no cluster is in both (the command
    collapses a whole span's rows at once, so a session is one cluster).
    """

    rows: int = 0
    clusters: int = 0
    w: float = 0.0  # sum s_g
    wy: float = 0.0  # sum t_g
    ww: float = 0.0  # sum s_g^2
    wyw: float = 0.0  # sum t_g s_g
    wywy: float = 0.0  # sum t_g^2

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.rows + other.rows, self.clusters + other.clusters, self.w + other.w,
                       self.wy + other.wy, self.ww + other.ww, self.wyw + other.wyw, self.wywy + other.wywy)

    @classmethod
    def of_clusters(cls, weight: npt.ArrayLike, weighted_score: npt.ArrayLike, rows: int) -> Moments:
        """From per-cluster totals: ``weight`` s_g (sum of 1/p) and ``weighted_score`` t_g (sum of score/p)."""
        s, t = np.asarray(weight, dtype=np.float64), np.asarray(weighted_score, dtype=np.float64)
        return cls(int(rows), int(s.size), float(s.sum()), float(t.sum()), float((s * s).sum()),
                   float((t * s).sum()), float((t * t).sum()))

    @classmethod
    def of_rows(cls, scores: Sequence[float] | Array, weights: Sequence[float] | Array,
                clusters: Sequence[Any] | None = None) -> Moments:
        """From rows (score, weight 1/p, cluster key; None: a cluster of its own), as ``estimate_mean`` takes them."""
        y = np.asarray(scores, dtype=np.float64)
        w = np.asarray(weights, dtype=np.float64)
        if y.size == 0:
            return cls()
        codes = cluster_codes(clusters, int(y.size))
        if codes is None:
            return cls.of_clusters(w, w * y, int(y.size))
        return cls.of_clusters(np.bincount(codes, weights=w), np.bincount(codes, weights=w * y), int(y.size))

    def estimate(self) -> Estimate | None:
        """The ratio mean with its CR1 error and 95 % t interval on G-1 df; None without rows."""
        if self.rows == 0 or self.w <= 0:
            return None
        mean = self.wy / self.w
        g = self.clusters
        if g < 2:
            return Estimate(mean, math.nan, math.nan, math.nan, math.nan, self.rows, g, None, "t")
        squares = max(0.0, self.wywy - 2 * mean * self.wyw + mean * mean * self.ww)
        se = math.sqrt(g / (g - 1) * squares) / self.w
        half = _t_quantile(0.975, g - 1) * se
        return Estimate(mean, se, math.nan, mean - half, mean + half, self.rows, g, float(g - 1), "t")


@dataclass(frozen=True)
class SliceDrift:
    """One slice's check: its two estimates, the drop, the test and the decision.

    ``key`` is the metadata key of ``--by`` (None: all traffic, ``value`` "all").
    ``p_value`` is one-sided for drop > min_drop; ``adjusted`` is Holm's over
    the slices tested. ``detectable`` is the drop this slice would flag half
    of the time (min_drop + t(1 - alpha/m) se): what "too small" means in numbers.
    """

    key: str | None
    value: str
    short: Estimate | None
    long: Estimate | None
    drop: float | None
    se: float | None
    p_value: float | None
    adjusted: float | None
    detectable: float | None
    status: Status

    @property
    def label(self) -> str:
        return "all" if self.key is None else f"{self.key}={self.value}"

    def to_json(self) -> dict[str, Any]:
        def est(e: Estimate | None) -> dict[str, Any] | None:
            if e is None:
                return None
            return {"mean": e.mean, "se": _finite(e.se), "n": e.n, "clusters": e.n_clusters,
                    "ci_low": _finite(e.lo), "ci_high": _finite(e.hi)}

        return {"slice": self.label, "key": self.key, "value": self.value, "status": self.status,
                "short": est(self.short), "long": est(self.long), "drop": _finite(self.drop),
                "se": _finite(self.se), "p_value": _finite(self.p_value), "adjusted_p": _finite(self.adjusted),
                "detectable_drop": _finite(self.detectable)}


@dataclass(frozen=True)
class SliceInput:
    """A slice to check: its key and value and the Moments of its rows in each span."""

    key: str | None
    value: str
    short: Moments = field(default_factory=Moments)
    long: Moments = field(default_factory=Moments)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def too_small(short: Estimate | None, long: Estimate | None) -> bool:
    """Whether a slice has too few rows or sessions to be tested (module docstring)."""
    if short is None or long is None:
        return True
    return (short.n < MIN_ROWS or (short.n_clusters or 0) < MIN_CLUSTERS or long.n < MIN_ROWS
            or not math.isfinite(short.se) or not math.isfinite(long.se))


def drop_test(short: Estimate, long: Estimate, min_drop: float) -> tuple[float, float, float, float]:
    """(drop, se, df, one-sided p) of H0: long mean - short mean <= ``min_drop``."""
    drop = long.mean - short.mean
    vs, vl = short.se**2, long.se**2
    se = math.sqrt(vs + vl)
    if se == 0.0:  # no variation at all in either span: the drop is what it is
        return drop, se, math.inf, 0.0 if drop > min_drop else 1.0
    df_s, df_l = short.df or math.inf, long.df or math.inf
    df = (vs + vl) ** 2 / (vs * vs / df_s + vl * vl / df_l)
    return drop, se, df, float(special.stdtr(df, -(drop - min_drop) / se))


def _t_quantile(q: float, df: float) -> float:
    """The t distribution's ``q`` quantile (scipy.special's, about 30x faster than ``scipy.stats.t.ppf``)."""
    return float(special.ndtri(q)) if math.isinf(df) else float(special.stdtrit(df, q))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p values (same order as given): reject where adjusted <= alpha."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def decide(slices: Sequence[SliceInput], min_drop: float, alpha: float = ALPHA) -> list[SliceDrift]:
    """Check every slice; alert where Holm's adjusted p <= ``alpha``. Same order as ``slices``."""
    estimates = [(s.short.estimate(), s.long.estimate()) for s in slices]
    tested = [i for i, (short, long) in enumerate(estimates) if not too_small(short, long)]
    tests = {}
    for i in tested:
        short, long = estimates[i]
        assert short is not None and long is not None
        tests[i] = drop_test(short, long, min_drop)
    adjusted = dict(zip(tested, holm([tests[i][3] for i in tested]), strict=True))
    m = max(1, len(tested))
    out = []
    for i, (s, (short, long)) in enumerate(zip(slices, estimates, strict=True)):
        drop = se = p = adj = detectable = None
        if short is not None and long is not None:
            drop = long.mean - short.mean
            se = math.sqrt(short.se**2 + long.se**2) if math.isfinite(short.se) and math.isfinite(long.se) else None
        if i in tests:
            drop, se, df, p = tests[i]
            adj = adjusted[i]
            detectable = min_drop + _t_quantile(1 - alpha / m, df) * se
        if short is None or long is None:
            status: Status = "no_data"
        elif adj is None:
            status = "too_small"
        else:
            status = "alert" if adj <= alpha else "ok"
        out.append(SliceDrift(s.key, s.value, short, long, drop, se, p, adj, detectable, status))
    return out
