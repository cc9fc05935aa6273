"""judgeq's Celery tasks: unpack the message, guard against poison, run the chunk; beat's ticks; Flower's budget.

Judging lives in judges/, writing in ledger/; this module only decides about
delivery. A chunk whose worker died ``max_deliveries`` times is recorded as
failed instead of killing the next worker too.

Nothing is acknowledged before its rows (or its error rows) are written: when
the ledger will not take them (any ``LedgerError``: unreachable, or refusing
the statement), the chunk goes back to the queue every ``ledger_retry_s``
seconds, ``ledger_retries`` times, then to the run's dead letters
(workers/deadletters.py), and only then is the message acknowledged.

No app exists at import: :func:`register` defines the tasks on the app that
``workers.app.create_worker`` builds, each a thin wrapper that hands its
arguments and the process's :class:`ProcessState` (its settings, typed, and
its handles) to a function of this module.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from celery import Celery, Task

from ledger.errors import LedgerError
from judges.limits import RateLimiter
from ledger.store import Ledger
from runs.message import ChunkMessage
from runs.queues import QUEUE_REMOTE
from runs.rows import POISON, ChunkOutcome, fail_chunk

from .admission import admit
from .broker import redis_for
from .chunk import JudgeCache, execute
from .deadletters import DeadLetters
from .dispatch import TASK_NAME
from .keys import DELIVERIES, DELIVERIES_TTL_S
from .circuit import Circuit, LocalCircuit, RedisCircuit
from .lease import Leases, LocalLeases, RedisLeases
from .ratelimit import RedisLimiter
from .remote import RemoteServices
from .settings import WorkerSections, WorkerSettings

log = logging.getLogger(__name__)


class ProcessState:
    """A worker process's settings (one object, built at its entry) and its handles, made after fork.

    A database engine must not cross a fork, so the ledger, the Redis client
    and the judges are made again in each process (:meth:`ensure`); the
    settings are read once and shared. ``app``: where hand-backs are sent
    (None for a state that only counts deliveries or primes, in tests).
    """

    def __init__(self, settings: WorkerSections, app: Celery | None = None) -> None:
        self.settings = settings
        self.app = app
        self._lock = threading.Lock()
        self.pid = -1
        self.ledger: Ledger | None = None
        self.judges = JudgeCache()
        self.redis: Any = None

    def ensure(self) -> ProcessState:
        # Threads pool: many tasks may arrive at once; the pid is set last, under the lock.
        if self.pid != os.getpid():
            with self._lock:
                if self.pid != os.getpid():
                    self.ledger = Ledger(self.settings.ledger_url)
                    self.redis = None
                    self.judges = JudgeCache(self._services())
                    self.pid = os.getpid()
        return self

    def prime(self) -> float:
        """Open now what the first chunk would open first; the seconds it took. Never raises.

        The ledger (its schema checked, a connection pooled, the score upsert
        compiled: :meth:`ledger.store.Ledger.scores.check_writable`) and the Redis
        client. A fresh process paid these (some 0.2 s) between its first
        chunk's arrival and that chunk's first call. Only for a pool that runs
        tasks in this process (threads, solo): a prefork child makes its own
        handles after the fork, and an engine must not cross one. A ledger or
        Redis that cannot be reached now is logged; the first chunk retries as
        it always would.
        """
        started = time.perf_counter()
        try:
            self.ensure()
            assert self.ledger is not None
            self.ledger.scores.check_writable()
            client = self._client()
            if client is not None:
                client.ping()
        except Exception as exc:  # noqa: BLE001 - the first chunk meets the same failure and deals with it
            log.warning("could not open the ledger and Redis before the first chunk: %s: %s", type(exc).__name__, exc)
        return time.perf_counter() - started

    def _client(self) -> Any:
        """This process's Redis client on the broker, or None when the broker is not Redis."""
        if self.redis is None:
            self.redis = redis_for(self.settings.worker.broker_url)
        return self.redis

    def note_refusal(self, run_id: str, error: str) -> None:
        """Count a refused message naming ``run_id`` where ``judgeq status`` looks (a Redis broker only)."""
        dead_letters = self.dead_letters()
        if dead_letters is None:
            return
        try:
            dead_letters.refused(run_id, error)
        except Exception as exc:  # the refusal stands either way; only its visibility is lost
            log.warning("cannot count the refused message of run %s in Redis: %s", run_id, exc)

    def dead_letters(self) -> DeadLetters | None:
        """Where chunks go that the ledger would not take after every retry; None without a Redis broker."""
        client = self._client()
        return None if client is None else DeadLetters(client)

    def _services(self) -> RemoteServices:
        """The fleet-wide rate limiter and circuit (Redis), or in-process ones without a Redis broker."""
        settings = self.settings.worker
        client = self._client()
        if client is not None:
            limiter: RateLimiter = RedisLimiter(client, settings.rate_period_s, settings.rate_headroom)
            circuit: Circuit = RedisCircuit(client, settings.circuit_threshold)
            leases: Leases = RedisLeases(client)
        else:
            limiter = settings.machine_limiter()
            circuit = LocalCircuit(settings.circuit_threshold)
            leases = LocalLeases()
        return RemoteServices(limiter=limiter, circuit=circuit, settings=settings, requeue=self.requeue,
                              leases=leases)

    def requeue(self, message: ChunkMessage, countdown: float) -> None:
        """Hand unfinished items back to the queue: a new chunk task after ``countdown`` seconds."""
        assert self.app is not None, "a state without an app judges nothing"
        self.app.tasks[TASK_NAME].apply_async(args=[message.to_json()], countdown=countdown, queue=QUEUE_REMOTE,
                                                **flower_summary(message))

    def deliveries(self, task_id: str) -> int:
        """Count this delivery of ``task_id``; 1 on the first delivery, and while Redis cannot be reached.

        Redis down (restarting) must not fail the chunk: a failed task is
        acknowledged, and once Redis is back that acknowledgement would drop
        the chunk with no row. Its rows go to the ledger, which does not need
        Redis; only the poison-message guard skips this delivery.
        """
        import redis

        client = self._client()
        if client is None:
            return 1
        key = DELIVERIES.format(task_id=task_id)
        pipe = client.pipeline()
        pipe.incr(key)
        pipe.expire(key, DELIVERIES_TTL_S)
        try:
            count, _ = pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("delivery of %s not counted, Redis unreachable: %s", task_id, exc)
            return 1
        return int(count)


def register(app: Celery, state: ProcessState) -> None:
    """Define judgeq's tasks on ``app``, each working with ``state``; the names are what senders and beat publish.

    Each task is a wrapper with its own signature (Celery checks a message's
    arguments against it, Flower's ``async-apply`` included), calling the
    function below that holds its logic. ``shared=False``: Celery would
    otherwise add a task to every app made later in the process, bound to this
    ``state``.
    """

    @app.task(name=TASK_NAME, bind=True, max_retries=None, shared=False)
    def judge_chunk_task(self: Task, body: dict[str, Any]) -> dict[str, int]:
        """Judge one chunk of records for one judge and write its ledger rows (``judge_chunk``)."""
        return judge_chunk(self, state, body)

    @app.task(name="judgeq.online_tick", ignore_result=True, shared=False)
    def online_tick_task(schedule: Any) -> list[dict[str, Any]]:
        """Beat's tick for an [online.NAME] schedule: judge its newly closed windows (``online_tick``)."""
        return online_tick(state, schedule)

    @app.task(name="judgeq.budget_tick", ignore_result=True, shared=False)
    def budget_tick_task() -> list[str]:
        """Beat's minute tick of the budget controller (``budget_tick``)."""
        return budget_tick(state)

    @app.task(name="judgeq.prune", ignore_result=True, shared=False)
    def prune_task() -> str:
        """Beat's daily prune of old decisions and drift checks (``prune``)."""
        return prune(state)

    @app.task(name="judgeq.drift_tick", ignore_result=True, shared=False)
    def drift_tick_task(schedule: Any) -> str:
        """Beat's drift check of an [online.NAME] schedule with a drift table (``drift_tick``)."""
        return drift_tick(state, schedule)

    @app.task(name="judgeq.budget_set", ignore_result=True, shared=False)
    def budget_set_task(judge: Any = None, usd_per_day: Any = None, schedule: Any = None, everything: Any = False,
                        who: Any = "flower", note: Any = "") -> str:
        """Set a daily budget through Flower's API (``budget_set``)."""
        return budget_set(state, judge=judge, usd_per_day=usd_per_day, schedule=schedule, everything=everything,
                          who=who, note=note)


def judge_chunk(task: Task, process: ProcessState, body: dict[str, Any]) -> dict[str, int]:
    """Judge one chunk of records for one judge and write its ledger rows."""
    state = process.ensure()
    assert state.ledger is not None
    settings = state.settings.worker
    try:  # untrusted input: a valid chunk of a run the ledger holds, with that run's judge, or nothing
        admitted = admit(body, state.ledger, settings.max_record_bytes, on_refused=state.note_refusal)
    except LedgerError as exc:
        log.warning("ledger unavailable while admitting a chunk: %s; retrying in %gs", exc, settings.ledger_retry_s)
        # Not admitted yet: its records must not reach Flower, and its summary is not known to be true.
        raise task.retry(exc=exc, countdown=settings.ledger_retry_s, argsrepr="(chunk awaiting the ledger)",
                         kwargsrepr="{}") from exc
    if admitted is None:  # refused and logged: acknowledged, nothing written
        return {"written": 0, "already_done": 0, "errors": 0, "refused": 1}
    message = admitted
    # A retry is a new delivery on purpose; only deliveries of the same try count.
    delivery = state.deliveries(f"{task.request.id}:{task.request.retries}") if task.request.id else 1
    try:
        if delivery > settings.max_deliveries:
            log.error("chunk %s delivered %d times; recording it as failed", message.summary(), delivery)
            error = f"worker lost {delivery - 1} times while judging this chunk (poison message guard)"
            outcome = fail_chunk(message, state.ledger, error, POISON)
        else:
            if task.request.retries:  # tried again after the ledger failed: ask it first, pay no provider in vain
                state.ledger.scores.check_writable()
            outcome = execute(message, state.ledger, state.judges, state.judges.services)
    except LedgerError as exc:
        return _ledger_failed(task, state, message, exc, settings)
    return _as_dict(outcome)


def _ledger_failed(task: Task, state: ProcessState, message: ChunkMessage, exc: LedgerError,
                   settings: WorkerSettings) -> dict[str, int]:
    """The ledger would not take the chunk's rows: back to the queue, or after the last try a dead letter."""
    tries = task.request.retries
    dead_letters = state.dead_letters()
    if tries < settings.ledger_retries or dead_letters is None:  # no Redis: nowhere else to keep it
        log.warning("ledger failed for %s (retry %d of %d in %gs): %s", message.summary(), tries + 1,
                    settings.ledger_retries, settings.ledger_retry_s, exc)
        raise task.retry(exc=exc, countdown=settings.ledger_retry_s, **flower_summary(message))
    try:
        dead_letters.add(message, str(task.request.id), str(exc))
    except Exception as lost:  # Redis refused too: keep the message in the queue rather than drop it
        log.error("cannot keep %s as a dead letter (%s); retrying in %gs", message.summary(), lost,
                  settings.ledger_retry_s)
        raise task.retry(exc=exc, countdown=settings.ledger_retry_s, **flower_summary(message)) from lost
    log.error("ledger failed for %s %d times; kept as a dead letter of run %s (see 'judgeq status %s'): %s",
              message.summary(), tries + 1, message.run_id, message.run_id, exc)
    return {"written": 0, "already_done": 0, "errors": 0, "dead_letters": 1}


def flower_summary(message: ChunkMessage) -> dict[str, str]:
    """What Flower and task events show for a chunk task instead of its records (``apply_async`` options)."""
    return {"argsrepr": f"({message.summary()})", "kwargsrepr": "{}"}


def _as_dict(outcome: ChunkOutcome) -> dict[str, int]:
    return {"written": outcome.written, "already_done": outcome.already_done, "errors": outcome.errors}


def online_tick(process: ProcessState, schedule: Any) -> list[dict[str, Any]]:
    """Beat's tick for an [online.NAME] schedule: judge its newly closed windows (online/tick.py).

    Thin: the schedule's name is checked (it comes from beat, or from anyone
    who can write to the broker or log in to Flower), the rest is the
    window job's. A config error is logged and the tick acknowledged: the
    next tick after the config is fixed catches up.
    """
    from datetime import UTC, datetime

    from online.errors import OnlineError
    from online.schedules import NAME_PATTERN
    from online.tick import tick

    # The schedule's name as [online.NAME] tables may spell it (a task argument is untrusted input).
    if not isinstance(schedule, str) or not NAME_PATTERN.fullmatch(schedule):
        log.error("online tick refused: %.80r is not a schedule name", schedule)
        return []
    state = process.ensure()
    assert state.ledger is not None
    online, chunks = state.settings.online, state.settings.chunks
    from .dispatch import CeleryDispatcher

    dispatcher = CeleryDispatcher(state.settings.worker)
    ledger = state.ledger

    def lost(run_id: str) -> int:
        """Send again a stalled run's items that no chunk holds (workers/lost.py)."""
        from .broker import redis_for
        from .lost import LostChunks

        client = redis_for(state.settings.worker.broker_url)
        if client is None:
            return 0
        resent = LostChunks(run_id, ledger, client, chunks).check(lambda: dispatcher)
        if resent:
            log.warning("online run %s: sent %d items again that a killed worker had taken", run_id, resent)
        return resent

    try:
        outcomes = tick(online.config, schedule, ledger, dispatcher, datetime.now(UTC), chunks, lost=lost,
                        lost_after_s=online.lost_check_s)
    except OnlineError as exc:
        log.error("online tick of %s: %s", schedule, exc)
        return []
    finally:
        dispatcher.close()
    for outcome in outcomes:
        log.info("online %s window %s: %d seen, sampled %s, enqueued %s", schedule, outcome.window, outcome.seen,
                 outcome.sampled, outcome.new)
        if outcome.passed_over is not None:
            log.warning("online %s window %s %s", schedule, outcome.window, outcome.passed_over.text())
    return [outcome.to_json() for outcome in outcomes]


def budget_tick(process: ProcessState) -> list[str]:
    """Beat's minute tick of the budget controller (online/budget/ahead.py): plan each schedule's next window."""
    from datetime import UTC, datetime

    from online.budget.ahead import plan_ahead
    from online.errors import OnlineError

    state = process.ensure()
    assert state.ledger is not None
    try:
        planned = plan_ahead(state.settings.online.config, state.ledger, datetime.now(UTC))
    except OnlineError as exc:
        log.error("budget tick: %s", exc)
        return []
    for ahead in planned:
        log.info("budget %s", ahead.summary())
    return [ahead.summary() for ahead in planned]


def prune(process: ProcessState) -> str:
    """Beat's daily prune (online/retention.py): the decisions and drift checks older than the retention."""
    from datetime import UTC, datetime

    from online.retention import prune as prune_rows

    state = process.ensure()
    assert state.ledger is not None
    pruned = prune_rows(state.ledger, datetime.now(UTC), state.settings.online.retention_days)
    log.info("%s", pruned.summary())
    return pruned.summary()


def drift_tick(process: ProcessState, schedule: Any) -> str:
    """Beat's drift check of an [online.NAME] schedule with a drift table (online/drift_check.py ``tick``).

    Thin, as ``online_tick``: the name is checked (untrusted input), a config
    error is logged and the tick acknowledged. Returns the tick's one line
    (``tick_summary``: ``ALERT: ...`` when a check alerted, ``OK: ...`` else;
    ``REFUSED``/``ERROR`` when nothing was checked), which Flower's task list
    shows beside its SUCCESS state.
    """
    from datetime import UTC, datetime

    from online.drift_check import tick, tick_summary
    from online.errors import OnlineError
    from online.schedules import NAME_PATTERN

    if not isinstance(schedule, str) or not NAME_PATTERN.fullmatch(schedule):
        log.error("drift tick refused: %.80r is not a schedule name", schedule)
        return "REFUSED: not a schedule name"
    state = process.ensure()
    assert state.ledger is not None
    try:
        reports = tick(state.settings.online.config, schedule, state.ledger, datetime.now(UTC))
    except OnlineError as exc:
        log.error("drift tick of %s: %s", schedule, exc)
        return f"ERROR: {exc}"[:500]
    for report in reports:
        log.info("%s", report.headline())
    return tick_summary(reports)


def budget_set(process: ProcessState, *, judge: Any, usd_per_day: Any, schedule: Any, everything: Any, who: Any,
               note: Any) -> str:
    """Set a daily budget (Flower's API: ``POST /api/task/async-apply/judgeq.budget_set`` with JSON kwargs).

    ``judge`` (or ``everything: true`` for the global cap), ``usd_per_day`` (a number of USD from 0 to 1e12,
    or null to remove it), ``schedule`` (optional), ``who`` and ``note`` (one line of printable text, at most
    80 and 500 characters), checked by the same rules as ``judgeq budget set`` (online/budget/setting.py). Bad values fail the task with a message saying what to send, and
    change nothing. The change applies from the next tick and shows in ``judgeq budget history`` as made
    through Flower. Flower's API sets ``who`` to the logged-in Flower user and refuses another
    (``scheduler/flower_pages/budget_api.py``); only a message written to the broker directly carries a
    ``who`` of its writer's choosing ("flower" if none).
    """
    from online.budget.setting import set_checked
    from online.errors import OnlineConfigError

    if everything is not True and everything is not False:
        raise OnlineConfigError("everything is true (the global cap) or false")
    if everything and (judge is not None or schedule is not None):
        raise OnlineConfigError("everything: true is the global cap of all judges: give no judge or schedule")
    if not everything and judge is None:
        raise OnlineConfigError('name the budget: {"judge": "J", "usd_per_day": 20} or {"everything": true, ...}')
    state = process.ensure()
    assert state.ledger is not None
    change = set_checked(state.ledger, state.settings.online.config, judge=None if everything else judge,
                         schedule=schedule, usd=usd_per_day, who=who.strip() if isinstance(who, str) else who,
                         via="flower", note=note)
    summary = "no change" if change is None else f"{change.scope}: {change.old_usd} -> {change.new_usd} USD/day"
    log.info("budget set through Flower: %s", summary)
    return summary
