"""Judging in the submitting process (embedded mode): a thread sends and judges while the caller waits.

The other dispatcher, :class:`workers.dispatch.EmbeddedDispatcher`, judges
the chunks it is sent; :class:`InProcess` runs the job that sends them (a
submit's or a resume's) on a thread of its own with such a dispatcher, so the
main thread stays free to wait on the ledger and to take Ctrl-C. On an
interrupt the job stops between batches, chunks not yet started are dropped
and those being judged finish (each writes its rows in one transaction); the
run stays resumable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from types import TracebackType

from judges.spec import LlmJudgeSpec
from ledger.store import Ledger

from .dispatch import EmbeddedDispatcher
from .settings import WorkerSettings

#: What runs on the thread: it sends chunks to the dispatcher, and stops between batches once the event is set.
Job = Callable[[EmbeddedDispatcher, threading.Event], object]

#: Seconds an interrupt waits for the job to finish its batch.
STOP_S = 30


class InProcess:
    """``with InProcess(...) as run:`` runs ``job(dispatcher, stop)`` on a thread, then waits for every chunk.

    ``run.alive()`` says whether the thread still works; ``run.failure`` holds
    what it raised, for the caller to raise where it decides the outcome.
    Leaving the block by ``KeyboardInterrupt`` stops the job and cancels the
    chunks not yet started. ``trusted``: the LLM judge specs of this process's
    own judgeq.toml, whose routes skip the key policy (see :mod:`judges.egress`).
    """

    def __init__(self, job: Job, ledger: Ledger, settings: WorkerSettings, *, threads: int,
                 trusted: Iterable[LlmJudgeSpec] = ()) -> None:
        self.dispatcher = EmbeddedDispatcher(ledger, remote_threads=threads, settings=settings, trusted=trusted)
        self.failure: list[BaseException] = []
        self._job = job
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="judgeq-embedded", daemon=True)

    def __enter__(self) -> InProcess:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            self._stop.set()
            self.dispatcher.cancel()
            self._thread.join(timeout=STOP_S)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _work(self) -> None:
        try:
            self._job(self.dispatcher, self._stop)
            self.dispatcher.join()
        except BaseException as exc:  # surfaced by the caller, in the main thread
            self.failure.append(exc)
