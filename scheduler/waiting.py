"""Waiting for a run: the ledger, not Celery, says how far it got."""

from __future__ import annotations

import time
from collections.abc import Callable

from ledger.store import Ledger, Progress

from .progress import ProgressView


def wait_for(run_id: str, ledger: Ledger, view: ProgressView, *, timeout_s: float | None, poll_s: float,
             alive: Callable[[], bool] | None = None) -> tuple[Progress, bool]:
    """Poll the run's row count until it reaches the expected count or ``timeout_s`` passes.

    Returns the last progress and whether the run is complete. ``alive`` (embedded
    mode) says whether in-process work is still going; when it stops, one last
    poll decides.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        progress = ledger.progress(run_id)
        extra = f"{progress.errors} errors" if progress.errors else ""
        view.update(progress.done, extra)
        if progress.done >= progress.expected and (alive is None or not alive()):
            # In embedded mode the last rows can land before the sender marks the run
            # running, so completion is marked once in-process work has ended.
            ledger.mark_done_if_complete(run_id)
            return progress, True
        if alive is not None and not alive():
            progress = ledger.progress(run_id)
            view.update(progress.done)
            return progress, progress.done >= progress.expected
        if deadline is not None and time.monotonic() >= deadline:
            return progress, False
        time.sleep(poll_s)
