"""Deleting a table's rows older than an instant, a batch at a time: the retention of the controller's decisions
and the drift checks (``BudgetStore.prune_decisions``, ``DriftStore.prune``).

A batch is one short transaction (``DELETE ... WHERE id IN (SELECT id ... LIMIT n)``, which SQLite and
PostgreSQL both take), so a first prune of a year of rows never holds a long lock that stalls the
controller's writes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import sqlalchemy as sa

from ledger.db import Db

PRUNE_BATCH: Final = 5_000  # rows deleted per transaction


def prune_before(db: Db, table: sa.Table, column: str, before: datetime, batch: int = PRUNE_BATCH) -> int:
    """Delete ``table``'s rows whose ``column`` (when the row was made) is before ``before``; how many."""
    doomed = sa.select(table.c.id).where(table.c[column] < before).order_by(table.c.id).limit(batch)
    total = 0
    while True:
        with db.connect() as conn, conn.begin():
            gone = conn.execute(sa.delete(table).where(table.c.id.in_(doomed))).rowcount
        total += gone
        if gone < batch:
            return total
