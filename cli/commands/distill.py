"""``judgeq distill``: train a distilled judge on a teacher's verdicts in the ledger (``scheduler/distill.py``).

Registered on the root app by ``cli.main``.
Everything is checked before anything is written: the teacher resolves, the
runs exist, the rows can train a classifier (else exit 2, nothing written);
only then is the artifact written, whole, under its content hash.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from cli.options import JsonOpt
from cli.state import settings_of
from scheduler.errors import UsageError


def distill(
    ctx: typer.Context,
    teacher: Annotated[str, typer.Option("--teacher", help="The judge whose verdicts to learn (judgeq.toml).")],
    name: Annotated[str, typer.Option("--name", help="The distilled judge's name, e.g. faithfulness-mini.")],
    runs: Annotated[list[str], typer.Option("--runs", help="Runs to learn from (repeatable, or comma-separated); "
                                            "default: every run of the teacher.")] = [],
    source: Annotated[Optional[str], typer.Option("--source", help="Online runs of this schedule or source ...")] = None,
    windows: Annotated[Optional[str], typer.Option("--windows", help="... over these windows, A..B (e.g. "
                                                   "2026-11-20..2026-11-26).")] = None,
    target: Annotated[float, typer.Option("--target-agreement", help="Agreement with the teacher the proposed "
                                          "confidence threshold must reach on the holdout.")] = 0.95,
    out: Annotated[Path, typer.Option("--out", help="Folder for the artifact.")] = Path("distilled"),
    json_out: JsonOpt = False,
) -> None:
    """Train a distilled judge on the teacher's ok verdicts; write NAME-<hash>.distilled and print its metrics."""
    from judges.spec import NAME_PATTERN

    from cli.views.distilled import show_trained
    from scheduler.distill import distill_judge

    if not NAME_PATTERN.fullmatch(name) or name == teacher:
        raise UsageError(f"--name {name!r} must be a judge name (letters, digits, '_', '.', '-') other than the "
                         "teacher's, e.g. --name faithfulness-mini")
    if not 0.5 <= target < 1.0:
        raise UsageError(f"--target-agreement {target:g} must be at least 0.5 and below 1, e.g. 0.95")
    if (source is None) != (windows is None):
        raise UsageError("--source and --windows go together: --source S --windows A..B")
    if runs and source is not None:
        raise UsageError("give --runs or --source/--windows, not both")

    path, meta = distill_judge(settings_of(ctx), teacher, name, runs=runs, source=source, windows=windows,
                               target=target, out=out, say=_say(json_out))
    show_trained(path, meta, json_out)


def _say(quiet: bool) -> Any:
    """Progress lines on stderr, timed from the first (unless ``quiet``: --json prints the metrics alone)."""
    started: list[float] = []

    def say(text: str) -> None:
        if not quiet:
            started[:] = started or [time.monotonic()]
            print(f"[{time.monotonic() - started[0]:6.1f}s] {text}", file=sys.stderr, flush=True)

    return say
