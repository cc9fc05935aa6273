"""The budget controller's arithmetic (online/budget): pacing, spikes, minimums, caps, reservations, estimates."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

import pytest

from online.budget import (
    DEFAULT_COST_PER_ITEM_USD,
    PlanInput,
    RatePlan,
    StratumPlanInput,
    cost_estimate,
    expected_traffic,
    minimums_ahead,
    plan,
)
from online.budget.controller import common_rate
from online.budget.traffic import MAX_HIT_RATE
from online.windows import parse_size

DAY = datetime(2026, 11, 22, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
SHARES = {"de": 0.5, "fr": 0.3, "it": 0.195, "rare": 0.005}


def diurnal(hour: int) -> int:
    """Traces per hour: quiet at 04:00, busiest at 16:00."""
    return round(1000 + 9000 * (1 - math.cos(2 * math.pi * (hour - 4) / 24)) / 2)


def history(days: int = 7) -> list[tuple[datetime, int]]:
    return [(DAY - timedelta(days=d) + h * HOUR, diurnal(h)) for d in range(1, days + 1) for h in range(24)]


def strata(total: float, min_items: int = 0, floor: float = 0.0) -> tuple[StratumPlanInput, ...]:
    return tuple(StratumPlanInput(name, total * share, min_items, floor) for name, share in SHARES.items())


def inputs(*, now: datetime = DAY + 10 * HOUR, budget: float = 20.0, spent: float = 0.0, reserved: float = 0.0,
           cost: float | None = 0.003, window: float = 10_000, remaining: float = 100_000,
           counts: tuple[StratumPlanInput, ...] | None = None, ahead: float = 0.0) -> PlanInput:
    return PlanInput(now=now, day_start=DAY, day_end=DAY + 24 * HOUR, budget_usd=budget, spent_usd=spent,
                     reserved_usd=reserved, cost_per_item=cost, window_expected=window, remaining_expected=remaining,
                     strata=strata(window) if counts is None else counts, remaining_minimums_usd=ahead)


def run_day(actual: dict[int, float], budget: float = 20.0, cost: float = 0.003,
            min_items: int = 0) -> list[RatePlan]:
    """Plan the 24 hourly windows of DAY, each spending exactly what its plan expects (traffic ``actual``)."""
    past = history()
    spent, plans = 0.0, []
    for h in range(24):
        start = DAY + h * HOUR
        window, remaining = expected_traffic(past, start, start + HOUR, DAY + 24 * HOUR, parse_size("1h"))
        result = plan(inputs(now=start, budget=budget, spent=spent, cost=cost, window=window, remaining=remaining,
                             counts=strata(actual[h], min_items)))
        spent += result.expected_cost_usd
        plans.append(result)
    return plans


def test_pacing_spends_the_budget_over_the_day_in_proportion_to_expected_traffic() -> None:
    plans = run_day({h: diurnal(h) for h in range(24)})
    assert sum(p.window_budget_usd for p in plans) == pytest.approx(20.0, rel=1e-9)
    assert sum(p.expected_cost_usd for p in plans) == pytest.approx(20.0, rel=1e-9)
    day_traffic = sum(diurnal(h) for h in range(24))
    for h, p in enumerate(plans):  # each window's money is its share of the day's traffic; one rate all day
        assert p.window_budget_usd == pytest.approx(20.0 * diurnal(h) / day_traffic, rel=1e-6)
        assert p.rate == pytest.approx(20.0 / 0.003 / day_traffic, rel=1e-6)


def test_a_tenfold_spike_gets_a_tenth_of_the_rate_and_the_same_money() -> None:
    usual = plan(inputs())
    spike = plan(inputs(counts=strata(100_000)))
    assert spike.rate == pytest.approx(usual.rate / 10, rel=1e-9)
    assert spike.expected_cost_usd == pytest.approx(usual.expected_cost_usd, rel=1e-9)
    assert spike.window_budget_usd == usual.window_budget_usd
    assert "10.0x the expected traffic" in spike.reason
    # over a whole day: the spike hour costs what it would have, and the day still lands on the budget
    plans = run_day({h: diurnal(h) * (10 if h == 14 else 1) for h in range(24)})
    calm = run_day({h: diurnal(h) for h in range(24)})
    assert plans[14].expected_cost_usd == pytest.approx(calm[14].expected_cost_usd, rel=1e-9)
    assert plans[14].rate == pytest.approx(calm[14].rate / 10, rel=1e-9)
    assert sum(p.expected_cost_usd for p in plans) == pytest.approx(20.0, rel=1e-9)


def test_a_quiet_morning_leaves_its_money_for_later_windows() -> None:
    # a generous budget: the quiet morning (2 % of its usual traffic) is judged whole and cannot spend its share
    budget = 60.0
    quiet = run_day({h: diurnal(h) * (0.02 if h < 12 else 1) for h in range(24)}, budget=budget)
    calm = run_day({h: diurnal(h) for h in range(24)}, budget=budget)
    assert all(p.rate == 1.0 for p in quiet[:12])
    assert "of the share stays for later" in quiet[0].reason
    morning = sum(p.expected_cost_usd for p in quiet[:12])
    assert morning == pytest.approx(sum(0.02 * diurnal(h) * 0.003 for h in range(12)))  # every trace, no more
    assert morning < 0.2 * sum(p.expected_cost_usd for p in calm[:12])
    for q, c in zip(quiet[12:], calm[12:]):  # every afternoon window gets more money, and a higher rate
        assert q.window_budget_usd > c.window_budget_usd and q.rate > c.rate
    assert sum(p.expected_cost_usd for p in quiet) == pytest.approx(budget, rel=1e-9)  # nothing left at midnight


def test_minimums_come_first_and_the_rest_is_one_rate() -> None:
    result = plan(inputs(counts=strata(10_000, min_items=20)))
    by = {d.stratum: d for d in result.decisions}
    assert by["rare"].expected_items >= 20  # 50 traces: the minimum plus its margin
    assert by["rare"].expected_items == pytest.approx(min(50, (math.sqrt(20) + 1) ** 2))
    assert by["rare"].rate > result.rate
    assert "minimum 20 items" in by["rare"].reason
    for name in ("de", "fr", "it"):  # self-weighting where the minimum does not bind
        assert by[name].rate == result.rate and by[name].reason == "the common rate"
    assert result.expected_cost_usd == pytest.approx(result.window_budget_usd, rel=1e-9)
    # a stratum smaller than its minimum is judged whole, and no more
    tiny = plan(inputs(counts=(StratumPlanInput("de", 9_990, 20), StratumPlanInput("rare", 10, 20))))
    assert {d.stratum: d.rate for d in tiny.decisions}["rare"] == 1.0


def test_minimums_past_the_share_are_granted_while_the_day_can_pay_every_windows_minimums() -> None:
    counts = tuple(StratumPlanInput(f"s{i}", 1_000, 50) for i in range(10))
    minimums = 10 * (math.sqrt(50) + 1) ** 2 * 0.003  # about $1.95: more than this window's share of the day
    roomy = plan(inputs(budget=20.0, spent=15.0, counts=counts))  # $5 left, share 10k of 110k traces: $0.45
    assert roomy.window_budget_usd == pytest.approx(5.0 / 11)
    assert roomy.expected_cost_usd == pytest.approx(minimums)
    assert all(d.expected_items == pytest.approx((math.sqrt(50) + 1) ** 2) for d in roomy.decisions)
    assert "its minimums $1.95 first" in roomy.reason and "cost more than the share" in roomy.reason
    assert not roomy.minimums_cut
    # the rest of the day's minimums ($2 of them) still fit: granted the same
    assert plan(inputs(budget=20.0, spent=15.0, counts=counts, ahead=2.0)).expected_cost_usd == pytest.approx(minimums)
    # $4 of them do not: every window gets the same fraction of its minimums, 5 / (1.95 + 4)
    cut = plan(inputs(budget=20.0, spent=15.0, counts=counts, ahead=4.0))
    assert cut.minimums_cut and cut.expected_cost_usd == pytest.approx(minimums * 5.0 / (minimums + 4.0))
    assert all("cut to the day's money left" in d.reason for d in cut.decisions)
    assert "does not cover the minimums" in cut.reason
    # $1 left and nothing ahead: the minimums are cut to the $1
    granted = plan(inputs(budget=20.0, spent=19.0, counts=counts))
    assert granted.minimums_cut and granted.expected_cost_usd == pytest.approx(1.0, rel=1e-9)


def test_rates_are_capped_at_one_and_floored() -> None:
    small = plan(inputs(window=100, remaining=0, counts=strata(100)))  # $20 for 100 traces
    assert all(d.rate == 1.0 for d in small.decisions)
    assert small.expected_cost_usd == pytest.approx(100 * 0.003)
    assert "every trace fits" in small.reason
    floors = (StratumPlanInput("de", 9_000), StratumPlanInput("rare", 1_000, 0, 0.2))
    floored = plan(inputs(counts=floors))
    by = {d.stratum: d for d in floored.decisions}
    assert by["rare"].rate == pytest.approx(0.2) and by["rare"].reason == "floor rate 0.2"
    assert by["de"].rate == floored.rate < 0.2


@pytest.mark.parametrize(("spent", "reserved"), [(20.0, 0.0), (25.0, 0.0), (12.0, 8.0)])
def test_a_spent_budget_sets_every_rate_to_zero_with_the_reason(spent: float, reserved: float) -> None:
    result = plan(inputs(spent=spent, reserved=reserved, counts=strata(10_000, min_items=50, floor=0.1)))
    assert all(d.rate == 0.0 and d.reason == "budget spent" for d in result.decisions)
    assert result.expected_cost_usd == 0.0 and result.window_budget_usd == 0.0
    assert result.reason.startswith("budget spent")
    assert result.budget_left_usd == pytest.approx(20.0 - spent - reserved)


def test_an_unknown_cost_takes_the_default_and_says_so() -> None:
    unknown = plan(inputs(cost=None))
    assert unknown.cost_per_item == DEFAULT_COST_PER_ITEM_USD
    assert f"the default ${DEFAULT_COST_PER_ITEM_USD:.4f}" in unknown.reason
    assert unknown.rates() == plan(inputs(cost=DEFAULT_COST_PER_ITEM_USD)).rates()
    other = plan(PlanInput(**{**inputs(cost=None).__dict__, "default_cost_per_item": 0.002}))
    assert other.cost_per_item == 0.002 and other.rate == pytest.approx(unknown.rate * 5)


def test_reserved_money_is_not_planned_twice() -> None:
    # Two judges under one global budget, both planning their last window of the day at once (each would take
    # all that is left): the second sees the first's reservation, and together they stay within the budget.
    spent, reserved = 14.0, 1.5
    first = plan(inputs(spent=spent, reserved=reserved, remaining=0))
    assert first.expected_cost_usd == pytest.approx(20.0 - spent - reserved)
    second = plan(inputs(spent=spent, reserved=reserved + first.expected_cost_usd, remaining=0))
    assert second.reason.startswith("budget spent") and second.expected_cost_usd == 0.0
    # mid-day, windows planned one after another with nothing settled never sum past what was left
    reserved_now = reserved
    for _ in range(50):
        step = plan(inputs(spent=spent, reserved=reserved_now, window=10_000, remaining=30_000))
        reserved_now += step.expected_cost_usd
        assert spent + reserved_now <= 20.0 + 1e-9
    assert reserved_now == pytest.approx(20.0 - spent, rel=1e-3)


def test_random_inputs_keep_rates_in_range_and_spend_within_the_share_plus_the_minimums() -> None:
    rng = random.Random(9)
    for case in range(2000):
        n_strata = rng.randint(1, 12)
        counts = tuple(StratumPlanInput(f"s{i}", rng.choice([0.0, rng.uniform(0, 50), rng.uniform(0, 1e5)]),
                                        rng.choice([0, 0, rng.randint(1, 200)]),
                                        rng.choice([0.0, 0.0, rng.uniform(0, 0.5)])) for i in range(n_strata))
        budget = rng.choice([0.0, rng.uniform(0, 5), rng.uniform(0, 500)])
        given = inputs(budget=budget, spent=rng.uniform(0, 1.2) * budget, reserved=rng.uniform(0, 0.3) * budget,
                       cost=rng.choice([None, 0.0, rng.uniform(1e-5, 0.05)]), window=rng.uniform(0, 1e5),
                       remaining=rng.choice([0.0, rng.uniform(0, 1e6)]), counts=counts,
                       ahead=rng.choice([0.0, rng.uniform(0, budget)]))
        result = plan(given)
        left = budget - given.spent_usd - given.reserved_usd
        assert 0.0 <= result.rate <= 1.0, case
        minimums = sum(s.guaranteed(given.min_margin_z) for s in counts) * result.cost_per_item
        assert result.expected_cost_usd <= result.window_budget_usd + minimums + 1e-9, case
        if result.cost_per_item > 0:
            assert result.expected_cost_usd <= max(0.0, left) * (1 + 1e-9) + 1e-12, case
        for s, d in zip(counts, result.decisions):
            assert 0.0 <= d.rate <= 1.0, case
            if left <= 0:
                assert d.rate == 0.0, case
            elif "cut to" not in d.reason:
                assert d.rate >= min(1.0, s.floor) - 1e-12, case
                assert d.rate >= result.rate - 1e-12, case


def test_the_common_rate_matches_a_bisection() -> None:
    rng = random.Random(3)
    for _ in range(500):
        counts = [rng.uniform(0, 1000) for _ in range(rng.randint(1, 8))]
        guaranteed = [min(n, rng.choice([0.0, rng.uniform(0, 100)])) for n in counts]
        items = rng.uniform(0, 1.2 * sum(counts))
        p = common_rate(guaranteed, counts, items)

        def total(q: float) -> float:
            return sum(max(g, q * n) for g, n in zip(guaranteed, counts))

        if total(1.0) <= items:
            assert p == 1.0
        elif total(0.0) >= items:
            assert p == 0.0
        else:
            assert total(p) == pytest.approx(items, rel=1e-9)


def test_expected_traffic_follows_the_hour_of_day_of_previous_days() -> None:
    past = history()
    window, remaining = expected_traffic(past, DAY + 14 * HOUR, DAY + 15 * HOUR, DAY + 24 * HOUR, HOUR)
    assert window == pytest.approx((diurnal(14)))
    assert remaining == pytest.approx(sum((diurnal(h)) for h in range(15, 24)))
    # today's spike is in the history passed, but only previous days make the hourly profile
    today = [*past, (DAY + 9 * HOUR, 10 * (diurnal(9)))]
    assert expected_traffic(today, DAY + 10 * HOUR, DAY + 11 * HOUR, DAY + 24 * HOUR, HOUR)[0] == pytest.approx(
        (diurnal(10)))
    # 15-minute windows of an hourly history: a quarter of the hour's traffic
    quarter, _ = expected_traffic(past, DAY + 14 * HOUR, DAY + 14 * HOUR + HOUR / 4, DAY + 24 * HOUR, HOUR)
    assert quarter == pytest.approx((diurnal(14)) / 4)
    # the last window of the day has nothing after it
    assert expected_traffic(past, DAY + 23 * HOUR, DAY + 24 * HOUR, DAY + 24 * HOUR, HOUR)[1] == 0.0


def test_expected_traffic_without_previous_days_takes_the_recent_average() -> None:
    today = [(DAY + h * HOUR, 1000 * (h + 1)) for h in range(4)]  # 1000..4000: mean 2500 an hour
    window, remaining = expected_traffic(today, DAY + 4 * HOUR, DAY + 5 * HOUR, DAY + 24 * HOUR, HOUR)
    assert window == pytest.approx(2500) and remaining == pytest.approx(2500 * 19)
    # quarter-hour windows: the average rate per second, whatever the window size
    quarters = [(DAY + i * HOUR / 4, 600) for i in range(8)]
    window, remaining = expected_traffic(quarters, DAY + 2 * HOUR, DAY + 2 * HOUR + HOUR / 4, DAY + 24 * HOUR,
                                         parse_size("15m"))
    assert window == pytest.approx(600) and remaining == pytest.approx(600 * 4 * 22 - 600)
    # an hour the previous days never saw gets the average; the others their own
    gap = [(DAY - 24 * HOUR + h * HOUR, 100) for h in range(24) if h != 5]
    assert expected_traffic(gap, DAY + 5 * HOUR, DAY + 6 * HOUR, DAY + 24 * HOUR, HOUR)[0] == pytest.approx(100)
    # no history at all: the window being planned stands for the rest of the day
    assert expected_traffic([], DAY + 4 * HOUR, DAY + 5 * HOUR, DAY + 24 * HOUR, HOUR, current=700) == (
        pytest.approx(700), pytest.approx(700 * 19))
    assert expected_traffic([], DAY, DAY + HOUR, DAY + 24 * HOUR, HOUR) == (0.0, 0.0)


def test_the_cost_estimate_discounts_cache_hits_and_falls_back_to_the_default() -> None:
    measured = cost_estimate(0.004, 0.25, default=0.01)
    assert measured.usd == pytest.approx(0.003) and measured.measured and measured.per_item == measured.usd
    assert "75% not cached" in measured.describe()
    unknown = cost_estimate(None, 1.0, default=0.02)
    assert unknown.usd == 0.02 and not unknown.measured and unknown.per_item is None
    assert "default" in unknown.describe()
    assert cost_estimate(0.004, None).usd == 0.004
    assert cost_estimate(0.004, 1.0).usd == pytest.approx(0.004 * (1 - MAX_HIT_RATE))


def test_the_minimums_ahead_spread_the_traffic_left_over_the_windows_left() -> None:
    counts = (StratumPlanInput("de", 9_900, 5), StratumPlanInput("rare", 100, 5), StratumPlanInput("none", 0, 5))
    # 10 windows of 2,000 traces: "de" 1,980 and "rare" 20, each granted (sqrt(5) + 1)^2 items; "none" has no traces
    assert minimums_ahead(counts, 10, 20_000, 0.003) == pytest.approx(10 * 2 * (math.sqrt(5) + 1) ** 2 * 0.003)
    # windows so small that a stratum has fewer traces than its minimum: all of them
    assert minimums_ahead(counts, 10, 500, 0.003) == pytest.approx(10 * ((math.sqrt(5) + 1) ** 2 + 0.5) * 0.003)
    assert minimums_ahead(counts, 0, 20_000, 0.003) == 0.0


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="budget_usd"):
        inputs(budget=float("nan"))
    with pytest.raises(ValueError, match="time zone"):
        inputs(now=datetime(2026, 11, 22, 10))
    with pytest.raises(ValueError, match="floor"):
        StratumPlanInput("de", 10, 0, 1.5)
    with pytest.raises(ValueError, match="twice"):
        inputs(counts=(StratumPlanInput("de", 1), StratumPlanInput("de", 2)))
