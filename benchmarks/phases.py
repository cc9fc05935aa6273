"""Where the per-item cost goes: each step of the submit and worker paths, timed alone, in one process.

    python -m benchmarks.phases [--items 100000] [--redis URL] [--pg ADMIN_URL] [--json]

The end-to-end benchmark (benchmarks/offline.py) says how fast the whole is;
this says which step costs what, and what the set-based alternatives to the
current ledger writes would cost. Each step runs over the same N records in
this process, against a fresh PostgreSQL database (dropped afterwards) and a
flushed Redis database, and reports wall seconds, this process's CPU seconds,
the PostgreSQL backends' CPU seconds, and microseconds per item.

Steps marked "alt" are not judgeq code: they are the proposed replacements
(psycopg COPY, one INSERT ... SELECT FROM unnest(...) per chunk), with the same
semantics (items: ON CONFLICT DO NOTHING; scores: ON CONFLICT DO UPDATE only
when an "error" row meets an "ok" row), run on the same rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.fleet import REPO, create_database, drop_database, pg_connect, redis_client, redis_foreign_clients
from benchmarks.offline import write_dataset
from benchmarks.procstat import _cmdline, _stat

SUBMIT_BATCH = 500  # scheduler.submit.enqueue_items: max(chunk, 500)
CHUNK = 250  # scheduler.settings chunk_local

SCORE_COLUMNS = ("run_id", "trace_id", "eval", "score", "label", "reason", "judge_version", "dataset", "ts",
                 "cost_usd", "latency_s", "tokens_in", "tokens_out", "attempts", "error", "status", "cached",
                 "weight", "stratum", "cluster", "content_hash", "saved_usd", "error_kind")
SCORE_TYPES = ("text", "text", "text", "float8", "text", "text", "text", "text", "timestamptz", "float8", "float8",
               "int4", "int4", "int4", "text", "text", "bool", "float8", "text", "text", "text", "float8", "text")
SCORES_UNNEST = (
    f"INSERT INTO scores ({', '.join(SCORE_COLUMNS)}) "
    f"SELECT * FROM unnest({', '.join(f'%s::{t}[]' for t in SCORE_TYPES)}) "
    "ON CONFLICT (run_id, trace_id, eval) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in SCORE_COLUMNS[3:])
    + " WHERE scores.status = 'error' AND excluded.status = 'ok'"
)
SCORES_STAGE = "CREATE TEMP TABLE IF NOT EXISTS scores_in (LIKE scores) ON COMMIT DELETE ROWS"
SCORES_COPY = f"COPY scores_in ({', '.join(SCORE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
SCORES_FROM_STAGE = (
    f"INSERT INTO scores ({', '.join(SCORE_COLUMNS)}) SELECT {', '.join(SCORE_COLUMNS)} FROM scores_in "
    "ON CONFLICT (run_id, trace_id, eval) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in SCORE_COLUMNS[3:])
    + " WHERE scores.status = 'error' AND excluded.status = 'ok'"
)
ITEMS_UNNEST = (
    "INSERT INTO items (run_id, trace_id, seq, content_hash, record) "
    "SELECT %s, * FROM unnest(%s::text[], %s::int4[], %s::text[], %s::text[]::json[]) "
    "ON CONFLICT (run_id, trace_id) DO NOTHING"
)


def pg_backend_cpu(db: str) -> float:
    """CPU seconds used so far by the live PostgreSQL backends serving ``db``."""
    import os

    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        st = _stat(int(entry.name))
        if st is not None and st[1] == "postgres" and f" {db} " in _cmdline(int(entry.name)) + " ":
            total += st[2]
    return total


class Timer:
    """Collects (step, wall s, CPU s of this process, PostgreSQL CPU s) rows."""

    def __init__(self, db: str, n: int) -> None:
        self.db = db
        self.n = n
        self.rows: list[dict[str, Any]] = []

    def run(self, name: str, fn: Callable[[], Any], note: str = "") -> Any:
        pg0, cpu0, t0 = pg_backend_cpu(self.db), time.process_time(), time.perf_counter()
        result = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        pg = pg_backend_cpu(self.db) - pg0
        self.rows.append({"step": name, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "pg_cpu_s": round(pg, 3),
                          "us_per_item": round(1e6 * wall / self.n, 1), "note": note})
        print(f"  {name}: {wall:.2f} s", file=sys.stderr, flush=True)
        return result


def import_seconds() -> float:
    """Seconds to import what ``judgeq submit`` imports, in a fresh interpreter (median of 3)."""
    code = ("import time; t = time.perf_counter(); import cli.main, scheduler.submit, judges.config, "
            "ledger.store, workers.dispatch, workers.app; print(time.perf_counter() - t)")
    times = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                             env={"PYTHONPATH": str(REPO), "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                                  "PATH": "/usr/bin:/bin"})
        times.append(float(out.stdout.strip() or "nan"))
    return sorted(times)[1]


def batched(seq: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def measure(n: int, admin_url: str, redis_url: str) -> dict[str, Any]:
    from judges.config import load_config
    from judges.record import Record
    from judges.build import build
    from ledger.models import Run
    from ledger.rows import ItemIn
    from ledger.store import Ledger
    from scheduler.records import iter_batches, scan
    from runs.rows import score_row
    from workers.dispatch import CeleryDispatcher
    from runs.message import ChunkMessage
    from workers.settings import WorkerSettings

    if redis_foreign_clients(redis_url):
        raise RuntimeError(f"other clients are connected to {redis_url}; pick another database with --redis")
    name, url = create_database(admin_url)
    tmp = tempfile.TemporaryDirectory(prefix="judgeq-phases-")
    try:
        path = Path(tmp.name) / "golden.jsonl"
        write_dataset(path, n)
        (Path(tmp.name) / "judgeq.toml").write_text('[judges.noop]\ntype = "local"\nbuiltin = "noop"\n')
        judge = load_config(Path(tmp.name) / "judgeq.toml").resolve("noop")
        ledger = Ledger(url)
        for run_id in ("cur", "copy", "unnest"):
            ledger.runs.create_run(Run(id=run_id, kind="offline", dataset_name="golden", n_items=n, expected=n))
        timer = Timer(name, n)
        print(f"phases over {n:,} records", file=sys.stderr)

        # -- submit path -------------------------------------------------------------------------------
        timer.run("submit: scan (validate whole file)", lambda: scan(path), "scheduler/records.py scan")

        def parse_again() -> None:
            for _batch in iter_batches(path, SUBMIT_BATCH):
                pass

        timer.run("submit: parse again (iter_batches)", parse_again,
                  "scheduler/records.py iter_batches; the records were parsed and validated by scan already")
        batches = list(iter_batches(path, SUBMIT_BATCH))
        records = [r for batch in batches for _, r in batch]
        gc.freeze()  # what the steps below keep must not make every later collection slower
        hashes = timer.run("submit: Record.content_hash x1", lambda: [r.content_hash() for r in records],
                           "json.dumps(sort_keys) + sha256 per record")
        messages = timer.run("submit: Record.to_message x1", lambda: [r.to_message() for r in records],
                             "model_dump(mode='json'); enqueue_items calls it twice per record")
        gc.freeze()
        conn = pg_connect(url)  # one connection for the alternatives, so that its backend's CPU is counted

        def add_items_current() -> None:
            for batch in batches:
                ledger.runs.add_items("cur", [ItemIn(trace_id=r.id, seq=line, content_hash=r.content_hash(),
                                                record=r.to_message()) for line, r in batch])

        timer.run("submit: ItemIn + Ledger.runs.add_items (as now)", add_items_current,
                  "incl. content_hash and to_message per record; SQLAlchemy executemany, one INSERT per row")

        def add_items_copy() -> None:
            for start in range(0, n, SUBMIT_BATCH):
                with conn.transaction(), conn.cursor() as cur:
                    with cur.copy("COPY items (run_id, trace_id, seq, content_hash, record) FROM STDIN") as cp:
                        for i in range(start, min(start + SUBMIT_BATCH, n)):
                            cp.write_row(("copy", records[i].id, i + 1, hashes[i], json.dumps(messages[i])))

        timer.run("alt submit: items by COPY", add_items_copy,
                  "psycopg COPY per batch of 500, hash and message computed once (above)")

        def add_items_unnest() -> None:
            for start in range(0, n, SUBMIT_BATCH):
                end = min(start + SUBMIT_BATCH, n)
                with conn.transaction():
                    conn.execute(ITEMS_UNNEST, ("unnest", [r.id for r in records[start:end]],
                                                list(range(start + 1, end + 1)), hashes[start:end],
                                                [json.dumps(m) for m in messages[start:end]]))

        timer.run("alt submit: items by INSERT ... unnest", add_items_unnest,
                  "one statement per batch of 500, ON CONFLICT DO NOTHING kept")

        client = redis_client(redis_url)
        client.flushdb()
        dispatcher = CeleryDispatcher(WorkerSettings(broker_url=redis_url, task_events=True))
        body = judge.to_message()

        def publish() -> None:
            chunk_no = 0
            for start in range(0, n, CHUNK):
                chunk_no += 1
                dispatcher.send(ChunkMessage(run_id="cur", dataset="d" * 64, judge=body,
                                             records=messages[start:start + CHUNK], chunk=chunk_no), "local")
            dispatcher.close()

        timer.run("submit: publish chunks (CeleryDispatcher.send)", publish,
                  f"{-(-n // CHUNK)} messages of {CHUNK} records to Redis")
        queued = client.llen("local")
        client.flushdb()
        client.close()

        # -- worker path -------------------------------------------------------------------------------
        wire = [json.loads(json.dumps(ChunkMessage(run_id="cur", dataset="d" * 64, judge=body,
                                                   records=m, chunk=i).to_json()))
                for i, m in enumerate(batched(messages, CHUNK))]
        chunks: list[tuple[ChunkMessage, list[Record]]] = timer.run(
            "worker: ChunkMessage.from_json + Record.model_validate",
            lambda: [(msg, [Record.model_validate(r) for r in msg.records])
                     for msg in (ChunkMessage.from_json(w) for w in wire)],
            "workers/chunk.py run_chunk")
        noop = build(judge)
        verdicts = timer.run("worker: noop judge", lambda: [noop.judge(recs) for _, recs in chunks])
        version = str(body["version"])
        gc.freeze()
        rows = timer.run(
            "worker: score_row (ScoreIn per verdict)",
            lambda: [[score_row(msg, r, v, version) for r, v in zip(recs, vs, strict=True)]
                     for (msg, recs), vs in zip(chunks, verdicts, strict=True)],
            "runs/rows.py score_row; recomputes content_hash per record")
        gc.freeze()
        now = dt.datetime.now(dt.timezone.utc)
        hash_of = dict(zip((r.id for r in records), hashes, strict=True))

        def tuples() -> list[list[tuple[Any, ...]]]:
            out = []
            for (msg, recs), vs in zip(chunks, verdicts, strict=True):
                out.append([(msg.run_id, r.id, "noop", v.score, v.label, v.reason, version, msg.dataset, now,
                             v.cost_usd, v.latency_s, v.tokens_in, v.tokens_out, v.attempts, v.error,
                             "ok" if v.error is None else "error", False, 1.0, None,
                             r.metadata.get("session_id"), hash_of[r.id]) for r, v in zip(recs, vs, strict=True)])
            return out

        timer.run("alt worker: row tuples, content_hash from the message", tuples,
                  "no ScoreIn, no second content_hash (submit computed it; carry it in the chunk)")
        timer.run("worker: Ledger.scores.write_scores (as now)", lambda: [ledger.scores.write_scores(c) for c in rows],
                  f"chunks of {CHUNK}; SQLAlchemy executemany, one INSERT .. ON CONFLICT per row")
        timer.run("worker: Ledger.scores.write_scores again (redelivery)", lambda: [ledger.scores.write_scores(c) for c in rows],
                  "all conflicts")

        def scores_unnest(run_id: str) -> Callable[[], None]:
            def go() -> None:
                for chunk in rows:
                    cols = [[getattr(r, c) for r in chunk] for c in SCORE_COLUMNS]
                    cols[0] = [run_id] * len(chunk)
                    cols[8] = [r.ts or now for r in chunk]
                    with conn.transaction():
                        conn.execute(SCORES_UNNEST, cols)
            return go

        timer.run("alt worker: scores by INSERT ... unnest", scores_unnest("unnest"),
                  "one statement per chunk, same ON CONFLICT rule")
        timer.run("alt worker: same again (redelivery)", scores_unnest("unnest"), "all conflicts")

        def scores_copy(run_id: str) -> Callable[[], None]:
            def go() -> None:
                with conn.cursor() as cur:
                    for chunk in rows:
                        with conn.transaction():
                            cur.execute(SCORES_STAGE)
                            with cur.copy(SCORES_COPY) as cp:
                                cp.set_types(list(SCORE_TYPES))
                                for r in chunk:
                                    cp.write_row((run_id, r.trace_id, r.eval, r.score, r.label, r.reason,
                                                  r.judge_version, r.dataset, r.ts or now, r.cost_usd, r.latency_s,
                                                  r.tokens_in, r.tokens_out, r.attempts, r.error, r.status, r.cached,
                                                  r.weight, r.stratum, r.cluster, r.content_hash, r.saved_usd,
                                                  r.error_kind))
                            cur.execute(SCORES_FROM_STAGE)
            return go

        timer.run("alt worker: scores by binary COPY + INSERT ... SELECT", scores_copy("copy"),
                  "COPY into a temp table, then one INSERT ... SELECT with the same ON CONFLICT rule")
        timer.run("alt worker: same again (redelivery)", scores_copy("copy"), "all conflicts")
        ledger.close()
        counts = dict(conn.execute("select run_id, count(*) from scores group by run_id").fetchall())
        item_counts = dict(conn.execute("select run_id, count(*) from items group by run_id").fetchall())
        conn.close()
        imports = import_seconds()
    finally:
        tmp.cleanup()
        drop_database(admin_url, name)
    ok = (counts == {"cur": n, "unnest": n, "copy": n} and item_counts == {"cur": n, "copy": n, "unnest": n}
          and queued == -(-n // CHUNK))
    return {"items": n, "steps": timer.rows, "submit_imports_s": round(imports, 3), "verified": ok,
            "rows": {"scores": counts, "items": item_counts, "queued": queued}}


def render(result: dict[str, Any]) -> str:
    lines = [f"per-step cost over {result['items']:,} records (one process; pg = PostgreSQL backend CPU)",
             f"{'step':<55} {'wall s':>7} {'cpu s':>7} {'pg s':>6} {'us/item':>8}"]
    lines.append("-" * len(lines[-1]))
    for r in result["steps"]:
        lines.append(f"{r['step']:<55} {r['wall_s']:>7.2f} {r['cpu_s']:>7.2f} {r['pg_cpu_s']:>6.2f} "
                     f"{r['us_per_item']:>8.1f}")
    lines.append(f"imports of the submit path in a fresh interpreter: {result['submit_imports_s']:.2f} s")
    lines.append(f"verified: {result['verified']} {result['rows']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.phases", description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    result = measure(args.items, args.pg, args.redis)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0 if result["verified"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
