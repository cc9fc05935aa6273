"""``type = "phoenix"``: the spans of a project in a running Arize Phoenix server, read through its HTTP API.

    [sources.phoenix]
    type = "phoenix"
    url = "http://127.0.0.1:6006"                # the Phoenix server (its REST API under /v1)
    project = "default"                          # the project's name (or id)
    span_kinds = ["LLM"]                         # OpenInference span kinds judged (default: LLM)
    api_key_env = "PHOENIX_API_KEY"              # the variable holding an API key, when auth is on
    metadata_attributes = { locale = "app.locale" }  # more metadata, by attribute

A window's spans are those that start in it (``GET
/v1/projects/{project}/spans`` with ``start_time``/``end_time``, in pages of
:data:`PAGE`, oldest first, so the first copy of an id is the oldest). A
span becomes one record: ``id`` is its trace id and span id in hex,
``trace:span`` (what ``judgeq export-phoenix`` and ``export-otel`` read
back); ``ts`` its start; ``input`` / ``output`` its OpenInference
``input.value`` / ``output.value``; ``metadata`` holds ``span_name``,
``session_id`` (``session.id``), ``user_id`` (``user.id``), ``model``
(``llm.model_name``), every ``metadata.*`` attribute under its key (Phoenix
flattens OpenInference's metadata object so), and ``metadata_attributes``.
Strata are metadata keys, as for every source.

Skipped and counted: ``no_content``, a span without output text. A server
that cannot be reached, or answers an error, is :class:`SourceUnavailable`
(exit 3): nothing of the window is written. The API key is sent only in the
``Authorization`` header, never logged.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import quote

from pydantic import Field

from online.errors import SourceUnavailable
from online.sources.settings import SourceSettings, parse_settings
from online.sources.times import check_window, utc_iso

__all__ = ["PhoenixSettings", "PhoenixSource"]

PAGE: Final = 1000  # spans a request
TIMEOUT_S: Final = 30.0
METADATA: Final = (("session_id", "session.id"), ("user_id", "user.id"), ("model", "llm.model_name"))


class PhoenixSettings(SourceSettings):
    """A ``[sources.NAME]`` table of ``type = "phoenix"``."""

    type: Literal["phoenix"] = "phoenix"
    url: Annotated[str, Field(pattern=r"^https?://")]
    project: Annotated[str, Field(min_length=1)] = "default"
    span_kinds: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=lambda: ["LLM"], min_length=1)
    api_key_env: str | None = None
    metadata_attributes: dict[str, str] = Field(default_factory=dict)


def phoenix_headers(api_key_env: str | None) -> dict[str, str]:
    """The Authorization header from the variable named, if it is set (the key never leaves this dict)."""
    key = os.environ.get(api_key_env, "") if api_key_env else ""
    return {"Authorization": f"Bearer {key}"} if key else {}


@dataclass
class PhoenixSource:
    """A Phoenix project's spans that start in a window, as records."""

    name: str
    settings: PhoenixSettings

    @classmethod
    def from_table(cls, name: str, table: Mapping[str, Any], base_dir: Path) -> PhoenixSource:
        return cls(name, parse_settings(PhoenixSettings, name, table))

    def traces(self, start: datetime, end: datetime, skipped: Counter[str]) -> Iterator[dict[str, Any]]:
        check_window(start, end)
        for span in self._spans(start, end):
            record = self._record(span)
            if record is None:
                skipped["no_content"] += 1
                continue
            yield record

    def count(self, start: datetime, end: datetime) -> int:
        return sum(1 for _ in self.traces(start, end, Counter()))

    def _spans(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        import httpx

        s = self.settings
        url = f"{s.url.rstrip('/')}/v1/projects/{quote(s.project, safe='')}/spans"
        params: dict[str, Any] = {"start_time": utc_iso(start), "end_time": utc_iso(end), "limit": PAGE,
                                  "sort": "start_time", "order": "asc", "span_kind": list(s.span_kinds)}
        with httpx.Client(timeout=TIMEOUT_S, headers=phoenix_headers(s.api_key_env)) as client:
            while True:
                try:
                    answer = client.get(url, params=params)
                except httpx.HTTPError as exc:
                    raise SourceUnavailable(f"source {self.name!r}: cannot reach Phoenix at {s.url} "
                                            f"({type(exc).__name__}); is it running?") from None
                if answer.status_code == 404:
                    raise SourceUnavailable(f"source {self.name!r}: Phoenix at {s.url} has no project "
                                            f"{s.project!r}; check sources.{self.name}.project")
                if answer.status_code != 200:
                    raise SourceUnavailable(f"source {self.name!r}: Phoenix at {s.url} answered "
                                            f"{answer.status_code} for the project's spans"
                                            + (" (set its API key in the variable api_key_env names)"
                                               if answer.status_code in (401, 403) else ""))
                body = answer.json()
                yield from body.get("data") or ()
                cursor = body.get("next_cursor")
                if not cursor:
                    return
                params["cursor"] = cursor

    def _record(self, span: Mapping[str, Any]) -> dict[str, Any] | None:
        attrs = span.get("attributes") or {}
        output = attrs.get("output.value")
        context = span.get("context") or {}
        trace_id, span_id = context.get("trace_id"), context.get("span_id")
        if not isinstance(output, str) or not output.strip() or not trace_id or not span_id:
            return None
        meta: dict[str, Any] = {"span_name": span.get("name", "")}
        for key, attribute in METADATA:
            if attrs.get(attribute) is not None:
                meta[key] = attrs[attribute]
        for attribute, value in attrs.items():
            if attribute.startswith("metadata.") and value is not None:
                meta[attribute.removeprefix("metadata.")] = value
        for key, attribute in self.settings.metadata_attributes.items():
            if attrs.get(attribute) is not None:
                meta[key] = attrs[attribute]
        value = attrs.get("input.value")
        return {"id": f"{trace_id}:{span_id}", "input": value if isinstance(value, str) else "", "output": output,
                "ts": span.get("start_time"), "metadata": meta}
