"""Drift alerts, pure statistics: the false alarms a day of hourly checks raises, and how fast a real drop is caught.

The world (sizes chosen so the claims can be proved in a few seconds):

- 10 slices of one judge's traffic, one of them 5 % of it; stratified
  sampling judges about 2,000 traces per slice and hour (weights 1/p differ
  by slice: 0.05 x 20,000 traces an hour is sampled at 1, the 20 % slice at
  1/2), in sessions of 1 to 3 traces whose pass rates vary around the
  slice's (a session effect of sd 0.1, so clustering matters);
- pass/fail scores, slice means from 0.70 to 0.90, stationary;
- every hour, ``judgeq drift --short 1h --long 7d --by slice`` with the
  default ``--min-drop 0.05``: the last hour against the 168 before it,
  11 hypotheses (all traffic and each slice), Holm at 5 %.

One long stream of hours is simulated; each day's 24 checks use the week
before them. A second part replaces one hour of the 5 % slice with one whose
pass rate is 10 points lower and checks that hour. The checks run
``online.drift.decide`` on ``Moments`` summed per hour: the command's code
(it sums a span's clusters the same way; the first test shows that the
Moments estimate is ``ledger.stats.estimate_mean``'s).
"""

from __future__ import annotations

import numpy as np
import pytest

from ledger.stats import estimate_mean
from online.drift import ALPHA, Moments, SliceInput, decide, holm

pytestmark = pytest.mark.timeout(120)

SHARES = np.array([0.05, 0.20, 0.15, 0.12, 0.10, 0.10, 0.09, 0.08, 0.06, 0.05])
MEANS = np.array([0.80, 0.85, 0.75, 0.90, 0.70, 0.82, 0.78, 0.88, 0.74, 0.86])
TRAFFIC_PER_HOUR = 20_000
SESSIONS = 1_000  # per slice and hour, of 1-3 traces: about 2,000 judged traces
RATES = np.minimum(1.0, 2 * SESSIONS / (SHARES * TRAFFIC_PER_HOUR))
SESSION_SD = 0.1
WEEK = 168
DAYS = 100
DROP = 0.10
FIELDS = 7


def _hours(rng: np.random.Generator, means: np.ndarray, hours: int) -> np.ndarray:
    """``hours`` hours' Moments fields per slice, shape (hours, slices, 7), from simulated sessions.

    ``Moments.of_clusters`` summed with numpy over many hours at once (the first test checks they agree).
    """
    sizes = rng.integers(1, 4, size=(hours, SHARES.size, SESSIONS))
    p = np.clip(means[None, :, None] + rng.normal(0.0, SESSION_SD, size=sizes.shape), 0.0, 1.0)
    s = sizes / RATES[None, :, None]  # each session's weight and weighted passes
    t = rng.binomial(sizes, p) / RATES[None, :, None]
    return np.stack([sizes.sum(axis=2), np.full(s.shape[:2], SESSIONS), s.sum(axis=2), t.sum(axis=2),
                     (s * s).sum(axis=2), (t * s).sum(axis=2), (t * t).sum(axis=2)], axis=2)


def _hour(rng: np.random.Generator, means: np.ndarray) -> np.ndarray:
    """One hour, shape (slices, 7), through ``Moments.of_clusters`` itself."""
    sizes = rng.integers(1, 4, size=(SHARES.size, SESSIONS))
    p = np.clip(means[:, None] + rng.normal(0.0, SESSION_SD, size=sizes.shape), 0.0, 1.0)
    passed = rng.binomial(sizes, p)
    out = np.empty((SHARES.size, FIELDS))
    for k in range(SHARES.size):
        m = Moments.of_clusters(sizes[k] / RATES[k], passed[k] / RATES[k], int(sizes[k].sum()))
        out[k] = (m.rows, m.clusters, m.w, m.wy, m.ww, m.wyw, m.wywy)
    return out


def _moments(fields: np.ndarray) -> Moments:
    return Moments(int(fields[0]), int(fields[1]), *(float(v) for v in fields[2:]))


def _inputs(short: np.ndarray, long: np.ndarray) -> list[SliceInput]:
    """All traffic (the slices' sums: a session is in one slice) and each slice."""
    slices = [SliceInput(None, "all", _moments(short.sum(axis=0)), _moments(long.sum(axis=0)))]
    slices += [SliceInput("slice", str(k), _moments(short[k]), _moments(long[k])) for k in range(SHARES.size)]
    return slices


@pytest.fixture(scope="module")
def stream() -> np.ndarray:
    """Hourly Moments, (hours, slices, 7): a week of history, then DAYS days; no change anywhere."""
    rng = np.random.default_rng(20261129)
    return np.concatenate([_hours(rng, MEANS, 100) for _ in range(0, WEEK + 24 * DAYS, 100)])[:WEEK + 24 * DAYS]


def test_moments_give_the_weighted_clustered_mean_of_ledger_stats() -> None:
    rng = np.random.default_rng(5)
    n = 3000
    y = (rng.random(n) < 0.7).astype(float)
    w = rng.choice([1.0, 2.0, 20.0], size=n)
    clusters = [None if i % 9 == 0 else f"s{rng.integers(0, 900)}" for i in range(n)]
    reference = estimate_mean(y, w, clusters, binary=False)
    assert reference is not None
    # Two spans with no session in common add up to the estimate of both.
    half = n // 2
    first = [c if c is None else f"a{c}" for c in clusters[:half]]
    second = [c if c is None else f"b{c}" for c in clusters[half:]]
    both = estimate_mean(y, w, first + second, binary=False)
    summed = (Moments.of_rows(y[:half], w[:half], first) + Moments.of_rows(y[half:], w[half:], second)).estimate()
    assert both is not None and summed is not None
    assert (summed.mean, summed.se, summed.lo, summed.hi) == pytest.approx((both.mean, both.se, both.lo, both.hi),
                                                                           rel=1e-9)
    assert summed.n == n and summed.n_clusters == both.n_clusters
    alone = Moments.of_rows(y, w, clusters).estimate()
    assert alone is not None
    assert (alone.mean, alone.se, alone.n_clusters) == pytest.approx((reference.mean, reference.se,
                                                                      reference.n_clusters), rel=1e-9)


def test_the_vectorised_hours_are_moments_of_clusters() -> None:
    one, many = _hour(np.random.default_rng(3), MEANS), _hours(np.random.default_rng(3), MEANS, 1)[0]
    assert one.shape == many.shape and one[:, :2].tolist() == many[:, :2].tolist()
    for k in range(SHARES.size):  # the same sums of the same kind of sessions (not the same draws)
        a, b = _moments(one[k]).estimate(), _moments(many[k]).estimate()
        assert a is not None and b is not None and a.mean == pytest.approx(b.mean, abs=0.05)


def test_holm_adjusts_step_down_and_keeps_order() -> None:
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5]) == [0.5]
    assert holm([]) == []


def test_a_day_of_hourly_checks_without_change_alerts_on_at_most_5_percent_of_days(stream: np.ndarray) -> None:
    totals = np.concatenate([np.zeros((1, *stream.shape[1:])), np.cumsum(stream, axis=0)])
    alarm_days = 0
    checks = unadjusted = any_at_zero = 0
    for day in range(DAYS):
        alarmed = False
        for hour in range(24):
            end = WEEK + 24 * day + hour  # the short window is hour `end`, the long the 168 before it
            short = stream[end]
            long = totals[end] - totals[end - WEEK]
            slices = _inputs(short, long)
            results = decide(slices, min_drop=0.05)
            assert all(r.status in ("ok", "alert") for r in results)  # every slice is big enough to tell
            alarmed |= any(r.status == "alert" for r in results)
            # Without the margin (min_drop 0) Holm still holds one check's false alarms near 5 %;
            # the unadjusted p values would raise one in about 40 % of checks.
            at_zero = decide(slices, min_drop=0.0)
            checks += 1
            any_at_zero += any(r.status == "alert" for r in at_zero)
            unadjusted += any(r.p_value is not None and r.p_value <= ALPHA for r in at_zero)
        alarm_days += alarmed
    assert alarm_days <= 0.05 * DAYS, f"{alarm_days} of {DAYS} days alerted"
    assert any_at_zero / checks <= 0.065, f"family-wise false alarms {any_at_zero / checks:.3f} per check"
    assert unadjusted / checks > 0.2  # so the correction is what keeps them down
    print(f"\nno change: {alarm_days}/{DAYS} days alerted; min_drop 0: {any_at_zero / checks:.3f} of checks "
          f"(unadjusted {unadjusted / checks:.3f})")


def test_a_10_point_drop_in_the_5_percent_slice_is_caught_in_its_first_hour(stream: np.ndarray) -> None:
    rng = np.random.default_rng(11)
    totals = np.concatenate([np.zeros((1, *stream.shape[1:])), np.cumsum(stream, axis=0)])
    dropped = MEANS.copy()
    dropped[0] -= DROP
    reps = 200
    caught = wrong = 0
    for _ in range(reps):
        end = int(rng.integers(WEEK, stream.shape[0]))
        short = stream[end].copy()
        short[0] = _hour(rng, dropped)[0]  # the first hour after the 5 % slice dropped
        results = decide(_inputs(short, totals[end] - totals[end - WEEK]), min_drop=0.05)
        status = {r.label: r.status for r in results}
        caught += status["slice=0"] == "alert"
        wrong += sum(1 for label, s in status.items() if s == "alert" and label not in ("slice=0", "all"))
    assert caught >= 0.9 * reps, f"caught in {caught} of {reps}"
    assert wrong <= 0.05 * reps
    print(f"\n10-point drop in the 5 % slice: caught in the first hour {caught}/{reps}; other slices alerted {wrong}")
