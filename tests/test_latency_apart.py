"""A row's latency is the provider call's own time; what the rate limiter and backoff made it wait is kept apart.

An embedded ``judgeq submit`` (a real process, litellm over HTTP) against the fake provider answering in
30 ms, under a limit far below what 16 judging threads would send: most of each item's wall time is spent
waiting for its rate slot. ``judgeq report --json`` and the exporter's latency histogram must show the
provider's 30 ms, and the waits beside them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ledger.engine import create_ledger_engine
from ledger.migrate import alembic_config, upgrade
from ledger.models import LedgerModel
from ledger.store import Ledger

from .cli_runner import invoke
from .processes import run_cli
from .provider import FakeProvider
from .remote_judge import dataset, env_for
from .test_exporter import config_file, scrape
from .test_ledger import make_run, make_score

pytestmark = pytest.mark.timeout(120)

PROVIDER_LATENCY_S = 0.03


def test_latency_is_the_calls_own_and_waits_are_recorded_beside_it(tmp_path: Path) -> None:
    n, rpm, period = 24, 24, 2.0  # 12 calls/s: the last item waits about two seconds for its slot
    db = tmp_path / "ledger.db"
    with FakeProvider(latency_s=PROVIDER_LATENCY_S) as provider:
        env = env_for(tmp_path, provider, limits=f"rpm = {rpm}", JUDGEQ_RATE_PERIOD_S=str(period),
                      JUDGEQ_RATE_DIR=str(tmp_path / "rates"), JUDGEQ_LEDGER_URL=f"sqlite:///{db}")
        data = dataset(tmp_path / "items.jsonl", n)
        submitted = run_cli(["submit", str(data), "--judge", "faithful", "--wait", "--json"], env, timeout=100)
        assert submitted.returncode == 0, submitted.stderr[-2000:]
        run_id = json.loads(submitted.stdout)["run"]["id"]
        assert provider.count(200) == n
    report = invoke(["report", run_id, "--json"], env)
    assert report.returncode == 0, report.stderr
    [card] = json.loads(report.stdout)["scorecard"]
    # The call's own time: the provider's 30 ms plus litellm's overhead, far from the slot waits.
    assert PROVIDER_LATENCY_S <= card["latency_p50_s"] < 0.25, card
    assert card["latency_p95_s"] < 0.5, card
    # The waits, apart: at 12 calls/s the median item waits about a second (the burst starts at once).
    assert card["wait_p50_s"] > 0.4 and card["wait_p95_s"] > 1.0, card

    with Ledger(f"sqlite:///{db}") as ledger:
        rows = list(ledger.scores.scores(run_id))
        (tmp_path / "exporter").mkdir()
        got = scrape(ledger, config_file(tmp_path / "exporter", ""))
    assert len(rows) == n and sum(r.wait_s for r in rows) > n * 0.4
    assert got[("judgeq_judge_latency_seconds_count", (("judge", "faithful"),))] == n
    # The 0.25 s bucket holds the rows whose call took that long at most (nearly all; a loaded machine may
    # stretch one), far more than the rows whose call and wait together did: the histogram counts the calls.
    fast = sum(r.latency_s is not None and r.latency_s <= 0.25 for r in rows)
    assert got[("judgeq_judge_latency_seconds_bucket", (("judge", "faithful"), ("le", "0.25")))] == fast
    assert fast >= 0.9 * n > 2 * sum((r.latency_s or 0) + (r.wait_s or 0) <= 0.25 for r in rows)


def test_migration_0010_goes_down_to_0009_and_up_again(empty_ledger_url: str) -> None:
    """Rows written before 0010 keep their latency and read as having waited 0 s; a stopped run goes down as
    running; the schema is the models'."""
    upgrade(empty_ledger_url)
    with Ledger(empty_ledger_url) as ledger:
        ledger.runs.create_run(make_run())
        ledger.scores.write_scores([make_score("t1", latency_s=0.03, wait_s=1.4)])
        assert [(r.latency_s, r.wait_s) for r in ledger.scores.scores("run-1")] == [(0.03, 1.4)]
        ledger.runs.set_status("run-1", "running")
        assert ledger.runs.mark_stopped("run-1") and not ledger.runs.mark_stopped("run-1")
        assert ledger.runs.get_run("run-1").status == "stopped"
    engine = create_ledger_engine(empty_ledger_url)
    try:
        command.downgrade(alembic_config(empty_ledger_url), "0009")
        assert "wait_s" not in {c["name"] for c in sa.inspect(engine).get_columns("scores")}
        command.upgrade(alembic_config(empty_ledger_url), "head")
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert list(compare_metadata(context, LedgerModel.metadata)) == []
    finally:
        engine.dispose()
    with Ledger(empty_ledger_url) as ledger:
        assert [(r.latency_s, r.wait_s) for r in ledger.scores.scores("run-1")] == [(0.03, 0.0)]
        assert ledger.runs.get_run("run-1").status == "running"  # what 0009 showed; stopped again from 0010 on
        assert ledger.runs.mark_stopped("run-1")
