"""``judgeq promote``: a run's failing traces appended to the golden set (``scheduler.promotion``).

Registered on the root app by ``cli.main``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.options import JsonOpt
from cli.state import settings_of


def promote(
    ctx: typer.Context,
    where: Annotated[str, typer.Option("--where", help='Which rows to promote, e.g. "score < 0.5" or '
                                       '\'label == "fail" and metadata.locale == "de"\' (see README).')],
    to: Annotated[Path, typer.Option("--to", help="The golden dataset (.jsonl) to append to; created if absent.")],
    run: Annotated[Optional[str], typer.Option("--run", help="The run to promote from.")] = None,
    source: Annotated[Optional[str], typer.Option("--source", help="With --window and --judge: the online run "
                                                  "of this source (or schedule).")] = None,
    schedule: Annotated[Optional[str], typer.Option("--schedule", help="With --window and --judge: the online run "
                                                    "of this [online.NAME] schedule.")] = None,
    window: Annotated[Optional[str], typer.Option("--window", help="The window id, e.g. 2026-11-22T13.")] = None,
    judge: Annotated[Optional[str], typer.Option("--judge", help="The judge whose rows are read (needed with "
                                                 "--source, or for a run of several judges).")] = None,
    by: Annotated[Optional[str], typer.Option("--by", help="A metadata key: --limit applies per value of it "
                                              "(e.g. locale).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="At most this many traces (per --by "
                                                 "value), worst first.")] = None,
    expected_from: Annotated[Optional[str], typer.Option("--expected-from", help="A record field holding the "
                                                         "expected answer (e.g. metadata.reference); otherwise "
                                                         "expected is left empty for review.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Append a run's failing traces to a golden dataset file, deduplicated, with their provenance.

    Never rewrites existing lines; running it again adds nothing. Prints the
    file's new SHA-256, the dataset version `judgeq submit` records.
    """

    from scheduler.errors import UsageError
    from scheduler.promotion import check_target, expected_getter, find_run, promote as promoting, slice_key
    from scheduler.where import parse_where

    condition = parse_where(where)
    check_target(to)
    expected_getter(expected_from)
    slice_key(by)
    if by is not None and limit is None:
        raise UsageError("--by sets the slices --limit applies to; give --limit N too")
    cli_settings = settings_of(ctx)
    _ = cli_settings.scheduler  # read first, as before the sections were split: a bad JUDGEQ_* setting exits 2 here
    ledger = cli_settings.ledger()
    if schedule is not None:
        if source is not None:
            raise UsageError("give --source S (ad-hoc runs of a source) or --schedule N (a schedule's runs), not both")
        if judge is not None:  # as `judgeq drift --schedule` checks it: a schedule that runs the judge
            from online.budget.setting import check_names

            check_names(cli_settings.config, judge, schedule)
    chosen, judge_name = find_run(ledger, run_id=run, source=schedule or source, window=window, judge=judge)
    done = promoting(ledger, chosen, judge_name, condition, to, by=by, limit=limit, expected_from=expected_from,
                     now=datetime.now(UTC), max_bytes=cli_settings.chunks.max_record_bytes)
    if json_out:
        from cli.views.render import print_json

        print_json(done.to_json())
        return
    from cli.views.promotion import show_promotion

    show_promotion(done)
