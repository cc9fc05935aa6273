"""Gates: ``faithfulness>=0.85`` style checks on a run's per-judge means.

An absolute gate is judged on the mean score of the judge's scored items:
its point estimate by default (``--gate-on point``), or with ``--gate-on
interval`` the end of the 95 % confidence interval that makes the gate
conservative (the lower end for ``>=``/``>``, the upper end for ``<=``/``<``),
so that a pass means "above X with 95 % confidence", not "above X by luck".
Every score lies in [0, 1] (judges normalise their scale onto it), so a
threshold outside [0, 1] is refused as a usage error.
Items a judge could not score are not measurements: a judge with more errors
than ``max_errors``, or with unjudged items, fails its gate and says so,
rather than passing on part of the data. Baseline gates live in
``scheduler.baseline``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from .errors import SchedulerArgumentError, UsageError

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
GateOn = Literal["point", "interval"]
GATE_ON: tuple[str, ...] = ("point", "interval")
_GATE = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(>=|<=|>|<)\s*([0-9]*\.?[0-9]+)\s*$")


class JudgeFigures(Protocol):
    """What a gate reads of one judge's summary (ledger.store.EvalSummary)."""

    eval: str
    n: int
    ok: int
    errors: int
    mean: float | None


class Interval(Protocol):
    """What an interval gate reads of a judge's estimate (ledger.stats.Estimate)."""

    lo: float
    hi: float


@dataclass(frozen=True)
class Gate:
    """One absolute gate on one judge."""

    judge: str
    op: str
    threshold: float

    @classmethod
    def parse(cls, text: str) -> "Gate":
        match = _GATE.match(text)
        if not match:
            raise UsageError(
                f"gate {text!r} is not of the form JUDGE>=NUMBER (operators: >=, >, <=, <); "
                'example: --gate "exact>=0.9"'
            )
        threshold = float(match[3])
        if not 0 <= threshold <= 1:
            raise UsageError(
                f"gate {text!r}: {threshold:g} is outside [0, 1]; every judge's score is normalised onto [0, 1] "
                "(on a 1-5 scale, 4 is 0.75), so write the threshold as a share of the scale, "
                f'e.g. --gate "{match[1]}>=0.75"'
            )
        return cls(judge=match[1], op=match[2], threshold=threshold)

    def __str__(self) -> str:
        return f"{self.judge}{self.op}{self.threshold:g}"


@dataclass(frozen=True)
class GateResult:
    """A gate's outcome and the one-line reason a human reads."""

    gate: Gate | BaselineGateLike
    passed: bool
    value: float | None
    detail: str
    regressed: tuple[str, ...] = ()  # items behind a failure (baseline gates: pass->fail, worst first)


class BaselineGateLike(Protocol):
    """A baseline gate as GateResult sees it (scheduler.baseline.BaselineGate)."""

    @property
    def judge(self) -> str: ...


def evaluate(
    gates: Sequence[Gate], figures: Sequence[JudgeFigures], expected_per_judge: int, max_errors: int = 0,
    on: GateOn = "point", intervals: dict[str, Interval] | None = None,
) -> list[GateResult]:
    """Judge every gate against the run's per-judge figures (and, ``on="interval"``, their intervals)."""
    by_judge = {f.eval: f for f in figures}
    results = []
    for gate in gates:
        fig = by_judge.get(gate.judge)
        if fig is None or fig.ok == 0:
            results.append(GateResult(gate, False, None, f"{gate}: no scored items for judge {gate.judge!r}"))
            continue
        assert fig.mean is not None
        value = fig.mean
        what = "mean"
        if on == "interval":
            interval = (intervals or {}).get(gate.judge)
            if interval is None:
                raise SchedulerArgumentError(f"no interval for judge {gate.judge!r}; pass intervals with on='interval'")
            value = interval.lo if gate.op in (">=", ">") else interval.hi
            what = "95% CI lower end" if gate.op in (">=", ">") else "95% CI upper end"
        holds = _OPS[gate.op](value, gate.threshold)
        notes = completeness_notes(fig, expected_per_judge, max_errors)
        unjudged = expected_per_judge - fig.n
        passed = holds and unjudged <= 0 and fig.errors <= max_errors
        verdict = "passed" if passed else "FAILED"
        text = f"{gate}: {verdict} ({what} {value:.4f} over {fig.ok} items"
        text += "; " + "; ".join(notes) + ")" if notes else ")"
        results.append(GateResult(gate, passed, value, text))
    return results


def completeness_notes(fig: JudgeFigures, expected: int, max_errors: int) -> list[str]:
    """What a gate says about items that are not measurements: unjudged ones and judge errors."""
    notes = []
    unjudged = expected - fig.n
    if unjudged > 0:
        notes.append(f"{unjudged} items not yet judged")
    if fig.errors > max_errors:
        notes.append(f"{fig.errors} judge errors > --max-errors {max_errors}")
    elif fig.errors:
        notes.append(f"{fig.errors} judge errors not counted (allowed by --max-errors {max_errors})")
    return notes


def check_judges(gates: Sequence[Gate], judge_names: Sequence[str]) -> None:
    """Raise UsageError for a gate on a judge the run does not have."""
    for gate in gates:
        if gate.judge not in judge_names:
            raise UsageError(
                f"gate {gate} names judge {gate.judge!r}, which this run does not use "
                f"(judges: {', '.join(judge_names)}); add --judge {gate.judge} or fix the gate"
            )
