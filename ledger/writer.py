"""How items and score rows reach their tables: executemany, or binary COPY on PostgreSQL.

Why COPY: under psycopg 3, SQLAlchemy's executemany is one pipelined INSERT
per row, about 20 µs of Python and 10-18 µs of server time per row, which made
the ledger writes the largest per-item cost of a run (benchmarks/README.md).
Binary COPY into a staging table costs about 1 µs of Python per row; one
``INSERT ... SELECT`` then moves the batch with the very statements of
``ledger.upsert`` (the same ON CONFLICT rule, the same row count).

Staging tables are temporary, one per connection and table (``scores_in``,
``items_in``), created by every write if missing (``CREATE TEMP TABLE IF NOT
EXISTS``, so a pooler that swaps server connections between transactions is
fine) as ``SELECT ... WITH NO DATA``: the target's column types without its
constraints, so that a NULL ``ts`` is filled in by the INSERT and the
constraints are checked once, on the real table. ``ON COMMIT DELETE ROWS``
empties them at the end of the caller's transaction.

SQLite, and a PostgreSQL batch holding one score key twice (``ON CONFLICT DO
UPDATE`` cannot meet a row twice in one statement, while executemany applies
the rows in turn), take the executemany path.

Both paths pass every text value through ``ledger.text`` on the way in, so
the two backends store the same text (NUL and lone surrogates as U+FFFD in
text columns; a record's NUL escaped, reversibly: ``ledger.text``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.models import ITEMS, SCORES
from ledger.rows import ItemIn, ScoreIn
from ledger.text import TextColumns, storable, stored_json
from ledger.upsert import insert_items, insert_new_items, upsert_scores

if TYPE_CHECKING:
    import psycopg

ITEM_COLUMNS: Final = ("run_id", "trace_id", "seq", "content_hash", "record", "weight", "stratum")
SCORE_COLUMNS: Final = tuple(column.name for column in SCORES.columns)  # ScoreIn has the same fields

_score_getter = attrgetter(*SCORE_COLUMNS)  # ScoreIn -> tuple in SCORE_COLUMNS order, in C


def _is_text(column: sa.Column[Any]) -> bool:
    kind = column.type
    return isinstance(kind, sa.String) or isinstance(getattr(kind, "impl", None), sa.String)


_SCORE_TEXT: Final = TextColumns([i for i, name in enumerate(SCORE_COLUMNS) if _is_text(SCORES.c[name])])


def _score_values(row: ScoreIn) -> tuple[Any, ...]:
    """The row's values in SCORE_COLUMNS order, its text made storable."""
    return _SCORE_TEXT.storable(_score_getter(row))


def _item_values(run_id: str, item: ItemIn) -> tuple[Any, ...]:
    """The item's values in ITEM_COLUMNS order; the record is JSON, its NULs escaped (``ledger.text``)."""
    return (storable(run_id), storable(item.trace_id), item.seq, storable(item.content_hash), stored_json(item.record),
            item.weight, None if item.stratum is None else storable(item.stratum))


def writer_for(dialect_name: str) -> RowWriter:
    """The writer for a backend: COPY on PostgreSQL, executemany elsewhere."""
    return CopyWriter() if dialect_name == "postgresql" else RowWriter(dialect_name)


class RowWriter:
    """Writes rows with executemany, in the caller's transaction."""

    def __init__(self, dialect_name: str) -> None:
        self._insert_items = insert_items(dialect_name)
        self._insert_new_items = insert_new_items(dialect_name)
        self._upsert_scores = upsert_scores(dialect_name)

    def add_items(self, conn: Connection, run_id: str, items: Sequence[ItemIn]) -> None:
        conn.execute(self._insert_items, [dict(zip(ITEM_COLUMNS, _item_values(run_id, item))) for item in items])

    def add_new_items(self, conn: Connection, run_id: str, items: Sequence[ItemIn]) -> list[str]:
        """Insert ``items`` in trace id order; the (stored) trace ids of those inserted, not there before.

        Trace id order, so that transactions inserting overlapping items on
        PostgreSQL wait for each other's rows in one order and cannot deadlock.
        """
        rows = sorted((_item_values(run_id, item) for item in items), key=itemgetter(1))
        result = conn.execute(self._insert_new_items, [dict(zip(ITEM_COLUMNS, row)) for row in rows])
        return list(result.scalars())

    def write_scores(self, conn: Connection, rows: Sequence[ScoreIn], now: datetime) -> int:
        params = [_score_params(row, now) for row in rows]
        return max(conn.execute(self._upsert_scores, params).rowcount, 0)


class CopyWriter(RowWriter):
    """PostgreSQL: COPY the rows into a staging table, then one INSERT ... SELECT from it."""

    def __init__(self) -> None:
        super().__init__("postgresql")
        self._items = _Stage(ITEMS, ITEM_COLUMNS)
        self._scores = _Stage(SCORES, SCORE_COLUMNS)
        self._items_from_stage = insert_items("postgresql", source=sa.select(*self._items.table.c))
        self._new_items_from_stage = insert_new_items(
            "postgresql", source=sa.select(*self._items.table.c).order_by(self._items.table.c.trace_id))
        staged = self._scores.table.c
        ts = sa.func.coalesce(staged.ts, sa.bindparam("now", type_=SCORES.c.ts.type)).label("ts")
        self._scores_from_stage = upsert_scores(
            "postgresql", source=sa.select(*(ts if column.name == "ts" else column for column in staged))
        )

    def add_items(self, conn: Connection, run_id: str, items: Sequence[ItemIn]) -> None:
        self._items.load(conn, (_item_values(run_id, item) for item in items))
        conn.execute(self._items_from_stage)

    def add_new_items(self, conn: Connection, run_id: str, items: Sequence[ItemIn]) -> list[str]:
        self._items.load(conn, (_item_values(run_id, item) for item in items))
        return list(conn.execute(self._new_items_from_stage).scalars())

    def write_scores(self, conn: Connection, rows: Sequence[ScoreIn], now: datetime) -> int:
        if len({(row.run_id, row.trace_id, row.eval) for row in rows}) < len(rows):
            return super().write_scores(conn, rows, now)
        self._scores.load(conn, map(_score_values, rows))
        return max(conn.execute(self._scores_from_stage, {"now": now}).rowcount, 0)


class _Stage:
    """The temporary table ``<table>_in`` with ``columns`` of ``table``, which COPY fills."""

    def __init__(self, table: sa.Table, columns: Sequence[str]) -> None:
        names = ", ".join(columns)
        self.table = sa.table(f"{table.name}_in", *(sa.column(name, table.c[name].type) for name in columns))
        staged = ", ".join(_staged(table.c[name]) for name in columns)
        self._create = (f"CREATE TEMP TABLE IF NOT EXISTS {self.table.name} ON COMMIT DELETE ROWS "
                        f"AS SELECT {staged} FROM {table.name} WITH NO DATA")
        self._probe = f"SELECT {names} FROM {self.table.name} WHERE false"
        self._copy = f"COPY {self.table.name} ({names}) FROM STDIN (FORMAT BINARY)"
        self._oids: list[int] | None = None  # binary COPY needs each column's exact type

    def load(self, conn: Connection, rows: Iterable[tuple[Any, ...]]) -> None:
        """Create the staging table if this connection has none, and COPY ``rows`` into it."""
        conn.exec_driver_sql(self._create)
        raw = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
        try:
            with raw.cursor() as cursor:
                if self._oids is None:  # asked of the database once: the migrated types, not a copy of them here
                    cursor.execute(self._probe)
                    self._oids = [column.type_code for column in cursor.description or ()]
                with cursor.copy(self._copy) as copy:
                    copy.set_types(self._oids)
                    for row in rows:
                        copy.write_row(row)
        except conn.dialect.loaded_dbapi.Error as exc:  # psycopg's own: raise what SQLAlchemy would raise
            raise _as_sqlalchemy_error(conn, self._copy, exc) from exc


def _staged(column: sa.Column[Any]) -> str:
    """The staging table's column: the target's, but integers as bigint.

    psycopg's C dumper packs an int into an int4 without a range check (2**40
    arrives as 0); staged as bigint, an out-of-range value makes the INSERT's
    cast to the real column raise "integer out of range", as executemany does.
    """
    return f"{column.name}::bigint AS {column.name}" if isinstance(column.type, sa.Integer) else column.name


def _as_sqlalchemy_error(conn: Connection, statement: str, exc: Exception) -> sa.exc.StatementError:
    """``exc`` wrapped as SQLAlchemy wraps DBAPI errors; a lost connection is invalidated, as SQLAlchemy does."""
    dbapi = conn.dialect.loaded_dbapi
    lost = conn.dialect.is_disconnect(cast(Any, exc), conn.connection.dbapi_connection, None)
    if lost:
        conn.invalidate(exc)
    return sa.exc.DBAPIError.instance(statement, None, exc, dbapi.Error, connection_invalidated=lost,
                                      dialect=conn.dialect)


def _score_params(row: ScoreIn, now: datetime) -> dict[str, Any]:
    params = dict(zip(SCORE_COLUMNS, _score_values(row)))  # not asdict(): no deep copy on the hot path
    if params["ts"] is None:
        params["ts"] = now
    return params
