"""Options shared by the gating and reporting commands (submit, report, gate, compare, resume).

Declared once here so that the commands spell and document them alike;
``scheduler.assess.GateOptions.parse`` checks the gates' values, and
``--timeout`` is checked as it is parsed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import UsageError


def _positive_seconds(value: Optional[float]) -> Optional[float]:
    if value is not None and not value > 0:  # NaN too
        raise UsageError(f"--timeout {value:g} is not a positive number of seconds; give one, "
                         "or leave --timeout out to wait until the run completes")
    return value


TimeoutOpt = Annotated[Optional[float], typer.Option(
    "--timeout", callback=_positive_seconds,
    help="Seconds to wait before giving up (exit 3; the run stays resumable).")]

GateOpt = Annotated[list[str], typer.Option("--gate", help='An absolute gate like "exact>=0.9" (repeatable).')]
GateOnOpt = Annotated[str, typer.Option(
    "--gate-on", help="What an absolute gate compares: 'point' (the mean) or 'interval' (the 95% CI's "
                      "conservative end: lower for >=, upper for <=).")]
MaxErrorsOpt = Annotated[int, typer.Option("--max-errors", help="Judge errors a gated judge may have and still pass.")]
BaselineOpt = Annotated[Optional[str], typer.Option(
    "--baseline", help="Gate every judge against this run id, or 'latest' (the newest completed run of the "
                       "same dataset with --baseline-tag).")]
BaselineTagOpt = Annotated[str, typer.Option("--baseline-tag", help="The tag --baseline latest looks for.")]
MaxDropOpt = Annotated[Optional[float], typer.Option(
    "--max-drop", help="Fail a judge when its paired drop against the baseline exceeds this with one-sided 95% "
                       "confidence (default 0: any significant drop).")]
ByOpt = Annotated[Optional[str], typer.Option("--by", help="Break every figure down by this metadata key (e.g. locale).")]
ClusterByOpt = Annotated[Optional[str], typer.Option(
    "--cluster-by", help="Metadata key of a session or user id: use cluster-robust standard errors.")]
MinSliceOpt = Annotated[int, typer.Option("--min-slice", help="Slices with fewer scored items are flagged small.")]
JunitOpt = Annotated[Optional[Path], typer.Option("--junit", help="Write JUnit XML (one test case per gate) here.")]
MarkdownOpt = Annotated[Optional[Path], typer.Option(
    "--markdown", help="Write a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY).")]
FailOnErrorsOpt = Annotated[bool, typer.Option(
    "--fail-on-errors", help="Exit 1, as a failed gate, when a judge ends with more judge errors (rows without a "
                             "verdict) than --max-errors allows (0 unless given), gated or not.")]
