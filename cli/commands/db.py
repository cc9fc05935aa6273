"""``judgeq db``: the ledger database's own group (``upgrade``), added to the root app by ``cli.main``."""

from __future__ import annotations

import sys

import typer

from cli.state import settings_of

db_app = typer.Typer(help="The ledger database.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply the ledger's migrations (also done on first use of an empty database)."""
    from ledger.migrate import upgrade

    upgrade(settings_of(ctx).ledger_url)
    print("ledger is at the newest schema", file=sys.stderr)
