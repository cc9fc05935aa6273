"""The lines ``submit --wait`` and ``resume --wait`` print under the scorecard: how each judge's items ended."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from scheduler.outcomes import outcome_counts, totals


def print_outcomes(run: Any, summaries: Sequence[Any], file: Any = None) -> None:
    """One line per judge with the five counts, and the run's cost and savings."""
    file = file or sys.stdout
    counts = outcome_counts(run, summaries)
    for c in counts:
        transient = f" ({c['transient_errors']} transient)" if c["transient_errors"] else ""
        print(f"{c['judge']}: {c['judged']} judged, {c['cached']} cached (${c['saved_usd']:.4f} saved), "
              f"{c['judge_error']} judge errors{transient}, {c['skipped_budget']} skipped (budget), "
              f"{c['not_yet_judged']} not yet judged; cost ${c['cost_usd']:.4f}", file=file)
    if len(counts) > 1:
        t = totals(counts)
        print(f"run: cost ${t['cost_usd']:.4f}, saved ${t['saved_usd']:.4f}", file=file)
