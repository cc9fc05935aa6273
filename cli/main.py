"""The ``judgeq`` command line: the root app, its global flags, every command's registration, and ``main``.

With ``scheduler.failures`` and ``scheduler.interrupts``, the only place where
errors become exit codes (:func:`main`). The commands live in
``cli/commands/``, one module per topic; this module imports them and
registers each on ``app``, in the order ``judgeq --help`` lists them. They
never import this module, so the registration has no import circle (as
inspect_ai's ``_cli/main.py``). The root callback parses the global flags into
``ctx.obj`` (``cli.state``), where every command finds its settings. Heavy
modules (Celery, SQLAlchemy, litellm) are imported inside commands, so
``judgeq --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.commands import budget, canary, db, distill, drift, exporter, fleet, judges, offline, online, promote, reports
from cli.help_text import PlainHelpGroup
from cli.state import CliState
from judgeq.errors import exit_code
from scheduler.failures import fail

app = typer.Typer(
    name="judgeq",
    cls=PlainHelpGroup,  # help texts show [online.NAME] as written, not as Rich markup
    help="A distributed judge worker queue for LLM evaluations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _global(
    ctx: typer.Context,
    config: Annotated[Optional[Path], typer.Option(envvar="JUDGEQ_CONFIG", help="Judge config file (default: judgeq.toml).")] = None,
    broker_url: Annotated[Optional[str], typer.Option(envvar="JUDGEQ_BROKER_URL", help="Celery broker URL (unset: embedded mode, judging in this process).")] = None,
    ledger_url: Annotated[Optional[str], typer.Option(envvar="JUDGEQ_LEDGER_URL", help="Ledger database URL (default: sqlite:///judgeq.db).")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="On an error, print its traceback (unexpected errors otherwise keep it in a file).")] = False,
) -> None:
    """The flags win over the environment; commands get them from ``ctx.obj`` (``cli.state.settings_of``)."""
    from scheduler.settings import CliSettings

    state = ctx.ensure_object(CliState)
    state.debug = debug
    state.settings = CliSettings(config=config, broker_url=broker_url, ledger_url=ledger_url)


#: The commands, in the order `judgeq --help` lists them (typer keeps the order of registration).
COMMANDS = (
    ("submit", offline.submit),
    ("status", reports.status),
    ("runs", reports.runs),
    ("report", reports.report),
    ("gate", reports.gate_command),
    ("compare", reports.compare),
    ("resume", offline.resume),
    ("abandon", offline.abandon),
    ("judges", judges.judges),
    ("worker", fleet.worker),
    ("flower", fleet.flower),
    ("online", online.online),
    ("explain", online.explain),
    ("beat", fleet.beat),
    ("drift", drift.drift),
    ("exporter", exporter.exporter),
    ("export-otel", exporter.export_otel),
    ("export-phoenix", exporter.export_phoenix),
    ("distill", distill.distill),
    ("promote", promote.promote),
)
for _name, _command in COMMANDS:
    app.command(_name)(_command)
app.add_typer(db.db_app, name="db")
app.add_typer(budget.budget_app, name="budget")
app.add_typer(canary.canary_app, name="canary")


def main() -> None:
    """Entry point: run the app; an error ends it with one line on stderr and its exit code.

    See :mod:`scheduler.failures`; ``--debug`` prints the traceback. The state is
    made here, not by the root callback, so that ``--debug`` is still known
    once the app has failed.
    """
    state = CliState()
    try:
        app(obj=state)
    except KeyboardInterrupt as exc:
        print("judgeq: interrupted; the run stays resumable with 'judgeq resume RUN'", file=sys.stderr)
        sys.exit(exit_code(exc))
    except Exception as exc:
        fail(exc, debug=state.debug)
    finally:
        if state.settings is not None:  # the command's ledgers, closed as it ends (in a test's process too)
            state.settings.close()
