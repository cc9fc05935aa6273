"""``judgeq resume`` on remote judges: the run's options survive it, and no item is paid for twice.

A real worker on Redis and PostgreSQL, litellm over HTTP to the fake provider,
whose recorded calls are the provider's bill: one call per item, and the
ledger's spend equal to what those calls cost.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from .cli_runner import invoke
from .processes import Worker
from .provider import FakeProvider
from .remote_judge import dataset, env_for

pytestmark = pytest.mark.timeout(180)


def paid(provider: FakeProvider) -> float:
    """What the provider's answers cost at the test judge's prices ($1 and $2 per million tokens)."""
    return sum(c.tokens_in * 1.0 + c.tokens_out * 2.0 for c in provider.calls if c.status == 200) / 1_000_000


def ledger_rows(url: str, run_id: str) -> tuple[int, int, float]:
    """(rows, cached rows, summed cost) of the run."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            n, cached, cost = conn.execute(sa.text(
                "select count(*), count(*) filter (where cached), coalesce(sum(cost_usd), 0) from scores "
                "where run_id = :r"), {"r": run_id}).one()
    finally:
        engine.dispose()
    return int(n), int(cached), float(cost)


def run_id_of(res: object) -> str:
    out = getattr(res, "stdout", "")
    assert out.strip(), getattr(res, "stderr", "")
    return out.strip().splitlines()[-1]


def test_resume_keeps_no_cache(tmp_path: Path, redis_url: str, pg_url: str) -> None:
    n = 24
    data = dataset(tmp_path / "golden.jsonl", n)
    lost = redis_url.rsplit("/", 1)[0] + "/0"  # a database no worker reads: chunks sent there are lost
    with FakeProvider(latency_s=0.01) as provider:
        env = env_for(tmp_path, provider, JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=pg_url,
                      JUDGEQ_CHUNK_REMOTE="8")
        worker = Worker("remote", env, "--concurrency", "4").wait_ready()
        try:
            first = invoke(["submit", str(data), "--judge", "faithful", "--wait"], env)  # fills the cache
            assert first.returncode == 0, first.stderr
            provider.reset()
            forced = invoke(["submit", str(data), "--judge", "faithful", "--no-cache"],
                            {**env, "JUDGEQ_BROKER_URL": lost})
            run_id = run_id_of(forced)
            resumed = invoke(["resume", run_id, "--wait", "--json"], env)
        finally:
            worker.stop()
        calls = provider.count()
    assert resumed.returncode == 0, resumed.stderr
    (out,) = json.loads(resumed.stdout)["outcomes"]
    assert calls == n and out["judged"] == n and out["cached"] == 0  # --no-cache survived the resume
    assert ledger_rows(pg_url, run_id)[:2] == (n, 0)


def test_resume_while_chunks_are_queued_pays_once_per_item(tmp_path: Path, redis_url: str, pg_url: str) -> None:
    """A resume sends every item without a row again, while the originals still run or wait in the queue.

    Five chunks of eight on four threads, each call taking seconds: four chunks
    run and one waits when ``resume`` re-sends all five; later a second resume
    (``--wait``) re-sends what still has no row. The worker meets duplicates of
    running chunks (the lease defers them) and of finished ones (their rows
    exist), and the provider is asked once per item.
    """
    n = 40
    data = dataset(tmp_path / "golden.jsonl", n)
    with FakeProvider(latency_s=8) as provider:
        env = env_for(tmp_path, provider, timeout=12, JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=pg_url,
                      JUDGEQ_CHUNK_REMOTE="8", JUDGEQ_VISIBILITY_TIMEOUT="60")
        worker = Worker("remote", env, "--concurrency", "4").wait_ready()
        try:
            sent = invoke(["submit", str(data), "--judge", "faithful", "--no-cache"], env)
            run_id = run_id_of(sent)
            again = invoke(["resume", run_id], env)
            # Warm workers answer the first chunk while this resume starts up on a busy machine: what it
            # re-sends is what still had no row then, originals of which still run or wait.
            resent = re.search(r"re-enqueued (\d+) item-judge pairs", again.stderr)
            assert again.returncode == 0 and resent and 8 <= int(resent.group(1)) <= n, again.stderr
            resumed = invoke(["resume", run_id, "--wait", "--json", "--timeout", "120"], env)
        finally:
            worker.stop()
        log = worker.log()
        calls, cost = provider.count(), paid(provider)
    assert resumed.returncode == 0, resumed.stderr + log[-5000:]
    (out,) = json.loads(resumed.stdout)["outcomes"]
    assert out["judged"] == n and out["cached"] == 0
    assert calls == n, f"{calls} calls for {n} items"
    assert "being judged by another delivery" in log  # a duplicate met a running chunk's leases
    rows, _, spend = ledger_rows(pg_url, run_id)
    assert rows == n and spend == pytest.approx(cost) and out["cost_usd"] == pytest.approx(cost)
