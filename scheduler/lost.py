"""Sending again the items of a waited-on run that a killed worker took with it.

A worker killed at the wrong moment loses a chunk for good (``workers/census.py``
says how, and how such items are found). ``judgeq submit --wait`` and the other
waiting commands notice when the run's row count has not moved for
``JUDGEQ_LOST_CHECK_S`` seconds and then look: items without a row that no
message in the broker holds, in two censuses ``confirm_s`` apart, are sent
again, at most ``MAX_RESENDS`` times each in one wait (a chunk that keeps
vanishing is a fault to see in the workers' logs, not to hide). The waiter's
progress line says how many were sent again.

An online window's items are sent again with the weight and stratum they
were sampled at, which their ledger items keep (``scheduler.submit.samples``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from judges.resolved import ResolvedJudge
from ledger.store import Ledger
from workers.census import Census, take_census
from workers.sending import ChunkSettings, send_chunks

from .submit import samples

MAX_RESENDS = 3  # times one item is sent again by one waiter
RESEND_CHUNK_BASE = 20_000_000  # chunk numbers of re-sent chunks stand apart in logs (resume's are 10M+)


class LostChunks:
    """Finds and sends again the items of ``run_id`` that are in no message (see the module docstring)."""

    def __init__(self, run_id: str, ledger: Ledger, client: Any, dispatcher: Callable[[], Any],
                 settings: ChunkSettings, *, confirm_s: float = 3.0) -> None:
        self.run_id = run_id
        self.ledger = ledger
        self.client = client
        self.dispatcher = dispatcher  # made on first use: most waits never need one
        self.settings = settings
        self.confirm_s = confirm_s
        self.sent: Counter[tuple[str, str]] = Counter()
        self._counters: dict[str, int] = {}

    def check(self) -> int:
        """Send the run's lost items again; returns how many item-judge pairs were sent."""
        run = self.ledger.get_run(self.run_id)
        if run.status != "running" or (run.kind != "offline" and self.ledger.unweighted_items(run.id)):
            return 0
        judges = [ResolvedJudge.from_message(body) for body in run.judges.values()]
        first = self._lost(judges)
        if not first:
            return 0
        time.sleep(self.confirm_s)
        second = self._lost(judges)
        dispatcher = None
        resent = 0
        for judge in judges:
            again = [record for trace_id, record in second.get(judge.name, {}).items()
                     if trace_id in first.get(judge.name, {}) and self.sent[(judge.name, trace_id)] < MAX_RESENDS]
            if not again:
                continue
            dispatcher = dispatcher or self.dispatcher()
            self._counters.setdefault(judge.name, RESEND_CHUNK_BASE)
            options = {"no_cache": run.no_cache, "max_cost_usd": run.max_cost_usd}
            send_chunks(run.id, run.dataset_hash or run.window or "", [judge], again, dispatcher, self.settings,
                        self._counters, options=options, **samples(run, self.ledger, again))
            self.sent.update((judge.name, str(record["id"])) for record in again)
            resent += len(again)
        if dispatcher is not None:
            dispatcher.close()
        return resent

    def _lost(self, judges: list[ResolvedJudge]) -> dict[str, dict[str, dict[str, Any]]]:
        """Items without a row that no message holds, by judge: the census first, then the ledger.

        In that order, a chunk acknowledged in between (its rows written) is
        seen in the census or has its rows in the ledger: never lost by mistake.
        """
        census: Census = take_census(self.client, self.run_id)
        lost: dict[str, dict[str, dict[str, Any]]] = {}
        for judge in judges:
            for batch in self.ledger.missing_items(self.run_id, judge.name, batch_size=1000):
                for record in batch:
                    trace_id = str(record["id"])
                    if not census.holds(judge.name, trace_id):
                        lost.setdefault(judge.name, {})[trace_id] = record
        return lost


def lost_chunks_for(run_id: str, ledger: Ledger) -> LostChunks | None:
    """The finder for a fleet run (a Redis broker configured), or None (embedded mode, another broker)."""
    from workers.broker import redis_for
    from workers.settings import WorkerSettings

    from .settings import SchedulerSettings

    worker_settings = WorkerSettings()
    client = redis_for(worker_settings.broker_url, timeout_s=10)
    if client is None:
        return None

    def dispatcher() -> Any:
        from workers.dispatch import CeleryDispatcher

        return CeleryDispatcher(worker_settings)

    return LostChunks(run_id, ledger, client, dispatcher, SchedulerSettings())
