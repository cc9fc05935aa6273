"""Judge canaries: did the judge change, whatever the product did?

A canary set is a small fixed dataset judged again and again by the same
judge version (``judgeq canary run``: an offline run tagged ``canary``, the
verdict cache bypassed, so every item is a real call). Its verdicts are
compared item by item with a reference run of that version: the first canary
run of the version, or one named with ``--reference``. A provider that
retrains or rotates the model behind the alias moves them; the product
cannot, since the records never change.

The comparison (:func:`compare`): for a judge with labels, the share of
paired items given the same label, with its 95 % Wilson interval; for every
judge, the mean absolute difference of the scores with a t interval. The
check alerts when the change is beyond ``threshold`` with 95 % confidence:
the agreement's upper bound is below ``1 - threshold`` (labels), or the
mean absolute difference's lower bound is above ``threshold`` (scores only).
A judge's own run-to-run noise (a temperature above 0) keeps the agreement
below 1 without an alert as long as it stays within the threshold: the
false-alarm rate of a steady judge is at most 5 % a check, less the further
its noise is from the threshold (tests/test_canary.py simulates 100 checks).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ledger.models import CanaryCheck
from ledger.stats import wilson

if TYPE_CHECKING:
    from ledger.models import Run, Score
    from ledger.store import Ledger

DEFAULT_THRESHOLD = 0.1
LEVEL = 0.95


@dataclass(frozen=True)
class Comparison:
    """Two runs' verdicts on the same items: how many, how often the same label, how far the scores."""

    n: int
    agreement: float | None = None
    agreement_lo: float | None = None
    agreement_hi: float | None = None
    mean_abs_diff: float | None = None
    diff_lo: float | None = None
    diff_hi: float | None = None

    def alerts(self, threshold: float) -> bool:
        if self.agreement_hi is not None:
            return self.agreement_hi < 1 - threshold
        return self.diff_lo is not None and self.diff_lo > threshold


def compare(reference: Mapping[str, tuple[str | None, float]], candidate: Mapping[str, tuple[str | None, float]]
            ) -> Comparison:
    """Compare two runs' verdicts (trace id -> (label, score)) on the items both have."""
    import numpy as np
    import scipy.stats as sps

    paired = sorted(set(reference) & set(candidate))
    n = len(paired)
    if n == 0:
        return Comparison(0)
    diffs = np.array([abs(reference[t][1] - candidate[t][1]) for t in paired])
    mad = float(diffs.mean())
    if n > 1 and float(diffs.std(ddof=1)) > 0:
        half = float(sps.t.ppf(0.5 + LEVEL / 2, n - 1)) * float(diffs.std(ddof=1)) / math.sqrt(n)
    else:
        half = 0.0
    labelled = all(reference[t][0] is not None and candidate[t][0] is not None for t in paired)
    if not labelled:
        return Comparison(n, mean_abs_diff=mad, diff_lo=max(0.0, mad - half), diff_hi=mad + half)
    same = sum(reference[t][0] == candidate[t][0] for t in paired) / n
    lo, hi = wilson(same, n, LEVEL)
    return Comparison(n, same, lo, hi, mad, max(0.0, mad - half), mad + half)


@dataclass(frozen=True)
class CanaryReport:
    """One check: the runs compared, the comparison, the verdict, and what answered each run."""

    judge: str
    judge_version: str
    threshold: float
    reference: Run | None
    run: Run | None
    comparison: Comparison = field(default_factory=lambda: Comparison(0))
    reference_models: tuple[str, ...] = ()
    run_models: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        if self.reference is None or self.run is None or self.comparison.n == 0:
            return "no_data"
        return "alert" if self.comparison.alerts(self.threshold) else "ok"

    @property
    def model_changed(self) -> bool:
        return bool(self.reference_models) and bool(self.run_models) and self.reference_models != self.run_models

    def headline(self) -> str:
        what = f"canary of {self.judge} ({self.judge_version})"
        if self.status == "no_data":
            if self.run is None:
                return f"{what}: no data (no canary run of the judge yet: run `judgeq canary run`)"
            return (f"{what}: no data (run {self.run.id} is the first canary run of this version: it is the "
                    "reference the next runs are compared with)")
        c = self.comparison
        figure = (f"agreement {c.agreement:.1%} [{c.agreement_lo:.1%}, {c.agreement_hi:.1%}]"
                  if c.agreement is not None else f"mean |score difference| {c.mean_abs_diff:.3f}")
        assert self.run is not None and self.reference is not None
        moved = (f"; the provider's model changed: {', '.join(self.reference_models)} -> "
                 f"{', '.join(self.run_models)}" if self.model_changed else "")
        word = "JUDGE DRIFT" if self.status == "alert" else "ok"
        return (f"{what}: {word}: {figure} on {c.n} items, run {self.run.id} against reference "
                f"{self.reference.id} (threshold {self.threshold:g}){moved}")

    def to_json(self) -> dict[str, Any]:
        c = self.comparison
        return {"status": self.status, "judge": self.judge, "judge_version": self.judge_version,
                "threshold": self.threshold, "reference_run": self.reference.id if self.reference else None,
                "run": self.run.id if self.run else None, "n": c.n, "agreement": c.agreement,
                "agreement_ci": [c.agreement_lo, c.agreement_hi] if c.agreement is not None else None,
                "mean_abs_diff": c.mean_abs_diff, "mean_abs_diff_ci": [c.diff_lo, c.diff_hi]
                if c.mean_abs_diff is not None else None, "reference_models": list(self.reference_models),
                "run_models": list(self.run_models), "model_changed": self.model_changed,
                "headline": self.headline()}


def _verdicts(rows: Sequence[Score]) -> dict[str, tuple[str | None, float]]:
    return {r.trace_id: (r.label, float(r.score)) for r in rows if r.status == "ok" and r.score is not None}


def _models(ledger: Ledger, run: Run, judge: str) -> tuple[str, ...]:
    return tuple(i.text() for i in ledger.scores.providers([run.id], judge))


def check(ledger: Ledger, judge: str, *, reference: str | None = None, threshold: float = DEFAULT_THRESHOLD,
          now: datetime) -> CanaryReport:
    """Compare the judge's newest canary run with its reference, and record the check (``canary_checks``)."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold {threshold!r} must be between 0 and 1")
    runs = ledger.canary.runs(judge)
    if not runs:
        return CanaryReport(judge, "", threshold, None, None)
    newest = runs[-1]
    version = str((newest.judges.get(judge) or {}).get("version", ""))
    if reference is not None:
        base = next((r for r in runs if r.id == reference), None)
        if base is None:
            from .errors import UsageError

            raise UsageError(f"--reference {reference!r} is no finished canary run of judge {judge!r}; "
                                 "see `judgeq runs --tag canary`")
    else:
        base = next((r for r in runs if str((r.judges.get(judge) or {}).get("version", "")) == version
                     and r.dataset_hash == newest.dataset_hash), None)
    if base is None or base.id == newest.id:
        report = CanaryReport(judge, version, threshold, None, newest)
    else:
        comparison = compare(_verdicts(list(ledger.scores.scores(base.id, judge))),
                             _verdicts(list(ledger.scores.scores(newest.id, judge))))
        report = CanaryReport(judge, version, threshold, base, newest, comparison, _models(ledger, base, judge),
                              _models(ledger, newest, judge))
    c = report.comparison
    ledger.canary.record(CanaryCheck(at=now, judge=judge, judge_version=version,
                                     reference_run=report.reference.id if report.reference else "",
                                     run_id=newest.id, n=c.n, agreement=c.agreement, agreement_lo=c.agreement_lo,
                                     agreement_hi=c.agreement_hi, mean_abs_diff=c.mean_abs_diff, threshold=threshold,
                                     status=report.status, reference_models=list(report.reference_models),
                                     run_models=list(report.run_models)))
    return report
