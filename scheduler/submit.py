"""Submitting a run: validate everything, then store the items and enqueue chunks.

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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judges.config import JudgeConfig, ResolvedJudge
from ledger.models import Run
from ledger.store import ItemIn, Ledger
from workers.dispatch import Dispatcher
from workers.lost import samples
from workers.sending import send_chunks

from .errors import DatasetChanged, InputError, UsageError
from .interrupts import checkpoint
from .records import MAX_RECORD_BYTES, DatasetInfo, RecordChecks, iter_batches, scan
from .reopen import Reopening
from .settings import SchedulerSettings


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
    def options(self) -> dict[str, Any]:
        """The chunk message fields that carry this plan's cache and budget choices."""
        return {"no_cache": self.no_cache, "max_cost_usd": self.max_cost_usd}

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


def enqueue(plan: SubmitPlan, ledger: Ledger, dispatcher: Dispatcher, settings: SchedulerSettings) -> None:
    """Write the run and its items, sending each batch's chunks as soon as its items are stored."""
    create_run(plan, ledger)
    enqueue_items(plan, ledger, dispatcher, settings)


def create_run(plan: SubmitPlan, ledger: Ledger) -> None:
    """The run's row, in status "submitting" until every item is stored and sent."""
    now = dt.datetime.now(dt.timezone.utc)
    ledger.create_run(
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


def enqueue_items(plan: SubmitPlan, ledger: Ledger, dispatcher: Dispatcher, settings: SchedulerSettings,
                  stop: threading.Event | None = None) -> bool:
    """Store the items batch by batch and send each batch's chunks; then mark the run running.

    Each record's message and content hash are computed once, for its item,
    and the chunks reuse both: the hashes travel in the chunk so workers do
    not hash again. ``stop`` (embedded mode, on Ctrl-C) ends the loop between
    batches, leaving the run "submitting"; returns whether every batch was sent.
    """
    batch_size = max(max(settings.size_for(j) for j in plan.judges), STORE_BATCH)
    counters = {j.name: 0 for j in plan.judges}
    with abandon_if_changed(plan.run_id, ledger):
        for batch in iter_batches(plan.dataset.path, batch_size, expect=plan.dataset):
            if stop is not None and stop.is_set():
                return False
            checkpoint()
            items = items_of(batch)
            ledger.add_items(plan.run_id, items)
            if over_budget(plan.run_id, plan.max_cost_usd, ledger):
                skip_for_budget(plan.run_id, plan.dataset.content_hash, plan.judges, items, ledger,
                                plan.max_cost_usd)
                continue
            send_chunks(plan.run_id, plan.dataset.content_hash, plan.judges, [item.record for item in items],
                        dispatcher, settings, counters, options=plan.options,
                        hashes={item.trace_id: item.content_hash for item in items}, ledger=ledger)
    if not dispatcher.embedded:
        dispatcher.close()
    ledger.set_status(plan.run_id, "running")
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
        ledger.set_status(run_id, "abandoned")
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
    if run.kind != "offline" and ledger.unweighted_items(run.id):
        raise UsageError(f"run {run.id}: its items were stored by a judgeq that did not keep their sampling "
                         "weights, so they cannot be sent again with them; judge the window again as a new run "
                         "(a new salt or policy in its [online] table) instead of resuming this one")
    stored = ledger.count_items(run.id)
    if stored < run.n_items and info is None:
        raise UsageError(
            f"run {run.id} was cut off while it was being submitted ({stored} of {run.n_items} items stored); "
            f"complete it with 'judgeq resume {run.id} --dataset FILE' (the same file, {run.dataset_name}), "
            f"or give it up with 'judgeq abandon {run.id}'"
        )
    return info


def store_missing_items(run: Run, dataset: DatasetInfo, ledger: Ledger) -> None:
    """Store the items a cut-off submit did not; items already stored are left as they are."""
    if ledger.count_items(run.id) >= run.n_items:
        return
    with abandon_if_changed(run.id, ledger):
        for batch in iter_batches(dataset.path, STORE_BATCH, expect=dataset):
            ledger.add_items(run.id, items_of(batch))


def abandon(run: Run, ledger: Ledger) -> bool:
    """Give a run up: no gate or baseline uses it, and it cannot be resumed. False if it already was.

    Chunks already on the queue are still judged; their rows land in the
    abandoned run. A finished run is not abandoned (UsageError).
    """
    if run.status == "abandoned":
        return False
    if run.status == "done":
        raise UsageError(f"run {run.id} is done; there is nothing to abandon")
    ledger.set_status(run.id, "abandoned")
    return True


def resume(run: Run, ledger: Ledger, dispatcher: Dispatcher, settings: SchedulerSettings,
           dataset: DatasetInfo | None = None, retry: Sequence[str] = ()) -> int:
    """Re-enqueue the items of ``run`` that have no verdict yet; returns how many.

    Those are the items without a ledger row and those whose row is a
    transient error (the provider did not answer within the retry budget; see
    :mod:`scheduler.reopen`), or an error of a kind in ``retry``
    (``--retry-errors``, checked by ``scheduler.causes.parse_retry``). The chunks carry the options the run was
    submitted with (``--no-cache``, ``--max-cost``). A run cut off while it was
    submitted first gets its missing items from ``dataset`` (checked by
    ``check_resumable``, which callers run first).
    """
    if dataset is None:
        check_resumable(run, ledger, None)  # an abandoned or cut-off run is refused before anything is sent
    else:
        store_missing_items(run, dataset, ledger)
    judges = [ResolvedJudge.from_message(body) for body in run.judges.values()]
    counters = {j.name: 10_000_000 for j in judges}  # chunk numbers of a resume stand apart in logs
    options = {"no_cache": run.no_cache, "max_cost_usd": run.max_cost_usd}
    kinds = tuple(dict.fromkeys(("transient", *retry)))
    reopening = Reopening(dispatcher, ledger, kinds)
    missing = 0
    for judge in judges:
        batches = ledger.missing_items(run.id, judge.name, batch_size=max(settings.size_for(judge), 500),
                                       reopen=kinds)
        for batch in batches:
            checkpoint()
            missing += len(batch)
            send_chunks(run.id, run.dataset_hash or run.window or "", [judge], batch, reopening, settings, counters,
                        options=options, **samples(run, ledger, batch), ledger=ledger)
    if not dispatcher.embedded:
        dispatcher.close()
    if run.status in ("submitting", "stopped") or (run.status == "done" and reopening.reopened):
        ledger.set_status(run.id, "running")  # a run with reopened items is not done
    return missing


def over_budget(run_id: str, max_cost_usd: float | None, ledger: Ledger) -> bool:
    """Whether the run has a budget and its spend so far (in the ledger) has reached it."""
    return max_cost_usd is not None and ledger.spend(run_id) >= max_cost_usd


def skip_for_budget(run_id: str, dataset: str, judges: Iterable[ResolvedJudge], items: Sequence[ItemIn],
                    ledger: Ledger, max_cost_usd: float | None) -> None:
    """Record a batch that is not enqueued because the budget is spent: one skipped row per item and judge."""
    from ledger.rows import ScoreIn

    reason = f"budget: the run's spend reached its --max-cost ${max_cost_usd:g} before this item was enqueued"
    ledger.write_scores([
        ScoreIn(run_id=run_id, trace_id=item.trace_id, eval=j.name, judge_version=j.version, dataset=dataset,
                status="skipped", error=reason, error_kind="budget", content_hash=item.content_hash)
        for item in items for j in judges
    ])
