"""What a workflow shows while and after it works: a protocol the CLI implements (``cli.views.reporter``).

``scheduler/`` does a command's work and decides how it ends; it prints no
table, bar or JSON (plain lines on stderr at most) and imports no view (the layers put ``cli`` above ``scheduler``). Where
a workflow has something to show at a moment only it knows (a progress bar
while it waits for rows, the scorecard once the run is finished and before the
command's last lines on stderr), it calls the :class:`Reporter` its command
passed, at that moment, so what is shown and in what order is the command's
as before; the tables, bars and JSON themselves live in ``cli/views/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ledger.models import Run
    from ledger.rows import Progress
    from runs.waiting import View

    from .assess import Assessment, GateOptions
    from .finish import Report


class Reporter(Protocol):
    """Shows a workflow's progress and results; each method is called at the moment its output belongs."""

    def waiting(self, label: str, total: int) -> AbstractContextManager[View]:
        """A display of ``total`` rows, shown while the ``with`` block waits (``runs.waiting.wait_for`` updates it)."""
        ...

    def assessed(self, assessment: Assessment, progress: Progress, complete: bool, report: Report, *,
                 cascades: Sequence[dict[str, Any]] = ()) -> None:
        """A finished (or timed-out) run: JSON, the scorecard or the summary table, and the CI files ``report`` names.

        ``cascades``: the run's cascade figures (``scheduler.cascades.cascade_figures``), shown after the scorecard.
        """
        ...

    def outcomes(self, run: Run, summaries: Sequence[Any]) -> None:
        """How each judge's items ended (``scheduler.outcomes``), under the scorecard of a run waited for."""
        ...

    def online(self, ledger: Any, run: Run, options: GateOptions, progress: Progress, *, json_out: bool) -> None:
        """The report of an online run: its window's population estimate per judge and stratum."""
        ...

    def cascades(self, figures: Sequence[dict[str, Any]]) -> None:
        """The cascades' table (nothing when the run has none)."""
        ...

    def json(self, payload: Any) -> None:
        """``payload`` as the command's ``--json`` output."""
        ...
