"""Database refusals reconnecting cannot fix arrive as named ledger errors, on both backends.

``tests/test_exit_codes.py`` checks what the CLI makes of them; here the
Ledger itself, against a real SQLite file and a real PostgreSQL database.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from ledger.errors import LedgerConfigError, LedgerFull, LedgerReadOnly
from ledger.models import Run
from ledger.rows import ItemIn
from ledger.store import Ledger

pytestmark = pytest.mark.timeout(60)


def a_run(run_id: str) -> Run:
    return Run(id=run_id, kind="offline", dataset_name="d", dataset_hash="h", n_items=0, expected=0)


def test_a_sqlite_ledger_at_its_size_limit_raises_ledger_full(sqlite_url: str) -> None:
    ledger = Ledger(sqlite_url)
    ledger.runs.create_run(a_run("r1"))
    ledger.close()

    @sa.event.listens_for(ledger.engine, "connect")
    def _cap(dbapi_connection: Any, _record: Any) -> None:  # SQLITE_FULL without filling a disk
        dbapi_connection.execute("PRAGMA max_page_count = 30")

    items = [ItemIn(trace_id=f"t{i}", seq=i, content_hash="c", record={"output": "x" * 2000}) for i in range(200)]
    with pytest.raises(LedgerFull, match=r"is full \(database or disk is full\); free disk space"):
        ledger.runs.add_items("r1", items)
    assert ledger.runs.count_items("r1") == 0  # the transaction was rolled back whole
    ledger.close()


def test_a_read_only_postgresql_database_raises_ledger_read_only_and_can_still_be_read(pg_url: str) -> None:
    ledger = Ledger(pg_url)
    ledger.runs.create_run(a_run("r1"))
    ledger.close()
    database = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')  # as on a standby
    ledger = Ledger(pg_url)
    try:
        assert [run.id for run in ledger.runs.list_runs()] == ["r1"]
        with pytest.raises(LedgerReadOnly, match="is read-only .*read-only transaction"):
            ledger.runs.create_run(a_run("r2"))
    finally:
        ledger.close()


def test_errors_of_the_data_are_not_taken_for_refusals(ledger_url: str) -> None:
    """A broken constraint is the caller's to handle, not the database refusing the ledger."""
    ledger = Ledger(ledger_url)
    ledger.runs.create_run(a_run("r1"))
    with pytest.raises(sa.exc.IntegrityError), ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE runs SET status = 'finished' WHERE id = 'r1'"))  # not a run status
    ledger.close()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "mysql://u@h/d", "nonsense",
                                 "postgresql+psycopg2://u@h/d"])
def test_urls_a_ledger_cannot_use_fail_before_connecting(url: str) -> None:
    with pytest.raises(LedgerConfigError):
        Ledger(url)
