"""The offline commands' work: submit a dataset, resume a run; in a fleet or in this process.

``judgeq submit`` and ``judgeq resume`` each call one function here with their
request, the command's :class:`scheduler.settings.CliSettings` and the
:class:`scheduler.reporting.Reporter` that shows progress and the scorecard. The steps
themselves live in :mod:`scheduler.submit` (validate, store, send) and
:mod:`scheduler.finish` (wait, report, the exit's figures); this module puts
them in order and picks the mode as ``runs.dispatch.fleet_mode`` decides it: with a
broker the chunks go to the fleet (:func:`workers.dispatch.connect`), without one
they are judged in this process (:class:`workers.embedded.InProcess`), which always waits.

Both run under :func:`scheduler.interrupts.interruptible`, so that Ctrl-C, SIGTERM and
failures say what became of the run and how to complete it.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from judges.types import own_calls
from runs.dispatch import fleet_mode

from . import submit as submitting
from .errors import UsageError
from .finish import Ending, Report, wait_and_report
from .interrupts import Submission, interrupt_on_signals, interruptible, say
from .reporting import Reporter
from .settings import CliSettings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from judges.resolved import ResolvedJudge
    from workers.dispatch import EmbeddedDispatcher
    from workers.settings import WorkerSettings


@dataclass(frozen=True)
class SubmitRequest:
    """What ``judgeq submit`` was asked: the dataset, its judges, and what to do with the run."""

    dataset: Path
    judges: list[str]
    report: Report
    wait: bool = False
    timeout: float | None = None
    tags: list[str] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    max_cost_usd: float | None = None
    no_cache: bool = False


@dataclass(frozen=True)
class ResumeRequest:
    """What ``judgeq resume`` was asked: the run, optionally its file, and whether to wait."""

    run_id: str
    report: Report
    dataset: Path | None = None
    wait: bool = False
    timeout: float | None = None
    retry_errors: tuple[str, ...] = ()  # error kinds to judge again besides transient (scheduler.causes.RETRYABLE)


def submit(request: SubmitRequest, settings: CliSettings, reporter: Reporter) -> Ending:
    """Validate everything, write the run, send its chunks; wait and report when asked (embedded: always)."""
    from judges.config import load_config
    from workers.dispatch import connect

    from .gate import check_judges

    report = request.report
    interrupt_on_signals()
    with interruptible(Submission(request.dataset)) as submission:
        scheduler = settings.scheduler
        if report.options.gating and not request.wait:
            raise UsageError("--gate and --baseline need --wait (gates are judged on the finished run)")
        if report.fail_on_errors and not request.wait:
            raise UsageError("--fail-on-errors needs --wait (judge errors are counted on the finished run)")
        config = load_config(settings.config)
        plan = submitting.plan(request.dataset, config, request.judges, tags=request.tags, meta=request.meta,
                               max_record_bytes=settings.chunks.max_record_bytes,
                               warm_up=not fleet_mode(settings.worker.broker_url))
        if request.max_cost_usd is not None or request.no_cache:
            plan = dataclasses.replace(plan, max_cost_usd=request.max_cost_usd, no_cache=request.no_cache)
        check_judges(report.options.gates, [j.name for j in plan.judges])
        if fleet_mode(settings.worker.broker_url):  # the workers judge with their own identity: refuse what they would
            refuse_keyless_cloud(plan.judges, settings.worker)
        fleet = connect(settings.worker)
        ledger = settings.ledger()
        if report.options.baseline is not None:  # resolved before anything is written: a bad baseline is exit 2
            from .baseline import resolve

            baseline_run = resolve(ledger, report.options.baseline, plan.dataset.name, report.options.baseline_tag)
            report = dataclasses.replace(report, baseline_run=baseline_run)
        submitting.create_run(plan, ledger)  # the run id is shown only once its row exists
        submission.run_id = plan.run_id
        say(f"run {plan.run_id}: {plan.dataset.count} items × {len(plan.judges)} judges "
            f"({plan.dataset.name}, {plan.dataset.content_hash[:12]})")
        if not report.json_out:
            print(plan.run_id, flush=True)
        if fleet is None:
            from workers.embedded import InProcess

            submission.ledger = ledger  # judged here: stopped if this process is

            def job(dispatcher: EmbeddedDispatcher, stop: threading.Event) -> None:
                if submitting.enqueue_items(plan, ledger, dispatcher, settings.chunks, stop=stop):
                    submission.sent.set()

            # The judges come from this process's own judgeq.toml: trusted (see judges.egress).
            from judges.resolved import llm_specs

            trusted = [spec for j in plan.judges for spec in llm_specs(j)]
            with InProcess(job, ledger, settings.worker, threads=scheduler.embedded_threads,
                           trusted=trusted) as run:
                return wait_and_report(plan.run_id, ledger, settings, report, reporter, timeout=request.timeout,
                                       expected=plan.expected, alive=run.alive, failure=run.failure)
        submitting.enqueue_items(plan, ledger, fleet, settings.chunks)
        submission.sent.set()
        if not request.wait:
            if report.json_out:
                reporter.json({"run_id": plan.run_id, "expected": plan.expected, "enqueued": True})
            return Ending()
        return wait_and_report(plan.run_id, ledger, settings, report, reporter, timeout=request.timeout)


def refuse_keyless_cloud(judges: Sequence[ResolvedJudge], worker: WorkerSettings) -> None:
    """Exit 2, before anything is written, for a judge with no key and no endpoint that would bill the workers'
    own cloud identity unless listed (judges/egress.py); ``worker`` holds this process's JUDGEQ_CLOUD_MODELS."""
    from judges.resolved import llm_specs
    from judges.errors import EgressRefused, JudgeConfigError
    from judges.llm import refuse_keyless

    try:
        refuse_keyless(((j.name, spec) for j in judges for spec in llm_specs(j)), worker.egress_policy())
    except EgressRefused as exc:
        raise JudgeConfigError(exc.message) from None


def resume(request: ResumeRequest, settings: CliSettings, reporter: Reporter) -> Ending:
    """Send again every item of the run without a verdict (first storing those a cut-off submit missed)."""
    from judges.config import load_config
    from workers.dispatch import connect

    from .deadletters import clear

    interrupt_on_signals()
    if request.report.fail_on_errors and not request.wait:
        raise UsageError("--fail-on-errors needs --wait (judge errors are counted on the finished run)")
    scheduler = settings.scheduler
    ledger = settings.ledger()
    run = ledger.runs.get_run(request.run_id)
    retry = request.retry_errors
    with interruptible(Submission(request.dataset, request.run_id)) as submission:
        info = submitting.check_resumable(run, ledger, request.dataset)  # before anything is written
        fleet = connect(settings.worker)
        if {"account", "circuit"} & set(retry):  # the circuit those opened must not refuse their retry
            close_circuits(run.id, list(run.judges), settings.worker.broker_url)
        if fleet is None:
            from workers.embedded import InProcess

            submission.ledger = ledger  # judged here: stopped if this process is
            # Only judges that match this process's own judgeq.toml are trusted; the ledger may be shared.
            own = [c for s in load_config(settings.config).judges.values() for c in own_calls(s)]

            def job(dispatcher: EmbeddedDispatcher, stop: threading.Event) -> None:
                submitting.resume(run, ledger, dispatcher, settings.chunks, dataset=info, retry=retry)

            with InProcess(job, ledger, settings.worker, threads=scheduler.embedded_threads, trusted=own) as embedded:
                return wait_and_report(run.id, ledger, settings, request.report, reporter, timeout=request.timeout,
                                       alive=embedded.alive, failure=embedded.failure)
        missing = submitting.resume(run, ledger, fleet, settings.chunks, dataset=info, retry=retry)
        submission.sent.set()
        clear(run.id, settings.worker.broker_url)  # their items were among those re-enqueued
        kinds = ", ".join(("transient", *retry))
        say(f"run {run.id}: re-enqueued {missing} item-judge pairs without a verdict (no row, or an error of kind "
            f"{kinds})")
        if not request.wait:
            return Ending()
        return wait_and_report(run.id, ledger, settings, request.report, reporter, timeout=request.timeout)


def close_circuits(run_id: str, judges: Sequence[str], broker_url: str | None) -> None:
    """Close the run's open circuits of ``judges`` (``workers.circuit``), so that retried account errors are called.

    Embedded mode has none to close: its circuit lives in the process that judged.
    """
    if not fleet_mode(broker_url):
        return
    from workers.broker import redis_for
    from workers.circuit import RedisCircuit

    client = redis_for(broker_url, timeout_s=3)
    try:
        for judge in judges:
            RedisCircuit(client).close(run_id, judge)
    finally:
        client.close()
