"""The run's corridor: open a run, store its items insert-if-absent, send their chunks, mark it running, later done.

Every way items reach a judge walks these steps, and only here:

- ``judgeq submit`` (``scheduler/submit.py``): :func:`open_run`, then per
  batch of the file :meth:`Intake.take` (store, then send every item of the
  batch, or skip them all once the run's ``--max-cost`` is spent), then
  :func:`mark_running`;
- an online window (``online/job.py``): :func:`open_run_if_absent` per judge,
  :meth:`Intake.take` with ``new_only`` (only the items this call stored are
  sent, so schedulers racing on a window send each trace once), then
  :func:`mark_running` and :func:`mark_done`;
- ``judgeq resume`` (``runs/resume.py``): :func:`store_items` for the items a
  cut-off submit never stored, then :meth:`Intake.resend` for every stored item
  without a verdict;
- the lost-chunk resend (``workers/lost.py``): :meth:`Intake.resend` for the
  items a killed worker took with it.

A resend carries what the first send did: the run's options and an online
item's weight and stratum, read back from its item (:func:`samples`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from judges.record import Record
from judges.resolved import ResolvedJudge
from ledger.models import Run
from ledger.rows import ItemIn
from ledger.store import Ledger

from .dispatch import Dispatcher
from .message import ChunkMessage
from .rows import write_skipped
from .sending import ChunkSettings, send_chunks


@dataclass(frozen=True)
class Target:
    """What every chunk of a run carries besides its records: the run, its dataset version, judges, options.

    ``no_cache`` and ``max_cost_usd`` (``--no-cache``, ``--max-cost``) travel in
    remote judges' chunks only.
    """

    run_id: str
    dataset: str
    judges: tuple[ResolvedJudge, ...]
    no_cache: bool = False
    max_cost_usd: float | None = None

    @classmethod
    def of(cls, run: Run) -> Target:
        """The target of a stored run: its judges read back from their messages, its options as submitted."""
        return cls(run_id=run.id, dataset=run.dataset_hash or run.window or "",
                   judges=tuple(ResolvedJudge.from_message(body) for body in run.judges.values()),
                   no_cache=run.no_cache, max_cost_usd=run.max_cost_usd)

    def only(self, judge: ResolvedJudge) -> Target:
        """The same target for one of its judges."""
        return Target(self.run_id, self.dataset, (judge,), self.no_cache, self.max_cost_usd)

    @property
    def options(self) -> dict[str, Any]:
        """The chunk message fields that carry the run's cache and budget choices."""
        return {"no_cache": self.no_cache, "max_cost_usd": self.max_cost_usd}


def open_run(ledger: Ledger, run: Run) -> None:
    """Store a new run (status "submitting" until its items are stored and sent); RunExists if its id is taken."""
    ledger.runs.create_run(run)


def open_run_if_absent(ledger: Ledger, run: Run) -> bool:
    """Store ``run`` unless a run has its id (a derived one: an online window's); whether this call did."""
    return ledger.runs.create_run_if_absent(run)


def store_items(ledger: Ledger, run_id: str, items: Sequence[ItemIn], *, new_only: bool = False
                ) -> Sequence[ItemIn]:
    """Store ``items`` in one transaction, leaving those already stored as they are; the ones to send.

    Those are all of ``items``, or with ``new_only`` only those this call stored.
    """
    if not new_only:
        ledger.runs.add_items(run_id, items)
        return items
    if not items:
        return []
    new = set(ledger.runs.add_new_items(run_id, items))
    return [item for item in items if item.trace_id in new]


def mark_running(ledger: Ledger, run_id: str) -> None:
    """Every item of the run is stored and sent: from now on its rows decide when it is done."""
    ledger.runs.set_status(run_id, "running")


def mark_done(ledger: Ledger, run_id: str) -> bool:
    """Mark the run "done" if it is running and all its expected rows are in; whether this call did."""
    return ledger.runs.mark_done_if_complete(run_id)


class Intake:
    """Stores a run's items and sends them as chunks through ``dispatcher`` (see the module docstring).

    Chunks are numbered per judge from ``first_chunk`` + 1 (resume's and the
    resends' numbers stand apart in logs); ``counters`` shares the numbering
    with another intake (a finder that resends over several dispatchers).
    """

    def __init__(self, ledger: Ledger, dispatcher: Dispatcher, settings: ChunkSettings, *, first_chunk: int = 0,
                 counters: dict[str, int] | None = None) -> None:
        self.ledger = ledger
        self.dispatcher = dispatcher
        self.settings = settings
        self.first_chunk = first_chunk
        self.counters = {} if counters is None else counters

    def take(self, target: Target, items: Sequence[ItemIn], *, new_only: bool = False) -> Sequence[ItemIn]:
        """Store ``items`` and send those to send (:func:`store_items`); what was sent, or skipped for the run's budget.

        Each item's content hash travels in its chunk so that workers need not
        hash again, and its weight and stratum (an online sample's) in the
        chunk's ``weights`` and ``strata``. Once the run's ``--max-cost`` is
        spent, the items get skipped rows instead of chunks.
        """
        items = store_items(self.ledger, target.run_id, items, new_only=new_only)
        if not items:
            return items
        if over_budget(target, self.ledger):
            self._skip(target, items)
            return items
        self.send(target, [item.record for item in items],
                  hashes={item.trace_id: item.content_hash for item in items},
                  weights={item.trace_id: item.weight for item in items if item.weight is not None},
                  strata={item.trace_id: item.stratum for item in items if item.stratum is not None})
        return items

    def resend(self, run: Run, target: Target, records: list[dict[str, Any]]) -> int:
        """Send again stored ``records`` of ``run`` (no row yet, or a row reopened), as they were first sent."""
        return self.send(target, records, **samples(run, self.ledger, records))

    def send(self, target: Target, records: list[dict[str, Any]], *, hashes: Mapping[str, str] | None = None,
             weights: Mapping[str, float] | None = None, strata: Mapping[str, str] | None = None) -> int:
        """Cut ``records`` into each of the target's judges' chunks and send them; how many chunks."""
        for judge in target.judges:
            self.counters.setdefault(judge.name, self.first_chunk)
        return send_chunks(target.run_id, target.dataset, target.judges, records, self.dispatcher, self.settings,
                           self.counters, options=target.options, hashes=hashes, weights=weights, strata=strata,
                           ledger=self.ledger)

    def close(self) -> None:
        """Release a fleet dispatcher's connection; an embedded one stays open until its chunks are judged."""
        if not self.dispatcher.embedded:
            self.dispatcher.close()

    def _skip(self, target: Target, items: Sequence[ItemIn]) -> None:
        """Skipped rows for ``items``, one per judge: the run's budget was spent before they were sent."""
        reason = (f"budget: the run's spend reached its --max-cost ${target.max_cost_usd:g} before this item was "
                  "enqueued")
        records = [item.record for item in items]
        parsed = [Record.model_validate(record) for record in records]
        hashes = {item.trace_id: item.content_hash for item in items}
        for judge in target.judges:
            message = ChunkMessage.model_construct(run_id=target.run_id, dataset=target.dataset,
                                                   judge=judge.to_message(), records=records, hashes=hashes)
            write_skipped(message, parsed, reason, self.ledger)


def over_budget(target: Target, ledger: Ledger) -> bool:
    """Whether the run has a budget (``--max-cost``) and its spend so far, in the ledger, has reached it."""
    return target.max_cost_usd is not None and ledger.scores.spend(target.run_id) >= target.max_cost_usd


def samples(run: Run, ledger: Ledger, records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """``send_chunks``' weights and strata for records of ``run`` sent again: an online sample's, from its items.

    An online run's items keep the weight and stratum they were sampled at
    (ledger migration 0009); without them a resent item would weigh 1, so
    resume refuses a run with items that keep none.
    """
    if run.kind == "offline":
        return {}
    kept = ledger.windows.samples_of(run.id, [str(record["id"]) for record in records])
    return {"weights": {t: w for t, (w, _) in kept.items()},
            "strata": {t: s for t, (_, s) in kept.items() if s is not None}}
