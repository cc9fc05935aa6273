"""The budget controller over a simulated day: does spend land on the budget, whatever the traffic does?

    python -m benchmarks.budget_sim [--seeds 50] [--window 60] [--budget 50] [--png benchmarks/budget_sim.png] [--json]

One UTC day in compressed time: the simulation's clock jumps from event to
event (a window closing, an item judged), and the controller reads only that
clock. Each window is planned when it closes (its counts per stratum then
exact), the plan's expected cost is reserved, its sample is judged over the
next ``lag_windows`` windows, and each judgment settles its actual cost. The
world:

- traffic: a diurnal curve (0.2x the day's mean per hour at 04:00, 1.8x at
  16:00), +-10 % from day to day, Poisson per window; seven previous days of
  windows are the controller's history; **a 10x spike from 14:00 to 15:00**
  (traffic whose pass rate is 0.35 lower: an incident), not in the history;
- 20 strata, the smallest **0.5 %** of traffic, pass rates 0.5-0.95; every
  stratum has ``min_items`` per window;
- a call costs ``cost_per_call`` **+-50 %** (uniform); cache hits cost 0, and
  **the hit rate jumps from 20 % to 60 % at 12:00**; the judge has no priced
  calls at midnight, so the first window plans at the default cost;
- when the day's settled spend reaches the budget, items still queued are
  skipped for budget (as workers do);
- ``--outage 10-13``: beat is down from 10:00 to 13:00; the windows that
  close then are planned at 13:00, oldest first (its catch-up), each with
  the others still ahead of it (online/budget/traffic.py ``ahead_of``).
  The summary's ``catch_up_given`` compares what they were given with what
  the same seeds' windows were given on a day without the outage.

The day's spend is the actual cost of the runs planned that day (the last
windows' judgments finish after midnight). Targets over the seeds: spend
within 5 % of the budget and never more than 1 % over; every stratum judged
at least its minimum over the day; the weighted estimate's 95 % interval
(ledger.stats.estimate_mean, weights 1/p) covers the day's true pass rate
in at least 93 % of seeds.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from ledger.stats import Estimate, estimate_mean
from online.budget import PlanInput, StratumPlanInput, cost_estimate, expected_traffic, minimums_ahead, plan
from online.budget.traffic import ahead_of
from online.windows import parse_size

from .budget_books import Books, MemoryBooks
from .budget_world import DAY, SimConfig, SimClock, World

HOUR = timedelta(hours=1)

@dataclass
class WindowTrace:
    """One window as the controller saw and decided it (for the figures)."""

    start: datetime
    planned_at: datetime
    count: int
    expected: float
    rate: float  # the largest stratum's: the common rate, or its minimum's where the minimums take the whole share
    rare_rate: float  # the 0.5 % stratum's
    window_budget: float
    reserved: float  # this window's expected cost, reserved at enqueue
    committed: float  # settled spend + outstanding reservations, this one's included, when it was planned
    left: float  # budget - settled - outstanding reservations, before this window
    cost_per_item: float
    cut: bool  # the day's money left did not cover the minimums


@dataclass
class DayResult:
    seed: int
    budget: float
    spent: float
    skipped: int
    items: int
    truth: float
    estimate: Estimate
    unweighted: float
    windows_short: int  # (window, stratum) pairs judged below min(min_items, traces)
    pairs: int
    strata_short: list[str]  # strata judged below their day's minimum
    spend_curve: list[tuple[float, float]] = field(default_factory=list)  # (hours after midnight, settled spend)
    windows: list[WindowTrace] = field(default_factory=list)

    @property
    def covered(self) -> bool:
        return self.estimate.lo <= self.truth <= self.estimate.hi


class SimulatedDay:
    """The state of one simulated day: the queue of sampled items, the books, and what was judged."""

    def __init__(self, seed: int, cfg: SimConfig, books: Books) -> None:
        self.rng = np.random.default_rng(seed)
        self.seed, self.cfg, self.books = seed, cfg, books
        self.world = World.build(cfg)
        self.clock = SimClock(DAY)
        self.windows = round(timedelta(days=1) / cfg.step)
        self.size = parse_size("1h" if cfg.window_minutes == 60 else f"{cfg.window_minutes}m")
        self.counts: list[tuple[np.ndarray, np.ndarray]] = []
        self.queue: list[tuple[datetime, int, str, int, float, float]] = []  # (when, seq, run, stratum, score, w)
        self.seq = itertools.count()
        self.pending: dict[str, int] = {}
        self.run_index: dict[str, int] = {}
        self.judged = np.zeros((self.windows, cfg.strata), dtype=int)
        self.minimum = np.zeros_like(self.judged)  # min(min_items, traces) per window and stratum
        self.scores: list[float] = []
        self.weights: list[float] = []
        self.population = [0, 0]  # passing traces, traces
        self.skipped = 0
        self.spend_curve: list[tuple[float, float]] = []
        self.traces: list[WindowTrace] = []

    def history(self) -> None:
        """The previous days' windows, as the ledger's window_strata would hold them."""
        step = self.cfg.step
        for d in range(self.cfg.history_days, 0, -1):
            factor = self.rng.lognormal(0, self.cfg.day_noise)
            for i in range(self.windows):
                start = DAY - timedelta(days=d) + i * step
                if start < DAY - step:  # the window that closes at midnight is planned today
                    self.books.record_seen(start, int(self.world.window(self.rng, start, factor, False)[0].sum()))

    def settle_until(self, until: datetime) -> None:
        """Judge the queued items due by ``until``, in time order; skip them for budget once the day's is spent."""
        day = DAY.date()
        while self.queue and self.queue[0][0] <= until:
            at, _, run_id, stratum, score, weight = heapq.heappop(self.queue)
            self.clock.at = at
            self.pending[run_id] -= 1
            if self.books.spent(day) >= self.cfg.budget_usd:
                self.skipped += 1
            else:
                cached = self.rng.random() < self.world.hit_rate(at)
                noise = self.rng.uniform(1 - self.cfg.cost_noise, 1 + self.cfg.cost_noise)
                self.books.settle(run_id, 0.0 if cached else self.cfg.cost_per_call * noise, cached, at)
                self.scores.append(score)
                self.weights.append(weight)
                self.judged[self.run_index[run_id], stratum] += 1
                self.spend_curve.append(((at - DAY).total_seconds() / 3600, self.books.spent(day)))
            if self.pending[run_id] == 0:
                self.books.finish(run_id)

    def window(self, index: int, factor: float, at: datetime | None = None) -> None:
        """Plan window ``index`` when it closes (or ``at``, a catch-up): reserve, sample, queue the sample."""
        cfg, step, day = self.cfg, self.cfg.step, DAY.date()
        start = DAY - step + index * step
        planned_at = start + step if at is None else at
        self.settle_until(planned_at)
        self.clock.at = planned_at
        counts, passes = self.counts[index]
        self.population[0] += int(passes.sum())
        self.population[1] += int(counts.sum())
        cost = cost_estimate(*self.books.recent_calls())
        day_end = DAY + timedelta(days=1)
        expected, remaining = expected_traffic(self.books.history(), start, start + step, day_end, step,
                                               ahead=ahead_of(self.size, start + step, day_end, timedelta(0)),
                                               judged=[t.start for t in self.traces])
        spent, reserved = self.books.spent(day), self.books.outstanding(day)
        strata = tuple(StratumPlanInput(f"s{i:02d}", float(n), cfg.min_items) for i, n in enumerate(counts))
        ahead = 0.0  # the rest of the day's minimums; not set aside on a guessed cost (no priced calls yet)
        if cfg.set_aside_minimums and cost.measured:
            ahead = minimums_ahead(strata, self.windows - 1 - index, remaining, cost.usd)
        decided = plan(PlanInput(
            now=self.clock.now(), day_start=DAY, day_end=DAY + timedelta(days=1), budget_usd=cfg.budget_usd,
            spent_usd=spent, reserved_usd=reserved, cost_per_item=cost.per_item,
            window_expected=expected, remaining_expected=remaining, strata=strata, remaining_minimums_usd=ahead))
        run_id = f"o-{start:%Y-%m-%dT%H%M}"
        self.run_index[run_id] = index
        self.books.reserve(run_id, day, decided.expected_cost_usd, self.clock.now())
        self.books.record_decision(self.clock.now(), start, decided)
        self.books.record_seen(start, int(counts.sum()))
        rates = [d.rate for d in decided.decisions]
        self.traces.append(WindowTrace(start, self.clock.now(), int(counts.sum()), expected, rates[0], rates[-1],
                                       decided.window_budget_usd, decided.expected_cost_usd,
                                       spent + reserved + decided.expected_cost_usd, decided.budget_left_usd,
                                       decided.cost_per_item, decided.minimums_cut))
        self.pending[run_id] = 0
        for stratum, (n, good, rate) in enumerate(zip(counts, passes, rates)):
            self.minimum[index, stratum] = min(cfg.min_items, int(n))
            k = int(self.rng.binomial(n, rate)) if rate > 0 else 0
            ones = int(self.rng.hypergeometric(good, n - good, k)) if k else 0
            for j, lag in enumerate(self.rng.uniform(0, cfg.lag_windows * step.total_seconds(), k)):
                heapq.heappush(self.queue, (self.clock.now() + timedelta(seconds=float(lag)), next(self.seq), run_id,
                                            stratum, 1.0 if j < ones else 0.0, 1 / rate))
            self.pending[run_id] += k
        if self.pending[run_id] == 0:
            self.books.finish(run_id)

    def run(self) -> DayResult:
        self.history()
        factor = self.rng.lognormal(0, self.cfg.day_noise)
        # The day's windows drawn first, from a stream of their own: a day with an outage sees the same traffic.
        world = np.random.default_rng([self.seed, 1])
        self.counts = [self.world.window(world, DAY - self.cfg.step + i * self.cfg.step, factor, True)
                       for i in range(self.windows)]
        down, back = self.cfg.outage or (0, 0)
        missed: list[int] = []
        for index in range(self.windows):
            closes = DAY + index * self.cfg.step
            if DAY + down * HOUR < closes <= DAY + back * HOUR:  # beat is down: nothing planned
                missed.append(index)
                continue
            for late in missed:  # beat is back: the missed windows first, oldest first
                self.window(late, factor, at=DAY + back * HOUR)
            missed = []
            self.window(index, factor)
        self.settle_until(datetime.max.replace(tzinfo=timezone.utc))
        found = estimate_mean(self.scores, self.weights, binary=True, df_from_weights=True)
        assert found is not None, "a day without a judged item"
        short = self.judged.sum(axis=0) < self.minimum.sum(axis=0)
        return DayResult(
            seed=self.seed, budget=self.cfg.budget_usd, spent=self.books.spent(DAY.date()), skipped=self.skipped,
            items=len(self.scores), truth=self.population[0] / self.population[1], estimate=found,
            unweighted=float(np.mean(self.scores)), windows_short=int((self.judged < self.minimum).sum()),
            pairs=int(self.judged.size), strata_short=[f"s{i:02d}" for i in np.flatnonzero(short)],
            spend_curve=self.spend_curve, windows=self.traces)


def simulate(seed: int, cfg: SimConfig = SimConfig(), books: Books | None = None) -> DayResult:
    """One simulated day through the controller (see the module's docstring); ``books`` default to memory."""
    return SimulatedDay(seed, cfg, books or MemoryBooks()).run()


def summarize(results: list[DayResult]) -> dict[str, Any]:
    ratio = np.array([r.spent / r.budget for r in results])
    return {
        "seeds": len(results),
        "spend_over_budget": {"mean": float(ratio.mean()), "min": float(ratio.min()), "max": float(ratio.max())},
        "within_5pct": int((np.abs(ratio - 1) <= 0.05).sum()),
        "planned_past_the_budget": sum(w.reserved > max(0.0, w.left) * (1 + 1e-9) + 1e-12
                                       for r in results for w in r.windows),
        "more_than_1pct_over": int((ratio > 1.01).sum()),
        "windows_with_minimums_cut": sum(w.cut for r in results for w in r.windows),
        "items_per_day": float(np.mean([r.items for r in results])),
        "skipped_for_budget": int(sum(r.skipped for r in results)),
        "strata_short_of_day_minimum": sum(len(r.strata_short) for r in results),
        "window_strata_short": f"{sum(r.windows_short for r in results)} of {sum(r.pairs for r in results)}",
        "covered": int(sum(r.covered for r in results)),
        "coverage": float(np.mean([r.covered for r in results])),
        "unweighted_bias": float(np.mean([r.unweighted - r.truth for r in results])),
        "weighted_bias": float(np.mean([r.estimate.mean - r.truth for r in results])),
        "mean_halfwidth": float(np.mean([(r.estimate.hi - r.estimate.lo) / 2 for r in results])),
    }


def caught_up(outage: list[DayResult], usual: list[DayResult], cfg: SimConfig) -> dict[str, Any]:
    """What the windows missed in the outage were given when caught up, over what they had on a usual day."""
    assert cfg.outage is not None
    down, back = DAY + cfg.outage[0] * HOUR, DAY + cfg.outage[1] * HOUR

    def given(day: DayResult) -> float:
        return sum(w.window_budget for w in day.windows if down < w.start + cfg.step <= back)

    ratio = np.array([given(o) / given(u) for o, u in zip(outage, usual, strict=True)])
    return {"mean": float(ratio.mean()), "min": float(ratio.min()), "max": float(ratio.max()),
            "within_5pct": int((np.abs(ratio - 1) <= 0.05).sum())}


def targets_met(summary: dict[str, Any]) -> bool:
    caught = summary.get("catch_up_given")
    return (summary["within_5pct"] == summary["seeds"] and summary["more_than_1pct_over"] == 0
            and summary["strata_short_of_day_minimum"] == 0 and summary["coverage"] >= 0.93
            and (caught is None or caught["within_5pct"] == summary["seeds"]))


def _hours(text: str) -> tuple[int, int]:
    try:
        down, back = (int(part) for part in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write two hours, e.g. 10-13") from None
    if not 0 <= down < back <= 23:
        raise argparse.ArgumentTypeError(f"{text!r}: the hours must be 0 <= FROM < TO <= 23")
    return down, back


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--window", type=int, default=60, choices=(15, 30, 60), help="window size in minutes")
    parser.add_argument("--budget", type=float, default=50.0, help="USD per day")
    parser.add_argument("--min-items", type=int, default=5, help="min_per_stratum, per window")
    parser.add_argument("--png", default="benchmarks/budget_sim.png", help="where the figure goes ('' for none)")
    parser.add_argument("--outage", type=_hours, default=None, metavar="FROM-TO",
                        help="beat down between these hours (e.g. 10-13), its windows caught up at TO")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    cfg = SimConfig(budget_usd=args.budget, window_minutes=args.window, min_items=args.min_items, outage=args.outage)
    from .machine import describe, in_loops, reference

    ref = reference()  # the machine's speed today: the simulation's seconds compare across days as loops
    began = time.perf_counter()
    results = [simulate(seed, cfg) for seed in range(args.seeds)]
    seconds = time.perf_counter() - began
    summary = {"config": asdict(cfg), **summarize(results), "seconds": round(seconds, 2), "reference": ref,
               "seconds_in_loops": round(in_loops(seconds, ref), 2)}
    if cfg.outage is not None:  # the same seeds without the outage: what the missed windows would have had
        usual = [simulate(seed, replace(cfg, outage=None)) for seed in range(args.seeds)]
        summary["catch_up_given"] = caught_up(results, usual, cfg)
    if args.png:
        from .budget_plot import draw

        draw(results, cfg, args.png)
        summary["png"] = args.png
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        from .budget_plot import report

        print(report(results, summary))
        print(f"{describe(ref)}; the simulation took {summary['seconds']:.1f} s = "
              f"{summary['seconds_in_loops']:.1f} loops")
    return 0 if targets_met(summary) else 1


if __name__ == "__main__":
    sys.exit(main())
