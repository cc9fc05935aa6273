"""The runs store: runs (offline and online) and their items.

Every write here is safe to repeat and to run in several processes at once,
since schedulers may race on an online window and a window may be scanned
again after late traces:

- :meth:`RunStore.create_run_if_absent`: exactly one caller creates the run;
- :meth:`RunStore.add_new_items`: each item is inserted, and reported as
  new, by exactly one caller; the others are told it was there (so it is
  enqueued once);
- :meth:`RunStore.refresh_run_counts`: ``n_items`` and ``expected``
  follow the stored items, never backwards, and a "done" run that got new
  items is "running" again;
- :meth:`RunStore.mark_done_if_complete`: of processes noticing completion
  at once, exactly one marks the run done.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ledger.db import Db
from ledger.errors import LedgerArgumentError, RunExists, RunNotFound
from ledger.models import ITEMS, RUN_KINDS, RUN_STATUSES, RUNS, SCORES, Run, RunStatus, utcnow
from ledger.queries import item_span, require_run, unscored_in_window
from ledger.rows import ItemIn
from ledger.text import loaded_json, storable
from ledger.upsert import insert_run


class RunStore:
    """Runs and their items: ``Ledger.runs`` (see the module's docstring)."""

    def __init__(self, db: Db) -> None:
        self._db = db
        self._insert_run = insert_run(db.dialect)

    # -- runs ----------------------------------------------------------------

    def create_run(self, run: Run) -> None:
        """Store a new run; raises RunExists if its id is taken."""
        if not self.create_run_if_absent(run):
            raise RunExists(run.id)

    def create_run_if_absent(self, run: Run) -> bool:
        """Store ``run`` unless its id is taken: True if this call created it, False if it existed.

        One INSERT .. ON CONFLICT DO NOTHING, so that of processes creating
        the same run at once (schedulers racing on a window) exactly one gets True.
        """
        if run.kind not in RUN_KINDS:
            raise LedgerArgumentError(f"run kind must be one of {RUN_KINDS}, not {run.kind!r}")
        if run.status not in RUN_STATUSES:
            raise LedgerArgumentError(f"run status must be one of {RUN_STATUSES}, not {run.status!r}")
        values = {key: storable(value) if isinstance(value, str) else value for key, value in run.model_dump().items()}
        with self._db.connect() as conn, conn.begin():
            return bool(conn.execute(self._insert_run, values).rowcount == 1)

    def set_status(self, run_id: str, status: RunStatus, *, at: datetime | None = None) -> None:
        """Set a run's status; "running" stamps submitted_at (once), "done" stamps finished_at."""
        if status not in RUN_STATUSES:
            raise LedgerArgumentError(f"run status must be one of {RUN_STATUSES}, not {status!r}")
        at = at or utcnow()
        values: dict[str, Any] = {"status": status}
        if status == "running":
            values["submitted_at"] = sa.func.coalesce(RUNS.c.submitted_at, at)
            values["finished_at"] = None  # a resumed run is not finished
        elif status == "done":  # whoever notices completion first sets the time
            values["finished_at"] = sa.func.coalesce(RUNS.c.finished_at, at)
        with self._db.connect() as conn, conn.begin():
            if conn.execute(sa.update(RUNS).where(RUNS.c.id == run_id).values(values)).rowcount == 0:
                raise RunNotFound(run_id)

    def mark_stopped(self, run_id: str) -> bool:
        """Set a "running" run to "stopped" (its embedded process is ending); True if this call did.

        Conditional, so that a run another process found complete stays "done".
        """
        stmt = sa.update(RUNS).where(RUNS.c.id == run_id, RUNS.c.status == "running").values(status="stopped")
        with self._db.connect() as conn, conn.begin():
            return bool(conn.execute(stmt).rowcount == 1)

    def mark_done_if_complete(self, run_id: str, *, at: datetime | None = None) -> bool:
        """Set a "running" (or "stopped") run to "done" if all its expected rows are written; True if this call did.

        One conditional UPDATE, so that of several processes noticing
        completion at once exactly one gets True, and a run still
        "submitting" is never marked done before it was fully submitted.
        """
        written = sa.select(sa.func.count()).where(SCORES.c.run_id == run_id).scalar_subquery()
        stmt = (
            sa.update(RUNS)
            .where(RUNS.c.id == run_id, RUNS.c.status.in_(("running", "stopped")), RUNS.c.expected <= written)
            .values(status="done", finished_at=at or utcnow())
        )
        with self._db.connect() as conn, conn.begin():
            if conn.execute(stmt).rowcount == 1:
                return True
            require_run(conn, run_id)
            return False

    def get_run(self, run_id: str) -> Run:
        """The run with this id; raises RunNotFound."""
        with self._db.session() as session:
            run = session.get(Run, run_id)
            if run is None:
                raise RunNotFound(run_id)
            session.expunge(run)
            return run

    def find_run(self, run_id: str) -> Run | None:
        """The run ``run_id``, or None when there is none."""
        try:
            return self.get_run(run_id)
        except RunNotFound:
            return None

    def list_runs(
        self,
        limit: int = 20,
        dataset_name: str | None = None,
        tag: str | None = None,
        status: RunStatus | None = None,
    ) -> list[Run]:
        """Runs, newest first, optionally only those of a dataset, with a tag, or in a status."""
        stmt = sa.select(Run).order_by(RUNS.c.created_at.desc(), RUNS.c.id.desc())
        if dataset_name is not None:
            stmt = stmt.where(RUNS.c.dataset_name == dataset_name)
        if status is not None:
            stmt = stmt.where(RUNS.c.status == status)
        if tag is None:
            stmt = stmt.limit(limit)
        runs: list[Run] = []
        with self._db.session() as session:
            # Tags are matched here rather than in SQL (JSON containment is
            # spelled differently per backend); the runs table is small.
            for run in session.scalars(stmt.execution_options(yield_per=100)):
                if tag is None or tag in run.tags:
                    session.expunge(run)
                    runs.append(run)
                    if len(runs) >= limit:
                        break
        return runs

    def refresh_run_counts(self, run_id: str) -> Run:
        """Set ``n_items`` to the run's stored items and ``expected`` to n_items x judges; the run as it is now.

        The counts only grow (a refresh that read fewer items than another
        stored is a late one), and a "done" run that gained items is
        "running" again, with no finish time: its new rows are still to come.
        Offline runs never call this; their counts are fixed at submission.
        """
        with self._db.connect() as conn, conn.begin():
            judges = conn.execute(sa.select(RUNS.c.judges).where(RUNS.c.id == run_id)).first()
            if judges is None:
                raise RunNotFound(run_id)
            stored = sa.select(sa.func.count()).where(ITEMS.c.run_id == run_id).scalar_subquery()
            grown = stored > RUNS.c.n_items
            n_items = sa.case((grown, stored), else_=RUNS.c.n_items)
            reopened = sa.and_(RUNS.c.status == "done", grown)
            conn.execute(sa.update(RUNS).where(RUNS.c.id == run_id).values(
                n_items=n_items,
                expected=n_items * max(1, len(judges[0] or {})),
                status=sa.case((reopened, "running"), else_=RUNS.c.status),
                finished_at=sa.case((reopened, sa.null()), else_=RUNS.c.finished_at),
            ))
        return self.get_run(run_id)

    def note_scan(self, run_id: str, skipped: dict[str, int]) -> None:
        """Keep in the run's meta what the last scan of its window skipped (no ts, malformed, duplicate...)."""
        with self._db.session() as session:
            run = session.get(Run, run_id)
            if run is None:
                raise RunNotFound(run_id)
            run.meta = {**(run.meta or {}), "skipped": dict(skipped), "scanned_at": utcnow().isoformat()}
            session.add(run)
            session.commit()

    # -- items ---------------------------------------------------------------

    def add_items(self, run_id: str, items: Sequence[ItemIn]) -> None:
        """Store a run's records in one transaction; items already stored (same trace id) are left as they are."""
        if not items:
            return
        with self._db.connect() as conn, conn.begin():
            self._db.writer.add_items(conn, run_id, items)

    def add_new_items(self, run_id: str, items: Sequence[ItemIn]) -> list[str]:
        """Store those of ``items`` the run does not have yet; return the trace ids this call stored.

        One transaction. Of callers adding overlapping items at once, each item
        is returned by exactly one: the caller that got it enqueues it.
        """
        if not items:
            return []
        given = {storable(item.trace_id): item.trace_id for item in reversed(items)}  # the first of equal ids
        with self._db.connect() as conn, conn.begin():
            inserted = self._db.writer.add_new_items(conn, run_id, items)
        return [given.get(trace_id, trace_id) for trace_id in inserted]

    def count_items(self, run_id: str) -> int:
        """How many items the run has stored."""
        with self._db.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(ITEMS.c.run_id == run_id)).scalar_one())

    def missing_items(
        self, run_id: str, eval_name: str, batch_size: int = 500, *, reopen: Collection[str] = ()
    ) -> Iterator[list[dict[str, Any]]]:
        """The stored records that have no score row for ``eval_name``, in seq order, in batches.

        ``reopen``: also those whose row is an error of one of these kinds
        (``judgeq resume`` retries transient errors, and those its ``--retry-errors`` names).

        Reads the items in windows of seq sized to hold about ``batch_size``
        items each (seq is the position in the dataset, so windows are
        dense), never OFFSET, and holds no connection between windows; see
        ``ledger.queries`` for why windows. Items added after the call
        started, past the last seq it saw, are not included.
        """
        if batch_size < 1:
            raise LedgerArgumentError(f"batch_size must be at least 1, not {batch_size}")
        with self._db.connect() as conn:
            count, first, last = conn.execute(item_span(run_id)).one()
        if not count or first is None or last is None:
            return
        width = max(1, round(batch_size * (last - first + 1) / count))
        pending: list[dict[str, Any]] = []
        for lo in range(first, last + 1, width):
            with self._db.connect() as conn:
                rows = conn.execute(unscored_in_window(run_id, eval_name, lo, lo + width, reopen))
                pending.extend(loaded_json(row.record) for row in rows)
            while len(pending) >= batch_size:
                yield pending[:batch_size]
                del pending[:batch_size]
        if pending:
            yield pending
