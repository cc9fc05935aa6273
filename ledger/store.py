"""The Ledger: the only way the rest of judgeq reads and writes the ledger.

Tables come back as their SQLModel classes (``Run``, ``Score``), detached: all
columns loaded, no session behind them, so changing one writes nothing.
Inputs and computed figures are the dataclasses of ``ledger.rows``.

A Ledger is safe to share between threads (each call takes a pooled
connection for its own duration). The schema is created on first use of an
empty database (``ledger.migrate.ensure_schema``). Every error of the
database comes out as a :class:`LedgerError` (``ledger.refusals.from_database``):
:class:`LedgerUnavailable` when it cannot be reached, :class:`LedgerRefused`
when it refuses a statement; callers may retry both. A row whose values the
database will not take costs only itself (see :meth:`Ledger.write_scores`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from ledger.db import Db
from ledger.errors import LedgerArgumentError, LedgerDataError, RunExists, RunNotFound
from ledger.online import OnlineLedger
from ledger.spend import SpendLedger
from ledger.models import ITEMS, RUN_KINDS, RUN_STATUSES, RUNS, SCORES, Run, RunStatus, Score, utcnow
from ledger.queries import (IN_CHUNK, STREAM_BATCH_SCORES, errors_of, item_span, progress_counts, scored_among,
                            unscored_in_window)
from ledger.rows import EvalSummary, ItemIn, Progress, ScoreIn, unstorable
from ledger.summary import summarize
from ledger.text import loaded_json, storable
from ledger.stores.budgets import BudgetStore
from ledger.stores.drift import DriftStore
from ledger.stores.metrics import MetricsStore
from ledger.stores.teacher import TeacherStore
from ledger.upsert import insert_run, upsert_scores



class Ledger(OnlineLedger, SpendLedger):
    """Runs, their items and their score rows, in SQLite or PostgreSQL (online runs: ``ledger.online``;
    spend: ``ledger.spend``), and the stores of ``ledger.stores``: budgets (``ledger.budgets``), drift
    checks (``ledger.drift``), the exporter's figures (``ledger.metrics``), a judge's rows with their
    records (``ledger.teacher``)."""

    def __init__(self, url: str) -> None:
        self.db = Db(url)
        self.url: str = self.db.url
        self.engine: Engine = self.db.engine
        self._insert_run = insert_run(self.db.dialect)
        self._writer = self.db.writer
        self._probe_scores = upsert_scores(self.db.dialect, source=sa.select(*SCORES.c).where(sa.false()))
        self.budgets = BudgetStore(self.db)
        self.drift = DriftStore(self.db)
        self.metrics = MetricsStore(self.db)
        self.teacher = TeacherStore(self.db)

    # -- connection handling -------------------------------------------------

    def _connect(self) -> AbstractContextManager[Connection]:
        return self.db.connect()

    def _session(self) -> AbstractContextManager[Session]:
        return self.db.session()

    def close(self) -> None:
        """Close the pooled connections; the Ledger reconnects if used again."""
        self.db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

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
        with self._connect() as conn, conn.begin():
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
        with self._connect() as conn, conn.begin():
            if conn.execute(sa.update(RUNS).where(RUNS.c.id == run_id).values(values)).rowcount == 0:
                raise RunNotFound(run_id)

    def mark_stopped(self, run_id: str) -> bool:
        """Set a "running" run to "stopped" (its embedded process is ending); True if this call did.

        Conditional, so that a run another process found complete stays "done".
        """
        stmt = sa.update(RUNS).where(RUNS.c.id == run_id, RUNS.c.status == "running").values(status="stopped")
        with self._connect() as conn, conn.begin():
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
        with self._connect() as conn, conn.begin():
            if conn.execute(stmt).rowcount == 1:
                return True
            if conn.execute(sa.select(RUNS.c.id).where(RUNS.c.id == run_id)).first() is None:
                raise RunNotFound(run_id)
            return False

    def get_run(self, run_id: str) -> Run:
        """The run with this id; raises RunNotFound."""
        with self._session() as session:
            run = session.get(Run, run_id)
            if run is None:
                raise RunNotFound(run_id)
            session.expunge(run)
            return run

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
        with self._session() as session:
            # Tags are matched here rather than in SQL (JSON containment is
            # spelled differently per backend); the runs table is small.
            for run in session.scalars(stmt.execution_options(yield_per=100)):
                if tag is None or tag in run.tags:
                    session.expunge(run)
                    runs.append(run)
                    if len(runs) >= limit:
                        break
        return runs

    # -- items ---------------------------------------------------------------

    def add_items(self, run_id: str, items: Sequence[ItemIn]) -> None:
        """Store a run's records in one transaction; items already stored (same trace id) are left as they are."""
        if not items:
            return
        with self._connect() as conn, conn.begin():
            self._writer.add_items(conn, run_id, items)

    def count_items(self, run_id: str) -> int:
        """How many items the run has stored."""
        with self._connect() as conn:
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
        with self._connect() as conn:
            count, first, last = conn.execute(item_span(run_id)).one()
        if not count or first is None or last is None:
            return
        width = max(1, round(batch_size * (last - first + 1) / count))
        pending: list[dict[str, Any]] = []
        for lo in range(first, last + 1, width):
            with self._connect() as conn:
                rows = conn.execute(unscored_in_window(run_id, eval_name, lo, lo + width, reopen))
                pending.extend(loaded_json(row.record) for row in rows)
            while len(pending) >= batch_size:
                yield pending[:batch_size]
                del pending[:batch_size]
        if pending:
            yield pending

    # -- scores --------------------------------------------------------------

    def existing(self, run_id: str, eval_name: str, trace_ids: Sequence[str]) -> set[str]:
        """Those of ``trace_ids`` that already have a score row for ``eval_name``."""
        stored = {storable(trace_id): trace_id for trace_id in trace_ids}  # rows hold ids as ledger.text stores them
        keys = list(stored)
        found: set[str] = set()
        with self._connect() as conn:
            for start in range(0, len(keys), IN_CHUNK):
                chunk = keys[start : start + IN_CHUNK]
                found.update(
                    stored[key] for key in conn.execute(scored_among(conn.dialect.name, run_id, eval_name, chunk)).scalars()
                )
        return found

    def reopen_errors(self, run_id: str, eval_name: str, trace_ids: Sequence[str],
                      kinds: Collection[str] = ("transient",)) -> list[Score]:
        """Delete the error rows of ``kinds`` among ``trace_ids`` and return them: those items are to be judged again.

        Such an error (the provider did not answer; a refusal a configuration
        fix cures) is not a verdict; its item becomes an item without a row,
        counted as not yet judged, and the caller carries what the deleted row
        cost into the retry (or writes the row back if the retry cannot be
        enqueued). Rows with a verdict, and skips, are never touched.
        """
        removed: list[Score] = []
        with self._connect() as conn, conn.begin():
            for start in range(0, len(trace_ids), IN_CHUNK):
                among = (SCORES.c.run_id == run_id, SCORES.c.eval == eval_name,
                         SCORES.c.trace_id.in_(trace_ids[start : start + IN_CHUNK]), errors_of(kinds))
                # Asked first, so that a resume with nothing to reopen needs no DELETE privilege.
                if conn.execute(sa.select(SCORES.c.trace_id).where(*among).limit(1)).first() is None:
                    continue
                stmt = sa.delete(SCORES).where(*among).returning(*SCORES.c)
                removed.extend(Score.model_validate(dict(row._mapping)) for row in conn.execute(stmt))
        return removed

    def add_cost(self, run_id: str, eval_name: str, spent: Sequence[ScoreIn]) -> None:
        """Add the cost and tokens of ``spent`` (rows not written: their key had a row already) to the stored rows.

        So that spend counts every call paid for, also a verdict that arrived
        second for its item and was not stored.
        """
        paid = [row for row in spent if row.cost_usd or row.tokens_in or row.tokens_out]
        if not paid:
            return
        stmt = (
            sa.update(SCORES)
            .where(SCORES.c.run_id == run_id, SCORES.c.eval == eval_name,
                   SCORES.c.trace_id == sa.bindparam("key_trace_id"))
            .values(cost_usd=SCORES.c.cost_usd + sa.bindparam("add_cost", type_=sa.Float),
                    tokens_in=SCORES.c.tokens_in + sa.bindparam("add_in", type_=sa.Integer),
                    tokens_out=SCORES.c.tokens_out + sa.bindparam("add_out", type_=sa.Integer))
        )
        params = [{"key_trace_id": row.trace_id, "add_cost": row.cost_usd, "add_in": row.tokens_in,
                   "add_out": row.tokens_out} for row in paid]
        with self._connect() as conn, conn.begin():
            conn.execute(stmt, params)

    def write_scores(self, rows: Sequence[ScoreIn]) -> int:
        """Write score rows in one transaction, idempotently (see ``ledger.upsert``).

        Returns the number of rows inserted or replaced; rows left as they
        were (already written) are not counted. Rows without ``ts`` get the
        time of this call. Text is stored as ``ledger.text`` makes it.

        One row the database will not take (:class:`LedgerDataError`: a value
        out of range, a constraint) does not cost its neighbours: the batch is
        then written row by row, each in its own transaction, and only such a
        row is replaced by an error row (``ledger.rows.unstorable``) that keeps
        its cost and tokens where the database takes those. Any other error
        (lost connection, privileges) raises; a batch is then not written, and
        rows already written alone stay (writing them again changes nothing).
        """
        if not rows:
            return 0
        now = utcnow()
        try:
            return self._write_batch(rows, now)
        except LedgerDataError:
            pass  # some row the database will not take: each row alone finds which
        return sum(self._write_alone(row, now) for row in rows)

    def check_writable(self) -> None:
        """Raise :class:`LedgerRefused` (or ``LedgerUnavailable``) unless score rows may be written now.

        Runs the score upsert on no rows: the database checks the privileges
        it needs (INSERT, UPDATE) and refuses a read-only transaction, and
        nothing is written. It cannot foresee a full disk or a bad value.
        """
        with self._connect() as conn, conn.begin():
            conn.execute(self._probe_scores)

    def _write_batch(self, rows: Sequence[ScoreIn], now: datetime) -> int:
        with self._connect() as conn, conn.begin():
            return self._writer.write_scores(conn, rows, now)

    def _write_alone(self, row: ScoreIn, now: datetime) -> int:
        """Write ``row``, or if the database refuses it, the error row standing for it (with its usage if possible)."""
        try:
            return self._write_batch([row], now)
        except LedgerDataError as exc:
            problem = exc.detail
        try:
            return self._write_batch([unstorable(row, problem, keep_usage=True)], now)
        except LedgerDataError:  # the usage itself (a token count out of range) cannot be stored
            return self._write_batch([unstorable(row, problem, keep_usage=False)], now)

    def cached_verdicts(self, judge_version: str, content_hashes: Sequence[str]) -> dict[str, Score]:
        """The verdict cache: an "ok" row of ``judge_version`` for each of ``content_hashes`` that has one.

        Any run's row will do (they are the same verdict on the same content);
        errors and skips are never served. Uses the (judge_version,
        content_hash) index.
        """
        found: dict[str, Score] = {}
        wanted = sorted(set(content_hashes))
        with self._session() as session:
            for start in range(0, len(wanted), IN_CHUNK):
                stmt = sa.select(Score).where(
                    SCORES.c.judge_version == judge_version,
                    SCORES.c.content_hash.in_(wanted[start : start + IN_CHUNK]),
                    SCORES.c.status == "ok",
                )
                for score in session.scalars(stmt):
                    if score.content_hash is not None and score.content_hash not in found:
                        session.expunge(score)
                        found[score.content_hash] = score
        return found

    def spend(self, run_id: str) -> float:
        """What the run has cost so far, in USD (the sum of its rows' cost)."""
        with self._connect() as conn:
            total = conn.execute(sa.select(sa.func.sum(SCORES.c.cost_usd)).where(SCORES.c.run_id == run_id))
            return float(total.scalar_one() or 0.0)

    def scores(self, run_id: str, eval_name: str | None = None) -> Iterator[Score]:
        """The run's score rows (of one eval, or all), streamed in key order.

        Holds a connection until the iterator is exhausted or closed.
        """
        stmt = sa.select(Score).where(SCORES.c.run_id == run_id).order_by(SCORES.c.trace_id, SCORES.c.eval)
        if eval_name is not None:
            stmt = stmt.where(SCORES.c.eval == eval_name)
        with self._session() as session:
            for score in session.scalars(stmt.execution_options(yield_per=STREAM_BATCH_SCORES)):
                session.expunge(score)
                yield score

    def judged_items(self, run_id: str, eval_name: str) -> Iterator[tuple[Score, dict[str, Any]]]:
        """The run's rows of one eval, each with the record it judged (as stored in ``items``), in trace order.

        Rows whose item is not stored (none today: items are stored before
        their chunks are sent) are left out. Holds a connection until the
        iterator is exhausted or closed.
        """
        stmt = (sa.select(Score, ITEMS.c.record)
                .join(ITEMS, sa.and_(ITEMS.c.run_id == SCORES.c.run_id, ITEMS.c.trace_id == SCORES.c.trace_id))
                .where(SCORES.c.run_id == run_id, SCORES.c.eval == eval_name)
                .order_by(SCORES.c.trace_id))
        with self._session() as session:
            for score, record in session.execute(stmt.execution_options(yield_per=STREAM_BATCH_SCORES)):
                session.expunge(score)
                yield score, dict(loaded_json(record))

    def progress(self, run_id: str) -> Progress:
        """Score rows written for the run, by status, against the rows expected."""
        with self._connect() as conn:
            row = conn.execute(progress_counts(run_id)).first()
        if row is None:
            raise RunNotFound(run_id)
        expected, done, ok, errors, skipped = (int(value) for value in row)
        return Progress(expected=expected, done=done, ok=ok, errors=errors, skipped=skipped)

    def summary(self, run_id: str) -> list[EvalSummary]:
        """Per-eval figures of the run (see ``ledger.summary``); raises RunNotFound."""
        with self._connect() as conn:
            if conn.execute(sa.select(RUNS.c.id).where(RUNS.c.id == run_id)).first() is None:
                raise RunNotFound(run_id)
            return summarize(conn, run_id)

    def score_rows(self, run_id: str, by: str | None = None, cluster_by: str | None = None) -> dict[str, Any]:
        """The run's rows as per-eval columns (``ledger.frames.EvalRows``), with metadata keys asked for.

        numpy is imported here, not at the top: workers and ``--help`` do not need it.
        """
        from ledger.frames import load_rows

        with self._connect() as conn:
            if conn.execute(sa.select(RUNS.c.id).where(RUNS.c.id == run_id)).first() is None:
                raise RunNotFound(run_id)
            return load_rows(conn, run_id, by=by, cluster_by=cluster_by)

    def excerpts(self, run_id: str, trace_ids: Sequence[str]) -> dict[str, str]:
        """A short excerpt of each item's output, by trace id (see ``ledger.frames.load_excerpts``)."""
        from ledger.frames import load_excerpts

        with self._connect() as conn:
            return load_excerpts(conn, run_id, trace_ids)

