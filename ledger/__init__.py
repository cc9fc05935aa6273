"""The ledger: runs, their items, and one score row per run x trace x eval.

Imports nothing of judgeq outside this package: it knows rows, not judges.
Everything else in judgeq goes through :class:`Ledger`.
"""

from ledger.errors import LedgerError, LedgerUnavailable, MigrationError, RunExists, RunNotFound
from ledger.models import Item, Run, RunKind, RunStatus, Score, ScoreStatus
from ledger.rows import EvalSummary, ItemIn, Progress, ScoreIn
from ledger.settings import LedgerSettings
from ledger.store import Ledger

__all__ = [
    "EvalSummary",
    "Item",
    "ItemIn",
    "Ledger",
    "LedgerError",
    "LedgerSettings",
    "LedgerUnavailable",
    "MigrationError",
    "Progress",
    "Run",
    "RunExists",
    "RunKind",
    "RunNotFound",
    "RunStatus",
    "Score",
    "ScoreIn",
    "ScoreStatus",
]
