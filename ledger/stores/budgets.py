"""The ledger side of daily budgets: the caps and their history, the controller's decisions, reservations.

Reserve, then settle: enqueueing an online run reserves its expected cost
(:meth:`BudgetStore.reserve`, once per run). While the run is not done its
reservation is outstanding for what its rows have not cost yet, max(0,
reserved - cost so far); once it is done (or abandoned) nothing is
outstanding. So spent (``ledger.stores.spend``) + outstanding counts an in-flight
run at its reservation, or at what it really cost once that is more.

Changing a budget writes its history row in the same transaction, under a
lock per scope, so the history's old amounts chain. A day's reservations and
decisions are read through their (day, ...) indexes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.budget_rows import (MAX_NOTE_CHARS, MAX_WHO_CHARS, DecisionIn, check_limit, check_usd,
                                parse_scope, text_problem)
from ledger.db import Db
from ledger.errors import LedgerArgumentError
from ledger.models import (BUDGET_DECISIONS, BUDGET_HISTORY, BUDGET_RESERVATIONS, BUDGET_VIAS, BUDGETS, RUNS,
                           SAMPLING_RATES, SCORES, Budget, BudgetChange, BudgetDecision, SamplingRate, utcnow)
from ledger.stores.windows import rate_row
from ledger.text import storable
from ledger.upsert import insert_if_absent, overwrite

_SETTLED: Final = ("done", "abandoned")


class BudgetStore:
    """Budgets, their history, the controller's decisions, reservations: ``Ledger.budgets`` (module docstring)."""

    def __init__(self, db: Db) -> None:
        self._db = db

    # -- budgets and their history ---------------------------------------------

    def set_budget(self, scope: str, usd_per_day: float | None, *, who: str, via: str,
                   note: str = "") -> BudgetChange | None:
        """Set the budget of ``scope`` (None removes it) and write the change to the history; the change written.

        The budget and its history row are one transaction, serialized per
        scope (a lock), so each history row's ``old_usd`` is the value the
        previous change left. Removing a budget that is not set changes
        nothing and returns None.
        """
        parse_scope(scope)
        amount = None if usd_per_day is None else check_usd(usd_per_day, f"the budget of {scope}")
        if via not in BUDGET_VIAS:
            raise LedgerArgumentError(f"via must be one of {BUDGET_VIAS}, not {via!r}")
        if not who:
            raise LedgerArgumentError("who must name who changes the budget")
        for name, text, limit in (("who", who, MAX_WHO_CHARS), ("note", note, MAX_NOTE_CHARS)):
            problem = text_problem(text, limit)  # the callers' rule (online/budget/setting.py), held here too
            if problem is not None:
                raise LedgerArgumentError(f"{name} {problem}")
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
            change = BudgetChange(at=now, scope=scope, old_usd=old, new_usd=amount, who=storable(who), via=via,
                                  note=storable(note))
            values = change.model_dump(exclude={"id"})
            change.id = conn.execute(sa.insert(BUDGET_HISTORY).returning(BUDGET_HISTORY.c.id), values).scalar_one()
        return change

    def budgets(self) -> dict[str, float]:
        """The budgets in force, USD per day by scope."""
        with self._db.connect() as conn:
            return {scope: float(usd) for scope, usd in conn.execute(sa.select(BUDGETS.c.scope,
                                                                              BUDGETS.c.usd_per_day))}

    def entries(self) -> list[Budget]:
        """The budgets in force with who set them and when, by scope."""
        return self._db.rows(sa.select(Budget).order_by(BUDGETS.c.scope))

    def history(self, limit: int = 50, scope: str | None = None) -> list[BudgetChange]:
        """Budget changes, newest first (of one scope if given)."""
        stmt = sa.select(BudgetChange).order_by(BUDGET_HISTORY.c.id.desc()).limit(check_limit(limit))
        if scope is not None:
            stmt = stmt.where(BUDGET_HISTORY.c.scope == scope)
        return self._db.rows(stmt)

    # -- decisions -------------------------------------------------------------

    def record_decisions(self, rows: Sequence[DecisionIn]) -> int:
        """Write the controller's decisions (one transaction); how many were written."""
        if not rows:
            return 0
        with self._db.connect() as conn, conn.begin():
            conn.execute(sa.insert(BUDGET_DECISIONS), _decision_values(rows))
        return len(rows)

    def prune_decisions(self, before: datetime) -> int:
        """Delete the controller's decisions made before ``before`` (the retention); how many. The budget
        changes people made (``budget_history``) are never pruned: they are the audit trail."""
        from ledger.prune import prune_before

        return prune_before(self._db, BUDGET_DECISIONS, "at", before)

    def set_planned_rates(self, schedule: str, judge: str, rates: Mapping[str, tuple[float, str]],
                          decisions: Sequence[DecisionIn], *, set_by: str) -> None:
        """A plan in one transaction: its rates in force (stratum -> (rate, reason)) and the decisions behind
        them, so that nobody ever reads a rate the budget set without the decision that set it."""
        rows = [rate_row(schedule, judge, stratum, rate, set_by=set_by, reason=reason)
                for stratum, (rate, reason) in rates.items()]
        with self._db.connect() as conn, conn.begin():
            for row in rows:
                conn.execute(overwrite(conn.dialect.name, SAMPLING_RATES), row)
            if decisions:
                conn.execute(sa.insert(BUDGET_DECISIONS), _decision_values(decisions))

    def decisions(self, day: str | None = None, limit: int = 100, *, judge: str | None = None,
                  schedule: str | None = None) -> list[BudgetDecision]:
        """The controller's decisions, newest first: of one budget day, judge or schedule if given."""
        stmt = sa.select(BudgetDecision).order_by(BUDGET_DECISIONS.c.id.desc()).limit(check_limit(limit))
        for column, value in (("day", day), ("judge", judge), ("schedule", schedule)):
            if value is not None:
                stmt = stmt.where(BUDGET_DECISIONS.c[column] == value)
        return self._db.rows(stmt)

    # -- reservations ----------------------------------------------------------

    def reserve(self, run_id: str, day: str, judge: str, schedule: str, usd: float) -> bool:
        """Set aside ``usd`` of ``day``'s budget for the online run ``run_id``; True if this call reserved.

        Once per run: of callers reserving for the same run (schedulers racing
        on a window, a rescan) the first one's amount stands, the others get False.
        """
        amount = check_usd(usd, f"the reservation of run {run_id}")
        row = {"run_id": storable(run_id), "day": day, "judge": storable(judge), "schedule": storable(schedule),
               "reserved_usd": amount, "created_at": utcnow()}
        with self._db.connect() as conn, conn.begin():
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
        with self._db.connect() as conn:
            return sum(max(0.0, float(reserved) - float(spent)) for reserved, status, spent in conn.execute(stmt)
                       if status not in _SETTLED)

    def rates_in_force(self, judge: str | None = None, schedule: str | None = None) -> list[SamplingRate]:
        """The ``sampling_rates`` rows (of a judge, a schedule), by schedule, judge and stratum."""
        stmt = sa.select(SamplingRate).order_by(SAMPLING_RATES.c.schedule, SAMPLING_RATES.c.judge,
                                                SAMPLING_RATES.c.stratum)
        if judge is not None:
            stmt = stmt.where(SAMPLING_RATES.c.judge == judge)
        if schedule is not None:
            stmt = stmt.where(SAMPLING_RATES.c.schedule == schedule)
        return self._db.rows(stmt)

    # -- locks -----------------------------------------------------------------

    @contextmanager
    def planning_lock(self, name: str) -> Iterator[None]:
        """Held while a plan reads the money left and reserves against it, so that plans sharing a budget take
        turns: concurrent windows and judges never together plan past the budget.

        PostgreSQL: a session advisory lock on a connection of its own (other
        connections go on reading and writing). SQLite: an exclusive lock on a
        file beside the database, since the database's own write lock would
        stop the plan's writes on its other connections.
        """
        key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)
        if self._db.engine.dialect.name == "sqlite":
            import fcntl

            database = self._db.engine.url.database or "judgeq.db"
            with open(f"{database}.planning.lock", "a+b") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
            return
        with self._db.connect() as conn:
            conn.execute(sa.select(sa.func.pg_advisory_lock(key)))
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                conn.commit()

    @contextmanager
    def _locked(self, name: str) -> Iterator[Connection]:
        """A write transaction holding a lock on ``name`` until it ends (committed unless it raises).

        PostgreSQL: a transaction-level advisory lock keyed by a hash of the
        name. SQLite: ``BEGIN IMMEDIATE``, the database's write lock, taken
        before the first read, so that read-then-write waits its turn instead
        of failing on a lock upgrade.
        """
        with self._db.connect() as conn:
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


def _decision_values(rows: Sequence[DecisionIn]) -> list[dict[str, Any]]:
    now = utcnow()
    return [{"at": row.at or now, "day": row.day, "schedule": storable(row.schedule), "judge": storable(row.judge),
             "stratum": storable(row.stratum), "window": None if row.window is None else storable(row.window),
             "rate": float(row.rate), "expected_count": float(row.expected_count),
             "cost_per_item": float(row.cost_per_item), "budget_left": float(row.budget_left),
             "reserved_usd": float(row.reserved_usd), "reason": storable(row.reason)} for row in rows]
