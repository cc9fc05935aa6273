"""The record a judge judges: one dataset item or one production trace.

Field names and aliases are the contract (docs/architecture.md, "Records"); loaders validate
through this model, so the aliases live here and nowhere else, and so do the
bounds of what a ledger can store: an id is at most ``MAX_ID_CHARS``
characters, none of them a control character; ``metadata`` nests at most
``MAX_METADATA_DEPTH`` levels.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Final

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

MAX_ID_CHARS: Final = 256
MAX_METADATA_DEPTH: Final = 32
#: Metadata keys that name the cluster (session, else user) a record belongs to: first present wins.
CLUSTER_KEYS: Final = ("session_id", "user_id")
#: JUDGEQ_MAX_RECORD_BYTES's default: the bytes one record may take (a dataset's line or row, an online
#: trace as JSON). One definition for the submit's check, the online sources, cutting and admitting chunks.
DEFAULT_MAX_RECORD_BYTES: Final = 1024 * 1024

_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")  # C0 controls, DEL, and lone surrogates


class Record(BaseModel):
    """One item to judge. ``id`` defaults to a hash of the record's content."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str = Field(default="", validation_alias=AliasChoices("id", "trace_id"))
    input: str = Field(default="", validation_alias=AliasChoices("input", "query"))
    output: str = Field(validation_alias=AliasChoices("output", "response"))
    context: str | list[str] | None = Field(
        default=None, validation_alias=AliasChoices("context", "retrieved_chunks")
    )
    expected: str | None = Field(default=None, validation_alias=AliasChoices("expected", "reference"))
    metadata: dict[str, Any] = Field(default_factory=dict)
    ts: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        # Numeric ids are common in exported datasets; keep them, as text.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value


    def model_post_init(self, __context: Any) -> None:
        if not self.id:
            object.__setattr__(self, "id", default_id(self.content_hash()))

    def content_hash(self) -> str:
        """A hash of the fields a judge reads (not the id, not the timestamp)."""
        return hash_content(self.input, self.output, self.context, self.expected, self.metadata)

    def unstorable(self) -> tuple[str, str] | None:
        """The first field outside the bounds above, and what is wrong with it; None when all are within.

        A plain method rather than validators, so that records already
        checked (a worker's) do not pay for it: loaders call it once.
        """
        ident = self.id
        if len(ident) > MAX_ID_CHARS:  # an id is a key in every store, log and report
            return "id", f"{len(ident)} characters long, more than {MAX_ID_CHARS}; shorten it (or hash it)"
        bad = None if ident.isprintable() else _CONTROL.search(ident)  # isprintable: the fast, usual answer
        if bad is not None:
            char = bad.group()
            what = "a lone UTF-16 surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
            return "id", f"holds {what} ({char!r} at position {bad.start() + 1}); ids must be printable text"
        for value in self.metadata.values():
            if isinstance(value, dict | list):  # not flat, as metadata usually is: count
                if nesting(self.metadata) > MAX_METADATA_DEPTH:
                    return "metadata", (f"nested more than {MAX_METADATA_DEPTH} levels deep; keep metadata to "
                                        'flat keys like {"locale": "de", "tenant": "acme"}')
                break
        return None

    def has(self, field: str) -> bool:
        """Whether ``field`` holds something a judge can use: present and not blank."""
        value = getattr(self, field)
        if isinstance(value, str):
            return bool(value.strip())
        if isinstance(value, list):
            return any(item.strip() for item in value)
        return value is not None

    def context_text(self) -> str:
        """The context as one string (list items joined by blank lines)."""
        if self.context is None:
            return ""
        if isinstance(self.context, str):
            return self.context
        return "\n\n".join(self.context)

    def to_message(self) -> dict[str, Any]:
        """The JSON-safe form carried in task messages and stored in the ledger."""
        return self.model_dump(mode="json")


def hash_content(input: Any, output: Any, context: Any, expected: Any, metadata: Any) -> str:
    """:meth:`Record.content_hash` of these field values: also usable on a raw record without validating it."""
    body = {"input": input, "output": output, "context": context, "expected": expected, "metadata": metadata}
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def default_id(content_hash: str) -> str:
    """The id of a record that has none: derived from its content, so that the same record gets the same id."""
    return "h" + content_hash[:16]


def nesting(value: Any) -> int:
    """How many levels of objects and arrays ``value`` nests (0 for a scalar; counted up to one past the bound)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if depth <= MAX_METADATA_DEPTH:  # past the bound, how much deeper does not matter
            stack.extend((child, depth + 1) for child in children)
    return deepest
