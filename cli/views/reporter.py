"""The CLI's :class:`scheduler.reporting.Reporter`: what a workflow shows, as rich tables and bars or JSON.

Each method hands over to the view that prints it (imported when called, so
that a command that shows nothing loads no rich); the workflow decides when.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledger.models import Run
    from ledger.rows import Progress
    from scheduler.assess import Assessment, GateOptions
    from scheduler.finish import Report

    from .progress import ProgressView


class TerminalReporter:
    """A person's terminal or a CI log: a bar (or plain lines) on stderr, tables or ``--json`` on stdout."""

    def waiting(self, label: str, total: int) -> ProgressView:
        from .progress import ProgressView

        return ProgressView(label, total)

    def assessed(self, assessment: Assessment, progress: Progress, complete: bool, report: Report, *,
                 cascades: Sequence[dict[str, Any]] = ()) -> None:
        from .report import deliver

        deliver(assessment, progress, complete, json_out=report.json_out, junit=report.junit,
                markdown=report.markdown, cascades=cascades)

    def outcomes(self, run: Run, summaries: Sequence[Any]) -> None:
        from .outcomes import print_outcomes

        print_outcomes(run, summaries)

    def online(self, ledger: Any, run: Run, options: GateOptions, progress: Progress, *, json_out: bool) -> None:
        from .online_report import online_report

        online_report(ledger, run, options, progress, json_out=json_out)

    def cascades(self, figures: Sequence[dict[str, Any]]) -> None:
        from .cascades import print_cascades

        print_cascades(figures)

    def json(self, payload: Any) -> None:
        from .render import print_json

        print_json(payload)
