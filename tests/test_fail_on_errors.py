"""A waited run that ends with judge errors says so on stderr; ``--fail-on-errors`` makes it exit 1.

The real CLI in embedded mode, an LLM judge against the fake provider, which
answers prose instead of a verdict for every item whose output says "bad"
(2 of 8): those rows end as judge errors of kind "answer", not transient, so
nothing exits 3 and the exit code is the gate's.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from .cli_runner import invoke
from .provider import FakeProvider, default_verdict, last_user_text
from .remote_judge import dataset, env_for

pytestmark = pytest.mark.timeout(180)


def prose_for_bad(body: dict[str, Any]) -> dict[str, Any] | str:
    """A verdict for most items; for those saying "bad", an answer that holds none."""
    return "I would rather not say." if "bad answer" in last_user_text(body) else default_verdict(body)


@pytest.fixture
def provider() -> Any:
    with FakeProvider(verdict=prose_for_bad) as fake:
        yield fake


@pytest.fixture
def env(tmp_path: Path, provider: FakeProvider) -> dict[str, str]:
    return env_for(tmp_path, provider, JUDGEQ_LEDGER_URL=f"sqlite:///{tmp_path / 'judgeq.db'}",
                   JUDGEQ_RETRY_MAX_S="5")


def errors_line(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "judge errors, not verdicts" in line]


def run_rows(tmp_path: Path) -> int:
    db = tmp_path / "judgeq.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return conn.execute("SELECT count(*) FROM runs").fetchone()[0] if "runs" in tables else 0


@pytest.mark.timeout(180)  # ~20 s: two embedded submits of an LLM judge, each importing litellm (5-8 s here)
def test_errors_are_said_and_fail_only_when_asked(tmp_path: Path, env: dict[str, str]) -> None:
    """Two CLI runs of the judge (each pays litellm's import, 2-6 s here), then gate and report on the ledger."""
    data = dataset(tmp_path / "items.jsonl", 8)  # t0 and t4 say "bad"

    plain = invoke(["submit", str(data), "--judge", "faithful", "--wait"], env)
    assert plain.returncode == 0, plain.stderr[-3000:]  # as documented: no gate, no flag, exit 0
    run_id = plain.stdout.splitlines()[0].strip()
    [line] = errors_line(plain.stderr)
    assert line.startswith("judgeq: ") and f"run {run_id}: 2 of 8 rows are judge errors" in line, line
    assert "(faithful 2, mostly answer (2): 'JudgeAnswerError: " in line, line  # the main reason, with a sample
    assert f"'judgeq report {run_id}' shows them by kind" in line, line
    assert "--fail-on-errors" not in line

    failed = invoke(["submit", str(data), "--judge", "faithful", "--wait", "--fail-on-errors", "--json"], env)
    assert failed.returncode == 1, failed.stderr[-3000:]  # a failed quality check, as a gate's
    summary = json.loads(failed.stdout)
    assert summary['totals']['judge_error'] == 2
    [line] = errors_line(failed.stderr)
    assert f"run {summary['run']['id']}: 2 of 8" in line and "--fail-on-errors: faithful over --max-errors 0" in line

    # On the finished run: `gate --fail-on-errors` is a check of its own; `report` says nothing unless asked.
    gated = invoke(["gate", run_id, "--fail-on-errors"], env)
    assert gated.returncode == 1 and len(errors_line(gated.stderr)) == 1, gated.stderr[-3000:]
    assert invoke(["gate", run_id, "--fail-on-errors", "--max-errors", "2"], env).returncode == 0
    passing_gate = invoke(["gate", run_id, "--gate", "faithful>=0.5", "--max-errors", "2"], env)
    assert passing_gate.returncode == 0, passing_gate.stderr[-3000:]  # mean 1.0 over the 6 verdicts
    report = invoke(["report", run_id], env)
    assert report.returncode == 0 and not errors_line(report.stderr), report.stderr[-3000:]


def test_a_clean_run_passes_and_the_flag_needs_wait(tmp_path: Path, env: dict[str, str]) -> None:
    """No errors, no line, exit 0; --fail-on-errors without --wait is bad usage and writes nothing."""
    data = tmp_path / "local.jsonl"
    data.write_text("".join(json.dumps({"id": f"r{i}", "output": "x", "expected": "x" if i % 2 else "y"}) + "\n"
                            for i in range(6)))
    env = dict(env, JUDGEQ_CONFIG=str(tmp_path / "local.toml"))
    (tmp_path / "local.toml").write_text('[judges.exact]\ntype = "local"\nbuiltin = "exact_match"\n')

    usage = invoke(["submit", str(data), "--judge", "exact", "--fail-on-errors"], env)
    assert usage.returncode == 2 and "--fail-on-errors needs --wait" in usage.stderr, usage.stderr
    assert run_rows(tmp_path) == 0

    clean = invoke(["submit", str(data), "--judge", "exact", "--wait", "--fail-on-errors"], env)
    assert clean.returncode == 0, clean.stderr[-3000:]  # half fail, but failing verdicts are verdicts
    assert not errors_line(clean.stderr) and "judgeq: " not in clean.stderr
    run_id = clean.stdout.splitlines()[0].strip()
    resumed = invoke(["resume", run_id, "--wait", "--fail-on-errors"], env)
    assert resumed.returncode == 0 and not errors_line(resumed.stderr), resumed.stderr[-3000:]
    assert invoke(["resume", run_id, "--fail-on-errors"], env).returncode == 2
