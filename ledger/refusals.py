"""Database errors that reconnecting cannot fix, named as ledger errors.

SQLAlchemy raises one ``DBAPIError`` family for everything a database says;
which of those are the operator's to fix (a role without privileges, a
read-only or corrupt file, a full disk) is decided here, from the driver's own
codes: SQLite's result codes (``sqlite3.Error.sqlite_errorcode``) and
PostgreSQL's SQLSTATEs (``psycopg.Error.sqlstate``). The engine's
``handle_error`` hook (``ledger.engine``) raises what :func:`classify` returns
in place of the driver's error, so every caller sees a :class:`LedgerError`.

:func:`from_database` is the whole sorting, for a ledger call that failed: a
connection SQLAlchemy invalidated or a busy database is
:class:`LedgerUnavailable`; a value the database (or the driver, before
sending it) will not take is :class:`LedgerDataError`; a known refusal is its
class; anything else the database said is a plain :class:`LedgerRefused`.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from ledger.errors import (LedgerCorrupt, LedgerDataError, LedgerError, LedgerFull, LedgerPermissionDenied,
                           LedgerReadOnly, LedgerRefused, LedgerUnavailable)

#: SQLite result codes (extended, then primary: the low byte) and what they mean for the ledger.
SQLITE_CODES: Final[dict[int, type[LedgerRefused] | type[LedgerUnavailable]]] = {
    sqlite3.SQLITE_IOERR_SHMSIZE: LedgerFull,  # WAL's -shm file cannot grow: seen when the disk is full
    sqlite3.SQLITE_PERM: LedgerPermissionDenied,
    sqlite3.SQLITE_AUTH: LedgerPermissionDenied,
    sqlite3.SQLITE_READONLY: LedgerReadOnly,
    sqlite3.SQLITE_CORRUPT: LedgerCorrupt,
    sqlite3.SQLITE_NOTADB: LedgerCorrupt,
    sqlite3.SQLITE_FULL: LedgerFull,
    sqlite3.SQLITE_CANTOPEN: LedgerUnavailable,
    sqlite3.SQLITE_IOERR: LedgerUnavailable,
    sqlite3.SQLITE_BUSY: LedgerUnavailable,  # still locked after the busy timeout
    sqlite3.SQLITE_LOCKED: LedgerUnavailable,
}

#: PostgreSQL SQLSTATEs (exact, then by their two-character class) and what they mean for the ledger.
PG_STATES: Final[dict[str, type[LedgerRefused] | type[LedgerUnavailable]]] = {
    "42501": LedgerPermissionDenied,  # insufficient_privilege
    "28": LedgerPermissionDenied,  # invalid authorization specification (user, password)
    "25006": LedgerReadOnly,  # read_only_sql_transaction: a standby, or default_transaction_read_only
    "53100": LedgerFull,  # disk_full
    "XX001": LedgerCorrupt,  # data_corrupted
    "XX002": LedgerCorrupt,  # index_corrupted
    "53": LedgerUnavailable,  # insufficient resources: out of memory, too many connections
    "57P03": LedgerUnavailable,  # cannot_connect_now: starting up or shutting down
    "57P01": LedgerUnavailable,  # admin_shutdown
    "57P02": LedgerUnavailable,  # crash_shutdown
    "08": LedgerUnavailable,  # connection exceptions
    "40": LedgerUnavailable,  # a deadlock or serialization failure: trying again succeeds
    "55P03": LedgerUnavailable,  # lock_not_available
}

#: SQLSTATE classes, and SQLite primary codes, of a value a row holds: data exceptions and constraints.
PG_DATA: Final = ("22", "23")
SQLITE_DATA: Final = (sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_RANGE)
#: Python exceptions a driver raises before the database sees a value it cannot send (a huge int, bad text).
CLIENT_DATA: Final = (OverflowError, UnicodeError)
#: PEP 249 exception classes of a value the database will not take, by name: no driver imported here.
DBAPI_DATA: Final = frozenset({"DataError", "IntegrityError"})


def classify(url: str, error: BaseException) -> LedgerError | None:
    """The ledger error for a driver's ``error`` at ``url``; None when it is not one of the above."""
    kind: type[LedgerRefused] | type[LedgerUnavailable] | None = None
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        if code is not None:
            kind = SQLITE_CODES.get(code) or SQLITE_CODES.get(code & 0xFF)
    else:
        state = getattr(error, "sqlstate", None)
        if isinstance(state, str):
            kind = PG_STATES.get(state) or PG_STATES.get(state[:2])
    return kind.at(url, error) if kind is not None else None


def from_database(url: str, exc: BaseException) -> LedgerError:
    """The ledger error for ``exc``: SQLAlchemy's wrapper of a driver error (``orig``), or the driver's own."""
    orig = getattr(exc, "orig", None) or exc
    if getattr(exc, "connection_invalidated", False):
        return LedgerUnavailable.at(url, orig)
    if isinstance(orig, CLIENT_DATA):
        return LedgerDataError.at(url, f"{type(orig).__name__}: {orig}")
    known = classify(url, orig)
    if known is not None:
        return known
    code = getattr(orig, "sqlite_errorcode", None)
    state = getattr(orig, "sqlstate", None)
    if ((isinstance(code, int) and code & 0xFF in SQLITE_DATA) or (isinstance(state, str) and state[:2] in PG_DATA)
            or DBAPI_DATA & {kind.__name__ for kind in type(orig).__mro__}):
        return LedgerDataError.at(url, orig)
    return LedgerRefused.at(url, orig)
