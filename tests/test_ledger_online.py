"""The ledger side of online runs, on SQLite and PostgreSQL (``ledger_url``).

Schedulers race on a window and rescan it after late traces, so the tests
race two real processes on one run: each run is created once, each item
stored (and so enqueued) by exactly one of them.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from ledger import ItemIn, Ledger, Run, RunNotFound, ScoreIn, StratumCounts
from ledger.errors import LedgerArgumentError
from ledger.models import utcnow

pytestmark = pytest.mark.timeout(120)

WINDOW = "2026-11-22T13"


def online_run(run_id: str = "o-1", window: str = WINDOW, judge: str = "faithfulness", **overrides: Any) -> Run:
    values: dict[str, Any] = {
        "id": run_id, "kind": "online", "dataset_name": "prod", "window": window,
        "judges": {judge: {"version": f"{judge}@0123456789ab", "kind": "llm"}},
        "meta": {"source": "prod", "schedule": "prod", "policy": {"unit": "trace"}},
    }
    return Run(**(values | overrides))


def items(*trace_ids: str) -> list[ItemIn]:
    return [ItemIn(trace_id=t, seq=i, content_hash=f"h-{t}", record={"id": t, "input": "q", "output": "a"})
            for i, t in enumerate(trace_ids)]


@pytest.fixture
def ledger(ledger_url: str):  # type: ignore[no-untyped-def]
    with Ledger(ledger_url) as ledger:
        yield ledger


# -- runs and items -----------------------------------------------------------


def test_an_online_run_is_created_once_and_kept_as_first_stored(ledger: Ledger) -> None:
    assert ledger.runs.create_run_if_absent(online_run()) is True
    assert ledger.runs.create_run_if_absent(online_run(meta={"other": True}, dataset_name="elsewhere")) is False

    stored = ledger.runs.get_run("o-1")
    assert (stored.kind, stored.window, stored.dataset_name) == ("online", WINDOW, "prod")
    assert stored.meta["source"] == "prod"


def test_only_items_not_stored_yet_are_added_and_returned(ledger: Ledger) -> None:
    ledger.runs.create_run_if_absent(online_run())

    assert sorted(ledger.runs.add_new_items("o-1", items("b", "a", "c", "a"))) == ["a", "b", "c"]
    assert sorted(ledger.runs.add_new_items("o-1", items("d", "a", "nul\x00id"))) == ["d", "nul\x00id"]
    assert ledger.runs.add_new_items("o-1", items("a", "d")) == []
    assert ledger.runs.add_new_items("o-1", []) == []
    assert ledger.runs.count_items("o-1") == 5


def _race(url: str, barrier: Any, batches: list[list[str]], out: Any) -> None:
    with Ledger(url) as ledger:
        ledger.runs.count_items("warm")  # connect and check the schema before the start line
        barrier.wait(timeout=60)
        try:
            created = ledger.runs.create_run_if_absent(online_run())
            added = [trace_id for batch in batches for trace_id in ledger.runs.add_new_items("o-1", items(*batch))]
        except Exception as exc:  # told to the test at once (a deadlock, say), not by its timeout
            out.put((None, repr(exc)))
            raise
        out.put((created, added))


def test_two_processes_racing_on_a_window_create_it_once_and_store_each_item_once(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    ledger.runs.count_items("migrate-first")  # the race is on the run, not the schema
    ids = [f"t{i:05d}" for i in range(6000)]
    # Overlapping, batched differently, one process backwards: unless both insert
    # in one order, PostgreSQL transactions waiting on each other's rows deadlock.
    first = [ids[:4000], ids[4000:5000]]
    second = [ids[2000:][::-1]]
    spawn = multiprocessing.get_context("spawn")
    barrier, out = spawn.Barrier(2), spawn.Queue()
    processes = [spawn.Process(target=_race, args=(ledger_url, barrier, batches, out)) for batches in (first, second)]
    with _held_item(ledger, ids[3000]):  # PostgreSQL: both stop halfway, inside each other's rows
        for process in processes:
            process.start()
    results = [out.get(timeout=90) for _ in processes]
    assert None not in [created for created, _ in results], results
    for process in processes:
        process.join(timeout=30)
    assert [process.exitcode for process in processes] == [0, 0]

    assert sorted(created for created, _ in results) == [False, True]
    returned = [trace_id for _, added in results for trace_id in added]
    assert sorted(returned) == ids  # every item stored by one process: none twice, none lost
    assert ledger.runs.count_items("o-1") == 6000
    ledger.close()


@contextmanager
def _held_item(ledger: Ledger, trace_id: str) -> Iterator[None]:
    """On PostgreSQL, hold an uncommitted insert of ``trace_id`` until two transactions wait on locks, then roll back.

    So that the racing processes are both in the middle of their inserts
    when they go on, every time (on SQLite one writer waits for the other's
    whole transaction: there is no middle to stop in).
    """
    if ledger.engine.dialect.name != "postgresql":
        yield
        return
    with ledger.engine.connect() as conn:
        conn.execute(sa.text("INSERT INTO items (run_id, trace_id, seq, content_hash, record) "
                             "VALUES ('o-1', :t, 0, 'h', '{}')"), {"t": trace_id})
        yield
        waiting = sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                          "AND wait_event_type = 'Lock'")
        deadline = time.monotonic() + 60
        with ledger.engine.connect() as watch:
            while True:
                count = watch.execute(waiting).scalar_one()
                watch.rollback()  # pg_stat_activity is read once per transaction
                if count >= 2:
                    break
                assert time.monotonic() < deadline, "the racing processes never both waited on a row"
                time.sleep(0.02)
        conn.rollback()


# -- counts -------------------------------------------------------------------


def test_refreshed_counts_follow_the_items_and_reopen_a_done_run(ledger: Ledger) -> None:
    ledger.runs.create_run_if_absent(online_run())
    ledger.runs.add_new_items("o-1", items("a", "b"))
    run = ledger.runs.refresh_run_counts("o-1")
    assert (run.n_items, run.expected, run.status) == (2, 2, "submitting")

    ledger.runs.set_status("o-1", "running")
    ledger.scores.write_scores([ScoreIn(run_id="o-1", trace_id=t, eval="faithfulness", judge_version="v", dataset=WINDOW,
                                 score=1.0) for t in "ab"])
    assert ledger.runs.mark_done_if_complete("o-1")
    assert ledger.runs.refresh_run_counts("o-1").status == "done"  # nothing new: stays done

    ledger.runs.add_new_items("o-1", items("a", "c"))  # a late trace
    run = ledger.runs.refresh_run_counts("o-1")
    assert (run.n_items, run.expected, run.status, run.finished_at) == (3, 3, "running", None)
    assert not ledger.runs.mark_done_if_complete("o-1")
    ledger.scores.write_scores([ScoreIn(run_id="o-1", trace_id="c", eval="faithfulness", judge_version="v",
                                 dataset=WINDOW, score=0.0)])
    assert ledger.runs.mark_done_if_complete("o-1")


def test_counts_never_go_back_and_expected_counts_every_judge(ledger: Ledger) -> None:
    ledger.runs.create_run_if_absent(online_run(judges={"a": {}, "b": {}}))
    ledger.runs.add_new_items("o-1", items("x", "y", "z"))
    assert ledger.runs.refresh_run_counts("o-1").expected == 6
    with ledger.engine.begin() as conn:  # what a refresh that counted before the last insert committed sees
        conn.execute(sa.text("DELETE FROM items WHERE trace_id = 'z'"))
    run = ledger.runs.refresh_run_counts("o-1")
    assert (run.n_items, run.expected) == (3, 6)
    with pytest.raises(RunNotFound):
        ledger.runs.refresh_run_counts("nope")


def test_strata_are_overwritten_by_a_rescan_and_read_by_name(ledger: Ledger) -> None:
    ledger.windows.record_strata("o-1", [StratumCounts("fr", 100, 10, 9, 9, 0.1), StratumCounts("de", 50, 0, 50, 50, 1.0)])
    ledger.windows.record_strata("o-1", [StratumCounts("fr", 120, 12, 11, 2, 0.1)])  # late traces arrived
    ledger.windows.record_strata("o-2", [StratumCounts("fr", 7, 0, 0, 0, 0.0)])

    # every count is the last scan's: enqueued is the window's sample, which the window job counts
    assert ledger.windows.strata("o-1") == [StratumCounts("de", 50, 0, 50, 50, 1.0), StratumCounts("fr", 120, 12, 11, 2, 0.1)]
    assert ledger.windows.strata("o-2") == [StratumCounts("fr", 7, 0, 0, 0, 0.0)]
    assert ledger.windows.strata("unknown") == []


@pytest.mark.parametrize("bad", [{"rate": 1.5}, {"rate": -0.1}, {"rate": float("nan")}, {"seen": -1},
                                 {"filtered": 1, "sampled": 1}])
def test_impossible_stratum_counts_are_refused_naming_the_stratum(bad: dict[str, float]) -> None:
    values: dict[str, Any] = {"stratum": "fr", "seen": 1, "filtered": 0, "sampled": 0, "enqueued": 0, "rate": 0.5}
    with pytest.raises(LedgerArgumentError, match="'fr'"):
        StratumCounts(**(values | bad))


# -- sampling rates -------------------------------------------------------------


def test_sampling_rates_are_set_per_schedule_judge_and_stratum(ledger: Ledger) -> None:
    assert ledger.windows.sampling_rates("prod") == {}
    ledger.windows.set_sampling_rate("prod", "faithfulness", "fr", 0.2, set_by="budget", reason="under budget")
    ledger.windows.set_sampling_rate("prod", "faithfulness", "de", 1, set_by="alice")
    ledger.windows.set_sampling_rate("prod", "faithfulness", "fr", 0.05, set_by="budget", reason="over budget")
    ledger.windows.set_sampling_rate("staging", "faithfulness", "fr", 0.5, set_by="alice")

    assert ledger.windows.sampling_rates("prod") == {("faithfulness", "fr"): 0.05, ("faithfulness", "de"): 1.0}
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT set_by, reason FROM sampling_rates WHERE schedule = 'prod' "
                                    "AND stratum = 'fr'")).one() == ("budget", "over budget")


def test_a_rate_outside_zero_one_is_refused_by_the_call_and_the_database(ledger: Ledger) -> None:
    for rate in (1.01, -1.0, float("inf"), True):
        with pytest.raises(LedgerArgumentError, match="prod/faithfulness/fr"):
            ledger.windows.set_sampling_rate("prod", "faithfulness", "fr", rate, set_by="budget")  # type: ignore[arg-type]
    with pytest.raises(LedgerArgumentError, match="set_by"):
        ledger.windows.set_sampling_rate("prod", "faithfulness", "fr", 0.5, set_by="")
    ledger.windows.sampling_rates("prod")  # the schema exists
    for table in ("sampling_rates", "window_strata"):
        with pytest.raises(sa.exc.IntegrityError), ledger.engine.begin() as conn:
            columns = ("schedule, judge, stratum, rate, set_by, reason, updated_at" if table == "sampling_rates"
                       else "run_id, stratum, seen, filtered, sampled, enqueued, rate, updated_at")
            values = ("'p', 'j', 's', 2, 'x', '', :now" if table == "sampling_rates"
                      else "'r', 's', 0, 0, 0, 0, 2, :now")
            conn.execute(sa.text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), {"now": utcnow()})


# -- finding a schedule's windows ---------------------------------------------------


def test_online_runs_are_those_of_a_source_and_judge_in_window_order(ledger: Ledger) -> None:
    t0 = utcnow()
    windows = ["2026-11-20", "2026-11-21", "2026-11-22"]
    ledger.runs.create_run_if_absent(online_run("o-22", windows[2], created_at=t0))
    ledger.runs.create_run_if_absent(online_run("o-20", windows[0], created_at=t0 + timedelta(seconds=1)))
    ledger.runs.create_run_if_absent(online_run("o-22-v2", windows[2], created_at=t0 + timedelta(seconds=2)))
    ledger.runs.create_run_if_absent(online_run("o-21-other-judge", windows[1], judge="relevance"))
    ledger.runs.create_run_if_absent(online_run("o-21-other-source", windows[1], dataset_name="staging"))
    ledger.runs.create_run_if_absent(online_run("o-19", "2026-11-19"))
    ledger.runs.create_run_if_absent(online_run("offline", windows[1], kind="offline"))

    found = ledger.windows.online_runs("prod", "faithfulness", windows)
    assert [run.id for run in found] == ["o-20", "o-22", "o-22-v2"]
    assert [run.id for run in ledger.windows.online_runs("prod", "relevance", windows)] == ["o-21-other-judge"]
    assert ledger.windows.online_runs("prod", "faithfulness", []) == []
