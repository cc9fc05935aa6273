"""Offline throughput benchmark: a no-op judge through Redis, real workers and a PostgreSQL ledger.

    python -m benchmarks.offline                       # the full benchmark (a few minutes)
    python -m benchmarks.offline --items 20000 --workers 1 --concurrency 1 --enqueue-sizes 10000
    python -m benchmarks.offline --json > result.json

For each scenario (worker count N x concurrency per worker) it creates a fresh
PostgreSQL database (dropped afterwards), flushes the Redis database, starts N
``judgeq worker --queues local`` processes, runs ``judgeq submit FILE --judge
noop --wait --json`` as a subprocess and measures, from the moment that
subprocess is started (t0):

- enqueue: until ``runs.submitted_at``, which the submit process stamps when it
  has stored every item and published every chunk (status "running"); also
  ``runs.created_at`` (validation done) as an intermediate mark;
- end to end: until the largest ``scores.ts`` of the run (the last ledger row);
  items/s = items / that time;
- peak memory: the submit process's ``ru_maxrss`` (from wait4, exact), and for
  each worker the peak of the summed VmRSS of its process tree plus each
  process's VmHWM (sampled from /proc every 0.1 s);
- CPU seconds per component over the run (submit, workers, PostgreSQL backends
  of the benchmark database, PostgreSQL background processes, Redis, and
  everything else on the machine), read from /proc;
- completeness: exactly N_items rows, one per (trace, eval), all ok, queue empty.

It also measures enqueue alone (``submit`` without ``--wait``, no workers) at
several dataset sizes, to show that the submit process's memory does not grow
with the dataset. See benchmarks/README.md for the figures and their reading.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.fleet import (
    PrivateRedis,
    WorkerProc,
    create_database,
    drop_database,
    judgeq_env,
    pg_connect,
    py_spy_path,
    redis_client,
    redis_foreign_clients,
    run_judgeq,
    run_submit,
    start_py_spy,
    stop_py_spy,
    wait_for_quiet,
)
from benchmarks.machine import machine_facts
from benchmarks.offline_table import render
from benchmarks.procstat import Sampler

JUDGE_CONFIG = '[judges.noop]\ntype = "local"\nbuiltin = "noop"\n'
DEFAULT_CHUNK = 250  # runs.sending.ChunkSettings.chunk_local
LOCALES = ("en", "de", "fr", "es", "ja")


# --- the dataset ------------------------------------------------------------------------------------


def write_dataset(path: Path, n: int) -> float:
    """Write ``n`` JSONL records of about 300 bytes with unique ids; return the mean bytes per line."""
    size = 0
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            town = i % 9973
            line = json.dumps(
                {
                    "id": f"q{i:07d}",
                    "input": f"What is the capital of region {i}?",
                    "output": f"The capital of region {i} is Town {town}.",
                    "expected": f"Town {town}",
                    "context": f"Region {i} is governed from Town {town}. River {i % 89} flows through it.",
                    "metadata": {"locale": LOCALES[i % 5], "tenant": f"t{i % 13}", "session_id": f"s{i // 10}"},
                }
            )
            f.write(line + "\n")
            size += len(line) + 1
    return size / n


# --- measurements --------------------------------------------------------------------------------------


@dataclass
class Options:
    admin_url: str
    redis_url: str
    timeout: float
    quiet_wait: float
    extra_env: dict[str, str]
    workdir: Path
    profile_dir: Path | None
    chunk: int
    pool: str | None = None
    redis_pid: int | None = None
    log: Any = field(default=sys.stderr)

    def say(self, text: str) -> None:
        print(text, file=self.log, flush=True)


def _ledger_figures(url: str) -> dict[str, Any]:
    """The run's timestamps (epoch seconds) and row counts, straight from PostgreSQL."""
    with pg_connect(url) as conn:
        runs = conn.execute(
            "select id, status, n_items, expected, extract(epoch from created_at), "
            "extract(epoch from submitted_at), extract(epoch from finished_at) from runs"
        ).fetchall()
        if len(runs) != 1:
            return {"runs": len(runs)}
        run_id, status, n_items, expected, created, submitted, finished = runs[0]
        rows, keys, traces, ok, first_ts, last_ts = conn.execute(
            "select count(*), count(distinct (trace_id, eval)), count(distinct trace_id), "
            "count(*) filter (where status = 'ok'), extract(epoch from min(ts)), extract(epoch from max(ts)) "
            "from scores where run_id = %s",
            (run_id,),
        ).fetchone()
        items = conn.execute("select count(*) from items where run_id = %s", (run_id,)).fetchone()[0]

    def num(value: Any) -> float | None:
        return None if value is None else float(value)

    return {
        "runs": 1, "run_id": run_id, "status": status, "n_items": n_items, "expected": expected,
        "created": num(created), "submitted": num(submitted), "finished": num(finished),
        "rows": rows, "distinct_keys": keys, "distinct_traces": traces, "ok_rows": ok,
        "first_ts": num(first_ts), "last_ts": num(last_ts), "items_stored": items,
    }


def _redis_queue(url: str) -> dict[str, int]:
    client = redis_client(url)
    try:
        return {
            "local": int(client.llen("local")),
            "unacked": int(client.hlen("unacked")),
            "used_memory": int(client.info("memory")["used_memory"]),
        }
    finally:
        client.close()


def _since(t: float | None, t0: float) -> float | None:
    return None if t is None else round(t - t0, 3)


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


def _cpu_summary(sampler: Sampler, submit_cpu: float) -> dict[str, float]:
    groups = sampler.cpu_by_group()
    cpu = {
        "submit": submit_cpu,
        "workers": sum(v for k, v in groups.items() if k.startswith("worker")),
        "postgres": groups.get("postgres", 0.0),
        "postgres_bg": groups.get("postgres-bg", 0.0),
        "redis": groups.get("redis", 0.0),
    }
    cpu["irq"] = sampler.machine_irq_s  # softirqs of loopback TCP land here, charged to no process
    known = sum(cpu.values())
    # Everything else: this benchmark's own sampler, the box's daemons, other users' tests.
    cpu["other"] = max(sampler.machine_busy_s - known, 0.0)
    cpu["machine_busy"] = sampler.machine_busy_s
    cpu["machine_share"] = sampler.machine_share  # of all cores, over the sampled window
    return {k: round(v, 2) for k, v in cpu.items()}


def _top_others(sampler: Sampler, n: int = 4) -> dict[str, float]:
    """The processes outside the measured components that used the most CPU (noise on a shared box)."""
    others = {k[len("other:"):]: v for k, v in sampler.cpu_by_group().items() if k.startswith("other:")}
    return {k: round(v, 2) for k, v in sorted(others.items(), key=lambda kv: -kv[1])[:n] if v >= 0.05}


def _flush(redis_url: str) -> None:
    """Leave the benchmark's Redis database empty (chunks, poison-guard counters)."""
    client = redis_client(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()


def _prepare(opts: Options, label: str) -> tuple[str, str, Path, dict[str, str]]:
    deadline = time.monotonic() + max(opts.quiet_wait, 10)
    while (foreign := redis_foreign_clients(opts.redis_url)) and time.monotonic() < deadline:
        time.sleep(1)
    if foreign:
        raise RuntimeError(f"{foreign} other client(s) are connected to {opts.redis_url} (another test run or "
                           "fleet?); not flushing it: pick another database with --redis")
    name, url = create_database(opts.admin_url)
    _flush(opts.redis_url)
    workdir = opts.workdir / label
    workdir.mkdir(parents=True, exist_ok=True)
    config = opts.workdir / "judgeq.toml"
    env = judgeq_env(opts.redis_url, url, config, opts.extra_env)
    run_judgeq(["db", "upgrade"], env)  # an existing ledger, as in CI: migrations are not part of the figure
    return name, url, workdir, env


def measure_enqueue(opts: Options, dataset: Path, n_items: int) -> dict[str, Any]:
    """``judgeq submit`` without --wait and without workers: store and publish only."""
    label = f"enqueue-{n_items}"
    name, url, workdir, env = _prepare(opts, label)
    try:
        redis_before = _redis_queue(opts.redis_url)
        quiet = wait_for_quiet(opts.quiet_wait)
        sampler = Sampler(pg_db=name, redis_url=opts.redis_url, redis_pid=opts.redis_pid).start()
        profile = opts.profile_dir / f"{label}-submit.txt" if opts.profile_dir else None
        sub = run_submit(["submit", str(dataset), "--judge", "noop", "--json"], env, opts.timeout, workdir,
                         sampler, profile)
        sampler.stop()
        led = _ledger_figures(url)
        queue = _redis_queue(opts.redis_url)
    finally:
        drop_database(opts.admin_url, name)
        _flush(opts.redis_url)
    messages = math.ceil(n_items / opts.chunk)
    enqueue_s = _since(led.get("submitted"), sub.t0)
    verified = (sub.returncode == 0 and led.get("runs") == 1 and led.get("status") == "running"
                and led.get("items_stored") == n_items and queue["local"] == messages)
    return {
        "items": n_items,
        "validated_s": _since(led.get("created"), sub.t0),
        "enqueue_s": enqueue_s,
        "enqueue_items_per_s": round(n_items / enqueue_s) if enqueue_s else None,
        "submit_exit_s": round(sub.t_exit - sub.t0, 3),
        "submit_max_rss_mib": _mib(sub.max_rss_kib),
        "submit_cpu_s": round(sub.cpu_s, 2),
        "messages": queue["local"],
        "messages_expected": messages,
        "redis_bytes_per_item": round((queue["used_memory"] - redis_before["used_memory"]) / n_items),
        "cpu_s": _cpu_summary(sampler, sub.cpu_s),
        "cpu_s_others": _top_others(sampler),
        "quiet": quiet,
        "foreign_redis_clients": sampler.foreign_redis,
        "returncode": sub.returncode,
        "verified": verified,
        "stderr_tail": None if verified else sub.stderr[-1500:],
    }


def measure_end_to_end(opts: Options, dataset: Path, n_items: int, n_workers: int,
                       concurrency: int | None) -> dict[str, Any]:
    """N workers, then ``judgeq submit --wait``: enqueue time, end-to-end rate, memory, CPU."""
    label = f"e2e-w{n_workers}-c{concurrency or 'default'}" + (f"-{opts.pool}" if opts.pool else "")
    name, url, workdir, env = _prepare(opts, label)
    workers: list[WorkerProc] = []
    spies: list[subprocess.Popen[bytes]] = []
    try:
        workers = [WorkerProc(i, env, concurrency, workdir, opts.pool) for i in range(n_workers)]
        for worker in workers:
            worker.wait_ready()
        quiet = wait_for_quiet(opts.quiet_wait)
        sampler = Sampler(pg_db=name, redis_url=opts.redis_url, redis_pid=opts.redis_pid)
        for worker in workers:
            sampler.roots[f"worker{worker.index}"] = worker.pid
        sampler.start()
        if opts.profile_dir:
            for worker in workers:
                spy = start_py_spy(worker.pid, opts.profile_dir / f"{label}-worker{worker.index}.txt", True)
                if spy is not None:
                    spies.append(spy)
        profile = opts.profile_dir / f"{label}-submit.txt" if opts.profile_dir else None
        sub = run_submit(["submit", str(dataset), "--judge", "noop", "--wait", "--json", "--timeout",
                          str(opts.timeout)], env, opts.timeout + 60, workdir, sampler, profile)
        sampler.stop()
        for spy in spies:
            stop_py_spy(spy)
        led = _ledger_figures(url)
        queue = _redis_queue(opts.redis_url)
        pools = {w.index: sorted(sampler.tree_pids.get(f"worker{w.index}", set()) - {w.pid}) for w in workers}
    finally:
        for worker in workers:
            worker.stop()
        for spy in spies:
            if spy.poll() is None:
                stop_py_spy(spy)
        drop_database(opts.admin_url, name)
        _flush(opts.redis_url)
    try:
        payload = json.loads(sub.stdout)
    except ValueError:
        payload = {}
    last_row_s = _since(led.get("last_ts"), sub.t0)
    enqueue_s = _since(led.get("submitted"), sub.t0)
    verified = (
        sub.returncode == 0 and payload.get("complete") is True and led.get("runs") == 1
        and led.get("status") == "done" and led.get("rows") == n_items and led.get("distinct_keys") == n_items
        and led.get("distinct_traces") == n_items and led.get("ok_rows") == n_items
        and led.get("items_stored") == n_items and queue["local"] == 0 and queue["unacked"] == 0
    )
    worker_mem = []
    for w in workers:
        children = pools[w.index]
        worker_mem.append({
            "tree_peak_rss_mib": _mib(sampler.tree_peak_kib.get(f"worker{w.index}", 0)),
            "main_hwm_mib": _mib(sampler.hwm_kib.get(w.pid, 0)),
            "child_hwm_mib": [_mib(sampler.hwm_kib.get(pid, 0)) for pid in children],
        })
    return {
        "workers": n_workers,
        "concurrency": "default" if concurrency is None else concurrency,
        "pool_processes": sum(len(p) for p in pools.values()),
        "items": n_items,
        "validated_s": _since(led.get("created"), sub.t0),
        "enqueue_s": enqueue_s,
        "first_row_s": _since(led.get("first_ts"), sub.t0),
        "last_row_s": last_row_s,
        "submit_exit_s": round(sub.t_exit - sub.t0, 3),
        "e2e_items_per_s": round(n_items / last_row_s) if last_row_s else None,
        "drain_items_per_s": (round(n_items / (led["last_ts"] - led["first_ts"]))
                              if led.get("last_ts") and led.get("first_ts") and led["last_ts"] > led["first_ts"]
                              else None),
        "submit_max_rss_mib": _mib(sub.max_rss_kib),
        "worker_memory": worker_mem,
        "cpu_s": _cpu_summary(sampler, sub.cpu_s),
        "cpu_s_others": _top_others(sampler),
        "quiet": quiet,
        "foreign_redis_clients": sampler.foreign_redis,
        "rows": led.get("rows"),
        "distinct_keys": led.get("distinct_keys"),
        "queue_left": queue["local"] + queue["unacked"],
        "returncode": sub.returncode,
        "verified": verified,
        "stderr_tail": None if verified else sub.stderr[-1500:],
    }


# --- main ----------------------------------------------------------------------------------------------


def _measure_all(args: argparse.Namespace, opts: Options, enqueue_sizes: list[int]) -> tuple[Any, ...]:
    facts = machine_facts(opts.admin_url, opts.redis_url)
    datasets: dict[int, tuple[Path, float]] = {}
    for n in sorted({args.items, *enqueue_sizes}):
        path = opts.workdir / f"golden-{n}.jsonl"
        datasets[n] = (path, write_dataset(path, n))
    opts.say(f"datasets written: {', '.join(f'{n:,}' for n in datasets)} records")
    enqueue_only = []
    for n in enqueue_sizes:
        opts.say(f"enqueue only, {n:,} items ...")
        r = measure_enqueue(opts, datasets[n][0], n)
        opts.say(f"  enqueue {r['enqueue_s']} s, max RSS {r['submit_max_rss_mib']} MiB, verified {r['verified']}")
        enqueue_only.append(r)
    end_to_end = []
    for conc in args.concurrency:
        for n_workers in args.workers:
            for _ in range(args.repeat):
                opts.say(f"end to end, {n_workers} worker(s), concurrency {conc or 'default'}, "
                         f"{args.items:,} items ...")
                r = measure_end_to_end(opts, datasets[args.items][0], args.items, n_workers, conc)
                opts.say(f"  {r['e2e_items_per_s']} items/s, enqueue {r['enqueue_s']} s, "
                         f"last row {r['last_row_s']} s, verified {r['verified']}")
                end_to_end.append(r)
    return facts, datasets, enqueue_only, end_to_end


def _int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _concurrency_list(text: str) -> list[int | None]:
    return [None if x.strip() == "default" else int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.offline", description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=100_000, help="records in the end-to-end dataset (default 100000)")
    p.add_argument("--workers", type=_int_list, default=[1, 2], help="worker process counts, e.g. 1,2")
    p.add_argument("--concurrency", type=_concurrency_list, default=[1, None],
                   help="pool processes per worker: numbers and/or 'default' (judgeq's default: one per core); "
                        "default 1,default")
    p.add_argument("--pool", choices=("prefork", "threads", "solo"), default=None,
                   help="worker pool (default: judgeq's default for the local queue, prefork); with solo the "
                        "worker judges in its main process and --concurrency does not apply")
    p.add_argument("--enqueue-sizes", type=_int_list, default=None,
                   help="dataset sizes for the enqueue-only measurement (default 10000,ITEMS; 0 for none)")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/14",
                   help="a Redis database the benchmark may flush, or 'private': start a redis-server of its own "
                        "on a free port (use it when other test suites share the machine's Redis)")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres",
                   help="PostgreSQL admin URL: a fresh database is created per measurement and dropped after")
    p.add_argument("--timeout", type=float, default=300, help="seconds a single submit may take")
    p.add_argument("--repeat", type=int, default=1, help="run each end-to-end scenario this many times")
    p.add_argument("--quiet-wait", type=float, default=30,
                   help="before each measurement wait up to this many seconds for the machine to be idle "
                        "(< 0.3 cores busy); what was seen is reported")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for submit and workers, e.g. JUDGEQ_CHUNK_LOCAL=1000 (repeatable)")
    p.add_argument("--profile-dir", type=Path, default=None,
                   help="attach py-spy (if installed) to submit and workers; collapsed stacks go here "
                        "(read them with python -m benchmarks.profile_summary); figures are then perturbed")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    extra_env = dict(pair.split("=", 1) for pair in args.env)
    chunk = int(extra_env.get("JUDGEQ_CHUNK_LOCAL", DEFAULT_CHUNK))
    if args.enqueue_sizes is None:
        enqueue_sizes = sorted({min(10_000, args.items), args.items})
    else:
        enqueue_sizes = [n for n in args.enqueue_sizes if n > 0]  # --enqueue-sizes 0: none
    if args.profile_dir:
        args.profile_dir.mkdir(parents=True, exist_ok=True)
        if py_spy_path() is None:
            print("py-spy is not installed (pip install py-spy); profiling skipped", file=sys.stderr)
    started = time.monotonic()
    from .machine import per_loop, reference

    ref = reference(args.pg)  # before anything of the benchmark's runs: the machine's speed, today
    private: PrivateRedis | None = None
    with tempfile.TemporaryDirectory(prefix="judgeq-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "judgeq.toml").write_text(JUDGE_CONFIG)
        if args.redis == "private":
            private = PrivateRedis(workdir)
        try:
            redis_url = private.url if private else args.redis
            opts = Options(admin_url=args.pg, redis_url=redis_url, timeout=args.timeout, quiet_wait=args.quiet_wait,
                           extra_env=extra_env, workdir=workdir, profile_dir=args.profile_dir, chunk=chunk,
                           pool=args.pool, redis_pid=private.pid if private else None)
            results = _measure_all(args, opts, enqueue_sizes)
        finally:
            if private:
                private.stop()
    facts, datasets, enqueue_only, end_to_end = results
    redis_shown = "private redis-server" if private else args.redis
    for r in end_to_end:  # the headlines in units of the machine's speed (benchmarks/machine.py)
        r["e2e_items_per_loop"] = round(per_loop(r["e2e_items_per_s"] or 0.0, ref))
    for r in enqueue_only:
        r["enqueue_items_per_loop"] = round(per_loop(r["enqueue_items_per_s"] or 0.0, ref))

    result = {
        "machine": facts,
        "reference": ref,
        "config": {"items": args.items, "bytes_per_record": datasets[args.items][1], "chunk": chunk,
                   "pool": args.pool or "prefork (judgeq default)",
                   "extra_env": extra_env, "redis": redis_shown, "workers": args.workers,
                   "concurrency": ["default" if c is None else c for c in args.concurrency],
                   "enqueue_sizes": enqueue_sizes},
        "targets": {"e2e": 10_000, "n": 100_000, "enq": 5},
        "end_to_end": end_to_end,
        "enqueue_only": enqueue_only,
        "benchmark_wall_s": round(time.monotonic() - started, 1),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(render(result))
        print(f"\n(benchmark took {result['benchmark_wall_s']:.0f} s)")
    ok = all(r["verified"] for r in end_to_end + enqueue_only)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
