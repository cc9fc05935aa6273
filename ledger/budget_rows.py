"""What the budget methods of the Ledger take and give besides their tables: scopes, amounts, decisions, traffic.

A budget's scope is one string, the ``budgets`` table's key:

    global                       every online judge together
    judge:NAME                   one judge, over all online schedules
    schedule:NAME/judge:NAME     one judge within one online schedule

Schedule names cannot hold "/" (``online.schedules.NAME_PATTERN``), so the
first "/" ends the schedule's name; a judge's name is the rest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from ledger.errors import LedgerArgumentError
from ledger.models import MAX_USD_PER_DAY
from ledger.rows import check_rate

GLOBAL_SCOPE: Final = "global"
_JUDGE: Final = "judge:"
_SCHEDULE: Final = "schedule:"


@dataclass(frozen=True)
class Scope:
    """A budget's scope read back: the judge (None: global) and the schedule (None: every schedule)."""

    judge: str | None = None
    schedule: str | None = None

    @property
    def key(self) -> str:
        """The scope's key in the ``budgets`` table."""
        return budget_scope(self.judge, self.schedule)


def budget_scope(judge: str | None, schedule: str | None = None) -> str:
    """The scope key of a judge's budget (in a schedule), or the global one when ``judge`` is None."""
    if judge is None:
        if schedule is not None:
            raise LedgerArgumentError("a schedule's budget is a judge's: name the judge too")
        return GLOBAL_SCOPE
    if not judge:
        raise LedgerArgumentError("a budget's judge name is empty")
    if schedule is None:
        return f"{_JUDGE}{judge}"
    if not schedule or "/" in schedule:
        raise LedgerArgumentError(f"{schedule!r} is not a schedule name (non-empty, without '/')")
    return f"{_SCHEDULE}{schedule}/{_JUDGE}{judge}"


def parse_scope(scope: str) -> Scope:
    """The judge and schedule of a scope key; LedgerArgumentError for a key of no known form."""
    if scope == GLOBAL_SCOPE:
        return Scope()
    if scope.startswith(_JUDGE) and len(scope) > len(_JUDGE):
        return Scope(judge=scope[len(_JUDGE):])
    if scope.startswith(_SCHEDULE):
        schedule, sep, rest = scope[len(_SCHEDULE):].partition("/")
        if sep and schedule and rest.startswith(_JUDGE) and len(rest) > len(_JUDGE):
            return Scope(judge=rest[len(_JUDGE):], schedule=schedule)
    raise LedgerArgumentError(f"{scope[:200]!r} is not a budget scope; write 'global', 'judge:NAME' or "
                              "'schedule:NAME/judge:NAME'")


def _usd_problem(amount: object) -> str | None:
    """Why ``amount`` is not USD per day (or a reservation), or None: the rule :func:`check_usd` holds.

    A real number (not a bool, not text), finite, from 0 to MAX_USD_PER_DAY,
    without a minus sign (``-0.0`` is refused: it reads back as "$-0.00"). Whole
    numbers of any size are compared exactly, so ``10**400`` is out of range,
    not an OverflowError.
    """
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        return f"{type(amount).__name__}, not a number"
    if isinstance(amount, float) and not math.isfinite(amount):
        return "not a finite number"
    if amount < 0 or (isinstance(amount, float) and math.copysign(1.0, amount) < 0):
        return "negative"
    if amount > MAX_USD_PER_DAY:
        return f"more than the most a budget may be, {MAX_USD_PER_DAY:.0f} USD"
    return None


def shown_amount(value: object) -> str:
    """``value`` for a message, never its whole text (a 400-digit number, a long string)."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"(a whole number of about 10^{int(value.bit_length() * 0.30103)})"
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"


def check_usd(amount: object, what: str, refused: Callable[[str], Exception] = LedgerArgumentError,
              noun: str = "an amount of USD", advice: str = "") -> float:
    """``amount`` as a float if it is USD per day (or a reservation); else ``refused`` of "WHAT AMOUNT is not
    NOUN (why)ADVICE" is raised.

    The one check of a budget amount, whatever door it comes through: ``judgeq budget set`` and Flower's
    ``judgeq.budget_set`` (``online.budget.setting``: the user's value, OnlineConfigError with what to give
    instead, exit 2), then ``Ledger.budgets.set_budget`` and ``Ledger.budgets.reserve`` (LedgerArgumentError: a caller's
    bug). The database's CHECK holds the same range (``ledger.models.USD_RANGE``).
    """
    problem = _usd_problem(amount)
    if problem is not None:
        raise refused(f"{what} {shown_amount(amount)} is not {noun} ({problem}){advice}")
    assert isinstance(amount, int | float)
    return float(amount)


MAX_WHO_CHARS: Final = 80
MAX_NOTE_CHARS: Final = 500


def text_problem(text: object, limit: int) -> str | None:
    """What is wrong with ``text`` as a one-line name or note of at most ``limit`` characters, or None.

    Every character must be printable as Python defines it (``str.isprintable``:
    no C0/C1 control such as ESC, which starts a terminal escape sequence, no
    format character such as a bidirectional override or a zero-width space, no
    line break), so what ``budget history`` shows is what was typed.
    """
    if not isinstance(text, str):
        return f"is {type(text).__name__}, not text"
    if len(text) > limit:
        return f"is {len(text)} characters long, more than {limit}"
    if not text.isprintable():
        position, char = next((i, c) for i, c in enumerate(text, 1) if not c.isprintable())
        return (f"holds a control or invisible character (U+{ord(char):04X} at position {position}); "
                "write plain one-line text")
    return None


def check_limit(limit: int) -> int:
    """``limit`` if it is a whole number of at least 1 (rows to read); LedgerArgumentError otherwise."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise LedgerArgumentError(f"limit must be a whole number of at least 1, not {limit!r}")
    return limit


def utc_day(instant: datetime) -> tuple[str, datetime, datetime]:
    """The UTC day holding ``instant`` (tz-aware): its key (YYYY-MM-DD) and bounds [start, end)."""
    if instant.utcoffset() is None:
        raise LedgerArgumentError(f"{instant!r} has no time zone; give an aware datetime (UTC)")
    day = instant.astimezone(UTC).date()
    return day.isoformat(), *day_bounds(day)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC bounds [start, end) of a calendar day."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


@dataclass(frozen=True)
class DecisionIn:
    """One rate the budget controller chose, to be written to ``budget_decisions``; ``at`` None is now.

    ``budget_left`` may be negative (the day is overspent); every other amount is at least 0.
    """

    day: str
    schedule: str
    judge: str
    stratum: str
    rate: float
    expected_count: float
    cost_per_item: float
    budget_left: float
    reserved_usd: float
    reason: str = ""
    window: str | None = None
    at: datetime | None = None

    def __post_init__(self) -> None:
        where = f"the decision for {self.schedule}/{self.judge}/{self.stratum}"
        check_rate(self.rate, f"{where}: rate")
        for name in ("expected_count", "cost_per_item", "budget_left", "reserved_usd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise LedgerArgumentError(f"{where}: {name} must be a finite number, not {value!r}")
            if value < 0 and name != "budget_left":
                raise LedgerArgumentError(f"{where}: {name} must be 0 or more, not {value!r}")
        try:
            date.fromisoformat(self.day)
        except (TypeError, ValueError):
            raise LedgerArgumentError(f"{where}: day must be a date YYYY-MM-DD, not {self.day!r}") from None


@dataclass(frozen=True)
class WindowTraffic:
    """How many traces one closed window of a schedule held: the history the controller plans from.

    ``seen``: traces read in the window; ``eligible``: per stratum, those the
    schedule's filters let through (seen - filtered), i.e. what sampling chose from.
    ``start`` is the window's start when its run recorded it.
    """

    window: str
    start: datetime | None
    seen: int
    eligible: Mapping[str, int] = field(default_factory=dict)

    @property
    def eligible_total(self) -> int:
        """Traces the filters let through, over all strata."""
        return sum(self.eligible.values())
