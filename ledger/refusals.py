"""Database errors that reconnecting cannot fix, named as ledger errors.

SQLAlchemy raises one ``DBAPIError`` family for everything a database says;
which of those are the operator's to fix (a role without privileges, a
read-only or corrupt file, a full disk) is decided here, from the driver's own
codes: SQLite's result codes (``sqlite3.Error.sqlite_errorcode``) and
PostgreSQL's SQLSTATEs (``psycopg.Error.sqlstate``). The engine's
``handle_error`` hook (``ledger.engine``) raises what :func:`classify` returns
in place of the driver's error, so every caller sees a :class:`LedgerError`.

Errors not named here (a constraint, a data error, a lost connection) are
left to their callers.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from ledger.errors import (LedgerCorrupt, LedgerError, LedgerFull, LedgerPermissionDenied, LedgerReadOnly,
                           LedgerRefused, LedgerUnavailable)

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
}


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
