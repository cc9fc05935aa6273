"""The ledger side of daily budgets: the caps and their history, the controller's decisions, reservations, spend.

Spend of a judge on a day is the sum of ``scores.cost_usd`` over its rows
written (``ts``) in [day start, day end), of online runs only unless asked
otherwise: offline ``--max-cost`` runs have their own cap and do not draw on
the daily budget. Cache hits cost 0, so they count for nothing.

Reserve, then settle: enqueueing an online run reserves its expected cost
(:meth:`BudgetLedger.reserve`, once per run). While the run is not done its
reservation is outstanding for what its rows have not cost yet, max(0,
reserved - cost so far); once it is done (or abandoned) nothing is
outstanding. So spent + outstanding counts an in-flight run at its
reservation, or at what it really cost once that is more.

Fast on large ledgers: a judge's rows in a time range are read through
``ix_scores_eval_ts`` (eval, ts); "every judge" is the few distinct evals
found by a skip scan of that index, then the same ranges. A day's
reservations and decisions have their own (day, ...) indexes.

These are methods of :class:`ledger.store.Ledger` (this class is one of its bases).
"""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session

from ledger.budget_rows import DecisionIn, WindowTraffic, check_usd, parse_scope
from ledger.errors import LedgerArgumentError
from ledger.models import (BUDGET_DECISIONS, BUDGET_HISTORY, BUDGET_RESERVATIONS, BUDGET_VIAS, BUDGETS, RUNS,
                           SAMPLING_RATES, SCORES, WINDOW_STRATA, Budget, BudgetChange, BudgetDecision,
                           SamplingRate, utcnow)
from ledger.text import storable
from ledger.upsert import insert_if_absent, overwrite

#: Rows :meth:`BudgetLedger.cost_per_item` needs before it gives a figure: with per-call costs spread +-50 %
#: (a coefficient of variation near 0.3), the mean of 20 is within about 13 % of the truth 95 % of the time,
#: and the controller's pacing corrects the rest as actual spend comes in.
MIN_COST_ROWS: Final = 20
#: The recent rows :meth:`BudgetLedger.cost_per_item` averages at most: recent enough to follow a price change.
COST_ROWS: Final = 500
_SETTLED: Final = ("done", "abandoned")
#: The distinct evals of the scores table, one index probe each (a "loose index scan" on ix_scores_eval_ts).
_EVALS: Final = sa.text(
    "WITH RECURSIVE e(name) AS (SELECT MIN(eval) FROM scores UNION ALL "
    "SELECT (SELECT MIN(eval) FROM scores WHERE eval > e.name) FROM e WHERE e.name IS NOT NULL) "
    "SELECT name FROM e WHERE name IS NOT NULL")


class BudgetLedger:
    """The budget methods of the Ledger (see the module's docstring)."""

    @abstractmethod
    def _connect(self) -> AbstractContextManager[Connection]: ...

    @abstractmethod
    def _session(self) -> AbstractContextManager[Session]: ...

    # -- budgets and their history ---------------------------------------------

    def set_budget(self, scope: str, usd_per_day: float | None, *, who: str, via: str,
                   note: str = "") -> BudgetChange | None:
        """Set the budget of ``scope`` (None removes it) and write the change to the history; the change written.

        The budget and its history row are one transaction, serialized per
        scope (a lock), so each history row's ``old_usd`` is the value the
        previous change left. Removing a budget there is none of changes
        nothing and returns None.
        """
        parse_scope(scope)
        amount = None if usd_per_day is None else check_usd(usd_per_day, f"the budget of {scope}")
        if via not in BUDGET_VIAS:
            raise LedgerArgumentError(f"via must be one of {BUDGET_VIAS}, not {via!r}")
        if not who:
            raise LedgerArgumentError("who must name who changes the budget")
        now = utcnow()
        with self._locked(f"budget {scope}") as conn:
            old = conn.execute(sa.select(BUDGETS.c.usd_per_day).where(BUDGETS.c.scope == scope)).scalar()
            if amount is None and old is None:
                return None
            if amount is None:
                conn.execute(sa.delete(BUDGETS).where(BUDGETS.c.scope == scope))
            else:
                conn.execute(overwrite(conn.dialect.name, BUDGETS), {
                    "scope": scope, "usd_per_day": amount, "updated_at": now, "updated_by": storable(who)})
            change = {"at": now, "scope": scope, "old_usd": old, "new_usd": amount, "who": storable(who),
                      "via": via, "note": storable(note)}
            change_id = conn.execute(sa.insert(BUDGET_HISTORY).returning(BUDGET_HISTORY.c.id), change).scalar_one()
        return BudgetChange(id=change_id, **change)

    def budgets(self) -> dict[str, float]:
        """The budgets in force, USD per day by scope."""
        with self._connect() as conn:
            return {scope: float(usd) for scope, usd in conn.execute(sa.select(BUDGETS.c.scope,
                                                                              BUDGETS.c.usd_per_day))}

    def budget_entries(self) -> list[Budget]:
        """The budgets in force with who set them and when, by scope."""
        return self._rows(sa.select(Budget).order_by(BUDGETS.c.scope))

    def budget_history(self, limit: int = 50, scope: str | None = None) -> list[BudgetChange]:
        """Budget changes, newest first (of one scope if given)."""
        stmt = sa.select(BudgetChange).order_by(BUDGET_HISTORY.c.id.desc()).limit(_positive(limit))
        if scope is not None:
            stmt = stmt.where(BUDGET_HISTORY.c.scope == scope)
        return self._rows(stmt)

    # -- decisions -------------------------------------------------------------

    def record_decisions(self, rows: Sequence[DecisionIn]) -> int:
        """Write the controller's decisions (one transaction); how many were written."""
        if not rows:
            return 0
        now = utcnow()
        values = [{"at": row.at or now, "day": row.day, "schedule": storable(row.schedule),
                   "judge": storable(row.judge), "stratum": storable(row.stratum),
                   "window": None if row.window is None else storable(row.window), "rate": float(row.rate),
                   "expected_count": float(row.expected_count), "cost_per_item": float(row.cost_per_item),
                   "budget_left": float(row.budget_left), "reserved_usd": float(row.reserved_usd),
                   "reason": storable(row.reason)} for row in rows]
        with self._connect() as conn, conn.begin():
            conn.execute(sa.insert(BUDGET_DECISIONS), values)
        return len(values)

    def decisions(self, day: str | None = None, limit: int = 100, *, judge: str | None = None,
                  schedule: str | None = None) -> list[BudgetDecision]:
        """The controller's decisions, newest first: of one budget day, judge or schedule if given."""
        stmt = sa.select(BudgetDecision).order_by(BUDGET_DECISIONS.c.id.desc()).limit(_positive(limit))
        for column, value in (("day", day), ("judge", judge), ("schedule", schedule)):
            if value is not None:
                stmt = stmt.where(BUDGET_DECISIONS.c[column] == value)
        return self._rows(stmt)

    # -- reservations ----------------------------------------------------------

    def reserve(self, run_id: str, day: str, judge: str, schedule: str, usd: float) -> bool:
        """Set aside ``usd`` of ``day``'s budget for the online run ``run_id``; True if this call reserved.

        Once per run: of callers reserving for the same run (schedulers racing
        on a window, a rescan) the first one's amount stands, the others get False.
        """
        amount = check_usd(usd, f"the reservation of run {run_id}")
        row = {"run_id": storable(run_id), "day": day, "judge": storable(judge), "schedule": storable(schedule),
               "reserved_usd": amount, "created_at": utcnow()}
        with self._connect() as conn, conn.begin():
            return bool(conn.execute(insert_if_absent(conn.dialect.name, BUDGET_RESERVATIONS), row).rowcount == 1)

    def outstanding_reservations(self, day: str, judge: str | None = None, *, schedule: str | None = None) -> float:
        """USD reserved on ``day`` (for a judge, a schedule, or all) that the runs' rows have not settled yet.

        Per reservation: max(0, reserved - the cost of its run's rows so far)
        while the run is not done; 0 once it is done or abandoned, or after
        its rows cost more than was reserved (the spend then counts it all).
        """
        cost = (sa.select(sa.func.coalesce(sa.func.sum(SCORES.c.cost_usd), 0.0))
                .where(SCORES.c.run_id == BUDGET_RESERVATIONS.c.run_id).scalar_subquery())
        stmt = (sa.select(BUDGET_RESERVATIONS.c.reserved_usd, RUNS.c.status, cost)
                .select_from(BUDGET_RESERVATIONS.outerjoin(RUNS, RUNS.c.id == BUDGET_RESERVATIONS.c.run_id))
                .where(BUDGET_RESERVATIONS.c.day == day))
        if judge is not None:
            stmt = stmt.where(BUDGET_RESERVATIONS.c.judge == judge)
        if schedule is not None:
            stmt = stmt.where(BUDGET_RESERVATIONS.c.schedule == schedule)
        with self._connect() as conn:
            return sum(max(0.0, float(reserved) - float(spent)) for reserved, status, spent in conn.execute(stmt)
                       if status not in _SETTLED)

    # -- spend, cost and traffic -----------------------------------------------

    def spent(self, day_start: datetime, day_end: datetime, judge: str | None = None, *,
              schedule: str | None = None, online_only: bool = True) -> float:
        """USD spent by ``judge`` (None: every judge) on rows written in [day_start, day_end).

        Online runs only by default (a schedule's only, with ``schedule``);
        ``online_only=False`` adds offline runs.
        """
        with self._connect() as conn:
            stmt = _judge_rows(conn, sa.func.coalesce(sa.func.sum(SCORES.c.cost_usd), 0.0), judge, schedule,
                               online_only).where(SCORES.c.ts >= _aware(day_start), SCORES.c.ts < _aware(day_end))
            return float(conn.execute(stmt).scalar_one())

    def cache_hit_rate(self, judge: str | None, since: datetime, *, schedule: str | None = None,
                       online_only: bool = True) -> float | None:
        """The share of ``judge``'s verdicts (ok rows) since ``since`` served from the cache; None without any."""
        count = sa.func.count()
        with self._connect() as conn:
            stmt = _judge_rows(conn, count, judge, schedule, online_only, count.filter(SCORES.c.cached.is_(True)))
            total, hits = conn.execute(stmt.where(SCORES.c.ts >= _aware(since), SCORES.c.status == "ok")).one()
        return None if not total else int(hits) / int(total)

    def cost_per_item(self, judge: str, since: datetime, limit: int = COST_ROWS, *, version: str | None = None,
                      min_rows: int = MIN_COST_ROWS, online_only: bool = True) -> float | None:
        """The mean cost in USD of ``judge``'s recent paid verdicts: its newest ``limit`` ok, non-cached rows
        since ``since`` (of one judge version if given); None with fewer than ``min_rows`` of them.

        A cache hit costs nothing and is left out: the caller weighs this by the miss rate.
        """
        with self._connect() as conn:
            stmt = _judge_rows(conn, SCORES.c.cost_usd, judge, None, online_only).where(
                SCORES.c.ts >= _aware(since), SCORES.c.status == "ok", SCORES.c.cached.is_(False))
            if version is not None:
                stmt = stmt.where(SCORES.c.judge_version == version)
            costs = conn.execute(stmt.order_by(SCORES.c.ts.desc()).limit(_positive(limit))).scalars().all()
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
        with self._connect() as conn:
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

    def rates_in_force(self, judge: str | None = None, schedule: str | None = None) -> list[SamplingRate]:
        """The ``sampling_rates`` rows (of a judge, a schedule), by schedule, judge and stratum."""
        stmt = sa.select(SamplingRate).order_by(SAMPLING_RATES.c.schedule, SAMPLING_RATES.c.judge,
                                                SAMPLING_RATES.c.stratum)
        if judge is not None:
            stmt = stmt.where(SAMPLING_RATES.c.judge == judge)
        if schedule is not None:
            stmt = stmt.where(SAMPLING_RATES.c.schedule == schedule)
        return self._rows(stmt)

    # -- helpers ---------------------------------------------------------------

    def _rows(self, stmt: sa.Select[Any]) -> list[Any]:
        with self._session() as session:
            rows = list(session.scalars(stmt))
            for row in rows:
                session.expunge(row)
            return rows

    @contextmanager
    def _locked(self, name: str) -> Iterator[Connection]:
        """A write transaction holding a lock on ``name`` until it ends (committed unless it raises).

        PostgreSQL: a transaction-level advisory lock keyed by a hash of the
        name. SQLite: ``BEGIN IMMEDIATE``, the database's write lock, taken
        before the first read, so that read-then-write waits its turn instead
        of failing on a lock upgrade.
        """
        with self._connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()
                return
            with conn.begin():
                key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
                yield conn


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


def _positive(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise LedgerArgumentError(f"limit must be a whole number of at least 1, not {limit!r}")
    return limit
