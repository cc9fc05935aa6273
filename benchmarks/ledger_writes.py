"""Ledger write rate on PostgreSQL: score rows in worker-sized transactions.

    python -m benchmarks.ledger_writes [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--rows 100000]

Creates a fresh database, writes ``--rows`` score rows in chunks of 200 (one
transaction each, as workers do), then the same rows again (all conflicts, as
redeliveries do), prints rows/s for both, and drops the database. Beside them:
the machine reference (benchmarks/machine.py) and each rate as a share of its
plain PostgreSQL insert rate, which compares across days.
"""

from __future__ import annotations

import argparse
import secrets
import time

import psycopg

from benchmarks.machine import describe, reference
from ledger import Ledger, Run, ScoreIn


def rows_for(n: int) -> list[ScoreIn]:
    return [
        ScoreIn(run_id="bench", trace_id=f"t{i:06d}", eval="faithfulness", judge_version="faithfulness@0123456789ab",
                dataset="d" * 64, score=float(i % 2), label="pass" if i % 2 else "fail",
                reason="the answer is supported by the context " * 3, cost_usd=0.0001, latency_s=0.5,
                tokens_in=900, tokens_out=40, attempts=1, content_hash="c" * 64)
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres", help="admin URL")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=200)
    args = parser.parse_args()
    ref = reference(args.pg)
    print(describe(ref))
    plain = ref["pg_insert_rows"] / ref["pg_insert_s"] if ref.get("pg_insert_s") else None
    name = "judgeq_bench_" + secrets.token_hex(4)
    with psycopg.connect(args.pg, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = args.pg.rsplit("/", 1)[0] + "/" + name
    try:
        rows = rows_for(args.rows)
        with Ledger(url) as ledger:
            ledger.runs.create_run(Run(id="bench", kind="offline", dataset_name="bench", n_items=args.rows,
                                  expected=args.rows))
            for label in ("new rows", "redelivered rows"):
                started = time.perf_counter()
                for i in range(0, args.rows, args.chunk):
                    ledger.scores.write_scores(rows[i:i + args.chunk])
                elapsed = time.perf_counter() - started
                rate = args.rows / elapsed
                share = f" ({rate / plain:.0%} of the reference's plain insert rate)" if plain else ""
                print(f"{label}: {args.rows:,} rows in chunks of {args.chunk}: {elapsed:.2f} s, {rate:,.0f} rows/s"
                      + share)
            assert ledger.scores.progress("bench").done == args.rows
    finally:
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
