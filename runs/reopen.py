"""Resume's retry of error rows: each chunk's transient (and ``--retry-errors``) rows become items without a row.

A transient error (the provider did not answer within the retry budget) is
not a verdict, nor is a refusal a configuration fix cures (``--retry-errors``,
``scheduler.causes.RETRYABLE``). ``judgeq resume`` (:mod:`runs.resume`) re-enqueues such items with
the items that have no row: :class:`Reopening` wraps the dispatcher so that,
chunk by chunk, just before the chunk is sent, its items' error rows of those
kinds are deleted (:meth:`ledger.store.Ledger.scores.reopen_errors`); rows with a
verdict are never touched. From then on the items count as
not yet judged (progress and ``--wait`` count rows), and what the deleted rows
paid (cost, tokens) and tried (attempts) travels in the chunk as the items'
``Prior``, so the row the retry writes carries it. A chunk that cannot be sent
gets its rows written back before the error goes on.
"""

from __future__ import annotations

from collections.abc import Sequence

from judges.retry import Prior
from ledger.models import Score
from ledger.rows import ScoreIn
from ledger.store import Ledger

from .dispatch import Dispatcher
from .message import ChunkMessage


class Reopening:
    """A dispatcher that reopens each chunk's error rows of ``kinds`` before sending it through ``inner``."""

    def __init__(self, inner: Dispatcher, ledger: Ledger, kinds: Sequence[str] = ("transient",)) -> None:
        self.inner = inner
        self.ledger = ledger
        self.kinds = kinds
        self.embedded = inner.embedded
        self.reopened = 0

    def send(self, message: ChunkMessage, queue: str) -> None:
        ids = [str(record["id"]) for record in message.records]
        removed = self.ledger.scores.reopen_errors(message.run_id, message.judge_name, ids, self.kinds)
        carry = {row.trace_id: _spent(row).to_json() for row in removed}
        try:
            self.inner.send(message.model_copy(update={"carry": {**message.carry, **carry}}), queue)
        except BaseException:
            self.ledger.scores.write_scores(_as_rows(removed))  # not sent: the rows stand as they were
            raise
        self.reopened += len(removed)

    def close(self) -> None:
        self.inner.close()


def _spent(row: Score) -> Prior:
    """What the deleted row's attempts paid; the retry gets a fresh time budget."""
    return Prior(attempts=row.attempts, cost_usd=row.cost_usd, tokens_in=row.tokens_in, tokens_out=row.tokens_out,
                 last_error=row.error)


def _as_rows(scores: Sequence[Score]) -> list[ScoreIn]:
    return [ScoreIn(**score.model_dump()) for score in scores]
