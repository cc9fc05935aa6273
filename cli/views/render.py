"""Output: a human table by default, JSON for machines."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from typing import Any

from pydantic_core import to_jsonable_python

from scheduler.gate import GateResult


def _num(value: float | None, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value, fmt)


def summary_table(run: Any, summaries: Sequence[Any], gates: Sequence[GateResult] = ()) -> None:
    """Print the per-judge summary (items, mean score, errors, cost, latency) and gate lines."""
    from rich.table import Table

    from .console import console as wide_console

    console = wide_console()
    title = f"run {run.id} · {run.dataset_name} · {run.status}"
    table = Table(title=title, title_justify="left")
    for name, justify in [("judge", "left"), ("version", "left"), ("items", "right"), ("mean", "right"),
                          ("errors", "right"), ("cost $", "right"), ("p50 s", "right"), ("p95 s", "right")]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for s in summaries:
        table.add_row(
            s.eval, ", ".join(s.judge_versions) if hasattr(s, "judge_versions") else "", f"{s.n}",
            _num(s.mean, ".4f"), f"{s.errors}" if not s.errors else f"[red]{s.errors}[/red]",
            _num(s.cost_usd, ".4f"), _num(s.latency_p50_s, ".3f"), _num(s.latency_p95_s, ".3f"),
        )
    console.print(table)
    for g in gates:
        style = "green" if g.passed else "bold red"
        console.print(f"[{style}]gate {g.detail}[/{style}]")


def printable(text: str) -> str:
    """``text`` safe for a terminal: each character ``str.isprintable`` refuses (ESC and the other controls,
    bidirectional overrides, line breaks) shown as its Python escape (``\\x1b``), so a value stored before it
    was checked (or written straight into the ledger) cannot move the cursor, recolour or hide what follows."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def cell(text: str) -> str:
    """``text`` for a rich table cell: :func:`printable`, and rich's markup (``[bold]``) escaped."""
    from rich.markup import escape

    return escape(printable(text))


def to_jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON values (pydantic_core): dataclasses and pydantic models as objects, tuples and sets
    as lists, keys as text, datetimes in ISO 8601 (UTC as ``Z``), NaN and infinities as null (not JSON)."""
    return to_jsonable_python(obj, inf_nan_mode="null")


def print_json(payload: Any) -> None:
    json.dump(to_jsonable(payload), sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def run_payload(run: Any, summaries: Sequence[Any], progress: Any, gates: Sequence[GateResult] = (),
                complete: bool = True) -> dict[str, Any]:
    """The machine-readable summary of a run (``--json``)."""
    run_info = {
        "id": run.id, "kind": run.kind, "dataset_name": run.dataset_name, "dataset_hash": run.dataset_hash,
        "window": run.window, "status": run.status, "n_items": run.n_items, "expected": run.expected,
        "tags": run.tags, "meta": run.meta, "created_at": run.created_at,
        "judges": {name: body.get("version") for name, body in (run.judges or {}).items()},
    }
    payload: dict[str, Any] = {"run": run_info, "complete": complete, "progress": progress, "judges": summaries}
    from scheduler.outcomes import outcome_counts, totals

    payload["outcomes"] = outcome_counts(run, summaries)  # judged / cached / judge error / skipped / not yet
    payload["totals"] = totals(payload["outcomes"])
    if gates:
        payload["gates"] = [
            {"gate": str(g.gate), "passed": g.passed, "value": g.value, "detail": g.detail} for g in gates
        ]
        payload["passed"] = all(g.passed for g in gates)
    return payload
