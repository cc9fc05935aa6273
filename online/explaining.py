"""``judgeq explain``: why one trace of a window was or was not judged, recomputed rather than stored.

The trace is looked up in its window (one read of the window), its u
recomputed with the schedule's salt, and compared with the rate each judge's
run of that window was sampled at (or, for a window not judged yet, the rate
it would get). A judged trace comes with its ledger row. An id the window
holds more than once is explained by its first copy, the one the window job
decides on (online/copies.py), with the number of later copies it skipped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import SourceError
from .job import online_run_id
from .rates import RateBook
from .sampling import Explanation, explain, ident_of
from .windows import Window

if TYPE_CHECKING:
    from ledger.store import Ledger

    from .plan import Plan


@dataclass(frozen=True)
class Answer:
    """One judge's answer for the trace: the sampling explanation, the run, and the row if judged."""

    judge: str
    run_id: str
    judged: bool  # whether the window's run exists (else: what sampling would decide)
    explanation: Explanation
    row: dict[str, Any] | None = None
    later_copies: int = 0  # copies of the id after the first in the window: skipped as duplicates

    def text(self) -> str:
        head = f"{self.judge}: {self.explanation.text()}"
        if self.later_copies:
            copies = "copy" if self.later_copies == 1 else "copies"
            head += (f" (the id's first copy in the window; {self.later_copies:,} later {copies} skipped "
                     "as duplicates, never judged)")
        if not self.judged:
            return f"{head} (window not judged yet: at the rate it would get now)"
        if self.row is None:
            return head + ("" if self.explanation.outcome != "sampled" else "; no row yet (still queued?)")
        row = self.row
        verdict = row["error"] or f"score {row['score']}, label {row['label']}"
        return f"{head}; run {self.run_id}: {row['status']}, {verdict}"

    def to_json(self) -> dict[str, Any]:
        e = self.explanation
        return {"judge": self.judge, "run_id": self.run_id, "window_judged": self.judged, "outcome": e.outcome,
                "stratum": e.stratum, "unit_key": e.unit_key, "u": e.u, "p": e.p, "weight": e.weight,
                "filter": e.filter, "value": e.value, "row": self.row, "later_copies": self.later_copies}


def find_trace(plan: Plan, window: Window, wanted: str) -> tuple[dict[str, Any], int]:
    """The first copy of trace ``wanted`` in ``window`` and how many copies follow it (the whole window is
    read); SourceError if the window does not hold it."""
    read = 0
    first: dict[str, Any] | None = None
    later = 0
    for raw in plan.source.traces(window.start, window.end, Counter()):
        read += 1
        if ident_of(raw) == wanted:
            if first is None:
                first = raw
            else:
                later += 1
    if first is not None:
        return first, later
    raise SourceError(f"trace {wanted!r} is not in window {window.id} of source {plan.schedule.source} "
                      f"({read:,} traces read); check the id and the window")


def explain_trace(plan: Plan, window: Window, wanted: str, ledger: Ledger) -> list[Answer]:
    raw, later = find_trace(plan, window, wanted)
    policy = plan.schedule.policy
    book = RateBook(policy, ledger.windows.sampling_rates(plan.schedule.name))
    answers = []
    for judge in plan.judges:
        run_id = online_run_id(plan.schedule.name, plan.schedule.source, window.id, judge, policy.key())
        stored = {c.stratum: c.rate for c in ledger.windows.strata(run_id)}
        judged = bool(stored)
        base = book.base(judge.name)
        explanation = explain(raw, policy, stored)
        if not judged and explanation.stratum is not None:
            explanation = explain(raw, policy, {explanation.stratum: base(explanation.stratum)})
        row = None
        if judged and explanation.outcome == "sampled":
            row = next(({"status": s.status, "score": s.score, "label": s.label, "reason": s.reason,
                         "error": s.error, "weight": s.weight, "stratum": s.stratum}
                        for s in ledger.scores.scores(run_id, judge.name) if s.trace_id == explanation.trace_id), None)
        answers.append(Answer(judge=judge.name, run_id=run_id, judged=judged, explanation=explanation, row=row,
                              later_copies=later))
    return answers
