"""Sending again the items of a run that a killed worker took with it.

A worker killed at the wrong moment loses a chunk for good (``workers/census.py``
says how, and how such items are found). Two callers look once a run's rows
have stopped coming for ``JUDGEQ_LOST_CHECK_S`` seconds: the waiting submitter
(``scheduler/waiting.py``) and, for online runs nobody waits on, beat's online
tick (``online/tick.py``). Items without a row that no message in the broker
holds, in two censuses ``confirm_s`` apart, are sent again, at most
``MAX_RESENDS`` times each by one finder (a chunk that keeps vanishing is a
fault to see in the workers' logs, not to hide).

An online window's items are sent again with the weight and stratum they
were sampled at, which their ledger items keep (``scheduler.submit.samples``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from judges.resolved import ResolvedJudge
from ledger.models import Run
from ledger.store import Ledger

from .census import Census, take_census
from .keys import RESENT, RESENT_TTL_S
from runs.sending import ChunkSettings, send_chunks

MAX_RESENDS = 3  # times one item is sent again (counted in Redis, across waiters and ticks)
RESEND_CHUNK_BASE = 20_000_000  # chunk numbers of re-sent chunks stand apart in logs (resume's are 10M+)


class LostChunks:
    """Finds and sends again the items of ``run_id`` that are in no message (see the module docstring)."""

    def __init__(self, run_id: str, ledger: Ledger, client: Any, settings: ChunkSettings, *,
                 confirm_s: float = 3.0) -> None:
        self.run_id = run_id
        self.ledger = ledger
        self.client = client
        self.settings = settings
        self.confirm_s = confirm_s
        self._counters: dict[str, int] = {}

    def check(self, dispatcher: Callable[[], Any]) -> int:
        """Send the run's lost items again through ``dispatcher()`` (called only then); how many item-judge pairs."""
        run = self.ledger.get_run(self.run_id)
        if run.status != "running" or (run.kind != "offline" and self.ledger.unweighted_items(run.id)):
            return 0
        judges = [ResolvedJudge.from_message(body) for body in run.judges.values()]
        first = self._lost(judges)
        if not first:
            return 0
        time.sleep(self.confirm_s)
        second = self._lost(judges)
        sender = None
        resent = 0
        for judge in judges:
            both = [(trace_id, record) for trace_id, record in second.get(judge.name, {}).items()
                    if trace_id in first.get(judge.name, {})]
            again = [record for (trace_id, record), times in zip(both, self._times(judge.name, both))
                     if times < MAX_RESENDS]
            if not again:
                continue
            sender = sender or dispatcher()
            self._counters.setdefault(judge.name, RESEND_CHUNK_BASE)
            options = {"no_cache": run.no_cache, "max_cost_usd": run.max_cost_usd}
            send_chunks(run.id, run.dataset_hash or run.window or "", [judge], again, sender, self.settings,
                        self._counters, options=options, **samples(run, self.ledger, again), ledger=self.ledger)
            self._count(judge.name, again)
            resent += len(again)
        return resent

    def _times(self, judge: str, items: list[tuple[str, Any]]) -> list[int]:
        """How often each item was sent again already."""
        if not items:
            return []
        found = self.client.hmget(RESENT.format(run_id=self.run_id), [f"{judge}\0{t}" for t, _ in items])
        return [int(value or 0) for value in found]

    def _count(self, judge: str, records: list[dict[str, Any]]) -> None:
        key = RESENT.format(run_id=self.run_id)
        pipe = self.client.pipeline()
        for record in records:
            pipe.hincrby(key, f"{judge}\0{record['id']}", 1)
        pipe.expire(key, RESENT_TTL_S)
        pipe.execute()

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


def samples(run: Run, ledger: Ledger, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``send_chunks``' weights and strata for records of ``run`` sent again: an online sample's, from its items.

    An online run's items keep the weight and stratum they were sampled at
    (ledger migration 0009); without them a resent item would weigh 1, so
    ``check_resumable`` refuses a run with items that keep none.
    """
    if run.kind == "offline":
        return {}
    kept = ledger.samples_of(run.id, [str(record["id"]) for record in records])
    return {"weights": {t: w for t, (w, _) in kept.items()},
            "strata": {t: s for t, (_, s) in kept.items() if s is not None}}
