"""Real processes for tests: judgeq workers and CLI calls, with bounded waits."""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def judgeq_cmd() -> list[str]:
    """How to run the judgeq CLI of this checkout with this interpreter."""
    return [sys.executable, "-c", "from cli.main import main; main()"]


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUDGEQ_")}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def run_cli(args: Sequence[str], env: Mapping[str, str], timeout: float = 120, cwd: Path | None = None, *,
            unprivileged: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``judgeq ARGS`` to completion in a process of its own and return its output and exit code.

    The process is forked from this test process's zygote (tests/zygote.py),
    which has the heavy libraries (litellm included) imported already;
    ``JUDGEQ_TEST_ZYGOTE=0`` in ``env`` (or in this process's environment)
    starts a fresh interpreter instead, for a test that times imports.
    ``unprivileged``: file modes apply to it even when the tests run as root.
    """
    unprivileged = unprivileged and os.geteuid() == 0
    if not forks_from_zygote(env):
        from .zygote import drop_file_override_capabilities

        return subprocess.run(judgeq_cmd() + list(args), env=dict(env), cwd=cwd or REPO, capture_output=True,
                              text=True, timeout=timeout,
                              preexec_fn=drop_file_override_capabilities if unprivileged else None)
    return _zygote().run(list(args), dict(env), cwd or REPO, timeout, unprivileged=unprivileged)


def start_cli(args: Sequence[str], env: Mapping[str, str], cwd: Path | None = None) -> "Started":
    """Start ``judgeq ARGS`` without waiting: stdout and stderr on pipes, ``communicate``, ``send_signal``...

    Forked from the zygote as :func:`run_cli`'s calls are (not in a session of its own: signals are sent
    to its pid); a fresh interpreter with ``JUDGEQ_TEST_ZYGOTE=0``.
    """
    if not forks_from_zygote(env):
        return subprocess.Popen(judgeq_cmd() + list(args), env=dict(env), cwd=cwd or REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return _zygote().spawn(list(args), dict(env), cwd or REPO)


def start_session(args: Sequence[str], env: Mapping[str, str]) -> Started:
    """Start ``judgeq ARGS`` in a session of its own (``os.killpg(proc.pid, ...)`` stops it and its children),
    stdout and stderr on one pipe: a worker, beat. Forked from the zygote unless ``JUDGEQ_TEST_ZYGOTE=0``."""
    if not forks_from_zygote(env):
        return subprocess.Popen(judgeq_cmd() + list(args), env=dict(env), cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
    return _zygote().spawn(list(args), dict(env), REPO, session=True, merge_stderr=True)


def forks_from_zygote(env: Mapping[str, str]) -> bool:
    """Whether a command with ``env`` is forked from the zygote: unless ``JUDGEQ_TEST_ZYGOTE=0`` (there or here)."""
    return env.get("JUDGEQ_TEST_ZYGOTE", os.environ.get("JUDGEQ_TEST_ZYGOTE", "1")) != "0"


class _Zygote:
    """The client of one ``python -m tests.zygote`` process (see that module)."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="judgeq-zygote-")
        self.path = os.path.join(self.folder, "socket")
        log = Path(self.folder) / "zygote.log"
        with log.open("wb") as errors:
            self.proc = subprocess.Popen([sys.executable, "-m", "tests.zygote", self.path], env=base_env(),
                                         cwd=REPO, stdout=subprocess.PIPE, stderr=errors, start_new_session=True)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != b"ready":
            raise AssertionError(f"the test zygote did not start (exit {self.proc.wait(timeout=30)}):\n"
                                 + log.read_text(errors="replace")[-4000:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)

    def run(self, args: list[str], env: dict[str, str], cwd: Path, timeout: float, *,
            unprivileged: bool = False) -> subprocess.CompletedProcess[str]:
        """``judgeq ARGS`` to its end (killed after ``timeout`` seconds), as ``subprocess.run`` would."""
        proc = self.spawn(args, env, cwd, unprivileged=unprivileged)
        try:
            out, err = proc.communicate(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        return subprocess.CompletedProcess(proc.args, proc.wait(), out, err)

    def spawn(self, args: list[str], env: dict[str, str], cwd: Path, *, session: bool = False,
              merge_stderr: bool = False, unprivileged: bool = False) -> "Spawned":
        """Start ``judgeq ARGS`` and do not wait for it (see tests/zygote.py for ``session`` and ``unprivileged``).

        Its stdout and stderr go to two pipes, or one with ``merge_stderr``.
        """
        from .zygote import STATUS, send_request

        out_r, out_w = os.pipe()
        err_r, err_w = (out_r, out_w) if merge_stderr else os.pipe()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(self.path)
            send_request(conn, {"args": args, "env": env, "cwd": str(cwd), "session": session,
                                "unprivileged": unprivileged}, [out_w, err_w])
            _, pid = STATUS.unpack(_recv_exactly(conn, STATUS.size))
        except BaseException:
            conn.close()
            for fd in {out_r, err_r}:
                os.close(fd)
            raise
        finally:
            for fd in {out_w, err_w}:
                os.close(fd)
        stdout = os.fdopen(out_r, "r", errors="replace")
        return Spawned(judgeq_cmd() + args, pid, conn, stdout,
                       None if merge_stderr else os.fdopen(err_r, "r", errors="replace"))


class Spawned:
    """What a test needs of ``subprocess.Popen`` for a command forked by the zygote (see ``Worker``).

    ``pid`` is the command's own (a session leader if spawned as one:
    ``os.killpg(pid, ...)`` reaches it and its children); its wait status
    comes from the zygote's keeper on ``conn``.
    """

    def __init__(self, args: list[str], pid: int, conn: socket.socket, stdout: Any, stderr: Any = None) -> None:
        self.args = args
        self.pid = pid
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None
        self._conn = conn
        self._lock = threading.Lock()

    def poll(self) -> int | None:
        return self._status(0.0)

    def wait(self, timeout: float | None = None) -> int:
        code = self._status(timeout)
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        return code

    def _status(self, timeout: float | None) -> int | None:
        """The exit code once the keeper sent the wait status (within ``timeout`` seconds), else None."""
        from .zygote import STATUS

        with self._lock:
            if self.returncode is None:
                readable, _, _ = select.select([self._conn], [], [], timeout)
                if not readable:
                    return None
                _, status = STATUS.unpack(_recv_exactly(self._conn, STATUS.size))
                self._conn.close()
                self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Its stdout and stderr to their end, then its exit (as Popen's, for separate pipes).

        After ``timeout`` seconds: ``TimeoutExpired`` with what was read (the pipes are closed either way).
        """
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        assert self.stderr is not None, "communicate() reads two pipes; this command's stderr went to stdout"
        out, err = _drain({os.dup(self.stdout.fileno()): bytearray(), os.dup(self.stderr.fileno()): bytearray()},
                          deadline)
        self.stdout.close()
        self.stderr.close()
        stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
        if self._status(max(0.0, deadline - time.monotonic())) is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0, output=stdout, stderr=stderr)
        return stdout, stderr

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


#: A command started and not waited for: a Popen (fresh interpreter) or forked by the zygote.
Started = subprocess.Popen[str] | Spawned


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        more = conn.recv(size - len(data))
        if not more:
            raise AssertionError("the test zygote's keeper went away")
        data += more
    return data


def _drain(buffers: dict[int, bytearray], deadline: float) -> tuple[bytes, bytes]:
    """Read the command's stdout and stderr pipes (in that order in ``buffers``) to their end or the deadline."""
    import selectors

    fds = list(buffers)
    with selectors.DefaultSelector() as selector:
        for fd in fds:
            selector.register(fd, selectors.EVENT_READ)
        open_fds = set(fds)
        while open_fds:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _ in selector.select(timeout=left):
                chunk = os.read(key.fd, 65536)
                if chunk:
                    buffers[key.fd] += chunk
                else:
                    selector.unregister(key.fd)
                    open_fds.discard(key.fd)
    for fd in fds:
        os.close(fd)
    return bytes(buffers[fds[0]]), bytes(buffers[fds[1]])


_ZYGOTE: list[_Zygote] = []
_ZYGOTE_LOCK = threading.Lock()


def _zygote() -> _Zygote:
    with _ZYGOTE_LOCK:
        if not _ZYGOTE or not _ZYGOTE[0].alive():
            if not _ZYGOTE:
                atexit.register(lambda: _ZYGOTE and _ZYGOTE[0].close())
            else:
                _ZYGOTE.pop().close()
            _ZYGOTE.append(_Zygote())
        return _ZYGOTE[0]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str | Callable[[], str],
               interval: float = 0.1) -> None:
    """Poll ``predicate`` until it holds; fail the test with ``what`` after ``timeout`` seconds.

    ``what`` may be a function, called on failure, to say what state things were left in.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what() if callable(what) else what}")


class Worker:
    """A ``judgeq worker`` process in its own process group, its log kept for assertions."""

    def __init__(self, queues: str, env: Mapping[str, str], *extra: str, name: str | None = None) -> None:
        self.name = name or f"{queues.replace(',', '-')}-{os.getpid()}-{time.monotonic_ns() % 100000}@test"
        args = ["worker", "--queues", queues, "--name", self.name, *extra]
        # Forked from the zygote, as CLI calls are (the imports of celery, judgeq and litellm are done once),
        # unless JUDGEQ_TEST_ZYGOTE=0 asks for a fresh interpreter.
        self.proc = start_session(args, env)
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if " ready." in line:
                self._ready.set()

    def wait_ready(self, timeout: float = 60) -> "Worker":
        if not self._ready.wait(timeout):
            self.stop()
            raise AssertionError(f"worker {self.name} not ready in {timeout}s:\n" + "".join(self.lines[-40:]))
        return self

    def children(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def kill(self) -> None:
        """SIGKILL the whole worker: main process and pool children at once."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 30) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            self.kill()

    def log(self) -> str:
        return "".join(self.lines)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A private ``redis-server`` (nothing on disk unless ``appendonly``), started and stopped by a test."""

    def __init__(self, folder: Path, port: int | None = None, appendonly: bool = False) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.appendonly = appendonly
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> "RedisServer":
        import redis

        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.appendonly else "no", "--dir", str(self.folder),
             "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=2)

        def answers() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited; see {self.folder / 'redis.log'}")
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        try:
            wait_until(answers, 20, f"redis-server on port {self.port}", interval=0.05)
        finally:
            client.close()
        return self

    def stop(self, kill: bool = False) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self, kill: bool = True) -> "RedisServer":
        """Stop the server (SIGKILL: a crash; else SIGTERM) and start it again on the same port and folder."""
        self.stop(kill=kill)
        return self.start()
