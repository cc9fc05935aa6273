"""Errors raised by the ledger.

LedgerError            base of everything raised by ledger/
├── LedgerUnavailable  the database cannot be reached or opened
├── LedgerUrlError     the ledger URL cannot be used as written (an unescaped '@' or '/' in its password)
├── RunNotFound        no run has the id asked for
├── RunExists          a run with that id was already created
└── MigrationError     the schema cannot be brought to (or is past) this code's head
"""

from __future__ import annotations

from ledger.urls import mask_url, redact_secrets


class LedgerError(Exception):
    """Raised for anything that goes wrong in ledger/."""


class LedgerUnavailable(LedgerError):
    """Raised when the ledger database cannot be connected to or opened."""

    @classmethod
    def at(cls, url: str, reason: BaseException | str) -> LedgerUnavailable:
        """The error for ``url`` (password masked) failing with ``reason``."""
        detail = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
        detail = redact_secrets(detail, url)  # a driver may repeat part of the URL
        if url.startswith("sqlite"):
            hint = "check that its folder exists and is writable, or set JUDGEQ_LEDGER_URL"
        else:
            hint = "check that the database server is running and reachable, or set JUDGEQ_LEDGER_URL"
        return cls(f"cannot open the ledger at {mask_url(url)} ({detail}); {hint}")


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
