"""``judgeq online``'s account of each window: counts, each judge's run, and its weighted estimate once judged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from online.job import WindowOutcome


def outcome_json(outcome: WindowOutcome, ledger: Any, *, judged: bool, cluster_by: Optional[str]) -> dict[str, Any]:
    """The window's outcome as ``--json`` prints it, with each judge's estimate once its rows are in."""
    return {**outcome.to_json(), "estimates": _estimates(outcome, ledger, judged=judged, cluster_by=cluster_by)}


def _estimates(outcome: WindowOutcome, ledger: Any, *, judged: bool, cluster_by: Optional[str]) -> dict[str, Any]:
    if not judged:
        return {}
    from .online_report import estimate

    return {judge: estimate(ledger, run_id, cluster_by=cluster_by) for judge, run_id in outcome.runs.items()}


def print_outcome(outcome: WindowOutcome, ledger: Any, *, judged: bool, cluster_by: Optional[str]) -> None:
    """The window's counts, then a line per judge: its run, sampled and enqueued, and its estimate."""
    estimates = _estimates(outcome, ledger, judged=judged, cluster_by=cluster_by)
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(outcome.skipped.items())) or "none"
    print(f"window {outcome.window} ({outcome.schedule}): {outcome.seen:,} traces seen, {outcome.filtered:,} "
          f"filtered out, skipped: {skipped}")
    if outcome.passed_over is not None:
        print(f"  nothing picked: the source {outcome.passed_over.text()}")
    elif outcome.empty:
        print(f"  empty: the source had no trace in window {outcome.window}; nothing was judged")
    for judge, run_id in outcome.runs.items():
        again = "" if outcome.created[judge] else " (judged before: only new traces sent)"
        line = (f"  {judge}: run {run_id}: {outcome.sampled[judge]:,} sampled, {outcome.new[judge]:,} "
                f"enqueued{again}")
        found = estimates.get(judge)
        if found and found.get("mean") is not None:
            line += (f"; estimate {found['mean']:.3f} [{found['low']:.3f}, {found['high']:.3f}] "
                     f"(weighted, n={found['n']})")
        print(line)
