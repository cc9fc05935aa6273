"""The budget simulation's logic (benchmarks/budget_sim.py) on a few seeds: its targets, not its speed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from benchmarks.budget_books import MemoryBooks
from benchmarks.budget_sim import DayResult, SimConfig, simulate, summarize

SEEDS = range(3)


@pytest.fixture(scope="module")
def days() -> list[DayResult]:
    return [simulate(seed) for seed in SEEDS]


def test_a_simulated_day_spends_its_budget_and_no_more(days: list[DayResult]) -> None:
    summary = summarize(days)
    for day in days:
        assert 0.95 * day.budget <= day.spent <= 1.01 * day.budget, (day.seed, day.spent)
    assert summary["planned_past_the_budget"] == 0
    assert summary["strata_short_of_day_minimum"] == 0
    # the spike window got about its usual money at about a tenth of its neighbours' rate
    for day in days:
        spike = next(i for i, w in enumerate(day.windows) if w.start.hour == 14)
        before, during = day.windows[spike - 1], day.windows[spike]
        assert during.count > 8 * before.count
        assert during.rate < before.rate / 6
        assert during.reserved < 1.5 * before.reserved


def test_the_weighted_estimate_is_honest_where_the_unweighted_mean_is_not(days: list[DayResult]) -> None:
    for day in days:
        assert abs(day.estimate.mean - day.truth) < 0.03 and day.estimate.hi - day.estimate.lo < 0.03
        assert abs(day.unweighted - day.truth) > 0.05  # the spike's traces are under-sampled tenfold


def test_the_books_see_every_reservation_settled_and_the_first_window_planned_on_the_default_cost() -> None:
    books = MemoryBooks()
    day = simulate(7, replace(SimConfig(), window_minutes=30, min_items=2), books)
    assert all(r.done for r in books.reservations.values())
    assert books.outstanding(day.windows[0].start.date()) == 0.0
    assert sum(r.actual for r in books.reservations.values()) == pytest.approx(day.spent)
    assert day.windows[0].cost_per_item == 0.01 and day.windows[1].cost_per_item < 0.005
    assert "default" in books.decisions[0][2].reason
    assert 0.95 * day.budget <= day.spent <= 1.01 * day.budget


def test_a_budget_too_small_for_the_minimums_cuts_them_and_still_stays_within_it() -> None:
    day = simulate(1, replace(SimConfig(), budget_usd=3.0))
    assert any(w.cut for w in day.windows)
    assert day.spent <= 1.01 * day.budget
