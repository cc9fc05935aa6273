"""Read queries whose shape is chosen for the indexes, on both backends.

Each is a range or point lookup on a primary key or ``ix_items_run_seq``, so
its plan does not hang on table statistics (which PostgreSQL lacks for
tables loaded seconds ago, before autovacuum has analyzed them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.models import ITEMS, RUNS, SCORES

IN_CHUNK: Final = 1000  # trace ids per IN (...) list


def progress_counts(run_id: str) -> sa.Select[tuple[int, int, int, int, int]]:
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


def item_keys_after(run_id: str, after: tuple[int, str] | None, limit: int) -> sa.Select[tuple[int, str]]:
    """(seq, trace_id) of the run's next ``limit`` items after the key ``after``, in order."""
    stmt = (
        sa.select(ITEMS.c.seq, ITEMS.c.trace_id)
        .where(ITEMS.c.run_id == run_id)
        .order_by(ITEMS.c.seq, ITEMS.c.trace_id)
        .limit(limit)
    )
    if after is not None:
        seq, trace_id = after
        stmt = stmt.where(ITEMS.c.seq >= seq, sa.or_(ITEMS.c.seq > seq, ITEMS.c.trace_id > trace_id))
    return stmt


def scored_trace_ids(conn: Connection, run_id: str, eval_name: str, trace_ids: Sequence[str]) -> set[str]:
    """Those of ``trace_ids`` with a score row for ``eval_name`` in the run."""
    found: set[str] = set()
    for start in range(0, len(trace_ids), IN_CHUNK):
        stmt = sa.select(SCORES.c.trace_id).where(
            SCORES.c.run_id == run_id,
            SCORES.c.eval == eval_name,
            SCORES.c.trace_id.in_(trace_ids[start : start + IN_CHUNK]),
        )
        found.update(conn.execute(stmt).scalars())
    return found


def records_by_trace_id(conn: Connection, run_id: str, trace_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored records of these items of the run."""
    records: dict[str, dict[str, Any]] = {}
    for start in range(0, len(trace_ids), IN_CHUNK):
        stmt = sa.select(ITEMS.c.trace_id, ITEMS.c.record).where(
            ITEMS.c.run_id == run_id, ITEMS.c.trace_id.in_(trace_ids[start : start + IN_CHUNK])
        )
        records.update((row.trace_id, row.record) for row in conn.execute(stmt))
    return records
