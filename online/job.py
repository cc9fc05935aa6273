"""Judging one window of one schedule: read the traces, sample them, store and send the sample.

One run per window x judge, its id derived from (source, window, judge
version, sampling policy key): a window scheduled twice is judged once.
The steps, for all the schedule's judges in one read of the window:

1. Count (only when ``min_per_stratum`` needs each stratum's size): the
   traces per stratum that pass the filters.
2. Rates per judge and stratum: those stored with the window's runs (a
   rescan samples at the rates the window was first judged at), else the
   rate book's (ledger over config) raised by ``plan_rates``.
3. Sample, streaming: a later copy of a trace id is skipped as a duplicate
   (online/copies.py: the first copy is the trace); each trace's u is computed once; a trace sampled for
   a judge becomes an item of that judge's run. Items are stored in batches
   with insert-if-absent, and only the ones this call stored are sent, so
   schedulers racing on a window, or a rescan after late traces, enqueue
   each trace once.
4. Counts per stratum (seen, filtered, sampled, enqueued, rate) and the
   run's item counts are written; the run goes from "submitting" to "running".

Runs are opened, items stored and chunks sent through ``runs.intake``, as every run is.

A scan that dies between storing a batch and sending it leaves its run
"submitting": ``judgeq resume RUN`` sends what has no row, as for offline
runs (at-least-once; the ledger's upsert keeps one row per item), and the
same window judged again reads the traces the scan never reached (resume
alone would not: it reads no source).
"""

from __future__ import annotations

import dataclasses

import hashlib
from itertools import chain
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from judges.record import Record
from ledger.models import Run, utcnow
from ledger.rows import ItemIn, StratumCounts
from runs.intake import Intake, Target, mark_done, mark_running, open_run_if_absent
from runs.sending import ChunkSettings, too_large

from .copies import Copies
from .rates import RateBook
from .sources.base import PassedOver, PicksByName
from .sampling import Decider, Decision, ident_of, plan_rates, u_of
from .schedules import Schedule
from .windows import Window

if TYPE_CHECKING:
    from judges.resolved import ResolvedJudge
    from ledger.store import Ledger
    from runs.dispatch import Dispatcher

    from .budget.pacer import Planner
    from .sources.base import TraceSource

STORE_BATCH = 500  # items stored per transaction, at least
EXAMPLES = 20  # records of a window a budget's first cost estimate renders (judges/estimate.py)


def online_run_id(schedule: str, source: str, window: str, judge: ResolvedJudge, policy_key: str) -> str:
    """``o-<window>-<judge>-<10 hex>``: readable, and the same for the same window, judge version and policy."""
    body = "\x00".join((schedule, source, window, judge.version, policy_key))
    return f"o-{window}-{judge.name}-{hashlib.sha256(body.encode()).hexdigest()[:10]}"


@dataclass
class JudgeSample:
    """One judge's side of a window: its run, its rates, and what the scan did for it."""

    judge: ResolvedJudge
    run_id: str
    created: bool
    rates: dict[str, float]
    base: Callable[[str], float]
    ceiling: float  # the highest base rate any stratum can have (RateBook.highest)
    sampled: Counter[str] = field(default_factory=Counter)
    new: int = 0
    pending: list[tuple[ItemIn, str, float]] = field(default_factory=list)  # item, stratum, weight

    def rate(self, stratum: str) -> float:
        found = self.rates.get(stratum)
        if found is None:  # a stratum the plan did not see (a rescan's late traces): its base rate
            found = self.rates[stratum] = min(1.0, max(0.0, self.base(stratum)))
        return found


@dataclass
class WindowOutcome:
    """What judging a window did: the runs by judge, and the window's counts."""

    schedule: str
    window: str
    runs: dict[str, str]
    created: dict[str, bool]
    seen: int
    filtered: int
    sampled: dict[str, int]
    new: dict[str, int]
    skipped: dict[str, int]
    passed_over: PassedOver | None = None  # a window that read spans and picked none: what it passed over

    @property
    def empty(self) -> bool:
        """The source had no trace in the window (nothing seen, so nothing sampled)."""
        return self.seen == 0

    def to_json(self) -> dict[str, Any]:
        return {"schedule": self.schedule, "window": self.window, "runs": self.runs, "created": self.created,
                "seen": self.seen, "filtered": self.filtered, "sampled": self.sampled, "enqueued": self.new,
                "skipped": self.skipped, "empty": self.empty,
                "passed_over": self.passed_over.to_json() if self.passed_over is not None else None}

    def settle(self, ledger: Ledger) -> list[str]:
        """Mark "done" this window's runs whose rows are all in; the ones this call marked.

        The job's own check runs when the sample is sent, usually before its
        rows are written. ``judgeq online`` without a broker calls this once
        its in-process judges finished; in a fleet, beat's next tick marks
        the schedule's complete runs (online/tick.py).
        """
        return [run_id for run_id in self.runs.values() if mark_done(ledger, run_id)]


class WindowJob:
    """Judge ``window`` of ``schedule``: see the module's docstring."""

    def __init__(self, schedule: Schedule, window: Window, source: TraceSource, judges: Sequence[ResolvedJudge],
                 ledger: Ledger, settings: ChunkSettings, planner: Planner | None = None) -> None:
        self.schedule = schedule
        self.window = window
        self.source = source
        self.judges = list(judges)
        self.ledger = ledger
        self.settings = settings
        self.decider = Decider(schedule.policy)
        self.planner = planner  # the budget controller (online/budget/pacer.py), when a budget applies

    def run_ids(self) -> dict[str, str]:
        key = self.schedule.policy.key()
        return {j.name: online_run_id(self.schedule.name, self.schedule.source, self.window.id, j, key)
                for j in self.judges}

    def run(self, dispatcher: Dispatcher, progress: Callable[[int], None] | None = None) -> WindowOutcome:
        skipped: Counter[str] = Counter()
        reading = self.source.traces(self.window.start, self.window.end, skipped)
        try:
            return self._scan(reading, skipped, dispatcher, progress)
        finally:
            close = getattr(reading, "close", None)
            if close is not None:
                close()

    def _scan(self, reading: Iterator[dict[str, Any]], skipped: Counter[str], dispatcher: Dispatcher,
              progress: Callable[[int], None] | None) -> WindowOutcome:
        # The source is reached before any run is written: one that is down (SourceUnavailable) leaves
        # no run behind "submitting" with nothing in it.
        first = next(reading, None)
        samples = self._open_runs()
        traces = reading if first is None else chain((first,), reading)
        # The window's counts and the first copy of each id (online/copies.py): two appends a trace.
        copies = Copies(self._reach(samples))
        add_hash, add_code, code_of, later, reach = (copies.hashes.append, copies.codes.append, copies.unfiltered.get,
                                                     copies.later, copies.reach)
        salt = self.decider.policy.salt
        counters: dict[str, int] = {}
        decide, stratum_of = self.decider.decide, self.decider.stratum
        highest: dict[str, float] = {}  # by stratum, the highest of the judges' rates: most traces stop there
        for seq, raw in enumerate(traces):
            if progress is not None and not seq & 0xFFFF:
                progress(seq)
            decision = decide(raw)
            if decision is None:
                ident = ident_of(raw)
                copies.note(ident, stratum_of(raw), True)
                if reach > 1.0 or u_of(salt, ident) < reach:  # unit "trace" here: u is the id's
                    later(hash(ident))
                continue
            stratum = decision.stratum
            key = hash(decision.trace_id)
            add_hash(key)
            code = code_of(stratum)
            add_code(copies.code(stratum, False) if code is None else code)
            copy = decision.u < reach and later(key)
            top = highest.get(stratum)
            if top is None:
                top = highest[stratum] = max(s.rate(stratum) for s in samples)
            if decision.u >= top and top < 1.0:
                continue
            wanted = [s for s in samples if decision.sampled_at(s.rate(stratum))]
            if not wanted or copy:
                continue
            item = _item(raw, seq, decision, skipped, self.settings.max_record_bytes)
            if item is None:
                continue
            for sample in wanted:
                sample.sampled[stratum] += 1
                sample.pending.append((item, stratum, 1.0 / sample.rate(stratum)))
                if len(sample.pending) >= max(STORE_BATCH, self.settings.size_for(sample.judge)):
                    self._flush(sample, dispatcher, counters)
        for sample in samples:
            self._flush(sample, dispatcher, counters)
        counts = copies.counts()
        seen, filtered = counts.seen, counts.filtered
        if counts.duplicates:
            skipped["duplicate"] += counts.duplicates
        self._finish(samples, seen, filtered, dict(skipped))
        passed_over = None
        if not seen and isinstance(self.source, PicksByName):  # nothing read, or nothing picked: which?
            passed_over = self.source.passed_over(self.window.start, self.window.end)
        return WindowOutcome(
            schedule=self.schedule.name, window=self.window.id,
            runs={s.judge.name: s.run_id for s in samples}, created={s.judge.name: s.created for s in samples},
            seen=sum(seen.values()), filtered=sum(filtered.values()),
            sampled={s.judge.name: sum(s.sampled.values()) for s in samples},
            new={s.judge.name: s.new for s in samples}, skipped=dict(skipped), passed_over=passed_over)

    # -- steps -------------------------------------------------------------------

    def _open_runs(self) -> list[JudgeSample]:
        """Create the window's runs (or find them), with each judge's rates for the window."""
        book = RateBook(self.schedule.policy, self.ledger.windows.sampling_rates(self.schedule.name))
        counts: dict[str, int] | None = None
        examples: list[Record] = []
        samples = []
        for judge in self.judges:
            run_id = self.run_ids()[judge.name]
            created = open_run_if_absent(self.ledger, self._new_run(run_id, judge))
            stored = {} if created else {c.stratum: c.rate for c in self.ledger.windows.strata(run_id)}
            base = book.base(judge.name)
            planned = None
            if not stored and self.planner is not None:
                if counts is None:
                    counts, examples = self._count()
                planned = self.planner(judge, run_id, counts, examples)
            if stored:
                rates = stored
            elif planned is not None:
                rates = dict(planned)
            elif self.schedule.policy.min_per_stratum > 0 or self.schedule.policy.floor > 0:
                if counts is None:
                    counts, examples = self._count()
                rates = plan_rates(counts, base, self.schedule.policy.min_per_stratum, self.schedule.policy.floor)
            else:
                rates = {}
            samples.append(JudgeSample(judge=judge, run_id=run_id, created=created, rates=dict(rates), base=base,
                                       ceiling=book.highest(judge.name)))
        return samples

    def _count(self) -> tuple[dict[str, int], list[Record]]:
        """The traces per stratum that pass the filters (a read of the window without hashing), and the first
        :data:`EXAMPLES` of them that are records: what the budget's first cost estimate renders prompts of."""
        passes, stratum_of, copies = self.decider.filtered_by, self.decider.stratum, Copies(0.0)
        examples: list[Record] = []
        for raw in self.source.traces(self.window.start, self.window.end, Counter()):
            passed = passes(raw) is None
            copies.note(ident_of(raw), stratum_of(raw), not passed)
            if passed and len(examples) < EXAMPLES:
                try:
                    examples.append(Record.model_validate(raw))
                except ValidationError:  # skipped as invalid when the window is read
                    pass
        counts = copies.counts()  # first copies only: a later copy is no trace
        return dict(counts.seen - counts.filtered), examples

    def _reach(self, samples: Sequence[JudgeSample]) -> float:
        """The highest rate of any judge for any stratum (a trace with u at or above it is sampled by none);
        above 1 when every trace may be, or when copies of an id may have different u (unit "session")."""
        if self.decider.policy.unit != "trace":
            return 2.0
        top = max((max([s.ceiling, *s.rates.values()]) for s in samples), default=0.0)
        return 2.0 if top >= 1.0 else top

    def _new_run(self, run_id: str, judge: ResolvedJudge) -> Run:
        return Run(
            id=run_id, kind="online", dataset_name=self.schedule.name, dataset_hash=None, window=self.window.id,
            judges={judge.name: judge.to_message()}, n_items=0, expected=0, status="submitting",
            created_at=utcnow(),
            meta={"source": self.schedule.source, "schedule": self.schedule.name,
                  "window": {"start": self.window.start.isoformat(), "end": self.window.end.isoformat()},
                  "policy": self.schedule.policy.describe()},
        )

    def _flush(self, sample: JudgeSample, dispatcher: Dispatcher, counters: dict[str, int]) -> None:
        """Store the judge's pending items; send those this call stored (others were stored, and sent, before)."""
        if not sample.pending:
            return
        pending, sample.pending = sample.pending, []
        items = [dataclasses.replace(item, weight=weight, stratum=stratum) for item, stratum, weight in pending]
        intake = Intake(self.ledger, dispatcher, self.settings, counters=counters)
        sent = intake.take(Target(sample.run_id, self.window.id, (sample.judge,)), items, new_only=True)
        sample.new += len(sent)

    def _finish(self, samples: Iterable[JudgeSample], seen: Counter[str], filtered: Counter[str],
                skipped: dict[str, int]) -> None:
        for sample in samples:
            # seen, filtered and sampled are the window's (this scan's); enqueued is the window's sample
            # over every scan (its stored items), a scan cut off before it counted included.
            strata = sorted(set(seen) | set(sample.rates))
            stored = self.ledger.windows.sample_sizes(sample.run_id)
            self.ledger.windows.record_strata(sample.run_id, [
                StratumCounts(stratum=s, seen=seen[s], filtered=filtered[s], sampled=sample.sampled[s],
                              enqueued=stored.get(s, 0), rate=sample.rate(s))
                for s in strata])
            self.ledger.runs.note_scan(sample.run_id, skipped)
            run = self.ledger.runs.refresh_run_counts(sample.run_id)
            if run.status == "submitting":
                mark_running(self.ledger, sample.run_id)
            mark_done(self.ledger, sample.run_id)


def _item(raw: dict[str, Any], seq: int, decision: Decision, skipped: Counter[str],
          max_bytes: int) -> ItemIn | None:
    """The sampled trace as a ledger item, validated as a dataset record is; None (counted) if it is not one.

    A trace larger than ``JUDGEQ_MAX_RECORD_BYTES`` as JSON (the bound ``judgeq submit`` puts on a dataset's
    line) is skipped and counted as ``too_large``: stored, it would be an item no worker can be sent.
    """
    try:
        record = Record.model_validate(raw)
    except ValidationError:
        skipped["invalid"] += 1
        return None
    if record.unstorable() is not None or record.id != decision.trace_id:
        skipped["invalid"] += 1
        return None
    message = record.to_message()
    if too_large(message, max_bytes):
        skipped["too_large"] += 1
        return None
    return ItemIn(trace_id=record.id, seq=seq, content_hash=record.content_hash(), record=message)
