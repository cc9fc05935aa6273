"""Command lines for the fleet's long-running processes: workers and Flower.

Defaults per queue: local judges are CPU-bound, so a prefork pool with one
process per core, a few chunks prefetched and Celery's time limits (prefork
honours them); remote judges wait on the network, so a threads pool sized for
I/O, one chunk prefetched per thread (a prefetched chunk's visibility clock is
already running), and each call bounded by its own timeout (the threads pool
ignores Celery's time limits).
"""

from __future__ import annotations

import os
import socket

from workers.keys import QUEUES

from .errors import UsageError

DEFAULTS = {
    # queue: (pool, concurrency, prefetch multiplier)
    "local": ("prefork", os.cpu_count() or 2, 4),
    "remote": ("threads", 32, 1),
}


def worker_argv(queues: str, *, concurrency: int | None, pool: str | None, prefetch: int | None,
                time_limit: int, name: str | None, loglevel: str) -> list[str]:
    """Celery ``worker`` arguments for ``queues`` with the per-queue defaults filled in."""
    wanted = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in wanted if q not in QUEUES]
    if not wanted or unknown:
        raise UsageError(f"--queues {queues!r}: unknown queue {', '.join(unknown) or '(none)'}; "
                         f"use {', '.join(QUEUES)} or local,remote")
    base = "remote" if wanted == ["remote"] else "local"
    default_pool, default_concurrency, default_prefetch = DEFAULTS[base]
    pool = pool or default_pool
    if pool not in ("prefork", "threads", "solo"):
        raise UsageError(f"--pool {pool!r}: use prefork, threads or solo")
    argv = [
        "worker",
        "--queues", ",".join(wanted),
        "--pool", pool,
        "--concurrency", str(concurrency or default_concurrency),
        "--prefetch-multiplier", str(prefetch or default_prefetch),
        "--hostname", name or f"{'-'.join(wanted)}-{os.getpid()}@{socket.gethostname()}",
        "--loglevel", loglevel,
        "--without-mingle",
        "--without-gossip",
    ]
    if pool == "prefork":
        argv += ["--time-limit", str(time_limit), "--soft-time-limit", str(max(1, int(time_limit * 0.8)))]
    return argv


def flower_argv(*, port: int, address: str) -> list[str]:
    """Celery ``flower`` arguments; refuses without basic auth from the environment.

    Credentials come only from ``FLOWER_BASIC_AUTH`` (``user:password``, comma
    separated for several users), which Flower reads itself, so they never
    appear on a command line (visible to every local user in ``ps``).
    """
    auth = os.environ.get("FLOWER_BASIC_AUTH", "")
    pairs = [p for p in auth.split(",") if p]
    if not pairs or any(":" not in p or not p.split(":", 1)[0] or len(p.split(":", 1)[1]) < 8 for p in pairs):
        raise UsageError(
            "Flower needs auth: set FLOWER_BASIC_AUTH=user:password (a password of 8 or more characters); "
            "anyone who reaches an open Flower can run any task"
        )
    if os.environ.get("FLOWER_UNAUTHENTICATED_API", "").lower() in ("1", "true", "yes"):
        raise UsageError("unset FLOWER_UNAUTHENTICATED_API: judgeq's Flower API always requires auth")
    return ["flower", f"--port={port}", f"--address={address}"]
