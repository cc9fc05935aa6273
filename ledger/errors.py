"""Errors raised by the ledger.

LedgerError              base of everything raised by ledger/
├── LedgerUnavailable    the database cannot be reached or opened, or is busy: try again later
├── LedgerUrlError       the ledger URL cannot be used as written (an unescaped '@' or '/' in its password)
├── LedgerRefused        the database refused a statement: privileges, read-only, disk full, ...
│   └── LedgerDataError  a value in the rows cannot be stored (a data exception, a constraint)
├── RunNotFound          no run has the id asked for
├── RunExists            a run with that id was already created
└── MigrationError       the schema cannot be brought to (or is past) this code's head

:func:`from_database` sorts an exception of the database driver (as SQLAlchemy
wraps it, or raw when the driver fails before the database sees the
statement) into this tree. Workers retry a chunk on any LedgerError except
LedgerDataError, which the ledger handles row by row (``Ledger.write_scores``).
"""

from __future__ import annotations

from ledger.urls import mask_url, redact_secrets

#: PostgreSQL SQLSTATEs (and classes, by their first two characters) that mean the server is gone or busy.
_PG_UNAVAILABLE = ("08", "57P01", "57P02", "57P03", "53300")
#: Ones that name a value of a row: data exceptions and integrity constraints.
_PG_DATA = ("22", "23")
#: SQLite result codes (``sqlite3.Error.sqlite_errorname``, extended codes start with these).
_SQLITE_UNAVAILABLE = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR")
_SQLITE_DATA = ("SQLITE_CONSTRAINT", "SQLITE_MISMATCH", "SQLITE_TOOBIG", "SQLITE_RANGE")
#: Python exceptions a driver raises before the database sees a value it cannot send (a huge int, bad text).
_CLIENT_DATA = (OverflowError, UnicodeError)
#: PEP 249 exception classes of a value the database (or driver) will not take, by name: no driver imported here.
_DBAPI_DATA = {"DataError", "IntegrityError"}

_DATA_HINT = "a value written does not fit its column"

_RESUME = "a run it stopped is completed by 'judgeq resume RUN'"


class LedgerError(Exception):
    """Raised for anything that goes wrong in ledger/."""


class LedgerUnavailable(LedgerError):
    """Raised when the ledger database cannot be connected to or opened, or stays busy."""

    @classmethod
    def at(cls, url: str, reason: BaseException | str) -> LedgerUnavailable:
        """The error for ``url`` (password masked) failing with ``reason``."""
        if url.startswith("sqlite"):
            hint = "check that its folder exists and is writable, or set JUDGEQ_LEDGER_URL"
        else:
            hint = "check that the database server is running and reachable, or set JUDGEQ_LEDGER_URL"
        return cls(f"cannot open the ledger at {mask_url(url)} ({_first_line(reason, url)}); {hint}")


class LedgerRefused(LedgerError):
    """Raised when the database refuses a statement for a reason retrying alone will not fix.

    ``detail`` is the database's own words (one line), without the URL or the hint.
    """

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail or message

    @classmethod
    def at(cls, url: str, reason: BaseException | str, hint: str = "fix the database") -> LedgerRefused:
        """The error for ``url`` (password masked) refusing a statement with ``reason``."""
        detail = _first_line(reason, url)
        return cls(f"the ledger at {mask_url(url)} refused a statement ({detail}); {hint}; {_RESUME}", detail)


class LedgerDataError(LedgerRefused):
    """Raised when a value of the rows written cannot be stored (out of range, not allowed by a constraint)."""


def from_database(url: str, exc: BaseException) -> LedgerError:
    """The ledger error for ``exc``, an error of the database or its driver while using ``url``.

    ``exc`` is SQLAlchemy's wrapper (the driver's error in ``orig``) or the
    driver's own. A connection SQLAlchemy invalidated, a server shutting down or
    a busy database are :class:`LedgerUnavailable`; a value the database will
    not take is :class:`LedgerDataError`; the rest (privileges, a read-only or
    full database) is :class:`LedgerRefused`, with a hint of what to fix.
    """
    orig = getattr(exc, "orig", None) or exc
    if getattr(exc, "connection_invalidated", False):
        return LedgerUnavailable.at(url, orig)
    code = str(getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None) or "")
    if code.startswith(_PG_UNAVAILABLE + _SQLITE_UNAVAILABLE):
        return LedgerUnavailable.at(url, orig)
    if isinstance(orig, _CLIENT_DATA):
        return LedgerDataError.at(url, f"{type(orig).__name__}: {orig}", _DATA_HINT)
    if code.startswith(_PG_DATA + _SQLITE_DATA) or _DBAPI_DATA & {kind.__name__ for kind in type(orig).__mro__}:
        return LedgerDataError.at(url, orig, _DATA_HINT)
    return LedgerRefused.at(url, orig, _hint(code))


def _hint(code: str) -> str:
    if code in ("42501", "SQLITE_PERM", "SQLITE_AUTH"):
        return "grant the ledger's database role SELECT, INSERT and UPDATE on the ledger's tables"
    if code == "25006" or code.startswith("SQLITE_READONLY"):
        return "point JUDGEQ_LEDGER_URL at a writable database (a primary, a file this user may write)"
    if code.startswith(("40", "55P03")):
        return "it met a concurrent transaction (a deadlock, a lock); trying again usually succeeds"
    if code.startswith("53") or code == "SQLITE_FULL":
        return "free disk space where the database lives"
    return "fix the database"


def _first_line(reason: BaseException | str, url: str) -> str:
    """The reason's first line, without any part of ``url``'s secrets (a driver may repeat them)."""
    text = str(reason).strip()
    return redact_secrets(text.splitlines()[0], url) if text else type(reason).__name__


class LedgerUrlError(LedgerError):
    """Raised when the ledger URL cannot be used as written; the message shows it masked."""


class RunNotFound(LedgerError):
    """Raised when no run has the id asked for."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id {run_id!r}; see `judgeq status` for the list of runs")
        self.run_id = run_id


class RunExists(LedgerError):
    """Raised when creating a run whose id is already in the ledger."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} already exists; resume it, or submit under another id")
        self.run_id = run_id


class MigrationError(LedgerError):
    """Raised when the ledger schema cannot be migrated, or is newer than this judgeq."""
