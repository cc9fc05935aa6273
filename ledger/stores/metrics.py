"""What the metrics exporter reads: the weighted mean score of the rows written in a recent window, per slice,
and the ledger's running totals (rows by status, cost, judge latency).

The window's means are one GROUP BY over the rows written (``ts``) in
[since, until), read through ``ix_scores_eval_ts`` per eval (the evals are
found by a skip scan, as ``ledger.stores.spend`` does). Only verdicts count: status
ok with a score. A row weighs its ``weight`` (1/p online, 1 offline). Slices
are metadata keys of the stored items, extracted by the database (JSON
extraction through SQLAlchemy's JSON type, the same on SQLite and
PostgreSQL), so records' text never leaves the database; a value comes back
as text (SQLite gives numbers and booleans as 1/0, PostgreSQL as their JSON
text), and an item without the key as None. Records are stored with their NULs
escaped (``ledger.text``), so the key asked for is escaped and the values are
turned back.

The totals (rows by status, cost, the latency histogram) are read over a
range of ``ts`` too, through the same index: the exporter adds up the rows
written since its last snapshot into Prometheus counters, rather than
aggregating the whole table per refresh (seconds on a million rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import sqlalchemy as sa

from ledger.db import Db
from ledger.models import ITEMS, RUNS, SCORES
from ledger.stores.spend import _aware, _judge_rows
from ledger.text import escape_text, unescape_text, value_text

#: Upper bounds (seconds) of the judge latency histogram's buckets (+Inf is implied).
LATENCY_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class WindowMean:
    """The verdicts of one eval, judge version, run kind and slice written in a window: weighted sums and count."""

    eval: str
    judge_version: str
    kind: str  # "online" or "offline"
    slices: tuple[str | None, ...]  # one value per metadata key asked for; None: the item has no such key
    weighted_sum: float  # sum of weight x score
    weight: float  # sum of weights
    rows: int


@dataclass(frozen=True)
class ScoreTotals:
    """Every row of one eval and status the ledger holds: its count, cost and (rows judged, not cached) latency."""

    eval: str
    status: str
    rows: int
    cost_usd: float
    timed: int  # rows that were judged (not served from the verdict cache): the latency histogram's count
    latency_s: float  # their summed latency
    buckets: tuple[int, ...]  # cumulative counts of timed rows with latency <= each of LATENCY_BUCKETS


def _slice_text(value: object) -> str | None:
    """A slice value as the database extracted it from a stored record: its escaped NULs back (``ledger.text``)."""
    return value_text(unescape_text(value) if isinstance(value, str) else value)


class MetricsStore:
    """The exporter's figures: ``Ledger.metrics`` (see the module's docstring)."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def window_means(self, since: datetime, until: datetime, slices: Sequence[str] = ()) -> list[WindowMean]:
        """The verdicts written in [since, until) grouped by eval, judge version, run kind and the values of the
        metadata keys ``slices``."""
        keys = [ITEMS.c.record[("metadata", escape_text(key))].as_string() for key in slices]
        score = sa.cast(SCORES.c.score, sa.Float)
        with self._db.connect() as conn:
            stmt = _judge_rows(conn, SCORES.c.eval, None, None, False, SCORES.c.judge_version, RUNS.c.kind, *keys,
                               sa.func.sum(SCORES.c.weight * score), sa.func.sum(SCORES.c.weight), sa.func.count())
            joined = SCORES.join(RUNS, RUNS.c.id == SCORES.c.run_id)
            if keys:
                joined = joined.outerjoin(ITEMS, sa.and_(ITEMS.c.run_id == SCORES.c.run_id,
                                                         ITEMS.c.trace_id == SCORES.c.trace_id))
            stmt = (stmt.select_from(joined)
                    .where(SCORES.c.ts >= _aware(since), SCORES.c.ts < _aware(until), SCORES.c.status == "ok",
                           SCORES.c.score.is_not(None))
                    .group_by(SCORES.c.eval, SCORES.c.judge_version, RUNS.c.kind, *keys))
            found = conn.execute(stmt).all()
        width = len(keys)
        return [WindowMean(eval=row[0], judge_version=row[1], kind=row[2],
                           slices=tuple(_slice_text(v) for v in row[3:3 + width]), weighted_sum=float(row[3 + width] or 0),
                           weight=float(row[4 + width] or 0), rows=int(row[5 + width])) for row in found]

    def score_totals(self, since: datetime, until: datetime) -> list[ScoreTotals]:
        """The rows written in [since, until), grouped by eval and status (see the module's docstring)."""
        timed = SCORES.c.cached.is_(False)
        latency = sa.cast(SCORES.c.latency_s, sa.Float)
        buckets = [sa.func.sum(sa.case((sa.and_(timed, latency <= bound), 1), else_=0)) for bound in LATENCY_BUCKETS]
        with self._db.connect() as conn:
            stmt = (_judge_rows(conn, SCORES.c.eval, None, None, False, SCORES.c.status, sa.func.count(),
                                sa.func.sum(SCORES.c.cost_usd), sa.func.sum(sa.case((timed, 1), else_=0)),
                                sa.func.sum(sa.case((timed, latency), else_=0.0)), *buckets)
                    .where(SCORES.c.ts >= _aware(since), SCORES.c.ts < _aware(until))
                    .group_by(SCORES.c.eval, SCORES.c.status).order_by(SCORES.c.eval, SCORES.c.status))
            found = conn.execute(stmt).all()
        return [ScoreTotals(eval=row[0], status=row[1], rows=int(row[2]), cost_usd=float(row[3] or 0),
                            timed=int(row[4] or 0), latency_s=float(row[5] or 0),
                            buckets=tuple(int(v or 0) for v in row[6:])) for row in found]

    def spent_by_judge(self, since: datetime, until: datetime) -> dict[str, float]:
        """USD spent per eval by online runs' rows written in [since, until) (what daily budgets count)."""
        with self._db.connect() as conn:
            stmt = _judge_rows(conn, SCORES.c.eval, None, None, True, sa.func.sum(SCORES.c.cost_usd)).where(
                SCORES.c.ts >= _aware(since), SCORES.c.ts < _aware(until)).group_by(SCORES.c.eval)
            return {name: float(total or 0) for name, total in conn.execute(stmt)}
