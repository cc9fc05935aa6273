"""A remote LLM judge through the fleet: a threads-pool worker, litellm, a local fake provider."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .cli_runner import invoke
from .processes import Worker
from .provider import FakeProvider
from .remote_judge import dataset, env_for

pytestmark = pytest.mark.timeout(240)


def test_remote_judge_with_faults_completes_with_errors_counted(tmp_path: Path, redis_url: str,
                                                                pg_url: str) -> None:
    data = dataset(tmp_path / "golden.jsonl", 60)
    # 500s are retried until they pass (failed calls are bounded by time); unusable answers, 3 in 4 of
    # the answers here, end an item after six of them (0.75**6: about one item in six).
    with FakeProvider(latency_s=0.01, p_500=0.2, p_garbage=0.6, seed=7) as provider:
        # A 30 s retry budget keeps backoff waits under 3 s (a tenth of it) and still far from running out.
        env = env_for(tmp_path, provider, JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=pg_url,
                      JUDGEQ_CHUNK_REMOTE="8", JUDGEQ_RETRY_MAX_S="30")
        worker = Worker("remote", env, "--concurrency", "4").wait_ready()
        try:
            res = invoke(["submit", str(data), "--judge", "faithful", "--wait", "--gate", "faithful>=0.5",
                          "--json"], env)
        finally:
            worker.stop()
    payload = json.loads(res.stdout)
    (fig,) = payload["judges"]
    assert payload["complete"] is True and fig["n"] == 60
    assert 0 < fig["errors"] < 60 and fig["ok"] == 60 - fig["errors"]
    # The gate is on a judge with errors (unusable answers, not an outage): it fails and says why.
    assert res.returncode == 1 and payload["outcomes"][0]["transient_errors"] == 0
    assert "judge errors" in payload["gates"][0]["detail"]
    # Garbage answers were paid for: cost is recorded from the configured prices.
    assert fig["cost_usd"] > 0 and fig["tokens_in"] > 0
    # Errors allowed: the gate is judged on the scored items (3 of 4 are GOOD).
    again = invoke(["report", payload["run"]["id"], "--gate", "faithful>=0.5", "--max-errors", "60", "--json"], env)
    assert again.returncode == 0, again.stdout
    assert json.loads(again.stdout)["judges"][0]["mean"] == pytest.approx(0.75, abs=0.2)
    # The API key is never written to the ledger or the output.
    assert "sk-test-123" not in res.stdout + res.stderr + again.stdout


def test_remote_judge_embedded_mode(tmp_path: Path) -> None:
    """No broker: the same chunk code judges in-process, with a thread pool for remote calls."""
    data = dataset(tmp_path / "golden.jsonl", 40)
    with FakeProvider(latency_s=0.02) as provider:
        env = env_for(tmp_path, provider, JUDGEQ_LEDGER_URL=f"sqlite:///{tmp_path / 'ledger.db'}")
        res = invoke(["submit", str(data), "--judge", "faithful", "--wait", "--gate", "faithful>=0.7", "--json"],
                     env)
        calls = provider.count()
    assert res.returncode == 0, res.stderr
    payload = json.loads(res.stdout)
    (fig,) = payload["judges"]
    assert fig["n"] == 40 and fig["errors"] == 0 and fig["mean"] == pytest.approx(0.75)
    assert calls == 40
