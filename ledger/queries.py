"""Read queries shaped so that their PostgreSQL plans do not hang on table statistics.

PostgreSQL has no statistics for a run whose rows arrived after the last
ANALYZE: a freshly loaded table, or any new run in a ledger of fewer than
about a hundred runs (all run ids are "most common values", so an unknown id
is estimated at one row). On such estimates the planner happily turns
"items without a score row" into a scan of all the run's scores per item,
minutes instead of milliseconds for a 100k-item run. So the queries below
leave it no unbounded plan to pick:

- items are read in windows of ``seq`` (a bounded index range), not with
  LIMIT, which invites a scan-everything-then-sort plan;
- "has a score row" is a per-row primary-key probe. ``OFFSET 0`` in the
  EXISTS subquery is the planner fence that keeps it one: PostgreSQL does not
  flatten a subquery with an OFFSET into a join (SQLite ignores it).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.errors import RunNotFound
from ledger.models import ITEMS, RUNS, SCORES

IN_CHUNK: Final = 1000  # keys per IN (...) list of a ledger query (SQLite allows 32,766 bound values)

#: Rows fetched at a time (``yield_per``) by a query that streams narrow tuples: a few numbers and short
#: texts per row (summaries, frames, drift rows), so a large batch costs little memory and saves round trips.
STREAM_BATCH: Final = 5000
#: Rows fetched at a time when whole ``Score`` objects are streamed (every column, a reason of up to a few
#: KiB, and in ``Ledger.scores.judged_items`` the record judged as well): a smaller batch keeps memory flat.
STREAM_BATCH_SCORES: Final = 1000
_FENCE: Final[sa.ColumnElement[int]] = sa.literal_column("0", sa.Integer)


def require_run(conn: Connection, run_id: str) -> None:
    """Raise RunNotFound unless the run exists: for reads that would otherwise find nothing, silently."""
    if conn.execute(sa.select(RUNS.c.id).where(RUNS.c.id == run_id)).first() is None:
        raise RunNotFound(run_id)


def progress_counts(run_id: str) -> sa.Select[int, int, int, int, int]:
    """One row (expected, written, ok, errors, skipped) for the run; no row if there is no such run."""
    count = sa.func.count(SCORES.c.trace_id)
    return (
        sa.select(
            RUNS.c.expected,
            count,
            count.filter(SCORES.c.status == "ok"),
            count.filter(SCORES.c.status == "error"),
            count.filter(SCORES.c.status == "skipped"),
        )
        .select_from(RUNS)
        .outerjoin(SCORES, SCORES.c.run_id == RUNS.c.id)
        .where(RUNS.c.id == run_id)
        .group_by(RUNS.c.id, RUNS.c.expected)
    )


def item_span(run_id: str) -> sa.Select[int, int | None, int | None]:
    """One row (count, min seq, max seq) of the run's items."""
    seq = ITEMS.c.seq
    return sa.select(sa.func.count(), sa.func.min(seq), sa.func.max(seq)).where(ITEMS.c.run_id == run_id)


def errors_of(kinds: Collection[str]) -> sa.ColumnElement[bool]:
    """Error rows (never a verdict, never a skip) whose ``error_kind`` is one of ``kinds``."""
    return sa.and_(SCORES.c.status == "error", SCORES.c.error_kind.in_(sorted(kinds)))


#: A row that is not a verdict but a failure to reach the provider: ``judgeq resume`` retries it.
TRANSIENT: Final = errors_of(("transient",))


def _has_score(run_id: Any, trace_id: Any, eval_name: str, *, reopen: Collection[str] = ()) -> sa.Exists:
    """A score row exists for the key (one that is not an error of a kind in ``reopen``)."""
    probe: sa.Select[int] = sa.select(sa.literal_column("1", sa.Integer)).where(
        SCORES.c.run_id == run_id, SCORES.c.trace_id == trace_id, SCORES.c.eval == eval_name
    )
    if reopen:
        probe = probe.where(~errors_of(reopen))
    return sa.exists(probe.offset(_FENCE))


def unscored_in_window(run_id: str, eval_name: str, lo: int, hi: int,
                       reopen: Collection[str] = ()) -> sa.Select[int, str, Any]:
    """(seq, trace_id, record) of the run's items with lo <= seq < hi and no row for the eval, in order.

    ``reopen``: also the items whose row is an error of one of these kinds.
    """
    return (
        sa.select(ITEMS.c.seq, ITEMS.c.trace_id, ITEMS.c.record)
        .where(
            ITEMS.c.run_id == run_id,
            ITEMS.c.seq >= lo,
            ITEMS.c.seq < hi,
            ~_has_score(ITEMS.c.run_id, ITEMS.c.trace_id, eval_name, reopen=reopen),
        )
        .order_by(ITEMS.c.seq, ITEMS.c.trace_id)
    )


def scored_among(dialect_name: str, run_id: str, eval_name: str, trace_ids: Sequence[str]) -> sa.Select[str]:
    """Those of ``trace_ids`` (at most IN_CHUNK of them) with a score row for the eval in the run."""
    if dialect_name == "postgresql":
        # Not IN (...): PostgreSQL 15 may apply a list on the key's second
        # column as a filter over all the run's rows. A VALUES list probed row
        # by row cannot be planned that way. (SQLite cannot name VALUES
        # columns, and its planner probes the key for IN anyway.)
        wanted = sa.values(sa.column("trace_id", sa.String), name="wanted").data([(t,) for t in trace_ids])
        return sa.select(wanted.c.trace_id).where(_has_score(run_id, wanted.c.trace_id, eval_name))
    return sa.select(SCORES.c.trace_id).where(
        SCORES.c.run_id == run_id, SCORES.c.eval == eval_name, SCORES.c.trace_id.in_(trace_ids)
    )
