"""A run's life after an interrupted submit: completed from its file, or abandoned.

The story: a run cut off while it was submitted is "submitting" with some of
its items stored. ``check_resumable`` decides what resume may do (the same
file, by its SHA-256, or nothing); ``abandon`` gives a run up, and no gate or
baseline uses it. The file itself must stay what was validated while it is
streamed: ``iter_batches`` given the scan catches a change before it hands
out a batch read after it. Migration 0003 lets the ledger store "abandoned".
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from ledger.models import Run
from ledger.store import Ledger
from scheduler.errors import DatasetChanged, UsageError
from scheduler.records import iter_batches, scan


def write(path: Path, n: int, start: int = 0) -> Path:
    path.write_text("".join(json.dumps({"id": f"i{i}", "output": f"answer {i:04d}"}) + "\n"
                            for i in range(start, start + n)))
    return path


# --- a file that changes while it is streamed ------------------------------------


def test_an_unchanged_file_streams_whole(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", 10)
    info = scan(path)
    assert [len(b) for b in iter_batches(path, 4, expect=info)] == [4, 4, 2]


def test_a_file_appended_to_after_the_scan_is_caught_before_any_batch(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", 10)
    info = scan(path)
    with path.open("a") as f:
        f.write(json.dumps({"id": "late", "output": "x"}) + "\n")
    batches = iter_batches(path, 4, expect=info)
    with pytest.raises(DatasetChanged, match=r"d\.jsonl: was written to after it was validated"):
        next(batches)


def test_a_file_replaced_during_streaming_is_caught_at_the_next_batch(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", 10)
    info = scan(path)
    batches = iter_batches(path, 4, expect=info)
    first = next(batches)
    write(tmp_path / "new.jsonl", 10, start=100).replace(path)  # an atomic rename, as editors and rsync do
    with pytest.raises(DatasetChanged, match="was replaced after it was validated"):
        next(batches)
    assert [r.id for _, r in first] == ["i0", "i1", "i2", "i3"]


def test_a_change_that_keeps_size_and_mtime_is_caught_by_the_hash_before_the_last_batch(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", 10)
    info = scan(path)
    stat = os.stat(path)
    text = path.read_text().replace("answer 0007", "answer 9999")  # same length
    with path.open("r+") as f:  # in place: same inode
        f.write(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    handed_out = []
    with pytest.raises(DatasetChanged, match=rf"changed after it was validated \(sha256 {info.short} then"):
        for batch in iter_batches(path, 4, expect=info):
            handed_out.append(batch)
    assert [len(b) for b in handed_out] == [4, 4]  # the last batch, holding line 8, never left


# --- resume, abandon ---------------------------------------------------------------


def cut_off_run(ledger: Ledger, path: Path, stored: int) -> Run:
    """A run as a submit cut off after ``stored`` items leaves it."""
    from scheduler.submit import items_of

    info = scan(path)
    run = Run(id="r1", kind="offline", dataset_name=info.name, dataset_hash=info.content_hash,
              judges={"exact": {"version": "exact@0"}}, n_items=info.count, expected=info.count,
              status="submitting")
    ledger.runs.create_run(run)
    batch = next(iter_batches(path, stored))
    ledger.runs.add_items(run.id, items_of(batch))
    return ledger.runs.get_run(run.id)


def test_a_cut_off_run_needs_its_own_file(tmp_path: Path) -> None:
    from scheduler.submit import check_resumable, store_missing_items

    path = write(tmp_path / "d.jsonl", 10)
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    run = cut_off_run(ledger, path, 4)

    with pytest.raises(UsageError, match=r"4 of 10 items stored.*'judgeq resume r1 --dataset FILE'.*abandon r1"):
        check_resumable(run, ledger, None)
    other = write(tmp_path / "other.jsonl", 10, start=1)
    with pytest.raises(UsageError, match=rf"sha256 is {scan(other).short}, but run r1 .* sha256 is "
                                         rf"{scan(path).short}"):
        check_resumable(run, ledger, other)
    info = check_resumable(run, ledger, path)
    assert info is not None
    store_missing_items(run, info, ledger)
    store_missing_items(run, info, ledger)  # idempotent: stored items are left as they are
    assert ledger.runs.count_items(run.id) == 10
    assert check_resumable(run, ledger, None) is None  # every item is there: no file needed
    ledger.close()


def test_abandon(tmp_path: Path) -> None:
    from scheduler.baseline import resolve
    from scheduler.submit import abandon, check_resumable

    path = write(tmp_path / "d.jsonl", 10)
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    run = cut_off_run(ledger, path, 4)
    assert abandon(run, ledger) is True
    run = ledger.runs.get_run(run.id)
    assert run.status == "abandoned"
    assert abandon(run, ledger) is False
    assert ledger.runs.mark_done_if_complete(run.id) is False  # never "done" again
    with pytest.raises(UsageError, match="abandoned"):
        check_resumable(run, ledger, path)
    with pytest.raises(UsageError, match="abandoned"):
        resolve(ledger, run.id, "d", "main")
    ledger.runs.set_status(run.id, "done")
    with pytest.raises(UsageError, match="is done"):
        abandon(ledger.runs.get_run(run.id), ledger)
    ledger.close()


# --- the migration -----------------------------------------------------------------


def test_migration_0003_lets_a_run_be_abandoned_and_keeps_the_checks(empty_ledger_url: str) -> None:
    from alembic import command

    from ledger.engine import create_ledger_engine
    from ledger.migrate import alembic_config, upgrade

    engine = create_ledger_engine(empty_ledger_url)
    with engine.connect() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
        conn.commit()
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO runs (id, kind, dataset_name, judges, n_items, expected, status, "
                             "created_at, tags, meta) VALUES ('old', 'offline', 'd', '{}', 1, 1, 'submitting', "
                             "'2026-11-01', '[]', '{}')"))

    def stored(sql: str) -> bool:
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(sql))
            return True
        except sa.exc.IntegrityError:
            return False

    assert not stored("UPDATE runs SET status = 'abandoned'")
    upgrade(engine)
    assert stored("UPDATE runs SET status = 'abandoned'")
    assert not stored("UPDATE runs SET status = 'lost'")
    assert not stored("UPDATE runs SET kind = 'other'")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT id, status FROM runs")).all() == [("old", "abandoned")]
    engine.dispose()
