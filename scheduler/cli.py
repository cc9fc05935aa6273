"""The ``judgeq`` command line; with ``scheduler.failures`` and ``scheduler.interrupts``, the only place
where errors become exit codes.

One function per command and its options, which is why this is scheduler/'s
largest module; what commands share lives in modules of its own. Heavy modules (Celery, SQLAlchemy, litellm) are imported inside commands, so
``judgeq --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Annotated, Any, Optional, cast

import typer

from . import exitcodes
from .failures import fail
from .interrupts import Submission, interrupt_on_signals, interruptible, say
from .cli_options import (BaselineOpt, BaselineTagOpt, ByOpt, ClusterByOpt, FailOnErrorsOpt, GateOnOpt, GateOpt,
                          JunitOpt, MarkdownOpt, MaxDropOpt, MaxErrorsOpt, MinSliceOpt, TimeoutOpt)

app = typer.Typer(
    name="judgeq",
    help="A distributed judge worker queue for LLM evaluations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
db_app = typer.Typer(help="The ledger database.", no_args_is_help=True)
app.add_typer(db_app, name="db")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON summary instead of the table.")]


_debug = False  # --debug: errors print their traceback


@app.callback()
def _global(
    config: Annotated[Optional[Path], typer.Option(envvar="JUDGEQ_CONFIG", help="Judge config file (default: judgeq.toml).")] = None,
    broker_url: Annotated[Optional[str], typer.Option(envvar="JUDGEQ_BROKER_URL", help="Celery broker URL (unset: embedded mode, judging in this process).")] = None,
    ledger_url: Annotated[Optional[str], typer.Option(envvar="JUDGEQ_LEDGER_URL", help="Ledger database URL (default: sqlite:///judgeq.db).")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="On an error, print its traceback (unexpected errors otherwise keep it in a file).")] = False,
) -> None:
    """Flags set the same variables the environment does, so child processes agree."""
    global _debug
    _debug = debug
    for name, value in (("JUDGEQ_CONFIG", config), ("JUDGEQ_BROKER_URL", broker_url), ("JUDGEQ_LEDGER_URL", ledger_url)):
        if value is not None:
            os.environ[name] = str(value)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def _parse_meta(pairs: list[str]) -> dict[str, str]:
    from .errors import UsageError

    meta: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--meta {pair!r} is not KEY=VALUE")
        meta[key.strip()] = value
    for env, key in (("GITHUB_SHA", "commit"), ("CI_COMMIT_SHA", "commit"), ("BUILDKITE_COMMIT", "commit"),
                     ("GITHUB_REF_NAME", "branch"), ("CI_COMMIT_REF_NAME", "branch")):
        if os.environ.get(env) and key not in meta:
            meta[key] = os.environ[env]
    return meta


@app.command()
def submit(
    dataset: Annotated[Path, typer.Argument(help="JSONL or CSV records (id, input, output, context, expected, metadata).")],
    judge: Annotated[list[str], typer.Option("--judge", "-j", help="A judge to run (repeatable); see 'judgeq judges'.")] = [],
    wait: Annotated[bool, typer.Option(help="Wait for every verdict, print the summary and gate.")] = False,
    gate: Annotated[list[str], typer.Option(help='A gate like "exact>=0.9" (repeatable); needs --wait.')] = [],
    max_errors: Annotated[int, typer.Option(help="Judge errors a gated judge may have and still pass.")] = 0,
    timeout: TimeoutOpt = None,
    tag: Annotated[list[str], typer.Option(help="A tag for the run, e.g. main (repeatable).")] = [],
    meta: Annotated[list[str], typer.Option(help="KEY=VALUE recorded with the run (repeatable).")] = [],
    json_out: JsonOpt = False,
    gate_on: GateOnOpt = "point",
    baseline: BaselineOpt = None,
    baseline_tag: BaselineTagOpt = "main",
    max_drop: MaxDropOpt = None,
    cluster_by: ClusterByOpt = None,
    junit: JunitOpt = None,
    markdown: MarkdownOpt = None,
    max_cost: Annotated[Optional[float], typer.Option("--max-cost", min=0, help="USD: once the run's spend reaches it, stop enqueueing and skip the remaining items (recorded as skipped for budget).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Call remote judges even for items with a cached verdict (same judge version and content).")] = False,
    fail_on_errors: FailOnErrorsOpt = False,
) -> None:
    """Judge a dataset: validate it whole, enqueue it, and optionally wait for the verdict."""
    from judges.config import load_config
    from ledger.settings import LedgerSettings
    from ledger.store import Ledger

    from . import submit as submitting
    from .assess import GateOptions
    from .errors import UsageError
    from .settings import SchedulerSettings

    interrupt_on_signals()
    with interruptible(Submission(dataset)) as submission:
        settings = SchedulerSettings()
        options = GateOptions.parse(gate, gate_on=gate_on, max_errors=max_errors, baseline=baseline,
                                    baseline_tag=baseline_tag, max_drop=max_drop, cluster_by=cluster_by,
                                    files=junit is not None or markdown is not None)
        gates = options.gates
        if options.gating and not wait:
            raise UsageError("--gate and --baseline need --wait (gates are judged on the finished run)")
        if fail_on_errors and not wait:
            raise UsageError("--fail-on-errors needs --wait (judge errors are counted on the finished run)")
        config = load_config(settings.config)
        submitting.warm_up_in_background(config, judge)
        plan = submitting.plan(dataset, config, judge, tags=tag, meta=_parse_meta(meta),
                               max_record_bytes=settings.max_record_bytes)
        if max_cost is not None or no_cache:
            import dataclasses

            plan = dataclasses.replace(plan, max_cost_usd=max_cost, no_cache=no_cache)
        from .gate import check_judges

        check_judges(gates, [j.name for j in plan.judges])
        dispatcher = _dispatcher(settings)
        ledger = Ledger(LedgerSettings().ledger_url)
        baseline_run = None
        if options.baseline is not None:  # resolved before anything is written: a bad baseline is exit 2
            from .baseline import resolve

            baseline_run = resolve(ledger, options.baseline, plan.dataset.name, options.baseline_tag)
        outputs: dict[str, Any] = dict(options=options, baseline_run=baseline_run, junit=junit, markdown=markdown,
                                       fail_on_errors=fail_on_errors)
        submitting.create_run(plan, ledger)  # the run id is shown only once its row exists
        submission.run_id = plan.run_id
        say(f"run {plan.run_id}: {plan.dataset.count} items × {len(plan.judges)} judges "
             f"({plan.dataset.name}, {plan.dataset.content_hash[:12]})")
        if not json_out:
            print(plan.run_id, flush=True)
        if dispatcher.embedded:
            _run_embedded(plan, ledger, settings, gates, max_errors, timeout, json_out, outputs, submission.sent)
            return
        submitting.enqueue_items(plan, ledger, dispatcher, settings)
        submission.sent.set()
        if not wait:
            if json_out:
                from .render import print_json

                print_json({"run_id": plan.run_id, "expected": plan.expected, "enqueued": True})
            return
        _wait_and_report(plan.run_id, ledger, settings, gates, max_errors, timeout, json_out, **outputs)


def _dispatcher(settings: Any) -> Any:
    from workers.dispatch import CeleryDispatcher
    from workers.settings import WorkerSettings

    worker_settings = WorkerSettings()
    if not worker_settings.broker_url:
        return _Embedded()
    dispatcher = CeleryDispatcher(worker_settings)
    dispatcher.check()
    return dispatcher


class _Embedded:
    """Placeholder until the ledger is open: embedded mode needs it to build its dispatcher."""

    embedded = True


def _run_embedded(plan: Any, ledger: Any, settings: Any, gates: list[Any], max_errors: int,
                  timeout: Optional[float], json_out: bool, outputs: Optional[dict[str, Any]] = None,
                  sent: Optional[threading.Event] = None) -> None:
    """Embedded mode: the same chunk code runs in this process while the main thread shows progress."""
    from . import submit as submitting

    # The judges come from this process's own judgeq.toml: trusted (see judges.egress).
    trusted = [j.spec for j in plan.judges if j.kind == "remote"]

    def job(dispatcher: Any, stop: threading.Event) -> None:
        if submitting.enqueue_items(plan, ledger, dispatcher, settings, stop=stop) and sent is not None:
            sent.set()

    _judge_in_process(job, plan.run_id, ledger, settings, gates, max_errors, timeout, json_out, trusted,
                      expected=plan.expected, **(outputs or {}))


def _judge_in_process(job: Any, run_id: str, ledger: Any, settings: Any, gates: list[Any], max_errors: int,
                      timeout: Optional[float], json_out: bool, trusted: list[Any], **report: Any) -> None:
    """Run ``job(dispatcher, stop)`` on a thread that judges in this process; wait and report meanwhile.

    On Ctrl-C or SIGTERM the job stops between batches, chunks not yet started
    are dropped and those being judged finish (each writes its rows in one
    transaction), then the interrupt goes on to exit 3; the run is resumable.
    ``trusted``: the LLM judge specs of this process's own judgeq.toml (see judges.egress).
    """
    from workers.dispatch import EmbeddedDispatcher

    dispatcher = EmbeddedDispatcher(ledger, remote_threads=settings.embedded_threads, trusted=trusted)
    failure: list[BaseException] = []
    stop = threading.Event()

    def work() -> None:
        try:
            job(dispatcher, stop)
            dispatcher.join()
        except BaseException as exc:  # surfaced in the main thread below
            failure.append(exc)

    worker = threading.Thread(target=work, name="judgeq-embedded", daemon=True)
    worker.start()
    try:
        _wait_and_report(run_id, ledger, settings, gates, max_errors, timeout, json_out,
                         alive=worker.is_alive, failure=failure, **report)
    except KeyboardInterrupt:
        stop.set()
        dispatcher.cancel()
        worker.join(timeout=EMBEDDED_STOP_S)
        raise


EMBEDDED_STOP_S = 30  # how long an interrupt waits for the in-process sender to finish its batch


def _wait_and_report(run_id: str, ledger: Any, settings: Any, gates: list[Any], max_errors: int,
                     timeout: Optional[float], json_out: bool, alive: Any = None,
                     failure: Optional[list[BaseException]] = None, expected: Optional[int] = None,
                     options: Any = None, baseline_run: Any = None, junit: Optional[Path] = None,
                     markdown: Optional[Path] = None, fail_on_errors: bool = False) -> None:
    """Wait for the run, print its summary, and exit: 3 incomplete or not measured, 1 a gate failed or
    (``fail_on_errors``) a judge has more judge errors than ``max_errors``; else 0.

    Judge errors are said in one line on stderr whatever the exit code.
    """
    from .assess import GateOptions, assess
    from .progress import ProgressView
    from .report_view import deliver
    from .waiting import wait_for

    total = expected if expected is not None else ledger.get_run(run_id).expected
    with ProgressView(f"run {run_id}", total) as view:
        progress, complete = wait_for(run_id, ledger, view, timeout_s=timeout, poll_s=settings.poll_s, alive=alive,
                                      outage_s=settings.wait_outage_s)
    if failure:
        raise failure[0]
    run = ledger.get_run(run_id)
    options = options or GateOptions(gates=list(gates), max_errors=max_errors)
    assessment = assess(ledger, run, options, baseline_run=baseline_run)
    deliver(assessment, progress, complete, json_out=json_out, junit=junit, markdown=markdown)
    results = assessment.results
    if not json_out:
        from .outcomes import print_outcomes

        print_outcomes(run, assessment.summaries)
    if not complete:
        print(f"judgeq: run {run_id} is not complete ({progress.done}/{progress.expected} rows); "
              f"check the workers, then 'judgeq status {run_id}' or 'judgeq resume {run_id}'", file=sys.stderr)
        raise typer.Exit(exitcodes.INFRASTRUCTURE)
    _exit_if_not_measured(run_id, assessment.summaries)
    errors_failed = _say_judge_errors(run_id, assessment.summaries, fail_on_errors, options.max_errors)
    if (results and not all(r.passed for r in results)) or errors_failed:
        raise typer.Exit(exitcodes.GATE_FAILED)


def _say_judge_errors(run_id: str, summaries: Any, fail_on_errors: bool, max_errors: int) -> bool:
    """Say the run's judge errors in one line on stderr; whether ``--fail-on-errors`` fails on them."""
    from .outcomes import judge_errors, over_errors

    line = judge_errors(run_id, summaries)
    if not line:
        return False
    failing = over_errors(summaries, max_errors) if fail_on_errors else []
    verdict = (f"; --fail-on-errors: {', '.join(failing)} over --max-errors {max_errors}, exit 1"
               if failing else "")
    print(f"judgeq: {line}{verdict}", file=sys.stderr)
    return bool(failing)


def _exit_if_not_measured(run_id: str, summaries: Any) -> None:
    """Exit 3 when judges could not measure: the provider refused the account, or stayed unreachable.

    Neither is a verdict on quality, so neither may read as a failed gate (1) or a pass (0).
    """
    from .outcomes import refused, unreachable

    refusals = refused(summaries)
    if refusals:
        print(f"judgeq: {refusals}; fix the key or account, then submit again", file=sys.stderr)
        raise typer.Exit(exitcodes.INFRASTRUCTURE)
    outage = unreachable(summaries)
    if outage:  # transient errors are resumable
        print(f"judgeq: {outage}; once it answers again, 'judgeq resume {run_id}' retries them", file=sys.stderr)
        raise typer.Exit(exitcodes.INFRASTRUCTURE)


@app.command()
def status(run_id: Annotated[str, typer.Argument(help="The run id printed by submit.")], json_out: JsonOpt = False) -> None:
    """How far a run has got, counted in the ledger."""
    from ledger.settings import LedgerSettings
    from ledger.store import Ledger

    from .deadletters import DeadLetterView
    from .render import print_json

    ledger = Ledger(LedgerSettings().ledger_url)
    run = ledger.get_run(run_id)
    progress = ledger.progress(run_id)
    if run.status == "running" and progress.done >= progress.expected and _mark_done(ledger, run_id):
        run = ledger.get_run(run_id)
    dead = DeadLetterView.read(run_id)
    if json_out:
        print_json({"run_id": run.id, "status": run.status, "progress": progress, "dead_letters": dead.as_json()})
        return
    pct = 100.0 * progress.done / progress.expected if progress.expected else 100.0
    print(f"run {run.id} ({run.dataset_name}): {run.status}, {progress.done}/{progress.expected} rows ({pct:.0f}%), "
          f"{progress.ok} ok, {progress.errors} errors, {progress.skipped} skipped")
    for line in dead.lines():
        print(line)


@app.command()
def runs(
    limit: Annotated[int, typer.Option("--limit", help="Runs listed at most.")] = 20,
    status: Annotated[Optional[str], typer.Option("--status", help="Only runs in this status: submitting, running or done.")] = None,
    tag: Annotated[Optional[str], typer.Option("--tag", help="Only runs with this tag (e.g. main).")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Only runs of this dataset name (the file's stem, e.g. golden).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List the ledger's runs, newest first (id, created, status, dataset, items, judges, tags)."""
    from ledger.models import RUN_STATUSES, RunStatus
    from ledger.settings import LedgerSettings
    from ledger.store import Ledger

    from .errors import UsageError
    from .run_list import show_runs

    if limit < 1:
        raise UsageError(f"--limit {limit} lists nothing; give 1 or more")
    if status is not None and status not in RUN_STATUSES:
        raise UsageError(f"--status {status!r} is not one of {', '.join(RUN_STATUSES)}")
    ledger = Ledger(LedgerSettings().ledger_url)
    listed = ledger.list_runs(limit=limit, dataset_name=dataset, tag=tag, status=cast("RunStatus | None", status))
    show_runs(listed, json_out)


def _mark_done(ledger: Any, run_id: str) -> bool:
    """``ledger.mark_done_if_complete``, except that a read-only ledger is read as it is."""
    from ledger.errors import LedgerReadOnly

    try:
        return bool(ledger.mark_done_if_complete(run_id))
    except LedgerReadOnly:
        return False


@app.command("report")
def report(
    run_id: Annotated[Optional[str], typer.Argument(help="The run id (or, for a trend, none).")] = None,
    gate: GateOpt = [],
    max_errors: MaxErrorsOpt = 0,
    json_out: JsonOpt = False,
    by: ByOpt = None,
    cluster_by: ClusterByOpt = None,
    min_slice: MinSliceOpt = 30,
    gate_on: GateOnOpt = "point",
    baseline: BaselineOpt = None,
    baseline_tag: BaselineTagOpt = "main",
    max_drop: MaxDropOpt = None,
    junit: JunitOpt = None,
    markdown: MarkdownOpt = None,
    source: Annotated[Optional[str], typer.Option(
        "--source", help="With --windows: the online runs of this source (or --schedule).")] = None,
    schedule: Annotated[Optional[str], typer.Option("--schedule", help="With --windows: an [online.NAME] "
                                                    "schedule's runs.")] = None,
    judge: Annotated[Optional[str], typer.Option("--judge", help="With --windows: the judge.")] = None,
    windows: Annotated[Optional[str], typer.Option(
        "--windows", help="A trend: one line per window of A..B (e.g. 2026-11-20..2026-11-22).")] = None,
    fail_on_errors: FailOnErrorsOpt = False,
) -> None:
    """Scorecard of a run: per judge (and --by slice) items, mean with 95% CI, errors, cost, latency.

    An online run: its window's estimated mean (weighted 1/p) overall and per stratum, with counts.
    With --windows A..B (and --source or --schedule, and --judge): one line per window, the trend.
    """
    from .errors import UsageError

    if windows is not None or source is not None or schedule is not None:
        if run_id is not None or windows is None or judge is None or (source is None) == (schedule is None):
            raise UsageError("a trend takes --windows A..B, --judge J and one of --source S or --schedule N "
                             "(and no run id)")
        _trend(schedule or source or "", judge, windows, json_out, cluster_by)
        return
    if run_id is None:
        raise UsageError("give a run id (see 'judgeq runs'), or --windows A..B with --source S and --judge J")
    _assess_and_exit(run_id, gate, max_errors, json_out, by, cluster_by, min_slice, gate_on, baseline,
                     baseline_tag, max_drop, junit, markdown, need_gate=False, fail_on_errors=fail_on_errors)


def _trend(name: str, judge: str, windows: str, json_out: bool, cluster_by: Optional[str]) -> None:
    from ledger.settings import LedgerSettings
    from ledger.store import Ledger
    from online.windows import windows_between

    from .errors import UsageError
    from .online_view import trend_view

    ids = [w.id for w in windows_between(windows)]
    ledger = Ledger(LedgerSettings().ledger_url)
    runs = ledger.online_runs(name, judge, ids)
    if not runs and not json_out:
        raise UsageError(f"no online run of {name!r} with judge {judge!r} in {windows}; see 'judgeq runs'")
    trend_view(ledger, runs, json_out=json_out, cluster_by=cluster_by, title=f"{name} · {judge} · {windows}")


@app.command("gate")
def gate_command(
    run_id: Annotated[str, typer.Argument(help="The run id printed by submit.")],
    gate: GateOpt = [],
    max_errors: MaxErrorsOpt = 0,
    json_out: JsonOpt = False,
    by: ByOpt = None,
    cluster_by: ClusterByOpt = None,
    min_slice: MinSliceOpt = 30,
    gate_on: GateOnOpt = "point",
    baseline: BaselineOpt = None,
    baseline_tag: BaselineTagOpt = "main",
    max_drop: MaxDropOpt = None,
    junit: JunitOpt = None,
    markdown: MarkdownOpt = None,
    fail_on_errors: FailOnErrorsOpt = False,
) -> None:
    """Gate a finished run: absolute gates and/or a baseline gate; exit 0 pass, 1 failed, 2 bad usage."""
    _assess_and_exit(run_id, gate, max_errors, json_out, by, cluster_by, min_slice, gate_on, baseline,
                     baseline_tag, max_drop, junit, markdown, need_gate=True, fail_on_errors=fail_on_errors)


def _assess_and_exit(run_id: str, gate: list[str], max_errors: int, json_out: bool, by: Optional[str],
                     cluster_by: Optional[str], min_slice: int, gate_on: str, baseline: Optional[str],
                     baseline_tag: str, max_drop: Optional[float], junit: Optional[Path],
                     markdown: Optional[Path], need_gate: bool, fail_on_errors: bool = False) -> None:
    """Report or gate a run; ``fail_on_errors`` counts as a gate (``judgeq gate RUN --fail-on-errors``)."""
    from ledger.settings import LedgerSettings
    from ledger.store import Ledger

    from .assess import GateOptions, assess
    from .errors import UsageError
    from .report_view import deliver

    options = GateOptions.parse(gate, gate_on=gate_on, max_errors=max_errors, baseline=baseline,
                                baseline_tag=baseline_tag, max_drop=max_drop, by=by, cluster_by=cluster_by,
                                min_slice=min_slice, files=junit is not None or markdown is not None)
    if need_gate and not options.gating and not fail_on_errors:
        raise UsageError('nothing to gate on; add --gate "JUDGE>=X", --baseline RUN|latest and/or --fail-on-errors')
    ledger = Ledger(LedgerSettings().ledger_url)
    run = ledger.get_run(run_id)
    if need_gate and run.status == "abandoned":
        raise UsageError(f"run {run_id} was abandoned; there is nothing to gate (submit the dataset again)")
    progress = ledger.progress(run_id)
    if run.kind == "online" and not need_gate:  # the window's population, estimated per stratum
        from .online_view import online_report

        online_report(ledger, run, options, progress, json_out=json_out)
        if not progress.complete and not json_out:
            print(f"(incomplete: {progress.done}/{progress.expected} rows)", file=sys.stderr)
        return
    assessment = assess(ledger, run, options)
    complete = progress.done >= progress.expected
    deliver(assessment, progress, complete, json_out=json_out, junit=junit, markdown=markdown)
    if not complete and not json_out:
        print(f"(incomplete: {progress.done}/{progress.expected} rows)", file=sys.stderr)
    if options.gating or fail_on_errors:  # a gate on what the provider never answered is not a quality verdict
        _exit_if_not_measured(run_id, assessment.summaries)
    # Said only when asked to check them: the scorecard already shows the errors.
    errors_failed = fail_on_errors and _say_judge_errors(run_id, assessment.summaries, True, options.max_errors)
    if not assessment.passed or errors_failed:
        raise typer.Exit(exitcodes.GATE_FAILED)


@app.command()
def compare(
    base_id: Annotated[str, typer.Argument(metavar="BASE", help="The baseline run.")],
    cand_id: Annotated[str, typer.Argument(metavar="CAND", help="The candidate run.")],
    by: ByOpt = None,
    cluster_by: ClusterByOpt = None,
    min_slice: MinSliceOpt = 30,
    show: Annotated[int, typer.Option(help="Flipped items listed per judge and direction.")] = 20,
    json_out: JsonOpt = False,
) -> None:
    """Paired comparison of two runs per judge: delta with 95% CI, McNemar or paired t, flipped items."""
    from ledger.settings import LedgerSettings
    from ledger.store import Ledger

    from .assess import GateOptions, compare as comparing
    from .errors import UsageError
    from .render import print_json
    from .report_view import comparison_json, comparison_table

    options = GateOptions.parse([], by=by, cluster_by=cluster_by, min_slice=min_slice)
    ledger = Ledger(LedgerSettings().ledger_url)
    base, cand = ledger.get_run(base_id), ledger.get_run(cand_id)
    comparisons = comparing(ledger, base, cand, options, excerpts=max(show, 50))
    if not comparisons:
        raise UsageError(f"runs {base_id} and {cand_id} share no judge with rows "
                         f"({', '.join(base.judges)} vs {', '.join(cand.judges)}); compare runs of the same judges")
    if json_out:
        print_json({"base": {"id": base.id, "dataset_name": base.dataset_name, "status": base.status},
                    "cand": {"id": cand.id, "dataset_name": cand.dataset_name, "status": cand.status},
                    "judges": [comparison_json(c) for c in comparisons]})
        return
    comparison_table(base.id, cand.id, comparisons, show=show)


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(help="The run to complete.")],
    wait: Annotated[bool, typer.Option(help="Wait for the run to complete and print its summary.")] = False,
    timeout: TimeoutOpt = None,
    json_out: JsonOpt = False,
    dataset: Annotated[Optional[Path], typer.Option("--dataset", help="The file the run was submitted from (checked by its sha256): needed to complete a run cut off while it was being submitted.")] = None,
    fail_on_errors: FailOnErrorsOpt = False,
) -> None:
    """Re-enqueue the items of a run that have no verdict yet: no ledger row, or a transient error."""
    from ledger.settings import LedgerSettings
    from ledger.store import Ledger

    from . import submit as submitting
    from .settings import SchedulerSettings

    interrupt_on_signals()
    if fail_on_errors and not wait:
        from .errors import UsageError

        raise UsageError("--fail-on-errors needs --wait (judge errors are counted on the finished run)")
    settings = SchedulerSettings()
    ledger = Ledger(LedgerSettings().ledger_url)
    run = ledger.get_run(run_id)
    with interruptible(Submission(dataset, run_id)) as submission:
        info = submitting.check_resumable(run, ledger, dataset)  # before anything is written
        dispatcher = _dispatcher(settings)
        if dispatcher.embedded:
            from judges.config import load_config
            from judges.spec import LlmJudgeSpec

            # Only judges that match this process's own judgeq.toml are trusted; the ledger may be shared.
            own = [s for s in load_config(settings.config).judges.values() if isinstance(s, LlmJudgeSpec)]

            def job(embedded: Any, stop: threading.Event) -> None:
                submitting.resume(run, ledger, embedded, settings, dataset=info)

            _judge_in_process(job, run_id, ledger, settings, [], 0, timeout, json_out, own,
                              fail_on_errors=fail_on_errors)
            return
        missing = submitting.resume(run, ledger, dispatcher, settings, dataset=info)
        submission.sent.set()
        from .deadletters import clear

        clear(run_id)  # their items were among those re-enqueued
        print(f"run {run_id}: re-enqueued {missing} item-judge pairs without a verdict (no row, or a transient "
              "error)", file=sys.stderr)
        if wait:
            _wait_and_report(run_id, ledger, settings, [], 0, timeout, json_out, fail_on_errors=fail_on_errors)


@app.command()
def abandon(run_id: Annotated[str, typer.Argument(help="The run to give up.")]) -> None:
    """Give up a run (one cut off while it was being submitted, say): no gate or baseline uses it again."""
    from ledger.settings import LedgerSettings
    from ledger.store import Ledger

    from . import submit as submitting

    ledger = Ledger(LedgerSettings().ledger_url)
    run = ledger.get_run(run_id)
    if submitting.abandon(run, ledger):
        print(f"run {run_id} ({run.dataset_name}, was {run.status}) is abandoned; "
              "no gate or baseline will use it", file=sys.stderr)
    else:
        print(f"run {run_id} was already abandoned", file=sys.stderr)


@app.command()
def judges(json_out: JsonOpt = False) -> None:
    """List the configured and built-in judges with their versions."""
    from judges.config import load_config

    from .render import print_json
    from .settings import SchedulerSettings

    from judges.errors import JudgeConfigError

    config = load_config(SchedulerSettings().config)
    rows = []
    for judge_name in config.names():
        try:
            resolved = config.resolve(judge_name, check_env=False)
        except JudgeConfigError as exc:
            rows.append({"name": judge_name, "kind": "?", "version": "–", "definition": f"unusable: {exc}"})
            continue
        spec = resolved.spec
        definition = getattr(spec, "model", None) or f"builtin {getattr(spec, 'builtin', '?')}"
        params = getattr(spec, "params", None)
        if params and resolved.kind == "local":
            definition += " " + " ".join(f"{k}={v}" for k, v in sorted(params.items()))
        rows.append({"name": judge_name, "kind": resolved.kind, "version": resolved.version, "definition": definition})
    if json_out:
        print_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="judges", title_justify="left")
    for col in ("name", "kind", "version", "definition"):
        table.add_column(col)
    for row in rows:
        table.add_row(row["name"], row["kind"], row["version"], row["definition"])
    Console().print(table)


@app.command()
def worker(
    queues: Annotated[str, typer.Option(help="Queues to consume: local, remote, or local,remote.")] = "local",
    concurrency: Annotated[Optional[int], typer.Option(help="Processes (prefork) or threads; default per queue.")] = None,
    pool: Annotated[Optional[str], typer.Option(help="prefork (CPU-bound local judges) or threads (I/O-bound remote).")] = None,
    prefetch: Annotated[Optional[int], typer.Option(help="Prefetch multiplier; default per queue.")] = None,
    time_limit: Annotated[int, typer.Option(help="Hard time limit per chunk in seconds (prefork only).")] = 150,
    name: Annotated[Optional[str], typer.Option(help="Worker node name (default QUEUES-PID@host).")] = None,
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "INFO",
) -> None:
    """Run a Celery worker for the local or remote judge queue."""
    from .fleet import worker_argv

    argv = worker_argv(queues, concurrency=concurrency, pool=pool, prefetch=prefetch, time_limit=time_limit,
                       name=name, loglevel=loglevel)
    from workers.settings import WorkerSettings

    worker_settings = WorkerSettings()
    if not worker_settings.broker_url:
        from .errors import UsageError

        raise UsageError("a worker needs a broker: set JUDGEQ_BROKER_URL (e.g. redis://127.0.0.1:6379/0) or --broker-url")
    worker_settings.egress_policy()  # a malformed JUDGEQ_KEY_ENDPOINTS stops the worker here (exit 2)
    from workers.dispatch import check_broker_url

    check_broker_url(worker_settings.broker_url)
    from workers.tasks import app as celery_app

    _exit_like(celery_app.start(argv), "worker")


@app.command()
def flower(
    port: Annotated[int, typer.Option(help="Port for Flower's UI and API.")] = 5555,
    address: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Start Flower against the broker; refuses to start without basic auth (FLOWER_BASIC_AUTH=user:password)."""
    from .fleet import flower_argv

    argv = flower_argv(port=port, address=address)
    from workers.tasks import app as celery_app

    _exit_like(celery_app.start(argv), "Flower")


def _exit_like(code: Optional[int], what: str) -> None:
    """Exit non-zero when Celery's command did (``app.worker_main`` drops the code), so a supervisor restarts it.

    A worker that stops on an unrecoverable error exits 1 in Celery; judgeq
    keeps 1 for a failed gate, so it becomes INFRASTRUCTURE (3).
    """
    if code:
        print(f"judgeq: the {what} stopped after an error (Celery's exit code {code}); see its log above",
              file=sys.stderr)
        raise typer.Exit(exitcodes.INFRASTRUCTURE)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the ledger's migrations (also done on first use of an empty database)."""
    from ledger.migrate import upgrade
    from ledger.settings import LedgerSettings

    url = LedgerSettings().ledger_url
    upgrade(url)
    print("ledger is at the newest schema", file=sys.stderr)


def main() -> None:
    """Entry point: run the app; an error ends it with one line on stderr and its exit code.

    See :mod:`scheduler.failures`; ``--debug`` prints the traceback.
    """
    try:
        app()
    except KeyboardInterrupt:
        print("judgeq: interrupted; the run stays resumable with 'judgeq resume RUN'", file=sys.stderr)
        sys.exit(exitcodes.INFRASTRUCTURE)
    except Exception as exc:
        fail(exc, debug=_debug)


from . import online_cmds  # noqa: E402,F401  (registers the online commands on app; they import it)
from . import budget_cmds  # noqa: E402,F401  (registers `judgeq budget` on app)
