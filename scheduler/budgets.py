"""The figures of ``judgeq budget show`` and ``judgeq budget history``, gathered from the ledger and the config.

The projection of a day's end is a straight line: what is spent so far,
plus what is reserved for runs in flight, plus the spending rate so far today
(spent ÷ time elapsed since 00:00 UTC) times the time left. Early in the day
it swings with every window; it is a guide, the controller paces by its own plan.
The exporter (``scheduler.metrics``) reads the same figures; the tables and
JSON the commands print are ``cli.views.budget``.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ledger.budget_rows import day_bounds, parse_scope
from ledger.models import BudgetChange, BudgetDecision
from ledger.store import Ledger


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


# -- history ----------------------------------------------------------------------


def history_entries(ledger: Ledger, *, limit: int, judge: str | None, day: str | None,
                    changes_only: bool = False, decisions_only: bool = False) -> list[dict[str, Any]]:
    """Budget changes and controller decisions as JSON-ready entries, newest first, ``limit`` of them
    (``changes_only``: the changes people made alone; ``decisions_only``: the controller's alone)."""
    changes = [] if decisions_only else ledger.budgets.history(limit=limit if judge is None else 100_000)
    if judge is not None:
        changes = [c for c in changes if parse_scope(c.scope).judge == judge][:limit]
    decisions = [] if changes_only else ledger.budgets.decisions(day=day, limit=limit, judge=judge)
    entries = [change_json(c) for c in changes] + [_decision_json(d) for d in decisions]
    entries.sort(key=lambda e: (e["at"], e["id"]), reverse=True)
    return entries[:limit]


def change_json(change: Any) -> dict[str, Any]:
    """A budget change as JSON (``BudgetChange``)."""
    assert isinstance(change, BudgetChange)
    return {"kind": "change", "id": change.id, "at": change.at, "scope": change.scope, "old_usd": change.old_usd,
            "new_usd": change.new_usd, "who": change.who, "via": change.via, "note": change.note}


def daily_usd(amount: float | None, absent: str = "none") -> str:
    """A budget amount as people read it (``$20.00/day``); ``absent`` when there is none."""
    return absent if amount is None else f"${usd_text(amount)}/day"


def change_words(entry: Mapping[str, Any], *, removed: str = "none", note: bool = True) -> str:
    """A change (``change_json``) in words: ``old -> new by WHO via VIA (note)``; ``removed`` names a removed
    budget's new amount. What ``judgeq budget`` and Flower's Budgets page both say of a change."""
    said = f" ({entry['note']})" if note and entry["note"] else ""
    return (f"{daily_usd(entry['old_usd'])} -> {daily_usd(entry['new_usd'], removed)} "
            f"by {entry['who']} via {entry['via']}{said}")


def _decision_json(d: BudgetDecision) -> dict[str, Any]:
    return {"kind": "decision", "id": d.id, "at": d.at, "day": d.day, "schedule": d.schedule, "judge": d.judge,
            "stratum": d.stratum, "window": d.window, "rate": d.rate, "expected_count": d.expected_count,
            "cost_per_item": d.cost_per_item, "budget_left": d.budget_left, "reserved_usd": d.reserved_usd,
            "reason": d.reason}


def usd_text(amount: float) -> str:
    """A budget as stored: cents at least, and as many more decimals as it has (0.045 is not echoed as 0.04).

    Up to 9 decimals; a float that needs more (a computed amount) is shown to 9.
    """
    for decimals in range(2, 10):
        text = f"{amount:,.{decimals}f}"
        if float(text.replace(",", "")) == amount:
            return text
    return text
