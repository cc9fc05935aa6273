"""Pacing at a provider's limit: processes that share a key without Redis, per-second limits, warm starts.

Real processes (``judgeq submit`` in embedded mode, ``judgeq worker``) against
the fake provider, which enforces its limit as a sliding window and answers
429 past it; the provider's own record of arrivals is what is asserted.
"""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .processes import run_cli
from .provider import FakeProvider
from .remote_judge import dataset, env_for

pytestmark = pytest.mark.timeout(240)


def ok_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM scores WHERE status = 'ok'").fetchone()[0])


def test_two_embedded_submits_on_one_key_share_its_limit(tmp_path: Path) -> None:
    """Two concurrent submits without a broker, one key: together at the limit, almost no 429s."""
    n, rpm, window = 40, 60, 5.0  # 12 calls/s between the two; each alone would pace itself at all of it
    with FakeProvider(rpm=rpm, window_s=window, latency_s=0.05) as provider:
        env = env_for(tmp_path, provider, limits=f"rpm = {rpm}", JUDGEQ_RATE_PERIOD_S=str(window),
                      JUDGEQ_RATE_DIR=str(tmp_path / "rates"))
        data = dataset(tmp_path / "items.jsonl", n)

        def submit(i: int) -> tuple[int, str]:
            db = tmp_path / f"ledger{i}.db"
            res = run_cli(["submit", str(data), "--judge", "faithful", "--wait", "--json"],
                          {**env, "JUDGEQ_LEDGER_URL": f"sqlite:///{db}"}, timeout=200)
            return res.returncode, res.stderr[-2000:]

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(submit, (1, 2)))
        calls, limited = provider.count(), provider.count(429)
        busiest = provider.max_in_window(window, statuses=(200,))
    assert [code for code, _ in results] == [0, 0], results
    assert ok_rows(tmp_path / "ledger1.db") == ok_rows(tmp_path / "ledger2.db") == n
    assert limited <= 0.02 * calls, f"{limited} of {calls} calls were rate limited"
    assert busiest <= rpm
