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
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from cli.options import JsonOpt
from cli.state import settings_of
from scheduler.errors import UsageError

if TYPE_CHECKING:
    from ledger.store import Ledger


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
    from judges.artifact import write_artifact
    from judges.config import load_config
    from judges.spec import NAME_PATTERN

    from cli.views.distilled import show_trained
    from scheduler.distill import collect, train

    if not NAME_PATTERN.fullmatch(name) or name == teacher:
        raise UsageError(f"--name {name!r} must be a judge name (letters, digits, '_', '.', '-') other than the "
                         "teacher's, e.g. --name faithfulness-mini")
    if not 0.5 <= target < 1.0:
        raise UsageError(f"--target-agreement {target:g} must be at least 0.5 and below 1, e.g. 0.95")
    if (source is None) != (windows is None):
        raise UsageError("--source and --windows go together: --source S --windows A..B")
    if runs and source is not None:
        raise UsageError("give --runs or --source/--windows, not both")

    settings = settings_of(ctx)
    resolved = load_config(settings.config).resolve(teacher, check_env=False)
    ledger = settings.ledger()
    run_ids, where = _runs(ledger, teacher, runs, source, windows)
    say = _say(json_out)
    say(f"reading {teacher}'s verdicts ({resolved.version}) in {where}")
    data = collect(ledger.verdict_rows(teacher, run_ids), teacher, resolved.version)
    data.check(where)
    trained = train(data, target, say)
    meta = {**trained.meta, "name": name, "runs": run_ids[:1000], "source": source, "windows": windows}
    path = write_artifact(out, name, trained.model, meta)
    show_trained(path, meta, json_out)


def _runs(ledger: Ledger, teacher: str, runs: list[str], source: str | None,
          windows: str | None) -> tuple[list[str], str]:
    """The run ids to learn from and how to name them in messages; RunNotFound for an unknown run."""
    if runs:
        ids = [r.strip() for value in runs for r in value.split(",") if r.strip()]
        for run_id in ids:
            ledger.get_run(run_id)
        return ids, f"runs {', '.join(ids[:5])}{' …' if len(ids) > 5 else ''}"
    if source is not None and windows is not None:
        from online.windows import windows_between

        found = ledger.online_runs(source, teacher, [w.id for w in windows_between(windows)])
        return [run.id for run in found], f"{source}'s windows {windows}"
    found_all = [run.id for run in ledger.list_runs(limit=1_000_000) if teacher in run.judges]
    return found_all, "the ledger's runs"


def _say(quiet: bool) -> Any:
    started = time.monotonic()

    def say(text: str) -> None:
        if not quiet:
            print(f"[{time.monotonic() - started:6.1f}s] {text}", file=sys.stderr, flush=True)

    return say
