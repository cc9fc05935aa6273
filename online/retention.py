"""The ledger's retention: the controller's decisions and the drift checks kept ``JUDGEQ_RETENTION_DAYS``.

The budget controller writes a decision per stratum per tick and drift a row
per slice per check, so both tables grow without bound; beat prunes them
daily (``judgeq.prune``, scheduler/beat.py) and ``judgeq db prune`` does it by
hand. What is kept: the budget changes people made (the audit trail), runs,
items and score rows (the verdicts themselves: they have their own life).
A drift alert older than the retention no longer marks its window in
``judgeq report --windows --plot``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledger.store import Ledger


@dataclass(frozen=True)
class Pruned:
    """What one prune deleted, and the instant before which it deleted."""

    before: datetime
    decisions: int
    drift_checks: int

    def summary(self) -> str:
        return (f"pruned {self.decisions:,} budget decisions and {self.drift_checks:,} drift checks made before "
                f"{self.before:%Y-%m-%d %H:%M} UTC")

    def to_json(self) -> dict[str, Any]:
        return {"before": self.before.isoformat(), "budget_decisions": self.decisions,
                "drift_checks": self.drift_checks}


def prune(ledger: Ledger, now: datetime, days: int) -> Pruned:
    """Delete the decisions and drift checks made more than ``days`` days before ``now``."""
    if days < 1:
        raise ValueError(f"days {days!r}: keep at least one day")
    before = now - timedelta(days=days)
    return Pruned(before, ledger.budgets.prune_decisions(before), ledger.drift.prune(before))
