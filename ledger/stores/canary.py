"""Judge canaries' checks: ``Ledger.canary`` (``canary_checks``), and the canary runs they compare."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from ledger.db import Db
from ledger.models import CANARY_CHECKS, RUNS, CanaryCheck, Run
from ledger.budget_rows import check_limit

#: The tag of a canary run (``judgeq canary run`` submits with it).
CANARY_TAG = "canary"


class CanaryStore:
    """The checks of judge canaries, and the runs they read."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def record(self, check: CanaryCheck) -> CanaryCheck:
        """Write one check; the row as stored."""
        with self._db.session() as session:
            session.add(check)
            session.commit()
            session.refresh(check)
            session.expunge(check)
        return check

    def checks(self, judge: str, limit: int = 30) -> list[CanaryCheck]:
        """The judge's checks, newest first."""
        stmt = (sa.select(CanaryCheck).where(CANARY_CHECKS.c.judge == judge)
                .order_by(CANARY_CHECKS.c.at.desc(), CANARY_CHECKS.c.id.desc()).limit(check_limit(limit)))
        return self._db.rows(stmt)

    def latest(self) -> list[CanaryCheck]:
        """Each (judge, judge version)'s newest check that compared two runs (a no-data check shows nothing)."""
        newest = (sa.select(sa.func.max(CANARY_CHECKS.c.id)).where(CANARY_CHECKS.c.status != "no_data")
                  .group_by(CANARY_CHECKS.c.judge, CANARY_CHECKS.c.judge_version))
        return self._db.rows(sa.select(CanaryCheck).where(CANARY_CHECKS.c.id.in_(newest))
                             .order_by(CANARY_CHECKS.c.judge, CANARY_CHECKS.c.judge_version))

    def moved_between(self, judge: str, start: datetime, end: datetime) -> list[CanaryCheck]:
        """The judge's checks in ``[start, end)`` that alerted (judge drift), oldest first."""
        return self._db.rows(sa.select(CanaryCheck).where(
            CANARY_CHECKS.c.judge == judge, CANARY_CHECKS.c.status == "alert", CANARY_CHECKS.c.at >= start,
            CANARY_CHECKS.c.at < end).order_by(CANARY_CHECKS.c.at, CANARY_CHECKS.c.id))

    def runs(self, judge: str) -> list[Run]:
        """The judge's canary runs that are done, oldest first."""
        stmt = (sa.select(Run).where(RUNS.c.status == "done", RUNS.c.kind == "offline")
                .order_by(RUNS.c.created_at, RUNS.c.id))
        with self._db.session() as session:
            found: Sequence[Run] = [run for run in session.scalars(stmt)
                                    if CANARY_TAG in run.tags and judge in (run.judges or {})]
            for run in found:
                session.expunge(run)
        return list(found)
