"""The workers' side of the daily budget: once a judge's actual spend reaches the day's budget, queued items of
its online runs are skipped for budget (recorded as such, as ``--max-cost`` does), until the day rolls over.

Checked before each remote chunk is judged; the run's schedule and the money
are cached for a few seconds per process, so a busy fleet asks the ledger
about once per judge every few seconds, not once per chunk.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .pacer import Money, money_for, utc_day

if TYPE_CHECKING:
    from ledger.store import Ledger

CACHE_S = 5.0


class DailyBudgetGate:
    """Whether an online run's judge has spent its day's budget; a reason to record when it has."""

    def __init__(self, cache_s: float = CACHE_S) -> None:
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._schedules: dict[str, str | None] = {}  # run id -> its schedule (None: an offline run)
        self._money: dict[tuple[str, str], tuple[float, Money | None]] = {}

    def spent(self, ledger: Ledger, run_id: str, judge: str, now: datetime | None = None) -> str | None:
        """The reason to skip the run's items for budget, or None while there is money (or no budget)."""
        schedule = self._schedule(ledger, run_id)
        if schedule is None:
            return None
        now = now or datetime.now(UTC)
        key = (schedule, judge)
        with self._lock:
            cached = self._money.get(key)
        if cached is None or time.monotonic() - cached[0] > self.cache_s:
            cached = (time.monotonic(), money_for(ledger, schedule, judge, now))
            with self._lock:
                self._money[key] = cached
        money = cached[1]
        if money is None or money.spent < money.budget:
            return None
        return (f"budget: {money.scope} spent ${money.spent:.4f} of its ${money.budget:g} per day on "
                f"{utc_day(now)[0]:%Y-%m-%d} (UTC); items are skipped until the day rolls over")

    def _schedule(self, ledger: Ledger, run_id: str) -> str | None:
        with self._lock:
            if run_id in self._schedules:
                return self._schedules[run_id]
        run = ledger.find_run(run_id)
        schedule = run.dataset_name if run is not None and run.kind == "online" else None
        with self._lock:
            if len(self._schedules) > 10_000:
                self._schedules.clear()
            self._schedules[run_id] = schedule
        return schedule
