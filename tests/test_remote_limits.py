"""Remote judges at the provider's limit: real Redis, real worker processes, the fake provider.

The provider counts ``rpm`` requests per ``window_s``; workers count a judge's
``rpm`` per ``JUDGEQ_RATE_PERIOD_S``. Setting both to the same few seconds
makes "per minute" a short window, so a test sees many windows in seconds.
A short window leaves little slack for jitter in absolute time (headroom/2 of
the window), so the limit tests use a headroom of 0.2 where production uses
0.03 of a 60 s period (0.9 s of slack).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from .ledger_probe import rows_and_keys
from .cli_runner import invoke
from .processes import Worker
from .provider import FakeProvider
from .remote_judge import dataset, env_for

pytestmark = pytest.mark.timeout(150)

def submit(data: Path, env: dict[str, str], *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    res = invoke(["submit", str(data), "--judge", "faithful", "--wait", "--json", "--timeout", "120", *args],
                 env)
    assert res.stdout.strip(), res.stderr
    return res.returncode, json.loads(res.stdout)


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_share_one_limit(tmp_path: Path, redis_url: str, pg_url: str, workers: int) -> None:
    rpm, window, n = 60, 3.0, 180
    data = dataset(tmp_path / "golden.jsonl", n)
    with FakeProvider(rpm=rpm, window_s=window, latency_s=0.1) as provider:
        env = env_for(tmp_path, provider, limits=f"rpm = {rpm}", JUDGEQ_BROKER_URL=redis_url,
                      JUDGEQ_LEDGER_URL=pg_url, JUDGEQ_CHUNK_REMOTE="8", JUDGEQ_RATE_PERIOD_S=str(window),
                      JUDGEQ_RATE_HEADROOM="0.2")
        fleet = [Worker("remote", env, "--concurrency", "8") for _ in range(workers)]
        try:
            for w in fleet:
                w.wait_ready()
            code, payload = submit(data, env)
        finally:
            for w in fleet:
                w.stop()
        calls, limited = provider.count(), provider.count(429)
        busiest = provider.max_in_window(window)
    assert code == 0 and payload["complete"], payload
    assert payload["outcomes"][0]["judged"] == n and payload["outcomes"][0]["judge_error"] == 0
    assert rows_and_keys(pg_url, payload["run"]["id"]) == (n, n)
    # The documented bound: no window of the period sees more than rpm (1 - h/2) + 1 = 55 by Redis's
    # clock. Arrivals at the provider add the jitter between admission and arrival (CPU contention: four
    # test processes on two cores, a process's first call): up to 0.5 s, 8 requests at 16/s. A limiter
    # that lost its pacing shows far more (a burst of the whole fleet's concurrency, 8 per worker).
    assert busiest <= rpm * (1 - 0.2 / 2) + 1 + 8, busiest
    assert limited <= 0.02 * calls, (limited, calls)


def test_fault_mix_every_item_ends_once(tmp_path: Path, redis_url: str, pg_url: str) -> None:
    n = 120
    data = dataset(tmp_path / "golden.jsonl", n)
    with FakeProvider(latency_s=0.02, p_500=0.2, p_garbage=0.05, p_429=0.05, retry_after_s=1, retry_after_ms=True,
                      p_timeout=0.02, timeout_sleep_s=5, seed=3) as provider:
        # A short hand-back threshold: every Retry-After goes back to the queue rather than being slept.
        env = env_for(tmp_path, provider, timeout=1, JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=pg_url,
                      JUDGEQ_CHUNK_REMOTE="8", JUDGEQ_HANDBACK_S="0.5")
        fleet = [Worker("remote", env, "--concurrency", "8") for _ in range(2)]
        try:
            for w in fleet:
                w.wait_ready()
            code, payload = submit(data, env)
            log = "".join(w.log() for w in fleet)
        finally:
            for w in fleet:
                w.stop()
        outcomes = {c.outcome for c in provider.calls}
    assert "refused a task message" not in log  # a refused hand-back is acknowledged: its items are lost
    assert payload["complete"] and code == 0, payload
    assert {"500", "garbage", "429", "timeout"} <= outcomes
    assert "handed back" in log
    (out,) = payload["outcomes"]
    assert out["judged"] + out["judge_error"] == n and out["not_yet_judged"] == 0
    assert out["judge_error"] <= 3  # failed calls retried for the time budget, six answers: nearly all get through
    assert rows_and_keys(pg_url, payload["run"]["id"]) == (n, n)
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        retried = conn.execute(text("select count(*) from scores where attempts > 1")).scalar_one()
        bad = conn.execute(text("select count(*) from scores where status='error' and (attempts < 1 or error is null)"
                                )).scalar_one()
    engine.dispose()
    assert retried > 0 and bad == 0


def test_an_item_handed_back_after_an_unusable_answer_ends_once(tmp_path: Path, redis_url: str, pg_url: str) -> None:
    """A hand-back carries everything a record spent (judges.retry.Prior), unusable answers included.

    The script: a garbage answer (retried after a short backoff, slept), then a 429 asking for 1 s
    (longer than JUDGEQ_HANDBACK_S: handed back with its one unusable answer), then a verdict. The
    handed-back chunk must be admitted by the worker that receives it, not refused and acknowledged.
    """
    data = dataset(tmp_path / "golden.jsonl", 1)
    with FakeProvider(script=["garbage", "429"], retry_after_s=1) as provider:
        env = env_for(tmp_path, provider, JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=pg_url,
                      JUDGEQ_HANDBACK_S="0.5")
        worker = Worker("remote", env, "--concurrency", "2").wait_ready()
        try:
            res = invoke(["submit", str(data), "--judge", "faithful", "--wait", "--json", "--timeout", "20"], env)
        finally:
            worker.stop()
        outcomes = [c.outcome for c in provider.calls]
    log = worker.log()
    assert "handed back" in log and "refused a task message" not in log, log[-3000:]
    assert res.returncode == 0 and json.loads(res.stdout)["complete"], res.stdout + res.stderr
    assert outcomes == ["garbage", "429", "ok"]
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        row = conn.execute(text("select status, attempts from scores")).one()
    engine.dispose()
    assert tuple(row) == ("ok", 3)


def test_auth_failure_opens_the_circuit_exits_2_and_resume_retries_it_once_the_key_is_fixed(
        tmp_path: Path, redis_url: str, pg_url: str) -> None:
    """A key the provider refuses is configuration (exit 2, scheduler/causes.py), not a failed gate; fixed on the
    workers, ``resume --retry-errors account,circuit`` closes the run's circuit and judges every row again."""
    n = 200
    data = dataset(tmp_path / "golden.jsonl", n)
    with FakeProvider(require_key="sk-the-right-one") as provider:
        env = env_for(tmp_path, provider, JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=pg_url,
                      JUDGEQ_CHUNK_REMOTE="8")
        worker = Worker("remote", env, "--concurrency", "4").wait_ready()
        try:
            res = invoke(["submit", str(data), "--judge", "faithful", "--wait", "--gate", "faithful>=0.5"], env)
        finally:
            worker.stop()
        calls = provider.count()
        engine = create_engine(pg_url)
        with engine.connect() as conn:
            kinds = dict(conn.execute(text("select error_kind, count(*) from scores group by error_kind")).all())
            sample = conn.execute(text("select error from scores where error_kind='circuit' limit 1")).scalar_one()
        assert res.returncode == 2, res.stdout + res.stderr
        assert "rows are circuit errors" in res.stderr and "--retry-errors account,circuit" in res.stderr
        assert "sk-test-123" not in res.stdout + res.stderr
        assert calls <= 4 * 8 + 3  # the first chunks' calls, then none: the circuit is open
        assert sum(kinds.values()) == n and set(kinds) == {"account", "circuit"}
        assert "CircuitOpen" in sample and "AuthenticationError" in sample

        run_id = res.stdout.strip().splitlines()[0]
        fixed_env = {**env, "TEST_PROVIDER_KEY": "sk-the-right-one"}
        worker = Worker("remote", fixed_env, "--concurrency", "4").wait_ready()
        try:
            fixed = invoke(["resume", run_id, "--retry-errors", "account,circuit", "--wait"], fixed_env)
        finally:
            worker.stop()
        with engine.connect() as conn:
            after = dict(conn.execute(text("select status, count(*) from scores group by status")).all())
        engine.dispose()
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert after == {"ok": n}


def test_cache_second_run_makes_no_calls_and_a_new_prompt_does(tmp_path: Path, redis_url: str,
                                                               pg_url: str) -> None:
    n = 40
    data = dataset(tmp_path / "golden.jsonl", n)
    with FakeProvider(latency_s=0.01) as provider:
        env = env_for(tmp_path, provider, JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=pg_url,
                      JUDGEQ_CHUNK_REMOTE="8")
        worker = Worker("remote", env, "--concurrency", "4").wait_ready()
        try:
            _, first = submit(data, env)
            after_first = provider.count()
            _, second = submit(data, env)
            after_second = provider.count()
            _, forced = submit(data, env, "--no-cache")
            after_forced = provider.count()
            env = env_for(tmp_path, provider, prompt="Grade this answer strictly.", JUDGEQ_BROKER_URL=redis_url,
                          JUDGEQ_LEDGER_URL=pg_url, JUDGEQ_CHUNK_REMOTE="8")
            _, changed = submit(data, env)
            after_changed = provider.count()
        finally:
            worker.stop()
    assert after_first == n and first["outcomes"][0]["judged"] == n
    assert after_second == n, "an identical run made calls"
    (hit,) = second["outcomes"]
    assert hit["cached"] == n and hit["judged"] == 0 and hit["cost_usd"] == 0
    assert hit["saved_usd"] == pytest.approx(first["outcomes"][0]["cost_usd"])
    assert second["judges"][0]["mean"] == first["judges"][0]["mean"]
    assert after_forced == 2 * n and forced["outcomes"][0]["cached"] == 0
    assert after_changed == 3 * n and changed["outcomes"][0]["cached"] == 0
    assert changed["run"]["judges"]["faithful"] != first["run"]["judges"]["faithful"]


def test_max_cost_skips_the_rest_for_budget(tmp_path: Path) -> None:
    """Embedded mode (the same chunk code, in-process limiter and circuit): the budget stops spending."""
    n = 300
    data = dataset(tmp_path / "golden.jsonl", n)
    with FakeProvider(latency_s=0.01) as provider:
        env = env_for(tmp_path, provider, JUDGEQ_LEDGER_URL=f"sqlite:///{tmp_path / 'ledger.db'}",
                      JUDGEQ_CHUNK_REMOTE="8")
        code, payload = submit(data, env, "--max-cost", "0.002")
        calls = provider.count()
    (out,) = payload["outcomes"]
    assert code == 0 and payload["complete"]
    assert out["skipped_budget"] > 0 and out["judged"] + out["skipped_budget"] == n
    assert calls == out["judged"] < n
    assert out["cost_usd"] >= 0.002
