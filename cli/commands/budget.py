"""``judgeq budget``: the cost owner's commands (set, unset, show, history) over the ledger's daily budgets.

A budget caps what online judging spends per UTC day, globally, per judge,
or per judge within one online schedule; the budget controller turns it into
sampling rates. Offline runs keep their own cap (``submit --max-cost``) and do
not count against a daily budget. Its group, ``budget_app``, is added
to the root app by ``cli.main``. Bad values (negative, NaN, infinite, an
unknown judge or schedule) exit 2 and change nothing.
"""

from __future__ import annotations

import getpass
import os
import pwd
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from cli.options import JsonOpt
from cli.state import settings_of
from scheduler.errors import UsageError

if TYPE_CHECKING:
    from ledger.store import Ledger

budget_app = typer.Typer(help="Daily USD budgets of online judging: set, unset, show, history.", no_args_is_help=True)

JudgeOpt = Annotated[Optional[str], typer.Option("--judge", help="The judge the budget caps (judgeq.toml or a "
                                                 "builtin).")]
ScheduleOpt = Annotated[Optional[str], typer.Option("--schedule", help="Only within this online schedule (an "
                                                    "[online.NAME] table, or an ad-hoc run's source).")]
GlobalOpt = Annotated[bool, typer.Option("--global", help="The cap of all online judging together.")]
NoteOpt = Annotated[str, typer.Option("--note", help="Why: kept in the history.")]


@budget_app.command("set")
def budget_set(
    ctx: typer.Context,
    usd_per_day: Annotated[float, typer.Option("--usd-per-day", help="USD per UTC day (0 stops online judging).")],
    judge: JudgeOpt = None,
    schedule: ScheduleOpt = None,
    everything: GlobalOpt = False,
    note: NoteOpt = "",
    json_out: JsonOpt = False,
) -> None:
    """Set a daily budget; the controller applies it at its next tick, and the change is kept in the history."""
    _scope(judge, schedule, everything)
    change = _set(ctx, judge, schedule, usd_per_day, note)
    _print_change(change, json_out)


@budget_app.command("unset")
def budget_unset(
    ctx: typer.Context,
    judge: JudgeOpt = None,
    schedule: ScheduleOpt = None,
    everything: GlobalOpt = False,
    note: NoteOpt = "",
    json_out: JsonOpt = False,
) -> None:
    """Remove a daily budget (its rates stay as last set until someone or the controller changes them)."""
    scope = _scope(judge, schedule, everything)
    change = _set(ctx, judge, schedule, None, note)
    if change is None:
        raise UsageError(f"there is no budget for {scope} to remove; see `judgeq budget show`")
    _print_change(change, json_out)


@budget_app.command("show")
def budget_show(
    ctx: typer.Context,
    day: Annotated[Optional[str], typer.Option("--day", help="A UTC day YYYY-MM-DD (default: today).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Each budget: USD/day, spent (online), reserved, projected end of day, the rates in force, cache hits."""
    from cli.views.budget import print_status, status_json
    from scheduler.budgets import gather

    now = datetime.now(UTC)
    chosen = _day(day, now)
    status = gather(_ledger(ctx), chosen, now, _config_path(ctx))
    if json_out:
        from cli.views.render import print_json

        print_json(status_json(status))
        return
    print_status(status)


@budget_app.command("history")
def budget_history(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="Entries to show, newest first.")] = 30,
    judge: Annotated[Optional[str], typer.Option("--judge", help="Only this judge's budgets and decisions.")] = None,
    day: Annotated[Optional[str], typer.Option("--day", help="Only the decisions of this budget day "
                                               "(YYYY-MM-DD).")] = None,
    changes: Annotated[bool, typer.Option("--changes", help="Only the budget changes people made.")] = False,
    decisions: Annotated[bool, typer.Option("--decisions", help="Only the controller's decisions.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Budget changes (who, when, through what, old -> new) and the controller's decisions, newest first."""
    from cli.views.budget import print_history
    from scheduler.budgets import history_entries

    if changes and decisions:
        raise UsageError("give --changes or --decisions, not both (without either, history shows both)")
    if day is not None:
        _parse_date(day)
    entries = history_entries(_ledger(ctx), limit=limit, judge=judge, day=day, changes_only=changes,
                              decisions_only=decisions)
    if json_out:
        from cli.views.render import print_json

        print_json(entries)
        return
    print_history(entries)


# -- checks ---------------------------------------------------------------------


def _scope(judge: Optional[str], schedule: Optional[str], everything: bool) -> str:
    """The scope key the flags name; UsageError unless they name exactly one budget."""
    from ledger.budget_rows import budget_scope
    from ledger.errors import LedgerArgumentError

    if everything and (judge is not None or schedule is not None):
        raise UsageError("--global is the cap of all judges together: give it alone, or --judge J [--schedule S]")
    if not everything and judge is None:
        raise UsageError("name the budget: --judge J (optionally with --schedule S), or --global")
    try:
        return budget_scope(judge or None, schedule) if not everything else budget_scope(None)
    except LedgerArgumentError as exc:
        raise UsageError(f"--judge/--schedule: {exc}") from None


def _set(ctx: typer.Context, judge: Optional[str], schedule: Optional[str], usd: Optional[float], note: str) -> Any:
    """Set (None: remove) the budget the flags name through the one checked path of Flower's task too
    (online/budget/setting.py: amount, names, who and note), as the OS account running the command;
    exit 2 for anything it refuses."""
    from online.budget.setting import set_checked

    return set_checked(_ledger(ctx), _config_path(ctx), judge=judge, schedule=schedule, usd=usd,
                       who=os_account(), via="cli", note=note, names=("--usd-per-day", "who", "--note"))


def _day(text: Optional[str], now: datetime) -> date:
    today = now.date()
    if text is None:
        return today
    chosen = _parse_date(text)
    if chosen > today:
        raise UsageError(f"--day {text} has not begun (today is {today.isoformat()} UTC)")
    return chosen


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--day {text!r} is not a day; write YYYY-MM-DD, e.g. 2026-12-01") from None


# -- plumbing -------------------------------------------------------------------


def _ledger(ctx: typer.Context) -> Ledger:
    return settings_of(ctx).ledger()


def _config_path(ctx: typer.Context) -> Path:
    return settings_of(ctx).config


def os_account() -> str:
    """Who a CLI change is recorded as: the OS account the process runs as (its uid's name), not a name the
    environment or a flag claims, so the history says who could make the change. A uid the password
    database does not know (a container's) falls back to the login name the environment gives."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        pass
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no USER/LOGNAME either
        return os.environ.get("HOSTNAME") or "unknown"


def _print_change(change: object, json_out: bool) -> None:
    from cli.views.budget import change_text
    from scheduler.budgets import change_json

    if json_out:
        from cli.views.render import print_json

        print_json(change_json(change))
        return
    print(change_text(change) + "; the controller applies it at its next tick")
