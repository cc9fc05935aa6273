"""The fleet's processes: ``judgeq worker``, ``flower`` and ``beat``, each a Celery command run in this process.

``scheduler.fleet`` builds their argument lists and runs them (beat's checks
and schedule: ``scheduler.beat.run_beat``; Flower with judgeq's Budgets page:
``scheduler.fleet.run_flower``); a Celery process that stops after
an error exits 3 here (:func:`cli.exits.exit_like`), so a supervisor restarts it.
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
    from scheduler.fleet import flower_argv, run_flower

    argv = flower_argv(port=port, address=address)
    exit_like(run_flower(argv, settings_of(ctx)), "Flower")


def beat(
    ctx: typer.Context,
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "INFO",
) -> None:
    """Run Celery beat: each [online.NAME] schedule's tick judges its newly closed windows (run exactly one)."""
    from scheduler.beat import run_beat

    exit_like(run_beat(settings_of(ctx), loglevel, say=_say), "beat")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
