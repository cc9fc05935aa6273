"""Changing a budget, checked: the one path of ``judgeq budget set`` and of Flower's ``judgeq.budget_set`` task.

The amount is checked by the ledger's one check (``ledger.budget_rows.check_usd``:
a finite number of USD from 0 to 1e12, no minus sign); ``who`` and ``note`` are
one line of printable text (no terminal escape sequences, no invisible
characters; ``text_problem``), at most 80 and 500 characters; the judge must be
one judgeq.toml configures (or a builtin) and the schedule, if named, one that
runs it. Anything else raises OnlineConfigError and changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.budget_rows import MAX_NOTE_CHARS, MAX_WHO_CHARS, budget_scope, check_usd, text_problem
from ledger.models import MAX_USD_PER_DAY
from ledger.errors import LedgerArgumentError

from ..errors import OnlineConfigError

if TYPE_CHECKING:
    from ledger.models import BudgetChange
    from ledger.store import Ledger


def check_text(who: Any, note: Any, names: tuple[str, str] = ("who", "note")) -> None:
    """OnlineConfigError unless ``who`` (not blank) and ``note`` are one line of printable text within bounds."""
    for name, value, limit in ((names[0], who, MAX_WHO_CHARS), (names[1], note, MAX_NOTE_CHARS)):
        problem = text_problem(value, limit)
        if problem is not None:
            raise OnlineConfigError(f"{name} {problem}")
    if not who.strip():
        raise OnlineConfigError(f"{names[0]} is blank; name who makes the change")


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
                who: Any, via: str, note: Any = "", names: tuple[str, str, str] = ("usd_per_day", "who", "note"),
                ) -> BudgetChange | None:
    """Set (or, with ``usd`` None, remove) the budget of ``judge`` [in ``schedule``], or the global cap when
    ``judge`` is None; every value checked first (``names`` name the values in messages: keys or flags)."""
    advice = f"; give a number of USD per day from 0 to {MAX_USD_PER_DAY:.0f}, e.g. 20"
    amount = None if usd is None else check_usd(usd, names[0], OnlineConfigError, "a budget", advice)
    check_text(who, note, names[1:])
    if judge is not None and not isinstance(judge, str) or schedule is not None and not isinstance(schedule, str):
        raise OnlineConfigError("judge and schedule are names (text)")
    if judge is not None:
        check_names(config, judge, schedule)
    try:
        scope = budget_scope(judge, schedule)
    except LedgerArgumentError as exc:
        raise OnlineConfigError(str(exc)) from None
    return ledger.budgets.set_budget(scope, amount, who=who, via=via, note=note)
