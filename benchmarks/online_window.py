"""One online window end to end: a source read, sampled at 2 % over 20 strata, stored, sent, then judged.

Run from the repository root, with PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres):

    python -m benchmarks.online_window                    # 1M traces, JSONL and PostgreSQL: a few minutes
    python -m benchmarks.online_window --traces 250000 --sources jsonl
    python -m benchmarks.online_window --json

For each source and window size, in a fresh process (so peak memory is its own):
``decided/s`` is the traces of the window read and sampled per second by the
real window job (online/job.py: read, u, strata, counts, the sample stored in
a PostgreSQL ledger and cut into chunks), with chunks counted rather than
sent; ``peak MB`` is the process's peak resident memory. Then the sample is
judged by the no-op local judge in process, as an offline run would be
(``judged/s``). Memory flat in the window size means the 250k and 1M peaks
are close.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DAY = datetime(2026, 11, 22, tzinfo=UTC)
STRATA = 20
RATE = 0.02


def write_jsonl(path: Path, n: int) -> None:
    """n traces of about 300 bytes over 2026-11-22, in 20 locales of skewed sizes."""
    rng = random.Random(7)
    with path.open("w") as f:
        for i in range(n):
            ts = DAY + timedelta(microseconds=int(86_400e6 * i / n))
            locale = f"l{min(STRATA - 1, int(rng.expovariate(0.3))):02d}"
            f.write(json.dumps({
                "id": f"t{i:08d}", "input": "How do I reset my password if I no longer have the phone?",
                "output": "Use the link on the login page; it sends a code to your recovery address.",
                "ts": ts.isoformat().replace("+00:00", "Z"),
                "metadata": {"locale": locale, "session_id": f"s{i // 4}", "user_id": f"u{i % 5000}"}}) + "\n")


def fresh_db(name: str) -> str:
    import psycopg

    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")  # type: ignore[arg-type]
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def fill_table(url: str, n: int) -> None:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f"""CREATE TABLE traces AS SELECT 't' || lpad(i::text, 8, '0') AS trace_id,
              'How do I reset my password if I no longer have the phone?' AS prompt,
              'Use the link on the login page; it sends a code to your recovery address.' AS completion,
              'l' || lpad(least({STRATA - 1}, floor(-ln(1 - random()) / 0.3))::int::text, 2, '0') AS locale,
              's' || (i / 4) AS session_id,
              timestamptz '2026-11-22 00:00:00+00' + i * (interval '86400 seconds' / {n}) AS created_at
            FROM generate_series(0, {n - 1}) AS i""")  # type: ignore[arg-type]
        conn.execute("CREATE INDEX ON traces (created_at)")


class Counting:
    """A dispatcher that counts the chunks it is given: the window job's cost without a broker's."""

    embedded = False

    def __init__(self) -> None:
        self.chunks = 0
        self.records = 0

    def send(self, message: Any, queue: str) -> None:
        self.chunks += 1
        self.records += len(message.records)

    def close(self) -> None:
        pass


def measure(kind: str, n: int, jsonl: Path, traces_url: str) -> dict[str, Any]:
    """In this (fresh) process: the window job over the source, then the sample judged in process."""
    from judges.config import load_config
    from ledger.migrate import upgrade
    from ledger.store import Ledger
    from online.job import WindowJob
    from online.sampling import parse_policy
    from online.schedules import Schedule
    from online.sources.base import open_source
    from online.windows import parse_size, parse_window
    from runs.sending import ChunkSettings, send_chunks
    from workers.dispatch import EmbeddedDispatcher
    from workers.settings import WorkerSettings

    if kind == "jsonl":
        source = open_source("bench", {"type": "jsonl", "path": str(jsonl)}, Path("."))
    else:
        os.environ["BENCH_TRACES_URL"] = traces_url
        source = open_source("bench", {"type": "sql", "url_env": "BENCH_TRACES_URL", "table": "traces",
                                       "time_column": "created_at",
                                       "columns": {"id": "trace_id", "input": "prompt", "output": "completion",
                                                   "metadata.locale": "locale", "metadata.session_id": "session_id"}},
                             Path("."))
    ledger_url = fresh_db(f"judgeq_bench_online_{kind}")
    upgrade(ledger_url)
    ledger = Ledger(ledger_url)
    policy = parse_policy({"rate": RATE, "strata": "metadata.locale"}, "bench")
    schedule = Schedule(name=f"bench-{kind}", source="bench", judges=("noop",), size=parse_size("1d"),
                        every=timedelta(days=1), policy=policy)
    judges = [load_config(None).resolve("noop")]
    window = parse_window("2026-11-22")
    counting = Counting()
    started = time.perf_counter()
    outcome = WindowJob(schedule, window, source, judges, ledger, ChunkSettings()).run(counting)
    scan_s = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    run_id = outcome.runs["noop"]
    # The sample, judged as offline: its items are stored; send them all again through the in-process fleet.
    dispatcher = EmbeddedDispatcher(ledger, WorkerSettings())

    started = time.perf_counter()
    judged = 0
    for batch in ledger.runs.missing_items(run_id, "noop", batch_size=1000):
        send_chunks(run_id, window.id, judges, batch, dispatcher, ChunkSettings(), {}, ledger=ledger)
        judged += len(batch)
    dispatcher.join()
    judge_s = time.perf_counter() - started
    return {"source": kind, "traces": outcome.seen, "sampled": outcome.sampled["noop"],
            "chunks": counting.chunks, "scan_s": round(scan_s, 2), "decided_per_s": round(outcome.seen / scan_s),
            "peak_mb": round(peak_mb), "judged": judged, "judged_per_s": round(judged / judge_s) if judge_s else None,
            "strata": STRATA, "rate": RATE}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", default="250000,1000000", help="window sizes (comma separated)")
    parser.add_argument("--sources", default="jsonl,sql")
    parser.add_argument("--dir", default="/tmp/judgeq-bench-online")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # kind:n:jsonl:url, run in a child process
    args = parser.parse_args()
    if args.one:
        kind, n, jsonl, url = args.one.split("|")
        print(json.dumps(measure(kind, int(n), Path(jsonl), url)))
        return
    from .machine import describe, per_loop, reference

    ref = reference(ADMIN)  # the machine's speed today, so the figures compare across days
    if not args.json:
        print(describe(ref), flush=True)
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    results = []
    for n in [int(x) for x in args.traces.split(",")]:
        jsonl = folder / f"window-{n}.jsonl"
        traces_url = ""
        if "jsonl" in args.sources and not jsonl.exists():
            write_jsonl(jsonl, n)
        if "sql" in args.sources:
            traces_url = fresh_db(f"judgeq_bench_traces_{n}")
            fill_table(traces_url, n)
        for kind in args.sources.split(","):
            out = subprocess.run([sys.executable, "-m", "benchmarks.online_window", "--one",
                                  f"{kind}|{n}|{jsonl}|{traces_url}"], capture_output=True, text=True, check=True,
                                 env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result["decided_per_loop"] = round(per_loop(result["decided_per_s"], ref))
            result["judged_per_loop"] = round(per_loop(result["judged_per_s"] or 0.0, ref))
            results.append(result)
            if not args.json:
                print(f"{kind:5} {result['traces']:>9,} traces  {result['decided_per_s']:>9,} decided/s  "
                      f"{result['sampled']:>7,} sampled ({result['chunks']} chunks)  peak {result['peak_mb']:>5} MB  "
                      f"judged {result['judged_per_s']:>7,}/s; per loop: {result['decided_per_loop']:,} decided, "
                      f"{result['judged_per_loop']:,} judged", flush=True)
    if args.json:
        print(json.dumps({"machine": os.uname().nodename, "cpus": os.cpu_count(),
                          "date": datetime.now(UTC).date().isoformat(), "reference": ref, "results": results},
                         indent=2))
    else:
        print(f"({os.cpu_count()} CPUs; counts in {Counter(r['source'] for r in results)})")


if __name__ == "__main__":
    main()
