"""The Ledger: the only way the rest of judgeq reads and writes the ledger, one store per part of it.

``Ledger(url)`` opens the engine (one :class:`ledger.db.Db`, shared by its
stores) and holds the stores of ``ledger.stores`` as attributes:
``ledger.runs`` (runs and their items), ``ledger.scores`` (score rows),
``ledger.windows`` (online windows' strata and sampling rates),
``ledger.budgets`` (daily budgets, decisions, reservations), ``ledger.spend``
(what the budget controller plans from), ``ledger.drift`` (drift checks), ``ledger.canary`` (judge canaries' checks),
``ledger.metrics`` (the exporter's figures) and ``ledger.teacher`` (a judge's
rows with their records).

Tables come back as their SQLModel classes (``Run``, ``Score``), detached: all
columns loaded, no session behind them, so changing one writes nothing.
Inputs and computed figures are the dataclasses of ``ledger.rows``.

A Ledger is safe to share between threads (each call takes a pooled
connection for its own duration). The schema is created on first use of an
empty database (``ledger.migrate.ensure_schema``). Every error of the
database comes out as a :class:`LedgerError` (``ledger.refusals.from_database``):
:class:`LedgerUnavailable` when it cannot be reached, :class:`LedgerRefused`
when it refuses a statement; callers may retry both. A row whose values the
database will not take costs only itself (see ``ScoreStore.write_scores``).
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.engine import Engine

from ledger.db import Db
from ledger.stores.budgets import BudgetStore
from ledger.stores.canary import CanaryStore
from ledger.stores.drift import DriftStore
from ledger.stores.metrics import MetricsStore
from ledger.stores.runs import RunStore
from ledger.stores.scores import ScoreStore
from ledger.stores.spend import SpendStore
from ledger.stores.teacher import TeacherStore
from ledger.stores.windows import WindowStore


class Ledger:
    """Runs, their items and their score rows, in SQLite or PostgreSQL, through the stores it holds."""

    def __init__(self, url: str) -> None:
        self.db = Db(url)
        self.url: str = self.db.url
        self.engine: Engine = self.db.engine
        self.runs = RunStore(self.db)
        self.scores = ScoreStore(self.db)
        self.windows = WindowStore(self.db, self.runs)
        self.budgets = BudgetStore(self.db)
        self.spend = SpendStore(self.db)
        self.drift = DriftStore(self.db)
        self.canary = CanaryStore(self.db)
        self.metrics = MetricsStore(self.db)
        self.teacher = TeacherStore(self.db)

    def close(self) -> None:
        """Close the pooled connections; the Ledger reconnects if used again."""
        self.db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
