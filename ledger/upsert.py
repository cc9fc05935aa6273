"""The ledger's INSERT statements, in the dialect of its backend, built once per Ledger.

- runs: ON CONFLICT (id) DO NOTHING, so that a taken id is told apart from
  other integrity errors by the row count;
- items: ON CONFLICT (run_id, trace_id) DO NOTHING;
- window_strata, sampling_rates, budgets: ON CONFLICT (key) DO UPDATE every
  other column: the latest write of a key wins (a rescan's counts, a new rate);
- budget_reservations: ON CONFLICT (run_id) DO NOTHING: a run reserves once;
- scores (the write hot path): ON CONFLICT (run_id, trace_id,
  eval) DO NOTHING, except that an "error" row is replaced by an incoming
  "ok" row, so that a retry that succeeds wins over the failure recorded
  earlier. An "ok" row is never
  replaced, neither by an error nor by another verdict: the first verdict
  stands (a task delivered twice leaves one row, and the row it left).

Both backends spell this the same way (PostgreSQL >= 9.5, SQLite >= 3.24):
``ON CONFLICT (...) DO UPDATE SET ... WHERE scores.status = 'error' AND
excluded.status = 'ok'``.

The items and scores statements take their rows either as executemany
parameters or, with ``source``, from a SELECT (on PostgreSQL, the staging
table that ``ledger.writer`` fills by COPY): one rule, two ways in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ledger.errors import LedgerError
from ledger.models import BUDGET_RESERVATIONS, BUDGETS, ITEMS, RUNS, SAMPLING_RATES, SCORES, WINDOW_STRATA

ITEM_KEY: Final = ("run_id", "trace_id")
SCORE_KEY: Final = ("run_id", "trace_id", "eval")

_INSERTS: Final[dict[str, Callable[[sa.Table], Any]]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}


def _insert(dialect_name: str, table: sa.Table, source: sa.Select[Any] | None = None) -> Any:
    # preserve_rowcount: SQLAlchemy keeps an INSERT's (executemany's summed)
    # row count only when asked; the callers count what was written.
    try:
        insert = _INSERTS[dialect_name](table)
    except KeyError:
        raise LedgerError(f"the ledger supports SQLite and PostgreSQL, not {dialect_name}") from None
    if source is not None:  # INSERT ... SELECT: the select's column names are the target columns
        insert = insert.from_select([column.name for column in source.selected_columns], source)
    return insert.execution_options(preserve_rowcount=True)


def insert_run(dialect_name: str) -> sa.Insert:
    """INSERT into runs that inserts nothing (row count 0) when the id is taken."""
    stmt: sa.Insert = _insert(dialect_name, RUNS).on_conflict_do_nothing(index_elements=["id"])
    return stmt


def insert_items(dialect_name: str, source: sa.Select[Any] | None = None) -> sa.Insert:
    """INSERT into items (of ``source``'s rows if given) that leaves existing (run_id, trace_id) rows alone."""
    insert = _insert(dialect_name, ITEMS, source)
    stmt: sa.Insert = insert.on_conflict_do_nothing(index_elements=list(ITEM_KEY))
    return stmt


def insert_new_items(dialect_name: str, source: sa.Select[Any] | None = None) -> sa.Insert:
    """``insert_items`` returning the trace ids it inserted: those no other transaction stored first."""
    return insert_items(dialect_name, source).returning(ITEMS.c.trace_id)


def insert_if_absent(dialect_name: str, table: sa.Table) -> sa.Insert:
    """INSERT into ``table`` (budget_reservations) that inserts nothing (row count 0) when its key is taken."""
    if table is not BUDGET_RESERVATIONS:
        raise LedgerError(f"the table {table.name} is not written by inserting if absent")
    key = [column.name for column in table.primary_key]
    stmt: sa.Insert = _insert(dialect_name, table).on_conflict_do_nothing(index_elements=key)
    return stmt


def overwrite(dialect_name: str, table: sa.Table) -> sa.Insert:
    """INSERT into ``table`` (window_strata, sampling_rates, budgets) replacing the row of the same primary key."""
    if table not in (WINDOW_STRATA, SAMPLING_RATES, BUDGETS):
        raise LedgerError(f"the table {table.name} is not written by overwriting")
    insert = _insert(dialect_name, table)
    key = [column.name for column in table.primary_key]
    values: dict[str, Any] = {column.name: insert.excluded[column.name]
                              for column in table.columns if column.name not in key}
    stmt: sa.Insert = insert.on_conflict_do_update(index_elements=key, set_=values)
    return stmt


def upsert_scores(dialect_name: str, source: sa.Select[Any] | None = None) -> sa.Insert:
    """INSERT into scores (of ``source``'s rows if given): keep existing rows, except an error row meeting an ok row."""
    insert = _insert(dialect_name, SCORES, source)
    excluded = insert.excluded
    stmt: sa.Insert = insert.on_conflict_do_update(
        index_elements=list(SCORE_KEY),
        set_={
            column.name: excluded[column.name] for column in SCORES.columns if column.name not in SCORE_KEY
        },
        where=sa.and_(SCORES.c.status == "error", excluded.status == "ok"),
    )
    return stmt
