"""The record a judge judges: one dataset item or one production trace.

Field names and aliases are the contract of DESIGN.md; loaders validate
through this model, so the aliases live here and nowhere else.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator


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
            object.__setattr__(self, "id", "h" + self.content_hash()[:16])

    def content_hash(self) -> str:
        """A hash of the fields a judge reads (not the id, not the timestamp)."""
        body = {
            "input": self.input,
            "output": self.output,
            "context": self.context,
            "expected": self.expected,
            "metadata": self.metadata,
        }
        text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

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
