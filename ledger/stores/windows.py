"""The windows store: what online runs keep beyond a run's own row, its window's strata and sampling.

An online run is a ``Run`` with ``kind = "online"``, ``window`` the window
id and ``dataset_name`` the schedule's (or source's) name; the run itself and
its items are the runs store's (``ledger.stores.runs``: creating it once,
adding its items as traces arrive, refreshing its counts). This store holds
the rest: the items' sampling weights and strata, the window's counts per
stratum (:meth:`WindowStore.record_strata`: a scan writes its window's
totals, and adds what it enqueued itself), an online run's rows as a sample
of its window, and the schedule's sampling rates.

``sampling_rates`` holds rates set per (schedule, judge, stratum) over the
configured ones: the seam through which the budget controller steers sampling.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ledger.db import Db
from ledger.errors import LedgerArgumentError
from ledger.models import ITEMS, RUNS, SAMPLING_RATES, SCORES, WINDOW_STRATA, Run, utcnow
from ledger.queries import IN_CHUNK, require_run
from ledger.rows import StratumCounts, check_rate
from ledger.stores.runs import RunStore
from ledger.text import storable
from ledger.upsert import overwrite

if TYPE_CHECKING:
    from ledger.frames import EvalRows
    from ledger.population import PopulationEstimate

_COUNTS = ("seen", "filtered", "sampled", "enqueued", "rate")


def rate_row(schedule: str, judge: str, stratum: str, rate: float, *, set_by: str, reason: str) -> dict[str, Any]:
    """A ``sampling_rates`` row, checked (a rate in [0, 1], someone who set it), as of now."""
    rate = check_rate(rate, f"the sampling rate of {schedule}/{judge}/{stratum}")
    if not set_by:
        raise LedgerArgumentError("set_by must name who sets the rate (a person, or 'budget')")
    return {"schedule": storable(schedule), "judge": storable(judge), "stratum": storable(stratum), "rate": rate,
            "set_by": storable(set_by), "reason": storable(reason), "updated_at": utcnow()}


class WindowStore:
    """Online windows' samples, strata and sampling rates: ``Ledger.windows`` (see the module's docstring).

    ``runs`` is the Ledger's runs store, for the run a window's population is estimated over.
    """

    def __init__(self, db: Db, runs: RunStore) -> None:
        self._db = db
        self._runs = runs

    # -- items and counts ------------------------------------------------------

    def samples_of(self, run_id: str, trace_ids: Sequence[str]) -> dict[str, tuple[float, str | None]]:
        """The weight and stratum each of ``trace_ids`` was sampled at, for those of the run's items that keep one."""
        found: dict[str, tuple[float, str | None]] = {}
        wanted = {storable(t): t for t in trace_ids}
        keys = list(wanted)
        with self._db.connect() as conn:
            for start in range(0, len(keys), IN_CHUNK):
                stmt = (sa.select(ITEMS.c.trace_id, ITEMS.c.weight, ITEMS.c.stratum)
                        .where(ITEMS.c.run_id == run_id, ITEMS.c.trace_id.in_(keys[start:start + IN_CHUNK]),
                               ITEMS.c.weight.is_not(None)))
                for trace_id, weight, stratum in conn.execute(stmt):
                    found[wanted.get(trace_id, trace_id)] = (float(weight), stratum)
        return found

    def last_row_at(self, run_id: str) -> datetime | None:
        """When the run's newest score row was written; None before its first."""
        stmt = sa.select(sa.func.max(SCORES.c.ts)).where(SCORES.c.run_id == run_id)
        with self._db.connect() as conn:
            found = conn.execute(stmt).scalar_one()
        if found is None:
            return None
        return found if found.tzinfo is not None else found.replace(tzinfo=UTC)  # SQLite keeps naive UTC

    def unweighted_items(self, run_id: str) -> int:
        """How many of the run's items keep no sampling weight (all of an offline run's; an online run's stored
        before ledger migration 0009)."""
        stmt = sa.select(sa.func.count()).where(ITEMS.c.run_id == run_id, ITEMS.c.weight.is_(None))
        with self._db.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def record_strata(self, run_id: str, counts: Sequence[StratumCounts]) -> None:
        """Write the window's counts per stratum for the run, replacing what an earlier scan wrote.

        ``enqueued`` is the window's sample so far (:meth:`sample_sizes`, which
        the window job reads after storing its own items), not one scan's: a
        scan cut off before it wrote its counts left items that a later scan
        does not send again (``judgeq resume`` does), and they are counted all
        the same. Of two scans racing on a window, one that read its sizes
        before the other's last items committed may write fewer; the next scan
        of the window (beat's tick) writes them right.
        """
        if not counts:
            return
        now = utcnow()
        rows = [{"run_id": run_id, "stratum": storable(c.stratum), "updated_at": now,
                 **{name: getattr(c, name) for name in _COUNTS}} for c in counts]
        with self._db.connect() as conn, conn.begin():
            conn.execute(overwrite(conn.dialect.name, WINDOW_STRATA), rows)

    def sample_sizes(self, run_id: str) -> dict[str | None, int]:
        """The run's stored items per stratum: an online window's sample over every scan of it."""
        stmt = (sa.select(ITEMS.c.stratum, sa.func.count()).where(ITEMS.c.run_id == run_id)
                .group_by(ITEMS.c.stratum))
        with self._db.connect() as conn:
            return {stratum: int(n) for stratum, n in conn.execute(stmt)}

    def strata(self, run_id: str) -> list[StratumCounts]:
        """The run's counts per stratum, by stratum name; empty for an offline run or one not scanned yet."""
        columns = [WINDOW_STRATA.c.stratum, *(WINDOW_STRATA.c[name] for name in _COUNTS)]
        stmt = sa.select(*columns).where(WINDOW_STRATA.c.run_id == run_id).order_by(WINDOW_STRATA.c.stratum)
        with self._db.connect() as conn:
            return [StratumCounts(*row) for row in conn.execute(stmt)]

    # -- sampling rates --------------------------------------------------------

    def sampling_rates(self, schedule: str) -> dict[tuple[str, str], float]:
        """The rates set for the schedule, by (judge, stratum); those not set here come from the config."""
        stmt = sa.select(SAMPLING_RATES.c.judge, SAMPLING_RATES.c.stratum, SAMPLING_RATES.c.rate).where(
            SAMPLING_RATES.c.schedule == schedule)
        with self._db.connect() as conn:
            return {(judge, stratum): float(rate) for judge, stratum, rate in conn.execute(stmt)}

    def set_sampling_rate(self, schedule: str, judge: str, stratum: str, rate: float, *, set_by: str,
                          reason: str = "") -> None:
        """Set the rate of a schedule's judge and stratum (replacing an earlier one); it applies to later windows.

        ``set_by`` and ``reason`` say who decided it and why ("budget: ..."),
        for whoever wonders later why a stratum was sampled as it was.
        """
        row = rate_row(schedule, judge, stratum, rate, set_by=set_by, reason=reason)
        with self._db.connect() as conn, conn.begin():
            conn.execute(overwrite(conn.dialect.name, SAMPLING_RATES), row)

    def clear_sampling_rates(self, schedule: str, judge: str, *, set_by: str) -> int:
        """Remove the rates ``set_by`` set for the schedule's judge (others, and the config's, apply again);
        how many were removed. The budget controller's, once the judge has no budget."""
        stmt = sa.delete(SAMPLING_RATES).where(SAMPLING_RATES.c.schedule == schedule,
                                               SAMPLING_RATES.c.judge == judge, SAMPLING_RATES.c.set_by == set_by)
        with self._db.connect() as conn, conn.begin():
            return int(conn.execute(stmt).rowcount)

    # -- reading ---------------------------------------------------------------

    def online_runs(self, dataset_name: str, judge: str | None, window_ids: Sequence[str]) -> list[Run]:
        """The online runs of ``dataset_name`` (a schedule or source) with ``judge`` (None: any), over ``window_ids``.

        In the order of ``window_ids``; a window judged more than once (the
        judge's version or the policy changed, so its run id did) has all its
        runs, oldest first. Windows without a run are left out.
        """
        order = {window: i for i, window in enumerate(dict.fromkeys(window_ids))}
        found: list[Run] = []
        with self._db.session() as session:
            for chunk in _chunks(list(order), IN_CHUNK):
                stmt = sa.select(Run).where(RUNS.c.kind == "online", RUNS.c.dataset_name == dataset_name,
                                            RUNS.c.window.in_(chunk))
                for run in session.scalars(stmt):
                    if judge is None or judge in run.judges:  # JSON keys are matched here: spelled differently per backend
                        session.expunge(run)
                        found.append(run)
        return sorted(found, key=lambda run: (order[run.window or ""], run.created_at, run.id))

    def sampled_rows(self, run_id: str, cluster_by: str | None = None) -> dict[str, EvalRows]:
        """An online run's rows per eval with their stratum as the slice and their cluster (``ledger.frames``).

        The cluster is the rows' own (session, else user) unless ``cluster_by``
        names a metadata key to cluster by instead.
        """
        from ledger.frames import load_rows

        with self._db.connect() as conn:
            require_run(conn, run_id)
            return load_rows(conn, run_id, cluster_by=cluster_by, sampled=True)

    def population(self, run_id: str, cluster_by: str | None = None,
                   min_slice: int | None = None) -> list[PopulationEstimate]:
        """Per judge of an online run, its window's estimated mean overall and per stratum (``ledger.population``).

        Judges without rows yet have no estimate but their window's counts.
        numpy is imported here, not at the top: workers do not need it.
        """
        from ledger.population import ROW_CLUSTERS, estimate_population
        from ledger.scorecard import MIN_SLICE

        run = self._runs.get_run(run_id)
        rows = self.sampled_rows(run_id, cluster_by)
        counts = self.strata(run_id)
        return [estimate_population(rows.get(name), counts, eval_name=name, clustered_by=cluster_by or ROW_CLUSTERS,
                                    min_slice=MIN_SLICE if min_slice is None else min_slice)
                for name in sorted({*run.judges, *rows})]


def _chunks(values: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
