"""Interrupts and failures while a run is being submitted or resumed: what became of the run, in one line.

Ctrl-C and SIGTERM exit 3 (infrastructure: the run stays resumable), naming
the exact ``judgeq resume`` or ``judgeq abandon`` command for the run as far
as it got.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import typer

from . import exitcodes
from .failures import one_line


def interrupt_on_sigterm() -> None:
    """SIGTERM (CI cancelling a job, ``kill``) takes the same path as Ctrl-C (:func:`interruptible`)."""
    import signal

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


class Submission:
    """What an interrupt or a failure during submit or resume has to say: the run, and how far it got."""

    def __init__(self, dataset: Optional[Path], run_id: Optional[str] = None) -> None:
        self.dataset = dataset
        self.run_id = run_id  # set once the run's row exists
        self.sent = threading.Event()  # set once every item is stored and sent

    def next_step(self) -> str:
        if self.run_id is None:
            return "no run was created"
        if self.sent.is_set() or self.dataset is None:  # every item is stored
            return f"run {self.run_id} stays resumable with 'judgeq resume {self.run_id}'"
        return (f"run {self.run_id} was cut off while it was being submitted; complete it with "
                f"'judgeq resume {self.run_id} --dataset {shlex.quote(str(self.dataset))}', "
                f"or give it up with 'judgeq abandon {self.run_id}'")


@contextlib.contextmanager
def interruptible(submission: Submission) -> Iterator[Submission]:
    """Ctrl-C and SIGTERM exit 3 saying what became of the run; a failure says so too, then goes on.

    Handled in the command because Typer turns an interrupt into exit 130 before ``main`` sees it.
    """
    from .errors import SchedulerError

    try:
        yield submission
    except (SchedulerError, typer.Exit):  # bad input (a changed file abandons the run), or a verdict
        raise
    except KeyboardInterrupt:
        say(f"judgeq: interrupted; {submission.next_step()}")
        raise typer.Exit(exitcodes.INFRASTRUCTURE) from None
    except Exception as exc:
        if submission.run_id is not None and exitcodes.for_error(exc) == exitcodes.INFRASTRUCTURE:
            say(f"judgeq: {one_line(exc)}; {submission.next_step()}")  # one line: what failed, what to do
            raise typer.Exit(exitcodes.INFRASTRUCTURE) from None
        if submission.run_id is not None and not submission.sent.is_set():
            say(f"judgeq: {submission.next_step()}")
        raise


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
