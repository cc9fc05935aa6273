"""The scores store: the score rows of runs, one per run x trace x eval, and what is read from them.

Rows are written idempotently (``ledger.upsert``), and a row the database
will not take costs only itself (see :meth:`ScoreStore.write_scores`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ledger.db import Db
from ledger.errors import LedgerDataError, RunNotFound
from ledger.models import ITEMS, SCORES, Score, utcnow
from ledger.queries import (IN_CHUNK, STREAM_BATCH_SCORES, errors_of, progress_counts, require_run,
                            scored_among)
from ledger.rows import EvalSummary, Progress, ProviderIdentity, ScoreIn, unstorable
from ledger.summary import provider_identities, summarize
from ledger.text import loaded_json, storable
from ledger.upsert import upsert_scores


class ScoreStore:
    """Score rows: ``Ledger.scores`` (see the module's docstring)."""

    def __init__(self, db: Db) -> None:
        self._db = db
        self._probe_scores = upsert_scores(db.dialect, source=sa.select(*SCORES.c).where(sa.false()))

    # -- writing ---------------------------------------------------------------

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
        with self._db.connect() as conn, conn.begin():
            conn.execute(self._probe_scores)

    def _write_batch(self, rows: Sequence[ScoreIn], now: datetime) -> int:
        with self._db.connect() as conn, conn.begin():
            return self._db.writer.write_scores(conn, rows, now)

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
        with self._db.connect() as conn, conn.begin():
            conn.execute(stmt, params)

    def existing(self, run_id: str, eval_name: str, trace_ids: Sequence[str]) -> set[str]:
        """Those of ``trace_ids`` that already have a score row for ``eval_name``."""
        stored = {storable(trace_id): trace_id for trace_id in trace_ids}  # rows hold ids as ledger.text stores them
        keys = list(stored)
        found: set[str] = set()
        with self._db.connect() as conn:
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
        with self._db.connect() as conn, conn.begin():
            for start in range(0, len(trace_ids), IN_CHUNK):
                among = (SCORES.c.run_id == run_id, SCORES.c.eval == eval_name,
                         SCORES.c.trace_id.in_(trace_ids[start : start + IN_CHUNK]), errors_of(kinds))
                # Asked first, so that a resume with nothing to reopen needs no DELETE privilege.
                if conn.execute(sa.select(SCORES.c.trace_id).where(*among).limit(1)).first() is None:
                    continue
                stmt = sa.delete(SCORES).where(*among).returning(*SCORES.c)
                removed.extend(Score.model_validate(dict(row._mapping)) for row in conn.execute(stmt))
        return removed

    # -- reading ---------------------------------------------------------------

    def cached_verdicts(self, judge_version: str, content_hashes: Sequence[str]) -> dict[str, Score]:
        """The verdict cache: an "ok" row of ``judge_version`` for each of ``content_hashes`` that has one.

        Any run's row will do (they are the same verdict on the same content);
        errors and skips are never served. Uses the (judge_version,
        content_hash) index.
        """
        found: dict[str, Score] = {}
        wanted = sorted(set(content_hashes))
        with self._db.session() as session:
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
        with self._db.connect() as conn:
            total = conn.execute(sa.select(sa.func.sum(SCORES.c.cost_usd)).where(SCORES.c.run_id == run_id))
            return float(total.scalar_one() or 0.0)

    def scores(self, run_id: str, eval_name: str | None = None) -> Iterator[Score]:
        """The run's score rows (of one eval, or all), streamed in key order.

        Holds a connection until the iterator is exhausted or closed.
        """
        stmt = sa.select(Score).where(SCORES.c.run_id == run_id).order_by(SCORES.c.trace_id, SCORES.c.eval)
        if eval_name is not None:
            stmt = stmt.where(SCORES.c.eval == eval_name)
        with self._db.session() as session:
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
        with self._db.session() as session:
            for score, record in session.execute(stmt.execution_options(yield_per=STREAM_BATCH_SCORES)):
                session.expunge(score)
                yield score, dict(loaded_json(record))

    def progress(self, run_id: str) -> Progress:
        """Score rows written for the run, by status, against the rows expected."""
        with self._db.connect() as conn:
            row = conn.execute(progress_counts(run_id)).first()
        if row is None:
            raise RunNotFound(run_id)
        expected, done, ok, errors, skipped = (int(value) for value in row)
        return Progress(expected=expected, done=done, ok=ok, errors=errors, skipped=skipped)

    def summary(self, run_id: str) -> list[EvalSummary]:
        """Per-eval figures of the run (see ``ledger.summary``); raises RunNotFound."""
        with self._db.connect() as conn:
            require_run(conn, run_id)
            return summarize(conn, run_id)

    def providers(self, run_ids: Sequence[str], eval_name: str) -> list[ProviderIdentity]:
        """The models and system fingerprints the provider said answered ``eval_name``'s calls in these runs,
        first seen first, merged over the runs (``ledger.summary.provider_identities``)."""
        merged: dict[tuple[str | None, str | None], ProviderIdentity] = {}
        with self._db.connect() as conn:
            for start in range(0, len(run_ids), IN_CHUNK):
                for found in provider_identities(conn, run_ids[start:start + IN_CHUNK]).get(eval_name, ()):
                    key = (found.model, found.fingerprint)
                    was = merged.get(key)
                    merged[key] = found if was is None else ProviderIdentity(
                        found.model, found.fingerprint, was.rows + found.rows, min(was.first_ts, found.first_ts),
                        max(was.last_ts, found.last_ts))
        return sorted(merged.values(), key=lambda i: (i.first_ts, i.model or "", i.fingerprint or ""))

    def score_rows(self, run_id: str, by: str | None = None, cluster_by: str | None = None) -> dict[str, Any]:
        """The run's rows as per-eval columns (``ledger.frames.EvalRows``), with metadata keys asked for.

        numpy is imported here, not at the top: workers and ``--help`` do not need it.
        """
        from ledger.frames import load_rows

        with self._db.connect() as conn:
            require_run(conn, run_id)
            return load_rows(conn, run_id, by=by, cluster_by=cluster_by)

    def excerpts(self, run_id: str, trace_ids: Sequence[str]) -> dict[str, str]:
        """A short excerpt of each item's output, by trace id (see ``ledger.frames.load_excerpts``)."""
        from ledger.frames import load_excerpts

        with self._db.connect() as conn:
            return load_excerpts(conn, run_id, trace_ids)
