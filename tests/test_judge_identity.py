"""A verdict comes from the judge its version names: no submitter can decide where another's items are judged.

The attack (issue 17, item 1): copy the fleet's judge table, move only ``api_base`` to a server that always
answers "pass" (and drop ``api_key_env``, so the key policy has nothing to refuse), and submit the victim's
dataset. Before the fix the judge's version did not cover the endpoint, so the attacker's verdicts filled the
fleet-wide verdict cache under the victim's version, and a worker's cache of built judges (keyed by the
version a message claims) handed the attacker's judge to the victim's chunks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from judges.config import load_config
from workers.chunk import JudgeCache

from .cli_runner import invoke
from .processes import Worker
from .provider import FakeProvider
from .remote_judge import dataset, env_for

pytestmark = pytest.mark.timeout(240)

N = 40  # 3 in 4 of remote_judge.dataset's answers are GOOD: the honest mean is 0.75


def always_pass(body: dict[str, Any]) -> dict[str, Any]:
    return {"label": "pass", "score": 1.0, "reason": "whatever you sent"}


def attacker_env(tmp_path: Path, victim: dict[str, str], evil: FakeProvider, honest: FakeProvider) -> dict[str, str]:
    """The victim's environment with a copy of its judge table: the same name, only the endpoint moved, no key."""
    table = Path(victim["JUDGEQ_CONFIG"]).read_text()
    forged = table.replace(honest.base_url, evil.base_url).replace('api_key_env = "TEST_PROVIDER_KEY"\n', "")
    assert forged != table and "api_key_env" not in forged
    folder = tmp_path / "attacker"
    folder.mkdir()
    (folder / "judgeq.toml").write_text(forged)
    return {**victim, "JUDGEQ_CONFIG": str(folder / "judgeq.toml")}


def submit(env: dict[str, str], data: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    res = invoke(["submit", str(data), "--judge", "faithful", "--wait", "--json", *extra], env)
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, json.loads(res.stdout)


def test_a_moved_endpoint_cannot_fill_the_victims_verdict_cache(tmp_path: Path) -> None:
    """Embedded submits on one ledger: the verdict cache is shared, and keyed by a version that names the endpoint."""
    data = dataset(tmp_path / "golden.jsonl", N)
    with FakeProvider() as honest, FakeProvider(verdict=always_pass) as evil:
        victim = env_for(tmp_path, honest, JUDGEQ_LEDGER_URL=f"sqlite:///{tmp_path / 'ledger.db'}")
        attacker = attacker_env(tmp_path, victim, evil, honest)
        code, forged = submit(attacker, data)
        assert code == 0 and forged["judges"][0]["mean"] == 1.0 and evil.count() == N

        code, payload = submit(victim, data, "--gate", "faithful>=0.95")
        # The victim's gate is decided by the victim's judge: every item called on the honest provider.
        assert honest.count() == N and evil.count() == N
        assert code == 1 and payload["judges"][0]["mean"] == pytest.approx(0.75)
        assert forged["run"]["judges"]["faithful"] != payload["run"]["judges"]["faithful"]

        # The victim's own verdicts are shared with the victim's next run (the cache still works).
        code, again = submit(victim, data)
        assert honest.count() == N and again["judges"][0]["mean"] == pytest.approx(0.75)
        assert again["judges"][0]["cached"] == N


def test_a_worker_never_serves_a_judge_built_for_another_spec(tmp_path: Path, redis_url: str, pg_url: str) -> None:
    """One fresh worker: the attacker's chunks come first and decide nothing about the victim's."""
    data = dataset(tmp_path / "golden.jsonl", N)
    with FakeProvider() as honest, FakeProvider(verdict=always_pass) as evil:
        victim = env_for(tmp_path, honest, JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=pg_url)
        attacker = attacker_env(tmp_path, victim, evil, honest)
        worker = Worker("remote", victim, "--concurrency", "4").wait_ready()
        try:
            code, _ = submit(attacker, data)
            assert code == 0 and evil.count() == N
            code, payload = submit(victim, data, "--no-cache", "--gate", "faithful>=0.95")
        finally:
            worker.stop()
    assert evil.count() == N and honest.count() == N
    assert code == 1 and payload["judges"][0]["mean"] == pytest.approx(0.75)


def test_the_judge_cache_is_keyed_by_the_whole_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two messages that claim one version but differ in anything get two judges; the same message, one."""
    monkeypatch.setenv("K", "x" * 12)
    table = ('[judges.j]\ntype = "llm"\nmodel = "openai/m"\napi_base = "http://127.0.0.1:9/v1"\n'
             'api_key_env = "K"\nprompt = "inline"\nprompt_text = "Grade {output}"\nrpm = RPM\n')
    messages = []
    for rpm in (60, 120):  # rpm is not part of the version: both messages claim the same one
        (tmp_path / "judgeq.toml").write_text(table.replace("RPM", str(rpm)))
        messages.append(load_config(tmp_path / "judgeq.toml").resolve("j").to_message())
    assert messages[0]["version"] == messages[1]["version"] and messages[0] != messages[1]
    cache = JudgeCache()
    first, second = cache.get(messages[0]), cache.get(messages[1])
    assert first is not second
    assert cache.get(json.loads(json.dumps(messages[0]))) is first
