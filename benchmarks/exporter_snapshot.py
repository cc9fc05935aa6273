"""What one snapshot of ``judgeq exporter`` costs the database, on a ledger of many rows.

    python -m benchmarks.exporter_snapshot [--rows 1000000] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Fills a fresh SQLite file and a fresh PostgreSQL database with ``--rows``
score rows of 4 judges (and their items, with a metadata locale of 20) spread
evenly over 7 days, so the exporter's 1 h window holds 1/168 of them; then
times each part of a snapshot (the window's means by locale, the counters'
step over 15 s of rows, and for comparison the same aggregate over the whole
table, today's spend) and the whole ``take_snapshot``, best of 5.
The exporter takes one snapshot per ``--refresh`` (15 s by default) whatever
the scrapes, so this is the load it puts on the ledger. The rows are written
with one INSERT ... SELECT each (the judgeq write path is ``ledger_writes.py``'s).
"""

from __future__ import annotations

import argparse
import json
import secrets
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from ledger.models import Run
from ledger.store import Ledger
from scheduler.metrics import Counters, ExporterConfig, Slice, take_snapshot

JUDGES = 4
LOCALES = 20
SPAN = timedelta(days=7)


def fill(ledger: Ledger, rows: int, now: datetime) -> None:
    """``rows`` items and score rows, newest at ``now``, one every SPAN / rows, in one online run."""
    ledger.runs.create_run(Run(id="bench", kind="online", dataset_name="prod", window="bench", judges={}))
    step = SPAN.total_seconds() / rows
    per_judge = rows // JUDGES
    start = (now - SPAN).timestamp()
    dialect = ledger.engine.dialect.name
    if dialect == "postgresql":
        numbers = f"generate_series(0, {per_judge - 1}) AS g(i)"
        ts = f"to_timestamp({start} + (i * {JUDGES} + j) * {step})"
        judges = f"CROSS JOIN generate_series(0, {JUDGES - 1}) AS h(j)"
        record = "json_build_object('id', 't' || i, 'output', 'o', 'metadata', json_build_object('locale', 'l' || (i % 20)))"
    else:
        numbers = (f"(WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {per_judge - 1}) "
                   "SELECT i FROM n)")
        ts = f"strftime('%Y-%m-%d %H:%M:%f', {start} + (i * {JUDGES} + j) * {step}, 'unixepoch')"
        judges = f"CROSS JOIN (WITH RECURSIVE m(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM m WHERE j < {JUDGES - 1}) SELECT j FROM m)"
        record = "json_object('id', 't' || i, 'output', 'o', 'metadata', json_object('locale', 'l' || (i % 20)))"
    with ledger.engine.begin() as conn:
        conn.execute(sa.text(f"INSERT INTO items (run_id, trace_id, seq, content_hash, record) "
                             f"SELECT 'bench', 't' || i, i, 'h', {record} FROM {numbers}"))
        conn.execute(sa.text(
            "INSERT INTO scores (run_id, trace_id, eval, score, reason, judge_version, dataset, ts, cost_usd, "
            "latency_s, tokens_in, tokens_out, attempts, status, cached, weight, saved_usd) "
            f"SELECT 'bench', 't' || i, 'judge' || j, (i % 5) / 4.0, '', 'judge' || j || '@0123456789ab', 'bench', "
            f"{ts}, 0.001, 0.5 + (i % 7), 100, 10, 1, 'ok', false, 50.0, 0 FROM {numbers} {judges}"))


def best(what: Callable[[], Any], times: int = 5) -> float:
    spans = []
    for _ in range(times):
        started = time.perf_counter()
        what()
        spans.append(time.perf_counter() - started)
    return min(spans)


def measure(url: str, rows: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    ledger = Ledger(url)
    started = time.perf_counter()
    fill(ledger, rows, now)
    filled = time.perf_counter() - started
    config = ExporterConfig(slices=(Slice("metadata.locale", "locale", "locale"),))
    window_start, day_start = now - timedelta(hours=1), now.replace(hour=0, minute=0, second=0, microsecond=0)
    found = ledger.metrics.window_means(window_start, now + timedelta(seconds=1), ["locale"])
    assert sum(m.rows for m in found) > 0 and len({m.slices for m in found}) == LOCALES
    figures = {
        "rows": rows, "fill_s": round(filled, 1), "window_rows": sum(m.rows for m in found),
        "window_means_s": best(lambda: ledger.metrics.window_means(window_start, now, ["locale"])),
        "score_totals_s": best(lambda: ledger.metrics.score_totals(now - timedelta(seconds=45), now - timedelta(seconds=30))),
        "score_totals_all_s": best(lambda: ledger.metrics.score_totals(now - SPAN, now + timedelta(seconds=1)), times=1),
        "spent_by_judge_s": best(lambda: ledger.metrics.spent_by_judge(day_start, now)),
        "snapshot_s": best(lambda: take_snapshot(ledger, config, Path("none.toml"), timedelta(hours=1), None, now,
                                                 Counters(now - timedelta(seconds=45)))),
    }
    ledger.close()
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}


def main() -> None:
    from .machine import describe, reference

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres", help="admin URL")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    ref = reference()
    report: dict[str, Any] = {"reference": ref}
    with tempfile.TemporaryDirectory() as tmp:
        report["sqlite"] = measure(f"sqlite:///{tmp}/bench.db", args.rows)
    name = "judgeq_bench_" + secrets.token_hex(4)
    with psycopg.connect(args.pg, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        report["postgresql"] = measure(args.pg.rsplit("/", 1)[0] + "/" + name, args.rows)
    finally:
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(describe(ref))
    for backend in ("sqlite", "postgresql"):
        f = report[backend]
        print(f"{backend}: {f['rows']:,} rows ({f['window_rows']:,} in the 1 h window), filled in {f['fill_s']} s; "
              f"window means by locale {f['window_means_s'] * 1000:.0f} ms, counters' step (15 s of rows) "
              f"{f['score_totals_s'] * 1000:.0f} ms (the whole table: {f['score_totals_all_s'] * 1000:.0f} ms), today's spend {f['spent_by_judge_s'] * 1000:.0f} ms, "
              f"whole snapshot {f['snapshot_s'] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
