"""Waiting for a run: the ledger, not Celery, says how far it got.

The ledger may go away while we wait (a PostgreSQL restart, a failover). The
workers ride that out (they retry a chunk every 15 s for 5 minutes), so the
waiter does too: it keeps polling, says so on the progress line, and gives up
only at its ``--timeout`` or once the ledger has been unreachable for
``outage_s`` seconds in a row (``JUDGEQ_WAIT_OUTAGE_S``).

What the waiter shows and how it is interrupted are the caller's (the CLI
passes its progress line and its interrupt checkpoint), and so is what it does
when a fleet run's rows stand still: ``stall`` (``workers.lost.StallWatch``
looks for chunks a killed worker took with it and sends their items again).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from ledger.errors import LedgerUnavailable
from ledger.rows import Progress
from ledger.store import Ledger

from .intake import mark_done

OUTAGE_POLL_S = 1.0  # at least this long between polls while the ledger is unreachable


class View(Protocol):
    """Where the waiter shows progress (the CLI's ``cli.views.progress.ProgressView``, through a ``Reporter``)."""

    def update(self, done: int, extra: str = "", *, now: bool = False) -> None: ...


class Watch(Protocol):
    """Looks at each poll's progress of a run still short of its rows (``workers.lost.StallWatch``)."""

    def watch(self, progress: Progress, view: View) -> None: ...


def wait_for(run_id: str, ledger: Ledger, view: View, *, timeout_s: float | None, poll_s: float,
             alive: Callable[[], bool] | None = None, outage_s: float = 300.0, stall: Watch | None = None,
             between: Callable[[], None] = lambda: None) -> tuple[Progress, bool]:
    """Poll the run's row count until it reaches the expected count or ``timeout_s`` passes.

    Returns the last progress and whether the run is complete. ``alive`` (embedded
    mode) says whether in-process work is still going; when it stops, one last
    poll decides. ``stall`` watches the progress of every poll short of complete;
    ``between`` is called before each poll. Raises ``LedgerUnavailable`` when the
    ledger stays unreachable for ``outage_s`` seconds, or is unreachable when
    ``timeout_s`` runs out.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    last: Progress | None = None
    down_since: float | None = None
    while True:
        between()
        try:
            progress, complete = _poll(run_id, ledger, alive)
        except LedgerUnavailable as exc:
            now = time.monotonic()
            first = down_since is None
            down_since = now if down_since is None else down_since
            down = now - down_since
            if down >= outage_s or (deadline is not None and now >= deadline):
                why = f"for {down:.0f} s" if down >= outage_s else f"when --timeout {timeout_s:g} s ran out"
                raise LedgerUnavailable(f"{exc} (unreachable {why} while waiting for run {run_id}; "
                                        f"the run stays resumable: 'judgeq status {run_id}')") from exc
            how_long = "" if first else f" for {down:.0f} s"
            view.update(last.done if last else 0,
                        f"ledger unreachable{how_long}, still waiting up to {outage_s:.0f} s", now=first)
            time.sleep(max(poll_s, OUTAGE_POLL_S))
            continue
        if down_since is not None:
            view.update(progress.done, f"ledger back after {time.monotonic() - down_since:.0f} s", now=True)
            down_since = None
        else:
            view.update(progress.done, f"{progress.errors} errors" if progress.errors else "")
        last = progress
        if complete is not None:
            return progress, complete
        if stall is not None:
            stall.watch(progress, view)
        if deadline is not None and time.monotonic() >= deadline:
            return progress, False
        time.sleep(poll_s)


def _poll(run_id: str, ledger: Ledger, alive: Callable[[], bool] | None) -> tuple[Progress, bool | None]:
    """One look at the ledger: the progress and, once the wait is over, whether the run is complete."""
    progress = ledger.scores.progress(run_id)
    if progress.done >= progress.expected and (alive is None or not alive()):
        # In embedded mode the last rows can land before the sender marks the run
        # running, so completion is marked once in-process work has ended.
        mark_done(ledger, run_id)
        return progress, True
    if alive is not None and not alive():  # in-process work ended short: one last look decides
        progress = ledger.scores.progress(run_id)
        return progress, progress.done >= progress.expected
    return progress, None
