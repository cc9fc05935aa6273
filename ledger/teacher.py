"""A judge's verdicts with the records they judged: what a distilled judge is trained on.

These are methods of :class:`ledger.store.Ledger` (this class is one of its bases).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.models import ITEMS, SCORES

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


class TeacherLedger:
    """Reading a judge's rows together with their items (see the module's docstring)."""

    @abstractmethod
    def _connect(self) -> AbstractContextManager[Connection]: ...

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
            with self._connect() as conn:
                for row in conn.execute(stmt.execution_options(yield_per=_BATCH)):
                    yield VerdictRow(run_id=row[0], trace_id=row[1], status=row[2], label=row[3], score=row[4],
                                     judge_version=row[5], cluster=row[6],
                                     record=row[7] if isinstance(row[7], dict) else None)
