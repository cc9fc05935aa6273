"""The two dispatchers of ``runs.dispatch.Dispatcher``: to the Celery fleet, or judging in-process (embedded mode).

Both take the same :class:`ChunkMessage`; the embedded one calls the same
:func:`workers.chunk.execute` that the Celery task calls. They live here, not
in runs/, because they need the Celery app and the chunk code; which one a
process uses is decided by ``runs.dispatch.fleet_mode`` (see :func:`connect`).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from collections.abc import Iterable
from typing import Any

from judges.spec import LlmJudgeSpec
from ledger.store import Ledger
from ledger.urls import mask_url, redact_secrets
from runs import dispatch as runs_dispatch
from runs.dispatch import check_broker_url
from runs.errors import BrokerUnavailable
from runs.message import ChunkMessage
from runs.queues import QUEUE_REMOTE

from .chunk import JudgeCache, execute
from .circuit import LocalCircuit
from .remote import RemoteServices
from .settings import WorkerSettings

TASK_NAME = "judgeq.judge_chunk"


class CeleryDispatcher:
    """Publishes chunks to the broker; ``check()`` first, so a dead broker fails before anything is written."""

    embedded = False

    def __init__(self, settings: WorkerSettings) -> None:
        from .app import create_app

        check_broker_url(settings.broker_url)
        self.settings = settings
        self.app = create_app(settings)
        self._conn: Any = None
        self._producer: Any = None

    def check(self) -> None:
        """Raise BrokerUnavailable unless the broker answers now."""
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=5)
        except Exception as exc:
            raise BrokerUnavailable(
                f"cannot reach the broker at {_mask(self.settings.broker_url)}: {self._detail(exc)}; "
                "start Redis or fix JUDGEQ_BROKER_URL"
            ) from exc

    def send(self, message: ChunkMessage, queue: str) -> None:
        if self._producer is None:
            self._conn = self.app.connection_for_write()
            self._producer = self._conn.Producer()
        try:
            self.app.send_task(
                TASK_NAME,
                args=[message.to_json()],
                queue=queue,
                producer=self._producer,
                argsrepr=f"({message.summary()})",
                kwargsrepr="{}",
            )
        except Exception as exc:
            raise BrokerUnavailable(
                f"publishing to the broker at {_mask(self.settings.broker_url)} failed: {self._detail(exc)}"
            ) from exc  # the CLI adds how to complete the run, which it alone knows

    def _detail(self, exc: BaseException) -> str:
        """The error's text without the broker URL's secrets (kombu may repeat parts of the URL)."""
        return redact_secrets(str(exc), self.settings.broker_url)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.release()
            self._conn = None
            self._producer = None


#: How often ``EmbeddedDispatcher.join`` looks again at the chunks it waits for.
JOIN_POLL_S = 0.2


class EmbeddedDispatcher:
    """Judges chunks in this process: one thread for local judges, a pool for remote ones.

    ``send`` blocks while too many chunks are pending, so memory stays bounded
    whatever the dataset's size. ``join`` waits for everything sent and
    re-raises the first ledger failure. ``cancel`` (Ctrl-C) drops the chunks
    not yet started; those being judged finish and write their rows.

    ``trusted``: the LLM judge specs of the config this process loaded; their
    routes skip the key policy (see :mod:`judges.egress`), anything else (a
    judge read back from a shared ledger) meets the workers' policy.
    ``settings``: the process's worker section, built at its entry and passed
    down (a library default would read the environment behind the caller's back).
    """

    embedded = True

    def __init__(self, ledger: Ledger, settings: WorkerSettings, remote_threads: int = 4, max_pending: int = 32,
                 trusted: Iterable[LlmJudgeSpec] = ()) -> None:
        self.ledger = ledger
        # A worker's retry policy and circuit, in this process; the limiter is shared by this machine's processes.
        self.services = RemoteServices(
            limiter=settings.machine_limiter(),
            circuit=LocalCircuit(settings.circuit_threshold),
            settings=settings,
            requeue=self._requeue,
        )
        # The config this process loaded is the user's own: its judges' routes are trusted whole.
        self.judges = JudgeCache(self.services, settings.egress_policy().trusting(trusted))
        self._local = ThreadPoolExecutor(max_workers=1, thread_name_prefix="judgeq-local")
        self._remote = ThreadPoolExecutor(max_workers=remote_threads, thread_name_prefix="judgeq-remote")
        self._slots = threading.BoundedSemaphore(max_pending)
        self._futures: list[Future[Any]] = []
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self.failure: BaseException | None = None

    def send(self, message: ChunkMessage, queue: str) -> None:
        if self.failure is not None:
            raise self.failure
        while not self._slots.acquire(timeout=0.2):
            if self._cancelled.is_set():
                return  # dropped: its items stay without rows, for resume
        pool = self._remote if queue == QUEUE_REMOTE else self._local
        try:
            future = pool.submit(self._run, message)
        except RuntimeError:  # cancelled: the pool is shut down
            self._slots.release()
            if self._cancelled.is_set():
                return
            raise
        with self._lock:
            self._futures = [f for f in self._futures if not f.done()]
            self._futures.append(future)

    def _requeue(self, message: ChunkMessage, countdown: float) -> None:
        """A hand-back: judge the chunk again after ``countdown`` seconds (not bounded by max_pending).

        The message goes through the same checks a worker applies to a
        published one (JSON and back), so that what a hand-back carries is
        tested in embedded runs too.
        """
        message = ChunkMessage.from_json(message.to_json(), max_record_bytes=self.services.settings.max_record_bytes)

        def later() -> None:
            if not self._cancelled.wait(countdown):
                self._run(message, holds_slot=False)

        if self._cancelled.is_set():
            return
        future = self._remote.submit(later)
        with self._lock:
            self._futures.append(future)

    def _run(self, message: ChunkMessage, holds_slot: bool = True) -> None:
        try:
            execute(message, self.ledger, self.judges, self.services)
        except BaseException as exc:
            self.failure = self.failure or exc
            raise
        finally:
            if holds_slot:
                self._slots.release()

    def join(self) -> None:
        """Wait for every chunk sent; re-raise the first failure (a ledger error)."""
        while True:  # hand-backs add futures while we wait
            with self._lock:
                pending = [f for f in self._futures if not f.done()]
            if not pending:
                break
            # Bounded: a future cancelled by cancel()'s pool shutdown is done but never wakes wait() (the
            # executor notifies waiters only of futures it starts), which held an interrupted run 30 s.
            wait(pending, timeout=JOIN_POLL_S)
        if self.failure is not None:
            raise self.failure

    def close(self) -> None:
        self._local.shutdown(wait=True, cancel_futures=False)
        self._remote.shutdown(wait=True, cancel_futures=False)

    def cancel(self) -> None:
        """Stop: drop chunks not yet started and refuse new ones; chunks being judged finish."""
        self._cancelled.set()
        for pool in (self._local, self._remote):
            pool.shutdown(wait=False, cancel_futures=True)


def _mask(url: str | None) -> str:
    """The URL with any password replaced, fit for an error message."""
    return mask_url(url) if url else "<unset>"


def connect(settings: WorkerSettings) -> CeleryDispatcher | None:
    """The fleet's dispatcher with its broker checked now; None without a broker (``runs.dispatch.connect``)."""
    return runs_dispatch.connect(settings.broker_url, lambda: CeleryDispatcher(settings))
