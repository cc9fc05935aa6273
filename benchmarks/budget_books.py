"""The budget simulation's bookkeeping: what the controller reads and writes, behind one small interface.

``Books`` is the part of the ledger the budget task uses: the day's settled
spend, the outstanding reservations, the recent calls' cost and cache hit
rate, the windows' seen counts and the decisions. ``MemoryBooks`` keeps them
in memory so the simulation runs thousands of windows in a second; a class
over the ledger's budget tables (budget_reservations, budget_decisions,
scores.cost_usd, window_strata) can stand in for it without touching the
simulation.

Spend of a day is the actual cost of the runs reserved on that day, settled
so far: a window planned at 23:00 whose judgments finish after midnight
still counts against the day that planned it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from online.budget import RatePlan


class Books(Protocol):
    def spent(self, day: date) -> float: ...
    def outstanding(self, day: date) -> float: ...
    def reserve(self, run_id: str, day: date, usd: float, at: datetime) -> None: ...
    def settle(self, run_id: str, cost_usd: float, cached: bool, at: datetime) -> None: ...
    def finish(self, run_id: str) -> None: ...
    def recent_calls(self) -> tuple[float | None, float | None]: ...
    def record_seen(self, window_start: datetime, seen: int) -> None: ...
    def history(self) -> Iterable[tuple[datetime, int]]: ...
    def record_decision(self, at: datetime, window_start: datetime, result: RatePlan) -> None: ...


@dataclass
class Reservation:
    day: date
    reserved: float
    actual: float = 0.0
    done: bool = False


@dataclass
class MemoryBooks:
    """The simulation's own bookkeeping (see the module's docstring); ``recent`` rows make the cost estimate."""

    recent: int = 500
    reservations: dict[str, Reservation] = field(default_factory=dict)
    rows: deque[tuple[float, bool]] = field(default_factory=deque)
    seen: list[tuple[datetime, int]] = field(default_factory=list)
    decisions: list[tuple[datetime, datetime, RatePlan]] = field(default_factory=list)
    by_day: dict[date, float] = field(default_factory=dict)  # settled spend, kept as rows settle

    def spent(self, day: date) -> float:
        return self.by_day.get(day, 0.0)

    def outstanding(self, day: date) -> float:
        """Each open reservation's expected cost less what its run has cost so far; 0 once the run is done."""
        return sum(max(0.0, r.reserved - r.actual) for r in self.reservations.values() if r.day == day and not r.done)

    def reserve(self, run_id: str, day: date, usd: float, at: datetime) -> None:
        self.reservations[run_id] = Reservation(day, usd)

    def settle(self, run_id: str, cost_usd: float, cached: bool, at: datetime) -> None:
        reservation = self.reservations[run_id]
        reservation.actual += cost_usd
        self.by_day[reservation.day] = self.by_day.get(reservation.day, 0.0) + cost_usd
        self.rows.append((cost_usd, cached))
        if len(self.rows) > self.recent:
            self.rows.popleft()

    def finish(self, run_id: str) -> None:
        self.reservations[run_id].done = True

    def recent_calls(self) -> tuple[float | None, float | None]:
        """(mean cost of the recent rows that were not cache hits, the recent rows' cache hit rate)."""
        if not self.rows:
            return None, None
        calls = [cost for cost, cached in self.rows if not cached]
        mean = sum(calls) / len(calls) if calls else None
        return mean, 1 - len(calls) / len(self.rows)

    def record_seen(self, window_start: datetime, seen: int) -> None:
        self.seen.append((window_start, seen))

    def history(self) -> Iterable[tuple[datetime, int]]:
        return self.seen

    def record_decision(self, at: datetime, window_start: datetime, result: RatePlan) -> None:
        self.decisions.append((at, window_start, result))
