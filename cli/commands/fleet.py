"""The fleet's processes: ``judgeq worker``, ``flower`` and ``beat``, each a Celery command run in this process.

``scheduler.fleet`` builds their argument lists and runs them; a Celery
process that stops after an error exits 3 here (:func:`cli.exits.exit_like`),
so a supervisor restarts it.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from cli.exits import exit_like
from cli.state import settings_of


def worker(
    ctx: typer.Context,
    queues: Annotated[str, typer.Option(help="Queues to consume: local, remote, or local,remote.")] = "local",
    concurrency: Annotated[Optional[int], typer.Option(help="Processes (prefork) or threads; default per queue.")] = None,
    pool: Annotated[Optional[str], typer.Option(help="prefork (CPU-bound local judges) or threads (I/O-bound remote).")] = None,
    prefetch: Annotated[Optional[int], typer.Option(help="Prefetch multiplier; default per queue.")] = None,
    time_limit: Annotated[int, typer.Option(help="Hard time limit per chunk in seconds (prefork only).")] = 150,
    name: Annotated[Optional[str], typer.Option(help="Worker node name (default QUEUES-PID@host).")] = None,
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "INFO",
) -> None:
    """Run a Celery worker for the local or remote judge queue."""
    from scheduler.fleet import run_worker, worker_argv

    argv = worker_argv(queues, concurrency=concurrency, pool=pool, prefetch=prefetch, time_limit=time_limit,
                       name=name, loglevel=loglevel)
    exit_like(run_worker(argv, settings_of(ctx)), "worker")


def flower(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port for Flower's UI and API.")] = 5555,
    address: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Start Flower against the broker; refuses to start without basic auth (FLOWER_BASIC_AUTH=user:password)."""
    from scheduler.fleet import flower_argv, run_celery

    argv = flower_argv(port=port, address=address)
    exit_like(run_celery(argv, settings_of(ctx)), "Flower")


def beat(
    ctx: typer.Context,
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "INFO",
) -> None:
    """Run Celery beat: each [online.NAME] schedule's tick judges its newly closed windows (run exactly one)."""
    from online.plan import prepare
    from online.schedules import load_schedules
    from online.windows import format_duration

    from scheduler.beat import BEAT_LOCK_KEY, beat_config, lock_held_s
    from scheduler.errors import UsageError
    from scheduler.fleet import run_celery

    settings = settings_of(ctx)
    worker_settings = settings.worker
    if not worker_settings.broker_url:
        raise UsageError("beat needs a broker: set JUDGEQ_BROKER_URL (e.g. redis://127.0.0.1:6379/0)")
    config = settings.config
    schedules = load_schedules(config)
    if not schedules:
        raise UsageError(f"{config}: no [online.NAME] table; beat would have nothing to fire")
    for schedule in schedules.values():  # a schedule's unknown source or judge stops beat here, not every tick
        prepare(config, schedule, check_env=False)
    import redis

    from ledger.urls import mask_url
    from workers.dispatch import CeleryDispatcher, check_broker_url
    from workers.errors import BrokerUnavailable

    check_broker_url(worker_settings.broker_url)
    CeleryDispatcher(worker_settings).check()  # Redis down: exit 3 with a message, not redbeat's traceback
    beat_conf = beat_config(schedules, worker_settings.broker_url, settings.scheduler.budget_tick_s)
    for name, schedule in sorted(schedules.items()):
        _say(f"beat: {name}: {schedule.source} windows of {schedule.size.text}, every "
             f"{schedule.every.total_seconds():g} s, judges {', '.join(schedule.judges)}")
        if schedule.drift is not None:
            every = (schedule.drift.every or schedule.every).total_seconds()
            _say(f"beat: {name}: drift check every {every:g} s (short {format_duration(schedule.drift.short)}, "
                 f"long {format_duration(schedule.drift.long)}, by {', '.join(schedule.drift.by) or 'nothing'})")
    held = lock_held_s(worker_settings.broker_url)
    if held is not None:
        _say(f"beat: another beat holds the lock {BEAT_LOCK_KEY} (for {held:.0f} s more unless it renews it); "
             "this one waits, and fires once that one stops (run exactly one beat per fleet)")
    try:
        code = run_celery(["beat", "--loglevel", loglevel], settings, conf=beat_conf)
    except (redis.ConnectionError, redis.TimeoutError) as exc:  # redbeat keeps its state and lock in Redis
        raise BrokerUnavailable(f"beat lost the broker at {mask_url(worker_settings.broker_url)} ({exc}); start "
                                "Redis, then beat again (its schedule state is kept there)") from exc
    exit_like(code, "beat")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
