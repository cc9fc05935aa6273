"""``judgeq online``'s work once its windows are chosen: each judged in order, on the fleet or in this process.

The command (cli/commands/online.py) parses its options, chooses the
schedule and the windows, and makes this one call (with the
:class:`scheduler.reporting.Reporter` that shows the waits); it prints the
outcomes and ends as :class:`WindowsJudged` says. Whether a fleet judges is
``runs.dispatch.fleet_mode``'s decision (through ``workers.dispatch.connect``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from judgeq.errors import INFRASTRUCTURE

from .finish import Ending

if TYPE_CHECKING:
    from online.job import WindowOutcome

    from .reporting import Reporter
    from .settings import CliSettings


@dataclass(frozen=True)
class WindowsJudged:
    """The windows' outcomes, whether every row is in, and how the command ends (a run left incomplete: 3)."""

    outcomes: list[WindowOutcome]
    judged: bool
    ending: Ending = Ending()


def judge_windows(plan: Any, targets: list[Any], cli_settings: CliSettings, reporter: Reporter, *, wait: bool,
                  timeout: float | None) -> WindowsJudged:
    """Judge ``targets`` in order; without a broker, in this process (module docstring)."""
    from online.budget.pacer import window_planner
    from online.job import WindowJob
    from workers.dispatch import connect

    chunks = cli_settings.chunks
    fleet = connect(cli_settings.worker)
    ledger = cli_settings.ledger()
    in_process = None
    if fleet is None:
        from judges.resolved import llm_specs
        from workers.dispatch import EmbeddedDispatcher

        trusted = [spec for j in plan.judges for spec in llm_specs(j)]  # this process's own config
        in_process = EmbeddedDispatcher(ledger, remote_threads=cli_settings.scheduler.embedded_threads,
                                        settings=cli_settings.worker, trusted=trusted)
    outcomes: list[WindowOutcome] = []
    try:
        for target in targets:
            job = WindowJob(plan.schedule, target, plan.source, plan.judges, ledger, chunks,
                            planner=window_planner(ledger, plan.schedule, target, datetime.now(UTC)))
            _say(f"window {target.id} of {plan.schedule.name} ({plan.schedule.source}): "
                 f"[{target.start:%Y-%m-%d %H:%M}, {target.end:%Y-%m-%d %H:%M}) UTC, "
                 f"judges {', '.join(plan.schedule.judges)}")
            if in_process is not None:
                outcome = job.run(in_process, progress=_scanned)
                in_process.join()
                outcome.settle(ledger)
            else:
                assert fleet is not None
                outcome = _run_on_fleet(job, fleet)
                if wait:
                    left = _wait_all(outcome, ledger, cli_settings, reporter, timeout)
                    if left is not None:
                        return WindowsJudged(outcomes, False, left)
            outcomes.append(outcome)
    finally:
        if fleet is not None:
            fleet.close()
        if in_process is not None:
            in_process.close()
    return WindowsJudged(outcomes, wait or in_process is not None)


def _run_on_fleet(job: Any, fleet: Any) -> WindowOutcome:
    """``job.run`` through the broker; a broker lost mid-scan names how to complete the window's runs.

    The runs it cut off stay ``submitting`` with some items stored and perhaps not sent, and the traces
    after the cut not read at all. Running the command again stores and sends only traces not stored
    before, so ``judgeq resume RUN`` (every item without a row) sends the stored ones first; then the
    command again reads the rest (resume leaves the run "running", which beat no longer rescans, so
    resume alone would leave the unread traces unjudged for good). Resume first: the other order sends
    the rescan's traces twice. Where a schedule runs under beat, its next ticks do both.
    """
    from runs.errors import BrokerUnavailable

    try:
        outcome: WindowOutcome = job.run(fleet, progress=_scanned)
    except BrokerUnavailable as exc:
        runs = " ".join(f"'judgeq resume {run_id}'" for run_id in job.run_ids().values())
        raise BrokerUnavailable(f"{str(exc).rstrip('.')}; window {job.window.id} was cut off mid-scan and its runs stay "
                                f"'submitting': once the broker answers, send what it stored with {runs}, then run "
                                "this judgeq online command again for the traces it did not read (it sends only "
                                "what was not stored)") from exc
    return outcome


def _scanned(n: int) -> None:
    if n:
        _say(f"  {n:,} traces read")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _wait_all(outcome: WindowOutcome, ledger: Any, settings: CliSettings, reporter: Reporter,
              timeout: float | None) -> Ending | None:
    """Wait for each run of the window; the ending of the first left incomplete (exit 3), else None."""
    from runs.waiting import wait_for
    from workers.lost import StallWatch

    from .interrupts import checkpoint

    for judge, run_id in outcome.runs.items():
        total = ledger.runs.get_run(run_id).expected
        with reporter.waiting(f"run {run_id}", total) as view:
            progress, complete = wait_for(run_id, ledger, view, timeout_s=timeout, poll_s=settings.scheduler.poll_s,
                                          outage_s=settings.scheduler.wait_outage_s,
                                          stall=StallWatch(run_id, ledger, settings.worker, settings.online,
                                                          settings.chunks),
                                          between=checkpoint)
        if not complete:
            return Ending(INFRASTRUCTURE, (
                f"judgeq: run {run_id} is not complete ({progress.done}/{progress.expected} rows); check the "
                f"workers, then 'judgeq status {run_id}' or 'judgeq resume {run_id}'",))
    return None
