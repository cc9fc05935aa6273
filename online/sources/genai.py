"""Reading OTLP JSON attributes, and the prompt and answer of a span by the GenAI semantic conventions.

OTLP JSON (what the Collector's file exporter writes) wraps every attribute
value in an ``AnyValue`` object: ``{"stringValue": "..."}``, ``{"intValue":
"42"}`` (64-bit integers are strings in JSON), ``{"arrayValue": {"values":
[...]}}``, ``{"kvlistValue": {"values": [{"key": ..., "value": ...}]}}``.
:func:`attributes` unwraps a list of them into a plain dict.

Where the text is, newest convention first:

- ``gen_ai.input.messages`` / ``gen_ai.output.messages``: a list of messages
  (a JSON string, or a structured value) ``{"role": "user", "parts":
  [{"type": "text", "content": "..."}]}``. The input is the text of the
  last ``user`` message (else of the last message): the question the answer
  answers; the output is the text of every output message. The same two
  attributes on a ``gen_ai.client.inference.operation.details`` span event
  are read too.
- ``gen_ai.prompt`` / ``gen_ai.completion`` (deprecated): text, or a JSON list
  of ``{"role", "content"}`` messages; also as attributes of the
  ``gen_ai.content.prompt`` / ``gen_ai.content.completion`` span events, and
  in the indexed form ``gen_ai.prompt.0.role`` / ``gen_ai.prompt.0.content``
  that OpenLLMetry writes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson

__all__ = ["CONTENT_EVENTS", "attributes", "input_text", "output_text", "value_of"]

#: Span events whose attributes hold content (inference details; the older prompt and completion events).
CONTENT_EVENTS: Final = frozenset({"gen_ai.client.inference.operation.details", "gen_ai.content.prompt",
                                   "gen_ai.content.completion"})
_INDEXED = re.compile(r"^gen_ai\.(prompt|completion)\.(\d+)\.(role|content)$")


def value_of(wrapped: Any) -> Any:
    """The Python value of an OTLP JSON ``AnyValue``."""
    if not isinstance(wrapped, dict):
        return None
    for kind, value in wrapped.items():
        if kind == "stringValue":
            return value
        if kind == "intValue":
            return int(value)
        if kind in ("boolValue", "doubleValue", "bytesValue"):
            return value
        if kind == "arrayValue":
            return [value_of(item) for item in (value or {}).get("values") or ()]
        if kind == "kvlistValue":
            return attributes((value or {}).get("values"))
    return None


def attributes(items: Iterable[Any] | None) -> dict[str, Any]:
    """A list of OTLP ``KeyValue`` objects as a dict (a later duplicate key wins, as in the SDKs)."""
    found: dict[str, Any] = {}
    for item in items or ():
        found[item["key"]] = value_of(item.get("value"))
    return found


def input_text(attrs: Mapping[str, Any]) -> str | None:
    """The prompt a span's attributes hold: the last user message's text; None when they hold none."""
    found = _conversation(attrs, "gen_ai.input.messages", "prompt")
    if not isinstance(found, list):
        return found
    users = [m for m in found if m.get("role") == "user"]
    chosen = users[-1] if users else found[-1] if found else None
    return _text(chosen) if chosen is not None else None


def output_text(attrs: Mapping[str, Any]) -> str | None:
    """The answer a span's attributes hold: every output message's text; None when they hold none."""
    found = _conversation(attrs, "gen_ai.output.messages", "completion")
    if not isinstance(found, list):
        return found
    texts = [text for text in (_text(m) for m in found) if text]
    return "\n\n".join(texts) if texts else None


def _conversation(attrs: Mapping[str, Any], current: str, older: str) -> list[dict[str, Any]] | str | None:
    """The messages of attribute ``current``, else of ``gen_ai.<older>`` (JSON or indexed), else its plain text."""
    messages = _messages(attrs.get(current))
    if messages is not None:
        return messages
    value = attrs.get(f"gen_ai.{older}")
    messages = _messages(value) or _indexed(attrs, older)
    if messages is not None:
        return messages
    return value if isinstance(value, str) else None


def _messages(value: Any) -> list[dict[str, Any]] | None:
    """A list of message objects, from a JSON string or a structured value; None when it is not one."""
    if isinstance(value, str):
        if not value.lstrip().startswith("["):
            return None
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    if not isinstance(value, list):
        return None
    return [m for m in value if isinstance(m, dict)]


def _text(message: Mapping[str, Any]) -> str:
    """A message's text: its text parts joined; or its ``content`` (the older, OpenAI-like shape)."""
    parts = message.get("parts")
    if isinstance(parts, list):
        return "\n".join(p["content"] for p in parts
                         if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("content"), str))
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}]: the OpenAI content-part shape
        return "\n".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _indexed(attrs: Mapping[str, Any], kind: str) -> list[dict[str, Any]] | None:
    """Messages written as ``gen_ai.<kind>.<n>.role`` / ``.content`` attributes, in index order."""
    found: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        match = _INDEXED.match(key)
        if match is not None and match[1] == kind:
            found.setdefault(int(match[2]), {})[match[3]] = value
    return [found[i] for i in sorted(found)] if found else None
