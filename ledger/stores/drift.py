"""The ledger side of drift checks: a judge's scored rows over a span of online runs, and the checks' outcomes.

``DriftStore.rows`` reads what ``online.drift`` needs of a span's rows (score,
weight 1/p, cluster, and the metadata keys a check slices by), streamed, in
chunks of runs; the stored records' text stays in the database, only their
``metadata`` objects are read, and only when a key is asked for.
``record`` writes a check's rows (one per slice) in one transaction;
``checks`` reads them back, newest first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ledger.db import Db
from ledger.errors import LedgerArgumentError
from ledger.models import DRIFT_CHECKS, DRIFT_STATUSES, DRIFT_VIAS, ITEMS, RUNS, SCORES, DriftCheck
from ledger.queries import IN_CHUNK, STREAM_BATCH
from ledger.text import storable

_FLOATS = ("min_drop", "short_mean", "short_se", "long_mean", "long_se", "score_drop", "p_value", "adjusted_p")


@dataclass
class DriftRows:
    """A judge's scored rows (status ok, with a score) over some runs, column by column.

    ``cluster`` holds each row's session (else user) or None; ``by`` the
    values of each metadata key asked for (None: the record lacks it);
    ``keys_seen`` every metadata key the rows' records have (when keys were asked for).
    """

    score: list[float] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)
    cluster: list[str | None] = field(default_factory=list)
    by: dict[str, list[str | None]] = field(default_factory=dict)
    keys_seen: set[str] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.score)


@dataclass(frozen=True)
class WindowRun:
    """An online run as a drift check sees it: its window, when it was created, its judge version and status."""

    run_id: str
    window: str
    created_at: datetime
    version: str | None
    status: str


class DriftStore:
    """Drift checks' rows and outcomes: ``Ledger.drift`` (see the module's docstring)."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def prune(self, before: datetime) -> int:
        """Delete the drift checks' rows of checks made (``checked_at``) before ``before`` (the retention);
        how many. A check of an old span made today is kept."""
        from ledger.prune import prune_before

        return prune_before(self._db, DRIFT_CHECKS, "checked_at", before)

    def rows(self, run_ids: Sequence[str], judge: str, keys: Sequence[str] = ()) -> DriftRows:
        """The scored rows of ``judge`` in ``run_ids``, with the metadata ``keys`` of their records.

        ``ledger.frames`` (numpy) is imported here: workers, which load this module, never need it.
        """
        from ledger.frames import as_metadata, as_text

        out = DriftRows(by={key: [] for key in keys})
        columns: list[Any] = [SCORES.c.score, SCORES.c.weight, SCORES.c.cluster]
        joined = bool(keys)
        if joined:
            columns.append(ITEMS.c.record["metadata"])
        ids = list(dict.fromkeys(run_ids))
        with self._db.connect() as conn:
            for start in range(0, len(ids), IN_CHUNK):
                stmt = sa.select(*columns)
                if joined:
                    stmt = stmt.select_from(SCORES.outerjoin(ITEMS, sa.and_(
                        ITEMS.c.run_id == SCORES.c.run_id, ITEMS.c.trace_id == SCORES.c.trace_id)))
                stmt = stmt.where(SCORES.c.run_id.in_(ids[start : start + IN_CHUNK]), SCORES.c.eval == judge,
                                  SCORES.c.status == "ok", SCORES.c.score.is_not(None))
                for row in conn.execute(stmt.execution_options(yield_per=STREAM_BATCH)):
                    out.score.append(row[0])
                    out.weight.append(row[1])
                    out.cluster.append(row[2])
                    if joined:
                        meta = as_metadata(row[3])
                        out.keys_seen.update(meta)
                        for key in keys:
                            out.by[key].append(as_text(meta.get(key)))
        return out

    def runs(self, source: str, judge: str) -> list[WindowRun]:
        """``source``'s online runs with ``judge`` (their window ids, versions and statuses), oldest first."""
        stmt = sa.select(RUNS.c.id, RUNS.c.window, RUNS.c.created_at, RUNS.c.judges, RUNS.c.status).where(
            RUNS.c.kind == "online", RUNS.c.dataset_name == source, RUNS.c.window.is_not(None))
        found = []
        with self._db.connect() as conn:
            for run_id, window, created_at, judges, status in conn.execute(stmt):
                if isinstance(judges, dict) and judge in judges:  # JSON keys matched here, as windows.online_runs does
                    about = judges[judge] if isinstance(judges[judge], dict) else {}
                    found.append(WindowRun(run_id, window, created_at, about.get("version"), status))
        return sorted(found, key=lambda r: (r.created_at, r.run_id))

    def record(self, checks: Sequence[DriftCheck]) -> None:
        """Write one check's rows (one per slice) in one transaction; NaN and infinities are stored as NULL."""
        rows = []
        for check in checks:
            if check.status not in DRIFT_STATUSES:
                raise LedgerArgumentError(f"drift status must be one of {DRIFT_STATUSES}, not {check.status!r}")
            if check.via not in DRIFT_VIAS:
                raise LedgerArgumentError(f"drift checks are run via one of {DRIFT_VIAS}, not {check.via!r}")
            values = check.model_dump(exclude={"id"})
            for name in _FLOATS:
                value = values[name]
                if value is not None and not math.isfinite(value):
                    values[name] = None
            if values["min_drop"] is None:
                raise LedgerArgumentError("min_drop must be a finite number")
            rows.append({k: storable(v) if isinstance(v, str) else v for k, v in values.items()})
        if not rows:
            return
        with self._db.connect() as conn, conn.begin():
            conn.execute(sa.insert(DRIFT_CHECKS), rows)

    def checks(self, source: str, judge: str, *, status: str | None = None, since: datetime | None = None,
                     limit: int = 10_000) -> list[DriftCheck]:
        """The rows of ``source``'s and ``judge``'s checks (``status`` only, ``at`` >= ``since``), newest first."""
        stmt = sa.select(DriftCheck).where(DRIFT_CHECKS.c.source == source, DRIFT_CHECKS.c.judge == judge)
        if status is not None:
            stmt = stmt.where(DRIFT_CHECKS.c.status == status)
        if since is not None:
            stmt = stmt.where(DRIFT_CHECKS.c.at >= since)
        stmt = stmt.order_by(DRIFT_CHECKS.c.at.desc(), DRIFT_CHECKS.c.id.desc()).limit(limit)
        return self._db.rows(stmt)
