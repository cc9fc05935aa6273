"""What the Budgets page shows, gathered into one dataclass: testable without Flower or a browser.

Per budget (global, judge, schedule × judge) the figures of ``judgeq budget
show`` (``scheduler.budgets``: spent today, reserved, projected end of
day, the rates in force with who set them, the cache hit rate), and a chart of
today's spend by hour against the budget line: the controller's pacing, seen.
The chart is geometry only (numbers the template draws as inline SVG), so
every text on the page goes through the template's escaping.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from ledger.budget_rows import day_bounds

from ..budgets import BudgetLine, BudgetReport, gather, schedules_of, usd_text
from . import reads

if TYPE_CHECKING:
    from ledger.models import BudgetChange, BudgetDecision
    from ledger.store import Ledger

#: The chart's size in SVG units, and its margins (left for the USD labels, bottom for the hours).
WIDTH: Final = 640
HEIGHT: Final = 220
LEFT: Final = 64
RIGHT: Final = 16
TOP: Final = 14
BOTTOM: Final = 26


@dataclass(frozen=True)
class Bar:
    """One hour's spend, as a bar of the chart."""

    x: float
    y: float
    width: float
    height: float
    hour: int
    usd: float


@dataclass(frozen=True)
class Tick:
    """A labelled position on an axis."""

    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    """Today's spend by hour against the budget, in SVG units (y grows downwards).

    ``spent`` is the running total at the end of each hour so far (and now);
    ``pace`` the even pace from 0 at midnight to the budget at the day's end,
    a guide (the controller paces by the traffic each hour brings); ``ahead``
    runs from what is spent and reserved now to the projected end of day.
    """

    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    bars: tuple[Bar, ...]
    spent: str  # polyline points
    pace: str
    ahead: str
    budget_y: float
    now_x: float
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]


@dataclass(frozen=True)
class ScopeView:
    """One budget's figures and its chart."""

    line: BudgetLine
    chart: Chart
    hourly_usd: tuple[float, ...]

    @property
    def share(self) -> float | None:
        """The projected end of day as a share of the budget (None for a budget of 0)."""
        return self.line.projected_usd / self.line.usd_per_day if self.line.usd_per_day > 0 else None


@dataclass(frozen=True)
class BudgetsPage:
    """Everything the Budgets page shows, as of ``report.now``."""

    report: BudgetReport
    scopes: tuple[ScopeView, ...]
    changes: tuple[BudgetChange, ...]
    decisions: tuple[BudgetDecision, ...]
    judges: tuple[str, ...]  # the config's, offered by the form
    schedules: tuple[str, ...]


def gather_page(ledger: Ledger, config: Path, now: datetime, *, changes: int = 30,
                decisions: int = 20) -> BudgetsPage:
    """The page's figures for today (UTC) as of ``now``: every budget, the newest changes and decisions."""
    report = gather(ledger, now.date(), now, config)
    start, _ = day_bounds(report.day)
    hours = min(24, math.ceil(report.elapsed_h)) if report.elapsed_h > 0 else 0
    scopes = []
    for line in report.budgets:
        hourly = reads.hourly_spend(ledger, start, hours, line.judge, line.schedule)
        scopes.append(ScopeView(line, chart(line, hourly, report.elapsed_h), tuple(hourly)))
    schedules, _ = schedules_of(config)
    return BudgetsPage(report=report, scopes=tuple(scopes), changes=tuple(reads.budget_changes(ledger, changes)),
                       decisions=tuple(reads.recent_decisions(ledger, decisions)), judges=judge_names(config),
                       schedules=tuple(sorted(schedules)))


def judge_names(config: Path) -> tuple[str, ...]:
    """The judges ``judgeq.toml`` configures and the builtins (none when the config cannot be read)."""
    from judges.config import load_config
    from judges.errors import JudgeConfigError

    try:
        return tuple(load_config(config).names())
    except JudgeConfigError:
        return ()


def chart(line: BudgetLine, hourly: list[float], elapsed_h: float) -> Chart:
    """The chart of one budget's day: ``hourly`` spend (hour 0 first), ``elapsed_h`` hours into the day."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    elapsed_h = min(max(elapsed_h, 0.0), 24.0)
    running = [sum(hourly[:h + 1]) for h in range(len(hourly))]
    top_usd = _nice_top(max([line.usd_per_day, line.projected_usd, line.spent_usd + line.reserved_usd,
                             *running, *hourly]))

    def x(hour: float) -> float:
        return round(LEFT + plot_w * hour / 24, 2)

    def y(usd: float) -> float:
        return round(TOP + plot_h * (1 - usd / top_usd), 2)

    bars = tuple(Bar(x=x(h) + 1, y=y(usd), width=round(plot_w / 24 - 2, 2), height=round(y(0) - y(usd), 2), hour=h,
                     usd=usd) for h, usd in enumerate(hourly))
    points = [(0.0, 0.0)] + [(min(h + 1, elapsed_h), total) for h, total in enumerate(running)]
    held = line.spent_usd + line.reserved_usd
    return Chart(
        width=WIDTH, height=HEIGHT, left=LEFT, right=WIDTH - RIGHT, top=TOP, bottom=y(0), bars=bars,
        spent=_points((x(h), y(usd)) for h, usd in points),
        pace=_points([(x(0), y(0)), (x(24), y(line.usd_per_day))]),
        ahead=_points([(x(elapsed_h), y(held)), (x(24), y(line.projected_usd))]),
        budget_y=y(line.usd_per_day), now_x=x(elapsed_h),
        x_ticks=tuple(Tick(x(h), f"{h:02d}:00") for h in (0, 6, 12, 18, 24)),
        y_ticks=tuple(Tick(y(top_usd * k / 4), f"${usd_text(top_usd * k / 4)}") for k in range(5)))


def _nice_top(usd: float) -> float:
    """The axis' top: the next of 1, 2, 2.5, 5 times a power of ten at or above ``usd`` (1 for nothing)."""
    if not math.isfinite(usd) or usd <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(usd))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= usd)


def _points(pairs: Iterable[tuple[float, float]]) -> str:
    return " ".join(f"{px:g},{py:g}" for px, py in pairs)
