"""Errors raised by the ledger.

LedgerError                    base of everything raised by ledger/
├── LedgerUnavailable          the database cannot be reached or opened, or is busy: try again later
├── RunNotFound                no run has the id asked for
├── RunExists                  a run with that id was already created
├── MigrationError             the schema cannot be brought to (or is past) this code's head
├── LedgerConfigError          the ledger URL cannot be used (unparseable, unsupported, in memory, no driver)
├── LedgerUrlError             the ledger URL's password holds an unescaped '@' or '/'
├── LedgerRefused              the database answers but refuses, and reconnecting will not help
│   ├── LedgerPermissionDenied the role (or the file's permissions) does not allow the operation
│   ├── LedgerReadOnly         the database accepts no writes (a read-only file or folder, a standby)
│   ├── LedgerCorrupt          the file is not a database, or is damaged
│   ├── LedgerFull             the disk (or a size limit) is full
│   └── LedgerDataError        a value in the rows cannot be stored (a data exception, a constraint)
└── LedgerArgumentError        a ledger function was given values it cannot use (a caller's bug)

Which database error is which is decided in ``ledger.refusals`` (``from_database``).
Workers retry a chunk on any LedgerError except LedgerDataError, which the
ledger handles row by row (``Ledger.scores.write_scores``).

The whole tree and its exit codes: judgeq/errors.py.
"""

from __future__ import annotations

from judgeq.errors import BAD_INPUT, INFRASTRUCTURE, INTERNAL, JudgeqError
from ledger.urls import mask_url, redact_secrets


class LedgerError(JudgeqError):
    """Raised for anything that goes wrong in ledger/."""

    exit_code = INFRASTRUCTURE


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


def _first_line(reason: BaseException | str, url: str) -> str:
    """The reason's first line, without any part of ``url``'s secrets (a driver may repeat them)."""
    text = str(reason).strip()
    return redact_secrets(text.splitlines()[0], url) if text else type(reason).__name__


class LedgerUrlError(LedgerError):
    """Raised when the ledger URL cannot be used as written; the message shows it masked."""

    exit_code = BAD_INPUT


class RunNotFound(LedgerError):
    """Raised when no run has the id asked for."""

    exit_code = BAD_INPUT

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id {run_id!r}; see `judgeq runs` for the list of runs")
        self.run_id = run_id


class RunExists(LedgerError):
    """Raised when creating a run whose id is already in the ledger."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} already exists; resume it, or submit under another id")
        self.run_id = run_id


class MigrationError(LedgerError):
    """Raised when the ledger schema cannot be migrated, or is newer than this judgeq."""


class LedgerConfigError(LedgerError):
    """Raised when the ledger URL cannot be used: unparseable, an unsupported database, in memory, or no driver."""

    exit_code = BAD_INPUT


class LedgerRefused(LedgerError):
    """Raised when the database answers but refuses the operation for a reason reconnecting cannot fix."""

    #: What the refusal means, for the message: "refuses access", "is read-only", ...
    what = "refused the operation"
    #: What to do about it.
    hint = "check the database, or set JUDGEQ_LEDGER_URL"

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        #: The database's own words (one line), without the URL or the hint.
        self.detail = detail or message

    @classmethod
    def at(cls, url: str, reason: BaseException | str, hint: str | None = None) -> LedgerRefused:
        """The error for the ledger at ``url`` (password masked) refusing with ``reason``."""
        detail = _first_line(reason, url)
        return cls(f"the ledger at {mask_url(url)} {cls.what} ({detail}); {hint or cls.hint}", detail)


class LedgerPermissionDenied(LedgerRefused):
    """Raised when the database role, or the file's permissions, do not allow the operation."""

    what = "refuses access"
    hint = ("grant the role judgeq connects as SELECT, INSERT, UPDATE, DELETE on the ledger's tables "
            "(or use the role that created them), or set JUDGEQ_LEDGER_URL")


class LedgerReadOnly(LedgerRefused):
    """Raised when a write reaches a database that accepts none (a read-only file or folder, a standby server)."""

    what = "is read-only"
    hint = ("judgeq runs, status, report, gate and compare can read it; to write, make the file and its "
            "folder writable, or set JUDGEQ_LEDGER_URL")


class LedgerCorrupt(LedgerRefused):
    """Raised when the ledger file is not a database, or is damaged."""

    what = "is not a usable database"
    hint = "restore it from a backup, or point JUDGEQ_LEDGER_URL at another file (a new file is created empty)"


class LedgerFull(LedgerRefused):
    """Raised when the disk holding the database, or a size limit of it, is full."""

    what = "is full"
    hint = "free disk space (or raise the database's size limit), then run the command again"


class LedgerDataError(LedgerRefused):
    """Raised when a value of the rows written cannot be stored (out of range, not allowed by a constraint)."""

    what = "refused a value"
    hint = "a value written does not fit its column"


class LedgerArgumentError(LedgerError, ValueError):
    """Raised when a ledger function is given values it cannot use: a bug in the caller, not bad data.

    Also a ValueError, which is what such a call raised before it had a class of its own.
    """

    exit_code = INTERNAL
