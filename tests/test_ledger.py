"""The ledger's contract, told once and run against SQLite and PostgreSQL (``ledger_url``).

A run is created, its items stored, its score rows written (twice, as
at-least-once delivery will), and read back as progress, missing items and
a summary whose figures are recomputed here by hand.
"""

from __future__ import annotations

import multiprocessing
import random
import statistics
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ledger import (
    ItemIn,
    Ledger,
    LedgerSettings,
    LedgerUnavailable,
    MigrationError,
    Progress,
    Run,
    RunExists,
    RunNotFound,
    Score,
    ScoreIn,
)
from ledger.engine import create_ledger_engine
from ledger.migrate import ensure_schema, head_revision, upgrade
from ledger.models import LedgerModel
from ledger.queries import scored_among, unscored_in_window

pytestmark = pytest.mark.timeout(120)


def make_run(run_id: str = "run-1", **overrides: Any) -> Run:
    values: dict[str, Any] = {
        "id": run_id,
        "kind": "offline",
        "dataset_name": "golden",
        "dataset_hash": "d" * 12,
        "judges": {"faithfulness": {"version": "faithfulness@0123456789ab", "kind": "llm"}},
        "n_items": 3,
        "expected": 3,
        "tags": ["nightly"],
        "meta": {"commit": "abc123", "owner": "ci"},
    }
    return Run(**(values | overrides))


def make_score(
    trace_id: str, eval_name: str = "faithfulness", run_id: str = "run-1", **overrides: Any
) -> ScoreIn:
    values: dict[str, Any] = {"judge_version": f"{eval_name}@0123456789ab", "dataset": "d" * 12, "score": 1.0}
    return ScoreIn(run_id=run_id, trace_id=trace_id, eval=eval_name, **(values | overrides))


def record(trace_id: str) -> dict[str, Any]:
    return {
        "id": trace_id,
        "input": f"q {trace_id}",
        "output": "a",
        "context": None,
        "expected": None,
        "metadata": {},
        "ts": None,
    }


@pytest.fixture
def ledger(ledger_url: str):  # type: ignore[no-untyped-def]
    with Ledger(ledger_url) as ledger:
        yield ledger


def stored_rows(ledger: Ledger, run_id: str = "run-1") -> dict[tuple[str, str], Score]:
    return {(row.trace_id, row.eval): row for row in ledger.scores.scores(run_id)}


# -- schema -----------------------------------------------------------------


def test_schema_is_created_on_first_use(empty_ledger_url: str) -> None:
    ledger = Ledger(empty_ledger_url)
    assert not sa.inspect(ledger.engine).has_table("alembic_version")  # constructing touches nothing

    assert ledger.runs.count_items("nothing-yet") == 0

    inspector = sa.inspect(ledger.engine)
    assert {"runs", "items", "scores", "alembic_version"} <= set(inspector.get_table_names())
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [
            head_revision()
        ]
    ledger.close()


def test_migrated_schema_matches_the_models(empty_ledger_url: str) -> None:
    engine = create_ledger_engine(empty_ledger_url)

    def differences() -> list[Any]:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, LedgerModel.metadata))

    assert differences(), "the comparison sees nothing in an empty database: it cannot be trusted"
    upgrade(engine)
    assert differences() == []
    engine.dispose()


def test_ensure_schema_at_head_costs_one_query_then_none(empty_ledger_url: str) -> None:
    upgrade(empty_ledger_url)
    engine = create_ledger_engine(empty_ledger_url)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    ensure_schema(engine)
    assert len(statements) == 1
    ensure_schema(engine)
    assert len(statements) == 1
    engine.dispose()


def test_a_schema_newer_than_the_code_is_refused(empty_ledger_url: str) -> None:
    upgrade(empty_ledger_url)
    engine = create_ledger_engine(empty_ledger_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'from_the_future'"))

    with pytest.raises(MigrationError, match=r"from_the_future.*upgrade judgeq"):
        Ledger(empty_ledger_url).runs.count_items("x")
    engine.dispose()


def _start_and_ensure_schema(url: str, barrier: Any) -> None:
    engine = create_ledger_engine(url)
    barrier.wait(timeout=60)
    ensure_schema(engine)
    engine.dispose()


def test_processes_starting_at_once_migrate_once(empty_ledger_url: str) -> None:
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(4)
    processes = [spawn.Process(target=_start_and_ensure_schema, args=(empty_ledger_url, barrier)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=90)
    assert [process.exitcode for process in processes] == [0, 0, 0, 0]

    engine = create_ledger_engine(empty_ledger_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [
            head_revision()
        ]
        if engine.dialect.name == "postgresql":  # every process let go of the migration lock
            held = conn.execute(sa.text(  # this database's: other tests' databases may be migrating meanwhile
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")).scalar()
            assert held == 0
    engine.dispose()


# -- runs -------------------------------------------------------------------


def test_runs_are_created_read_and_listed_newest_first(ledger: Ledger) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    ledger.runs.create_run(make_run("run-1", created_at=start))
    ledger.runs.create_run(make_run("run-2", created_at=start + timedelta(hours=1), tags=["pr"], status="running"))
    ledger.runs.create_run(make_run("run-3", created_at=start + timedelta(hours=2), dataset_name="other"))
    ledger.runs.create_run(
        make_run(
            "win-1",
            kind="online",
            dataset_name="traces",
            dataset_hash=None,
            window="2026-W47",
            created_at=start,
        )
    )

    run = ledger.runs.get_run("run-1")
    assert run.judges == {"faithfulness": {"version": "faithfulness@0123456789ab", "kind": "llm"}}
    assert (run.tags, run.meta, run.status, run.max_cost_usd) == (
        ["nightly"],
        {"commit": "abc123", "owner": "ci"},
        "submitting",
        None,
    )
    assert run.created_at == start and run.created_at.tzinfo is not None
    assert ledger.runs.get_run("win-1").window == "2026-W47"

    assert [r.id for r in ledger.runs.list_runs()] == ["run-3", "run-2", "win-1", "run-1"]
    assert [r.id for r in ledger.runs.list_runs(limit=2)] == ["run-3", "run-2"]
    assert [r.id for r in ledger.runs.list_runs(dataset_name="golden")] == ["run-2", "run-1"]
    assert [r.id for r in ledger.runs.list_runs(tag="nightly", limit=2)] == ["run-3", "win-1"]
    assert [r.id for r in ledger.runs.list_runs(status="running")] == ["run-2"]


def test_a_run_id_is_created_once(ledger: Ledger) -> None:
    ledger.runs.create_run(make_run("run-1"))
    with pytest.raises(RunExists, match="run-1"):
        ledger.runs.create_run(make_run("run-1", dataset_name="another"))
    assert ledger.runs.get_run("run-1").dataset_name == "golden"


def test_bad_run_fields_are_refused_before_the_database(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="kind"):
        ledger.runs.create_run(make_run(kind="batch"))
    with pytest.raises(ValueError, match="status"):
        ledger.runs.set_status("run-1", "finished")  # type: ignore[arg-type]


def test_status_changes_stamp_the_run(ledger: Ledger) -> None:
    ledger.runs.create_run(make_run())
    submitted = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    ledger.runs.set_status("run-1", "running", at=submitted)
    run = ledger.runs.get_run("run-1")
    assert (run.status, run.submitted_at, run.finished_at) == ("running", submitted, None)

    ledger.runs.set_status("run-1", "done", at=submitted + timedelta(minutes=5))
    ledger.runs.set_status(
        "run-1", "done", at=submitted + timedelta(minutes=9)
    )  # noticed twice: first time stands
    run = ledger.runs.get_run("run-1")
    assert (run.status, run.finished_at) == ("done", submitted + timedelta(minutes=5))


def test_a_run_is_marked_done_once_by_whoever_sees_it_complete(ledger: Ledger) -> None:
    ledger.runs.create_run(make_run(expected=2))
    ledger.scores.write_scores([make_score("t1"), make_score("t2")])
    assert ledger.runs.mark_done_if_complete("run-1") is False  # still "submitting"

    ledger.runs.set_status("run-1", "running")
    assert ledger.runs.mark_done_if_complete("run-1") is True
    assert ledger.runs.mark_done_if_complete("run-1") is False
    assert ledger.runs.get_run("run-1").status == "done"


def test_unknown_runs_raise_run_not_found(ledger: Ledger) -> None:
    for call in (
        lambda: ledger.runs.get_run("nope"),
        lambda: ledger.runs.set_status("nope", "running"),
        lambda: ledger.scores.progress("nope"),
        lambda: ledger.scores.summary("nope"),
        lambda: ledger.runs.mark_done_if_complete("nope"),
    ):
        with pytest.raises(RunNotFound, match=r"'nope'.*judgeq runs"):
            call()


# -- items ------------------------------------------------------------------


def test_add_items_is_idempotent(ledger: Ledger) -> None:
    ledger.runs.create_run(make_run())
    ledger.runs.add_items("run-1", [ItemIn(f"t{i}", i, f"h{i}", record(f"t{i}")) for i in range(3)])
    ledger.runs.add_items("run-1", [ItemIn(f"t{i}", i, "changed", {"id": "changed"}) for i in range(2, 5)])

    assert ledger.runs.count_items("run-1") == 5
    assert ledger.runs.count_items("another-run") == 0
    (batch,) = ledger.runs.missing_items("run-1", "faithfulness")
    assert batch[2] == record("t2")  # the first record stored stands


def test_missing_items_are_the_unscored_ones_in_seq_order_across_batches(ledger: Ledger) -> None:
    ledger.runs.create_run(make_run(n_items=23))
    items = [ItemIn(f"t{i:02d}", i, f"h{i}", record(f"t{i:02d}")) for i in range(22)]
    items.append(ItemIn("t05-twin", 5, "h", record("t05-twin")))  # a shared seq must not lose an item
    random.Random(7).shuffle(items)
    ledger.runs.add_items("run-1", items)
    scored = {"t00", "t03", "t05", "t06", "t07", "t08", "t20"}
    ledger.scores.write_scores([make_score(trace_id) for trace_id in scored])
    ledger.scores.write_scores([make_score("t01", eval_name="relevance")])  # another eval's row does not count

    batches = list(ledger.runs.missing_items("run-1", "faithfulness", batch_size=4))

    expected = [
        r.record for r in sorted(items, key=lambda i: (i.seq, i.trace_id)) if r.trace_id not in scored
    ]
    assert [rec for batch in batches for rec in batch] == expected
    assert [len(batch) for batch in batches] == [4, 4, 4, 4]
    assert next(ledger.runs.missing_items("run-1", "relevance", batch_size=100))[0]["id"] == "t00"
    assert list(ledger.runs.missing_items("no-such-run", "faithfulness")) == []


# -- scores -----------------------------------------------------------------


def test_score_in_has_the_fields_of_a_score_row() -> None:
    assert {f.name for f in fields(ScoreIn)} == set(Score.model_fields)


def test_writing_the_same_rows_twice_leaves_one_row_per_key(ledger: Ledger) -> None:
    ledger.runs.create_run(make_run())
    rows = [make_score(f"t{i}", eval_name=name) for i in range(50) for name in ("faithfulness", "relevance")]

    assert ledger.scores.write_scores(rows) == 100
    assert ledger.scores.write_scores(rows) == 0
    assert ledger.scores.write_scores([*rows[:10], make_score("t50")]) == 1
    assert len(stored_rows(ledger)) == 101
    assert ledger.scores.write_scores([]) == 0


def test_an_ok_row_replaces_an_error_row_and_nothing_replaces_an_ok_row(ledger: Ledger) -> None:
    ledger.runs.create_run(make_run())
    ledger.scores.write_scores(
        [
            make_score("failed-then-ok", status="error", score=None, error="timeout", attempts=3),
            make_score("ok-then-error", score=0.25),
            make_score("ok-then-ok", score=0.25),
            make_score("failed-twice", status="error", score=None, error="first"),
            make_score("skipped-then-ok", status="skipped", score=None),
        ]
    )
    written = ledger.scores.write_scores(
        [
            make_score("failed-then-ok", score=0.75, attempts=1),
            make_score("ok-then-error", status="error", score=None, error="late failure"),
            make_score("ok-then-ok", score=1.0),
            make_score("failed-twice", status="error", score=None, error="second"),
            make_score("skipped-then-ok", score=1.0),
        ]
    )

    assert written == 1
    rows = {trace_id: row for (trace_id, _), row in stored_rows(ledger).items()}
    assert (rows["failed-then-ok"].status, rows["failed-then-ok"].score, rows["failed-then-ok"].error) == (
        "ok",
        0.75,
        None,
    )
    assert rows["failed-then-ok"].attempts == 1
    assert (rows["ok-then-error"].status, rows["ok-then-error"].score) == ("ok", 0.25)
    assert rows["ok-then-ok"].score == 0.25
    assert rows["failed-twice"].error == "first"
    assert rows["skipped-then-ok"].status == "skipped"


def test_existing_names_the_traces_that_have_a_row(ledger: Ledger) -> None:
    ledger.runs.create_run(make_run())
    ledger.scores.write_scores([make_score(f"t{i}") for i in range(0, 2500, 2)])
    ledger.scores.write_scores([make_score("t1", eval_name="relevance")])

    asked = [f"t{i}" for i in range(2500)]
    assert ledger.scores.existing("run-1", "faithfulness", asked) == {f"t{i}" for i in range(0, 2500, 2)}
    assert ledger.scores.existing("run-1", "relevance", asked) == {"t1"}
    assert ledger.scores.existing("run-1", "faithfulness", []) == set()


def test_progress_counts_rows_by_status(ledger: Ledger) -> None:
    ledger.runs.create_run(make_run(n_items=4, expected=8))
    assert ledger.scores.progress("run-1") == Progress(expected=8, done=0, ok=0, errors=0, skipped=0)

    ledger.scores.write_scores(
        [make_score(f"t{i}") for i in range(3)]
        + [make_score("t3", status="error", score=None, error="bad request")]
        + [make_score(f"t{i}", eval_name="relevance", status="skipped", score=None) for i in range(2)]
    )
    progress = ledger.scores.progress("run-1")
    assert progress == Progress(expected=8, done=6, ok=3, errors=1, skipped=2)
    assert not progress.complete


def test_scores_stream_detached_rows_with_utc_timestamps(ledger: Ledger) -> None:
    ledger.runs.create_run(make_run())
    written_at = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
    ledger.scores.write_scores([make_score(f"t{i:04d}", ts=written_at) for i in range(2500)])
    ledger.scores.write_scores(
        [make_score("t0000", eval_name="relevance", cached=True, label="pass", reason="fine")]
    )

    rows = list(ledger.scores.scores("run-1", "faithfulness"))
    assert [row.trace_id for row in rows] == [f"t{i:04d}" for i in range(2500)]
    assert all(sa.inspect(row).detached for row in rows)
    assert rows[0].ts == written_at and rows[0].ts.tzinfo is not None
    (relevance,) = ledger.scores.scores("run-1", "relevance")
    assert (relevance.cached, relevance.label, relevance.reason, relevance.weight) == (
        True,
        "pass",
        "fine",
        1.0,
    )
    assert relevance.ts > written_at  # "now", in UTC
    assert len(list(ledger.scores.scores("run-1"))) == 2501


def test_summary_matches_figures_computed_by_hand(ledger: Ledger) -> None:
    ledger.runs.create_run(make_run())
    rng = random.Random(42)
    rows = []
    for name in ("faithfulness", "relevance"):
        for i in range(300):
            status = rng.choices(["ok", "error", "skipped"], weights=[8, 1, 1])[0]
            rows.append(
                make_score(
                    f"t{i}",
                    eval_name=name,
                    status=status,
                    score=round(rng.random(), 3) if status == "ok" and i % 17 else None,
                    weight=rng.choice([1.0, 2.5, 10.0]),
                    cost_usd=rng.random() / 1000 if status != "skipped" else 0.0,
                    latency_s=rng.lognormvariate(0, 1) if status != "skipped" else 0.0,
                    tokens_in=rng.randint(100, 900),
                    tokens_out=rng.randint(1, 50),
                    cached=status == "ok" and i % 5 == 0,
                    judge_version=f"{name}@{'a' * 12 if i < 200 else 'b' * 12}",
                )
            )
    for start in range(0, len(rows), 128):
        ledger.scores.write_scores(rows[start : start + 128])

    summaries = {s.eval: s for s in ledger.scores.summary("run-1")}

    assert sorted(summaries) == ["faithfulness", "relevance"]
    for name, summary in summaries.items():
        mine = [r for r in rows if r.eval == name]
        scored = [r for r in mine if r.status == "ok" and r.score is not None]
        judged = [r.latency_s for r in mine if r.status != "skipped"]
        p50, p95 = (statistics.quantiles(judged, n=100, method="inclusive")[k] for k in (49, 94))
        assert (summary.n, summary.ok, summary.errors, summary.skipped) == (
            300,
            sum(r.status == "ok" for r in mine),
            sum(r.status == "error" for r in mine),
            sum(r.status == "skipped" for r in mine),
        )
        weighted = sum(r.weight * (r.score or 0.0) for r in scored)
        assert summary.mean == pytest.approx(weighted / sum(r.weight for r in scored))
        assert summary.cost_usd == pytest.approx(sum(r.cost_usd for r in mine))
        assert summary.latency_p50_s == pytest.approx(p50)
        assert summary.latency_p95_s == pytest.approx(p95)
        assert (summary.tokens_in, summary.tokens_out) == (
            sum(r.tokens_in for r in mine),
            sum(r.tokens_out for r in mine),
        )
        assert summary.cached == sum(r.cached for r in mine)
        assert summary.judge_versions == (f"{name}@{'a' * 12}", f"{name}@{'b' * 12}")


def test_summary_of_a_run_without_rows_is_empty(ledger: Ledger) -> None:
    ledger.runs.create_run(make_run())
    assert ledger.scores.summary("run-1") == []


def test_summary_of_errors_only_has_no_mean(ledger: Ledger) -> None:
    ledger.runs.create_run(make_run())
    ledger.scores.write_scores([make_score("t1", status="error", score=None, latency_s=2.0)])
    (summary,) = ledger.scores.summary("run-1")
    assert (summary.mean, summary.latency_p50_s, summary.errors) == (None, 2.0, 1)


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def test_unscored_lookups_probe_the_key_even_without_statistics(pg_url: str) -> None:
    # A new run's rows have no statistics yet (autovacuum is off here, as it
    # is in effect for the first minute of a run): the plans must still probe
    # the scores' primary key per item rather than scan the run's scores.
    ledger = Ledger(pg_url)
    ledger.runs.count_items("migrate-first")
    with ledger.engine.begin() as conn:
        for table in ("items", "scores"):
            conn.execute(sa.text(f"ALTER TABLE {table} SET (autovacuum_enabled = false)"))
    ledger.runs.create_run(make_run(n_items=5000, expected=5000))
    ledger.runs.add_items("run-1", [ItemIn(f"t{i:05d}", i, "h", record(f"t{i:05d}")) for i in range(5000)])
    ledger.scores.write_scores([make_score(f"t{i:05d}") for i in range(0, 5000, 2)])

    statements = [
        unscored_in_window("run-1", "faithfulness", 1000, 1500),
        scored_among("postgresql", "run-1", "faithfulness", [f"t{i:05d}" for i in range(1000, 1500)]),
    ]
    with ledger.engine.connect() as conn:
        for stmt in statements:
            sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            (plan,) = conn.execute(sa.text("EXPLAIN (FORMAT JSON) " + sql)).scalar_one()
            nodes = list(_plan_nodes(plan["Plan"]))
            probes = [n for n in nodes if n.get("Relation Name") == "scores"]
            assert probes and all(n.get("Parent Relationship") == "SubPlan" for n in probes), nodes
            assert all(n.get("Index Name") == "pk_scores" for n in probes), nodes
            assert not {"Hash Join", "Merge Join", "Nested Loop", "Materialize"} & {
                n["Node Type"] for n in nodes
            }
    ledger.close()


# -- configuration and failure ----------------------------------------------


def test_settings_read_the_environment_and_normalize_postgres_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUDGEQ_LEDGER_URL", raising=False)
    assert LedgerSettings().ledger_url == "sqlite:///judgeq.db"
    monkeypatch.setenv("JUDGEQ_LEDGER_URL", "postgres://judgeq:pw@db:5432/judgeq")
    assert LedgerSettings().ledger_url == "postgresql+psycopg://judgeq:pw@db:5432/judgeq"
    assert LedgerSettings(ledger_url="postgresql://db/j").ledger_url == "postgresql+psycopg://db/j"
    assert LedgerSettings(ledger_url="postgresql+psycopg://db/j").ledger_url == "postgresql+psycopg://db/j"


def test_an_unreachable_database_says_where_and_what_to_do() -> None:
    ledger = Ledger("postgresql://judgeq:s3cret@127.0.0.1:1/judgeq")
    with pytest.raises(LedgerUnavailable) as caught:
        ledger.runs.count_items("run-1")
    message = str(caught.value)
    assert "s3cret" not in message
    assert "postgresql+psycopg://judgeq:***@127.0.0.1:1/judgeq" in message
    assert "JUDGEQ_LEDGER_URL" in message


def test_an_sqlite_file_that_cannot_be_opened_is_unavailable(tmp_path: Any) -> None:
    with pytest.raises(LedgerUnavailable, match="folder exists"):
        Ledger(f"sqlite:///{tmp_path}/missing/dir/ledger.db").runs.count_items("run-1")


def test_the_upgrade_command_named_in_errors_migrates(empty_ledger_url: str) -> None:
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "ledger", empty_ledger_url], cwd=repo, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert f"revision {head_revision()}" in done.stdout
    engine = create_ledger_engine(empty_ledger_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
    engine.dispose()


def test_the_package_exports_what_it_lists() -> None:
    import ledger

    assert sorted(ledger.__all__) == sorted(ledger._HOMES)
    assert all(getattr(ledger, name) is not None for name in ledger.__all__)
