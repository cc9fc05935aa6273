"""Beat's minute tick of the budget controller: plan every schedule's next window ahead, and say so.

For each ``[online.NAME]`` schedule and each of its judges with a budget,
the window now in progress is planned from recent traffic (its exact counts
come when it closes, and the window job plans it again on them): the rates
go to the ledger's ``sampling_rates`` (set by "budget"), which is what
``judgeq budget show`` reports as the rates in force, and every decision to
``budget_decisions``. A judge without a budget is not planned: the rates a
removed budget left behind are removed, and its config's rates apply again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from ..plan import prepare
from ..schedules import load_schedules
from ..windows import window_at
from .pacer import decisions, plan_window

if TYPE_CHECKING:
    from ledger.store import Ledger


#: ``sampling_rates.set_by`` of the rates the controller sets.
BUDGET: Final = "budget"


@dataclass(frozen=True)
class Ahead:
    """One (schedule, judge) planned ahead: the window, the rate (or the reason for none), money left."""

    schedule: str
    judge: str
    window: str
    rates: dict[str, float]
    budget_left: float
    reason: str

    def summary(self) -> str:
        rates = ", ".join(f"{s} {p:.3g}" for s, p in sorted(self.rates.items())) or "none"
        return f"{self.schedule}/{self.judge} {self.window}: rates {rates}; ${self.budget_left:.2f} left; {self.reason}"


def plan_ahead(config: Path | None, ledger: Ledger, now: datetime) -> list[Ahead]:
    """Plan each schedule's window in progress for every judge with a budget; write rates and decisions.

    A judge whose budget was removed gets its "budget" rates removed too, so the config's rates (or a
    person's) apply again from this tick: left in place, the last plan's rates (0 once a budget was
    spent) would steer its windows for good.
    """
    budgets = ledger.budgets.budgets()
    stale = {(r.schedule, r.judge) for r in ledger.budgets.rates_in_force() if r.set_by == BUDGET}
    if not budgets and not stale:
        return []
    planned = []
    for name, schedule in sorted(load_schedules(config).items()):
        plan = prepare(config, schedule, check_env=False)
        window = window_at(schedule.size, now)
        for judge in plan.judges:
            found = plan_window(ledger, schedule, judge, window, now)
            if found is None:
                if (name, judge.name) in stale:
                    ledger.windows.clear_sampling_rates(name, judge.name, set_by=BUDGET)
                continue
            result, money, cost = found
            rates = {d.stratum: (d.rate, f"planned ahead for {window.id}: {d.reason}"[:1000]) for d in result.decisions}
            ledger.budgets.set_planned_rates(name, judge.name, rates, decisions(result, money, cost, name, judge.name,
                                                                         window.id, now), set_by=BUDGET)
            planned.append(Ahead(name, judge.name, window.id, {d.stratum: d.rate for d in result.decisions},
                                 result.budget_left_usd, result.reason))
    return planned
