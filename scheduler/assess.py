"""Assessing a finished run: its scorecard, its comparison with a baseline, and its gates.

``submit --wait``, ``report`` and ``gate`` all end here, so that the three
judge a run the same way. The per-row statistics (``ledger.scorecard``,
``ledger.compare``) are computed only when something needs them: a report,
an interval gate, a baseline, slices, clusters or an output file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.models import Run
from ledger.rows import EvalSummary

from . import baseline as baselines
from .errors import UsageError
from .gate import GATE_ON, Gate, GateOn, GateResult, check_judges, evaluate


@dataclass(frozen=True)
class GateOptions:
    """How to judge and report a run: the gates, the baseline, slices and clusters."""

    gates: list[Gate] = field(default_factory=list)
    gate_on: GateOn = "point"
    max_errors: int = 0
    baseline: str | None = None  # a run id or "latest"
    baseline_tag: str = "main"
    max_drop: float = 0.0
    by: str | None = None
    cluster_by: str | None = None
    min_slice: int = 30
    files: bool = False  # --junit or --markdown asked for

    @classmethod
    def parse(cls, gates: list[str], *, gate_on: str = "point", max_errors: int = 0, baseline: str | None = None,
              baseline_tag: str = "main", max_drop: float | None = None, by: str | None = None,
              cluster_by: str | None = None, min_slice: int = 30, files: bool = False) -> GateOptions:
        """Options from CLI values; raises UsageError naming the bad one."""
        if gate_on not in GATE_ON:
            raise UsageError(f"--gate-on {gate_on!r} is not one of {', '.join(GATE_ON)}; "
                             "'point' gates the mean, 'interval' the conservative end of its 95% interval")
        if max_drop is not None and baseline is None:
            raise UsageError("--max-drop needs --baseline RUN|latest (the run to compare with)")
        if max_drop is not None and not 0 <= max_drop <= 1:
            raise UsageError(f"--max-drop {max_drop:g} is not a drop in score between 0 and 1, e.g. 0.02")
        if max_errors < 0 or min_slice < 1:
            raise UsageError("--max-errors must be 0 or more and --min-slice 1 or more")
        return cls([Gate.parse(g) for g in gates], gate_on, max_errors, baseline, baseline_tag,  # type: ignore[arg-type]
                   max_drop or 0.0, by, cluster_by, min_slice, files)

    @property
    def gating(self) -> bool:
        return bool(self.gates) or self.baseline is not None

    @property
    def needs_rows(self) -> bool:
        """Whether per-row statistics are needed beyond the ledger's SQL summary."""
        return (self.gate_on == "interval" or self.baseline is not None or self.by is not None
                or self.cluster_by is not None or self.files)


@dataclass
class Assessment:
    """A run judged: figures, optional scorecard and comparison, and gate results."""

    run: Run
    summaries: list[EvalSummary]
    cards: list[Any] = field(default_factory=list)  # ledger.scorecard.Card
    baseline: Run | None = None
    comparisons: list[Any] = field(default_factory=list)  # ledger.compare.EvalComparison
    results: list[GateResult] = field(default_factory=list)
    options: GateOptions = field(default_factory=GateOptions)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)


def assess(ledger: Any, run: Run, options: GateOptions, *, cards: bool = True,
           baseline_run: Run | None = None) -> Assessment:
    """Judge ``run`` as ``options`` say; ``cards`` False skips the scorecard unless it is needed."""
    check_judges(options.gates, list(run.judges))
    base = baseline_run
    if base is None and options.baseline is not None:
        base = baselines.resolve(ledger, options.baseline, run.dataset_name, options.baseline_tag, candidate=run)
    summaries = ledger.scores.summary(run.id)
    out = Assessment(run, summaries, baseline=base, options=options)
    if cards or options.needs_rows:
        from ledger.scorecard import scorecard

        rows = ledger.scores.score_rows(run.id, by=options.by, cluster_by=options.cluster_by)
        out.cards = scorecard(rows, by=options.by is not None, clustered=options.cluster_by is not None,
                              min_slice=options.min_slice)
        if base is not None:
            out.comparisons = compare(ledger, base, run, options, cand_rows=rows)
    intervals = {c.eval: c.estimate for c in out.cards if c.slice is None and c.estimate is not None}
    out.results = evaluate(options.gates, summaries, run.n_items, options.max_errors, on=options.gate_on,
                           intervals=intervals)
    if base is not None:
        out.results += baselines.evaluate(out.comparisons, summaries, base, run, options.max_drop, options.max_errors)
    return out


def compare(ledger: Any, base: Run, cand: Run, options: GateOptions, *, cand_rows: Any = None,
            excerpts: int = 50) -> list[Any]:
    """The paired comparison of two runs, with excerpts for the first ``excerpts`` flips each way."""
    from ledger.compare import compare_runs, with_excerpts

    base_rows = ledger.scores.score_rows(base.id, by=options.by, cluster_by=options.cluster_by)
    if cand_rows is None:
        cand_rows = ledger.scores.score_rows(cand.id, by=options.by, cluster_by=options.cluster_by)
    comparisons = compare_runs(base_rows, cand_rows, by=options.by is not None,
                               clustered=options.cluster_by is not None, min_slice=options.min_slice)
    wanted = {f.trace_id for c in comparisons for f in c.worse[:excerpts] + c.better[:excerpts]}
    if not wanted:
        return comparisons
    texts = ledger.scores.excerpts(cand.id, sorted(wanted))
    return [with_excerpts(c, texts) for c in comparisons]
