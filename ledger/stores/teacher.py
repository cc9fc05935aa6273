"""A judge's verdicts with the records they judged (what a distilled judge is trained on), and a
cascade's stages in a run (what ``judgeq report`` shows of it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa

from ledger.db import Db
from ledger.models import ITEMS, SCORES
from ledger.text import loaded_json

_BATCH: Final = 2000  # rows fetched at a time


@dataclass(frozen=True)
class VerdictRow:
    """One score row of a judge and the record it judged (None when the run kept no item for it)."""

    run_id: str
    trace_id: str
    status: str
    label: str | None
    score: float | None
    judge_version: str
    cluster: str | None
    record: dict[str, Any] | None


@dataclass(frozen=True)
class CascadeCounts:
    """A cascade's rows in one run: how many each stage decided, the audit, and what was paid.

    ``called``: rows that paid the LLM judge (escalated, or audited); ``called_usd`` their cost.
    """

    eval: str
    rows: int
    first: int
    then: int
    audited: int
    audit_agreed: int
    cost_usd: float
    called: int
    called_usd: float


class TeacherStore:
    """A judge's rows with their items: ``Ledger.teacher`` (see the module's docstring)."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def verdict_rows(self, eval_name: str, run_ids: Sequence[str]) -> Iterator[VerdictRow]:
        """Every row of ``eval_name`` in ``run_ids`` (any status), with its item's record, run by run."""
        join = SCORES.outerjoin(ITEMS, sa.and_(ITEMS.c.run_id == SCORES.c.run_id,
                                               ITEMS.c.trace_id == SCORES.c.trace_id))
        for run_id in dict.fromkeys(run_ids):
            stmt = (sa.select(SCORES.c.run_id, SCORES.c.trace_id, SCORES.c.status, SCORES.c.label, SCORES.c.score,
                              SCORES.c.judge_version, SCORES.c.cluster, ITEMS.c.record)
                    .select_from(join)
                    .where(SCORES.c.run_id == run_id, SCORES.c.eval == eval_name)
                    .order_by(SCORES.c.trace_id))
            with self._db.connect() as conn:
                for row in conn.execute(stmt.execution_options(yield_per=_BATCH)):
                    yield VerdictRow(run_id=row[0], trace_id=row[1], status=row[2], label=row[3], score=row[4],
                                     judge_version=row[5], cluster=row[6],
                                     record=loaded_json(row[7]) if isinstance(row[7], dict) else None)

    def cascade_counts(self, run_id: str) -> list[CascadeCounts]:
        """Per eval with cascade rows (a ``stage``) in the run: its counts, by eval name."""
        c = SCORES.c
        paid = sa.and_(c.cost_usd > 0, sa.or_(c.stage == "then", c.audit_label.is_not(None)))
        stmt = (sa.select(c.eval, sa.func.count(),
                          sa.func.sum(sa.case((c.stage == "first", 1), else_=0)),
                          sa.func.sum(sa.case((c.stage == "then", 1), else_=0)),
                          sa.func.sum(sa.case((c.audit_label.is_not(None), 1), else_=0)),
                          sa.func.sum(sa.case((c.audit_label == c.label, 1), else_=0)),
                          sa.func.sum(c.cost_usd),
                          sa.func.sum(sa.case((paid, 1), else_=0)),
                          sa.func.sum(sa.case((paid, c.cost_usd), else_=0.0)))
                .where(c.run_id == run_id, c.stage.is_not(None)).group_by(c.eval).order_by(c.eval))
        with self._db.connect() as conn:
            return [CascadeCounts(eval=r[0], rows=int(r[1]), first=int(r[2] or 0), then=int(r[3] or 0),
                                  audited=int(r[4] or 0), audit_agreed=int(r[5] or 0), cost_usd=float(r[6] or 0),
                                  called=int(r[7] or 0), called_usd=float(r[8] or 0))
                    for r in conn.execute(stmt)]
