"""The SQLAlchemy engine for a ledger URL, configured per backend.

SQLite: WAL (readers do not block the writer), a 30 s busy timeout (writers
from several processes queue rather than fail), usable from any thread.
PostgreSQL: psycopg 3, connections checked before use, a 10 s connect timeout.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from ledger.errors import LedgerError, LedgerUnavailable
from ledger.urls import mask_url, normalize_url

SQLITE_BUSY_TIMEOUT_S: Final = 30
PG_CONNECT_TIMEOUT_S: Final = 10


def create_ledger_engine(url: str) -> Engine:
    """Return an engine for ``url`` (``postgresql://`` is taken to mean psycopg 3)."""
    url = normalize_url(url)
    backend = sa.make_url(url).get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url)
    if backend == "postgresql":
        return sa.create_engine(
            url,
            pool_pre_ping=True,
            connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S, "application_name": "judgeq"},
        )
    raise LedgerError(
        f"unsupported ledger URL {mask_url(url)}: use sqlite:///path/to/judgeq.db "
        "or postgresql://user@host/dbname"
    )


def _sqlite_engine(url: str) -> Engine:
    database = sa.make_url(url).database
    in_memory = database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {
        "connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
    }
    if in_memory:  # one connection, or every connection would see its own empty database
        kwargs["poolclass"] = StaticPool
    engine = sa.create_engine(url, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
            if not in_memory:
                _use_wal(cursor)
        finally:
            cursor.close()

    return engine


def _use_wal(cursor: Any) -> None:
    """Switch the database file to WAL (a persistent setting), retrying while it is locked.

    Retrying by hand because SQLite does not call the busy handler for this
    lock: processes opening a new file at the same moment would otherwise
    fail at once with "database is locked".
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    pause = 0.01
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


def connect(engine: Engine) -> Connection:
    """``engine.connect()``, raising :class:`LedgerUnavailable` when the database cannot be reached."""
    try:
        return engine.connect()
    except sa.exc.OperationalError as exc:
        raise LedgerUnavailable.at(engine.url.render_as_string(hide_password=False), exc.orig or exc) from exc
