"""What the budget controller plans from: a judge's spend on a day, its cost per item and cache hit rate,
and the traffic of a schedule's recent windows.

Spend of a judge on a day is the sum of ``scores.cost_usd`` over its rows
written (``ts``) in [day start, day end), of online runs only unless asked
otherwise: offline ``--max-cost`` runs have their own cap and do not draw on
the daily budget. Cache hits cost 0, so they count for nothing.

Fast on large ledgers: a judge's rows in a time range are read through
``ix_scores_eval_ts`` (eval, ts), and the newest ones by walking it
backwards; "every judge" is the few distinct evals found by a skip scan of
that index, then the same ranges. A schedule's windows come through
``ix_runs_kind_dataset_name_window`` and ``window_strata``'s key.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.budget_rows import WindowTraffic, check_limit
from ledger.db import Db
from ledger.errors import LedgerArgumentError
from ledger.models import RUNS, SCORES, WINDOW_STRATA

#: Rows :meth:`SpendStore.cost_per_item` needs before it gives a figure: with per-call costs spread +-50 %
#: (a coefficient of variation near 0.3), the mean of 20 is within about 13 % of the truth 95 % of the time,
#: and the controller's pacing corrects the rest as actual spend comes in.
MIN_COST_ROWS: Final = 20
#: The recent rows :meth:`SpendStore.cost_per_item` averages at most: recent enough to follow a price change.
COST_ROWS: Final = 500
#: The recent verdicts :meth:`SpendStore.cache_hit_rate` looks at most: the rate now, not the day's average.
HIT_ROWS: Final = 1000
#: The distinct evals of the scores table, one index probe each (a "loose index scan" on ix_scores_eval_ts).
_EVALS: Final = sa.text(
    "WITH RECURSIVE e(name) AS (SELECT MIN(eval) FROM scores UNION ALL "
    "SELECT (SELECT MIN(eval) FROM scores WHERE eval > e.name) FROM e WHERE e.name IS NOT NULL) "
    "SELECT name FROM e WHERE name IS NOT NULL")


class SpendStore:
    """What the budget controller plans from: ``Ledger.spend`` (see the module's docstring)."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def spent(self, day_start: datetime, day_end: datetime, judge: str | None = None, *,
              schedule: str | None = None, online_only: bool = True) -> float:
        """USD spent by ``judge`` (None: every judge) on rows written in [day_start, day_end).

        Online runs only by default (a schedule's only, with ``schedule``);
        ``online_only=False`` adds offline runs.
        """
        with self._db.connect() as conn:
            stmt = _judge_rows(conn, sa.func.coalesce(sa.func.sum(SCORES.c.cost_usd), 0.0), judge, schedule,
                               online_only).where(SCORES.c.ts >= _aware(day_start), SCORES.c.ts < _aware(day_end))
            return float(conn.execute(stmt).scalar_one())

    def cache_hit_rate(self, judge: str | None, since: datetime, limit: int = HIT_ROWS, *,
                       until: datetime | None = None, schedule: str | None = None,
                       online_only: bool = True) -> float | None:
        """The share of ``judge``'s newest ``limit`` verdicts (ok rows) written in [since, until) that were served
        from the cache; None without any."""
        with self._db.connect() as conn:
            stmt = _judge_rows(conn, SCORES.c.cached, judge, schedule, online_only).where(
                SCORES.c.ts >= _aware(since), SCORES.c.status == "ok")
            if until is not None:
                stmt = stmt.where(SCORES.c.ts < _aware(until))
            recent = stmt.order_by(SCORES.c.ts.desc()).limit(check_limit(limit)).subquery()
            count = sa.func.count()
            total, hits = conn.execute(sa.select(count, count.filter(recent.c.cached.is_(True)))).one()
        return None if not total else int(hits) / int(total)

    def cost_per_item(self, judge: str, since: datetime, limit: int = COST_ROWS, *, version: str | None = None,
                      min_rows: int = MIN_COST_ROWS, online_only: bool = True) -> float | None:
        """The mean cost in USD of ``judge``'s recent paid verdicts: its newest ``limit`` ok, non-cached rows
        since ``since`` (of one judge version if given); None with fewer than ``min_rows`` of them.

        A cache hit costs nothing and is left out: the caller weighs this by the miss rate.
        """
        with self._db.connect() as conn:
            stmt = _judge_rows(conn, SCORES.c.cost_usd, judge, None, online_only).where(
                SCORES.c.ts >= _aware(since), SCORES.c.status == "ok", SCORES.c.cached.is_(False))
            if version is not None:
                stmt = stmt.where(SCORES.c.judge_version == version)
            costs = conn.execute(stmt.order_by(SCORES.c.ts.desc()).limit(check_limit(limit))).scalars().all()
        if len(costs) < max(1, min_rows):
            return None
        return sum(float(cost) for cost in costs) / len(costs)

    def recent_window_counts(self, schedule: str, judge: str | None, since: datetime) -> list[WindowTraffic]:
        """The traces of the schedule's windows that started at or after ``since``, oldest first (``window_strata``).

        With ``judge``, read from that judge's runs (every judge of a schedule
        reads the same windows); a window judged in several runs (a new judge
        version) counts once, by its most-read run.
        """
        # Window ids start with their start's date, or are ISO weeks "YYYY-Www" of a year no earlier than the
        # start's ('W' sorts after digits): so `window >= since's date` keeps every window wanted, and the
        # start recorded in the run's meta decides exactly.
        stmt = (sa.select(RUNS.c.id, RUNS.c.window, RUNS.c.judges, RUNS.c.meta, WINDOW_STRATA.c.stratum,
                          WINDOW_STRATA.c.seen, WINDOW_STRATA.c.filtered)
                .select_from(RUNS.join(WINDOW_STRATA, WINDOW_STRATA.c.run_id == RUNS.c.id))
                .where(RUNS.c.kind == "online", RUNS.c.dataset_name == schedule,
                       RUNS.c.window >= f"{_aware(since).astimezone(UTC):%Y-%m-%d}"))
        runs: dict[str, tuple[str, datetime | None, dict[str, int], dict[str, int]]] = {}
        with self._db.connect() as conn:
            for run_id, window, judges, meta, stratum, seen, filtered in conn.execute(stmt):
                if judge is not None and judge not in (judges or {}):
                    continue
                start = _window_start(meta)
                if start is not None and start < since:
                    continue
                found = runs.setdefault(run_id, (window, start, defaultdict(int), defaultdict(int)))
                found[2][stratum] += int(seen)
                found[3][stratum] += int(seen) - int(filtered)
        best: dict[str, WindowTraffic] = {}
        for window, start, seen_by, eligible in runs.values():
            traffic = WindowTraffic(window=window, start=start, seen=sum(seen_by.values()), eligible=dict(eligible))
            if window not in best or traffic.seen > best[window].seen:
                best[window] = traffic
        return sorted(best.values(), key=lambda t: (t.start is None, t.start or since, t.window))


def _judge_rows(conn: Connection, column: Any, judge: str | None, schedule: str | None, online_only: bool,
                *more: Any) -> sa.Select[Any]:
    """SELECT ``column`` (and ``more``) over the score rows of ``judge`` (None: every judge), of online runs
    (of ``schedule``) only unless ``online_only`` is false and no schedule is given."""
    evals = [judge] if judge is not None else list(conn.execute(_EVALS).scalars())
    stmt = sa.select(column, *more).where(SCORES.c.eval == evals[0] if len(evals) == 1 else
                                          SCORES.c.eval.in_(evals) if evals else sa.false())
    if online_only or schedule is not None:
        stmt = stmt.select_from(SCORES.join(RUNS, RUNS.c.id == SCORES.c.run_id)).where(RUNS.c.kind == "online")
        if schedule is not None:
            stmt = stmt.where(RUNS.c.dataset_name == schedule)
    return stmt


def _window_start(meta: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(meta["window"]["start"])
    except (KeyError, TypeError, ValueError):
        return None


def _aware(instant: datetime) -> datetime:
    if instant.utcoffset() is None:
        raise LedgerArgumentError(f"{instant!r} has no time zone; give an aware datetime (UTC)")
    return instant
