"""Every ledger read and write of Flower's Budgets page, in one place.

The page reads the ledger only through these functions (and the figures
``scheduler.budgets.gather`` reads for ``judgeq budget show``), so a change
of the ledger's interface is a change here alone. They block: the page calls
them in Flower's thread pool, never on its event loop.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledger.models import BudgetChange, BudgetDecision
    from ledger.store import Ledger


def hourly_spend(ledger: Ledger, day_start: datetime, hours: int, judge: str | None,
                 schedule: str | None) -> list[float]:
    """USD spent in each of the day's first ``hours`` hours by the budget's judge (None: every judge) [in its
    schedule], online runs only: the figure the budget counts (``Ledger.spend.spent``), an hour at a time."""
    return [ledger.spend.spent(day_start + timedelta(hours=h), day_start + timedelta(hours=h + 1), judge,
                         schedule=schedule) for h in range(hours)]


def budget_changes(ledger: Ledger, limit: int) -> list[BudgetChange]:
    """The newest ``limit`` budget changes (``budget_history``), newest first."""
    return ledger.budgets.history(limit=limit)


def recent_decisions(ledger: Ledger, limit: int) -> list[BudgetDecision]:
    """The controller's newest ``limit`` decisions, newest first."""
    return ledger.budgets.decisions(limit=limit)


def set_budget(ledger: Ledger, config: Path | None, *, judge: str | None, schedule: str | None, usd: Any,
               who: str, note: str) -> BudgetChange | None:
    """Set (``usd`` None: remove) a budget through the one checked path of ``judgeq budget set``
    (``online.budget.setting.set_checked``), as made through Flower by ``who``."""
    from online.budget.setting import set_checked

    return set_checked(ledger, config, judge=judge, schedule=schedule, usd=usd, who=who, via="flower", note=note,
                       names=("USD per day", "who", "note"))
