"""The ledger's retention (online/retention.py): old controller decisions and drift checks pruned, nothing else.

On SQLite and PostgreSQL: rows older than the retention go, in batches; the
newer ones, the budget changes people made, and the checks of an old span
made recently stay. ``judgeq db prune`` does it by hand; beat's schedule has
the daily entry (the task itself runs in a real worker in
tests/test_drift_beat.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger import Ledger
from ledger.budget_rows import DecisionIn
from ledger.models import DriftCheck
from ledger.prune import prune_before
from ledger.models import BUDGET_DECISIONS
from online.retention import prune
from scheduler.beat import PRUNE_EVERY_S, PRUNE_TASK, beat_schedule
from online.schedules import load_schedules

from .cli_runner import invoke
from .processes import base_env

pytestmark = pytest.mark.timeout(120)

NOW = datetime.now(UTC).replace(microsecond=0)


def decision(at: datetime, stratum: str = "all") -> DecisionIn:
    return DecisionIn(day=f"{at:%Y-%m-%d}", schedule="prod", judge="exact", stratum=stratum, rate=0.5,
                      expected_count=100, cost_per_item=0.01, budget_left=1.0, reserved_usd=0.0, reason="pacing",
                      window=None, at=at)


def check(checked_at: datetime, at: datetime | None = None, check_id: str = "c") -> DriftCheck:
    return DriftCheck(check_id=check_id, at=at or checked_at, checked_at=checked_at, via="beat", source="prod",
                      judge="exact", short="1h", long="7d", min_drop=0.05, slice="all", status="ok",
                      short_windows=[])


def fill(ledger: Ledger) -> None:
    ledger.budgets.set_budget("judge:exact", 5.0, who="ana", via="cli", note="kept forever")
    ledger.budgets.record_decisions([decision(NOW - timedelta(days=d), f"s{d}") for d in (200, 120, 91, 89, 1)])
    ledger.drift.record([check(NOW - timedelta(days=100), check_id="old")])
    ledger.drift.record([check(NOW - timedelta(days=2), check_id="new")])
    # a check made yesterday of a span that ended long ago: made recently, so kept
    ledger.drift.record([check(NOW - timedelta(days=1), at=NOW - timedelta(days=300), check_id="late")])


def test_prune_deletes_only_what_is_older_than_the_retention(ledger_url: str) -> None:
    with Ledger(ledger_url) as ledger:
        fill(ledger)
        pruned = prune(ledger, NOW, 90)
        assert (pruned.decisions, pruned.drift_checks) == (3, 1)
        assert pruned.before == NOW - timedelta(days=90)
        assert sorted(d.stratum for d in ledger.budgets.decisions(limit=100)) == ["s1", "s89"]
        assert sorted(c.check_id for c in ledger.drift.checks("prod", "exact")) == ["late", "new"]
        assert [c.note for c in ledger.budgets.history()] == ["kept forever"]
        assert ledger.budgets.budgets() == {"judge:exact": 5.0}
        again = prune(ledger, NOW, 90)
        assert (again.decisions, again.drift_checks) == (0, 0)
        with pytest.raises(ValueError, match="at least one day"):
            prune(ledger, NOW, 0)


def test_prune_deletes_in_batches(ledger_url: str) -> None:
    with Ledger(ledger_url) as ledger:
        ledger.budgets.record_decisions([decision(NOW - timedelta(days=100), f"s{i}") for i in range(23)])
        ledger.budgets.record_decisions([decision(NOW, "today")])
        assert prune_before(ledger.db, BUDGET_DECISIONS, "at", NOW - timedelta(days=90), batch=5) == 23
        assert [d.stratum for d in ledger.budgets.decisions(limit=100)] == ["today"]


def test_db_prune_by_hand(tmp_path: Path, sqlite_url: str) -> None:
    with Ledger(sqlite_url) as ledger:
        fill(ledger)
    env = base_env(JUDGEQ_LEDGER_URL=sqlite_url, JUDGEQ_RETENTION_DAYS="150")
    done = invoke(["db", "prune", "--json"], env)
    assert done.returncode == 0, done.stderr
    import json

    said = json.loads(done.stdout)
    assert (said["budget_decisions"], said["drift_checks"]) == (1, 0)  # only the 200-day-old decision
    text = invoke(["db", "prune", "--days", "30"], env)
    assert text.returncode == 0 and "pruned 3 budget decisions and 1 drift checks made before" in text.stdout
    assert invoke(["db", "prune", "--days", "0"], env).returncode == 2
    bad = invoke(["db", "prune"], base_env(JUDGEQ_LEDGER_URL=sqlite_url, JUDGEQ_RETENTION_DAYS="none"))
    assert bad.returncode == 2 and "JUDGEQ_RETENTION_DAYS" in bad.stderr


def test_beat_prunes_daily(tmp_path: Path) -> None:
    config = tmp_path / "judgeq.toml"
    config.write_text('[sources.live]\ntype = "jsonl"\npath = "t.jsonl"\n\n'
                      '[online.prod]\nsource = "live"\njudges = ["exact_match"]\nwindow = "1h"\n')
    entries = beat_schedule(load_schedules(config))
    assert entries["prune"]["task"] == PRUNE_TASK and entries["prune"]["schedule"] == PRUNE_EVERY_S == 86_400
    assert entries["prune"]["options"]["queue"] == "local"
