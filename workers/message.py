"""The chunk message: what a task carries (JSON only, never a secret)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import MessageError

if TYPE_CHECKING:
    from judges.record import Record

MESSAGE_VERSION = 1


@dataclass(frozen=True)
class ChunkMessage:
    """A bounded chunk of records for one judge in one run.

    ``judge`` is the resolved judge (``judges.config.ResolvedJudge.to_message``):
    its spec with the prompt text inlined and the *name* of its API key
    variable, so a worker on another machine needs no files and sees no key.

    Remote judges only: ``no_cache`` forces calls (``--no-cache``);
    ``max_cost_usd`` is the run's budget (``--max-cost``); ``carry`` holds, by
    record id, what earlier deliveries spent on records handed back to the
    queue (``judges.retry.Prior.to_json``), and ``handbacks`` counts those
    hand-backs.

    ``hashes``: each record's content hash by record id, as the submit computed
    it for the ledger's items, so that workers need not hash every record again
    (:meth:`content_hash`; a record without one, as in a resume, is hashed).

    Absent keys mean the defaults, so older messages still parse, and workers
    of the same MESSAGE_VERSION ignore keys they do not know: new optional
    fields need no new version.
    """

    run_id: str
    dataset: str
    judge: dict[str, Any]
    records: list[dict[str, Any]]
    chunk: int = 0
    weights: dict[str, float] = field(default_factory=dict)
    no_cache: bool = False
    max_cost_usd: float | None = None
    carry: dict[str, dict[str, Any]] = field(default_factory=dict)
    handbacks: int = 0
    hashes: dict[str, str] = field(default_factory=dict)

    @property
    def judge_name(self) -> str:
        return str(self.judge["name"])

    def content_hash(self, record: Record) -> str:
        """The record's content hash: the one carried in the message, or computed."""
        return self.hashes.get(record.id) or record.content_hash()

    def to_json(self) -> dict[str, Any]:
        body = self._core()
        if self.no_cache:
            body["no_cache"] = True
        if self.max_cost_usd is not None:
            body["max_cost_usd"] = self.max_cost_usd
        if self.carry:
            body["carry"] = self.carry
        if self.handbacks:
            body["handbacks"] = self.handbacks
        if self.hashes:
            body["hashes"] = self.hashes
        return body

    def _core(self) -> dict[str, Any]:
        return {
            "v": MESSAGE_VERSION,
            "run_id": self.run_id,
            "dataset": self.dataset,
            "judge": self.judge,
            "records": self.records,
            "chunk": self.chunk,
            "weights": self.weights,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> "ChunkMessage":
        version = body.get("v")
        if version != MESSAGE_VERSION:
            raise MessageError(f"chunk message version {version!r} is not {MESSAGE_VERSION}; upgrade the worker")
        return cls(
            run_id=body["run_id"],
            dataset=body["dataset"],
            judge=body["judge"],
            records=body["records"],
            chunk=int(body.get("chunk", 0)),
            weights=dict(body.get("weights") or {}),
            no_cache=bool(body.get("no_cache", False)),
            max_cost_usd=None if body.get("max_cost_usd") is None else float(body["max_cost_usd"]),
            carry=dict(body.get("carry") or {}),
            handbacks=int(body.get("handbacks", 0)),
            hashes=dict(body.get("hashes") or {}),
        )

    def summary(self) -> str:
        """What Flower and logs show instead of the records (which may hold user data)."""
        return f"run={self.run_id} judge={self.judge_name} chunk={self.chunk} n={len(self.records)}"
