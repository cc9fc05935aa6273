"""A pre-imported interpreter that forks one real process per ``judgeq`` command a test runs (tests only).

Each CLI call of the suite used to start a fresh interpreter and import
SQLAlchemy, Celery, pydantic and typer again: 1-3 s of a 2-core machine per
call, hundreds of calls. The zygote imports them once (and judgeq's CLI,
whose modules read nothing from the environment at import), then serves
calls over a Unix socket: for each it forks a process that takes the
caller's environment, working directory, stdout and stderr (the pipe ends
travel over the socket, ``SCM_RIGHTS``) and runs ``judgeq ARGS`` to its
normal end (atexit handlers, thread joins and flushes included). The call
is a real process with its own exit code; only the imports are shared.
Workers, beat and the commands a test signals or waits on are forked the
same way (``tests.processes.start_session`` and ``start_cli``), without
waiting: the keeper reports the pid at once (once a command asked to be a
session leader is one) and the exit status when it comes.

Layout per call: the zygote forks a *keeper*, which forks the *command* and
reports its pid, then its exit status, back on the call's connection (the
zygote itself reaps its keepers automatically, so it never blocks). litellm
is imported too (it starts no thread at import, so forking after it is safe)
and the heap frozen, as a warm judgeq process does (``judges.llm.warm_up``):
an embedded submit of an LLM judge no longer pays 3-6 s of import per call.
A test that times that import or the warm-up passes ``JUDGEQ_TEST_ZYGOTE=0``
in its environment and gets a fresh interpreter, as a user would.
"""

from __future__ import annotations

import array
import json
import os
import signal
import socket
import struct
import sys
from typing import Any

#: Imported once in the zygote; everything else a command needs it imports itself.
PRELOAD = (
    "sqlalchemy", "sqlalchemy.dialects.postgresql", "sqlalchemy.dialects.sqlite", "sqlmodel", "psycopg",
    "pydantic", "pydantic_settings", "typer", "rich.console", "rich.table", "rich.progress",
    "celery", "kombu", "kombu.transport.redis", "redis", "numpy", "scipy.stats",
    "cli.main", "ledger.store", "ledger.models", "judges.config", "workers.dispatch",
    # alembic, for the ledgers that commands create (most tests' ledger is new): 0.4 s a call otherwise.
    "alembic.command", "alembic.config", "alembic.autogenerate", "alembic.runtime.migration", "alembic.script",
    # The distilled judges' (each of their CLI calls would import scikit-learn again: seconds).
    "sklearn.compose", "sklearn.feature_extraction.text", "sklearn.linear_model", "sklearn.pipeline",
    "sklearn.model_selection", "sklearn.metrics", "skops.io",
)

#: What the keeper answers on the call's connection: b"p" and the command's pid, then b"x" and its wait status.
STATUS = struct.Struct("!ci")


def send_request(sock: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """The caller's side: the request (JSON, length first) with the command's stdout and stderr."""
    payload = json.dumps(request).encode()
    data = struct.pack("!I", len(payload)) + payload
    sent = sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    if sent < len(data):
        sock.sendall(data[sent:])


def _recv_request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    fds = array.array("i")
    head, ancdata, _flags, _addr = conn.recvmsg(4 + 65536, socket.CMSG_LEN(8 * fds.itemsize))
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    (size,) = struct.unpack("!I", head[:4])
    body = head[4:]
    while len(body) < size:
        more = conn.recv(size - len(body))
        if not more:
            raise EOFError("the caller went away mid-request")
        body += more
    return json.loads(body), list(fds)


def serve(path: str) -> tuple[dict[str, Any], list[int], socket.socket]:
    """The zygote's loop; returns only in a forked command process, with its request."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # keepers are reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    listener.settimeout(2.0)
    parent = os.getppid()
    print("ready", flush=True)
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            if os.getppid() != parent:  # the test process is gone (killed): so is the need for a zygote
                os._exit(0)
            continue
        conn.setblocking(True)
        if os.fork() != 0:
            conn.close()
            continue
        # The keeper.
        listener.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        request, fds = _recv_request(conn)
        started_r, started_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(started_r)
            if request.get("session"):  # a long-running command stopped with killpg: Popen's start_new_session
                os.setsid()
            os.close(started_w)
            return request, fds, conn
        os.close(started_w)
        os.read(started_r, 1)  # EOF once the command has its session: a killpg on the pid sent next reaches it
        os.close(started_r)
        for fd in fds:
            os.close(fd)
        conn.sendall(STATUS.pack(b"p", pid))
        _, status = os.waitpid(pid, 0)
        conn.sendall(STATUS.pack(b"x", status))
        os._exit(0)


#: CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH: what lets root ignore file modes.
FILE_OVERRIDE_CAPABILITIES = (1, 2)


def drop_file_override_capabilities() -> None:
    """Give up root's power to ignore file modes, in this process and in any program it executes.

    Used for a command that must meet a read-only file as a user would, when
    the tests run as root: cleared from this process's effective and
    permitted sets (``capset``), and from the bounding set (``prctl``), which
    an ``exec`` (a fresh interpreter's ``preexec_fn``) would otherwise restore.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    mask = 0
    for capability in FILE_OVERRIDE_CAPABILITIES:
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
        mask |= 1 << capability
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # {effective, permitted, inheritable} for capabilities 0-31, then 32-63
    if libc.capget(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    for index in range(3):
        data[index] &= ~mask & 0xFFFFFFFF
    if libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def become(request: dict[str, Any], fds: list[int], conn: socket.socket) -> None:
    """In the command process: take the caller's streams, environment, directory (and privileges)."""
    conn.close()
    if request.get("unprivileged"):
        drop_file_override_capabilities()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    stdout, stderr = fds
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(stdout, 1)
    os.dup2(stderr, 2)
    for fd in (devnull, stdout, stderr):
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.path[0] = ""  # as ``python -c``: the working directory first
    for entry in reversed(request["env"].get("PYTHONPATH", "").split(os.pathsep)):
        if entry and entry not in sys.path:
            sys.path.insert(1, entry)
    sys.argv = ["-c", *request["args"]]  # as ``python -c "from cli.main import main; main()" ARGS``
    main_module = sys.modules["__main__"]
    main_module.__package__ = None  # else click names the program "python -m tests.-c" in its usage lines
    main_module.__spec__ = None


def main() -> None:
    for name in PRELOAD:
        __import__(name)
    from judges.llm import load_litellm, settle_heap

    load_litellm()
    settle_heap()
    request, fds, conn = serve(sys.argv[1])
    become(request, fds, conn)
    from cli.main import main as judgeq

    judgeq()


if __name__ == "__main__":
    main()
