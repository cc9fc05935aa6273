"""The ledger: runs, their items, and one score row per run x trace x eval.

Imports nothing of judgeq outside this package but the error root (``judgeq.errors``,
a leaf): it knows rows, not judges.
Everything else in judgeq goes through :class:`Ledger`.

The names below are imported on first use (PEP 562), so that
``from ledger.errors import LedgerError`` or ``ledger.settings`` does not pay
for SQLAlchemy, SQLModel and alembic (about 0.3 s) in a CLI that may only
print its help.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledger.errors import LedgerError, LedgerUnavailable, MigrationError, RunExists, RunNotFound
    from ledger.models import Item, Run, RunKind, RunStatus, Score, ScoreStatus
    from ledger.rows import EvalSummary, ItemIn, Progress, ScoreIn, StratumCounts
    from ledger.settings import LedgerSettings
    from ledger.store import Ledger

_HOMES = {
    "LedgerError": "errors",
    "LedgerUnavailable": "errors",
    "MigrationError": "errors",
    "RunExists": "errors",
    "RunNotFound": "errors",
    "Item": "models",
    "Run": "models",
    "RunKind": "models",
    "RunStatus": "models",
    "Score": "models",
    "ScoreStatus": "models",
    "EvalSummary": "rows",
    "ItemIn": "rows",
    "Progress": "rows",
    "ScoreIn": "rows",
    "StratumCounts": "rows",
    "LedgerSettings": "settings",
    "Ledger": "store",
}

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
    "StratumCounts",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'ledger' has no attribute {name!r}")
    value = getattr(import_module(f"ledger.{_HOMES[name]}"), name)
    globals()[name] = value
    return value
