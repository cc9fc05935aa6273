"""The controller's I/O: the money that binds a schedule's judge, its inputs from the ledger, and its decisions.

Which budget binds ``(schedule, judge)``: the schedule's own for the judge
(``schedule:S/judge:J``) if set, else the judge's (``judge:J``: every
schedule of it); the global cap (``global``: every judge) further limits
what is left. No budget for the judge: the controller leaves its rates to the
config. Spend counts online runs only (offline ``--max-cost`` runs do not
draw on a daily budget); a day is a UTC day.

Reserve, then settle: :func:`plan_window` plans with the money left after
spend *and* outstanding reservations, and the window job reserves the plan's
expected cost before it sends anything (``Ledger.budgets.reserve``), so concurrent
windows and judges never together plan past the budget; the reservation
settles as the run's rows land (see ledger/budget.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ledger.budget_rows import DecisionIn, budget_scope, utc_day

from .controller import DEFAULT_COST_PER_ITEM_USD, PlanInput, RatePlan, StratumPlanInput, plan
from .traffic import ahead_of, cost_estimate, expected_traffic

if TYPE_CHECKING:
    from judges.record import Record
    from judges.resolved import ResolvedJudge
    from ledger.store import Ledger

    from ..schedules import Schedule
    from ..windows import Window

HISTORY = timedelta(days=8)  # recent windows looked at for the traffic by hour of day
COST_HISTORY = timedelta(days=7)  # recent verdicts looked at for the cost per item
PLANNING_LOCK = "judgeq budget planning"  # one lock for every plan that reserves: plans take milliseconds


@dataclass(frozen=True)
class Money:
    """The budget that binds, what is spent and reserved against it today, and its scope's key."""

    scope: str
    budget: float
    spent: float
    reserved: float

    @property
    def left(self) -> float:
        return self.budget - self.spent - self.reserved


def money_for(ledger: Ledger, schedule: str, judge: str, now: datetime,
              budgets: Mapping[str, float] | None = None) -> Money | None:
    """The money of ``judge`` in ``schedule`` today, or None when no budget applies to it (see the module)."""
    budgets = ledger.budgets.budgets() if budgets is None else budgets
    day, day_start, day_end = utc_day(now)
    own = budget_scope(judge, schedule)
    if own in budgets:
        money = Money(own, budgets[own], ledger.spend.spent(day_start, day_end, judge, schedule=schedule),
                      ledger.budgets.outstanding_reservations(day, judge, schedule=schedule))
    elif budget_scope(judge) in budgets:
        scope = budget_scope(judge)
        money = Money(scope, budgets[scope], ledger.spend.spent(day_start, day_end, judge),
                      ledger.budgets.outstanding_reservations(day, judge))
    else:
        return None
    cap = budgets.get(budget_scope(None))
    if cap is not None:
        left_globally = cap - ledger.spend.spent(day_start, day_end) - ledger.budgets.outstanding_reservations(day)
        if left_globally < money.left:  # the global cap binds: plan with what it leaves (nothing, once others
            # have spent past it: the budget planned with is then what this judge has spent and reserved)
            money = Money(money.scope + " (global cap)", money.spent + money.reserved + max(left_globally, 0.0),
                          money.spent, money.reserved)
    return money


def plan_window(ledger: Ledger, schedule: Schedule, judge: ResolvedJudge, window: Window, now: datetime,
                counts: Mapping[str, int] | None = None,
                examples: Sequence[Record] = ()) -> tuple[RatePlan, Money, float] | None:
    """The rates of ``window`` for ``judge``: the plan, the money it drew on and the cost per item; None without
    a budget.

    ``counts``: the window's traces per stratum (after the filters), exact once it is closed; None plans
    ahead from recent windows (beat's minute tick). ``examples``: a few of the window's records, for the
    first estimate of a judgment's cost from the judge's prices (judges/estimate.py) while none is priced.
    """
    money = money_for(ledger, schedule.name, judge.name, now)
    if money is None:
        return None
    _, day_start, day_end = utc_day(now)
    history = [(t.start, t.seen) for t in ledger.spend.recent_window_counts(schedule.name, judge.name, now - HISTORY)
               if t.start is not None]
    exact = None if counts is None else float(sum(counts.values()))
    # The rest of the day is the windows still to be judged today (traffic.py): not those of the next day,
    # nor those already judged, whenever this window itself ended.
    window_expected, remaining = expected_traffic(
        history, window.start, window.end, day_end, schedule.size, current=exact,
        ahead=ahead_of(schedule.size, window.end, day_end, schedule.lateness), judged=[start for start, _ in history])
    if counts is None:
        counts = _recent_strata(ledger, schedule.name, judge.name, now, window_expected)
    cost = cost_estimate(ledger.spend.cost_per_item(judge.name, now - COST_HISTORY, version=judge.version),
                         ledger.spend.cache_hit_rate(judge.name, now - COST_HISTORY))
    if not cost.measured:  # no priced call yet: the judge's configured prices, if it has them
        from judges.estimate import priced_guess  # judges.llm, only when a version has no priced call

        guess = priced_guess(judge, examples)
        if guess is not None:
            cost = replace(cost, usd=guess.usd, basis=guess.describe())
    policy = schedule.policy
    strata = tuple(StratumPlanInput(stratum=s, expected_count=float(n), min_items=policy.min_per_stratum,
                                    floor=policy.floor) for s, n in sorted(counts.items()))
    result = plan(PlanInput(now=now, day_start=day_start, day_end=day_end, budget_usd=money.budget,
                            spent_usd=money.spent, reserved_usd=max(0.0, money.reserved),
                            cost_per_item=cost.per_item, window_expected=window_expected,
                            remaining_expected=remaining, strata=strata,
                            default_cost_per_item=cost.usd if not cost.measured else DEFAULT_COST_PER_ITEM_USD,
                            default_basis=cost.basis))
    return result, money, cost.usd


def _recent_strata(ledger: Ledger, schedule: str, judge: str, now: datetime, expected: float) -> dict[str, int]:
    """The strata of recent windows, scaled to ``expected`` traces: a plan ahead has no counts of its own."""
    recent = ledger.spend.recent_window_counts(schedule, judge, now - HISTORY)[-24:]
    totals: dict[str, int] = {}
    for traffic in recent:
        for stratum, n in traffic.eligible.items():
            totals[stratum] = totals.get(stratum, 0) + n
    seen = sum(totals.values())
    if not seen:
        return {"all": round(expected)}
    return {s: round(expected * n / seen) for s, n in totals.items()}


def decisions(result: RatePlan, money: Money, cost: float, schedule: str, judge: str, window: str | None,
              now: datetime) -> list[DecisionIn]:
    """The plan as ``budget_decisions`` rows: what ``judgeq budget history`` shows."""
    day = utc_day(now)[0]
    return [DecisionIn(day=day, schedule=schedule, judge=judge, stratum=d.stratum, rate=d.rate,
                       expected_count=d.expected_items, cost_per_item=cost, budget_left=result.budget_left_usd,
                       reserved_usd=max(0.0, money.reserved), reason=f"{d.reason}; {result.reason}"[:2000],
                       window=window, at=now)
            for d in result.decisions]


#: (judge, run id, the window's traces per stratum after the filters, a few of its records) -> the stratum
#: rates, or None to leave the rates to the config (no budget applies).
Planner = Callable[["ResolvedJudge", str, Mapping[str, int], Sequence["Record"]], Mapping[str, float] | None]


def window_planner(ledger: Ledger, schedule: Schedule, window: Window, now: datetime) -> Planner:
    """The window job's planner: plan the window's rates on its exact counts, write the decisions down and
    reserve the plan's expected cost before anything is sent."""
    def planner(judge: ResolvedJudge, run_id: str, counts: Mapping[str, int],
                examples: Sequence[Record] = ()) -> Mapping[str, float] | None:
        with ledger.budgets.planning_lock(PLANNING_LOCK):  # read what is left and reserve against it, one plan at a time
            found = plan_window(ledger, schedule, judge, window, now, counts, examples)
            if found is None:
                return None
            result, money, cost = found
            ledger.budgets.reserve(run_id, utc_day(now)[0], judge.name, schedule.name,
                           sum(d.expected_cost for d in result.decisions))
        ledger.budgets.record_decisions(decisions(result, money, cost, schedule.name, judge.name, window.id, now))
        return {d.stratum: d.rate for d in result.decisions}

    return planner
