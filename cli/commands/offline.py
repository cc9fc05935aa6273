"""The offline run's commands: ``judgeq submit`` (judge a dataset), ``resume`` (complete a run), ``abandon``.

Each parses its options into a request and calls one function of
``scheduler.offline`` (or ``scheduler.submit``) with the command's settings,
then exits as the returned ``Ending`` says.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.exits import end
from cli.options import (BaselineOpt, BaselineTagOpt, ClusterByOpt, FailOnErrorsOpt, GateOnOpt, JsonOpt, JunitOpt,
                         MarkdownOpt, MaxDropOpt, TimeoutOpt)
from cli.state import settings_of


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


def submit(
    ctx: typer.Context,
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
    from cli.views.reporter import TerminalReporter
    from scheduler.offline import SubmitRequest, submit as submitting

    files = junit is not None or markdown is not None
    options = GateOptions.parse(gate, gate_on=gate_on, max_errors=max_errors, baseline=baseline,
                                baseline_tag=baseline_tag, max_drop=max_drop, cluster_by=cluster_by, files=files)
    report = Report(options, json_out=json_out, junit=junit, markdown=markdown, fail_on_errors=fail_on_errors)
    request = SubmitRequest(dataset, judge, report, wait=wait, timeout=timeout, tags=tag, meta=_parse_meta(meta),
                            max_cost_usd=max_cost, no_cache=no_cache)
    end(submitting(request, settings_of(ctx), TerminalReporter()))


def resume(
    ctx: typer.Context,
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
    from cli.views.reporter import TerminalReporter
    from scheduler.causes import parse_retry
    from scheduler.errors import UsageError
    from scheduler.finish import Report
    from scheduler.offline import ResumeRequest, resume as resuming

    try:
        retry = parse_retry(retry_errors)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    report = Report(json_out=json_out, fail_on_errors=fail_on_errors)
    end(resuming(ResumeRequest(run_id, report, dataset=dataset, wait=wait, timeout=timeout, retry_errors=retry),
                 settings_of(ctx), TerminalReporter()))


def abandon(ctx: typer.Context, run_id: Annotated[str, typer.Argument(help="The run to give up.")]) -> None:
    """Give up a run (one cut off while it was being submitted, say): no gate or baseline uses it again."""
    from scheduler import submit as submitting

    ledger = settings_of(ctx).ledger()
    run = ledger.runs.get_run(run_id)
    if submitting.abandon(run, ledger):
        print(f"run {run_id} ({run.dataset_name}, was {run.status}) is abandoned; "
              "no gate or baseline will use it", file=sys.stderr)
    else:
        print(f"run {run_id} was already abandoned", file=sys.stderr)
