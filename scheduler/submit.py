"""Submitting a run: validate everything, then store the items and enqueue chunks (through ``runs.intake``).

Order matters for the exit-code contract: every check that can fail on bad
input (judges, gates, the whole dataset) runs before anything is written or
enqueued, so exit 2 leaves no trace. After that, the run row and its items go
to the ledger batch by batch and each batch's chunks go to the dispatcher; a
failure from then on leaves a resumable run (exit 3): ``resume`` given the same
file again (its SHA-256 is the run's dataset hash) stores the items that are
missing and enqueues every item without a row, or ``abandon`` gives the run up.
A file that changes while it is streamed makes the run abandoned (exit 2): its
stored items may no longer be the file its hash names.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judges.config import JudgeConfig, ResolvedJudge
from ledger.models import Run
from ledger.rows import ItemIn
from ledger.store import Ledger
from runs.dispatch import Dispatcher
from runs.intake import Intake, Target, mark_running, open_run, store_items
from runs.resume import resend_unjudged
from runs.sending import ChunkSettings

from .errors import DatasetChanged, InputError, UsageError
from .interrupts import checkpoint
from .records import MAX_RECORD_BYTES, DatasetInfo, RecordChecks, iter_batches, scan


@dataclass(frozen=True)
class SubmitPlan:
    """A validated submission: nothing has been written yet."""

    run_id: str
    dataset: DatasetInfo
    judges: list[ResolvedJudge]
    tags: list[str] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False  # --no-cache: remote judges call even when a verdict is cached
    max_cost_usd: float | None = None  # --max-cost: stop spending once the run's cost reaches it

    @property
    def target(self) -> Target:
        """What this run's chunks carry: the dataset's hash, the judges, the cache and budget choices."""
        return Target(run_id=self.run_id, dataset=self.dataset.content_hash, judges=tuple(self.judges),
                      no_cache=self.no_cache, max_cost_usd=self.max_cost_usd)

    @property
    def expected(self) -> int:
        return self.dataset.count * len(self.judges)


def new_run_id(now: dt.datetime | None = None) -> str:
    """A sortable, readable run id: ``r20261122-031500-3fa9c1``."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"r{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def resolve_judges(config: JudgeConfig, names: Sequence[str], check_env: bool = True) -> list[ResolvedJudge]:
    """The judges asked for, resolved (prompt files read, API key variables checked)."""
    if not names:
        raise UsageError("no judge given; add --judge NAME (see 'judgeq judges' for the configured ones)")
    seen: set[str] = set()
    resolved = []
    for name in names:
        if name in seen:
            raise UsageError(f"judge {name!r} is given twice; give each --judge once")
        seen.add(name)
        resolved.append(config.resolve(name, check_env=check_env))
    return resolved


def warm_up_in_background(judges: Sequence[ResolvedJudge]) -> None:
    """Embedded mode with an LLM judge (or a cascade): import litellm on a thread while the dataset is validated.

    The import takes seconds; started here it overlaps the dataset's scan and
    the run's first writes instead of delaying the first call by all of it.
    :func:`plan` starts it once the judges resolved, so a bad judge table
    (the commonest bad input of a new config) ends the process at once.
    A fleet's submitter never calls a provider (its workers are warm, see
    workers/warm.py), so nothing is imported there.
    """
    from judges.resolved import llm_specs

    if not any(llm_specs(judge) for judge in judges):
        return
    from judges.llm import warm_up

    # Not a daemon: a daemon thread stopped mid-import at exit holds that module's import lock, and a
    # finalizer that imports (litellm's HTTP handlers do) then waits on it for ever. An exit while it
    # imports (a bad dataset, say: the message is printed first) therefore waits for the import to end.
    threading.Thread(target=warm_up, name="judgeq-warm-up").start()


def plan(path: Path, config: JudgeConfig, judge_names: Sequence[str], *, tags: Sequence[str] = (),
         meta: dict[str, str] | None = None, check_env: bool = True,
         max_record_bytes: int = MAX_RECORD_BYTES, warm_up: bool = False) -> SubmitPlan:
    """Validate judges and the whole dataset; raise before anything is written.

    ``warm_up``: this process will judge (embedded mode): litellm's import
    starts on a thread once the judges resolved, beside the dataset's scan.
    """
    judges = resolve_judges(config, judge_names, check_env=check_env)
    if warm_up:
        warm_up_in_background(judges)
    dataset = scan(path, RecordChecks.of(judges, max_record_bytes))
    return SubmitPlan(run_id=new_run_id(), dataset=dataset, judges=judges, tags=list(tags), meta=dict(meta or {}))


def enqueue(plan: SubmitPlan, ledger: Ledger, dispatcher: Dispatcher, settings: ChunkSettings) -> None:
    """Write the run and its items, sending each batch's chunks as soon as its items are stored."""
    create_run(plan, ledger)
    enqueue_items(plan, ledger, dispatcher, settings)


def create_run(plan: SubmitPlan, ledger: Ledger) -> None:
    """The run's row, in status "submitting" until every item is stored and sent."""
    now = dt.datetime.now(dt.timezone.utc)
    open_run(
        ledger,
        Run(
            id=plan.run_id,
            kind="offline",
            dataset_name=plan.dataset.name,
            dataset_hash=plan.dataset.content_hash,
            window=None,
            judges={j.name: j.to_message() for j in plan.judges},
            n_items=plan.dataset.count,
            expected=plan.expected,
            status="submitting",
            created_at=now,
            tags=plan.tags,
            meta=plan.meta,
            max_cost_usd=plan.max_cost_usd,
            no_cache=plan.no_cache,
        )
    )


def enqueue_items(plan: SubmitPlan, ledger: Ledger, dispatcher: Dispatcher, settings: ChunkSettings,
                  stop: threading.Event | None = None) -> bool:
    """Store the items batch by batch and send each batch's chunks; then mark the run running.

    Each record's message and content hash are computed once, for its item,
    and the chunks reuse both: the hashes travel in the chunk so workers do
    not hash again. ``stop`` (embedded mode, on Ctrl-C) ends the loop between
    batches, leaving the run "submitting"; returns whether every batch was sent.
    """
    batch_size = max(max(settings.size_for(j) for j in plan.judges), STORE_BATCH)
    intake, target = Intake(ledger, dispatcher, settings), plan.target
    with abandon_if_changed(plan.run_id, ledger):
        for batch in iter_batches(plan.dataset.path, batch_size, expect=plan.dataset):
            if stop is not None and stop.is_set():
                return False
            checkpoint()
            intake.take(target, items_of(batch))
    intake.close()
    mark_running(ledger, plan.run_id)
    return True


STORE_BATCH = 500  # items stored per transaction, at least


def items_of(batch: Sequence[tuple[int, Any]]) -> list[ItemIn]:
    """The ledger items of a batch of (line, record): each record's message and content hash, computed once."""
    return [ItemIn(trace_id=r.id, seq=line, content_hash=r.content_hash(), record=r.to_message()) for line, r in batch]


@contextmanager
def abandon_if_changed(run_id: str, ledger: Ledger) -> Iterator[None]:
    """Mark the run abandoned when its dataset file turns out to have changed while it was streamed.

    Any ``InputError`` while streaming a file that ``scan`` accepted means the
    file changed (the same parser accepted it whole), so the items stored so
    far may not be the file the run's dataset hash names: the run is given up
    rather than left for a gate or a baseline to use.
    """
    try:
        yield
    except InputError as exc:
        ledger.runs.set_status(run_id, "abandoned")
        problem = exc.problem if isinstance(exc, DatasetChanged) else f"changed after it was validated: {exc.problem}"
        raise DatasetChanged(exc.path, problem, line=exc.line, field=exc.field,
                             hint=f"run {run_id} is marked abandoned (no gate or baseline uses it); "
                                  "submit the file again once nothing writes to it") from exc


def check_resumable(run: Run, ledger: Ledger, dataset: Path | None) -> DatasetInfo | None:
    """Raise UsageError unless ``run`` can be resumed; with ``dataset``, the file scanned and checked against it.

    A run cut off while it was being submitted (items missing) needs its file
    again, and the file must be the one the run was submitted from: its
    SHA-256 is the run's dataset hash. Nothing is written here.
    """
    if run.status == "abandoned":
        raise UsageError(f"run {run.id} was abandoned; submit the dataset again for a new run")
    info = None
    if dataset is not None:
        if run.kind != "offline" or not run.dataset_hash:
            raise UsageError(f"run {run.id} is an online window, not a dataset; resume it without --dataset")
        info = scan(dataset)
        if info.content_hash != run.dataset_hash:
            raise UsageError(
                f"{dataset}: its sha256 is {info.short}, but run {run.id} was submitted from a file whose sha256 "
                f"is {run.dataset_hash[:12]} ({run.dataset_name}); give that same file, or submit this one as a "
                "new run"
            )
    if run.kind != "offline" and ledger.windows.unweighted_items(run.id):
        raise UsageError(f"run {run.id}: its items were stored by a judgeq that did not keep their sampling "
                         "weights, so they cannot be sent again with them; judge the window again as a new run "
                         "(a new salt or policy in its [online] table) instead of resuming this one")
    stored = ledger.runs.count_items(run.id)
    if stored < run.n_items and info is None:
        raise UsageError(
            f"run {run.id} was cut off while it was being submitted ({stored} of {run.n_items} items stored); "
            f"complete it with 'judgeq resume {run.id} --dataset FILE' (the same file, {run.dataset_name}), "
            f"or give it up with 'judgeq abandon {run.id}'"
        )
    return info


def store_missing_items(run: Run, dataset: DatasetInfo, ledger: Ledger) -> None:
    """Store the items a cut-off submit did not; items already stored are left as they are."""
    if ledger.runs.count_items(run.id) >= run.n_items:
        return
    with abandon_if_changed(run.id, ledger):
        for batch in iter_batches(dataset.path, STORE_BATCH, expect=dataset):
            store_items(ledger, run.id, items_of(batch))


def abandon(run: Run, ledger: Ledger) -> bool:
    """Give a run up: no gate or baseline uses it, and it cannot be resumed. False if it already was.

    Chunks already on the queue are still judged; their rows land in the
    abandoned run. A finished run is not abandoned (UsageError).
    """
    if run.status == "abandoned":
        return False
    if run.status == "done":
        raise UsageError(f"run {run.id} is done; there is nothing to abandon")
    ledger.runs.set_status(run.id, "abandoned")
    return True


def resume(run: Run, ledger: Ledger, dispatcher: Dispatcher, settings: ChunkSettings,
           dataset: DatasetInfo | None = None, retry: Sequence[str] = ()) -> int:
    """Re-enqueue the items of ``run`` that have no verdict yet (:func:`runs.resume.resend_unjudged`); how many.

    A run cut off while it was submitted first gets its missing items from
    ``dataset`` (checked by ``check_resumable``, which callers run first);
    without one, an abandoned or cut-off run is refused before anything is
    sent. ``retry``: ``--retry-errors``, checked by ``scheduler.causes.parse_retry``.
    """
    if dataset is None:
        check_resumable(run, ledger, None)  # an abandoned or cut-off run is refused before anything is sent
    else:
        store_missing_items(run, dataset, ledger)
    return resend_unjudged(run, ledger, dispatcher, settings, retry=retry, between=checkpoint)
