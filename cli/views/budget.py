"""What ``judgeq budget show``, ``history`` and ``set`` print: the figures of ``scheduler.budgets``, as tables or JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from ledger.budget_rows import day_bounds
from scheduler.budgets import BudgetLine, BudgetReport, change_json, change_words, usd_text

from .console import console as _console
from .render import to_jsonable
from .report import _f

OFFLINE_NOTE: Final = ("offline runs (judgeq submit, capped by --max-cost) are not counted against these budgets: "
                       "only online runs' rows are")
PROJECTION: Final = "spent + reserved + (spent ÷ time elapsed today) × time left today"


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


def change_text(change: Any) -> str:
    """One line for a budget change: scope, old -> new, who and how."""
    entry = change_json(change)
    from .render import printable

    return printable(f"budget {entry['scope']}: {change_words(entry)}")


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
            table.add_row(at, "budget", cell(e["scope"]), cell(change_words(e)))
            continue
        window = f" for window {e['window']}" if e["window"] else ""
        table.add_row(at, "rate", cell(f"{e['schedule']}/{e['judge']}/{e['stratum']}"),
                      cell(f"{e['rate']:.4g}{window}: {e['expected_count']:,.0f} traces expected, "
                           f"${e['cost_per_item']:.4f}/item, ${e['budget_left']:,.2f} left, "
                           f"${e['reserved_usd']:,.2f} reserved; {e['reason']}"))
    console.print(table)
