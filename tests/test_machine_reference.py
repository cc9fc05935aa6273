"""benchmarks/machine.py: the reference's parts measure, and an unreachable PostgreSQL is None, not a failure."""

from __future__ import annotations

import psycopg

from benchmarks.machine import describe, in_loops, loop_seconds, per_loop, pg_insert_seconds


def test_the_parts_measure_and_leave_nothing_behind(pg_url: str) -> None:
    pg_url = pg_url.replace("postgresql+psycopg://", "postgresql://")
    assert loop_seconds(100_000) > 0
    seconds = pg_insert_seconds(pg_url, rows=500)
    assert seconds is not None and seconds > 0
    with psycopg.connect(pg_url) as conn:  # its table was dropped
        left = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'judgeq_machine_ref_%'").fetchone()
    assert left == (0,)


def test_unreachable_postgresql_is_none_and_ratios_use_the_loop() -> None:
    assert pg_insert_seconds("postgresql://postgres@127.0.0.1:1/nowhere", rows=10) is None
    ref = {"loop_additions": 20_000_000, "loop_s": 0.5, "pg_insert_rows": 50_000, "pg_insert_s": None,
           "cpus": 2, "load": [1.0, 1.0, 1.0]}
    assert per_loop(10_000.0, ref) == 5_000.0 and in_loops(3.0, ref) == 6.0
    assert "PostgreSQL not reachable" in describe(ref) and "20M pure-Python additions 0.50 s" in describe(ref)
