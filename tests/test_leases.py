"""Item leases: one delivery calls the provider for an item at a time, and a call paid twice is still counted.

The lease contract runs against Redis (the fleet's, real server) and the
in-process implementation (embedded mode). The last test runs a remote chunk
in this process (the worker's code: ``workers.chunk.run_chunk``), litellm over
HTTP to the fake provider, and a SQLite ledger.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from judges.config import load_config
from judges.limits import LocalLimiter
from ledger import Ledger, Run, ScoreIn
from workers.chunk import JudgeCache, run_chunk
from workers.circuit import LocalCircuit
from workers.lease import UNREACHABLE_RETRY_S, Leases, LocalLeases, RedisLeases
from runs.message import ChunkMessage
from workers.remote import RemoteServices
from workers.settings import WorkerSettings

from .processes import free_port
from .provider import FakeProvider, default_verdict, last_user_text
from .remote_judge import CONFIG

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["local", "redis"])
def leases(request: pytest.FixtureRequest) -> Iterator[Leases]:
    if request.param == "local":
        yield LocalLeases()
        return
    import redis

    client = redis.Redis.from_url(request.getfixturevalue("redis_url"), socket_timeout=5)
    yield RedisLeases(client)
    client.close()


def test_a_leased_item_is_busy_for_another_delivery_until_given_back(leases: Leases) -> None:
    first = leases.take("r", "j", ["a", "b"], ttl_s=30)
    second = leases.take("r", "j", ["a", "b", "c"], ttl_s=30)
    assert first.ids == {"a", "b"} and second.ids == {"c"}
    assert set(second.busy_s) == {"a", "b"} and all(25 < s <= 30 for s in second.busy_s.values())
    assert leases.take("r", "other-judge", ["a"], ttl_s=30).ids == {"a"}  # keyed per run, judge and item
    leases.release(first)
    assert leases.take("r", "j", ["a", "b", "c"], ttl_s=30).ids == {"a", "b"}  # c is still the second's


def test_a_lease_expires_and_a_stale_holder_cannot_give_back_the_next_one(leases: Leases) -> None:
    stale = leases.take("r", "j", ["a"], ttl_s=0.2)
    time.sleep(0.3)  # the holder stalled past its lease
    fresh = leases.take("r", "j", ["a"], ttl_s=30)
    assert fresh.ids == {"a"}
    leases.release(stale)
    assert leases.take("r", "j", ["a"], ttl_s=30).ids == set()


def test_an_unreachable_redis_leases_nothing() -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    lease = RedisLeases(client).take("r", "j", ["a", "b"], ttl_s=30)
    assert lease.ids == set() and lease.busy_s == {"a": UNREACHABLE_RETRY_S, "b": UNREACHABLE_RETRY_S}


def test_a_verdict_whose_item_got_a_row_meanwhile_adds_its_cost_to_that_row(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another delivery wrote the item's row while this one called (its lease had run out under it)."""
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.runs.create_run(Run(id="run-1", kind="offline", dataset_name="golden", n_items=2, expected=2))
    other = {"cost_usd": 0.5, "tokens_in": 100, "tokens_out": 10, "label": "written first"}

    def verdict(body: dict[str, Any]) -> dict[str, Any]:
        if "late" in last_user_text(body):  # the other delivery's row lands during this call
            ledger.scores.write_scores([ScoreIn(run_id="run-1", trace_id="late", eval="faithful", judge_version="v",
                                         dataset="d", score=0.0, **other)])
        return default_verdict(body)

    monkeypatch.setenv("TEST_PROVIDER_KEY", "sk-test-123")
    with FakeProvider(verdict=verdict) as provider:
        (tmp_path / "judgeq.toml").write_text(CONFIG.format(base=provider.base_url, limits="", timeout=5,
                                                            prompt="Grade this answer."))
        judge = load_config(tmp_path / "judgeq.toml").resolve("faithful").to_message()
        allowed = WorkerSettings(key_endpoints=json.dumps({"TEST_PROVIDER_KEY": [provider.base_url]}))
        services = RemoteServices(limiter=LocalLimiter(), circuit=LocalCircuit(), settings=allowed,
                                  requeue=lambda message, countdown: None)
        message = ChunkMessage(run_id="run-1", dataset="d", judge=judge, no_cache=True,
                               records=[{"id": "late", "output": "GOOD late"}, {"id": "alone", "output": "GOOD"}])
        run_chunk(message, ledger, JudgeCache(services), services)
        calls = [c for c in provider.calls if c.status == 200]
    rows = {row.trace_id: row for row in ledger.scores.scores("run-1")}
    ledger.close()
    by_item = {last_user_text(c.body or {}).rsplit(" ", 1)[-1]: c for c in calls}  # "... GOOD late", "... GOOD"
    late, alone = by_item["late"], by_item["GOOD"]
    assert len(calls) == 2 and set(rows) == {"late", "alone"}
    assert rows["late"].label == "written first"  # the first verdict stands ...
    assert rows["late"].cost_usd == pytest.approx(0.5 + (late.tokens_in + 2 * late.tokens_out) / 1e6)
    assert rows["late"].tokens_in == 100 + late.tokens_in  # ... and what the second one cost is counted
    assert rows["alone"].cost_usd == pytest.approx((alone.tokens_in + 2 * alone.tokens_out) / 1e6)
