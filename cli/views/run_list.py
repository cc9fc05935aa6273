"""``judgeq runs``: the ledger's runs, newest first, as a table or as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .render import print_json


def run_row(run: Any) -> dict[str, Any]:
    """What the list shows of one run (``ledger.models.Run``); also its JSON form."""
    return {
        "id": run.id,
        "created_at": run.created_at,
        "status": run.status,
        "kind": run.kind,
        "dataset_name": run.dataset_name,
        "version": run.dataset_hash or run.window,
        "n_items": run.n_items,
        "judges": list(run.judges),
        "tags": list(run.tags),
    }


def show_runs(runs: Sequence[Any], json_out: bool) -> None:
    """Print ``runs``: a human table, or a JSON list with ``json_out``."""
    rows = [run_row(run) for run in runs]
    if json_out:
        print_json(rows)
        return
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from .console import console as wide_console

    console = wide_console()  # a log or a pipe: one line per run, however wide
    if not rows:
        console.print("no runs match; 'judgeq submit' makes one", markup=False)
        return
    table = Table(title="runs, newest first", title_justify="left", box=box.SIMPLE_HEAD)
    for name, justify, wrap in [("run", "left", False), ("created (UTC)", "left", False), ("status", "left", False),
                                ("dataset", "left", True), ("items", "right", False), ("judges", "left", True),
                                ("tags", "left", True)]:
        table.add_column(name, justify=justify, no_wrap=not wrap, overflow="fold")  # type: ignore[arg-type]
    for run, row in zip(runs, rows):
        # A dataset's SHA-256 is known by its first 12 hex (`--json` has it whole); a window id is shown whole,
        # since its end says its size (2026-11-22T13:05+5m).
        version = (run.dataset_hash or "")[:12] or run.window or ""
        dataset = f"{row['dataset_name']} ({version})" if version else row["dataset_name"]
        table.add_row(*(escape(text) for text in (
            row["id"], f"{row['created_at']:%Y-%m-%d %H:%M}", row["status"], dataset, f"{row['n_items']}",
            ", ".join(row["judges"]), ", ".join(row["tags"]))))
    console.print(table)
