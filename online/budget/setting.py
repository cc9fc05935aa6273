"""Changing a budget, checked: the one path of ``judgeq budget set`` and of Flower's ``judgeq.budget_set`` task.

The amount must be a finite number of USD from 0 up; the judge must be one
judgeq.toml configures (or a builtin) and the schedule, if named, one that
runs it. Anything else raises OnlineConfigError and changes nothing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.budget_rows import budget_scope
from ledger.errors import LedgerArgumentError

from ..errors import OnlineConfigError

if TYPE_CHECKING:
    from ledger.models import BudgetChange
    from ledger.store import Ledger


def check_amount(value: Any) -> float | None:
    """``value`` as USD per day (None: remove the budget); OnlineConfigError for anything not a finite amount >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise OnlineConfigError(f"usd_per_day {value!r:.40} is not an amount: give a number of USD from 0 up, "
                                "e.g. 20")
    return float(value)


def check_names(config: Path | None, judge: str, schedule: str | None) -> None:
    """OnlineConfigError unless ``judge`` is configured or a builtin and ``schedule`` (if given) runs it."""
    from judges.config import load_config

    from ..schedules import load_schedules
    from ..sources.base import load_sources

    where = str(config or "judgeq.toml")
    judges = load_config(config).names()
    if judge not in judges:
        raise OnlineConfigError(f"unknown judge {judge!r:.80}: not a [judges.{judge:.80}] table of {where} nor a "
                                f"builtin (known: {', '.join(judges)}); see `judgeq judges`")
    if schedule is None:
        return
    schedules = load_schedules(config)
    if schedule in schedules:
        if judge not in schedules[schedule].judges:
            raise OnlineConfigError(f"schedule {schedule!r} does not run judge {judge!r} (its judges: "
                                    f"{', '.join(schedules[schedule].judges)}); fix the judge, or add it to "
                                    f"[online.{schedule}] judges in {where}")
        return
    if schedule not in load_sources(config):  # `judgeq online --source S` runs are named after S
        raise OnlineConfigError(f"unknown schedule {schedule!r:.80}: no [online.{schedule:.80}] (nor [sources."
                                f"{schedule:.80}]) table in {where} (schedules: {', '.join(sorted(schedules)) or 'none'})")


def set_checked(ledger: Ledger, config: Path | None, *, judge: str | None, schedule: str | None, usd: Any,
                who: str, via: str, note: str = "") -> BudgetChange | None:
    """Set (or, with ``usd`` None, remove) the budget of ``judge`` [in ``schedule``], or the global cap when
    ``judge`` is None; every value checked first."""
    amount = check_amount(usd)
    if judge is not None and not isinstance(judge, str) or schedule is not None and not isinstance(schedule, str):
        raise OnlineConfigError("judge and schedule are names (text)")
    if judge is not None:
        check_names(config, judge, schedule)
    try:
        scope = budget_scope(judge, schedule)
    except LedgerArgumentError as exc:
        raise OnlineConfigError(str(exc)) from None
    return ledger.set_budget(scope, amount, who=who, via=via, note=note)
