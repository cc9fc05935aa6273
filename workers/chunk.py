"""Judge one chunk and write its rows: the work behind every task.

Celery tasks (workers/tasks.py) and embedded mode (workers/dispatch.py) both
call :func:`run_chunk`, so the two modes run the same code; the rows it writes
are made in :mod:`runs.rows`. The ledger's
idempotent upsert makes a redelivered chunk harmless; remote judges also skip
items that already have a row, so a redelivery does not pay twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from judges.base import Judge
from judges.config import ResolvedJudge
from judges.record import Record
from judges.build import build
from judges.verdict import Verdict
from ledger.errors import LedgerError
from ledger.store import Ledger
from runs.message import ChunkMessage
from runs.rows import INTERNAL, SETUP, ChunkOutcome, fail_chunk, write_verdicts

from .errors import VerdictCountError
from .remote import RemoteServices, judge_remote

if TYPE_CHECKING:
    from judges.egress import EgressPolicy

log = logging.getLogger(__name__)


class JudgeCache:
    """Built judges per process, keyed by the whole judge message they were built from.

    Building a judge is cheap but not free. The key is the digest of the
    message's canonical JSON, never the version it claims: a message is
    untrusted until :meth:`ResolvedJudge.from_message` has checked it, and a
    judge built for one spec must never serve another (an ``api_base`` moved
    under the same name and version claim would otherwise inherit the first
    builder's judge, or hand its own to the next run). Two messages share a
    judge only if they are the same message.

    ``services`` (remote judges): the rate limiter and retry policy judges are built with;
    ``egress``: where their keys may go (default: the services' settings, else the built-in pairs).
    """

    def __init__(self, services: RemoteServices | None = None, egress: EgressPolicy | None = None) -> None:
        self.services = services
        self.egress = egress or (services.settings.egress_policy() if services is not None else None)
        self._judges: dict[str, Judge] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(judge_message: dict[str, Any]) -> str:
        """The cache key of a judge message: the SHA-256 of its canonical JSON."""
        canonical = json.dumps(judge_message, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                               default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def get(self, judge_message: dict[str, Any]) -> Judge:
        key = self.key(judge_message)
        with self._lock:
            judge = self._judges.get(key)
        if judge is None:
            resolved = ResolvedJudge.from_message(judge_message)
            if self.services is not None:
                judge = build(resolved, limiter=self.services.limiter, retry=self.services.retry_policy(),
                              egress=self.egress)
            else:
                judge = build(resolved, egress=self.egress)
            with self._lock:
                self._judges[key] = judge
        return judge


def execute(message: ChunkMessage, ledger: Ledger, judges: JudgeCache,
            services: RemoteServices | None = None) -> ChunkOutcome:
    """Run the chunk; a bug ends its items as visible errors instead of leaving them hanging.

    Ledger errors propagate (every database error is one, ``ledger.errors``):
    the caller decides whether to retry (a worker) or to stop the run
    resumably (embedded mode). Nothing here swallows them, so a chunk is never
    acknowledged without its rows.
    """
    try:
        return run_chunk(message, ledger, judges, services)
    except LedgerError:
        raise
    except Exception as exc:
        log.exception("chunk %s failed", message.summary())
        return fail_chunk(message, ledger, f"internal error in worker: {type(exc).__name__}: {exc}", INTERNAL)


def run_chunk(message: ChunkMessage, ledger: Ledger, judges: JudgeCache,
              services: RemoteServices | None = None) -> ChunkOutcome:
    """Judge the chunk's records that have no row yet and write their rows in one transaction.

    With ``services``, remote judges go through :func:`workers.remote.judge_remote`
    (circuit, budget, verdict cache, fleet rate limit, hand-backs).
    """
    records = [Record.model_validate(r) for r in message.records]
    try:
        judge = judges.get(message.judge)
    except Exception as exc:  # a worker that cannot build the judge records why, per row
        log.error("cannot build judge %s: %s", message.judge_name, exc)
        verdicts = [Verdict.failed(r.id, f"{type(exc).__name__}: {exc}", attempts=0, error_kind=SETUP) for r in records]
        return write_verdicts(message, records, verdicts, ledger)

    todo: Sequence[Record] = records
    already = 0
    if judge.kind == "remote":
        done = ledger.scores.existing(message.run_id, message.judge_name, [r.id for r in records])
        if done:
            todo = [r for r in records if r.id not in done]
            already = len(records) - len(todo)
    if not todo:
        return ChunkOutcome(written=0, already_done=already, errors=0)
    if judge.kind == "remote" and services is not None:
        remote = judge_remote(message, todo, judge, ledger, services)
        return ChunkOutcome(written=remote.written, already_done=already, errors=remote.errors)
    verdicts = judge.judge(todo)
    if len(verdicts) != len(todo):  # a judge bug must not lose items silently
        raise VerdictCountError(f"judge {message.judge_name} returned {len(verdicts)} verdicts for {len(todo)} records")
    return write_verdicts(message, todo, verdicts, ledger, already_done=already)
