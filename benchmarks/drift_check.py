"""One drift check over a week of hourly windows: how long ``judgeq drift --short 1h --long 7d`` takes.

Run from the repository root, with PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres):

    python -m benchmarks.drift_check                         # 2,000 rows an hour: 338k rows, both ledgers
    python -m benchmarks.drift_check --rows-per-hour 6000    # about 1M rows
    python -m benchmarks.drift_check --ledgers sqlite --json

A ledger (a SQLite file, and a fresh PostgreSQL database) gets 169 hourly
online runs of one judge, as the window job writes them (items with a
locale in their metadata, rows with weight 1/p, stratum and session), built
through the Ledger API. Then the check the command runs
(``online.drift_check.check``) is timed twice: all traffic only, and
``--by locale`` (10 locales), which reads every record's metadata. Writing
the check's rows is not timed (a few rows).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .online_window import fresh_db

START = datetime(2026, 11, 13, tzinfo=UTC)
HOURS = 169
LOCALES = 10


def fill(url: str, rows_per_hour: int) -> int:
    """169 hourly runs of judge "exact"; the rows written."""
    import numpy as np

    from ledger import ItemIn, Ledger, Run, ScoreIn

    rng = np.random.default_rng(7)
    written = 0
    with Ledger(url) as ledger:
        for h in range(HOURS):
            window = (START + timedelta(hours=h)).strftime("%Y-%m-%dT%H")
            run_id = f"o-{window}-exact"
            ledger.runs.create_run_if_absent(Run(id=run_id, kind="online", dataset_name="hourly", window=window,
                                            judges={"exact": {"version": "exact@bench", "kind": "local"}}))
            locales = rng.integers(0, LOCALES, size=rows_per_hour)
            scores = (rng.random(rows_per_hour) < 0.8).astype(float)
            items = [ItemIn(f"t{h}-{i}", i, "h", {"id": f"t{h}-{i}", "output": "x", "metadata": {
                "locale": f"l{locales[i]}", "session_id": f"s{h}-{i // 3}"}}) for i in range(rows_per_hour)]
            ledger.runs.add_new_items(run_id, items)
            ledger.scores.write_scores([ScoreIn(run_id=run_id, trace_id=f"t{h}-{i}", eval="exact", judge_version="exact@bench",
                                         dataset=window, score=float(scores[i]), weight=1.0 + locales[i] % 3,
                                         stratum=f"l{locales[i]}", cluster=f"s{h}-{i // 3}")
                                 for i in range(rows_per_hour)])
            written += rows_per_hour
    return written


def time_check(url: str, by: tuple[str, ...]) -> dict[str, Any]:
    from ledger import Ledger
    from online.drift_check import DriftQuery, check

    query = DriftQuery("hourly", "exact", timedelta(hours=1), timedelta(days=7), START + timedelta(hours=HOURS),
                       by=by)
    with Ledger(url) as ledger:
        began = time.perf_counter()
        report = check(ledger, query)
        seconds = time.perf_counter() - began
    return {"by": list(by), "seconds": round(seconds, 3), "status": report.status, "slices": len(report.slices),
            "long_rows": report.slices[0].long.n if report.slices[0].long else 0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows-per-hour", type=int, default=2000)
    parser.add_argument("--ledgers", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from .machine import describe, reference

    ref = reference()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for backend in args.ledgers:
            url = f"sqlite:///{Path(folder) / 'drift.db'}" if backend == "sqlite" else fresh_db("judgeq_bench_drift")
            began = time.perf_counter()
            rows = fill(url, args.rows_per_hour)
            filled = time.perf_counter() - began
            for by in ((), ("locale",)):
                found = time_check(url, by) | {"ledger": backend, "rows": rows, "fill_s": round(filled, 1)}
                found["rows_per_s"] = round(rows / found["seconds"])
                results.append(found)
    if args.json:
        print(json.dumps({"results": results, "reference": ref}, indent=2))
        return 0
    print(f"drift check, --short 1h --long 7d, {HOURS} hourly windows of {args.rows_per_hour:,} rows")
    print(f"{'ledger':<11} {'slices':>6} {'rows':>9} {'check s':>8} {'rows/s':>9}")
    for r in results:
        print(f"{r['ledger']:<11} {r['slices']:>6} {r['rows']:>9,} {r['seconds']:>8.2f} {r['rows_per_s']:>9,}"
              f"   {'--by locale' if r['by'] else 'all traffic'}")
    print(describe(ref))
    return 0


if __name__ == "__main__":
    sys.exit(main())
