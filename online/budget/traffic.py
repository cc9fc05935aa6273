"""The controller's two estimates: how many traces the day still holds, and what a sampled trace costs.

Both are pure functions of what the ledger already records: the windows'
``seen`` counts (``window_strata``) and the recent scored rows of the judge
version (their ``cost_usd`` and whether they were cache hits).

**Traffic** follows the hour of day: the traces per second seen in each hour
of the day on the previous days (the mean over the windows that were
judged then: a window that was not judged is unknown, not zero), integrated
over the next window and over the rest of the day. An hour the previous
days never saw, or every hour when there are no previous days (a schedule's
first day), gets the recent average rate (every window given); with no
history at all, the window being planned (``current``) stands for the rest
of the day, so a new schedule does not spend the whole day's money on its
first window. Windows of a day or longer have no hour of day: they get the
recent average.

**Which traffic draws on today's money**: the windows judged today. A
window closes ``lateness`` after its end and is judged then, on the day it
closes, so the windows still ahead of the one planned are those of the
schedule's grid that start at its end (or at the day's start, when the
planned window is of an earlier day: a late run, a catch-up after midnight
or a backfill) and close before the day ends (:func:`ahead_of`), less those
already judged (a window judged late has later windows done before it). The
window that closes at midnight is the next day's first: a daily window under
a daily budget has nothing ahead of it and gets the whole day's money left.
A catch-up after an outage plans its missed windows oldest first, each with
the others still ahead of it, so together they get what those hours would
have had.

**The minimums still ahead** (``PlanInput.remaining_minimums_usd``): the
windows left in the day, each assumed to hold the traffic left spread
evenly, in the planned window's stratum shares, each stratum granted its
minimum (with the margin) or all of its traces if fewer.

**Cost per sampled item** is the mean cost of a call (rows that were not
cache hits) times the share of calls that miss the cache. The hit rate used
is capped at :data:`MAX_HIT_RATE`, so a cache that has hit every recent call
does not make judgments look free (rate 1, nothing reserved) the moment it
stops hitting.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from ..windows import Size
from .controller import DEFAULT_COST_PER_ITEM_USD, MIN_MARGIN_Z, StratumPlanInput

#: The highest cache hit rate the cost estimate believes.
MAX_HIT_RATE: Final = 0.9

HOUR: Final = timedelta(hours=1)
DAY: Final = timedelta(days=1)


def _rate_profile(history: list[tuple[datetime, float]], step: timedelta,
                  day_start: datetime) -> tuple[dict[int, float], float | None]:
    """(traces per second by hour of day over the previous days, the mean traces per second of every window)."""
    seconds = step.total_seconds()
    by_hour: dict[int, list[float]] = defaultdict(list)
    every: list[float] = []
    for start, seen in history:
        rate = seen / seconds
        every.append(rate)
        if start < day_start and step <= HOUR:
            by_hour[start.hour].append(rate)
    profile = {hour: sum(rates) / len(rates) for hour, rates in by_hour.items()}
    return profile, (sum(every) / len(every) if every else None)


def _integrate(profile: dict[int, float], average: float, start: datetime, end: datetime) -> float:
    """Traces expected in ``[start, end)``: the hourly rates times the seconds of each hour in the span."""
    total, at = 0.0, start
    while at < end:
        next_hour = at.replace(minute=0, second=0, microsecond=0) + HOUR
        stop = min(next_hour, end)
        total += profile.get(at.hour, average) * (stop - at).total_seconds()
        at = stop
    return total


def ahead_of(size: Size, window_end: datetime, day_end: datetime, lateness: timedelta) -> tuple[datetime, datetime]:
    """The span of the windows still to be judged on the day that ends at ``day_end``, after the window
    that ends at ``window_end``: from that end (or the day's start, if later) to the end of the last window
    of ``size`` that closes (``lateness`` after its end) before the day ends. Empty when start >= end.
    """
    last = size.floor(day_end - lateness - timedelta(microseconds=1))  # the window closing at or after day_end
    return max(window_end, day_end - DAY), last


def expected_traffic(history: Iterable[tuple[datetime, float]], window_start: datetime, window_end: datetime,
                     day_end: datetime, size: Size | timedelta, *, current: float | None = None,
                     ahead: tuple[datetime, datetime] | None = None,
                     judged: Iterable[datetime] = ()) -> tuple[float, float]:
    """(traces expected in ``[window_start, window_end)``, traces expected in the rest of the day).

    ``history``: recent windows of this schedule as (window start, traces seen), of length ``size``
    (UTC datetimes). ``day_end``: the end of the budget's day (the day is the 24 hours before it).
    ``current``: the planned window's own count, used only when there is no history. ``ahead``: the span
    whose traffic is the rest of the day (:func:`ahead_of`; default ``[window_end, day_end)``), less the
    windows of ``size`` that start at an instant of ``judged`` (windows already judged).
    """
    step = size.step if isinstance(size, Size) else size
    if step <= timedelta(0):
        raise ValueError(f"window size {step} must be positive")
    windows = list(history)
    profile, average = _rate_profile(windows, step, day_end - DAY)
    if average is None:
        if current is None:
            return 0.0, 0.0
        average = current / (window_end - window_start).total_seconds()
    window = _integrate(profile, average, window_start, window_end)
    begin, end = ahead if ahead is not None else (window_end, day_end)
    if begin >= end:
        return window, 0.0
    remaining = _integrate(profile, average, begin, end)
    for start in set(judged):
        if begin <= start and start + step <= end:
            remaining -= _integrate(profile, average, start, start + step)
    return window, max(0.0, remaining)


@dataclass(frozen=True)
class CostEstimate:
    """Expected USD per sampled item, and what it rests on.

    ``measured`` is False when no call has been priced yet: ``usd`` is then
    the stand-in (``basis`` says which: the flat default, or the judge's
    configured prices times its prompt, judges/estimate.py), and ``per_item``
    (what ``PlanInput.cost_per_item`` takes) is None so that the plan says so
    in its reason.
    """

    usd: float
    measured: bool
    mean_cost_of_calls: float | None
    hit_rate: float
    basis: str = "the default"

    @property
    def per_item(self) -> float | None:
        return self.usd if self.measured else None

    def describe(self) -> str:
        if not self.measured:
            return f"${self.usd:.4f} per item ({self.basis}: no priced calls yet)"
        return (f"${self.usd:.4f} per item (${self.mean_cost_of_calls:.4f} per call x "
                f"{1 - self.hit_rate:.0%} not cached)")


def cost_estimate(mean_cost_of_calls: float | None, hit_rate: float | None,
                  default: float = DEFAULT_COST_PER_ITEM_USD, basis: str = "the default") -> CostEstimate:
    """Expected USD per sampled item: the mean cost of a call x (1 - the cache hit rate); cache hits cost nothing.

    ``mean_cost_of_calls``: the mean ``cost_usd`` of the judge version's recent rows that were not cache
    hits (None when there are none). ``hit_rate``: the share of its recent rows that were cache hits (None:
    no rows, taken as 0). Without a priced call ``default`` stands in (``basis`` says what it is),
    undiscounted: a hit rate measured on no calls says nothing about what a call costs.
    """
    hit = 0.0 if hit_rate is None or math.isnan(hit_rate) else min(MAX_HIT_RATE, max(0.0, hit_rate))
    if mean_cost_of_calls is None or not math.isfinite(mean_cost_of_calls) or mean_cost_of_calls < 0:
        return CostEstimate(default, False, None, hit, basis)
    return CostEstimate(mean_cost_of_calls * (1 - hit), True, mean_cost_of_calls, hit)


def minimums_ahead(strata: Sequence[StratumPlanInput], windows_left: int, remaining_expected: float,
                   cost_per_item: float, z: float = MIN_MARGIN_Z) -> float:
    """What the minimums of the day's ``windows_left`` later windows are expected to cost, in USD.

    Pass 0 instead while the cost is the default (no priced calls): a
    conservative guess times a day of minimums would cut the first window's.
    """
    total = sum(s.expected_count for s in strata)
    if windows_left <= 0 or total <= 0:
        return 0.0
    per_window = remaining_expected / windows_left
    items = sum(StratumPlanInput(s.stratum, s.expected_count / total * per_window, s.min_items, s.floor).guaranteed(z)
                for s in strata)
    return windows_left * items * cost_per_item
