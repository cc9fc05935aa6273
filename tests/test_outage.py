"""A provider outage: ridden out within the retry budget, reported as infrastructure past it, then resumed.

The fake provider goes down (503s, or a closed port that refuses connections)
and comes back. Short settings make seconds stand for minutes: a retry budget
(``JUDGEQ_RETRY_MAX_S``) of a few seconds, whose backoff is capped at a tenth
of it, and a hand-back threshold (``JUDGEQ_HANDBACK_S``) under that cap, so
that long waits go back to the queue as they do in production. Embedded mode
runs on SQLite, the fleet (a real worker process) on PostgreSQL.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from .cli_runner import invoke
from .processes import Started, Worker, start_cli, wait_until
from .provider import FakeProvider, last_user_text
from .remote_judge import dataset, env_for

pytestmark = pytest.mark.timeout(180)

N = 24


def outage_env(tmp_path: Path, provider: FakeProvider, budget_s: float, **extra: str) -> dict[str, str]:
    return env_for(tmp_path, provider, timeout=2, JUDGEQ_CHUNK_REMOTE="8", JUDGEQ_RETRY_MAX_S=str(budget_s),
                   JUDGEQ_HANDBACK_S="0.3", **extra)


@contextmanager
def fleet(env: dict[str, str]) -> Iterator[tuple[dict[str, str], Worker]]:
    """A remote worker for ``env``, stopped on the way out."""
    worker = Worker("remote", env, "--concurrency", "4").wait_ready()
    try:
        yield env, worker
    finally:
        worker.stop()


def submit(data: Path, env: dict[str, str], *args: str) -> Started:
    return start_cli(["submit", str(data), "--judge", "faithful", "--wait", "--json", "--timeout", "120", *args], env)


def finish(proc: Started) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    out, err = proc.communicate(timeout=150)
    assert out.strip(), err
    assert proc.returncode is not None
    return proc.returncode, json.loads(out), err


def rows(url: str, run_id: str) -> list[sa.Row]:  # type: ignore[type-arg]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(
                "select trace_id, status, error_kind, attempts, cost_usd from scores where run_id = :r"),
                {"r": run_id}))
    finally:
        engine.dispose()


def failures(provider: FakeProvider) -> dict[str, int]:
    """503s by item (the dataset's outputs are "... answer <i>")."""
    counts: dict[str, int] = {}
    for call in provider.calls:
        found = re.search(r"answer (\d+)", last_user_text(call.body or {}))
        if call.status == 503 and found:
            counts[found.group(1)] = counts.get(found.group(1), 0) + 1
    return counts


def paid(provider: FakeProvider) -> float:
    """What the provider's answers cost at the test judge's prices ($1 and $2 per million tokens)."""
    return sum(c.tokens_in * 1.0 + c.tokens_out * 2.0 for c in provider.calls if c.status == 200) / 1_000_000


# -- (a) an outage shorter than the budget: every item ends ok --------------------------------------


def test_embedded_outage_shorter_than_the_budget_ends_every_item_ok(tmp_path: Path) -> None:
    data = dataset(tmp_path / "golden.jsonl", N)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with FakeProvider(latency_s=0.01) as provider:
        env = outage_env(tmp_path, provider, budget_s=30, JUDGEQ_LEDGER_URL=url)
        provider.down("503")
        proc = submit(data, env, "--gate", "faithful>=0.5")
        # Down until every item failed more often than the attempts setting (6) allows answers.
        wait_until(lambda: min(failures(provider).values(), default=0) > 6 and len(failures(provider)) == N, 90,
                   "every item to fail 7 times")
        provider.up()
        code, payload, err = finish(proc)
    (out,) = payload["outcomes"]
    assert code == 0, err
    assert out["judged"] == N and out["judge_error"] == 0 and out["transient_errors"] == 0
    assert payload["gates"][0]["passed"]
    stored = rows(url, payload["run"]["id"])
    assert len(stored) == N and all(r.status == "ok" for r in stored)
    assert min(r.attempts for r in stored) > 7  # seven failures and the answer, at least


def test_fleet_outage_of_refused_connections_shorter_than_the_budget(tmp_path: Path, redis_url: str,
                                                                     pg_url: str) -> None:
    data = dataset(tmp_path / "golden.jsonl", N)
    with FakeProvider(latency_s=0.01) as provider:
        with fleet(outage_env(tmp_path, provider, budget_s=40, JUDGEQ_BROKER_URL=redis_url,
                              JUDGEQ_LEDGER_URL=pg_url)) as (env, worker):
            provider.down("refuse")
            proc = submit(data, env)
            wait_until(lambda: "handed back" in worker.log(), 90, "the first items handed back")
            # Longer than six attempts with backoff up to 8 s could last (15.5 s): the old policy's bound.
            time.sleep(16)
            provider.up()
            code, payload, err = finish(proc)
        answered = provider.count(200)
    (out,) = payload["outcomes"]
    assert code == 0, err
    assert out["judged"] == N and out["judge_error"] == 0
    assert answered == N  # refused connections reach nobody; then one answer per item
    assert all(r.status == "ok" and r.attempts > 1 for r in rows(pg_url, payload["run"]["id"]))


# -- (b) an outage longer than the budget: exit 3, then resume judges every item --------------------------


def test_fleet_outage_longer_than_the_budget_exits_3_and_resume_completes(tmp_path: Path, redis_url: str,
                                                                          pg_url: str) -> None:
    data = dataset(tmp_path / "golden.jsonl", N)
    with FakeProvider(latency_s=0.01) as provider:
        with fleet(outage_env(tmp_path, provider, budget_s=4, JUDGEQ_BROKER_URL=redis_url,
                              JUDGEQ_LEDGER_URL=pg_url)) as (env, _):
            provider.down("refuse")
            # Gated: a gate over items that were never judged must not read as a quality regression (exit 1).
            code, payload, err = finish(submit(data, env, "--gate", "faithful>=0.5"))
            run_id = payload["run"]["id"]
            before = rows(pg_url, run_id)
            gated_later = invoke(["gate", run_id, "--gate", "faithful>=0.5"], env)  # the same answer afterwards
            provider.up()
            resumed = invoke(["resume", run_id, "--wait", "--json", "--timeout", "120"], env)
        answered = provider.count(200)
    assert code == 3, err
    assert "judge faithful: 24 of 24 rows are transient errors (the provider was unreachable" in err
    assert f"'judgeq resume {run_id}' retries them" in err
    assert payload["outcomes"][0]["transient_errors"] == N
    assert len(before) == N and {(r.status, r.error_kind) for r in before} == {("error", "transient")}
    assert gated_later.returncode == 3 and "provider was unreachable" in gated_later.stderr, gated_later.stderr

    assert resumed.returncode == 0, resumed.stderr
    again = json.loads(resumed.stdout)
    (out,) = again["outcomes"]
    assert again["complete"] and out["judged"] == N and out["judge_error"] == 0 and out["transient_errors"] == 0
    after = rows(pg_url, run_id)
    assert len(after) == N and all(r.status == "ok" for r in after)
    tried = {r.trace_id: r.attempts for r in before}
    assert all(r.attempts == tried[r.trace_id] + 1 for r in after)  # the outage's attempts carried, one more
    assert answered == N


def test_embedded_outage_longer_than_the_budget_exits_3_and_resume_completes(tmp_path: Path) -> None:
    data = dataset(tmp_path / "golden.jsonl", N)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with FakeProvider(latency_s=0.01) as provider:
        env = outage_env(tmp_path, provider, budget_s=3, JUDGEQ_LEDGER_URL=url)
        provider.down("503")
        code, payload, err = finish(submit(data, env))  # ungated: it used to exit 0
        run_id = payload["run"]["id"]
        provider.up()
        status = invoke(["status", run_id], env)
        resumed = invoke(["resume", run_id, "--wait", "--json", "--timeout", "120"], env)
        cost = paid(provider)
    assert code == 3 and "provider was unreachable" in err, err
    assert f"{N}/{N} rows" in status.stdout and f"{N} errors" in status.stdout
    assert resumed.returncode == 0, resumed.stderr
    (out,) = json.loads(resumed.stdout)["outcomes"]
    assert out["judged"] == N and out["judge_error"] == 0 and out["not_yet_judged"] == 0
    assert out["cost_usd"] == pytest.approx(cost)
    final = invoke(["status", run_id], env)
    assert f"done, {N}/{N} rows" in final.stdout and f"{N} ok, 0 errors" in final.stdout
