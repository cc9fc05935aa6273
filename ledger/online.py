"""The ledger side of online runs: one run per window x judge, its items added as traces arrive, its strata.

An online run is a ``Run`` with ``kind = "online"``, ``window`` the window
id and ``dataset_name`` the schedule's (or source's) name. Schedulers may race
on a window and a window may be scanned again after late traces, so every
write here is safe to repeat and to run in several processes at once:

- :meth:`OnlineLedger.create_run_if_absent` (in ``ledger.store``): exactly one
  caller creates the run;
- :meth:`OnlineLedger.add_new_items`: each item is inserted, and reported as
  new, by exactly one caller; the others are told it was there (so it is
  enqueued once);
- :meth:`OnlineLedger.record_strata`: a scan writes its window's totals, and
  adds what it enqueued itself;
- :meth:`OnlineLedger.refresh_run_counts`: ``n_items`` and ``expected``
  follow the stored items, never backwards, and a "done" run that got new
  items is "running" again.

``sampling_rates`` holds rates set per (schedule, judge, stratum) over the
configured ones: the seam through which the budget controller steers sampling.

These are methods of :class:`ledger.store.Ledger` (this class is its base):
the queries live here so that the store module stays about offline runs.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session

from ledger.errors import LedgerArgumentError, RunNotFound
from ledger.models import ITEMS, RUNS, SAMPLING_RATES, SCORES, WINDOW_STRATA, Run, utcnow
from ledger.queries import IN_CHUNK
from ledger.rows import ItemIn, StratumCounts, check_rate
from ledger.text import storable
from ledger.upsert import overwrite

if TYPE_CHECKING:
    from ledger.frames import EvalRows
    from ledger.population import PopulationEstimate
    from ledger.writer import RowWriter

_COUNTS = ("seen", "filtered", "sampled", "enqueued", "rate")


def rate_row(schedule: str, judge: str, stratum: str, rate: float, *, set_by: str, reason: str) -> dict[str, Any]:
    """A ``sampling_rates`` row, checked (a rate in [0, 1], someone who set it), as of now."""
    rate = check_rate(rate, f"the sampling rate of {schedule}/{judge}/{stratum}")
    if not set_by:
        raise LedgerArgumentError("set_by must name who sets the rate (a person, or 'budget')")
    return {"schedule": storable(schedule), "judge": storable(judge), "stratum": storable(stratum), "rate": rate,
            "set_by": storable(set_by), "reason": storable(reason), "updated_at": utcnow()}


class OnlineLedger:
    """The online-run methods of the Ledger (see the module's docstring)."""

    _writer: RowWriter

    @abstractmethod
    def _connect(self) -> AbstractContextManager[Connection]: ...

    @abstractmethod
    def _session(self) -> AbstractContextManager[Session]: ...

    @abstractmethod
    def get_run(self, run_id: str) -> Run: ...

    # -- items and counts ------------------------------------------------------

    def add_new_items(self, run_id: str, items: Sequence[ItemIn]) -> list[str]:
        """Store those of ``items`` the run does not have yet; return the trace ids this call stored.

        One transaction. Of callers adding overlapping items at once, each item
        is returned by exactly one: the caller that got it enqueues it.
        """
        if not items:
            return []
        given = {storable(item.trace_id): item.trace_id for item in reversed(items)}  # the first of equal ids
        with self._connect() as conn, conn.begin():
            inserted = self._writer.add_new_items(conn, run_id, items)
        return [given.get(trace_id, trace_id) for trace_id in inserted]

    def samples_of(self, run_id: str, trace_ids: Sequence[str]) -> dict[str, tuple[float, str | None]]:
        """The weight and stratum each of ``trace_ids`` was sampled at, for those of the run's items that keep one."""
        found: dict[str, tuple[float, str | None]] = {}
        wanted = {storable(t): t for t in trace_ids}
        keys = list(wanted)
        with self._connect() as conn:
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
        with self._connect() as conn:
            found = conn.execute(stmt).scalar_one()
        if found is None:
            return None
        return found if found.tzinfo is not None else found.replace(tzinfo=UTC)  # SQLite keeps naive UTC

    def unweighted_items(self, run_id: str) -> int:
        """How many of the run's items keep no sampling weight (all of an offline run's; an online run's stored
        before ledger migration 0009)."""
        stmt = sa.select(sa.func.count()).where(ITEMS.c.run_id == run_id, ITEMS.c.weight.is_(None))
        with self._connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def refresh_run_counts(self, run_id: str) -> Run:
        """Set ``n_items`` to the run's stored items and ``expected`` to n_items x judges; the run as it is now.

        The counts only grow (a refresh that read fewer items than another
        stored is a late one), and a "done" run that gained items is
        "running" again, with no finish time: its new rows are still to come.
        Offline runs never call this; their counts are fixed at submission.
        """
        with self._connect() as conn, conn.begin():
            judges = conn.execute(sa.select(RUNS.c.judges).where(RUNS.c.id == run_id)).first()
            if judges is None:
                raise RunNotFound(run_id)
            stored = sa.select(sa.func.count()).where(ITEMS.c.run_id == run_id).scalar_subquery()
            grown = stored > RUNS.c.n_items
            n_items = sa.case((grown, stored), else_=RUNS.c.n_items)
            reopened = sa.and_(RUNS.c.status == "done", grown)
            conn.execute(sa.update(RUNS).where(RUNS.c.id == run_id).values(
                n_items=n_items,
                expected=n_items * max(1, len(judges[0] or {})),
                status=sa.case((reopened, "running"), else_=RUNS.c.status),
                finished_at=sa.case((reopened, sa.null()), else_=RUNS.c.finished_at),
            ))
        return self.get_run(run_id)

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
        with self._connect() as conn, conn.begin():
            conn.execute(overwrite(conn.dialect.name, WINDOW_STRATA), rows)

    def sample_sizes(self, run_id: str) -> dict[str | None, int]:
        """The run's stored items per stratum: an online window's sample over every scan of it."""
        stmt = (sa.select(ITEMS.c.stratum, sa.func.count()).where(ITEMS.c.run_id == run_id)
                .group_by(ITEMS.c.stratum))
        with self._connect() as conn:
            return {stratum: int(n) for stratum, n in conn.execute(stmt)}

    def strata(self, run_id: str) -> list[StratumCounts]:
        """The run's counts per stratum, by stratum name; empty for an offline run or one not scanned yet."""
        columns = [WINDOW_STRATA.c.stratum, *(WINDOW_STRATA.c[name] for name in _COUNTS)]
        stmt = sa.select(*columns).where(WINDOW_STRATA.c.run_id == run_id).order_by(WINDOW_STRATA.c.stratum)
        with self._connect() as conn:
            return [StratumCounts(*row) for row in conn.execute(stmt)]

    def find_run(self, run_id: str) -> Run | None:
        """The run ``run_id``, or None when there is none."""
        try:
            return self.get_run(run_id)
        except RunNotFound:
            return None

    def note_scan(self, run_id: str, skipped: dict[str, int]) -> None:
        """Keep in the run's meta what the last scan of its window skipped (no ts, malformed, duplicate...)."""
        with self._session() as session:
            run = session.get(Run, run_id)
            if run is None:
                raise RunNotFound(run_id)
            run.meta = {**(run.meta or {}), "skipped": dict(skipped), "scanned_at": utcnow().isoformat()}
            session.add(run)
            session.commit()

    # -- sampling rates --------------------------------------------------------

    def sampling_rates(self, schedule: str) -> dict[tuple[str, str], float]:
        """The rates set for the schedule, by (judge, stratum); those not set here come from the config."""
        stmt = sa.select(SAMPLING_RATES.c.judge, SAMPLING_RATES.c.stratum, SAMPLING_RATES.c.rate).where(
            SAMPLING_RATES.c.schedule == schedule)
        with self._connect() as conn:
            return {(judge, stratum): float(rate) for judge, stratum, rate in conn.execute(stmt)}

    def set_sampling_rate(self, schedule: str, judge: str, stratum: str, rate: float, *, set_by: str,
                          reason: str = "") -> None:
        """Set the rate of a schedule's judge and stratum (replacing an earlier one); it applies to later windows.

        ``set_by`` and ``reason`` say who decided it and why ("budget: ..."),
        for whoever wonders later why a stratum was sampled as it was.
        """
        row = rate_row(schedule, judge, stratum, rate, set_by=set_by, reason=reason)
        with self._connect() as conn, conn.begin():
            conn.execute(overwrite(conn.dialect.name, SAMPLING_RATES), row)

    def clear_sampling_rates(self, schedule: str, judge: str, *, set_by: str) -> int:
        """Remove the rates ``set_by`` set for the schedule's judge (others, and the config's, apply again);
        how many were removed. The budget controller's, once the judge has no budget."""
        stmt = sa.delete(SAMPLING_RATES).where(SAMPLING_RATES.c.schedule == schedule,
                                               SAMPLING_RATES.c.judge == judge, SAMPLING_RATES.c.set_by == set_by)
        with self._connect() as conn, conn.begin():
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
        with self._session() as session:
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

        with self._connect() as conn:
            if conn.execute(sa.select(RUNS.c.id).where(RUNS.c.id == run_id)).first() is None:
                raise RunNotFound(run_id)
            return load_rows(conn, run_id, cluster_by=cluster_by, sampled=True)

    def population(self, run_id: str, cluster_by: str | None = None,
                   min_slice: int | None = None) -> list[PopulationEstimate]:
        """Per judge of an online run, its window's estimated mean overall and per stratum (``ledger.population``).

        Judges without rows yet have no estimate but their window's counts.
        numpy is imported here, not at the top: workers do not need it.
        """
        from ledger.population import ROW_CLUSTERS, estimate_population
        from ledger.scorecard import MIN_SLICE

        run = self.get_run(run_id)
        rows = self.sampled_rows(run_id, cluster_by)
        counts = self.strata(run_id)
        return [estimate_population(rows.get(name), counts, eval_name=name, clustered_by=cluster_by or ROW_CLUSTERS,
                                    min_slice=MIN_SLICE if min_slice is None else min_slice)
                for name in sorted({*run.judges, *rows})]


def _chunks(values: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
