"""Cutting records into chunk messages and sending them: shared by ``judgeq submit`` and online windows.

Both the CLI (scheduler/) and the online window task that beat fires (run by
a worker) send chunks; this module is where both can reach it, since
workers/ never imports scheduler/.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .keys import QUEUE_LOCAL, QUEUE_REMOTE

if TYPE_CHECKING:
    from judges.resolved import ResolvedJudge

    from .dispatch import Dispatcher


class ChunkSettings(BaseSettings):
    """How records are cut into chunks (read by the CLI and by the online window task)."""

    model_config = SettingsConfigDict(env_prefix="JUDGEQ_", extra="ignore")

    chunk_local: int = Field(default=250, ge=1, le=5000, description="Records per task for local judges.")
    chunk_remote: int = Field(default=16, ge=1, le=500, description="Records per task for remote judges.")

    def size_for(self, judge: ResolvedJudge) -> int:
        return self.chunk_remote if judge.kind == "remote" else self.chunk_local


def queue_for(judge: ResolvedJudge) -> str:
    return QUEUE_REMOTE if judge.kind == "remote" else QUEUE_LOCAL


def send_chunks(run_id: str, dataset: str, judges: Iterable[ResolvedJudge], records: list[dict[str, Any]],
                dispatcher: Dispatcher, settings: ChunkSettings, counters: dict[str, int],
                options: dict[str, Any] | None = None, hashes: Mapping[str, str] | None = None,
                weights: Mapping[str, float] | None = None, strata: Mapping[str, str] | None = None) -> int:
    """Cut ``records`` into each judge's chunk size and send them; returns chunks sent.

    ``options``: further ChunkMessage fields for remote judges (``no_cache``, ``max_cost_usd``).
    ``hashes``: the records' content hashes by id, carried in each chunk (see ``ChunkMessage``).
    ``weights`` and ``strata``: an online sample's 1/p and stratum by record id, written on each row.
    """
    from .message import ChunkMessage

    sent = 0
    for judge in judges:
        size = settings.size_for(judge)
        body = judge.to_message()
        for start in range(0, len(records), size):
            part = records[start:start + size]
            counters[judge.name] = counters.get(judge.name, 0) + 1
            # Built from records the caller validated: model_construct skips validating them again.
            message = ChunkMessage.model_construct(
                run_id=run_id, dataset=dataset, judge=body, records=part, chunk=counters[judge.name],
                hashes=_pick(hashes, part), weights=_pick(weights, part), strata=_pick(strata, part),
                **(options if options and judge.kind == "remote" else {}))
            dispatcher.send(message, queue_for(judge))
            sent += 1
    return sent


def _pick(values: Mapping[str, Any] | None, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The values of ``records`` (by id) that ``values`` has."""
    if not values:
        return {}
    return {r["id"]: values[r["id"]] for r in records if r["id"] in values}
