"""Failures that say why: a judge the workers refuse ends with the code of its cause, the report shows it by
kind, and once the workers are fixed ``resume --retry-errors`` judges the rows again (scheduler/causes.py).

Real worker processes, Redis, PostgreSQL and the fake provider over HTTP; the CLI in processes of its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from .cli_runner import invoke
from .processes import Worker
from .provider import FakeProvider
from .remote_judge import dataset, env_for

N = 8


def rows_by_kind(url: str) -> dict[tuple[str, str | None], int]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("select status, error_kind, count(*) from scores group by status, error_kind"))
            return {(r[0], r[1]): int(r[2]) for r in rows}
    finally:
        engine.dispose()


def judgeq_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("judgeq: ")]


@pytest.mark.timeout(240)
def test_a_refused_key_exits_2_says_why_and_resume_retries_it_once_the_workers_allow_it(
        tmp_path: Path, redis_url: str, pg_url: str) -> None:
    data = dataset(tmp_path / "golden.jsonl", N)
    with FakeProvider() as provider:
        allowed = env_for(tmp_path, provider, JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=pg_url)
        refusing = {k: v for k, v in allowed.items() if k != "JUDGEQ_KEY_ENDPOINTS"}  # the README's old fleet
        worker = Worker("remote", refusing, "--concurrency", "2").wait_ready()
        try:
            res = invoke(["submit", str(data), "--judge", "faithful", "--wait", "--gate", "faithful>=0.5",
                          "--timeout", "60"], refusing)
            run_id = res.stdout.strip().splitlines()[0]
            # resume without --retry-errors leaves refusals alone: nothing is sent, the cause stays
            again = invoke(["resume", run_id, "--wait", "--timeout", "60"], refusing)
        finally:
            worker.stop()
        report = invoke(["report", run_id], allowed)
        report_json = invoke(["report", run_id, "--json"], allowed)
        assert provider.count() == 0

        # submit: exit 2 (configuration), not 1 (a quality verdict), with one line naming the reason
        assert res.returncode == 2, res.stdout + res.stderr
        (line,) = judgeq_lines(res.stderr)
        assert f"judge faithful: {N} of {N} rows are forbidden errors" in line, line
        assert "refused by the worker's key policy" in line and "JUDGEQ_KEY_ENDPOINTS" in line, line
        assert f"'judgeq resume {run_id} --retry-errors forbidden'" in line, line
        assert again.returncode == 2 and "re-enqueued 0 item-judge pairs" in again.stderr, again.stderr
        assert rows_by_kind(pg_url) == {("error", "forbidden"): N}

        # report: the errors by kind, with a sample message, in the table and in --json
        assert report.returncode == 0, report.stderr
        assert f"faithful errors: forbidden {N}: EgressRefused: judge 'faithful' refused" in report.stdout
        (judge,) = json.loads(report_json.stdout)["judges"]
        (kind,) = judge["error_kinds"]
        assert (kind["kind"], kind["count"]) == ("forbidden", N) and "JUDGEQ_KEY_ENDPOINTS" in kind["sample"]

        # bad kinds are usage errors, before anything is written
        bad = invoke(["resume", run_id, "--retry-errors", "fatal"], allowed)
        assert bad.returncode == 2 and "fatal cannot be retried" in bad.stderr, bad.stderr

        # the operator lists the endpoint; resume --retry-errors judges every refused row, once
        worker = Worker("remote", allowed, "--concurrency", "2").wait_ready()
        try:
            fixed = invoke(["resume", run_id, "--retry-errors", "forbidden", "--wait", "--timeout", "60"], allowed)
        finally:
            worker.stop()
        calls = provider.count()
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert calls == N and rows_by_kind(pg_url) == {("ok", None): N}
    # and the gate decides on verdicts: 6 of 8 records pass (tests/remote_judge.py)
    assert invoke(["gate", run_id, "--gate", "faithful>=0.5"], allowed).returncode == 0
    assert invoke(["gate", run_id, "--gate", "faithful>=0.9"], allowed).returncode == 1


@pytest.mark.timeout(120)
def test_a_gate_with_only_unusable_answers_is_a_configuration_error_not_a_failed_gate(tmp_path: Path) -> None:
    """Embedded mode: every answer is prose, not a verdict (kind ``answer``): nothing was measured, exit 2."""
    data = dataset(tmp_path / "golden.jsonl", 3)
    with FakeProvider(p_garbage=1.0) as provider:
        env = env_for(tmp_path, provider, JUDGEQ_LEDGER_URL=f"sqlite:///{tmp_path / 'l.db'}",
                      JUDGEQ_RETRY_ATTEMPTS="2")
        res = invoke(["submit", str(data), "--judge", "faithful", "--wait", "--gate", "faithful>=0.5"], env)
    assert res.returncode == 2, res.stdout + res.stderr
    (line,) = judgeq_lines(res.stderr)
    assert "judge faithful: 3 of 3 rows are answer errors (no answer of the model held a usable verdict)" in line
