"""The workers' side of the daily budget: once a judge's actual spend reaches the day's budget, queued items of
its online runs are skipped for budget (recorded as such, as ``--max-cost`` does), until the day rolls over.

Checked before each remote chunk is judged. The ledger is read about once
per judge every few seconds per process (``cache_s``), not once per chunk;
between reads the gate adds what this process's own chunks cost
(:meth:`DailyBudgetGate.charge`), so one busy process cannot run seconds of
calls past the budget on a stale reading, and a reading is trusted for less
than ``cache_s`` when the spend between the last two readings (the whole
fleet's) would use up the money left sooner. What may still go over: the
chunks being judged when the budget is reached, and what other processes
spend before this one reads again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ledger.budget_rows import utc_day

from .pacer import Money, money_for

if TYPE_CHECKING:
    from ledger.store import Ledger

CACHE_S = 5.0

_Key = tuple[str, str, str]  # schedule, judge, day


@dataclass(frozen=True)
class Reading:
    """The money read from the ledger at ``at`` (monotonic), how long the reading is good for, and what this
    process had charged (:meth:`DailyBudgetGate.charge`, a running total) when the read began: what it
    charged since is not in the reading, or may not be."""

    at: float
    money: Money | None
    trusted_s: float
    charged: float


def trusted_for(money: Money | None, previous: Reading | None, at: float, cache_s: float) -> float:
    """``cache_s``, or less when the spend since the previous reading, kept up, would reach the budget
    sooner than twice that: then half the time it would take."""
    if money is None or previous is None or previous.money is None or at <= previous.at:
        return cache_s
    left = money.budget - money.spent
    rate = (money.spent - previous.money.spent) / (at - previous.at)
    if left <= 0 or rate <= 0:
        return cache_s
    return min(cache_s, 0.5 * left / rate)


class DailyBudgetGate:
    """Whether an online run's judge has spent its day's budget; a reason to record when it has."""

    def __init__(self, cache_s: float = CACHE_S) -> None:
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._schedules: dict[str, str | None] = {}  # run id -> its schedule (None: an offline run)
        self._readings: dict[_Key, Reading] = {}
        self._charged: dict[_Key, float] = {}  # USD this process spent, a running total per key

    def spent(self, ledger: Ledger, run_id: str, judge: str, now: datetime | None = None) -> str | None:
        """The reason to skip the run's items for budget, or None while there is money (or no budget)."""
        schedule = self._schedule(ledger, run_id)
        if schedule is None:
            return None
        now = now or datetime.now(UTC)
        key = (schedule, judge, utc_day(now)[0])
        with self._lock:
            reading = self._readings.get(key)
            charged = self._charged.get(key, 0.0)
        at = time.monotonic()
        if reading is None or at - reading.at >= reading.trusted_s:
            money = money_for(ledger, schedule, judge, now)
            fresh = Reading(at, money, trusted_for(money, reading, at, self.cache_s), charged)
            with self._lock:
                if len(self._readings) > 10_000:
                    self._readings.clear()
                    self._charged.clear()
                found = self._readings.get(key)
                if found is None or found.at < fresh.at:  # of readings racing, the one begun last stands
                    self._readings[key] = fresh
                reading = self._readings[key]
        with self._lock:
            spent = 0.0 if reading.money is None else (
                reading.money.spent + self._charged.get(key, 0.0) - reading.charged)
        money = reading.money
        if money is None or spent < money.budget:
            return None
        return (f"budget: {money.scope} spent ${spent:.4f} of its ${money.budget:g} per day on "
                f"{key[2]} (UTC); items are skipped until the day rolls over")

    def charge(self, run_id: str, judge: str, usd: float, now: datetime | None = None) -> None:
        """Count ``usd`` this process just spent (its rows written) for the run's judge, until the next reading."""
        with self._lock:
            schedule = self._schedules.get(run_id)
            if schedule is None or usd <= 0:
                return
            key = (schedule, judge, utc_day(now or datetime.now(UTC))[0])
            self._charged[key] = self._charged.get(key, 0.0) + usd

    def _schedule(self, ledger: Ledger, run_id: str) -> str | None:
        with self._lock:
            if run_id in self._schedules:
                return self._schedules[run_id]
        run = ledger.runs.find_run(run_id)
        schedule = run.dataset_name if run is not None and run.kind == "online" else None
        with self._lock:
            if len(self._schedules) > 10_000:
                self._schedules.clear()
            self._schedules[run_id] = schedule
        return schedule
