"""Ledger write rate on PostgreSQL: a measurement to run by hand, not a timed assertion.

    JUDGEQ_BENCH=1 pytest tests/test_ledger_bench.py -s

Writes 100,000 score rows in chunks of 200 (one transaction each, as workers
do), then the same rows again (all conflicts, as redeliveries do), and prints
rows/s for both. The target (DESIGN.md) is >= 10,000 rows/s.
"""

from __future__ import annotations

import os
import time

import pytest

from ledger import Ledger, Run, ScoreIn

ROWS = 100_000
CHUNK = 200

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("JUDGEQ_BENCH"), reason="a measurement; set JUDGEQ_BENCH=1 to run it"
    ),
    pytest.mark.timeout(300),
]


def test_write_rate_on_postgresql(pg_url: str) -> None:
    rows = [
        ScoreIn(
            run_id="bench",
            trace_id=f"t{i:06d}",
            eval="faithfulness",
            judge_version="faithfulness@0123456789ab",
            dataset="d" * 64,
            score=float(i % 2),
            label="pass" if i % 2 else "fail",
            reason="the answer is supported by the context " * 3,
            cost_usd=0.0001,
            latency_s=0.5,
            tokens_in=900,
            tokens_out=40,
            attempts=1,
            content_hash="c" * 64,
        )
        for i in range(ROWS)
    ]
    with Ledger(pg_url) as ledger:
        ledger.create_run(Run(id="bench", kind="offline", dataset_name="bench", n_items=ROWS, expected=ROWS))
        for label in ("new rows", "redelivered rows"):
            started = time.perf_counter()
            written = sum(ledger.write_scores(rows[i : i + CHUNK]) for i in range(0, ROWS, CHUNK))
            elapsed = time.perf_counter() - started
            print(
                f"\n{label}: {ROWS:,} rows in chunks of {CHUNK} in {elapsed:.2f} s = {ROWS / elapsed:,.0f} rows/s ({written:,} written)"
            )
        assert ledger.progress("bench").done == ROWS
