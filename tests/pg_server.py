"""A private PostgreSQL server for tests that stop or restart the database.

Made with the installed ``initdb`` and ``pg_ctl`` in a temporary folder, on a
free port, trust auth, without fsync; the machine's shared server is never
touched. PostgreSQL refuses to run as root, so under root the server runs as
the ``postgres`` user (its folder handed to that user).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from .processes import free_port


def _bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise AssertionError(f"PostgreSQL's {name} is not installed (looked in PATH and /usr/lib/postgresql/*/bin)")
    return found


class PostgresServer:
    """``start()``, ``stop()``, ``start()`` again: the same data, the same port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="judgeq-pg-"))
        self.data = self.folder / "data"
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            self._as = {"user": "postgres", "group": "postgres"}
        self._run([_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                   "--no-sync", "--no-instructions"])

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, argv: list[str]) -> None:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=60, **self._as)
        if res.returncode != 0:
            raise AssertionError(f"{' '.join(argv[:2])} failed: {res.stdout[-2000:]}{res.stderr[-2000:]}")

    def start(self) -> "PostgresServer":
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run([_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "log"), "-o", options, "-w",
                   "-t", "30", "start"])
        return self

    def stop(self) -> None:
        """A fast shutdown: sessions are ended, as on a real restart."""
        if (self.data / "postmaster.pid").exists():
            self._run([_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop"])

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
