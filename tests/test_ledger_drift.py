"""The ledger side of drift checks, on SQLite and PostgreSQL: rows written and read back, refused, migrated."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.autogenerate import compare_metadata

from ledger.engine import create_ledger_engine
from ledger.errors import LedgerArgumentError
from ledger.migrate import alembic_config, upgrade
from ledger.models import DriftCheck, LedgerModel
from ledger.store import Ledger

pytestmark = pytest.mark.timeout(120)

AT = datetime(2026, 11, 20, 7, tzinfo=UTC)


def row(slice_value: str = "all", **extra: object) -> DriftCheck:
    values: dict[str, object] = {"check_id": "c1", "at": AT, "via": "cli", "source": "hourly", "judge": "exact",
                                 "short": "1h", "long": "6h", "min_drop": 0.05, "slice": slice_value,
                                 "status": "ok", "short_windows": ["2026-11-20T06"]}
    return DriftCheck(**(values | extra))


def test_checks_are_written_whole_and_read_newest_first(ledger_url: str) -> None:
    with Ledger(ledger_url) as ledger:
        ledger.drift.record([row(), row("fr", slice_key="locale", status="alert", short_mean=0.3, long_mean=0.9,
                                        score_drop=0.6, p_value=1e-9, adjusted_p=3e-9, short_n=60, long_n=360,
                                        short_se=math.nan, long_se=math.inf)])
        ledger.drift.record([row(check_id="c2", at=AT + timedelta(hours=1), status="no_data")])
        found = ledger.drift.checks("hourly", "exact")
        assert [(r.check_id, r.slice) for r in found] == [("c2", "all"), ("c1", "fr"), ("c1", "all")]
        fr = found[1]
        assert fr.status == "alert" and fr.score_drop == 0.6 and fr.short_windows == ["2026-11-20T06"]
        assert fr.short_se is None and fr.long_se is None  # NaN and infinity are stored as NULL
        assert [r.slice for r in ledger.drift.checks("hourly", "exact", status="alert")] == ["fr"]
        assert len(ledger.drift.checks("hourly", "exact", since=AT + timedelta(minutes=1))) == 1
        assert ledger.drift.checks("hourly", "other") == []

        for bad in (row(status="fine"), row(via="cron"), row(min_drop=math.nan)):
            with pytest.raises(LedgerArgumentError):
                ledger.drift.record([row(check_id="c3"), bad])  # nothing of a refused check is written
        assert not [r for r in ledger.drift.checks("hourly", "exact") if r.check_id == "c3"]


def test_the_database_refuses_a_status_it_does_not_know(ledger_url: str) -> None:
    with Ledger(ledger_url) as ledger:
        ledger.drift.record([row()])
        with pytest.raises(sa.exc.IntegrityError), ledger.engine.begin() as conn:
            conn.execute(sa.text("UPDATE drift_checks SET status = 'maybe'"))


def test_migration_0007_goes_down_to_0006_and_up_again(empty_ledger_url: str) -> None:
    upgrade(empty_ledger_url)
    engine = create_ledger_engine(empty_ledger_url)
    with Ledger(empty_ledger_url) as ledger:
        ledger.drift.record([row()])
    command.downgrade(alembic_config(empty_ledger_url), "0006")
    assert "drift_checks" not in sa.inspect(engine).get_table_names()
    command.upgrade(alembic_config(empty_ledger_url), "head")
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert list(compare_metadata(context, LedgerModel.metadata)) == []
    with Ledger(empty_ledger_url) as ledger:
        assert ledger.drift.checks("hourly", "exact") == []
    engine.dispose()
