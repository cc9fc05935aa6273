"""Reading /proc: CPU seconds and memory of process trees, sampled while a benchmark runs."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


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
        from benchmarks.fleet import redis_client  # fleet builds on this module, not the other way

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
