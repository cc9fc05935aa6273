"""``judgeq status RUN``: how far a run has got, counted in the ledger, with its dead letters and refusals."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scheduler.settings import CliSettings


def show_status(run_id: str, settings: CliSettings, *, json_out: bool) -> None:
    """Print the run's progress (marking it done when every row is there) and what the broker holds for it."""
    from scheduler.deadletters import DeadLetterView
    from .render import print_json

    ledger = settings.ledger()
    run = ledger.runs.get_run(run_id)
    progress = ledger.scores.progress(run_id)
    if run.status in ("running", "stopped") and progress.done >= progress.expected and mark_done(ledger, run_id):
        run = ledger.runs.get_run(run_id)
    dead = DeadLetterView.read(run_id, settings.worker.broker_url)
    if json_out:
        print_json({"run_id": run.id, "status": run.status, "progress": progress, "dead_letters": dead.as_json()})
        return
    pct = 100.0 * progress.done / progress.expected if progress.expected else 100.0
    print(f"run {run.id} ({run.dataset_name}): {run.status}, {progress.done}/{progress.expected} rows ({pct:.0f}%), "
          f"{progress.ok} ok, {progress.errors} errors, {progress.skipped} skipped")
    for line in dead.lines():
        print(line)


def mark_done(ledger: Any, run_id: str) -> bool:
    """``ledger.runs.mark_done_if_complete``, except that a read-only ledger is read as it is."""
    from ledger.errors import LedgerReadOnly

    try:
        return bool(ledger.runs.mark_done_if_complete(run_id))
    except LedgerReadOnly:
        return False
