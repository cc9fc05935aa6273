"""Finishing a run: wait for its rows, show its scorecard, and say what its figures mean for the exit.

``submit --wait``, ``resume --wait``, ``report`` and ``gate`` end here. These
functions have the scorecard shown (stdout) through the command's
:class:`scheduler.reporting.Reporter` and return an :class:`Ending`: the
exit code the figures call for and the lines to say on stderr, which the CLI
prints and exits with (only the CLI exits; see ``judgeq/errors.py``).
The codes: 3 when the run is incomplete; when its judges could not measure,
the code of the cause (``scheduler.causes``: 2 configuration, such as a key
the workers refuse; 3 infrastructure, a provider that stayed unreachable); 1
when a gate failed or ``--fail-on-errors`` found more judge errors than
``--max-errors``, else 0; judge errors are said in one line whatever the code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judgeq.errors import GATE_FAILED, INFRASTRUCTURE, OK
from ledger.models import Run
from ledger.store import Ledger

from .assess import GateOptions, assess
from .errors import UsageError
from .outcomes import judge_errors, over_errors
from .reporting import Reporter
from .settings import CliSettings


@dataclass(frozen=True)
class Ending:
    """How a command ends: its exit code, and what it says on stderr first (one line each)."""

    code: int = OK
    lines: tuple[str, ...] = ()

    def then(self, other: Ending) -> Ending:
        """Both endings' lines, and the first nonzero code."""
        return Ending(self.code or other.code, self.lines + other.lines)


@dataclass(frozen=True)
class Report:
    """What to show and judge once a run is finished: the gating and reporting options of a command."""

    options: GateOptions = field(default_factory=GateOptions)
    json_out: bool = False
    junit: Path | None = None
    markdown: Path | None = None
    fail_on_errors: bool = False
    baseline_run: Run | None = None  # resolved by the caller before anything was written (submit)


def wait_and_report(run_id: str, ledger: Ledger, settings: CliSettings, report: Report, reporter: Reporter, *,
                    timeout: float | None, expected: int | None = None, alive: Callable[[], bool] | None = None,
                    failure: Sequence[BaseException] = ()) -> Ending:
    """Wait for the run's rows, have its summary shown, and end: see the module's docstring for the codes.

    ``alive`` and ``failure`` come from an embedded run (:class:`workers.embedded.InProcess`):
    whether it still judges, and what it raised (raised here, once the wait is over).
    """
    from runs.waiting import wait_for
    from workers.lost import StallWatch

    from .interrupts import checkpoint

    total = expected if expected is not None else ledger.runs.get_run(run_id).expected
    # A fleet run (no in-process work to watch) has the chunks a killed worker lost sent again.
    stall = StallWatch(run_id, ledger, settings.worker, settings.online, settings.chunks) if alive is None else None
    with reporter.waiting(f"run {run_id}", total) as view:
        progress, complete = wait_for(run_id, ledger, view, timeout_s=timeout, poll_s=settings.scheduler.poll_s,
                                      alive=alive, outage_s=settings.scheduler.wait_outage_s, stall=stall,
                                      between=checkpoint)
    if failure:
        raise failure[0]
    run = ledger.runs.get_run(run_id)
    assessment = assess(ledger, run, report.options, baseline_run=report.baseline_run)
    reporter.assessed(assessment, progress, complete, report)
    if not report.json_out:
        reporter.outcomes(run, assessment.summaries)
    if not complete:
        return Ending(INFRASTRUCTURE, (
            f"judgeq: run {run_id} is not complete ({progress.done}/{progress.expected} rows); "
            f"check the workers, then 'judgeq status {run_id}' or 'judgeq resume {run_id}'",))
    ending = not_measured(run_id, assessment.summaries)
    if ending.code:
        return ending
    ending = errors_said(run_id, assessment.summaries, report.fail_on_errors, report.options.max_errors)
    if assessment.results and not all(r.passed for r in assessment.results):
        return ending.then(Ending(GATE_FAILED))
    return ending


def report_run(run_id: str, ledger: Ledger, report: Report, reporter: Reporter, *, need_gate: bool) -> Ending:
    """``judgeq report RUN`` and ``judgeq gate RUN``: the run as it is now, and (``need_gate``) its gates.

    ``--fail-on-errors`` counts as a gate (``judgeq gate RUN --fail-on-errors``).
    """
    options = report.options
    if need_gate and not options.gating and not report.fail_on_errors:
        raise UsageError('nothing to gate on; add --gate "JUDGE>=X", --baseline RUN|latest and/or --fail-on-errors')
    run = ledger.runs.get_run(run_id)
    if need_gate and run.status == "abandoned":
        raise UsageError(f"run {run_id} was abandoned; there is nothing to gate (submit the dataset again)")
    progress = ledger.scores.progress(run_id)
    incomplete = Ending(lines=(f"(incomplete: {progress.done}/{progress.expected} rows)",))
    if run.kind == "online" and not need_gate:  # the window's population, estimated per stratum
        reporter.online(ledger, run, options, progress, json_out=report.json_out)
        if not report.json_out:
            from .cascades import cascade_figures

            reporter.cascades(cascade_figures(ledger.teacher.cascade_counts(run_id)))
        return incomplete if not progress.complete and not report.json_out else Ending()
    assessment = assess(ledger, run, options)
    complete = progress.done >= progress.expected
    from .cascades import cascade_figures

    reporter.assessed(assessment, progress, complete, report,
                      cascades=cascade_figures(ledger.teacher.cascade_counts(run_id)) if not need_gate else ())
    ending = incomplete if not complete and not report.json_out else Ending()
    if options.gating or report.fail_on_errors:  # a gate on what the provider never answered is not a quality verdict
        measured = not_measured(run_id, assessment.summaries)
        if measured.code:
            return ending.then(measured)
    if report.fail_on_errors:  # said only when asked to check them: the scorecard already shows the errors
        ending = ending.then(errors_said(run_id, assessment.summaries, True, options.max_errors))
    if not assessment.passed:
        ending = ending.then(Ending(GATE_FAILED))
    return ending


def errors_said(run_id: str, summaries: Any, fail_on_errors: bool, max_errors: int) -> Ending:
    """The run's judge errors in one line; exit 1 when ``fail_on_errors`` finds a judge over ``max_errors``."""
    line = judge_errors(run_id, summaries)
    if not line:
        return Ending()
    failing = over_errors(summaries, max_errors) if fail_on_errors else []
    verdict = (f"; --fail-on-errors: {', '.join(failing)} over --max-errors {max_errors}, exit 1"
               if failing else "")
    return Ending(GATE_FAILED if failing else OK, (f"judgeq: {line}{verdict}",))


def not_measured(run_id: str, summaries: Any) -> Ending:
    """Exit 2 or 3 (4) when judges could not measure, with the cause (``scheduler.causes``) in one line.

    Neither a refused judge nor an unreachable provider is a verdict on quality, so neither may read as a
    failed gate (1) or a pass (0).
    """
    from .causes import not_measured as causes

    code, line = causes(run_id, summaries)
    return Ending(code, (line,)) if code else Ending()
