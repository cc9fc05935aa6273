"""Admitting a task message: only chunks of a run the ledger holds, with the judge it was submitted with.

A worker cannot tell who published a message: whoever can write to Redis, or
apply ``judgeq.judge_chunk`` through Flower, can send any arguments. So the
message is validated as untrusted input (:meth:`ChunkMessage.from_json`), and
its run and judge must be the ones ``judgeq submit`` recorded: the run exists
in this worker's ledger, the message's dataset is the run's, and its judge is
exactly the judge message stored in ``Run.judges`` at submit time. A forged
message is refused: logged (its summary only, never its records), nothing
written, and acknowledged so that it is not delivered again.

A run's judges never change after it is created, so they are cached per
process (a bounded LRU); an unknown run is asked for again each time.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ledger.errors import LedgerError, RunNotFound
from ledger.store import Ledger

from runs.errors import BadMessage
from runs.message import RUN_ID_PATTERN, ChunkMessage

log = logging.getLogger(__name__)

#: Runs whose judges one process keeps.
CACHED_RUNS = 1024

RUN_ID = re.compile(RUN_ID_PATTERN)


class RunJudges:
    """Each run's dataset and judge messages as the ledger recorded them, cached per process."""

    def __init__(self, size: int = CACHED_RUNS) -> None:
        self.size = size
        self._runs: OrderedDict[tuple[str, str], tuple[str, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, message: ChunkMessage, ledger: Ledger) -> None:
        """Raise BadMessage unless ``message`` is a chunk of a run in ``ledger``, with that run's judge.

        LedgerError (other than an unknown run) propagates: the ledger is unreachable, try again later.
        """
        dataset, judges = self._recorded(message.run_id, ledger)
        recorded = judges.get(message.judge_name)
        if recorded is None:
            raise BadMessage(f"{message.summary()}: run {message.run_id} has no judge {message.judge_name!r}")
        if recorded != message.judge:
            raise BadMessage(f"{message.summary()}: its judge differs from the one run {message.run_id} "
                             "was submitted with")
        if message.dataset != dataset:
            raise BadMessage(f"{message.summary()}: its dataset is not run {message.run_id}'s")

    def _recorded(self, run_id: str, ledger: Ledger) -> tuple[str, dict[str, Any]]:
        key = (ledger.url, run_id)
        with self._lock:
            found = self._runs.get(key)
            if found is not None:
                self._runs.move_to_end(key)
                return found
        try:
            run = ledger.runs.get_run(run_id)
        except RunNotFound:
            raise BadMessage(f"run {run_id} is not in this worker's ledger (a forged message, or a worker "
                             "pointed at another ledger: check JUDGEQ_LEDGER_URL)") from None
        found = (run.dataset_hash or run.window or "", dict(run.judges or {}))
        with self._lock:
            self._runs[key] = found
            while len(self._runs) > self.size:
                self._runs.popitem(last=False)
        return found


_RUNS = RunJudges()


def admit(body: Any, ledger: Ledger, max_record_bytes: int,
          on_refused: Callable[[str, str], None] | None = None) -> ChunkMessage | None:
    """The chunk message in ``body`` if it is valid and one of a submitted run's; None (logged) if refused.

    A refused message is to be acknowledged without writing anything. When it
    names a run the ledger holds, ``on_refused(run_id, error)`` is told, so
    that ``judgeq status`` can show it (a run's own chunk refused leaves items
    without rows). LedgerError propagates (the ledger cannot be asked now:
    the caller retries).
    """
    try:
        message = ChunkMessage.from_json(body, max_record_bytes=max_record_bytes)
        _RUNS.check(message, ledger)
    except BadMessage as exc:
        log.error("refused a task message, nothing written: %s", exc)
        run_id = _named_run(body, ledger)
        if run_id is not None and on_refused is not None:
            on_refused(run_id, str(exc))
        return None
    return message


def _named_run(body: Any, ledger: Ledger) -> str | None:
    """The run ``body`` names, if it is a well-formed run id the ledger holds; else None."""
    run_id = body.get("run_id") if isinstance(body, dict) else None
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        return None
    try:
        ledger.runs.get_run(run_id)
    except LedgerError:  # unknown, or the ledger cannot say now: nothing to show it on
        return None
    return run_id

