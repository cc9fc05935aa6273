"""What ``judgeq budget show`` and ``judgeq budget history`` print: the figures gathered, as tables or JSON.

The projection of a day's end is a straight line: what is spent so far,
plus what is reserved for runs in flight, plus the spending rate so far today
(spent ÷ time elapsed since 00:00 UTC) times the time left. Early in the day
it swings with every window; it is a guide, the controller paces by its own plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

from ledger.budget_rows import day_bounds, parse_scope
from ledger.models import BudgetChange, BudgetDecision
from ledger.store import Ledger

from .render import to_jsonable
from .console import console as _console
from .report_view import _f

OFFLINE_NOTE: Final = ("offline runs (judgeq submit, capped by --max-cost) are not counted against these budgets: "
                       "only online runs' rows are")
PROJECTION: Final = "spent + reserved + (spent ÷ time elapsed today) × time left today"


@dataclass(frozen=True)
class RateLine:
    """A sampling rate in force: set in the ledger (by the controller or a person), else the config's."""

    schedule: str
    judge: str
    stratum: str  # "*": every stratum without its own
    rate: float
    source: str  # "ledger" or "config"
    set_by: str = ""
    reason: str = ""
    updated_at: datetime | None = None


@dataclass(frozen=True)
class BudgetLine:
    """One budget and where its day stands."""

    scope: str
    judge: str | None
    schedule: str | None
    usd_per_day: float
    spent_usd: float
    reserved_usd: float
    projected_usd: float
    cache_hit_rate: float | None
    updated_at: datetime
    updated_by: str
    rates: tuple[RateLine, ...] = ()


@dataclass(frozen=True)
class BudgetReport:
    """The budgets of one UTC day, as of ``now``."""

    day: date
    now: datetime
    elapsed_h: float
    left_h: float
    budgets: tuple[BudgetLine, ...]
    config_problem: str | None = None  # judgeq.toml's schedules could not be read: config rates are not shown


def gather(ledger: Ledger, day: date, now: datetime, config: Path) -> BudgetReport:
    """The figures of every budget for ``day`` (today or a past day) as of ``now``."""
    start, end = day_bounds(day)
    clock = min(max(now, start), end)
    elapsed, left = (clock - start).total_seconds(), (end - clock).total_seconds()
    schedules, problem = schedules_of(config)
    lines = []
    for entry in ledger.budgets.entries():
        scope = parse_scope(entry.scope)
        spent = ledger.spend.spent(start, end, scope.judge, schedule=scope.schedule)
        reserved = ledger.budgets.outstanding_reservations(day.isoformat(), scope.judge, schedule=scope.schedule)
        pace = spent / elapsed * left if elapsed > 0 else 0.0
        lines.append(BudgetLine(
            scope=entry.scope, judge=scope.judge, schedule=scope.schedule, usd_per_day=entry.usd_per_day,
            spent_usd=spent, reserved_usd=reserved, projected_usd=spent + reserved + pace,
            cache_hit_rate=ledger.spend.cache_hit_rate(scope.judge, start, until=end, schedule=scope.schedule),
            updated_at=entry.updated_at, updated_by=entry.updated_by,
            rates=rates_in_force(ledger, schedules, scope.judge, scope.schedule)))
    return BudgetReport(day=day, now=now, elapsed_h=elapsed / 3600, left_h=left / 3600, budgets=tuple(lines),
                        config_problem=problem)


def schedules_of(config: Path) -> tuple[dict[str, Any], str | None]:
    """The config's online schedules, and why they could not be read (None: they could)."""
    from online.errors import OnlineError
    from online.schedules import load_schedules

    from judges.errors import JudgeConfigError

    try:
        return dict(load_schedules(config)), None
    except (OnlineError, JudgeConfigError) as exc:  # show what the ledger knows all the same
        return {}, str(exc)


def rates_in_force(ledger: Ledger, schedules: dict[str, Any], judge: str | None, schedule: str | None) -> tuple[RateLine, ...]:
    """The ledger's rates of the budget's judge (and schedule), then the config's where the ledger has none."""
    found = [RateLine(r.schedule, r.judge, r.stratum, r.rate, "ledger", r.set_by, r.reason, r.updated_at)
             for r in ledger.budgets.rates_in_force(judge, schedule)]
    steered = {(line.schedule, line.judge) for line in found}
    for name, chosen in sorted(schedules.items()):
        if schedule is not None and name != schedule:
            continue
        for judge_name in chosen.judges:
            if (judge is None or judge_name == judge) and (name, judge_name) not in steered:
                policy = chosen.policy
                found.append(RateLine(name, judge_name, "*", policy.rate, "config"))
                found.extend(RateLine(name, judge_name, s, r, "config") for s, r in sorted(policy.rates.items()))
    return tuple(found)


def status_json(report: BudgetReport) -> dict[str, Any]:
    """``budget show --json``."""
    start, end = day_bounds(report.day)
    return {"day": report.day.isoformat(), "now": report.now, "day_start": start, "day_end": end,
            "elapsed_h": report.elapsed_h, "left_h": report.left_h, "offline_counted": False, "offline_note": OFFLINE_NOTE, "projection": PROJECTION,
            "config_problem": report.config_problem, "budgets": to_jsonable(list(report.budgets))}


def print_status(report: BudgetReport) -> None:
    """``budget show``: a table of the budgets, one of the rates in force, and how to read them."""
    from rich.table import Table

    console = _console()
    if not report.budgets:
        console.print("no budgets set; set one with `judgeq budget set --judge J --usd-per-day 20` (or --global)")
    else:
        table = Table(title=f"budgets · {report.day.isoformat()} (UTC) · as of {report.now:%H:%M} UTC",
                      title_justify="left")
        for col in ("budget", "USD/day", "spent", "reserved", "projected", "of budget", "cache hits", "set by"):
            table.add_column(col, justify="left" if col in ("budget", "set by") else "right")
        for b in report.budgets:
            share = b.projected_usd / b.usd_per_day if b.usd_per_day > 0 else None
            over = b.spent_usd >= b.usd_per_day
            spent = f"[bold red]{b.spent_usd:.2f}[/bold red]" if over else f"{b.spent_usd:.2f}"
            table.add_row(b.scope, usd_text(b.usd_per_day), spent, f"{b.reserved_usd:.2f}", f"{b.projected_usd:.2f}",
                          "–" if share is None else f"{share:.0%}", _f(_pct(b.cache_hit_rate), ".0f"),
                          f"{b.updated_by}, {b.updated_at:%Y-%m-%d %H:%M}")
        console.print(table)
        _print_rates(console, report.budgets)
    console.print(f"spent and projected in USD; projected = {PROJECTION} "
                  f"({report.elapsed_h:.1f} h elapsed, {report.left_h:.1f} h left)")
    console.print(OFFLINE_NOTE)
    if report.config_problem:
        console.print(f"[yellow]the config's rates are not shown: {report.config_problem}[/yellow]")


def _print_rates(console: Any, budgets: Sequence[BudgetLine]) -> None:
    from rich.table import Table

    table = Table(title="rates in force (stratum * = every stratum without its own)", title_justify="left")
    for col in ("schedule", "judge", "stratum", "rate", "from", "why"):
        table.add_column(col, justify="right" if col == "rate" else "left")
    shown: set[tuple[str, str, str]] = set()
    for line in (rate for b in budgets for rate in b.rates):
        if (line.schedule, line.judge, line.stratum) in shown:
            continue
        shown.add((line.schedule, line.judge, line.stratum))
        why = "judgeq.toml" if line.source == "config" else f"{line.set_by}: {line.reason}".rstrip(": ")
        table.add_row(line.schedule, line.judge, line.stratum, f"{line.rate:.4g}", line.source, why)
    if shown:
        console.print(table)
    else:
        console.print("no rates in force for these budgets yet (no online schedule runs their judges)")


def _pct(rate: float | None) -> float | None:
    return None if rate is None else rate * 100


# -- history ----------------------------------------------------------------------


def history_entries(ledger: Ledger, *, limit: int, judge: str | None, day: str | None) -> list[dict[str, Any]]:
    """Budget changes and controller decisions as JSON-ready entries, newest first, ``limit`` of them."""
    changes = ledger.budgets.history(limit=limit if judge is None else 100_000)
    if judge is not None:
        changes = [c for c in changes if parse_scope(c.scope).judge == judge][:limit]
    decisions = ledger.budgets.decisions(day=day, limit=limit, judge=judge)
    entries = [change_json(c) for c in changes] + [_decision_json(d) for d in decisions]
    entries.sort(key=lambda e: (e["at"], e["id"]), reverse=True)
    return entries[:limit]


def change_json(change: Any) -> dict[str, Any]:
    """A budget change as JSON (``BudgetChange``)."""
    assert isinstance(change, BudgetChange)
    return {"kind": "change", "id": change.id, "at": change.at, "scope": change.scope, "old_usd": change.old_usd,
            "new_usd": change.new_usd, "who": change.who, "via": change.via, "note": change.note}


def _decision_json(d: BudgetDecision) -> dict[str, Any]:
    return {"kind": "decision", "id": d.id, "at": d.at, "day": d.day, "schedule": d.schedule, "judge": d.judge,
            "stratum": d.stratum, "window": d.window, "rate": d.rate, "expected_count": d.expected_count,
            "cost_per_item": d.cost_per_item, "budget_left": d.budget_left, "reserved_usd": d.reserved_usd,
            "reason": d.reason}


def change_text(change: Any) -> str:
    """One line for a budget change: scope, old -> new, who and how."""
    entry = change_json(change)
    from .render import printable

    return printable(f"budget {entry['scope']}: {_usd(entry['old_usd'])} -> {_usd(entry['new_usd'])} "
                     + _by(entry))


def _usd(amount: float | None) -> str:
    return "none" if amount is None else f"${usd_text(amount)}/day"


def usd_text(amount: float) -> str:
    """A budget as stored: cents at least, and as many more decimals as it has (0.045 is not echoed as 0.04).

    Up to 9 decimals; a float that needs more (a computed amount) is shown to 9.
    """
    for decimals in range(2, 10):
        text = f"{amount:,.{decimals}f}"
        if float(text.replace(",", "")) == amount:
            return text
    return text


def _by(entry: dict[str, Any]) -> str:
    note = f" ({entry['note']})" if entry["note"] else ""
    return f"by {entry['who']} via {entry['via']}{note}"


def print_history(entries: Sequence[dict[str, Any]]) -> None:
    """``budget history``: one row per change or decision, newest first."""
    from rich.table import Table

    from .render import cell

    console = _console()
    if not entries:
        console.print("no budget changes or decisions yet")
        return
    table = Table(title="budget history (newest first; times UTC)", title_justify="left")
    for col in ("at", "what", "of", "detail"):
        table.add_column(col)
    for e in entries:
        at = f"{e['at']:%Y-%m-%d %H:%M:%S}"
        if e["kind"] == "change":  # who, note and names are anyone's text: every cell goes through cell()
            table.add_row(at, "budget", cell(e["scope"]), cell(f"{_usd(e['old_usd'])} -> {_usd(e['new_usd'])} "
                                                               f"{_by(e)}"))
            continue
        window = f" for window {e['window']}" if e["window"] else ""
        table.add_row(at, "rate", cell(f"{e['schedule']}/{e['judge']}/{e['stratum']}"),
                      cell(f"{e['rate']:.4g}{window}: {e['expected_count']:,.0f} traces expected, "
                           f"${e['cost_per_item']:.4f}/item, ${e['budget_left']:,.2f} left, "
                           f"${e['reserved_usd']:,.2f} reserved; {e['reason']}"))
    console.print(table)
