"""A run's score rows as per-eval columns, for the estimators in ``ledger.stats``.

One streamed query over the run's score rows, joined to its items only when a
metadata key is asked for (``--by locale``, ``--cluster-by session_id``): the
key is read from the stored record's ``metadata`` object by the database
(JSON extraction works the same on SQLite and PostgreSQL through SQLAlchemy's
JSON type), so the records' text never leaves the database. Values of a key
become strings; an item without the key has None. An online run's rows are
read with their own sampling columns instead: the stratum as the slice, the
cluster (session, else user) as the cluster, and the weight 1/p they carry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.errors import LedgerArgumentError
from ledger.models import ITEMS, SCORES
from ledger.queries import IN_CHUNK, STREAM_BATCH
from ledger.text import loaded_json, unescape_text
from ledger.text import value_text as as_text  # public: ledger.stores.drift slices by it too

EXCERPT_CHARS: Final = 80


@dataclass
class EvalRows:
    """One eval's rows of a run, column by column, in trace id order.

    ``score`` is NaN where a row has no score (errors, skips); ``by`` and
    ``cluster`` hold the metadata values asked for (None: not asked).
    """

    eval: str
    trace_ids: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    score: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    weight: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    cost: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    latency: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    wait: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    by: list[str | None] | None = None
    cluster: list[str | None] | None = None

    @property
    def scored(self) -> npt.NDArray[np.bool_]:
        """Rows that count as measurements: status ok with a score."""
        return (np.array(self.status, dtype=object) == "ok") & ~np.isnan(self.score)

    def subset(self, mask: npt.NDArray[np.bool_]) -> EvalRows:
        """The rows where ``mask`` holds."""
        idx = np.flatnonzero(mask)
        pick = (lambda xs: [xs[i] for i in idx]) if idx.size != len(self.trace_ids) else (lambda xs: list(xs))
        return EvalRows(
            eval=self.eval, trace_ids=pick(self.trace_ids), status=pick(self.status), score=self.score[idx],
            weight=self.weight[idx], cost=self.cost[idx], latency=self.latency[idx], wait=self.wait[idx],
            by=None if self.by is None else pick(self.by),
            cluster=None if self.cluster is None else pick(self.cluster),
        )


def load_rows(conn: Connection, run_id: str, by: str | None = None, cluster_by: str | None = None, *,
              sampled: bool = False) -> dict[str, EvalRows]:
    """The run's score rows per eval (ordered by eval name), with the metadata keys asked for.

    ``sampled`` (an online run): ``by`` is the rows' ``stratum`` column, and
    ``cluster`` their ``cluster`` column unless ``cluster_by`` names a
    metadata key (``by`` must then be None).
    """
    if sampled and by is not None:
        raise LedgerArgumentError("a sampled run's rows are sliced by their stratum; by must be None")
    columns: list[Any] = [SCORES.c.eval, SCORES.c.trace_id, SCORES.c.status, SCORES.c.score, SCORES.c.weight,
                          SCORES.c.cost_usd, SCORES.c.latency_s, SCORES.c.wait_s]
    if sampled:
        columns += [SCORES.c.stratum, SCORES.c.cluster]
    stmt = sa.select(*columns)
    if by is not None or cluster_by is not None:
        stmt = sa.select(*columns, ITEMS.c.record["metadata"]).select_from(
            SCORES.outerjoin(ITEMS, sa.and_(ITEMS.c.run_id == SCORES.c.run_id, ITEMS.c.trace_id == SCORES.c.trace_id))
        )
    stmt = stmt.where(SCORES.c.run_id == run_id).order_by(SCORES.c.eval, SCORES.c.trace_id)
    raw: dict[str, dict[str, list[Any]]] = {}
    for row in conn.execute(stmt.execution_options(yield_per=STREAM_BATCH)):
        cols = raw.setdefault(row[0], {k: [] for k in ("t", "st", "s", "w", "c", "l", "wt", "by", "cl")})
        cols["t"].append(row[1])
        cols["st"].append(row[2])
        cols["s"].append(np.nan if row[3] is None else row[3])
        cols["w"].append(row[4])
        cols["c"].append(row[5])
        cols["l"].append(row[6])
        cols["wt"].append(row[7])
        if sampled:
            cols["by"].append(row[8])
            cols["cl"].append(row[9] if cluster_by is None else as_text(as_metadata(row[10]).get(cluster_by)))
        elif len(row) > 8:
            meta = as_metadata(row[8])
            cols["by"].append(as_text(meta.get(by)) if by is not None else None)
            cols["cl"].append(as_text(meta.get(cluster_by)) if cluster_by is not None else None)
    out: dict[str, EvalRows] = {}
    for name, cols in raw.items():
        out[name] = EvalRows(
            eval=name, trace_ids=cols["t"], status=cols["st"], score=np.asarray(cols["s"], dtype=np.float64),
            weight=np.asarray(cols["w"], dtype=np.float64), cost=np.asarray(cols["c"], dtype=np.float64),
            latency=np.asarray(cols["l"], dtype=np.float64), wait=np.asarray(cols["wt"], dtype=np.float64),
            by=cols["by"] if by is not None or sampled else None,
            cluster=cols["cl"] if cluster_by is not None or sampled else None,
        )
    return out


def as_metadata(value: Any) -> dict[str, Any]:
    """A stored record's metadata object, as it was given (anything else: empty)."""
    return loaded_json(value) if isinstance(value, dict) else {}


def load_excerpts(conn: Connection, run_id: str, trace_ids: Iterable[str], chars: int = EXCERPT_CHARS) -> dict[str, str]:
    """The first ``chars`` characters of each item's output, by trace id (items not stored are absent)."""
    ids: Sequence[str] = sorted(set(trace_ids))
    out: dict[str, str] = {}
    output = ITEMS.c.record["output"].as_string()
    for start in range(0, len(ids), IN_CHUNK):
        chunk = ids[start : start + IN_CHUNK]
        stmt = sa.select(ITEMS.c.trace_id, sa.func.substr(output, 1, chars + 1)).where(
            ITEMS.c.run_id == run_id, ITEMS.c.trace_id.in_(chunk)
        )
        for trace_id, text in conn.execute(stmt):
            text = " ".join(unescape_text(text or "").split())
            out[trace_id] = text if len(text) <= chars else text[: chars - 1] + "…"
    return out
