"""How each judge's items of a run ended: judged, cached, judge error, skipped for budget, not yet judged.

A run's report keeps these apart because they mean different things: a judge
error is not a measurement, a skip for budget is a choice, and an item not yet
judged is work still queued (or lost with a dead fleet: ``judgeq resume``).
Some kinds of judge error are about the judge rather than its items (a key the
workers refuse, an account the provider refuses, a provider that did not
answer) and decide ``submit --wait``'s exit code: ``scheduler.causes``.
Cost is what the run paid; ``saved_usd`` is what its cache hits cost when
first paid for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def outcome_counts(run: Any, summaries: Sequence[Any]) -> list[dict[str, Any]]:
    """One dict per judge of the run (judges without rows yet included), in the run's judge order."""
    by_name = {s.eval: s for s in summaries}
    names = list(run.judges or {}) + [s.eval for s in summaries if s.eval not in (run.judges or {})]
    out = []
    for name in names:
        s = by_name.get(name)
        n = s.n if s else 0
        out.append({
            "judge": name,
            "items": run.n_items,
            "judged": (s.ok - s.cached) if s else 0,
            "cached": s.cached if s else 0,
            "judge_error": s.errors if s else 0,
            "account_errors": getattr(s, "account_errors", 0) if s else 0,
            "transient_errors": getattr(s, "transient_errors", 0) if s else 0,
            "skipped_budget": s.skipped if s else 0,
            "not_yet_judged": max(0, run.n_items - n),
            "cost_usd": s.cost_usd if s else 0.0,
            "saved_usd": getattr(s, "saved_usd", 0.0) if s else 0.0,
        })
    return out


def totals(counts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The run's sums over its judges."""
    keys = ("judged", "cached", "judge_error", "skipped_budget", "not_yet_judged", "cost_usd", "saved_usd")
    return {key: sum(c[key] for c in counts) for key in keys}


def judge_errors(run_id: str, summaries: Sequence[Any]) -> str:
    """One line on the run's judge errors, per judge, with the next step; '' when it has none.

    Judge errors are rows without a verdict: the run measured less than it was
    asked to, which the exit code says only with a gate (its ``--max-errors``)
    or ``--fail-on-errors``. Each judge's commonest error kind is named with a
    sample of its text. Judge-wide kinds (refusals, outages) never reach this
    line: they end the command first, with their own (``scheduler.causes``).
    """
    from .causes import main_kind

    hit = [s for s in summaries if s.errors]
    if not hit:
        return ""
    total = sum(s.errors for s in hit)
    rows = sum(s.n for s in summaries)
    parts = []
    for s in hit:
        top = main_kind(s)
        kind = (top.kind or "the judge's own") if top else ""
        mostly = f", mostly {kind} ({top.count}): {top.sample!r}" if top else ""
        parts.append(f"{s.eval} {s.errors}{mostly}")
    return (f"run {run_id}: {total} of {rows} rows are judge errors, not verdicts ({'; '.join(parts)}); "
            f"'judgeq report {run_id}' shows them by kind")


def over_errors(summaries: Sequence[Any], max_errors: int) -> list[str]:
    """The judges with more than ``max_errors`` judge errors: what ``--fail-on-errors`` fails on."""
    return [s.eval for s in summaries if s.errors > max_errors]
