"""The parts a benchmark starts and talks to: PostgreSQL databases, Redis, judgeq workers and submits."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.procstat import Sampler, machine_jiffies
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


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
    return [sys.executable, "-c", "from cli.main import main; main()"]


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
