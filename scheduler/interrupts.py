"""Interrupts and failures while a run is being submitted or resumed: what became of the run, in one line.

Ctrl-C and SIGTERM exit 3 (infrastructure: the run stays resumable), naming
the exact ``judgeq resume`` or ``judgeq abandon`` command for the run as far
as it got. An embedded run (judged in this process) that was "running" is
then "stopped": nothing judges it any more, and ``judgeq status`` and
``judgeq runs`` say so until ``judgeq resume`` continues it. A fleet's run
stays "running": its workers go on without the submitter.
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

from judgeq.errors import INFRASTRUCTURE, exit_code

from .failures import one_line


_signalled: list[int] = []  # the signals received, in order; never cleared in a process


def interrupt_on_signals() -> None:
    """SIGTERM (CI cancelling a job, ``kill``) and Ctrl-C both take the path of :func:`interruptible`.

    The handler raises ``KeyboardInterrupt`` where the main thread happens to
    be, which stops a blocking call at once; but when that is inside a weakref
    callback or a ``__del__``, Python prints the exception and drops it. The
    signal is also recorded, so :func:`checkpoint` (between batches, between
    polls, at the end of the command) raises it again: an interrupt is never lost.
    """
    import signal

    def interrupt(signum: int, frame: Any) -> None:
        _signalled.append(signum)
        raise KeyboardInterrupt(f"signal {signum}")

    def unraisable(hook: Any) -> None:  # a dropped interrupt is re-raised by checkpoint(): no noise about it
        if not (_signalled and isinstance(hook.exc_value, KeyboardInterrupt)):
            default_hook(hook)

    default_hook = sys.unraisablehook
    sys.unraisablehook = unraisable
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)


def checkpoint() -> None:
    """Raise the interrupt a signal asked for, if Python dropped it (see :func:`interrupt_on_signals`).

    Only the main thread raises: the threads of the embedded fleet stop through their own event.
    """
    if _signalled and threading.current_thread() is threading.main_thread():
        raise KeyboardInterrupt(f"signal {_signalled[-1]}")


class Submission:
    """What an interrupt or a failure during submit or resume has to say: the run, and how far it got."""

    def __init__(self, dataset: Optional[Path], run_id: Optional[str] = None) -> None:
        self.dataset = dataset
        self.run_id = run_id  # set once the run's row exists
        self.sent = threading.Event()  # set once every item is stored and sent
        self.ledger: Any = None  # set when this process judges the run itself (embedded): stopped with it

    def stopped(self) -> None:
        """Mark an embedded run "stopped" as the process ends without it (best effort: the ledger may be down)."""
        if self.ledger is None or self.run_id is None:
            return
        try:
            self.ledger.runs.mark_stopped(self.run_id)
        except Exception as exc:  # the exit code and the next step are what matter now
            say(f"judgeq: could not mark run {self.run_id} stopped ({one_line(exc)})")

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
        checkpoint()  # a signal that came while the last step finished still exits 3
    except (SchedulerError, typer.Exit):  # bad input (a changed file abandons the run), or a verdict
        raise
    except KeyboardInterrupt as exc:
        submission.stopped()
        say(f"judgeq: interrupted; {submission.next_step()}")
        raise typer.Exit(exit_code(exc)) from None
    except Exception as exc:
        if submission.run_id is not None and exit_code(exc) == INFRASTRUCTURE:
            submission.stopped()
            say(f"judgeq: {one_line(exc)}; {submission.next_step()}")  # one line: what failed, what to do
            raise typer.Exit(INFRASTRUCTURE) from None
        if submission.run_id is not None and not submission.sent.is_set():
            say(f"judgeq: {submission.next_step()}")
        raise


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
