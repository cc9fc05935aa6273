"""Judge canaries: the same small set judged again and again shows the judge itself moving.

End to end through ``judgeq canary run`` and ``judgeq canary check`` (in this
process, the embedded default, an LLM judge through litellm against the
tests' fake provider): the first run is the reference; a second run of the
same model agrees; then the provider rotates the model behind the alias (the
same judge version, so judgeq's own pin does not see it) and the new model
grades 30 % of the items the other way: the check alerts (exit 1), says the
provider's model changed, and every check is recorded. Then the statistics
alone: a steady judge with run-to-run noise alerts in at most 5 of 100 daily
checks, and a moved one in nearly all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ledger.store import Ledger
from scheduler.canary import compare

from .cli_runner import invoke
from .processes import base_env
from .provider import FakeProvider, default_verdict
from .test_drift_cli import Hook
from .remote_judge import CONFIG as JUDGE

pytestmark = pytest.mark.timeout(180)

N = 60
def config(base: str) -> str:
    return JUDGE.format(base=base, prompt="Grade this answer.", timeout=5, limits="")


def graded(provider: FakeProvider) -> Any:
    """The provider's grading: the old model as the fake's default; the new one fails 30 % of the GOOD answers."""
    def verdict(body: dict[str, Any]) -> dict[str, Any]:
        answer = default_verdict(body)
        text = body["messages"][-1]["content"]
        if provider.served_model == "judge-small-2026-03" and any(f"item {i} " in text for i in range(0, N, 3)):
            answer = {**answer, "label": "fail", "score": 0.0}
        return answer
    return verdict


def test_a_model_rotated_behind_the_alias_is_judge_drift(tmp_path: Path, sqlite_url: str) -> None:
    canary = tmp_path / "canary.jsonl"
    canary.write_text("".join(json.dumps({"id": f"c{i}", "input": "q", "output": f"GOOD item {i} end"}) + "\n"
                              for i in range(N)))
    with FakeProvider(served_model="judge-small-2026-01") as provider:
        provider.verdict = graded(provider)
        (tmp_path / "judgeq.toml").write_text(config(provider.base_url))
        env = base_env(JUDGEQ_LEDGER_URL=sqlite_url, JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"),
                       TEST_PROVIDER_KEY="sk-test-123")

        def check(*extra: str) -> Any:
            return invoke(["canary", "check", "--judge", "faithful", "--json", *extra], env)

        nothing = check()
        assert nothing.returncode == 0 and json.loads(nothing.stdout)["status"] == "no_data"

        def run() -> None:
            done = invoke(["canary", "run", str(canary), "--judge", "faithful"], env)
            assert done.returncode == 0, done.stderr

        run()
        first = json.loads(check().stdout)
        assert first["status"] == "no_data" and "is the first canary run of this version" in first["headline"]
        calls = provider.count()
        run()
        assert provider.count() == calls + N  # the verdict cache bypassed: every item called again
        same = check()
        assert same.returncode == 0, same.stdout
        steady = json.loads(same.stdout)
        assert steady["status"] == "ok" and steady["n"] == N and steady["agreement"] == 1.0
        assert steady["model_changed"] is False

        provider.served_model = "judge-small-2026-03"  # the provider rotates the model; the alias stays
        run()
        moved = check()
        assert moved.returncode == 1, moved.stdout
        alert = json.loads(moved.stdout)
        assert alert["status"] == "alert" and alert["n"] == N
        assert alert["agreement"] == pytest.approx(1 - 20 / N) and alert["agreement_ci"][1] < 0.9
        assert alert["judge_version"] == steady["judge_version"]  # judgeq's own pin did not move
        assert alert["model_changed"] and alert["run_models"] == ["judge-small-2026-03"]
        assert alert["reference_run"] == steady["reference_run"]
        hook = Hook()
        try:
            text = invoke(["canary", "check", "--judge", "faithful", "--webhook", hook.url], env)
        finally:
            hook.close()
        assert text.returncode == 1 and "JUDGE DRIFT: agreement 66.7%" in text.stdout
        (posted,) = hook.bodies  # the alert reached the webhook, as drift's do
        assert posted["body"]["status"] == "alert" and "JUDGE DRIFT" in posted["body"]["text"]
        assert "the provider's model changed: judge-small-2026-01 -> judge-small-2026-03" in text.stdout
        # the newest run named as the reference: nothing to compare it with yet
        itself = check("--reference", alert["run"])
        assert itself.returncode == 0 and json.loads(itself.stdout)["status"] == "no_data"
        assert check("--reference", "r-nope").returncode == 2

    with Ledger(sqlite_url) as ledger:
        recorded = ledger.canary.checks("faithful")
        assert [c.status for c in recorded] == ["no_data", "alert", "alert", "ok", "no_data"]  # newest first
        assert recorded[1].agreement == pytest.approx(1 - 20 / N) and recorded[1].run_models == [
            "judge-small-2026-03"]


def _run(rng: np.random.Generator, truth: np.ndarray, flip: float) -> dict[str, tuple[str | None, float]]:
    labels = truth ^ (rng.random(truth.size) < flip)
    return {f"t{i}": ("pass" if good else "fail", float(good)) for i, good in enumerate(labels)}


def test_a_steady_judge_rarely_alerts_and_a_moved_one_nearly_always() -> None:
    rng = np.random.default_rng(7)
    truth = rng.random(200) < 0.7
    reference = _run(rng, truth, 0.02)
    # 100 daily checks of a judge whose own noise flips 2 % of labels a run (agreement about 96 %)
    steady = sum(compare(reference, _run(rng, truth, 0.02)).alerts(0.1) for _ in range(100))
    assert steady <= 5
    # a judge that now grades 20 % of the items the other way
    moved = sum(compare(reference, _run(rng, truth, 0.2)).alerts(0.1) for _ in range(100))
    assert moved >= 95
    # scores only (no labels): the mean absolute difference decides
    scores = {f"t{i}": (None, 0.5) for i in range(50)}
    shifted = {f"t{i}": (None, 0.5 + 0.3 + 0.01 * (i % 3)) for i in range(50)}
    assert compare(scores, shifted).alerts(0.1) and not compare(scores, dict(scores)).alerts(0.1)
    assert compare({}, scores).n == 0
