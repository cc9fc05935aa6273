"""Cutting records into chunk messages and sending them, for :mod:`runs.intake` (every run's one sender).

A chunk holds one judge's records, bounded in count and bytes; a record no
worker would admit is never sent but gets its error row here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from judges.record import DEFAULT_MAX_RECORD_BYTES

from .message import ChunkMessage, json_limit, json_size
from .queues import QUEUE_LOCAL, QUEUE_REMOTE

if TYPE_CHECKING:
    from judges.resolved import ResolvedJudge
    from ledger.store import Ledger

    from .dispatch import Dispatcher


class ChunkSettings(BaseSettings):
    """How records are cut into chunks: this package's section of a process's settings (CLI, workers' online ticks)."""

    model_config = SettingsConfigDict(env_prefix="JUDGEQ_", extra="ignore")

    chunk_local: int = Field(default=250, ge=1, le=5000, description="Records per task for local judges.")
    chunk_remote: int = Field(default=16, ge=1, le=500, description="Records per task for remote judges.")
    chunk_bytes: int = Field(
        default=8 * 1024 * 1024, ge=64 * 1024, le=256 * 1024 * 1024,
        description="Bytes of records (as JSON) one task may carry at most: a chunk is cut short before a record "
        "that would pass it (a record alone always goes), so a few large records never make one huge message.",
    )
    max_record_bytes: int = Field(
        default=DEFAULT_MAX_RECORD_BYTES, ge=1024,
        description="Bytes one record may take: a dataset file's line or row (longer is bad input), an online "
        "trace (longer is skipped and counted as too_large). Give submitters, beat and workers the same value.",
    )

    def size_for(self, judge: ResolvedJudge) -> int:
        return self.chunk_remote if judge.kind == "remote" else self.chunk_local


def queue_for(judge: ResolvedJudge) -> str:
    return QUEUE_REMOTE if judge.kind == "remote" else QUEUE_LOCAL


def too_large(record: dict[str, Any], max_record_bytes: int) -> bool:
    """Whether ``record`` (a record's message) is more than ``max_record_bytes`` as compact UTF-8 JSON."""
    return json_size(record, max_record_bytes) > max_record_bytes


def send_chunks(run_id: str, dataset: str, judges: Iterable[ResolvedJudge], records: list[dict[str, Any]],
                dispatcher: Dispatcher, settings: ChunkSettings, counters: dict[str, int],
                options: dict[str, Any] | None = None, hashes: Mapping[str, str] | None = None,
                weights: Mapping[str, float] | None = None, strata: Mapping[str, str] | None = None,
                *, ledger: Ledger) -> int:
    """Cut ``records`` into each judge's chunks and send them; returns chunks sent.

    A chunk holds at most the judge's chunk size of records and at most
    ``chunk_bytes`` of them (a record alone always goes). A record no worker
    would admit (more than ``runs.message.json_limit``: one stored by a judgeq with
    a larger ``JUDGEQ_MAX_RECORD_BYTES``) is not sent at all: it gets its own
    error row (kind ``too_large``) in ``ledger``, so it never costs the
    neighbours it would have shared a chunk with, and its run can complete.

    ``options``: further ChunkMessage fields for remote judges (``no_cache``, ``max_cost_usd``).
    ``hashes``: the records' content hashes by id, carried in each chunk (see ``ChunkMessage``).
    ``weights`` and ``strata``: an online sample's 1/p and stratum by record id, written on each row.
    """
    parts, refused = _cut(records, settings)
    sent = 0
    for judge in judges:
        body = judge.to_message()

        def message(part: list[dict[str, Any]], chunk: int) -> ChunkMessage:
            # Built from records the caller validated: model_construct skips validating them again.
            return ChunkMessage.model_construct(
                run_id=run_id, dataset=dataset, judge=body, records=part, chunk=chunk,
                hashes=_pick(hashes, part), weights=_pick(weights, part), strata=_pick(strata, part),
                **(options if options and judge.kind == "remote" else {}))

        for part in parts(settings.size_for(judge)):
            counters[judge.name] = counters.get(judge.name, 0) + 1
            dispatcher.send(message(part, counters[judge.name]), queue_for(judge))
            sent += 1
        if refused:
            # Here, not at the top: the rows module loads the ledger's tables (SQLAlchemy), and every command's
            # settings import this module for ChunkSettings (tests/test_cli.py: short commands stay light).
            from .rows import TOO_LARGE, fail_chunk

            fail_chunk(message(refused, 0), ledger,
                       f"the record is larger than JUDGEQ_MAX_RECORD_BYTES = {settings.max_record_bytes} allows a "
                       "worker to take, so it was never sent; give submitters and workers the same "
                       "JUDGEQ_MAX_RECORD_BYTES, or shorten the record", TOO_LARGE)
    return sent


def _cut(records: list[dict[str, Any]], settings: ChunkSettings
         ) -> tuple[Callable[[int], Iterator[list[dict[str, Any]]]], list[dict[str, Any]]]:
    """The records' chunks for a chunk size (a function of it: judges differ), and the records none can carry.

    Each record is measured once: a small one by the bound ``json_size`` takes
    without serialising (at most six times too high, never too low), a large
    one exactly; the same figure decides whether a worker admits it
    (``json_limit``, as :meth:`ChunkMessage.from_json` decides) and how much of
    a chunk's ``chunk_bytes`` it takes.
    """
    admitted = json_limit(settings.max_record_bytes)
    # Exact at or above what a worker admits: a bound over it may belong to a record under it (a record of
    # small numbers is bounded at up to twelve times its size), and only the worker's own figure may refuse.
    exact_above = min(settings.chunk_bytes // 64, admitted)
    kept: list[dict[str, Any]] = []
    sizes: list[int] = []
    refused: list[dict[str, Any]] = []
    for record in records:
        size = json_size(record, exact_above)
        if size <= admitted:
            kept.append(record)
            sizes.append(size)
        else:
            refused.append(record)

    def parts(size: int) -> Iterator[list[dict[str, Any]]]:
        start, count, used = 0, 0, 0
        for i, n in enumerate(sizes):
            if count and (count == size or used + n > settings.chunk_bytes):
                yield kept[start:i]
                start, count, used = i, 0, 0
            count += 1
            used += n
        if count:
            yield kept[start:]

    return parts, refused


def _pick(values: Mapping[str, Any] | None, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The values of ``records`` (by id) that ``values`` has."""
    if not values:
        return {}
    return {r["id"]: values[r["id"]] for r in records if r["id"] in values}
