"""``type = "sql"``: traces in a table, or the rows of a SELECT, of any database SQLAlchemy reaches.

    [sources.warehouse]
    type = "sql"
    url_env = "TRACES_DB_URL"     # the environment variable holding the SQLAlchemy URL (never the toml)
    table = "traces"              # or "schema.traces"; or instead: query = "SELECT ... FROM ... JOIN ..."
    time_column = "created_at"
    columns = { id = "trace_id", input = "prompt", output = "completion", "metadata.locale" = "locale" }
    batch_size = 5000             # rows fetched per round trip

The window is ``WHERE time_column >= :start AND time_column < :end ORDER
BY time_column``, read through a server-side cursor (``stream_results``)
``batch_size`` rows at a time, so a window of any size takes the memory of
one batch. A ``query`` is wrapped as a subquery (write it without a trailing
``;``; a literal colon is written ``\\:``). The session is read-only.

Time columns: on PostgreSQL the session's time zone is UTC, so a
``timestamp without time zone`` is read as UTC and a ``timestamptz``
compares exactly. On SQLite the column holds ISO 8601 text (what
SQLAlchemy's DateTime writes; ``Z`` or an offset allowed) and is compared
through ``strftime``, which cannot use an index: fine for trying judgeq out,
not for a large table. Elsewhere the bounds are bound as naive UTC datetimes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from ledger.errors import LedgerUnavailable
from ledger.refusals import classify
from ledger.urls import mask_url, redact_secrets
from online.errors import SourceError, SourceUnavailable
from online.sources.rows import ColumnMap
from online.sources.settings import parse_settings
from online.sources.sql_settings import SqlSettings, database_url
from online.sources.times import check_window

__all__ = ["SqlSettings", "SqlSource"]

CONNECT_TIMEOUT_S = 10
#: PostgreSQL type oids a time column may have: timestamp, timestamptz, date.
PG_TIME_TYPES = frozenset({1114, 1184, 1082})


@dataclass
class SqlSource:
    """The rows of a table or a SELECT whose time column falls in a window, as records."""

    name: str
    settings: SqlSettings
    url: str
    engine: Engine

    @classmethod
    def from_table(cls, name: str, table: Mapping[str, Any], base_dir: Path) -> SqlSource:
        settings = parse_settings(SqlSettings, name, table)
        url, parsed = database_url(name, settings)
        return cls(name, settings, url, _engine(name, url, parsed))

    def traces(self, start: datetime, end: datetime, skipped: Counter[str]) -> Iterator[dict[str, Any]]:
        check_window(start, end)
        with self._connect() as conn:
            columns, time_type = self._columns(conn)
            source = self._from(columns.selected())
            when = self._when(source, conn)
            stamp, ts_text = self._stamp(source, conn, time_type)
            self._check_output(columns)
            stmt = (sa.select(stamp, *(source.c[c] for c in columns.selected()[1:]))
                    .where(*self._window(when)).order_by(when))
            streamed = conn.execution_options(stream_results=True, yield_per=self.settings.batch_size)
            result = self._run(streamed, stmt, start, end)
            read = columns.reader(ts_text).record
            bad_ts = 0
            try:
                for row in self._rows(result):
                    record = read(row)
                    if record is None:
                        bad_ts += 1
                    else:
                        yield record
            finally:
                result.close()
                if bad_ts:
                    skipped["bad_ts"] += bad_ts

    def count(self, start: datetime, end: datetime) -> int:
        check_window(start, end)
        with self._connect() as conn:
            columns, time_type = self._columns(conn)
            source = self._from([columns.time_column])
            self._stamp(source, conn, time_type)  # the same check of the time column's type as traces()
            stmt = sa.select(sa.func.count()).select_from(source).where(*self._window(self._when(source, conn)))
            return int(self._run(conn, stmt, start, end).scalar_one())

    # -- the statement -------------------------------------------------------------------------------------------

    def _from(self, names: list[str]) -> sa.TableClause | sa.Subquery:
        cols: list[sa.ColumnClause[Any]] = [sa.column(n) for n in names]
        if self.settings.query is not None:
            # On a line of its own: a query ending in a -- comment must not comment out the closing parenthesis.
            return sa.text(self.settings.query + "\n").columns(*cols).subquery("judgeq_source")
        schema, _, table = (self.settings.table or "").rpartition(".")
        return sa.table(table, *cols, schema=schema or None)

    def _when(self, source: sa.TableClause | sa.Subquery, conn: Connection) -> sa.ColumnElement[Any]:
        """What the window compares: the time column; on SQLite its ISO text normalised to UTC, fixed width."""
        column = source.c[self.settings.time_column]
        if conn.dialect.name == "sqlite":
            return sa.func.strftime("%Y-%m-%dT%H:%M:%f", column)
        return column

    def _stamp(self, source: sa.TableClause | sa.Subquery, conn: Connection,
               type_code: Any) -> tuple[sa.ColumnElement[Any], bool]:
        """What is selected as ``ts``, and whether it is ISO 8601 UTC text the database formats.

        Formatting a datetime costs Python more than fetching its row, and
        the database formats on its own core. PostgreSQL's time column must
        be a timestamp (with or without time zone) or a date: text would
        not compare with the window's bounds.
        """
        column = source.c[self.settings.time_column]
        if conn.dialect.name == "postgresql":
            if type_code not in PG_TIME_TYPES:
                raise SourceError(f"source {self.name!r}: time column {self.settings.time_column!r} is not a "
                                  f"timestamp (PostgreSQL type oid {type_code}); make it timestamptz, or select it "
                                  f"cast (::timestamptz) in sources.{self.name}.query")
            return sa.func.to_char(column, 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), True
        if conn.dialect.name == "sqlite":
            return sa.func.strftime("%Y-%m-%dT%H:%M:%f", column).concat("+00:00"), True
        return column, False

    def _window(self, when: sa.ColumnElement[Any]) -> tuple[sa.ColumnElement[bool], ...]:
        return when >= sa.bindparam("start"), when < sa.bindparam("end")

    def _run(self, conn: Connection, stmt: sa.Executable, start: datetime, end: datetime) -> sa.CursorResult[Any]:
        dialect = conn.dialect.name
        params: dict[str, Any]
        if dialect == "postgresql":
            params = {"start": start, "end": end}
        elif dialect == "sqlite":
            params = {"start": _sqlite_text(start), "end": _sqlite_text(end)}
        else:
            params = {"start": start.astimezone(UTC).replace(tzinfo=None), "end": end.astimezone(UTC).replace(tzinfo=None)}
        try:
            return conn.execute(stmt, params)
        except sa.exc.DBAPIError as exc:
            raise self._refused(exc, "its query") from None

    def _rows(self, result: sa.CursorResult[Any]) -> Iterator[Any]:
        try:
            yield from result
        except sa.exc.DBAPIError as exc:
            raise self._refused(exc, "reading its rows") from None

    # -- the connection and the columns ---------------------------------------------------------------------------

    def _connect(self) -> Connection:
        database = self.engine.url.database or ""
        if (self.engine.dialect.name == "sqlite" and database not in ("", ":memory:")
                and not database.startswith("file:") and not Path(database).exists()):  # connecting would create it
            raise SourceUnavailable(f"source {self.name!r}: the SQLite file {database!r} does not exist "
                                    f"({self.settings.url_env}); create it or fix the URL")
        try:
            conn = self.engine.connect()
        except sa.exc.DBAPIError as exc:
            raise SourceUnavailable(f"source {self.name!r}: cannot connect to {mask_url(self.url)} "
                                    f"({self._reason(exc)}); check that the database is running and reachable, "
                                    f"and the URL in {self.settings.url_env}") from None
        try:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                conn.exec_driver_sql("SET TIME ZONE 'UTC'")
            elif conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA query_only = ON")
        except sa.exc.DBAPIError as exc:
            conn.close()
            raise self._refused(exc, "starting a read-only session") from None
        return conn

    def _columns(self, conn: Connection) -> tuple[ColumnMap, Any]:
        """The column map, checked against the columns the table or query has, and the time column's type code."""
        settings, where = self.settings, f"sources.{self.name}"
        if settings.table is not None:
            schema, _, table = settings.table.rpartition(".")
            try:
                exists = sa.inspect(conn).has_table(table, schema=schema or None)
            except sa.exc.DBAPIError as exc:
                raise self._refused(exc, "looking up its table") from None
            if not exists:
                raise SourceError(f"source {self.name!r}: table {settings.table!r} does not exist in "
                                  f"{mask_url(self.url)}; fix {where}.table")
        probe: sa.Select[Any] = sa.select(sa.literal_column("*")).select_from(self._from([])).where(sa.false())
        try:
            probed = conn.execute(probe)
            available = list(probed.keys())
            types = {d[0]: d[1] for d in probed.cursor.description or ()}
            probed.close()
        except sa.exc.DBAPIError as exc:
            raise self._refused(exc, "its query") from None
        columns = ColumnMap.of(settings.time_column, settings.columns, available)
        missing = columns.missing(available)
        if missing:
            path, column = missing[0]
            key = "time_column" if path == "ts" else f'columns."{path}"'
            what = f"table {settings.table!r}" if settings.table is not None else "its query"
            near = [c for c in available if c.lower() == column.lower()]
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise SourceError(f"source {self.name!r}: {what} has no column {column!r}{hint}; fix {where}.{key} "
                              f"(its columns: {', '.join(available)})")
        return columns, types.get(settings.time_column)

    def _check_output(self, columns: ColumnMap) -> None:
        """A source whose rows have no output has nothing to judge: say which column to map."""
        if not columns.fills("output"):
            what = f"table {self.settings.table!r}" if self.settings.table is not None else "its query"
            raise SourceError(f"source {self.name!r}: no column of {what} gives the output the judges judge; map one "
                              f'in sources.{self.name}.columns, e.g. columns = {{ output = "completion" }} '
                              f"(columns without a mapping are read by their names)")

    def _refused(self, exc: sa.exc.DBAPIError, doing: str) -> SourceError | SourceUnavailable:
        """What the database's refusal of ``doing`` means: unreachable now, or a source that cannot work."""
        reason = self._reason(exc)
        if exc.connection_invalidated or isinstance(classify(self.url, exc.orig or exc), LedgerUnavailable):
            return SourceUnavailable(f"source {self.name!r}: lost {mask_url(self.url)} while {doing} ({reason}); "
                                     "run again when the database is back")
        key = "query" if self.settings.query is not None else "table"
        return SourceError(f"source {self.name!r}: the database refused {doing} ({reason}); "
                           f"check sources.{self.name}.{key} and its columns")

    def _reason(self, exc: sa.exc.DBAPIError) -> str:
        text = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
        return redact_secrets(text, self.url)


def _engine(name: str, url: str, parsed: sa.URL) -> Engine:
    """An engine without a pool: a source opens one connection per read, and holds none between windows."""
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args = {"connect_timeout": CONNECT_TIMEOUT_S, "application_name": f"judgeq source {name}"[:63]}
    return sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)


def _sqlite_text(moment: datetime) -> str:
    """``moment`` in the form ``strftime('%Y-%m-%dT%H:%M:%f')`` gives (milliseconds), UTC."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}"
