"""A teacher's run fills the ledger, ``judgeq distill`` trains on it, the student and a cascade judge fresh items.

All real: the CLI in embedded mode, the LLM teacher over HTTP against the fake
provider (its verdicts follow a rule a small model can mostly learn:
``tests/distill_data.py``), both ledger backends.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger.store import Ledger

from .cli_runner import invoke
from .distill_data import records, teacher_label, write
from .provider import FakeProvider
from .remote_judge import env_for

pytestmark = pytest.mark.timeout(600)  # ~2 min alone, up to 4 on a loaded 2-core machine

TRAIN, FRESH = 600, 200


@pytest.fixture
def provider() -> Any:
    with FakeProvider() as fake:
        yield fake


def submit(path: Path, judge: str, env: dict[str, str]) -> str:
    done = invoke(["submit", str(path), "--judge", judge, "--wait"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()[0].strip()


def test_distill_then_judge_alone_and_in_a_cascade(tmp_path: Path, provider: FakeProvider, ledger_url: str) -> None:
    """~2 min: a 600-item teacher run, training, a 200-item student run and a 200-item cascade run."""
    env = env_for(tmp_path, provider, JUDGEQ_LEDGER_URL=ledger_url)
    config = tmp_path / "judgeq.toml"
    submit(write(tmp_path / "train.jsonl", TRAIN, seed=1), "faithful", env)

    trained = invoke(["distill", "--teacher", "faithful", "--name", "faithful-mini", "--out",
                      str(tmp_path / "models"), "--target-agreement", "0.98", "--json"], env)
    assert trained.returncode == 0, trained.stderr[-3000:]
    report = json.loads(trained.stdout)
    artifact = Path(report["artifact"])
    assert artifact.parent == tmp_path / "models" and artifact.name.startswith("faithful-mini-")
    assert report["rows"]["total"] == TRAIN and report["rows"]["holdout"] > 0
    assert report["teacher"] == "faithful" and report["teacher_version"].startswith("faithful@")
    assert 0.85 <= report["accuracy"] <= 1.0 and report["kappa"] > 0.7
    assert set(report["per_class"]) == {"pass", "fail"} and 0 <= report["ece"] < 0.15
    assert 0.5 < report["threshold"] <= 1 and 0 < report["escalation_share"] < 1

    with config.open("a") as file:
        file.write(f'\n[judges.faithful-mini]\ntype = "distilled"\nartifact = "{artifact}"\n'
                   '\n[judges.faithful-cascade]\ntype = "cascade"\nfirst = "faithful-mini"\nthen = "faithful"\n'
                   'audit = 0.2\n')
    listed = invoke(["judges", "--json"], env)
    assert listed.returncode == 0, listed.stderr[-2000:]
    mini = next(j for j in json.loads(listed.stdout) if j["name"] == "faithful-mini")
    assert mini["kind"] == "local" and mini["metrics"]["accuracy"] == report["accuracy"]
    assert mini["version"].startswith("faithful-mini@")

    fresh = write(tmp_path / "fresh.jsonl", FRESH, seed=2, prefix="f")
    truth = {r["id"]: teacher_label(r) for r in records(FRESH, seed=2, prefix="f")}
    calls_before = provider.count()
    ledger = Ledger(ledger_url)
    student = {row.trace_id: row for row in ledger.scores.scores(submit(fresh, "faithful-mini", env))}
    assert provider.count() == calls_before  # the student calls nobody
    agree = sum(student[t].label == label for t, label in truth.items()) / FRESH
    assert agree >= 0.9, agree
    assert all(row.confidence is not None and 0.5 <= row.confidence <= 1 for row in student.values())

    cascade_run = submit(fresh, "faithful-cascade", env)
    cascade = {row.trace_id: row for row in ledger.scores.scores(cascade_run)}
    calls = provider.count() - calls_before
    threshold = report["threshold"]
    first = [row for row in cascade.values() if row.stage == "first"]
    then = [row for row in cascade.values() if row.stage == "then"]
    audited = [row for row in first if row.audit_label is not None]
    assert len(first) + len(then) == FRESH and then and first and audited
    assert all(row.confidence is not None and row.confidence >= threshold for row in first)
    assert all(row.confidence is not None and row.confidence < threshold for row in then)  # only the unsure
    assert calls == len(then) + len(audited)  # one call per escalated or audited item, none for the rest
    assert all(row.cost_usd > 0 for row in then + audited)
    assert all(row.cost_usd == 0 for row in first if row.audit_label is None)
    assert all(row.audit_label == truth[row.trace_id] for row in audited)
    assert all(row.label == truth[row.trace_id] for row in then)
    assert sum(row.label == truth[t] for t, row in cascade.items()) / FRESH >= agree

    shown = invoke(["report", cascade_run, "--json"], env)
    assert shown.returncode == 0, shown.stderr[-2000:]
    [figures] = json.loads(shown.stdout)["cascades"]
    assert figures["eval"] == "faithful-cascade" and figures["rows"] == FRESH
    assert figures["escalated"] == len(then) and figures["audited"] == len(audited)
    assert figures["escalation_rate"] == pytest.approx(len(then) / FRESH)
    paid = sum(row.cost_usd for row in cascade.values())
    assert figures["cost_usd"] == pytest.approx(paid)
    assert figures["all_remote_usd"] == pytest.approx(paid / calls * FRESH) and figures["saved_usd"] > 0
    agreed = sum(row.audit_label == row.label for row in audited) / len(audited)
    low, high = figures["audit_agreement_ci"]
    assert figures["audit_agreement"] == pytest.approx(agreed) and low <= agreed <= high and high - low > 0
    table = invoke(["report", cascade_run], env)
    assert table.returncode == 0 and "cascades" in table.stdout and "faithful-cascade" in table.stdout
