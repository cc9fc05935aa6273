"""Options shared by the gating and reporting commands (submit, report, gate, compare, resume).

Declared once here so that the commands spell and document them alike;
``scheduler.assess.GateOptions.parse`` checks the gates' values, and
``--timeout`` is checked as it is parsed. ``report`` and ``gate`` take the
same thirteen options: :class:`ReportArgs` declares them, and
:func:`report_options` adds them to both commands.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar, get_type_hints

import typer

from scheduler.errors import UsageError

if TYPE_CHECKING:
    from scheduler.finish import Report

JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON summary instead of the table.")]


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


@dataclasses.dataclass(frozen=True)
class ReportArgs:
    """The options ``report`` and ``gate`` share, as given; :meth:`parse` checks them."""

    gate: GateOpt = dataclasses.field(default_factory=list)
    max_errors: MaxErrorsOpt = 0
    json_out: JsonOpt = False
    by: ByOpt = None
    cluster_by: ClusterByOpt = None
    min_slice: MinSliceOpt = 30
    gate_on: GateOnOpt = "point"
    baseline: BaselineOpt = None
    baseline_tag: BaselineTagOpt = "main"
    max_drop: MaxDropOpt = None
    junit: JunitOpt = None
    markdown: MarkdownOpt = None
    fail_on_errors: FailOnErrorsOpt = False

    def parse(self) -> Report:
        """What to show and gate; UsageError naming a bad value."""
        from scheduler.assess import GateOptions
        from scheduler.finish import Report

        files = self.junit is not None or self.markdown is not None
        options = GateOptions.parse(self.gate, gate_on=self.gate_on, max_errors=self.max_errors,
                                    baseline=self.baseline, baseline_tag=self.baseline_tag, max_drop=self.max_drop,
                                    by=self.by, cluster_by=self.cluster_by, min_slice=self.min_slice, files=files)
        return Report(options, json_out=self.json_out, junit=self.junit, markdown=self.markdown,
                      fail_on_errors=self.fail_on_errors)


_LISTED_LAST = ("fail_on_errors",)  # where the commands' help has always listed it
Command = TypeVar("Command", bound=Callable[..., Any])


def report_options(command: Command) -> Command:
    """Give ``command`` the options of :class:`ReportArgs` in place of its ``report: ReportArgs`` parameter.

    Typer reads a command's options from its signature, so the wrapper shows
    Typer the command's own parameters with the shared ones in their place,
    and calls the command with the shared ones gathered into ``report``.
    """
    hints = get_type_hints(ReportArgs, include_extras=True)
    shared = [
        inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=hints[f.name],
                          default=f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default)
        for f in dataclasses.fields(ReportArgs)
    ]
    own_hints = get_type_hints(command, include_extras=True)
    params: list[inspect.Parameter] = []
    for param in inspect.signature(command).parameters.values():
        if param.name == "report":
            params += [p for p in shared if p.name not in _LISTED_LAST]
        else:
            params.append(param.replace(annotation=own_hints[param.name]))
    params += [p for p in shared if p.name in _LISTED_LAST]

    @functools.wraps(command)
    def wrapper(**values: Any) -> Any:
        given = {p.name: values.pop(p.name) for p in shared}
        return command(report=ReportArgs(**given), **values)

    wrapper.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper  # type: ignore[return-value]
