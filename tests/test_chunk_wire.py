"""The chunk message's wire format is a contract with workers of other versions: the same JSON, byte for byte.

Written out here as a worker of message version 1 reads it: ``v`` to
``weights`` always, in this order, then each optional field only when it is
not its default; a received message sent on again (a hand-back) keeps it.
"""

from __future__ import annotations

import json

from judges.retry import Prior
from runs.message import ChunkMessage

JUDGE = {"name": "j", "version": "j@1", "kind": "remote", "model": "openai/x"}
RECORDS = [{"id": "a", "output": "x"}, {"id": "b", "output": "y", "metadata": {"locale": "de"}}]

PLAIN = ('{"v": 1, "run_id": "r1", "dataset": "d", "judge": {"name": "j", "version": "j@1", "kind": "remote", '
         '"model": "openai/x"}, "records": [{"id": "a", "output": "x"}, {"id": "b", "output": "y", "metadata": '
         '{"locale": "de"}}], "chunk": 3, "weights": {}}')
FULL = ('{"v": 1, "run_id": "r1", "dataset": "d", "judge": {"name": "j", "version": "j@1", "kind": "remote", '
        '"model": "openai/x"}, "records": [{"id": "a", "output": "x"}, {"id": "b", "output": "y", "metadata": '
        '{"locale": "de"}}], "chunk": 0, "weights": {"a": 2.0}, "no_cache": true, "max_cost_usd": 0.0, '
        '"carry": {"a": {"attempts": 2, "cost_usd": 0.1, "last_error": "429"}}, "handbacks": 1, '
        '"hashes": {"a": "h"}, "strata": {"b": "de"}}')


def test_a_plain_chunk_on_the_wire() -> None:
    message = ChunkMessage(run_id="r1", dataset="d", judge=JUDGE, records=RECORDS, chunk=3)
    assert json.dumps(message.to_json()) == PLAIN
    assert json.dumps(ChunkMessage.from_json(json.loads(PLAIN)).to_json()) == PLAIN


def test_every_optional_field_on_the_wire_and_back() -> None:
    carry = {"a": Prior(attempts=2, cost_usd=0.1, last_error="429").to_json()}
    message = ChunkMessage(run_id="r1", dataset="d", judge=JUDGE, records=RECORDS, weights={"a": 2.0},
                           no_cache=True, max_cost_usd=0.0, carry=carry, handbacks=1, hashes={"a": "h"},
                           strata={"b": "de"})
    assert json.dumps(message.to_json()) == FULL
    received = ChunkMessage.from_json(json.loads(FULL))
    assert received == message and json.dumps(received.to_json()) == FULL
    sent_on = received.model_copy(update={"handbacks": 2, "no_cache": False, "max_cost_usd": None})
    assert json.dumps(sent_on.to_json()) == FULL.replace('"no_cache": true, "max_cost_usd": 0.0, ', "").replace(
        '"handbacks": 1', '"handbacks": 2')
