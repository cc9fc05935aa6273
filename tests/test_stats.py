"""ledger.stats against independent references (statsmodels, scipy, closed forms) and by simulation.

The coverage simulations draw many runs from a known truth and count how often
the 95 % interval covers it: 93-97 % is required, with and without clusters
and weights. Seeds are fixed, so the figures are reproducible.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from ledger.stats import estimate_mean, paired_delta, wilson

sm = pytest.importorskip("statsmodels.api")
from statsmodels.stats.contingency_tables import mcnemar  # noqa: E402
from statsmodels.stats.proportion import proportion_confint  # noqa: E402

pytestmark = pytest.mark.timeout(60)


# -- against references -------------------------------------------------------


@pytest.mark.parametrize("k,n", [(0, 20), (3, 20), (17, 20), (20, 20), (425, 500), (1, 1)])
def test_wilson_matches_statsmodels(k: int, n: int) -> None:
    est = estimate_mean([1.0] * k + [0.0] * (n - k))
    assert est is not None and est.method == "wilson"
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert est.lo == pytest.approx(lo, abs=1e-12) and est.hi == pytest.approx(hi, abs=1e-12)


def test_wilson_closed_form() -> None:
    # Wilson (1927) for 8 of 10 at z = 1.959964: (0.4902, 0.9433), as in Newcombe (1998), table II.
    lo, hi = wilson(0.8, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)


def test_numeric_mean_is_a_t_interval_like_scipy() -> None:
    y = np.random.default_rng(1).integers(1, 6, size=37).astype(float)
    est = estimate_mean(y)
    assert est is not None and est.method == "t" and est.df == 36
    lo, hi = sps.t.interval(0.95, 36, loc=y.mean(), scale=sps.sem(y))
    assert est.se == pytest.approx(sps.sem(y), rel=1e-12)
    assert (est.lo, est.hi) == (pytest.approx(lo, rel=1e-12), pytest.approx(hi, rel=1e-12))


def _wls(y: np.ndarray, w: np.ndarray, **fit: object) -> float:
    return float(sm.WLS(y, np.ones_like(y), weights=w).fit(**fit).bse[0])


def test_weighted_and_clustered_errors_match_statsmodels_sandwich() -> None:
    rng = np.random.default_rng(2)
    n = 300
    groups = rng.integers(0, 40, size=n)
    y = rng.normal(3, 1, size=n) + rng.normal(0, 1, size=40)[groups]
    w = rng.choice([1.0, 2.0, 10.0], size=n)
    naive = estimate_mean(y, w)
    clustered = estimate_mean(y, w, [f"s{g}" for g in groups])
    assert naive is not None and clustered is not None
    assert naive.mean == pytest.approx(np.average(y, weights=w), rel=1e-12)
    assert naive.se == pytest.approx(_wls(y, w, cov_type="HC1"), rel=1e-10)
    assert clustered.se == pytest.approx(_wls(y, w, cov_type="cluster", cov_kwds={"groups": groups}), rel=1e-10)
    assert clustered.se_naive == pytest.approx(naive.se, rel=1e-12)
    assert clustered.n_clusters == 40 and clustered.df == 39
    # A clustered binary mean: Wilson on the effective sample size n / deff.
    yb = (y > 3).astype(float)
    b = estimate_mean(yb, None, [f"s{g}" for g in groups])
    assert b is not None and b.method == "wilson" and b.deff is not None
    lo, hi = proportion_confint(yb.sum() / b.deff, n / b.deff, method="wilson")
    assert (b.lo, b.hi) == (pytest.approx(lo, rel=1e-9), pytest.approx(hi, rel=1e-9))


def test_items_without_a_cluster_key_are_clusters_of_one() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    est = estimate_mean(y, clusters=["a", "a", None, None, "b", "b"])
    assert est is not None and est.n_clusters == 4
    ref = _wls(y, np.ones(6), cov_type="cluster", cov_kwds={"groups": np.array([0, 0, 1, 2, 3, 3])})
    assert est.se == pytest.approx(ref, rel=1e-10)


def test_paired_numeric_is_scipys_paired_t() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(3, 1, size=80)
    cand = base + rng.normal(-0.2, 0.5, size=80)
    result = paired_delta(base, cand, binary=False)
    assert result is not None
    est, test = result
    ref = sps.ttest_rel(cand, base)
    assert test.name == "paired-t"
    assert test.statistic == pytest.approx(ref.statistic, rel=1e-10)
    assert test.p_value == pytest.approx(ref.pvalue, rel=1e-8)
    ci = ref.confidence_interval(0.95)
    assert (est.lo, est.hi) == (pytest.approx(ci.low, rel=1e-10), pytest.approx(ci.high, rel=1e-10))


def test_paired_binary_is_mcnemars_exact_test() -> None:
    base = np.array([1.0] * 60 + [0.0] * 40)
    cand = base.copy()
    cand[:9] = 0.0  # 9 pass -> fail
    cand[60:62] = 1.0  # 2 fail -> pass
    result = paired_delta(base, cand)
    assert result is not None
    est, test = result
    assert test.name == "mcnemar-exact" and test.discordant == (9, 2)
    ref = mcnemar(np.array([[51, 9], [2, 38]]), exact=True)  # rows: baseline pass/fail; columns: candidate
    assert test.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert est.mean == pytest.approx(-0.07)


def test_edge_cases() -> None:
    assert estimate_mean([]) is None
    assert paired_delta([], []) is None
    one = estimate_mean([0.7])
    assert one is not None and np.isnan(one.lo)  # one numeric score: no interval, said so by NaN
    same = paired_delta([1.0, 0.0, 1.0], [1.0, 0.0, 1.0])
    assert same is not None and same[0].mean == 0 and same[1].p_value == 1.0
    with pytest.raises(ValueError, match="pair them"):
        paired_delta([1.0], [1.0, 0.0])


# -- coverage by simulation ---------------------------------------------------

SIMS = 2000


def _coverage(draw, truth: float, seed: int, sims: int = SIMS) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(coverage of the interval, coverage of the naive normal interval) over ``sims`` draws."""
    rng = np.random.default_rng(seed)
    hit = naive_hit = 0
    for _ in range(sims):
        est = draw(rng)
        hit += est.lo <= truth <= est.hi
        naive_hit += abs(est.mean - truth) <= 1.959964 * est.se_naive
    return hit / sims, naive_hit / sims


def test_coverage_binary_and_numeric_iid() -> None:
    binary, _ = _coverage(lambda r: estimate_mean((r.random(500) < 0.85).astype(float)), 0.85, 10)
    scale = np.array([1.0, 2, 3, 4, 5])
    probs = np.array([0.05, 0.1, 0.2, 0.35, 0.3])
    numeric, _ = _coverage(lambda r: estimate_mean(r.choice(scale, size=120, p=probs)), float(scale @ probs), 11)
    print(f"coverage iid: binary {binary:.3f}, numeric {numeric:.3f}")
    assert 0.93 <= binary <= 0.97
    assert 0.93 <= numeric <= 0.97


def _clustered(rng: np.random.Generator, binary: bool) -> object:
    g = 80
    sizes = rng.integers(1, 10, size=g)  # sessions of 1 to 9 items
    ids = np.repeat(np.arange(g), sizes)
    if binary:  # per-session pass rates around 0.8 (intra-cluster correlation about 0.3)
        p = rng.beta(0.8 * 2.3, 0.2 * 2.3, size=g)
        y = (rng.random(ids.size) < p[ids]).astype(float)
    else:
        y = 3.0 + rng.normal(0, 1, size=g)[ids] + rng.normal(0, 1, size=ids.size)
    return estimate_mean(y, clusters=ids.tolist())


def test_coverage_with_clusters_and_naive_errors_fall_short() -> None:
    binary, binary_naive = _coverage(lambda r: _clustered(r, True), 0.8, 12)
    numeric, numeric_naive = _coverage(lambda r: _clustered(r, False), 3.0, 13)
    print(f"coverage clustered: binary {binary:.3f} (naive {binary_naive:.3f}), "
          f"numeric {numeric:.3f} (naive {numeric_naive:.3f})")
    assert 0.93 <= binary <= 0.97
    assert 0.93 <= numeric <= 0.97
    assert binary_naive < 0.90 and numeric_naive < 0.90  # why clustered errors matter


def test_coverage_with_sampling_weights() -> None:
    """Poisson sampling from a finite population with 1/p weights: the ratio estimator covers its mean."""
    pop = np.random.default_rng(14)
    strata = pop.integers(0, 3, size=40_000)
    p_incl = np.array([0.01, 0.03, 0.08])[strata]
    pass_rate = np.array([0.6, 0.8, 0.95])[strata]
    y_bin = (pop.random(strata.size) < pass_rate).astype(float)
    y_num = pop.normal(np.array([2.0, 3.0, 4.0])[strata], 1.0)
    rng = np.random.default_rng(15)
    hits = {"binary": 0, "numeric": 0}
    sims = 1500
    for _ in range(sims):
        take = rng.random(strata.size) < p_incl
        w = 1.0 / p_incl[take]
        for name, y in (("binary", y_bin), ("numeric", y_num)):
            est = estimate_mean(y[take], w)
            assert est is not None
            hits[name] += est.lo <= y.mean() <= est.hi
    cov = {k: v / sims for k, v in hits.items()}
    print(f"coverage weighted: {cov}")
    assert all(0.93 <= c <= 0.97 for c in cov.values())
