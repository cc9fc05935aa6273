"""The chunk message: what a task carries (JSON only, never a secret), validated as untrusted input.

Anyone who can write to the broker, or apply a task through Flower, can hand
a worker any arguments. :meth:`ChunkMessage.from_json` therefore checks every
field's type and bounds before anything else reads the message (and
:mod:`workers.admission` checks it against the run the ledger recorded).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from judges.record import DEFAULT_MAX_RECORD_BYTES
from judges.retry import Prior

from .errors import BadMessage


if TYPE_CHECKING:
    from judges.record import Record

MESSAGE_VERSION = 1

#: Records one chunk may carry (the largest chunk setting, JUDGEQ_CHUNK_LOCAL, is at most 5,000).
MAX_CHUNK_RECORDS = 5000
#: Field names and nulls the normalised record may add to what the file held.
RECORD_ENVELOPE_BYTES = 4096


def json_limit(max_record_bytes: int) -> int:
    """The largest compact JSON a record that passed the submit's check can have.

    The submit bounds a record's bytes in the file; as compact UTF-8 JSON each
    character takes at most 6 bytes (a control character as ``\\u0001``) and
    at least 1 in the file, so no record the submit accepted is ever refused
    here, while a forged one stays bounded.
    """
    return 6 * max_record_bytes + RECORD_ENVELOPE_BYTES
#: Run ids: what ``judgeq submit`` makes (``r20261122-031500-3fa9c1``) and other plain ids.
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,199}$"
#: Judge names, as judges.spec.NAME_PATTERN allows them.
JUDGE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$"
_MAX_HANDBACKS = 10_000

Finite = Annotated[float, Field(allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]


#: A chunk's carry: what earlier deliveries spent, by record id, in the shape (and bounds) of
#: judges.retry.Prior itself; keys a Prior does not have are ignored, as in the body (newer fields).
_CARRY: TypeAdapter[dict[str, Prior]] = TypeAdapter(dict[str, Prior])


class _Judge(BaseModel):
    """The judge of a message, as far as the message itself goes (workers.admission checks the rest)."""

    model_config = ConfigDict(extra="allow", strict=True)

    name: Annotated[str, Field(pattern=JUDGE_NAME_PATTERN)]
    version: Annotated[str, Field(min_length=1, max_length=300)]


_RECORDS: Final = {"records"}
_HEAD: Final = ("v", "run_id", "dataset", "judge")  # the fields before records


def _empty(value: Any) -> bool:
    return not value


def _none(value: Any) -> bool:
    return value is None


class ChunkMessage(BaseModel):
    """A bounded chunk of records for one judge in one run; its JSON is the task's argument.

    ``judge`` is the resolved judge (``judges.config.ResolvedJudge.to_message``):
    its spec with the prompt text inlined and the *name* of its API key
    variable, so a worker on another machine needs no files and sees no key.

    Remote judges only: ``no_cache`` forces calls (``--no-cache``);
    ``max_cost_usd`` is the run's budget (``--max-cost``); ``carry`` holds, by
    record id, what earlier deliveries spent on records handed back to the
    queue (``judges.retry.Prior.to_json``), and ``handbacks`` counts those
    hand-backs.

    ``weights`` and ``strata``: an online sample's 1/p and stratum by record
    id (absent: weight 1, the stratum in the record's metadata, if any).

    ``hashes``: each record's content hash by record id, as the submit computed
    it for the ledger's items, so that workers need not hash every record again
    (:meth:`content_hash`; a record without one, as in a resume, is hashed).

    Absent keys mean the defaults, so older messages still parse, and workers
    of the same MESSAGE_VERSION ignore keys they do not know: new optional
    fields need no new version. On the wire (:meth:`to_json`, pydantic's
    serialization) ``v`` through ``weights`` are always present and the fields
    after them only when they are not their defaults, in this order.

    The model validates what it is given (strict types and the bounds below);
    a sender that builds a message from its own, already validated records
    uses ``ChunkMessage.model_construct`` and skips that cost.
    """

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    v: Literal[1] = 1  # MESSAGE_VERSION
    run_id: Annotated[str, Field(pattern=RUN_ID_PATTERN)]
    dataset: Annotated[str, Field(max_length=300)]
    judge: dict[str, Any]  # as sent (workers.admission compares it with the run's); its shape: _Judge
    records: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=MAX_CHUNK_RECORDS)]
    chunk: Count = 0
    weights: dict[str, Annotated[Finite, Field(gt=0)]] = Field(default_factory=dict)
    no_cache: bool = Field(default=False, exclude_if=_empty)
    max_cost_usd: Annotated[Finite, Field(ge=0)] | None = Field(default=None, exclude_if=_none)
    carry: dict[str, dict[str, Any]] = Field(default_factory=dict, exclude_if=_empty)  # its shape: _CARRY
    handbacks: Annotated[int, Field(ge=0, le=_MAX_HANDBACKS)] = Field(default=0, exclude_if=_empty)
    hashes: dict[str, Annotated[str, Field(min_length=1, max_length=128)]] = Field(default_factory=dict,
                                                                                   exclude_if=_empty)
    strata: dict[str, Annotated[str, Field(max_length=300)]] = Field(default_factory=dict, exclude_if=_empty)

    @property
    def judge_name(self) -> str:
        return str(self.judge["name"])

    def content_hash(self, record: Record) -> str:
        """The record's content hash: the one carried in the message, or computed."""
        return self.hashes.get(record.id) or record.content_hash()

    def to_json(self) -> dict[str, Any]:
        """The task argument: JSON-ready, the optional fields only when set, in the fields' order.

        Serialised by pydantic, except ``records``, which are passed through as
        they are (plain JSON objects, as validated or as the sender built them):
        copying them cost about half of what kombu's JSON encoding of the
        message costs (``benchmarks/message.py``), on every chunk sent.
        """
        body = self.model_dump(exclude=_RECORDS)
        head = {key: body.pop(key) for key in _HEAD}
        return {**head, "records": self.records, **body}

    @classmethod
    def from_json(cls, body: Any, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> "ChunkMessage":
        """The message in ``body``, validated as untrusted input; BadMessage (naming no record) otherwise.

        Checked: the version, every field's type, the run id's and judge name's
        form, 1 to MAX_CHUNK_RECORDS records that are JSON objects with distinct
        string ids, each at most ``max_record_bytes`` as JSON, weights finite and
        > 0, a budget finite and >= 0, carry, weights, hashes and strata only for the
        chunk's records, and the carry's shape (``judges.retry.Prior``).
        """
        if not isinstance(body, dict):
            raise BadMessage(f"a chunk message is a JSON object, not {type(body).__name__}")
        version = body.get("v")
        if version != MESSAGE_VERSION:
            raise BadMessage(f"chunk message version {version!r:.20} is not {MESSAGE_VERSION}; upgrade the worker")
        try:
            _Judge.model_validate(body.get("judge"))
        except ValidationError as exc:
            raise BadMessage(f"{describe(body)}: {_problems(exc, within='judge')}") from None
        try:
            checked = cls.model_validate(body)
        except ValidationError as exc:
            raise BadMessage(f"{describe(body)}: {_problems(exc)}") from None
        if checked.carry:
            try:
                carry = _CARRY.validate_python(checked.carry)
            except ValidationError as exc:
                raise BadMessage(f"{describe(body)}: {_problems(exc, within='carry')}") from None
            checked = checked.model_copy(update={"carry": {k: prior.to_json() for k, prior in carry.items()}})
        ids = [r.get("id") for r in checked.records]
        if not all(isinstance(i, str) and i for i in ids) or len(set(ids)) != len(ids):
            raise BadMessage(f"{describe(body)}: every record needs its own non-empty string id")
        known = set(ids)
        for name, keys in (("weights", checked.weights), ("carry", checked.carry), ("hashes", checked.hashes),
                           ("strata", checked.strata)):
            if not known.issuperset(keys):
                raise BadMessage(f"{describe(body)}: {name} names records that are not in the chunk")
        for record in checked.records:
            size = json_size(record, json_limit(max_record_bytes))
            if size > json_limit(max_record_bytes):
                raise BadMessage(f"{describe(body)}: a record is {size} bytes of JSON, more than a record of "
                                 f"JUDGEQ_MAX_RECORD_BYTES = {max_record_bytes} can be")
        return checked

    def summary(self) -> str:
        """What Flower and logs show instead of the records (which may hold user data)."""
        return f"run={self.run_id} judge={self.judge_name} chunk={self.chunk} n={len(self.records)}"


def describe(body: Any) -> str:
    """A short summary of a (possibly forged) message body for logs: never its records."""
    if not isinstance(body, dict):
        return f"a {type(body).__name__} instead of a chunk message"
    judge = body.get("judge")
    name = judge.get("name") if isinstance(judge, dict) else None
    records = body.get("records")
    n = len(records) if isinstance(records, list) else "?"
    return f"chunk message run={str(body.get('run_id'))[:80]!r} judge={str(name)[:80]!r} n={n}"


def json_size(record: dict[str, Any], limit: int) -> int:
    """The record's size as compact UTF-8 JSON, or a bound of it when that bound is at most ``limit``.

    The bound (6 bytes per character, as for an escape like \\u0001) costs a
    walk over the values, far less than serialising; only a record the bound
    does not clear is serialised to be measured exactly.
    """
    bound = _bound(record)
    if bound <= limit:
        return bound
    return len(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode())


def _bound(value: Any) -> int:
    if isinstance(value, str):
        return 6 * len(value) + 2
    if isinstance(value, dict):
        return 2 + sum(6 * len(k) + 4 + _bound(v) for k, v in value.items())
    if isinstance(value, list):
        return 2 + sum(_bound(v) + 1 for v in value)
    if isinstance(value, int) and not -10**18 < value < 10**18:
        return len(str(value))
    return 24  # None, booleans, other numbers


def _problems(exc: ValidationError, within: str | None = None) -> str:
    """The validation errors as ``field: what is wrong``, without the values (they may be records).

    ``within``: the field the validated value came from, put before each location.
    """
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in (within, *error["loc"]) if p is not None) or "message"
        problems.append(f"{where}: {error['msg']}")
    more = len(exc.errors()) - len(problems)
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")
