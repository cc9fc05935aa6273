"""What beat fires for a schedule: judge its newly closed windows, catching up after downtime.

Each tick looks at the schedule's last ``catch_up`` closed windows (the
newest is ``latest_closed``) and judges, oldest first, those that have no
run for every judge yet, or whose scan never finished (a run left
"submitting": the scheduler died mid-window; the rescan stores and sends
what is missing). Which windows were judged is read from the ledger, not
from beat's state, so a beat restart, two beats, or a tick delivered twice
judge each window once (see online/job.py).

Nobody waits on the runs a tick starts (``judgeq online --wait`` marks its
own "done"), so the ticks after it do: each tick first marks "done" the
schedule's runs whose rows are all in, and has the chunks a killed worker
lost sent again for those whose rows stopped coming (``workers/lost.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .budget.pacer import window_planner
from .job import WindowJob, WindowOutcome
from .plan import Plan, prepare, schedule_for
from .windows import Window, latest_closed, window_at

if TYPE_CHECKING:
    from ledger.store import Ledger
    from runs.dispatch import Dispatcher
    from runs.sending import ChunkSettings


def due_windows(plan: Plan, ledger: Ledger, now: datetime, settings: ChunkSettings) -> list[Window]:
    """The schedule's closed windows, at most ``catch_up`` back, that still need judging; oldest first."""
    due = []
    for window in recent_windows(plan, now):
        job = WindowJob(plan.schedule, window, plan.source, plan.judges, ledger, settings)
        runs = [ledger.runs.find_run(run_id) for run_id in job.run_ids().values()]
        if any(run is None or run.status == "submitting" for run in runs):
            due.append(window)
    return due


def recent_windows(plan: Plan, now: datetime) -> list[Window]:
    """The schedule's last ``catch_up`` closed windows, oldest first."""
    schedule = plan.schedule
    newest = latest_closed(schedule.size, now, schedule.lateness)
    return [window_at(schedule.size, newest.start - back * schedule.size.step)
            for back in range(schedule.catch_up - 1, -1, -1)]


#: The most of a schedule's "running" runs one tick looks at to mark done.
MARK_LIMIT = 200


def mark_finished(plan: Plan, ledger: Ledger) -> list[str]:
    """Mark "done" the schedule's online runs whose rows are all in; their ids.

    Nobody waits on the runs a tick starts, so the ticks after it do, for
    any window (one that fell out of ``catch_up`` while its chunks were still
    being judged included).
    """
    finished = []
    for run in ledger.runs.list_runs(limit=MARK_LIMIT, dataset_name=plan.schedule.name, status="running"):
        if run.kind == "online" and ledger.runs.mark_done_if_complete(run.id):
            finished.append(run.id)
    return finished


def stalled(plan: Plan, ledger: Ledger, now: datetime, after_s: float) -> list[str]:
    """The schedule's online runs still running with no new row for ``after_s`` seconds (none yet: since created)."""
    found = []
    for run in ledger.runs.list_runs(limit=MARK_LIMIT, dataset_name=plan.schedule.name, status="running"):
        if run.kind != "online":
            continue
        last = ledger.windows.last_row_at(run.id) or run.created_at
        if (now - last).total_seconds() >= after_s:
            found.append(run.id)
    return found


def tick(config: Path | None, schedule_name: str, ledger: Ledger, dispatcher: Dispatcher, now: datetime,
         settings: ChunkSettings, lost: Callable[[str], int] | None = None,
         lost_after_s: float = 30.0) -> list[WindowOutcome]:
    """Judge the schedule's due windows, oldest first; what each did.

    ``lost(run_id)`` sends again the items of a stalled run that no chunk holds any more, and says how many.
    """
    plan = prepare(config, schedule_for(config, schedule=schedule_name),
                   max_record_bytes=settings.max_record_bytes)
    mark_finished(plan, ledger)
    if lost is not None:
        for run_id in stalled(plan, ledger, now, lost_after_s):
            lost(run_id)
    outcomes = []
    for window in due_windows(plan, ledger, now, settings):
        job = WindowJob(plan.schedule, window, plan.source, plan.judges, ledger, settings,
                        planner=window_planner(ledger, plan.schedule, window, now))
        outcomes.append(job.run(dispatcher))
    return outcomes
