"""Sending again the items of a run that a killed worker took with it.

A worker killed at the wrong moment loses a chunk for good (``workers/census.py``
says how, and how such items are found). Two callers look once a run's rows
have stopped coming for ``JUDGEQ_LOST_CHECK_S`` seconds: the waiting submitter
(``runs/waiting.py``, with :class:`StallWatch`) and, for online runs nobody waits on, beat's online
tick (``online/tick.py``). Items without a row that no message in the broker
holds, in two censuses ``confirm_s`` apart, are sent again, at most
``MAX_RESENDS`` times each by one finder (a chunk that keeps vanishing is a
fault to see in the workers' logs, not to hide).

The items go again through the run's intake (``runs.intake.Intake.resend``):
an online window's with the weight and stratum they were sampled at, which
their ledger items keep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from judges.resolved import ResolvedJudge
from ledger.rows import Progress
from ledger.store import Ledger
from runs.dispatch import Dispatcher
from runs.intake import Intake, Target
from runs.sending import ChunkSettings

from .census import Census, take_census
from .keys import RESENT, RESENT_TTL_S

if TYPE_CHECKING:
    from online.settings import OnlineSettings
    from runs.waiting import View

    from .settings import WorkerSettings

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

    def check(self, dispatcher: Callable[[], Dispatcher]) -> int:
        """Send the run's lost items again through ``dispatcher()`` (called only then); how many item-judge pairs."""
        run = self.ledger.runs.get_run(self.run_id)
        if run.status != "running" or (run.kind != "offline" and self.ledger.windows.unweighted_items(run.id)):
            return 0
        target = Target.of(run)
        judges = list(target.judges)
        first = self._lost(judges)
        if not first:
            return 0
        time.sleep(self.confirm_s)
        second = self._lost(judges)
        intake = None
        resent = 0
        for judge in judges:
            both = [(trace_id, record) for trace_id, record in second.get(judge.name, {}).items()
                    if trace_id in first.get(judge.name, {})]
            again = [record for (trace_id, record), times in zip(both, self._times(judge.name, both))
                     if times < MAX_RESENDS]
            if not again:
                continue
            intake = intake or Intake(self.ledger, dispatcher(), self.settings, first_chunk=RESEND_CHUNK_BASE,
                                      counters=self._counters)
            intake.resend(run, target.only(judge), again)
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
            for batch in self.ledger.runs.missing_items(self.run_id, judge.name, batch_size=1000):
                for record in batch:
                    trace_id = str(record["id"])
                    if not census.holds(judge.name, trace_id):
                        lost.setdefault(judge.name, {})[trace_id] = record
        return lost



class StallWatch:
    """Notices a fleet run whose rows stopped coming and has its lost chunks sent again (``runs.waiting.Watch``).

    After ``online.lost_check_s`` seconds without a new row, and as often
    again while none comes, a :class:`LostChunks` finder looks; it is made at
    the first look, and never without a Redis broker (embedded mode, another
    broker). A look that fails (the broker unreachable) is shown and the wait
    goes on: the workers meet the same trouble.
    """

    def __init__(self, run_id: str, ledger: Ledger, worker: WorkerSettings, online: OnlineSettings,
                 chunks: ChunkSettings) -> None:
        self.run_id = run_id
        self.ledger = ledger
        self.worker = worker
        self.settings = chunks  # how the lost items are cut into chunks again
        self.after_s = online.lost_check_s
        self.done = -1
        self.since = time.monotonic()
        self.looked = False
        self.dispatcher: Any = None
        self.finder: LostChunks | None = None  # made at the first look; stays None without a Redis broker

    def watch(self, progress: Progress, view: View) -> None:
        now = time.monotonic()
        if progress.done != self.done:
            self.done, self.since = progress.done, now
            return
        if now - self.since < self.after_s:
            return
        self.since = now  # the next look after as long again without a row
        if not self.looked:
            self.looked = True
            self.finder = self._finder()
        if self.finder is None:
            return
        try:
            resent = self.finder.check(self._dispatcher)
        except Exception as exc:  # the broker is unreachable, say: the workers' problem too; keep waiting
            view.update(progress.done, f"could not look for lost chunks: {type(exc).__name__}", now=True)
            return
        finally:
            if self.dispatcher is not None:
                self.dispatcher.close()
                self.dispatcher = None
        if resent:
            view.update(progress.done, f"sent {resent} items again: a worker died holding their chunk", now=True)

    def _finder(self) -> LostChunks | None:
        """The finder for a fleet run (a Redis broker configured); None in embedded mode or with another broker."""
        from .broker import redis_for

        client = redis_for(self.worker.broker_url, timeout_s=10)
        return None if client is None else LostChunks(self.run_id, self.ledger, client, self.settings)

    def _dispatcher(self) -> Any:
        from .dispatch import CeleryDispatcher

        self.dispatcher = CeleryDispatcher(self.worker)
        return self.dispatcher
