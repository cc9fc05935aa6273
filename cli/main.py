"""The ``judgeq`` command line; with ``scheduler.failures`` and ``scheduler.interrupts``, the only place
where errors become exit codes.

One function per command: it parses its options and calls one library
function with the command's settings (:func:`current_settings`, the global
flags over the environment), then exits as the returned ``Ending`` says.
Command modules of their own (``online_cmds``, ``budget_cmds``) register on
``app`` by one import line at the end of this module. Heavy modules (Celery,
SQLAlchemy, litellm) are imported inside commands, so ``judgeq --help`` stays
fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional, cast

import typer

from scheduler import exitcodes
from cli.options import (BaselineOpt, BaselineTagOpt, ClusterByOpt, FailOnErrorsOpt, GateOnOpt, JsonOpt, ReportArgs,
                          JunitOpt, MarkdownOpt, MaxDropOpt, ByOpt, MinSliceOpt, TimeoutOpt, report_options)
from scheduler.failures import fail
from cli.help_text import PlainHelpGroup

if TYPE_CHECKING:
    from scheduler.finish import Ending
    from scheduler.settings import CliSettings

app = typer.Typer(
    name="judgeq",
    cls=PlainHelpGroup,  # help texts show [online.NAME] as written, not as Rich markup
    help="A distributed judge worker queue for LLM evaluations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
db_app = typer.Typer(help="The ledger database.", no_args_is_help=True)
app.add_typer(db_app, name="db")

_debug = False  # --debug: errors print their traceback
_settings: CliSettings | None = None  # the global flags of the command being run (see current_settings)


@app.callback()
def _global(
    config: Annotated[Optional[Path], typer.Option(envvar="JUDGEQ_CONFIG", help="Judge config file (default: judgeq.toml).")] = None,
    broker_url: Annotated[Optional[str], typer.Option(envvar="JUDGEQ_BROKER_URL", help="Celery broker URL (unset: embedded mode, judging in this process).")] = None,
    ledger_url: Annotated[Optional[str], typer.Option(envvar="JUDGEQ_LEDGER_URL", help="Ledger database URL (default: sqlite:///judgeq.db).")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="On an error, print its traceback (unexpected errors otherwise keep it in a file).")] = False,
) -> None:
    """The flags win over the environment; commands get them with :func:`current_settings`."""
    from scheduler.settings import CliSettings

    global _debug, _settings
    _debug = debug
    _settings = CliSettings(config=config, broker_url=broker_url, ledger_url=ledger_url)


def current_settings() -> CliSettings:
    """The settings of the command being run: its global flags over the environment (read once, when needed)."""
    from scheduler.settings import CliSettings

    return _settings or CliSettings()


def _end(ending: Ending) -> None:
    """Say the ending's lines on stderr and exit with its code (0: return)."""
    for line in ending.lines:
        print(line, file=sys.stderr)
    if ending.code:
        raise typer.Exit(ending.code)


def _parse_meta(pairs: list[str]) -> dict[str, str]:
    from scheduler.errors import UsageError

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
    from scheduler.assess import GateOptions
    from scheduler.finish import Report
    from scheduler.offline import SubmitRequest, submit as submitting

    files = junit is not None or markdown is not None
    options = GateOptions.parse(gate, gate_on=gate_on, max_errors=max_errors, baseline=baseline,
                                baseline_tag=baseline_tag, max_drop=max_drop, cluster_by=cluster_by, files=files)
    report = Report(options, json_out=json_out, junit=junit, markdown=markdown, fail_on_errors=fail_on_errors)
    request = SubmitRequest(dataset, judge, report, wait=wait, timeout=timeout, tags=tag, meta=_parse_meta(meta),
                            max_cost_usd=max_cost, no_cache=no_cache)
    _end(submitting(request, current_settings()))


@app.command()
def status(run_id: Annotated[str, typer.Argument(help="The run id printed by submit.")], json_out: JsonOpt = False) -> None:
    """How far a run has got, counted in the ledger."""
    from cli.views.run_status import show_status

    show_status(run_id, current_settings(), json_out=json_out)


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

    from scheduler.errors import UsageError
    from cli.views.run_list import show_runs

    if limit < 1:
        raise UsageError(f"--limit {limit} lists nothing; give 1 or more")
    if status is not None and status not in RUN_STATUSES:
        raise UsageError(f"--status {status!r} is not one of {', '.join(RUN_STATUSES)}")
    ledger = current_settings().ledger()
    listed = ledger.list_runs(limit=limit, dataset_name=dataset, tag=tag, status=cast("RunStatus | None", status))
    show_runs(listed, json_out)


@app.command("report")
@report_options
def report(
    run_id: Annotated[Optional[str], typer.Argument(help="The run id (or, for a trend, none).")] = None,
    report: ReportArgs = ReportArgs(),  # report_options puts the options shared with gate here
    source: Annotated[Optional[str], typer.Option(
        "--source", help="With --windows: the online runs of this source (or --schedule).")] = None,
    schedule: Annotated[Optional[str], typer.Option("--schedule", help="With --windows: an [online.NAME] "
                                                    "schedule's runs.")] = None,
    judge: Annotated[Optional[str], typer.Option("--judge", help="With --windows: the judge.")] = None,
    windows: Annotated[Optional[str], typer.Option(
        "--windows", help="A trend: one line per window of A..B (e.g. 2026-11-20..2026-11-22).")] = None,
    plot: Annotated[Optional[Path], typer.Option(
        "--plot", help="With --windows: also draw the trend per slice, drift alerts marked, into this .png/.svg/.pdf "
        "(needs the plot extra).")] = None,
) -> None:
    """Scorecard of a run: per judge (and --by slice) items, mean with 95% CI, errors, cost, latency.

    An online run: its window's estimated mean (weighted 1/p) overall and per stratum, with counts.
    With --windows A..B (and --source or --schedule, and --judge): one line per window, the trend.
    """
    from scheduler.errors import UsageError

    if windows is not None or source is not None or schedule is not None:
        if run_id is not None or windows is None or judge is None or (source is None) == (schedule is None):
            raise UsageError("a trend takes --windows A..B, --judge J and one of --source S or --schedule N "
                             "(and no run id)")
        from scheduler.online_view import show_trend

        show_trend(current_settings().ledger(), schedule or source or "", judge, windows, json_out=report.json_out,
                   cluster_by=report.cluster_by, plot=plot)
        return
    if plot is not None:
        raise UsageError("--plot draws a trend: give it with --windows A..B, --judge J and --source S or --schedule N")
    if run_id is None:
        raise UsageError("give a run id (see 'judgeq runs'), or --windows A..B with --source S and --judge J")
    _report_run(run_id, report, need_gate=False)


@app.command("gate")
@report_options
def gate_command(
    run_id: Annotated[str, typer.Argument(help="The run id printed by submit.")],
    report: ReportArgs = ReportArgs(),  # report_options puts the options shared with report here
) -> None:
    """Gate a finished run: absolute gates and/or a baseline gate; exit 0 pass, 1 failed, 2 bad usage."""
    _report_run(run_id, report, need_gate=True)


def _report_run(run_id: str, args: ReportArgs, *, need_gate: bool) -> None:
    from scheduler.finish import report_run

    report = args.parse()
    _end(report_run(run_id, current_settings().ledger(), report, need_gate=need_gate))


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
    from scheduler.assess import GateOptions
    from scheduler.report_view import show_comparison

    options = GateOptions.parse([], by=by, cluster_by=cluster_by, min_slice=min_slice)
    show_comparison(current_settings().ledger(), base_id, cand_id, options, show=show, json_out=json_out)


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(help="The run to complete.")],
    wait: Annotated[bool, typer.Option(help="Wait for the run to complete and print its summary.")] = False,
    timeout: TimeoutOpt = None,
    json_out: JsonOpt = False,
    dataset: Annotated[Optional[Path], typer.Option("--dataset", help="The file the run was submitted from (checked by its sha256): needed to complete a run cut off while it was being submitted.")] = None,
    fail_on_errors: FailOnErrorsOpt = False,
    retry_errors: Annotated[Optional[str], typer.Option(
        "--retry-errors", metavar="KIND,...", help="Also judge again the error rows of these kinds, once their "
        "cause is fixed: forbidden, setup, account, circuit (transient errors are always retried).")] = None,
) -> None:
    """Re-enqueue the items of a run that have no verdict yet: no ledger row, or a transient error."""
    from scheduler.causes import parse_retry
    from scheduler.errors import UsageError
    from scheduler.finish import Report
    from scheduler.offline import ResumeRequest, resume as resuming

    try:
        retry = parse_retry(retry_errors)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    report = Report(json_out=json_out, fail_on_errors=fail_on_errors)
    _end(resuming(ResumeRequest(run_id, report, dataset=dataset, wait=wait, timeout=timeout, retry_errors=retry),
                  current_settings()))


@app.command()
def abandon(run_id: Annotated[str, typer.Argument(help="The run to give up.")]) -> None:
    """Give up a run (one cut off while it was being submitted, say): no gate or baseline uses it again."""
    from scheduler import submit as submitting

    ledger = current_settings().ledger()
    run = ledger.get_run(run_id)
    if submitting.abandon(run, ledger):
        print(f"run {run_id} ({run.dataset_name}, was {run.status}) is abandoned; "
              "no gate or baseline will use it", file=sys.stderr)
    else:
        print(f"run {run_id} was already abandoned", file=sys.stderr)


@app.command()
def judges(json_out: JsonOpt = False) -> None:
    """List the configured and built-in judges with their versions."""
    from cli.views.judge_list import show_judges

    show_judges(current_settings().config, json_out=json_out)


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
    from scheduler.fleet import run_worker, worker_argv

    argv = worker_argv(queues, concurrency=concurrency, pool=pool, prefetch=prefetch, time_limit=time_limit,
                       name=name, loglevel=loglevel)
    _exit_like(run_worker(argv, current_settings()), "worker")


@app.command()
def flower(
    port: Annotated[int, typer.Option(help="Port for Flower's UI and API.")] = 5555,
    address: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Start Flower against the broker; refuses to start without basic auth (FLOWER_BASIC_AUTH=user:password)."""
    from scheduler.fleet import flower_argv, run_celery

    argv = flower_argv(port=port, address=address)
    _exit_like(run_celery(argv, current_settings()), "Flower")


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

    upgrade(current_settings().ledger_url)
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


from cli.commands import online  # noqa: E402,F401  (registers the online commands on app; they import it)
from cli.commands import budget  # noqa: E402,F401  (registers `judgeq budget` on app)
from cli.commands import drift  # noqa: E402,F401  (registers `judgeq drift` on app)
from cli.commands import exporter  # noqa: E402,F401  (registers `judgeq exporter` and `judgeq export-otel` on app)
from cli.commands import distill  # noqa: E402,F401  (registers `judgeq distill` on app)
from cli.commands import promote  # noqa: E402,F401  (registers `judgeq promote` on app)
