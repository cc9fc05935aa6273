"""Bulk writes keep the ledger's contract: what goes in comes back, and the conflict rule holds.

On PostgreSQL items and scores go in by binary COPY through a staging table
(``ledger.writer``), on SQLite by executemany; every test here but the last
ones runs against both (``ledger_url``), with values that trip up hand-made
COPY paths: NULLs, unicode, quotes, backslashes, tabs and newlines, ``\\N``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from ledger import ItemIn, Ledger, LedgerUnavailable, Run, ScoreIn
from ledger.writer import CopyWriter, RowWriter, _Stage

pytestmark = pytest.mark.timeout(120)

AWKWARD = [
    "",
    "plain",
    "tab\there, newline\nthere, carriage\rreturn",
    'quotes " and \' and `back`',
    "back\\slash \\N \\t \\\\",
    "\\N",
    "ünïcødé — 日本語 — 🙂 — e\u0301",
    "{\"looks\": [\"like\", \"json\"]}",
    "x" * 20_000,
]


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with Ledger(ledger_url) as ledger:
        ledger.runs.create_run(Run(id="run-1", kind="offline", dataset_name="golden", n_items=1, expected=1))
        yield ledger


def score(trace_id: str, **overrides: Any) -> ScoreIn:
    values: dict[str, Any] = {"judge_version": "faithfulness@0123456789ab", "dataset": "d" * 64, "score": 1.0}
    return ScoreIn(run_id="run-1", trace_id=trace_id, eval="faithfulness", **(values | overrides))


def stored(ledger: Ledger) -> dict[str, Any]:
    return {row.trace_id: row for row in ledger.scores.scores("run-1")}


def test_awkward_values_come_back_as_written(ledger: Ledger) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone(timedelta(hours=-5)))
    rows = [
        score(f"t{i}-{text[:3]}", label=text, reason=text, error=text, status="error", error_kind=text,
              stratum=text, cluster=text, content_hash=text, score=None, ts=at, cost_usd=0.125, latency_s=1e-9,
              tokens_in=2**31 - 1, tokens_out=0, attempts=7, cached=True, weight=2.5, saved_usd=1e300)
        for i, text in enumerate(AWKWARD)
    ]
    nulls = score("all-nulls", score=None, label=None, error=None, stratum=None, cluster=None, content_hash=None,
                  error_kind=None)

    assert ledger.scores.write_scores([*rows, nulls]) == len(rows) + 1

    back = stored(ledger)
    for row in rows:
        got = back[row.trace_id]
        assert {name: getattr(got, name) for name in ("label", "reason", "error", "error_kind", "stratum", "cluster",
                                                      "content_hash")} == dict.fromkeys(
            ("label", "reason", "error", "error_kind", "stratum", "cluster", "content_hash"), row.label)
        assert (got.score, got.status, got.ts, got.cost_usd, got.latency_s, got.tokens_in, got.attempts, got.cached,
                got.weight, got.saved_usd) == (None, "error", at, 0.125, 1e-9, 2**31 - 1, 7, True, 2.5, 1e300)
    got = back["all-nulls"]
    assert (got.score, got.label, got.error, got.stratum, got.cluster, got.content_hash, got.error_kind) == (
        (None,) * 7)
    assert got.reason == "" and got.ts.tzinfo is not None and got.ts > at


def test_item_records_come_back_as_written_and_the_first_of_a_trace_id_stays(ledger: Ledger) -> None:
    records: list[dict[str, Any]] = [
        {"id": f"t{i}", "input": text, "output": text, "context": [text, None, 1.5, True], "expected": None,
         "metadata": {text: text, "nested": {"q": '"', "b": "\\", "n": None}}, "ts": None}
        for i, text in enumerate(AWKWARD)
    ]
    items = [ItemIn(trace_id=r["id"], seq=i, content_hash=f"h{i}", record=r) for i, r in enumerate(records)]
    again = ItemIn(trace_id="t0", seq=99, content_hash="other", record={"id": "t0", "output": "other"})

    ledger.runs.add_items("run-1", [*items, again])  # a trace id twice in one call: the first one is stored
    ledger.runs.add_items("run-1", [again])  # and a later call leaves it too

    assert ledger.runs.count_items("run-1") == len(records)
    (stored_records,) = ledger.runs.missing_items("run-1", "faithfulness", batch_size=100)
    assert stored_records == records


def test_the_conflict_rule_holds_within_one_batch_of_new_and_old_rows(ledger: Ledger) -> None:
    ledger.scores.write_scores([
        score("error-then-ok", status="error", score=None, error="timeout", attempts=3),
        score("ok-then-error", score=0.25),
        score("ok-then-ok", score=0.25),
        score("error-twice", status="error", score=None, error="first"),
        score("skipped-then-ok", status="skipped", score=None),
    ])

    written = ledger.scores.write_scores([
        score("error-then-ok", score=0.75, attempts=1, label="pass\tnow"),
        score("ok-then-error", status="error", score=None, error="late"),
        score("ok-then-ok", score=1.0),
        score("error-twice", status="error", score=None, error="second"),
        score("skipped-then-ok", score=1.0),
        score("new-1", score=0.5),
        score("new-2", status="error", score=None, error="new"),
    ])

    assert written == 3  # the replaced error row and the two new rows
    rows = stored(ledger)
    assert (rows["error-then-ok"].status, rows["error-then-ok"].score, rows["error-then-ok"].error,
            rows["error-then-ok"].attempts, rows["error-then-ok"].label) == ("ok", 0.75, None, 1, "pass\tnow")
    assert (rows["ok-then-error"].status, rows["ok-then-error"].score) == ("ok", 0.25)
    assert rows["ok-then-ok"].score == 0.25
    assert rows["error-twice"].error == "first"
    assert rows["skipped-then-ok"].status == "skipped"
    assert (rows["new-1"].score, rows["new-2"].error) == (0.5, "new")


def test_a_key_twice_in_one_batch_is_applied_in_turn(ledger: Ledger) -> None:
    written = ledger.scores.write_scores([
        score("error-then-ok", status="error", score=None, error="first"),
        score("error-then-ok", score=0.5),
        score("ok-then-error", score=0.25),
        score("ok-then-error", status="error", score=None, error="late"),
    ])

    assert written == 3  # inserted, replaced, inserted; the late error is not counted
    rows = stored(ledger)
    assert (rows["error-then-ok"].status, rows["error-then-ok"].score) == ("ok", 0.5)
    assert (rows["ok-then-error"].status, rows["ok-then-error"].score) == ("ok", 0.25)


def test_a_row_the_database_refuses_costs_only_itself_and_the_next_write_counts_only_its_rows(
    ledger: Ledger,
) -> None:
    bad = score("bad-status", cost_usd=0.5, tokens_in=40)
    bad.status = "bogus"  # type: ignore[assignment]  # past ScoreIn's check: the database's CHECK refuses it

    assert ledger.scores.write_scores([score("with-the-bad-one"), bad]) == 2

    rows = stored(ledger)
    assert rows["with-the-bad-one"].status == "ok"
    refused = rows["bad-status"]
    assert (refused.status, refused.error_kind, refused.cost_usd, refused.tokens_in) == ("error", "internal", 0.5, 40)
    assert "could not store" in (refused.error or "")
    assert ledger.scores.write_scores([score("a"), score("b")]) == 2
    assert ledger.scores.write_scores([score("a"), score("c")]) == 1
    assert sorted(stored(ledger)) == ["a", "b", "bad-status", "c", "with-the-bad-one"]


def test_postgresql_writes_by_copy_and_reports_copy_errors_as_sqlalchemy_does(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[str] = []
    load = _Stage.load

    def spy(self: _Stage, conn: sa.Connection, rows: Any) -> None:
        loads.append(self.table.name)
        load(self, conn, rows)

    monkeypatch.setattr(_Stage, "load", spy)
    with Ledger(pg_url) as ledger:
        assert isinstance(ledger.db.writer, CopyWriter)
        ledger.runs.create_run(Run(id="run-1", kind="offline", dataset_name="golden", n_items=1, expected=1))
        ledger.runs.add_items("run-1", [ItemIn(trace_id="t", seq=0, content_hash="h", record={"id": "t"})])
        ledger.scores.write_scores([score("t")])
        assert loads == ["items_in", "scores_in"]

        # An error inside the COPY comes out as SQLAlchemy's DataError, which the ledger sorts as a row
        # it cannot store: out of range, not truncated to 32 bits.
        assert ledger.scores.write_scores([score("too-many-tokens", tokens_in=2**40)]) == 1
        refused = stored(ledger)["too-many-tokens"]
        assert refused.status == "error" and "integer out of range" in (refused.error or "")
        assert ledger.scores.write_scores([score("after", ts=datetime(2026, 1, 1, tzinfo=UTC))]) == 1


def test_sqlite_writes_by_executemany(sqlite_url: str) -> None:
    with Ledger(sqlite_url) as ledger:
        assert type(ledger.db.writer) is RowWriter


def test_a_connection_lost_during_copy_is_ledger_unavailable_and_the_next_write_reconnects(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    load = _Stage.load
    cut: list[int] = []

    def cut_off(self: _Stage, conn: sa.Connection, rows: Any) -> None:
        def rows_after_the_server_went_away() -> Iterator[Any]:
            if not cut:
                cut.append(conn.connection.dbapi_connection.info.backend_pid)  # type: ignore[union-attr]
                with psycopg.connect(pg_url.replace("+psycopg", ""), autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", cut)
            yield from rows

        load(self, conn, rows_after_the_server_went_away())

    monkeypatch.setattr(_Stage, "load", cut_off)
    with Ledger(pg_url) as ledger:
        ledger.runs.create_run(Run(id="run-1", kind="offline", dataset_name="golden", n_items=1, expected=1))
        with pytest.raises(LedgerUnavailable):
            ledger.scores.write_scores([score("lost")])
        assert ledger.scores.write_scores([score("lost"), score("next")]) == 2
