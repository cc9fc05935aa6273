"""Waiting for a run: the ledger, not Celery, says how far it got.

The ledger may go away while we wait (a PostgreSQL restart, a failover). The
workers ride that out (they retry a chunk every 15 s for 5 minutes), so the
waiter does too: it keeps polling, says so on the progress line, and gives up
only at its ``--timeout`` or once the ledger has been unreachable for
``outage_s`` seconds in a row (``JUDGEQ_WAIT_OUTAGE_S``).

A fleet run whose row count stands still for ``JUDGEQ_LOST_CHECK_S`` seconds
is looked at for chunks a killed worker took with it, and those items are sent
again (:mod:`workers.lost`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ledger.errors import LedgerUnavailable
from ledger.store import Ledger, Progress

from .interrupts import checkpoint
from .progress import ProgressView
from .settings import CliSettings

if TYPE_CHECKING:
    from workers.lost import LostChunks

OUTAGE_POLL_S = 1.0  # at least this long between polls while the ledger is unreachable


def wait_for(run_id: str, ledger: Ledger, view: ProgressView, *, timeout_s: float | None, poll_s: float,
             alive: Callable[[], bool] | None = None, outage_s: float = 300.0,
             settings: CliSettings | None = None) -> tuple[Progress, bool]:
    """Poll the run's row count until it reaches the expected count or ``timeout_s`` passes.

    Returns the last progress and whether the run is complete. ``alive`` (embedded
    mode) says whether in-process work is still going; when it stops, one last
    poll decides. Raises ``LedgerUnavailable`` when the ledger stays unreachable
    for ``outage_s`` seconds, or is unreachable when ``timeout_s`` runs out.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    last: Progress | None = None
    down_since: float | None = None
    stall = _Stall(run_id, ledger, settings or CliSettings()) if alive is None else None
    while True:
        checkpoint()
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
    progress = ledger.progress(run_id)
    if progress.done >= progress.expected and (alive is None or not alive()):
        # In embedded mode the last rows can land before the sender marks the run
        # running, so completion is marked once in-process work has ended.
        ledger.mark_done_if_complete(run_id)
        return progress, True
    if alive is not None and not alive():  # in-process work ended short: one last look decides
        progress = ledger.progress(run_id)
        return progress, progress.done >= progress.expected
    return progress, None


class _Stall:
    """Notices a fleet run whose rows stopped coming and has its lost chunks sent again (workers/lost.py)."""

    def __init__(self, run_id: str, ledger: Ledger, settings: CliSettings) -> None:
        self.run_id = run_id
        self.ledger = ledger
        self.cli_settings = settings
        self.settings = settings.scheduler
        self.after_s = self.settings.lost_check_s
        self.done = -1
        self.since = time.monotonic()
        self.looked = False
        self.dispatcher: Any = None
        self.finder: LostChunks | None = None  # made at the first look; stays None without a Redis broker

    def watch(self, progress: Progress, view: ProgressView) -> None:
        now = time.monotonic()
        if progress.done != self.done:
            self.done, self.since = progress.done, now
            return
        if now - self.since < self.after_s:
            return
        self.since = now  # the next look after as long again without a row
        if not self.looked:
            self.looked = True
            self.finder = self._finder()
        if self.finder is None:
            return
        try:
            resent = self.finder.check(self._dispatcher)
        except Exception as exc:  # the broker is unreachable, say: the workers' problem too; keep waiting
            view.update(progress.done, f"could not look for lost chunks: {type(exc).__name__}", now=True)
            return
        finally:
            if self.dispatcher is not None:
                self.dispatcher.close()
                self.dispatcher = None
        if resent:
            view.update(progress.done, f"sent {resent} items again: a worker died holding their chunk", now=True)

    def _finder(self) -> LostChunks | None:
        """The finder for a fleet run (a Redis broker configured); None in embedded mode or with another broker."""
        from workers.broker import redis_for
        from workers.lost import LostChunks

        client = redis_for(self.cli_settings.worker.broker_url, timeout_s=10)
        return None if client is None else LostChunks(self.run_id, self.ledger, client, self.settings)

    def _dispatcher(self) -> Any:
        from workers.dispatch import CeleryDispatcher

        self.dispatcher = CeleryDispatcher(self.cli_settings.worker)
        return self.dispatcher
