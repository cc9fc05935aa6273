"""Content hashes are computed once, by the submit, and travel in the chunk to the worker's rows.

The submit hashes each record for its ledger item; the chunk carries the
hashes by record id (``ChunkMessage.hashes``) so that workers do not hash again.
Messages without them (older submits, resumes) are still read, and hashed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from judges.config import load_config
from judges.record import Record
from judges.verdict import Verdict
from ledger import Ledger
from runs.sending import ChunkSettings
from scheduler.submit import enqueue, plan
from runs.rows import score_row
from runs.message import MESSAGE_VERSION, ChunkMessage

pytestmark = pytest.mark.timeout(60)

CONFIG = '[judges.noop]\ntype = "local"\nbuiltin = "noop"\n'


class Recorder:
    """A dispatcher that keeps what it is sent."""

    embedded = True

    def __init__(self) -> None:
        self.sent: list[ChunkMessage] = []

    def send(self, message: ChunkMessage, queue: str) -> None:
        self.sent.append(message)


def message(records: list[Record], **fields: object) -> ChunkMessage:
    return ChunkMessage(run_id="r", dataset="d", judge={"name": "noop", "version": "noop@1"},
                        records=[r.to_message() for r in records], **fields)  # type: ignore[arg-type]


def test_submitted_chunks_carry_the_hashes_stored_with_the_items(tmp_path: Path) -> None:
    data = tmp_path / "golden.jsonl"
    lines = [{"id": f"t{i}", "input": f"q {i}", "output": "a\tb \u00e9", "metadata": {"n": i}} for i in range(1200)]
    data.write_text("".join(json.dumps(line) + "\n" for line in lines))
    (tmp_path / "judgeq.toml").write_text(CONFIG)
    recorder = Recorder()
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as ledger:
        submitted = plan(data, load_config(tmp_path / "judgeq.toml"), ["noop"])
        enqueue(submitted, ledger, recorder, ChunkSettings(chunk_local=250))  # type: ignore[arg-type]
        with ledger.engine.connect() as conn:
            stored: dict[str, str] = dict(conn.exec_driver_sql("SELECT trace_id, content_hash FROM items").all())

    assert [len(m.records) for m in recorder.sent] == [250, 250, 250, 250, 200]  # batches of 500
    carried: dict[str, str] = {}
    for sent in recorder.sent:
        body = ChunkMessage.from_json(json.loads(json.dumps(sent.to_json())))  # as a worker reads it
        assert set(body.hashes) == {r["id"] for r in body.records}
        carried.update(body.hashes)
    expected = {line["id"]: Record.model_validate(line).content_hash() for line in lines}
    assert carried == stored == expected


def test_a_worker_uses_the_carried_hash_and_hashes_when_there_is_none() -> None:
    records = [Record(id="a", output="x"), Record(id="b", output="y")]
    verdict = Verdict("a", 1.0, "pass", "")
    carried = message(records, hashes={"a": "carried-hash"})
    plain = message(records)

    assert score_row(carried, records[0], verdict, "noop@1").content_hash == "carried-hash"
    assert score_row(carried, records[1], verdict, "noop@1").content_hash == records[1].content_hash()
    assert score_row(plain, records[0], verdict, "noop@1").content_hash == records[0].content_hash()


def test_messages_with_and_without_hashes_are_read_by_the_same_version() -> None:
    records = [Record(id="a", output="x")]
    old = message(records).to_json()
    assert "hashes" not in old and old["v"] == MESSAGE_VERSION  # an older submit's message, unchanged
    assert ChunkMessage.from_json(old).hashes == {}

    new = message(records, hashes={"a": "h"}).to_json()
    assert new["v"] == MESSAGE_VERSION and ChunkMessage.from_json(new).hashes == {"a": "h"}
