"""``judgeq db``: the ledger database's own group (``upgrade``, ``prune``), added to the root app by ``cli.main``."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from cli.options import JsonOpt
from cli.state import settings_of

db_app = typer.Typer(help="The ledger database.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply the ledger's migrations (also done on first use of an empty database)."""
    from ledger.migrate import upgrade

    upgrade(settings_of(ctx).ledger_url)
    print("ledger is at the newest schema", file=sys.stderr)


@db_app.command("prune")
def db_prune(
    ctx: typer.Context,
    days: Annotated[Optional[int], typer.Option("--days", min=1, max=36_500, help="Keep this many days "
                                                "(default: JUDGEQ_RETENTION_DAYS, 90).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Delete the budget controller's decisions and the drift checks older than the retention (beat does it daily).

    Budget changes, runs and score rows are never pruned.
    """
    from datetime import UTC, datetime

    from online.retention import prune

    settings = settings_of(ctx)
    with settings.ledger() as ledger:
        pruned = prune(ledger, datetime.now(UTC), days if days is not None else settings.online.retention_days)
    if json_out:
        from cli.views.render import print_json

        print_json(pruned.to_json())
        return
    print(pruned.summary())
