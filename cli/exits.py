"""How a command ends when it does not simply return: an ``Ending`` said, or a Celery process's exit code kept.

Errors end a command through ``scheduler.failures`` (in ``cli.main.main``);
these two are the endings a command chooses itself.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, NoReturn, Optional

import typer

from judgeq.errors import GATE_FAILED, INFRASTRUCTURE

if TYPE_CHECKING:
    from scheduler.finish import Ending


def end(ending: Ending) -> None:
    """Say the ending's lines on stderr and exit with its code (0: return)."""
    for line in ending.lines:
        print(line, file=sys.stderr)
    if ending.code:
        raise typer.Exit(ending.code)


def alert(webhook: Optional[str], payload: dict[str, Any], text: str, recorded_in: str) -> NoReturn:
    """End a check that alerted: post it to ``webhook`` (if given; a webhook that fails costs a warning, the
    alert stands) and exit 1 (GATE_FAILED). ``recorded_in``: the ledger table that holds the check."""
    if webhook is not None:
        from online.webhook import post_alert

        problem = post_alert(webhook, payload, text)
        if problem:
            print(f"judgeq: warning: {problem}; the alert is printed above and recorded in the ledger "
                  f"({recorded_in})", file=sys.stderr)
    raise typer.Exit(GATE_FAILED)


def exit_like(code: Optional[int], what: str) -> None:
    """Exit non-zero when Celery's command did (``app.worker_main`` drops the code), so a supervisor restarts it.

    A worker that stops on an unrecoverable error exits 1 in Celery; judgeq
    keeps 1 for a failed gate, so it becomes INFRASTRUCTURE (3).
    """
    if code:
        print(f"judgeq: the {what} stopped after an error (Celery's exit code {code}); see its log above",
              file=sys.stderr)
        raise typer.Exit(INFRASTRUCTURE)
