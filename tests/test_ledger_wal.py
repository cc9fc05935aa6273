"""A new SQLite ledger is switched to WAL even while another connection holds the file's lock.

SQLite does not call its busy handler for that switch, so ``ledger.engine``
retries it (tenacity) until the busy timeout; a real second connection holds
an exclusive lock here, released from another thread.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

import ledger.engine
from ledger.engine import connect, create_ledger_engine
from ledger.errors import LedgerUnavailable

pytestmark = pytest.mark.timeout(60)


def _locked_file(path: Path) -> sqlite3.Connection:
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO t VALUES (1)")
    return holder


def test_the_switch_to_wal_waits_for_a_held_lock(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    holder = _locked_file(path)
    released = threading.Event()

    def release() -> None:
        time.sleep(0.5)
        holder.execute("COMMIT")
        released.set()

    threading.Thread(target=release, daemon=True).start()
    engine = create_ledger_engine(f"sqlite:///{path}")
    with connect(engine) as conn:
        assert released.is_set()  # it waited for the lock rather than failing at once
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()
    holder.close()


def test_a_lock_held_past_the_busy_timeout_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger.engine, "SQLITE_BUSY_TIMEOUT_S", 1)
    path = tmp_path / "ledger.db"
    holder = _locked_file(path)
    engine = create_ledger_engine(f"sqlite:///{path}")
    started = time.monotonic()
    with pytest.raises(LedgerUnavailable, match="database is locked"):
        connect(engine)
    assert time.monotonic() - started >= 1  # retried for the whole timeout
    engine.dispose()
    holder.close()
