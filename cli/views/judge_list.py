"""``judgeq judges``: the configured and built-in judges with their versions, as a table or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def judge_rows(config_path: Path) -> list[dict[str, Any]]:
    """One row per judge name of the config (its tables, then the builtins); an unusable table says why.

    What a row says is its judge type's (``describe`` of :mod:`judges.types`); a distilled judge or
    cascade also gets its ``metrics`` (holdout figures, stages).
    """
    from judges.config import load_config
    from judges.errors import JudgeConfigError
    from judges.types import judge_type

    config = load_config(config_path)
    rows: list[dict[str, Any]] = []
    for judge_name in config.names():
        try:
            resolved = config.resolve(judge_name, check_env=False)
        except JudgeConfigError as exc:
            rows.append({"name": judge_name, "kind": "?", "version": "–", "definition": f"unusable: {exc}"})
            continue
        described = judge_type(resolved.spec).describe(resolved.spec)
        row = {"name": judge_name, "kind": resolved.kind, "version": resolved.version, "definition": described.definition}
        rows.append(row if described.metrics is None else {**row, "metrics": described.metrics})
    return rows


def show_judges(config_path: Path, *, json_out: bool) -> None:
    """Print :func:`judge_rows` as a table, or as JSON."""
    rows = judge_rows(config_path)
    if json_out:
        from .render import print_json

        print_json(rows)
        return
    from rich.table import Table

    from .console import console

    table = Table(title="judges", title_justify="left")
    for col in ("name", "kind", "version", "definition"):
        table.add_column(col)
    for row in rows:
        table.add_row(row["name"], row["kind"], row["version"], row["definition"])
    console().print(table)
