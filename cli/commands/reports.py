"""What the ledger says of runs: ``judgeq status``, ``runs``, ``report``, ``gate`` and ``compare``.

``report`` and ``gate`` share their options (``cli.options.report_options``)
and end through ``scheduler.finish.report_run``, as a submit with ``--wait``
does; the others print a view of ``cli.views``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional, cast

import typer

from cli.exits import end
from cli.options import ByOpt, ClusterByOpt, JsonOpt, MinSliceOpt, ReportArgs, report_options
from cli.state import settings_of


def status(ctx: typer.Context, run_id: Annotated[str, typer.Argument(help="The run id printed by submit.")], json_out: JsonOpt = False) -> None:
    """How far a run has got, counted in the ledger."""
    from cli.views.run_status import show_status

    show_status(run_id, settings_of(ctx), json_out=json_out)


def runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", help="Runs listed at most.")] = 20,
    status: Annotated[Optional[str], typer.Option("--status", help="Only runs in this status: submitting, running or done.")] = None,
    tag: Annotated[Optional[str], typer.Option("--tag", help="Only runs with this tag (e.g. main).")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Only runs of this dataset name (the file's stem, e.g. golden).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List the ledger's runs, newest first (id, created, status, dataset, items, judges, tags)."""
    from ledger.models import RUN_STATUSES, RunStatus

    from cli.views.run_list import show_runs
    from scheduler.errors import UsageError

    if limit < 1:
        raise UsageError(f"--limit {limit} lists nothing; give 1 or more")
    if status is not None and status not in RUN_STATUSES:
        raise UsageError(f"--status {status!r} is not one of {', '.join(RUN_STATUSES)}")
    ledger = settings_of(ctx).ledger()
    listed = ledger.runs.list_runs(limit=limit, dataset_name=dataset, tag=tag, status=cast("RunStatus | None", status))
    show_runs(listed, json_out)


@report_options
def report(
    ctx: typer.Context,
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
        from cli.views.online_report import show_trend

        show_trend(settings_of(ctx).ledger(), schedule or source or "", judge, windows, json_out=report.json_out,
                   cluster_by=report.cluster_by, plot=plot)
        return
    if plot is not None:
        raise UsageError("--plot draws a trend: give it with --windows A..B, --judge J and --source S or --schedule N")
    if run_id is None:
        raise UsageError("give a run id (see 'judgeq runs'), or --windows A..B with --source S and --judge J")
    _report_run(ctx, run_id, report, need_gate=False)


@report_options
def gate_command(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run id printed by submit.")],
    report: ReportArgs = ReportArgs(),  # report_options puts the options shared with report here
) -> None:
    """Gate a finished run: absolute gates and/or a baseline gate; exit 0 pass, 1 failed, 2 bad usage."""
    _report_run(ctx, run_id, report, need_gate=True)


def _report_run(ctx: typer.Context, run_id: str, args: ReportArgs, *, need_gate: bool) -> None:
    from cli.views.reporter import TerminalReporter
    from scheduler.finish import report_run

    report = args.parse()
    end(report_run(run_id, settings_of(ctx).ledger(), report, TerminalReporter(), need_gate=need_gate))


def compare(
    ctx: typer.Context,
    base_id: Annotated[str, typer.Argument(metavar="BASE", help="The baseline run.")],
    cand_id: Annotated[str, typer.Argument(metavar="CAND", help="The candidate run.")],
    by: ByOpt = None,
    cluster_by: ClusterByOpt = None,
    min_slice: MinSliceOpt = 30,
    show: Annotated[int, typer.Option(help="Flipped items listed per judge and direction.")] = 20,
    json_out: JsonOpt = False,
) -> None:
    """Paired comparison of two runs per judge: delta with 95% CI, McNemar or paired t, flipped items."""
    from cli.views.report import show_comparison
    from scheduler.assess import GateOptions

    options = GateOptions.parse([], by=by, cluster_by=cluster_by, min_slice=min_slice)
    show_comparison(settings_of(ctx).ledger(), base_id, cand_id, options, show=show, json_out=json_out)
