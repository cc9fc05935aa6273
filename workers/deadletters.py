"""Dead letters: chunks whose rows the ledger would not take, after every retry.

When the ledger is what fails, it cannot hold the record of its own failure,
so a chunk that has used up ``JUDGEQ_LEDGER_RETRIES`` is kept in the broker's
Redis, beside the queues: one hash per run (``keys.DEAD_LETTERS``), one field
per task id (a task delivered again overwrites its own entry), each value a
JSON object (never pickle)::

    {"task_id": "...", "at": "2026-11-22T03:15:00+00:00", "error": "the ledger ... refused ...",
     "judge": "exact", "chunk": 3, "items": 250, "message": {...the chunk message...}}

Only then is the task acknowledged. The hash expires ``DEAD_LETTERS_TTL_S``
after its latest entry. ``judgeq status RUN`` shows a run's dead letters;
``judgeq resume RUN`` re-enqueues the run's items that have no row (which
include every dead letter's) and then clears them.

Beside them, the task messages naming the run that workers refused as invalid
(``workers.admission``): only a count and the first error (``keys.REFUSED``),
never the message, which may be forged. A chunk of the run's own that was
refused (workers and submitter of different judgeq versions, say) leaves its
items without rows; status says so, and resume re-enqueues them.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from runs.message import ChunkMessage

from .keys import DEAD_LETTERS, DEAD_LETTERS_TTL_S, REFUSED


@dataclass(frozen=True)
class DeadLetter:
    """One chunk given up on: when, why, and the message to judge it again."""

    task_id: str
    at: str
    error: str
    judge: str
    chunk: int
    items: int
    message: dict[str, Any]

    @classmethod
    def from_json(cls, text: str | bytes) -> DeadLetter:
        body = json.loads(text)
        return cls(task_id=str(body["task_id"]), at=str(body["at"]), error=str(body["error"]),
                   judge=str(body["judge"]), chunk=int(body["chunk"]), items=int(body["items"]),
                   message=dict(body["message"]))

    def summary(self) -> dict[str, Any]:
        """The entry without its message (which holds records): what status shows."""
        return {"task_id": self.task_id, "at": self.at, "error": self.error, "judge": self.judge,
                "chunk": self.chunk, "items": self.items}


class DeadLetters:
    """A run's dead letters in Redis (``client``: a redis-py client on the broker)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def add(self, message: ChunkMessage, task_id: str, error: str) -> None:
        """Keep ``message``, which task ``task_id`` could not write to the ledger because of ``error``."""
        entry = {"task_id": task_id, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                 "error": error, "judge": message.judge_name, "chunk": message.chunk,
                 "items": len(message.records), "message": message.to_json()}
        key = DEAD_LETTERS.format(run_id=message.run_id)
        pipe = self.client.pipeline()
        pipe.hset(key, task_id, json.dumps(entry))
        pipe.expire(key, DEAD_LETTERS_TTL_S)
        pipe.execute()

    def refused(self, run_id: str, error: str) -> None:
        """Count a task message naming ``run_id`` that was refused with ``error`` (the first one is kept)."""
        key = REFUSED.format(run_id=run_id)
        first = {"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "error": error[:1000]}
        pipe = self.client.pipeline()
        pipe.hincrby(key, "count", 1)
        pipe.hsetnx(key, "first", json.dumps(first))
        pipe.expire(key, DEAD_LETTERS_TTL_S)
        pipe.execute()

    def refusals_of(self, run_id: str) -> tuple[int, dict[str, Any] | None]:
        """How many task messages naming the run were refused, and the first (its time and error)."""
        found = self.client.hgetall(REFUSED.format(run_id=run_id))
        count = int(found.get(b"count", 0))
        first = found.get(b"first")
        return count, (json.loads(first) if first else None)

    def of_run(self, run_id: str) -> list[DeadLetter]:
        """The run's dead letters, oldest first."""
        values = self.client.hvals(DEAD_LETTERS.format(run_id=run_id))
        return sorted((DeadLetter.from_json(value) for value in values), key=lambda letter: (letter.at, letter.chunk))

    def clear(self, run_id: str) -> int:
        """Forget the run's dead letters and refusals; returns how many dead letters there were."""
        key = DEAD_LETTERS.format(run_id=run_id)
        pipe = self.client.pipeline()
        pipe.hlen(key)
        pipe.delete(key)
        pipe.delete(REFUSED.format(run_id=run_id))
        count, _, _ = pipe.execute()
        return int(count)
