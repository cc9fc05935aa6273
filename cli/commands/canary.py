"""``judgeq canary``: judge canaries (run, check), the front door to scheduler/canary.py."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.exits import alert, end
from cli.options import JsonOpt
from cli.state import settings_of

canary_app = typer.Typer(help="Judge canaries: a fixed set judged again and again, to see the judge itself move.",
                         no_args_is_help=True)


@canary_app.command("run")
def canary_run(
    ctx: typer.Context,
    dataset: Annotated[Path, typer.Argument(help="The canary set: JSONL or CSV records, the same every run.")],
    judge: Annotated[str, typer.Option("--judge", "-j", help="The judge the canary watches.")],
    json_out: JsonOpt = False,
) -> None:
    """Judge the canary set once, the verdict cache bypassed (every item a real call), and wait for it.

    The run is an offline run tagged ``canary``; ``judgeq canary check`` compares it with the reference.
    """
    from cli.views.reporter import TerminalReporter
    from scheduler.assess import GateOptions
    from scheduler.finish import Report
    from scheduler.offline import SubmitRequest, submit as submitting

    report = Report(GateOptions.parse([]), json_out=json_out)
    request = SubmitRequest(dataset, [judge], report, wait=True, timeout=None, tags=["canary"], meta={},
                            no_cache=True)
    end(submitting(request, settings_of(ctx), TerminalReporter()))


@canary_app.command("check")
def canary_check(
    ctx: typer.Context,
    judge: Annotated[str, typer.Option("--judge", "-j", help="The judge whose newest canary run is checked.")],
    reference: Annotated[Optional[str], typer.Option("--reference", help="The run to compare with (default: the "
                                                     "first canary run of the same judge version and set).")] = None,
    threshold: Annotated[float, typer.Option("--threshold", min=0.001, max=0.999, help="The change that alerts: "
                                             "agreement below 1 - T (labels) or a mean score difference above T, "
                                             "with 95 % confidence.")] = 0.1,
    webhook: Annotated[Optional[str], typer.Option("--webhook", help="POST a judge-drift alert here as JSON with "
                                                   "a Slack-ready text field (as judgeq drift's).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Compare the judge's newest canary run with its reference; exit 1 on judge drift (recorded either way)."""
    from scheduler.canary import check

    if webhook is not None:
        from online.webhook import check_url

        check_url(webhook)
    settings = settings_of(ctx)
    with settings.ledger() as ledger:
        report = check(ledger, judge, reference=reference, threshold=threshold, now=datetime.now(UTC))
    if json_out:
        from cli.views.render import print_json

        print_json(report.to_json())
    else:
        from cli.views.render import printable

        print(printable(report.headline()))
    if report.status == "alert":
        print("judgeq: the judge's verdicts on its canary set moved: scores may move for that reason, not the "
              "product's", file=sys.stderr)
        alert(webhook, report.to_json(), report.headline(), "canary_checks")
