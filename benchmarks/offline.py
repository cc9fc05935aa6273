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
import datetime as dt
import json
import math
import os
import platform
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
JUDGE_CONFIG = '[judges.noop]\ntype = "local"\nbuiltin = "noop"\n'
DEFAULT_CHUNK = 250  # scheduler.settings.SchedulerSettings.chunk_local
LOCALES = ("en", "de", "fr", "es", "ja")
PACKAGES = ("celery", "kombu", "redis", "sqlalchemy", "sqlmodel", "psycopg", "pydantic", "pydantic-core")


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


# --- /proc --------------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, str, float, float, int] | None:
    """(ppid, comm, own CPU seconds, reaped children's CPU seconds, start time) of ``pid``."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes().decode(errors="replace")
    except OSError:
        return None
    rpar = raw.rfind(")")
    comm = raw[raw.find("(") + 1 : rpar]
    rest = raw[rpar + 2 :].split()
    utime, stime, cutime, cstime = (int(x) for x in rest[11:15])
    return int(rest[1]), comm, (utime + stime) / CLK_TCK, (cutime + cstime) / CLK_TCK, int(rest[19])


def _mem_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in KiB; zeros once it is gone."""
    rss = hwm = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def machine_jiffies() -> tuple[int, int, int]:
    """(busy, total, irq + softirq) jiffies of all cores since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait, irq + softirq


def socket_ports(pids: set[int]) -> set[int]:
    """Local TCP ports of the sockets that ``pids`` hold open (to tell our Redis clients from others')."""
    inodes: set[int] = set()
    for pid in pids:
        try:
            for fd in os.scandir(f"/proc/{pid}/fd"):
                try:
                    link = os.readlink(fd.path)
                except OSError:
                    continue
                if link.startswith("socket:["):
                    inodes.add(int(link[8:-1]))
        except OSError:
            continue
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and int(parts[9]) in inodes:
                ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports


_CLIENT_BACKEND = re.compile(r"(\d+\.\d+\.\d+\.\d+|\[local\]|::1)(\(\d+\))?")


class Sampler:
    """Samples /proc every ``interval`` s: memory of process trees, CPU of every component.

    ``roots`` maps a group name to a root pid (a worker's main process, the
    submit process); a group is the root and all its descendants. PostgreSQL
    backends serving ``pg_db`` form the group "postgres", PostgreSQL's own
    background processes "postgres-bg", and redis-server "redis". CPU is counted
    from the first sample on (processes born later count from zero).
    """

    def __init__(self, pg_db: str | None, interval: float = 0.1, redis_url: str | None = None,
                 redis_pid: int | None = None) -> None:
        self.roots: dict[str, int] = {}
        self.redis_pid = redis_pid  # a private server: only it counts as "redis"
        self.pg_db = pg_db
        self.redis_url = redis_url
        self.foreign_redis: dict[str, str] = {}  # addr -> last command, of clients on our db that are not ours
        self._ticks = 0
        self.interval = interval
        self.cpu_first: dict[tuple[int, int], float] = {}
        self.cpu_last: dict[tuple[int, int], float] = {}
        self.group_of: dict[tuple[int, int], str] = {}
        self.hwm_kib: dict[int, int] = {}
        self.tree_peak_kib: dict[str, int] = {}
        self.tree_pids: dict[str, set[int]] = {}
        self._pg_kind: dict[tuple[int, int], str] = {}
        self._first = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sampler", daemon=True)
        self.started = 0.0
        self.stopped = 0.0
        self._jiffies0 = (0, 0, 0)
        self.machine_busy_s = 0.0
        self.machine_irq_s = 0.0  # interrupts and softirqs (loopback networking), charged to no process
        self.machine_share = 0.0

    def start(self) -> "Sampler":
        self._jiffies0 = machine_jiffies()
        self.started = time.time()
        self.tick()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.tick()
        busy, total, irq = machine_jiffies()
        self.stopped = time.time()
        self.machine_busy_s = (busy - self._jiffies0[0]) / CLK_TCK
        self.machine_irq_s = (irq - self._jiffies0[2]) / CLK_TCK
        self.machine_share = (busy - self._jiffies0[0]) / max(total - self._jiffies0[1], 1)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def _cpu(self, pid: int, start: int, cpu: float, group: str) -> None:
        key = (pid, start)
        if key not in self.cpu_first:
            self.cpu_first[key] = cpu if self._first else 0.0
        self.cpu_last[key] = cpu
        self.group_of[key] = group

    def tick(self) -> None:
        procs: dict[int, tuple[int, str, float, float, int]] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                st = _stat(int(entry.name))
                if st is not None:
                    procs[int(entry.name)] = st
        kids: dict[int, list[int]] = {}
        for pid, st in procs.items():
            kids.setdefault(st[0], []).append(pid)
        in_tree: set[int] = set()
        for group, root in list(self.roots.items()):
            if root not in procs:
                continue
            tree, todo = [], [root]
            while todo:
                pid = todo.pop()
                tree.append(pid)
                todo.extend(kids.get(pid, []))
            rss_sum = 0
            for pid in tree:
                rss, hwm = _mem_kib(pid)
                rss_sum += rss
                self.hwm_kib[pid] = max(self.hwm_kib.get(pid, 0), hwm)
                _, _, cpu, _, start = procs[pid]
                self._cpu(pid, start, cpu, group)
                in_tree.add(pid)
            self.tree_pids.setdefault(group, set()).update(tree)
            self.tree_peak_kib[group] = max(self.tree_peak_kib.get(group, 0), rss_sum)
        self._ticks += 1
        if self.redis_url and self._ticks % 10 == 1:
            self._check_redis(in_tree)
        for pid, (_ppid, comm, cpu, _ccpu, start) in procs.items():
            if pid in in_tree:
                continue
            if comm == "postgres":
                key = (pid, start)
                kind = self._pg_kind.get(key)
                if kind is None:
                    cmd = _cmdline(pid)
                    if self.pg_db and f" {self.pg_db} " in f"{cmd} ":
                        kind = "postgres"
                    elif _CLIENT_BACKEND.search(cmd):
                        kind = "other"  # another database's client (other users of the server)
                    else:
                        kind = "postgres-bg"  # postmaster, checkpointer, WAL writer, autovacuum, ...
                    self._pg_kind[key] = kind
                self._cpu(pid, start, cpu, kind if kind != "other" else "other:postgres (other databases)")
            elif comm == "redis-server" and self.redis_pid in (None, pid):
                self._cpu(pid, start, cpu, "redis")
            elif pid == os.getpid():
                self._cpu(pid, start, cpu, "other:benchmark (this process)")
            else:
                self._cpu(pid, start, cpu, f"other:{comm}")
        self._first = False

    def _check_redis(self, ours: set[int]) -> None:
        """Note connections to our Redis database from processes that are not ours (they may steal chunks)."""
        assert self.redis_url is not None
        try:
            client = redis_client(self.redis_url)
            try:
                db = int(client.connection_pool.connection_kwargs.get("db", 0))
                clients = [c for c in client.client_list() if int(c.get("db", -1)) == db]
                mine = socket_ports(ours | {os.getpid()})  # after the list, so a new client of ours is not missed
            finally:
                client.close()
        except Exception:  # a measurement aid; never fail the run for it
            return
        for c in clients:
            addr = str(c.get("addr", ""))
            port = addr.rsplit(":", 1)[-1]
            # age >= 1 s: not a short-lived connection of ours that closed between the two looks
            if port.isdigit() and int(port) not in mine and int(c.get("age", 0)) >= 1:
                self.foreign_redis[addr] = str(c.get("cmd", "?"))

    def cpu_by_group(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, last in self.cpu_last.items():
            group = self.group_of[key]
            out[group] = out.get(group, 0.0) + max(last - self.cpu_first[key], 0.0)
        return out


# --- services ------------------------------------------------------------------------------------------


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def pg_connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(_pg_dsn(url), autocommit=True, connect_timeout=10)


def create_database(admin_url: str) -> tuple[str, str]:
    """A fresh database on the server of ``admin_url``: (name, URL)."""
    name = "judgeq_bench_" + secrets.token_hex(5)
    with pg_connect(admin_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(_pg_dsn(admin_url))
    return name, urlunsplit(parts._replace(path="/" + name))


def drop_database(admin_url: str, name: str) -> None:
    with pg_connect(admin_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=10)


def redis_foreign_clients(url: str) -> int:
    """Connections to our Redis database that are not this benchmark's (another test run, a fleet)."""
    client = redis_client(url)
    try:
        db = int(client.connection_pool.connection_kwargs.get("db", 0))
        mine = client.client_id()
        return sum(1 for c in client.client_list() if int(c.get("db", -1)) == db and int(c["id"]) != mine)
    finally:
        client.close()


def wait_for_quiet(max_wait: float, threshold_cores: float = 0.3, window: float = 1.0) -> dict[str, float]:
    """Wait (up to ``max_wait`` s) until the machine uses less than ``threshold_cores`` cores.

    Other sessions' test suites share this box's 2 cores; a measurement taken
    next to one is worth little. Returns how long we waited and the last load seen.
    """
    started = time.monotonic()
    while True:
        busy0, _, _ = machine_jiffies()
        time.sleep(window)
        busy1, _, _ = machine_jiffies()
        cores = (busy1 - busy0) / CLK_TCK / window
        waited = time.monotonic() - started
        if cores < threshold_cores or waited >= max_wait:
            return {"waited_s": round(waited, 1), "busy_cores_before": round(cores, 2)}


# --- processes -----------------------------------------------------------------------------------------


def judgeq_cmd() -> list[str]:
    """The judgeq CLI of this checkout, run by this interpreter (the same code as the console script)."""
    return [sys.executable, "-c", "from scheduler.cli import main; main()"]


def judgeq_env(broker: str, ledger: str, config: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUDGEQ_")}
    env.update(
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        JUDGEQ_BROKER_URL=broker,
        JUDGEQ_LEDGER_URL=ledger,
        JUDGEQ_CONFIG=str(config),
    )
    env.update(extra)
    return env


class PrivateRedis:
    """A redis-server of this benchmark's own on a free port, without persistence (``--redis private``).

    Other sessions' test suites hand out the shared server's database numbers
    1-15 and run workers on them; a private server cannot be flushed or
    consumed from by them.
    """

    def __init__(self, workdir: Path) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                client = redis_client(self.url)
                client.ping()
                client.close()
                return
            except Exception:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("could not start a private redis-server (is it installed?)") from None
                time.sleep(0.1)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class WorkerProc:
    """One ``judgeq worker --queues local`` process (a Celery worker) with its log in a file."""

    def __init__(self, index: int, env: dict[str, str], concurrency: int | None, logdir: Path,
                 pool: str | None = None) -> None:
        self.index = index
        self.log_path = logdir / f"worker{index}.log"
        args = ["worker", "--queues", "local", "--loglevel", "INFO"]
        if concurrency is not None:
            args += ["--concurrency", str(concurrency)]
        if pool is not None:
            args += ["--pool", pool]
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(judgeq_cmd() + args, env=env, cwd=REPO, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log_path.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        tail = "".join(self.log_path.read_text(errors="replace").splitlines(True)[-30:])
        raise RuntimeError(f"worker {self.index} did not become ready in {timeout:.0f} s:\n{tail}")

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (warm shutdown: Celery stops its own pool children), SIGKILL the group if it hangs."""
        if self.proc.poll() is not None:
            return
        try:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group this benchmark created for it
            self.proc.wait(timeout=10)


@dataclass
class SubmitResult:
    t0: float
    t_exit: float
    returncode: int
    max_rss_kib: int
    cpu_s: float
    stdout: str
    stderr: str
    timed_out: bool


def run_submit(args: list[str], env: dict[str, str], timeout: float, workdir: Path,
               sampler: Sampler | None = None, profile_to: Path | None = None) -> SubmitResult:
    """Run ``judgeq ARGS`` and reap it with wait4, which gives its exact peak RSS and CPU time."""
    out_path, err_path = workdir / "submit.out", workdir / "submit.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        t0 = time.time()
        proc = subprocess.Popen(judgeq_cmd() + args, env=env, cwd=REPO, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL)
    if sampler is not None:
        sampler.roots["submit"] = proc.pid
    spy = start_py_spy(proc.pid, profile_to, subprocesses=False) if profile_to else None
    lock = threading.Lock()
    state = {"reaped": False, "timed_out": False}

    def kill() -> None:
        with lock:
            if not state["reaped"]:
                state["timed_out"] = True
                os.kill(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, kill)
    timer.start()
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped: the pid stays ours
    t_exit = time.time()
    with lock:
        state["reaped"] = True
    timer.cancel()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if spy is not None:
        stop_py_spy(spy)
    return SubmitResult(
        t0=t0, t_exit=t_exit, returncode=proc.returncode, max_rss_kib=usage.ru_maxrss,
        cpu_s=usage.ru_utime + usage.ru_stime, stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"), timed_out=state["timed_out"],
    )


def run_judgeq(args: list[str], env: dict[str, str], timeout: float = 120) -> None:
    res = subprocess.run(judgeq_cmd() + args, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"judgeq {' '.join(args)} exited {res.returncode}:\n{res.stderr[-2000:]}")


def py_spy_path() -> str | None:
    for candidate in (Path(sys.executable).with_name("py-spy"), Path("/usr/local/bin/py-spy"), Path("/usr/bin/py-spy")):
        if candidate.exists():
            return str(candidate)
    return None


def start_py_spy(pid: int, out: Path, subprocesses: bool) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` attached to ``pid``, writing collapsed stacks to ``out`` (see profile_summary.py)."""
    exe = py_spy_path()
    if exe is None:
        return None
    cmd = [exe, "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--output", str(out),
           "--nonblocking"]
    if subprocesses:
        cmd.append("--subprocesses")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_py_spy(spy: subprocess.Popen[bytes]) -> None:
    if spy.poll() is None:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    try:
        spy.wait(timeout=30)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()


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


# --- machine facts -------------------------------------------------------------------------------------


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
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
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


# --- output --------------------------------------------------------------------------------------------


def _fmt(value: Any, width: int, digits: int = 2) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, float):
        text = f"{value:,.{digits}f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    return text.rjust(width)


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    cfg = result["config"]
    lines = [
        f"judgeq offline benchmark, {m['date']}, code {m.get('code')}",
        f"machine: {m['cores']} cores ({m['cpu_model']}), {m['memory_gib']} GiB, Linux {m['kernel']}, "
        f"load {' '.join(m['loadavg_at_start'])} at start",
        f"software: Python {m['python']}, Redis {m['redis']} (appendonly {m['redis_appendonly']}), "
        f"PostgreSQL {m['postgresql']} (" + ", ".join(f"{k}={v}" for k, v in m["postgresql_settings"].items()) + "), "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items()),
        f"broker: {cfg.get('redis')}",
        f"dataset: {cfg['items']:,} records, {cfg['bytes_per_record']:.0f} B/record; judge noop (local); "
        f"chunk {cfg['chunk']} records/task; pool {cfg.get('pool')}; extra env {cfg['extra_env'] or '-'}",
        "",
        "End to end (judgeq submit --wait; times in s from the submit process's start)",
    ]
    head = (f"{'workers':>7} {'conc':>7} {'procs':>5} {'valid.':>7} {'enqueue':>8} {'1st row':>8} {'last row':>9} "
            f"{'items/s':>8} {'drain/s':>8} {'submit RSS':>10} {'worker tree RSS':>16} {'ok':>3}")
    lines += [head, "-" * len(head)]
    for r in result["end_to_end"]:
        trees = "/".join(f"{w['tree_peak_rss_mib']:.0f}" for w in r["worker_memory"]) + " MiB"
        lines.append(
            f"{r['workers']:>7} {str(r['concurrency']):>7} {r['pool_processes']:>5} {_fmt(r['validated_s'], 7)} "
            f"{_fmt(r['enqueue_s'], 8)} {_fmt(r['first_row_s'], 8)} {_fmt(r['last_row_s'], 9)} "
            f"{_fmt(r['e2e_items_per_s'], 8)} {_fmt(r['drain_items_per_s'], 8)} "
            f"{_fmt(r['submit_max_rss_mib'], 6, 0)} MiB {trees:>16} {'yes' if r['verified'] else 'NO':>3}"
        )
    lines += ["", "CPU seconds during each end-to-end run (2 cores = 2 CPU-s per wall second; 'before': cores busy "
              "just before the run; 'other' and 'top others': other users of the machine, which perturb the figures)"]
    head = (f"{'workers':>7} {'conc':>7} {'submit':>7} {'workers':>8} {'pg':>7} {'pg bg':>6} {'redis':>6} "
            f"{'irq':>5} {'other':>6} {'busy':>7} {'busy %':>6} {'before':>6}  top others")
    lines += [head, "-" * len(head)]
    for r in result["end_to_end"]:
        c = r["cpu_s"]
        lines.append(
            f"{r['workers']:>7} {str(r['concurrency']):>7} {_fmt(c['submit'], 7)} {_fmt(c['workers'], 8)} "
            f"{_fmt(c['postgres'], 7)} {_fmt(c['postgres_bg'], 6)} {_fmt(c['redis'], 6)} {_fmt(c['irq'], 5)} "
            f"{_fmt(c['other'], 6)} {_fmt(c['machine_busy'], 7)} {c['machine_share'] * 100:>5.0f}% "
            f"{_fmt(r['quiet']['busy_cores_before'], 6)}  "
            + ", ".join(f"{k} {v}" for k, v in r.get("cpu_s_others", {}).items())
        )
    lines += ["", "Enqueue only (judgeq submit without --wait, no workers)"]
    head = (f"{'items':>8} {'valid.':>7} {'enqueue':>8} {'items/s':>8} {'exit':>6} {'max RSS':>8} {'CPU submit':>10} "
            f"{'CPU pg':>7} {'messages':>9} {'redis B/item':>12} {'ok':>3}")
    lines += [head, "-" * len(head)]
    for r in result["enqueue_only"]:
        lines.append(
            f"{r['items']:>8,} {_fmt(r['validated_s'], 7)} {_fmt(r['enqueue_s'], 8)} "
            f"{_fmt(r['enqueue_items_per_s'], 8)} "
            f"{_fmt(r['submit_exit_s'], 6)} {_fmt(r['submit_max_rss_mib'], 4, 0)} MiB {_fmt(r['submit_cpu_s'], 10)} "
            f"{_fmt(r['cpu_s']['postgres'], 7)} {r['messages']:>9,} {r['redis_bytes_per_item']:>12,} "
            f"{'yes' if r['verified'] else 'NO':>3}"
        )
    targets = result["targets"]
    lines += ["", "targets (DESIGN.md): >= {e2e:,} items/s end to end; {n:,} items enqueued in <= {enq} s; "
              "flat memory".format(**targets)]
    for r in result["end_to_end"] + result["enqueue_only"]:
        if r.get("foreign_redis_clients"):
            what = f"{r.get('workers', 0)} worker(s)" if "workers" in r else f"enqueue {r['items']:,}"
            lines.append(f"INTERFERENCE ({what}): other processes used the benchmark's Redis database: "
                         f"{r['foreign_redis_clients']}; use --redis private")
    failures = [r for r in result["end_to_end"] + result["enqueue_only"] if not r["verified"]]
    for r in failures:
        lines.append(f"NOT VERIFIED: {json.dumps({k: v for k, v in r.items() if k != 'stderr_tail'})}")
        if r.get("stderr_tail"):
            lines.append(r["stderr_tail"])
    return "\n".join(lines)


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

    result = {
        "machine": facts,
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
