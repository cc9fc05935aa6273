"""``python -m ledger [URL]``: migrate the ledger (default: JUDGEQ_LEDGER_URL) to head.

The operator's step when a new judgeq needs a newer schema than an existing
ledger has (workers refuse to upgrade a ledger in use behind a fleet's back).
"""

from __future__ import annotations

import sys

from judgeq.errors import exit_code
from ledger.errors import LedgerError
from ledger.migrate import head_revision, upgrade
from ledger.settings import LedgerSettings
from ledger.urls import mask_url


def main(argv: list[str] | None = None) -> int:
    """The entry point: the process's one settings object, built here (``argv[0]`` over JUDGEQ_LEDGER_URL)."""
    args = sys.argv[1:] if argv is None else argv
    settings = LedgerSettings(ledger_url=args[0]) if args else LedgerSettings()
    return migrate(settings.ledger_url)


def migrate(url: str) -> int:
    """Migrate the ledger at ``url`` to head; return the exit code."""
    try:
        upgrade(url)
    except LedgerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_code(exc)  # bad configuration 2, infrastructure 3 (docs/architecture.md, "Exit codes")
    print(f"ledger at {mask_url(url)} is at revision {head_revision()}")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
