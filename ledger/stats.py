"""Estimators for scores: weighted means with intervals, clustered errors, paired differences.

Every estimator takes per-item arrays and a sampling weight per item (1/p;
1 for an offline run), so that the online path can report with the same code.

- **Mean** (:func:`estimate_mean`): the ratio estimator ``sum(w*y)/sum(w)``.
  Its standard error comes from the linearised residuals
  ``u_i = w_i (y_i - mean) / sum(w)``: naive ``V = n/(n-1) sum(u_i^2)``
  (with w = 1 this is ``s^2/n``), clustered ``V = G/(G-1) sum_g (sum_{i in g} u_i)^2``
  (CR1: the sandwich with the small-cluster correction G/(G-1); an item
  without a cluster key is a cluster of its own). This is the sandwich
  variance of weighted least squares on a constant (HC1, resp. cluster CR1),
  which the tests check against statsmodels.
- **Intervals** (95 % unless asked): pass/fail scores get a Wilson score
  interval on the effective sample size ``n_eff = p(1-p) / V`` (Korn and
  Graubard's approach; see :func:`effective_n`), so an unweighted,
  unclustered run gets Wilson exactly and a clustered one Wilson on
  ``n / deff``; numeric scores get a t interval with n-1 degrees of
  freedom (G-1 when clustered).
- **Unequal weights** (an online sample, whose rate differs by stratum)
  leave fewer degrees of freedom than items: when a few heavily weighted
  items or sessions carry most of the estimate, V rests on those few, and
  a t on n-1 (or a Wilson on n_eff) is too narrow (tests/test_online_estimates.py:
  93 % coverage instead of 95 % where 8 sessions weighing 77 carry half of
  the estimate; 90-92 % in other such draws). With
  ``df_from_weights=True`` the df are scaled by the weights' Satterthwaite
  efficiency (:func:`satterthwaite_df`; Valliant and Rust 2010 discuss such
  approximations), and a Wilson interval's n_eff shrinks by the same df, as
  Korn and Graubard do. For equal weights (every offline run) it changes
  nothing; it is a keyword so that the sandwich's usual G-1 stays the default.
- **Paired** (:func:`paired_delta`): the per-item difference ``cand - base``
  over the items both runs scored, estimated like a mean (weights and
  clusters included) with a t interval; the test is McNemar's exact test
  (binomial on the discordant pairs) for pass/fail, a paired t test for
  numeric scales.

Distributions come from scipy; this module imports numpy and scipy at the
top, so import it only inside commands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

from ledger.errors import LedgerArgumentError

LEVEL: Final = 0.95
Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Estimate:
    """A mean (or paired delta) with its standard errors and confidence interval.

    ``se`` is the error the interval uses (clustered when clusters were given);
    ``se_naive`` treats items as independent. ``df`` is the t distribution's
    degrees of freedom (None for Wilson). ``method`` names the interval.
    """

    mean: float
    se: float
    se_naive: float
    lo: float
    hi: float
    n: int
    n_clusters: int | None
    df: float | None
    method: str
    level: float = LEVEL

    @property
    def deff(self) -> float | None:
        """Design effect: clustered variance over naive variance (None without clusters)."""
        if self.n_clusters is None or self.se_naive <= 0:
            return None
        return (self.se / self.se_naive) ** 2

    def one_sided_lower(self, confidence: float = LEVEL) -> float:
        """The one-sided lower confidence bound of the mean at ``confidence`` (normal or t quantile)."""
        return self.mean - _quantile(confidence, self.df) * self.se

    def one_sided_upper(self, confidence: float = LEVEL) -> float:
        """The one-sided upper confidence bound of the mean at ``confidence``."""
        return self.mean + _quantile(confidence, self.df) * self.se


@dataclass(frozen=True)
class PairedTest:
    """A paired comparison's test: its name, statistic and two-sided p value."""

    name: str
    statistic: float
    p_value: float
    discordant: tuple[int, int] | None = None  # (pass->fail, fail->pass) for McNemar


def _quantile(confidence: float, df: float | None) -> float:
    if df is None or not np.isfinite(df):
        return float(sps.norm.ppf(confidence))
    return float(sps.t.ppf(confidence, df))


def is_binary(*scores: Array) -> bool:
    """Whether every score is 0 or 1 (a pass/fail judge); an empty set is not binary."""
    values = [s for s in scores if s.size]
    return bool(values) and all(bool(np.all((s == 0.0) | (s == 1.0))) for s in values)


def cluster_codes(clusters: Sequence[Any] | None, n: int) -> npt.NDArray[np.intp] | None:
    """Integer cluster codes (in order of first appearance); an item without a key (None) is a cluster of its own.

    A dict rather than ``np.unique`` on text keys: an online window's report
    has 10^5-10^6 rows, and sorting that many strings costs seconds.
    """
    if clusters is None:
        return None
    index: dict[Any, int] = {}
    codes = [index.setdefault(c if c.__class__ is str else str(c), len(index)) if c is not None else -1 - i
             for i, c in enumerate(clusters)]
    if len(codes) != n:
        raise LedgerArgumentError(f"{len(codes)} cluster keys for {n} items")
    out = np.array(codes, dtype=np.intp)
    alone = out < 0
    if alone.any():  # items without a key: one new code each
        out[alone] = len(index) + np.arange(int(alone.sum()))
    return out


def linearised_variance(y: Array, w: Array, codes: npt.NDArray[np.intp] | None) -> tuple[float, float, float, int | None]:
    """(mean, naive variance, variance used, clusters) of the ratio mean sum(w*y)/sum(w)."""
    n = y.size
    total_w = float(w.sum())
    mean = float((w * y).sum() / total_w)
    u = w * (y - mean) / total_w
    naive = float(n / (n - 1) * (u * u).sum()) if n > 1 else float("nan")
    if codes is None:
        return mean, naive, naive, None
    sums = np.bincount(codes, weights=u)
    g = int(sums.size)
    clustered = float(g / (g - 1) * (sums * sums).sum()) if g > 1 else float("nan")
    return mean, naive, clustered, g


def satterthwaite_df(w: Array, codes: npt.NDArray[np.intp] | None, g: int) -> float:
    """The variance's degrees of freedom, ``(g - 1) k``, given the weights; ``g`` items or clusters.

    ``k = (sum m)^2 / (g sum m^2)``, ``m`` being each cluster's mean squared
    weight (each item's squared weight without clusters), is Satterthwaite's
    ``(sum c)^2 / sum c^2`` for ``V = sum_g c_g chi2_1`` with ``c_g``
    proportional to ``m_g``, relative to its value ``g`` for equal weights.
    So it is exactly ``g - 1`` when all weights are equal (cluster sizes
    are left out, as before), and near ``h - 1`` when ``h`` of the items or
    clusters carry nearly all of the weight. At least 1 while ``g > 1``.
    """
    if g < 2:
        return float(g - 1)
    sq = w * w
    m = sq if codes is None else np.bincount(codes, weights=sq) / np.bincount(codes)
    if float(m.max()) == float(m.min()):
        return float(g - 1)
    m = m / m.max()  # scale-free, and no overflow for huge weights
    k = float(m.sum() ** 2 / (g * (m * m).sum()))
    return max(1.0, (g - 1) * k)


def wilson(p: float, n_eff: float, level: float = LEVEL) -> tuple[float, float]:
    """The Wilson score interval for a proportion ``p`` observed on ``n_eff`` (effective) trials."""
    z = float(sps.norm.ppf(0.5 + level / 2))
    z2 = z * z
    centre = (p + z2 / (2 * n_eff)) / (1 + z2 / n_eff)
    half = z / (1 + z2 / n_eff) * np.sqrt(p * (1 - p) / n_eff + z2 / (4 * n_eff * n_eff))
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def effective_n(p: float, variance: float, n: int, w: Array) -> float:
    """The sample size at which a simple random sample would give ``variance`` for proportion ``p``.

    ``p(1-p) / (V (n-1)/n)``: the ``(n-1)/n`` undoes the HC1 factor, so that an
    unweighted, unclustered run gets n exactly (Wilson as usual); with
    clusters it is ``n / deff``. Where V is 0 (p is 0 or 1) the Kish size
    ``(sum w)^2 / sum w^2`` stands in.
    """
    if 0.0 < p < 1.0 and variance > 0 and np.isfinite(variance):
        return p * (1 - p) / (variance * (n - 1) / n)
    return float(w.sum() ** 2 / (w * w).sum())


def estimate_mean(
    scores: Sequence[float] | Array,
    weights: Sequence[float] | Array | None = None,
    clusters: Sequence[Any] | None = None,
    *,
    binary: bool | None = None,
    level: float = LEVEL,
    bounds: tuple[float, float] | None = None,
    df_from_weights: bool = False,
) -> Estimate | None:
    """The weighted mean of ``scores`` with its interval; None when there are no scores.

    ``df_from_weights``: take the degrees of freedom from the weights (see
    the module docstring); use it for samples whose rates differ (online runs).

    ``bounds`` (the scores' possible range) clips a numeric interval to it: a t
    interval on a small slice can otherwise claim a mean the scale cannot have.
    Clipping only removes impossible values, so coverage does not drop.
    """
    y = np.asarray(scores, dtype=np.float64)
    n = int(y.size)
    if n == 0:
        return None
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != y.shape or np.any(w <= 0):
        raise LedgerArgumentError("weights must be positive, one per score")
    codes = cluster_codes(clusters, n)
    mean, v_naive, v, g = linearised_variance(y, w, codes)
    se_naive, se = float(np.sqrt(v_naive)), float(np.sqrt(v))
    binary = is_binary(y) if binary is None else binary
    units = g if g is not None else n
    df = satterthwaite_df(w, codes, units) if df_from_weights else float(units - 1)
    if binary:
        n_eff = effective_n(mean, v, n, w)
        if df < units - 1:  # unequal weights: n_eff on the df they leave (1 for equal weights)
            n_eff *= (_quantile(0.5 + level / 2, units - 1) / _quantile(0.5 + level / 2, df)) ** 2
        lo, hi = wilson(mean, n_eff, level)
        return Estimate(mean, se, se_naive, lo, hi, n, g, None, "wilson", level)
    if df < 1 or not np.isfinite(se):
        return Estimate(mean, se, se_naive, float("nan"), float("nan"), n, g, df, "t", level)
    half = _quantile(0.5 + level / 2, df) * se
    lo, hi = mean - half, mean + half
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return Estimate(mean, se, se_naive, lo, hi, n, g, df, "t", level)


def paired_delta(
    base: Sequence[float] | Array,
    cand: Sequence[float] | Array,
    weights: Sequence[float] | Array | None = None,
    clusters: Sequence[Any] | None = None,
    *,
    binary: bool | None = None,
    level: float = LEVEL,
    df_from_weights: bool = False,
) -> tuple[Estimate, PairedTest] | None:
    """The paired delta ``cand - base`` over items scored in both runs, and its test; None if no pairs.

    ``df_from_weights`` as for :func:`estimate_mean`.
    """
    b = np.asarray(base, dtype=np.float64)
    c = np.asarray(cand, dtype=np.float64)
    if b.shape != c.shape:
        raise LedgerArgumentError(f"{b.size} baseline scores for {c.size} candidate scores; pair them by item first")
    if b.size == 0:
        return None
    d = c - b
    n = int(d.size)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    codes = cluster_codes(clusters, n)
    mean, v_naive, v, g = linearised_variance(d, w, codes)
    se_naive, se = float(np.sqrt(v_naive)), float(np.sqrt(v))
    units = g if g is not None else n
    df = satterthwaite_df(w, codes, units) if df_from_weights else float(units - 1)
    if df >= 1 and se > 0:
        half = _quantile(0.5 + level / 2, df) * se
        estimate = Estimate(mean, se, se_naive, mean - half, mean + half, n, g, df, "paired-t", level)
    else:  # no variation in the differences (or one pair): the delta is what it is
        lo, hi = (mean, mean) if se == 0 else (float("nan"), float("nan"))
        estimate = Estimate(mean, se if np.isfinite(se) else 0.0, se_naive if np.isfinite(se_naive) else 0.0,
                            lo, hi, n, g, df if df >= 1 else None, "paired-t", level)
    binary = is_binary(b, c) if binary is None else binary
    if binary:
        worse = int(np.count_nonzero((b == 1.0) & (c == 0.0)))
        better = int(np.count_nonzero((b == 0.0) & (c == 1.0)))
        p = float(sps.binomtest(better, worse + better, 0.5).pvalue) if worse + better else 1.0
        return estimate, PairedTest("mcnemar-exact", float(better - worse), p, (worse, better))
    if se > 0 and df >= 1:
        t = mean / se
        return estimate, PairedTest("paired-t", float(t), float(2 * sps.t.sf(abs(t), df)))
    return estimate, PairedTest("paired-t", 0.0 if mean == 0 else float("inf"), 1.0 if mean == 0 else 0.0)


def percentiles(values: Array, qs: Sequence[float] = (50, 95)) -> list[float | None]:
    """Linear-interpolation percentiles (numpy's default); Nones for no values."""
    if values.size == 0:
        return [None for _ in qs]
    return [float(v) for v in np.percentile(values, list(qs))]
