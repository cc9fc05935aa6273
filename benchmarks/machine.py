"""A machine-speed reference measured in the same run as a benchmark, so figures compare across days.

These machines change speed from day to day (the offline benchmark at one
commit gave 17,500-18,700 items/s one day and 5,900-7,000 another, when this
loop took 2.5 s instead of 1.1 s). Every benchmark prints :func:`reference`
beside its figures and quotes its headline also relative to the loop:

- a rate times the loop's seconds (:func:`per_loop`): items per "loop-second",
  which stays put when the machine as a whole is slower;
- a duration divided by the loop's seconds (:func:`in_loops`).

The PostgreSQL figure (a fixed insert of :data:`PG_ROWS` rows in one
transaction, committed) says whether the database's disk, rather than the CPU,
is what changed; it is ``None`` when PostgreSQL is not reachable.

:func:`machine_facts` records what a figure was measured on beside it: the
commit, the CPU and memory, the services' versions and settings, the packages.

    python -m benchmarks.machine          # the reference alone, as JSON
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.fleet import REPO, pg_connect, redis_client

LOOP_ADDITIONS = 20_000_000  #: the fixed pure-Python loop: this many ``total += i``
PG_ROWS = 50_000  #: the fixed PostgreSQL insert: this many rows of (int, 64 characters), one transaction
PG_URL = os.environ.get("JUDGEQ_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def loop_seconds(n: int = LOOP_ADDITIONS) -> float:
    """Seconds a pure-Python loop of ``n`` additions takes here, now (the loop is fixed: don't change it)."""
    started = time.perf_counter()
    total = 0
    for i in range(n):
        total += i
    elapsed = time.perf_counter() - started
    assert total == n * (n - 1) // 2
    return elapsed


def pg_insert_seconds(url: str = PG_URL, rows: int = PG_ROWS) -> float | None:
    """Seconds to insert ``rows`` fixed rows into a fresh table and commit; None if PostgreSQL is unreachable.

    The table is an ordinary (logged) one, so the commit waits for the WAL as the ledger's writes do;
    it is dropped afterwards.
    """
    try:
        import psycopg
    except ImportError:
        return None
    table = "judgeq_machine_ref_" + secrets.token_hex(4)
    payload = "x" * 64
    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, payload text NOT NULL)")
            try:
                started = time.perf_counter()
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(f"INSERT INTO {table} (id, payload) VALUES (%s, %s)",
                                    [(i, payload) for i in range(rows)])
                return time.perf_counter() - started
            finally:
                conn.execute(f"DROP TABLE IF EXISTS {table}")
    except psycopg.OperationalError:
        return None


def reference(pg_url: str = PG_URL) -> dict[str, Any]:
    """The machine-speed reference: the loop's seconds and the PostgreSQL insert's (None if unreachable)."""
    pg = pg_insert_seconds(pg_url)
    return {
        "loop_additions": LOOP_ADDITIONS,
        "loop_s": round(loop_seconds(), 3),
        "pg_insert_rows": PG_ROWS,
        "pg_insert_s": None if pg is None else round(pg, 3),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load": [round(x, 2) for x in os.getloadavg()],
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def per_loop(rate: float, ref: dict[str, Any]) -> float:
    """A rate (items/s, calls/s…) times the loop's seconds: the rate in units of this machine's speed."""
    return rate * float(ref["loop_s"])


def in_loops(seconds: float, ref: dict[str, Any]) -> float:
    """A duration divided by the loop's seconds: how many loops it lasted."""
    return seconds / float(ref["loop_s"])


def describe(ref: dict[str, Any]) -> str:
    """The reference as one line, printed beside a benchmark's figures."""
    pg = (f"PostgreSQL insert of {ref['pg_insert_rows']:,} rows {ref['pg_insert_s']:.2f} s"
          if ref.get("pg_insert_s") is not None else "PostgreSQL not reachable")
    return (f"machine reference: {ref['loop_additions'] / 1e6:.0f}M pure-Python additions {ref['loop_s']:.2f} s; "
            f"{pg}; {ref['cpus']} CPUs, load {' '.join(str(x) for x in ref['load'])} (benchmarks/machine.py)")


if __name__ == "__main__":
    json.dump(reference(sys.argv[1] if len(sys.argv) > 1 else PG_URL), sys.stdout, indent=2)
    sys.stdout.write("\n")


# --- what a figure was measured on: the code, the machine, the services and the packages ---------------

#: The packages whose versions a benchmark records beside its figures.
PACKAGES = ("celery", "kombu", "redis", "sqlalchemy", "sqlmodel", "psycopg", "pydantic", "pydantic-core")


def _code_version() -> str:
    """The commit measured, and whether files outside benchmarks/ differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return "not a git checkout"
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    dirty = [line[3:] for line in status.stdout.splitlines() if not line[3:].startswith("benchmarks/")]
    return head.stdout.strip() + (f" + uncommitted changes to {', '.join(dirty)}" if dirty else "")


def machine_facts(admin_url: str, redis_url: str) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor() or "?")
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    client = redis_client(redis_url)
    try:
        rinfo = client.info("server")
        aof = client.config_get("appendonly").get("appendonly")
    finally:
        client.close()
    with pg_connect(admin_url) as conn:
        pg_version = conn.execute("show server_version").fetchone()[0]
        pg_settings = {
            name: conn.execute(f"show {name}").fetchone()[0]
            for name in ("shared_buffers", "synchronous_commit", "fsync", "max_connections")
        }
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "code": _code_version(),
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "redis": rinfo.get("redis_version"),
        "redis_appendonly": aof,
        "postgresql": pg_version,
        "postgresql_settings": pg_settings,
        "packages": versions,
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }
