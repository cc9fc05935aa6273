"""The online commands: ``judgeq online`` (judge one window) and ``judgeq explain`` (why a trace was judged or not).

Registered on the root app by ``cli.main``; ``beat`` is with the fleet's commands (``cli.commands.fleet``).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from cli.options import ClusterByOpt, JsonOpt, TimeoutOpt
from cli.state import settings_of

if TYPE_CHECKING:
    from online.job import WindowOutcome
    from scheduler.settings import CliSettings

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

    from cli.views.window_outcome import outcome_json, print_outcome
    from scheduler.interrupts import interrupt_on_signals

    interrupt_on_signals()
    cli_settings = settings_of(ctx)
    config = cli_settings.config
    chosen = schedule_for(config, schedule=schedule, source=source, judges=tuple(judge), rate=rate, strata=strata,
                          min_per_stratum=min_per_stratum, size=last, lateness=lateness)
    plan = prepare(config, chosen, max_record_bytes=cli_settings.chunks.max_record_bytes)
    targets = windows_for(chosen, window=window, last=last, now=datetime.now(UTC))
    outcomes, judged = _judge_windows(plan, targets, cli_settings, wait=wait, timeout=timeout)
    ledger = cli_settings.ledger()
    if json_out:
        from scheduler.render import print_json

        shown = [outcome_json(o, ledger, judged=judged, cluster_by=cluster_by) for o in outcomes]
        print_json(shown[0] if window is None or ".." not in window else {"range": window, "windows": shown})
    else:
        for outcome in outcomes:
            print_outcome(outcome, ledger, judged=judged, cluster_by=cluster_by)
    _end_on_nothing_picked(outcomes, chosen.source)


def _judge_windows(plan: Any, targets: list[Any], cli_settings: CliSettings, *, wait: bool,
                   timeout: Optional[float]) -> tuple[list[WindowOutcome], bool]:
    """Judge ``targets`` in order; without a broker, in this process. The outcomes, and whether all rows are in."""
    from online.budget.pacer import window_planner
    from online.job import WindowJob
    from workers.dispatch import connect

    chunks = cli_settings.chunks
    fleet = connect(cli_settings.worker)
    ledger = cli_settings.ledger()
    in_process = None
    if fleet is None:
        from judges.resolved import llm_specs
        from workers.dispatch import EmbeddedDispatcher

        trusted = [spec for j in plan.judges for spec in llm_specs(j)]  # this process's own config
        in_process = EmbeddedDispatcher(ledger, remote_threads=cli_settings.scheduler.embedded_threads,
                                        settings=cli_settings.worker, trusted=trusted)
    outcomes = []
    try:
        for target in targets:
            job = WindowJob(plan.schedule, target, plan.source, plan.judges, ledger, chunks,
                            planner=window_planner(ledger, plan.schedule, target, datetime.now(UTC)))
            _say(f"window {target.id} of {plan.schedule.name} ({plan.schedule.source}): "
                 f"[{target.start:%Y-%m-%d %H:%M}, {target.end:%Y-%m-%d %H:%M}) UTC, "
                 f"judges {', '.join(plan.schedule.judges)}")
            if in_process is not None:
                outcome = job.run(in_process, progress=_scanned)
                in_process.join()
                outcome.settle(ledger)
            else:
                assert fleet is not None
                outcome = _run_on_fleet(job, fleet)
                if wait:
                    _wait_all(outcome, ledger, cli_settings, timeout)
            outcomes.append(outcome)
    finally:
        if fleet is not None:
            fleet.close()
        if in_process is not None:
            in_process.close()
    return outcomes, wait or in_process is not None


def _run_on_fleet(job: Any, fleet: Any) -> WindowOutcome:
    """``job.run`` through the broker; a broker lost mid-scan names how to complete the window's runs.

    The runs it cut off stay ``submitting`` with some items stored and perhaps not sent, and the traces
    after the cut not read at all. Running the command again stores and sends only traces not stored
    before, so ``judgeq resume RUN`` (every item without a row) sends the stored ones first; then the
    command again reads the rest (resume leaves the run "running", which beat no longer rescans, so
    resume alone would leave the unread traces unjudged for good). Resume first: the other order sends
    the rescan's traces twice. Where a schedule runs under beat, its next ticks do both.
    """
    from runs.errors import BrokerUnavailable

    try:
        outcome: WindowOutcome = job.run(fleet, progress=_scanned)
    except BrokerUnavailable as exc:
        runs = " ".join(f"'judgeq resume {run_id}'" for run_id in job.run_ids().values())
        raise BrokerUnavailable(f"{str(exc).rstrip('.')}; window {job.window.id} was cut off mid-scan and its runs stay "
                                f"'submitting': once the broker answers, send what it stored with {runs}, then run "
                                "this judgeq online command again for the traces it did not read (it sends only "
                                "what was not stored)") from exc
    return outcome


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


def _scanned(n: int) -> None:
    if n:
        _say(f"  {n:,} traces read")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _wait_all(outcome: WindowOutcome, ledger: Any, settings: CliSettings, timeout: Optional[float]) -> None:
    from judgeq.errors import INFRASTRUCTURE
    from runs.waiting import wait_for
    from scheduler.interrupts import checkpoint
    from scheduler.progress import ProgressView
    from workers.lost import StallWatch

    for judge, run_id in outcome.runs.items():
        total = ledger.get_run(run_id).expected
        with ProgressView(f"run {run_id}", total) as view:
            progress, complete = wait_for(run_id, ledger, view, timeout_s=timeout, poll_s=settings.scheduler.poll_s,
                                          outage_s=settings.scheduler.wait_outage_s,
                                          stall=StallWatch(run_id, ledger, settings.worker, settings.online,
                                                          settings.chunks),
                                          between=checkpoint)
        if not complete:
            _say(f"judgeq: run {run_id} is not complete ({progress.done}/{progress.expected} rows); check the "
                 f"workers, then 'judgeq status {run_id}' or 'judgeq resume {run_id}'")
            raise typer.Exit(INFRASTRUCTURE)


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

    from scheduler.render import print_json

    settings = settings_of(ctx)
    chosen = schedule_for(settings.config, schedule=schedule, source=source, judges=tuple(judge))
    plan = prepare(settings.config, chosen, check_env=False, max_record_bytes=settings.chunks.max_record_bytes)
    answers = explain_trace(plan, parse_window(window), trace, settings.ledger())
    if json_out:
        print_json([a.to_json() for a in answers])
        return
    for answer in answers:
        print(answer.text())

