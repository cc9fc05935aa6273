"""The SQLAlchemy engine for a ledger URL, configured per backend.

SQLite: WAL (readers do not block the writer), a 30 s busy timeout (writers
from several processes queue rather than fail), usable from any thread. A file
this process cannot write (or whose folder it cannot write, so that WAL's side
files cannot be made) is opened read-only, as it is: reading commands work,
writes raise :class:`LedgerReadOnly`.
PostgreSQL: psycopg 3, connections checked before use, a 10 s connect timeout.

A URL judgeq cannot use (unparseable, another database, SQLite in memory, a
driver that is not installed) raises :class:`LedgerConfigError` before any
connection; database errors that reconnecting cannot fix are raised as the
ledger errors ``ledger.refusals`` names.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, ExceptionContext

from ledger.errors import LedgerConfigError, LedgerUnavailable
from ledger.refusals import classify
from ledger.urls import bad_host, mask_url, normalize_url

SQLITE_BUSY_TIMEOUT_S: Final = 30
PG_CONNECT_TIMEOUT_S: Final = 10
BACKENDS: Final = ("sqlite", "postgresql")
URL_FORMS: Final = "sqlite:///path/to/judgeq.db or postgresql://user@host/dbname"


def create_ledger_engine(url: str) -> Engine:
    """Return an engine for ``url`` (``postgresql://`` is taken to mean psycopg 3).

    Raises LedgerConfigError for a URL judgeq cannot use, before connecting.
    """
    url = normalize_url(url)
    parsed = check_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url, parsed)
    else:
        engine = sa.create_engine(
            url,
            pool_pre_ping=True,
            connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S, "application_name": "judgeq"},
        )

    @sa.event.listens_for(engine, "handle_error")
    def _refusals(context: ExceptionContext) -> None:
        if context.is_disconnect:  # a lost connection is the callers' to retry
            return
        error = classify(url, context.original_exception)
        if error is not None:
            raise error from context.original_exception

    return engine


def check_url(url: str) -> sa.URL:
    """``url`` parsed; LedgerConfigError if it is not a ledger judgeq can use, saying what to write instead."""
    try:
        bad_host(url)  # urllib's check of the host part: make_url takes "[foo" as a host name
        parsed = sa.make_url(url)
    except ValueError:  # also make_url's, for a port that is no number ("[::1/db" reads ":1" as the port)
        raise LedgerConfigError(
            f"cannot read the host and port of the ledger URL {mask_url(url)!r}: an IPv6 address goes in closed "
            "brackets and a port is a number, e.g. postgresql://user@[::1]:5432/dbname (in JUDGEQ_LEDGER_URL or "
            "--ledger-url)"
        ) from None
    except sa.exc.ArgumentError:
        raise LedgerConfigError(
            f"cannot parse the ledger URL {mask_url(url)!r}; write it like {URL_FORMS} "
            "(in JUDGEQ_LEDGER_URL or --ledger-url)"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in BACKENDS:
        raise LedgerConfigError(
            f"unsupported ledger URL {mask_url(url)}: the ledger is SQLite or PostgreSQL; use {URL_FORMS}"
        )
    if backend == "sqlite" and _in_memory(parsed):
        raise LedgerConfigError(
            f"the ledger URL {url} is an in-memory SQLite database, which vanishes with each process "
            "and is not shared with workers; use a file: sqlite:///judgeq.db"
        )
    try:
        parsed.get_dialect().import_dbapi()
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise LedgerConfigError(
            f"the ledger URL {mask_url(url)} needs a database driver that is not installed ({exc}); "
            f"use {URL_FORMS} (judgeq ships with SQLite's and psycopg 3), or install that driver"
        ) from None
    return parsed


def _in_memory(url: sa.URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or database.startswith("file::memory:") or url.query.get("mode") == "memory"


def _sqlite_engine(url: str, parsed: sa.URL) -> Engine:
    connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
    read_only = _read_only_uri(parsed)
    if read_only is None:
        engine = sa.create_engine(url, connect_args=connect_args)
    else:
        engine = sa.create_engine(url, creator=lambda: sqlite3.connect(read_only, uri=True, **connect_args))

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
            if read_only is None:
                _use_wal(cursor)
        finally:
            cursor.close()

    return engine


def _read_only_uri(url: sa.URL) -> str | None:
    """The SQLite URI that opens the ledger file read-only, or None when this process may write it.

    Writing needs the file and its folder (WAL keeps ``-wal`` and ``-shm``
    files beside it). A read-only open still needs a ``-shm`` file unless the
    database is opened ``immutable``: that is done only when the folder is
    not writable and no ``-wal`` file exists, i.e. everything is in the file.
    """
    if url.query.get("uri") or not url.database:  # the user's own SQLite URI: taken as given
        return None
    path = Path(url.database)
    if not path.is_file():
        return None  # created on first use, or SQLite says why it cannot be opened
    folder_writable = os.access(path.parent, os.W_OK)
    if os.access(path, os.W_OK) and folder_writable:
        return None
    immutable = not folder_writable and not Path(f"{path}-wal").exists()
    return f"file:{quote(str(path.resolve()))}?mode=ro" + ("&immutable=1" if immutable else "")


def _use_wal(cursor: Any) -> None:
    """Switch the database file to WAL (a persistent setting), retrying while it is locked.

    Retrying here (tenacity: 10 ms doubling up to 0.5 s, for up to the busy
    timeout) because SQLite does not call the busy handler for this lock:
    processes opening a new file at the same moment would otherwise fail at
    once with "database is locked". Any other error, or the last one, is raised as it is.
    """
    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

    for attempt in Retrying(retry=retry_if_exception(_locked), stop=stop_after_delay(SQLITE_BUSY_TIMEOUT_S),
                            wait=wait_exponential(multiplier=0.01, max=0.5), reraise=True):
        with attempt:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def connect(engine: Engine) -> Connection:
    """``engine.connect()``, raising :class:`LedgerUnavailable` when the database cannot be reached."""
    try:
        return engine.connect()
    except sa.exc.OperationalError as exc:
        raise LedgerUnavailable.at(engine.url.render_as_string(hide_password=False), exc.orig or exc) from exc
