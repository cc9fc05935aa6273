"""Which of a run's items are still in a message somewhere in the broker: the census of lost chunks.

kombu's Redis transport takes a message off its queue with BRPOP and only then
records it in the ``unacked`` hash (``Channel._brpop_read``, then
``QoS.append``): two steps of the worker's event loop, with the reply waiting
in the worker's socket between them. A worker killed there (SIGKILL, the OOM
killer, a lost host) takes the message with it. It is then in no queue and not
unacked, so the visibility timeout never restores it, and its items never get
a row: without help, a waiting submitter would wait until its ``--timeout``.

The census finds such items. For one run it reads where a chunk of it can be:

- the Celery queues (``local``, ``remote`` and kombu's priority lists of each),
- the ``unacked`` hash (delivered to a worker, running, or waiting for an ETA),
- the run's dead letters (given up on; ``judgeq resume`` sends them again).

An item that has no row and is in none of them is lost.
:func:`scheduler.lost.LostChunks` sends such items again once two censuses a
few seconds apart agree (one census can miss a message that a restore moves
from the unacked hash to a queue between the two reads). Sending an item that
was not lost after all costs one duplicate judgement, never a duplicate row:
rows are written once per run, item and judge.

Reading is bounded: only messages whose Flower summary (``argsrepr``, see
``workers.tasks.flower_summary``) names the run are decoded.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from runs.queues import QUEUES

from .deadletters import DeadLetters

#: kombu's Redis transport: the hash of delivered, unacknowledged messages, the separator of a priority
#: list's name, and the priority steps it keeps a list for (kombu's defaults, which judgeq keeps).
UNACKED_KEY = "unacked"
PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
PAGE = 500  # list entries read per LRANGE and hash entries per HSCAN


@dataclass
class Census:
    """The record ids of a run's messages in the broker, by judge name."""

    run_id: str
    in_flight: dict[str, set[str]] = field(default_factory=dict)
    messages: int = 0  # the run's messages found

    def holds(self, judge: str, trace_id: str) -> bool:
        return trace_id in self.in_flight.get(judge, ())

    def _add(self, chunk: Any) -> None:
        if not isinstance(chunk, dict):
            return
        judge = chunk.get("judge")
        name = judge.get("name") if isinstance(judge, dict) else None
        records = chunk.get("records")
        if not isinstance(name, str) or not isinstance(records, list):
            return
        ids = self.in_flight.setdefault(name, set())
        ids.update(str(r["id"]) for r in records if isinstance(r, dict) and "id" in r)
        self.messages += 1


def take_census(client: Any, run_id: str) -> Census:
    """Where the run's chunks are now: queues, unacked and dead letters (``client``: redis-py on the broker)."""
    census = Census(run_id)
    marker = f"run={run_id} ".encode()
    for raw in _queued(client):
        _note(census, raw, marker)
    for raw in _unacked(client):
        try:
            entry = json.loads(raw)  # [message, exchange, routing key]
        except ValueError:
            continue
        if isinstance(entry, list) and entry:
            _note_payload(census, entry[0], marker)
    for letter in DeadLetters(client).of_run(run_id):
        census._add(letter.message)
    return census


def _queued(client: Any) -> Iterator[bytes]:
    for queue in QUEUES:
        for step in PRIORITY_STEPS:
            name = queue if step == 0 else f"{queue}{PRIORITY_SEP}{step}"
            start = 0
            while True:
                page = client.lrange(name, start, start + PAGE - 1)
                yield from page
                if len(page) < PAGE:
                    break
                start += PAGE


def _unacked(client: Any) -> Iterator[bytes]:
    for _, value in client.hscan_iter(UNACKED_KEY, count=PAGE):
        yield value


def _note(census: Census, raw: bytes, marker: bytes) -> None:
    if marker not in raw:  # the summary in the headers names the run: skip others without decoding
        return
    try:
        payload = json.loads(raw)
    except ValueError:
        return
    _note_payload(census, payload, marker)


def _note_payload(census: Census, payload: Any, marker: bytes) -> None:
    """Add the chunk in one kombu message (``{"body": …, "headers": …, "properties": …}``) if it is the run's."""
    if not isinstance(payload, dict):
        return
    headers = payload.get("headers") or {}
    summary = headers.get("argsrepr") if isinstance(headers, dict) else None
    if not isinstance(summary, str) or marker.decode() not in summary + " ":
        return
    body = payload.get("body")
    if not isinstance(body, str):
        return
    properties = payload.get("properties") or {}
    try:
        if isinstance(properties, dict) and properties.get("body_encoding") == "base64":
            body = base64.b64decode(body).decode()
        args = json.loads(body)[0]  # Celery's protocol 2: [args, kwargs, embed]
    except (ValueError, IndexError, KeyError, TypeError):
        return
    if isinstance(args, list) and args:
        census._add(args[0])
