"""Resuming a run: send again, through the intake, every stored item that has no verdict yet.

``judgeq resume`` checks first that the run can be resumed and stores what a
cut-off submit never stored (the CLI's part: ``scheduler/submit.py``, which
reads the dataset file); this is what follows, for offline runs and online
windows alike. An item without a verdict has no row, or a row that is an error
of a kind resume retries (transient always; those ``--retry-errors`` names):
:class:`runs.reopen.Reopening` deletes such rows chunk by chunk just before the
chunk is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ledger.models import Run
from ledger.store import Ledger

from .dispatch import Dispatcher
from .intake import Intake, Target, mark_running
from .reopen import Reopening
from .sending import ChunkSettings

#: Chunk numbers of a resume stand apart in logs (the lost-chunk resends' start at 20M).
RESUME_CHUNK_BASE = 10_000_000
#: Items read from the ledger per batch, at least.
READ_BATCH = 500


def resend_unjudged(run: Run, ledger: Ledger, dispatcher: Dispatcher, settings: ChunkSettings,
                    retry: Sequence[str] = (), between: Callable[[], None] = lambda: None) -> int:
    """Send again the items of ``run`` without a verdict; how many item-judge pairs.

    The chunks carry the options the run was submitted with (``--no-cache``,
    ``--max-cost``) and an online item's weight and stratum. ``between`` is
    called before each batch (the CLI's interrupt checkpoint). The run becomes
    "running" again if it was cut off ("submitting", "stopped") or was done and
    had items reopened.
    """
    kinds = tuple(dict.fromkeys(("transient", *retry)))
    reopening = Reopening(dispatcher, ledger, kinds)
    intake = Intake(ledger, reopening, settings, first_chunk=RESUME_CHUNK_BASE)
    target = Target.of(run)
    missing = 0
    for judge in target.judges:
        batches = ledger.runs.missing_items(run.id, judge.name, batch_size=max(settings.size_for(judge), READ_BATCH),
                                       reopen=kinds)
        for batch in batches:
            between()
            missing += len(batch)
            intake.resend(run, target.only(judge), batch)
    intake.close()
    if run.status in ("submitting", "stopped") or (run.status == "done" and reopening.reopened):
        mark_running(ledger, run.id)  # a run with reopened items is not done
    return missing
