"""The budget controller's arithmetic: a day's USD budget turned into one window's sampling rates.

Pure: :func:`plan` is handed the clock's reading, the day's bounds, the money
spent and reserved, the cost of a judgment and the traffic, and returns the
rates with a reason for each. It reads no clock, no ledger, no config; the
task around it gathers the inputs (``online.budget.traffic``) and writes the
decisions down. The steps:

1. **Money left**: ``left = budget - spent - reserved``. Reserved is what
   enqueued windows (of every judge and schedule sharing the budget) expect
   to cost and have not settled yet, so money reserved for one window is not
   planned again for another. ``left <= 0``: every rate is 0 ("budget
   spent") until the day rolls over.
2. **Pacing**: the window's share of ``left`` is
   ``window_expected / (window_expected + remaining_expected)``: the traffic
   the recent days lead us to expect in this window and in the rest of the
   day. The share follows the *expected* traffic while the rates follow the
   window's *actual* counts (the strata's ``expected_count``, exact once the
   window is closed): a window with 10x its usual traffic gets its usual
   money at a tenth of the rate, and a quiet morning whose traces are all
   judged for less than its share leaves the rest in ``left``, for the
   later windows. The last window of the day (nothing remaining) gets all
   that is left.
3. **Minimums first**: each stratum's ``min_items`` m and ``floor`` rate,
   capped by the stratum's size, are granted before the share is spread,
   even past the share, as long as the day's money left still covers the
   minimums of the rest of the day's windows (``remaining_minimums_usd``,
   the caller's estimate): the night's minimums do not eat the last
   window's. When it cannot, every window gets the same fraction of its
   minimums ("cut"; ``RatePlan.minimums_cut``: the budget is too small for the
   minimums). A margin is added to m: sampling each trace with probability
   p yields a random number of items, so aiming at m would fall short in
   half the windows; aiming at ``(sqrt(m) + z/2)^2`` items (z =
   ``min_margin_z``, from the square root's normal approximation of a
   Poisson count, closer for small m than ``m + z sqrt(m)``) falls short in
   about 2 %.
4. **The rest at one rate**: the rest of the share buys items at one common
   rate for every stratum (strata whose minimum already asks for more keep
   it), so the sample is self-weighting wherever the minimums do not bind,
   and the weights 1/p vary only where a minimum or a spike made them. Not
   Neyman (variance) allocation: the variances would come from the small
   recent samples of each stratum, noisy enough to starve a stratum on a few
   unlucky scores, and an honest estimate matters more here than a slightly
   smaller interval. Rates are clamped to ``[floor, 1]``.

The reason strings are what ``judgeq budget history`` shows, so "why did the
rate drop at 14:00?" has an answer in dollars and traces.

Inputs are checked, and a bad one raises ``ValueError``: they come from the
ledger and the config, which validate what people type (a budget amount by
``ledger.budget_rows.check_usd``), so a bad value here is a bug in the caller,
not a user error: these checks hold the arithmetic's own preconditions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Final

#: The expected USD per sampled item when the judge version has no priced calls yet: conservative (about a
#: 2,000-token prompt and a short verdict on a frontier model), because guessing high only moves the money to
#: later windows (the measured cost takes over once rows arrive), while guessing low overspends the first window.
DEFAULT_COST_PER_ITEM_USD: Final = 0.01

#: The margin over a stratum's minimum m, as a normal quantile: (sqrt(m) + z/2)^2 items are aimed at, and about
#: 98 % of windows then judge at least m (m = 5: 10.5 items expected, 1.7 % of windows short; instead of half).
MIN_MARGIN_Z: Final = 2.0


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(what)


def _finite(x: float) -> bool:
    return math.isfinite(x) and x >= 0


@dataclass(frozen=True)
class StratumPlanInput:
    """One stratum of the next window: its traces before sampling (exact once the window is closed)."""

    stratum: str
    expected_count: float
    min_items: int = 0  # the policy's min_per_stratum
    floor: float = 0.0  # the least rate

    def __post_init__(self) -> None:
        _check(_finite(self.expected_count), f"stratum {self.stratum!r}: expected_count {self.expected_count!r}")
        _check(self.min_items >= 0, f"stratum {self.stratum!r}: min_items {self.min_items!r}")
        _check(0.0 <= self.floor <= 1.0, f"stratum {self.stratum!r}: floor {self.floor!r} is not a share")

    def guaranteed(self, z: float) -> float:
        """The items granted before the common rate: the minimum plus its margin, or the floor's, at most all."""
        m = float(self.min_items)
        wanted = (math.sqrt(m) + z / 2) ** 2 if m > 0 else 0.0
        return min(self.expected_count, max(wanted, self.floor * self.expected_count))


@dataclass(frozen=True)
class PlanInput:
    """Everything :func:`plan` needs; USD amounts are of the budget's day (``[day_start, day_end)``).

    ``window_expected`` is the traffic the history expects in the next window (it sets the window's share
    of the money); the strata's counts are the window's own (they set the rates). ``remaining_expected``
    is the traffic expected in the rest of the day after the next window. ``cost_per_item`` is the expected
    USD per sampled trace after the cache hit rate, None when unknown (then ``default_cost_per_item``).
    """

    now: datetime
    day_start: datetime
    day_end: datetime
    budget_usd: float
    spent_usd: float
    reserved_usd: float
    cost_per_item: float | None
    window_expected: float
    remaining_expected: float
    strata: tuple[StratumPlanInput, ...]
    default_cost_per_item: float = DEFAULT_COST_PER_ITEM_USD
    default_basis: str = "the default"  # what default_cost_per_item is: the flat default or the judge's prices
    min_margin_z: float = MIN_MARGIN_Z
    remaining_minimums_usd: float = 0.0  # what the minimums of the rest of the day's windows are expected to cost

    def __post_init__(self) -> None:
        _check(self.now.tzinfo is not None, f"now {self.now!r} has no time zone")
        _check(self.day_start < self.day_end, f"the day [{self.day_start}, {self.day_end}) is empty")
        for name in ("budget_usd", "spent_usd", "reserved_usd", "window_expected", "remaining_expected",
                     "min_margin_z", "remaining_minimums_usd"):
            _check(_finite(getattr(self, name)), f"{name} {getattr(self, name)!r} is not a finite amount >= 0")
        _check(self.cost_per_item is None or _finite(self.cost_per_item), f"cost_per_item {self.cost_per_item!r}")
        _check(_finite(self.default_cost_per_item) and self.default_cost_per_item > 0,
               f"default_cost_per_item {self.default_cost_per_item!r} must be > 0")
        names = [s.stratum for s in self.strata]
        _check(len(set(names)) == len(names), f"strata named twice: {sorted(names)}")


@dataclass(frozen=True)
class StratumDecision:
    """One stratum's rate for the next window, and what it is expected to cost."""

    stratum: str
    rate: float
    expected_items: float
    expected_cost: float
    reason: str


@dataclass(frozen=True)
class RatePlan:
    """The next window's rates (named apart from ``online.plan.Plan``, a schedule ready to judge). ``rate`` is the common rate (where no minimum binds); ``cost_per_item`` the
    USD per item the plan used (the default when the cost was unknown); ``minimums_cut`` says the day's
    money left could not pay every window's minimums. Reserve ``expected_cost_usd``."""

    window_budget_usd: float
    budget_left_usd: float
    decisions: tuple[StratumDecision, ...]
    reason: str
    rate: float = 0.0
    cost_per_item: float = 0.0
    minimums_cut: bool = False  # the day's money left did not cover the minimums: worth a warning

    @property
    def expected_cost_usd(self) -> float:
        return sum(d.expected_cost for d in self.decisions)

    @property
    def expected_items(self) -> float:
        return sum(d.expected_items for d in self.decisions)

    def rates(self) -> dict[str, float]:
        return {d.stratum: d.rate for d in self.decisions}


def common_rate(guaranteed: list[float], counts: list[float], items: float) -> float:
    """The one rate p in [0, 1] with ``sum(max(g_s, p * n_s)) == items`` (0 if the guarantees take it all).

    The total is piecewise linear and increasing in p with a kink at each
    stratum's own guaranteed rate ``g_s / n_s``: walk the kinks upwards,
    freeing each stratum to the common rate, until the total reaches ``items``.
    """
    kinks = sorted((g / n, g, n) for g, n in zip(guaranteed, counts) if n > 0)
    fixed, free = sum(g for _, g, _ in kinks), 0.0
    for at, g, n in kinks:
        if fixed + at * free >= items:
            return 0.0 if free == 0 else max(0.0, (items - fixed) / free)
        fixed -= g
        free += n
    return min(1.0, max(0.0, (items - fixed) / free)) if free > 0 else 0.0


def _usd(x: float) -> str:
    if x == 0:
        return "$0"
    sign = "-" if x < 0 else ""
    return f"{sign}${abs(x):,.2f}" if abs(x) >= 1 else f"{sign}${abs(x):,.4f}"


def _stratum_reason(s: StratumPlanInput, rate: float, p: float, guaranteed: float, cut: bool) -> str:
    if s.expected_count == 0:
        if rate > p:
            return f"no traces expected: floor rate {s.floor:g}"
        return "no traces expected; the minimums were cut to the day's money left" if cut else (
            "no traces expected: the common rate")
    if rate >= 1.0:
        if p >= 1.0:
            return f"all {s.expected_count:,.0f} traces: the window's money covers every trace"
        return f"all {s.expected_count:,.0f} traces: no more than its minimum or floor asks"
    if rate > p:
        if cut:
            return f"its minimum cut to the day's money left: {guaranteed:,.1f} items expected"
        if s.min_items and guaranteed > s.floor * s.expected_count:
            return (f"minimum {s.min_items} items (+{guaranteed - s.min_items:.1f} margin) "
                    f"of {s.expected_count:,.0f} traces")
        return f"floor rate {s.floor:g}"
    return "the common rate"


def _spent(inputs: PlanInput, cost: float, cost_note: str) -> RatePlan:
    left = inputs.budget_usd - inputs.spent_usd - inputs.reserved_usd
    decisions = tuple(StratumDecision(s.stratum, 0.0, 0.0, 0.0, "budget spent") for s in inputs.strata)
    reason = (f"budget spent: {_usd(inputs.budget_usd)} - {_usd(inputs.spent_usd)} spent - "
              f"{_usd(inputs.reserved_usd)} reserved leaves {_usd(left)}; rate 0 until the day ends at "
              f"{inputs.day_end.isoformat()}{cost_note}")
    return RatePlan(0.0, left, decisions, reason, 0.0, cost)


def plan(inputs: PlanInput) -> RatePlan:
    """The next window's rates per stratum: see the module's docstring."""
    cost_note = ""
    cost = inputs.cost_per_item
    if cost is None:
        cost = inputs.default_cost_per_item
        guess = (f"the default {_usd(cost)}" if inputs.default_basis == "the default"
                 else f"{_usd(cost)} {inputs.default_basis}")
        cost_note = f"; cost per item unknown (no priced calls yet): {guess}"
    left = inputs.budget_usd - inputs.spent_usd - inputs.reserved_usd
    if left <= 0:
        return _spent(inputs, cost, cost_note)
    total = sum(s.expected_count for s in inputs.strata)
    weight = inputs.window_expected if inputs.window_expected > 0 else total
    share = weight / (weight + inputs.remaining_expected) if weight + inputs.remaining_expected > 0 else 1.0
    guaranteed = [s.guaranteed(inputs.min_margin_z) for s in inputs.strata]
    counts = [s.expected_count for s in inputs.strata]
    minimums = sum(guaranteed) * cost
    window_budget = left * share
    cut = False
    if cost <= 0:  # free (a cost measured at 0): every trace
        p = 1.0
    elif minimums + inputs.remaining_minimums_usd > left:  # the day cannot pay every window's minimums
        cut = True
        scale = left / (minimums + inputs.remaining_minimums_usd)
        guaranteed = [g * scale for g in guaranteed]
        p, window_budget = 0.0, minimums * scale
    else:
        p = common_rate(guaranteed, counts, window_budget / cost)
    decisions = []
    for s, g in zip(inputs.strata, guaranteed):
        own = g / s.expected_count if s.expected_count > 0 else (0.0 if cut else s.floor)
        rate = min(1.0, max(p, own))
        n_items = rate * s.expected_count
        decisions.append(StratumDecision(s.stratum, rate, n_items, n_items * cost,
                                         _stratum_reason(s, rate, p, g, cut)))
    draft = RatePlan(window_budget, left, tuple(decisions), "", p, cost, cut)
    reason = _reason(inputs, draft, share, total, minimums) + cost_note
    return RatePlan(window_budget, left, draft.decisions, reason, p, cost, cut)


def _reason(inputs: PlanInput, result: RatePlan, share: float, total: float, minimums: float) -> str:
    """One line: where the money comes from, the window's share, and what it buys."""
    left_share = result.budget_left_usd * share
    text = (f"{_usd(result.budget_left_usd)} left of {_usd(inputs.budget_usd)} ({_usd(inputs.spent_usd)} spent, "
            f"{_usd(inputs.reserved_usd)} reserved); this window's share {share:.1%} "
            f"({inputs.window_expected:,.0f} of the {inputs.window_expected + inputs.remaining_expected:,.0f} traces "
            f"expected in the rest of the day) = {_usd(left_share)}")
    if minimums:
        text += f", its minimums {_usd(minimums)} first"
    text += (f"; at {_usd(result.cost_per_item)} per item: {result.expected_items:,.1f} items of {total:,.0f} "
             f"traces, common rate {result.rate:.3%}")
    if inputs.window_expected > 0 and total > 2 * inputs.window_expected:
        text += (f"; {total / inputs.window_expected:.1f}x the expected traffic: the window's usual money "
                 "at a lower rate")
    if result.rate >= 1.0 and result.expected_cost_usd < left_share:
        text += f"; every trace fits: {_usd(left_share - result.expected_cost_usd)} of the share stays for later"
    if result.minimums_cut:
        text += (f"; the day's money left does not cover the minimums (this window's and "
                 f"{_usd(inputs.remaining_minimums_usd)} for the rest of the day): each window's cut alike")
    elif result.expected_cost_usd > left_share * (1 + 1e-9):
        text += "; the minimums cost more than the share"
    return text
