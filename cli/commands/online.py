"""The online commands: ``judgeq online`` (judge one window) and ``judgeq explain`` (why a trace was judged or not).

Registered on the root app by ``cli.main``; ``beat`` is with the fleet's commands (``cli.commands.fleet``).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from cli.options import ClusterByOpt, JsonOpt, TimeoutOpt
from cli.state import settings_of

if TYPE_CHECKING:
    from online.job import WindowOutcome

ScheduleOpt = Annotated[Optional[str], typer.Option("--schedule", help="An [online.NAME] table of judgeq.toml.")]
SourceOpt = Annotated[Optional[str], typer.Option("--source", help="A [sources.NAME] table (without --schedule: "
                                                  "an ad-hoc schedule named after it).")]
JudgeOpt = Annotated[list[str], typer.Option("--judge", help="Judge name (repeatable); with --schedule, instead of "
                                             "its judges.")]
WindowOpt = Annotated[Optional[str], typer.Option("--window", help="Window id: 2026-11-22T13 (hour), 2026-11-22 "
                                                  "(day), 2026-W47 (ISO week), 2026-11-22T13:05+5m (minutes).")]
WindowsOpt = Annotated[Optional[str], typer.Option("--window", help="Window id: 2026-11-22T13 (hour), 2026-11-22 "
                                                   "(day), 2026-W47 (ISO week), 2026-11-22T13:05+5m (minutes); or a "
                                                   "range of one size, both ends included: 2026-11-20..2026-11-22.")]


def online(
    ctx: typer.Context,
    schedule: ScheduleOpt = None,
    source: SourceOpt = None,
    judge: JudgeOpt = [],  # noqa: B006 (Typer reads the default)
    window: WindowsOpt = None,
    last: Annotated[Optional[str], typer.Option("--last", help="The newest closed window of this size (1h, 1d, "
                                                "1w, 5m).")] = None,
    lateness: Annotated[Optional[str], typer.Option("--lateness", help="A window is closed this long after its end "
                                                    "(late traces); default: the schedule's, 5m ad hoc. E.g. 0s, "
                                                    "90s, 1h.")] = None,
    rate: Annotated[Optional[float], typer.Option("--rate", help="Sampling rate (0-1) for every stratum.")] = None,
    strata: Annotated[Optional[str], typer.Option("--strata", help="Record field to stratify by, e.g. "
                                                  "metadata.locale.")] = None,
    min_per_stratum: Annotated[Optional[int], typer.Option("--min-per-stratum", min=0,
                                                           help="Raise small strata's rates to see this many.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the verdicts (always, without a broker).")] = False,
    timeout: TimeoutOpt = None,
    cluster_by: ClusterByOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Judge windows of live traces: read each from its source, sample it, enqueue the sample.

    A window is judged once: running it again enqueues only traces that were
    not there before (late ones), so a range cut off midway is finished by
    running it again. Without a broker the sample is judged in this process
    on the ledger (SQLite by default).
    """
    from online.plan import prepare, schedule_for, windows_for

    from cli.exits import end
    from cli.views.reporter import TerminalReporter
    from cli.views.window_outcome import outcome_json, print_outcome
    from scheduler.interrupts import interrupt_on_signals
    from scheduler.online_run import judge_windows

    interrupt_on_signals()
    cli_settings = settings_of(ctx)
    config = cli_settings.config
    chosen = schedule_for(config, schedule=schedule, source=source, judges=tuple(judge), rate=rate, strata=strata,
                          min_per_stratum=min_per_stratum, size=last, lateness=lateness)
    plan = prepare(config, chosen, max_record_bytes=cli_settings.chunks.max_record_bytes)
    targets = windows_for(chosen, window=window, last=last, now=datetime.now(UTC))
    judged_windows = judge_windows(plan, targets, cli_settings, TerminalReporter(), wait=wait, timeout=timeout)
    end(judged_windows.ending)
    outcomes, judged = judged_windows.outcomes, judged_windows.judged
    ledger = cli_settings.ledger()
    if json_out:
        from cli.views.render import print_json

        shown = [outcome_json(o, ledger, judged=judged, cluster_by=cluster_by) for o in outcomes]
        print_json(shown[0] if window is None or ".." not in window else {"range": window, "windows": shown})
    else:
        for outcome in outcomes:
            print_outcome(outcome, ledger, judged=judged, cluster_by=cluster_by)
    _end_on_nothing_picked(outcomes, chosen.source)


def _end_on_nothing_picked(outcomes: list[WindowOutcome], source: str) -> None:
    """Warn of each window that read spans and picked none; exit 2 when no window picked any (a config error).

    A window of only other spans can be right (a quiet hour of a chat
    service); every window of the command reading spans and picking none is
    a source whose settings match nothing it reads. Its empty runs are
    harmless: the same command, once the settings are fixed, fills them.
    """
    from judgeq.errors import BAD_INPUT

    for outcome in outcomes:
        if outcome.passed_over is not None:
            _say(f"judgeq: warning: window {outcome.window} of source {source!r} {outcome.passed_over.text()}")
    if outcomes and all(o.passed_over is not None for o in outcomes):
        _say(f"judgeq: nothing was judged: source {source!r} picked no span of what it read; fix [sources.{source}] "
             "and run the same command again")
        raise typer.Exit(BAD_INPUT)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def explain(
    ctx: typer.Context,
    trace: Annotated[str, typer.Argument(help="The trace id.")],
    window: Annotated[str, typer.Option("--window", help="The window id the trace belongs to.")],
    schedule: ScheduleOpt = None,
    source: SourceOpt = None,
    judge: JudgeOpt = [],  # noqa: B006
    json_out: JsonOpt = False,
) -> None:
    """Why a trace was or was not judged: filtered out, u >= p (both numbers), or judged (with its row).

    Recomputed from the trace and the window's rates, not from a stored row per unsampled trace.
    """
    from online.explaining import explain_trace
    from online.plan import prepare, schedule_for
    from online.windows import parse_window

    from cli.views.render import print_json

    settings = settings_of(ctx)
    chosen = schedule_for(settings.config, schedule=schedule, source=source, judges=tuple(judge))
    plan = prepare(settings.config, chosen, check_env=False, max_record_bytes=settings.chunks.max_record_bytes)
    answers = explain_trace(plan, parse_window(window), trace, settings.ledger())
    if json_out:
        print_json([a.to_json() for a in answers])
        return
    for answer in answers:
        print(answer.text())

