"""``type = "otlp"``: GenAI spans in the files the OpenTelemetry Collector's file exporter writes.

    [sources.otel]
    type = "otlp"
    path = "otel/"                              # a file, a glob or a folder (its *.json, *.jsonl, and .gz)
    span_names = ["chat *", "text_completion *"]  # default: every span with a gen_ai.* attribute
    context_attribute = "app.retrieved_context" # the attribute holding the retrieved context, if any
    metadata_attributes = { locale = "app.locale", tenant = "app.tenant" }   # more metadata, by attribute

``span_names`` are shell-style patterns (:mod:`fnmatch`, case-sensitive:
``*`` any text, ``?`` one character, ``[abc]`` one of them); a name without
those characters matches only itself. The GenAI conventions name a model
call's span ``{operation} {model}`` (``chat gpt-4o-mini``, ``text_completion
...``, ``generate_content ...``, ``embeddings ...``), a tool's
``execute_tool {tool}`` and an agent's ``invoke_agent {agent}``; a span
whose model (or tool, agent) is unknown is named by its operation alone, so
``"chat"`` matches only those. A window that read spans but matched none says
which names it saw (:meth:`OtlpSource.passed_over`).

Each line is one ``ExportTraceServiceRequest`` in OTLP JSON (resourceSpans ->
scopeSpans -> spans). A judged span becomes one record: ``id`` is the trace
id and the span id in hex, ``trace:span``; ``ts`` the span's start;
``input`` / ``output`` from its GenAI attributes (:mod:`online.sources.genai`);
``metadata`` holds ``service`` (the resource's ``service.name``),
``span_name``, ``model``, ``session_id`` (``session.id``, else
``gen_ai.conversation.id``) and ``user_id`` (``user.id``, else
``enduser.id``), each from the span's attributes, else its resource's.

Skipped and counted: ``no_content``, a judged span without output text
(GenAI instrumentations record content only when asked to, e.g.
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=span_only`` or
``span_and_event``; ``event_only`` puts it in log events, not on the span); ``malformed``,
a line or span that is not OTLP JSON; ``no_ts``/``bad_ts``/``outside``.

The lines are parsed with orjson, not protobuf's ``json_format``: that is
pure Python, tens of times slower, and reads ``traceId`` as base64 (proto3's
JSON mapping) where OTLP JSON writes hex. Ids in either form are accepted.
"""

from __future__ import annotations

import base64
import binascii
import re
from fnmatch import translate
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import Field

from online.errors import SourceError
from online.sources.base import PassedOver
from judges.record import DEFAULT_MAX_RECORD_BYTES
from online.sources.files import FileSet, read_lines
from online.sources.genai import CONTENT_EVENTS, attributes, input_text, output_text
from online.sources.settings import SourceSettings, parse_settings
from online.sources.times import check_window, from_unix_nanos, unix_nanos

__all__ = ["OtlpSettings", "OtlpSource"]

SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")
#: How many records' bytes one line (one export request, a batch of spans) may take.
LINE_RECORDS = 64
#: Metadata keys and the attributes (span first, then resource) they are read from, first found wins.
METADATA = (("session_id", ("session.id", "gen_ai.conversation.id")), ("user_id", ("user.id", "enduser.id")),
            ("model", ("gen_ai.response.model", "gen_ai.request.model")))
#: Distinct span names counted when a window matched none; the rarer ones are counted together.
MAX_NAMES = 1000
OTHER_NAMES = "(other names)"


class OtlpSettings(SourceSettings):
    """A ``[sources.NAME]`` table of ``type = "otlp"``."""

    type: Literal["otlp"] = "otlp"
    path: str
    daily_files: bool = False
    span_names: list[Annotated[str, Field(min_length=1)]] | None = Field(default=None, min_length=1)
    context_attribute: str | None = None
    metadata_attributes: dict[str, str] = Field(default_factory=dict)


class _Malformed(SourceError):
    """Raised when a span is not OTLP JSON (caught where spans are read: the span is counted as malformed)."""


@dataclass
class OtlpSource:
    """The GenAI spans of OTLP JSON files whose start falls in a window, as records."""

    name: str
    files: FileSet
    settings: OtlpSettings

    def __post_init__(self) -> None:
        extra = tuple((key, (attribute,)) for key, attribute in self.settings.metadata_attributes.items())
        self._metadata: tuple[tuple[str, tuple[str, ...]], ...] = (*METADATA, *extra)
        names = self.settings.span_names
        # One regex for every pattern: a span's name is matched once, however many patterns there are.
        self._names = None if names is None else re.compile("|".join(f"(?:{translate(n)})" for n in names))

    @classmethod
    def from_table(cls, name: str, table: Mapping[str, Any], base_dir: Path, *,
                   max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> OtlpSource:
        """The source of a ``[sources.NAME]`` table.

        A line is an export request of many spans (the Collector batches them), so it may be
        ``LINE_RECORDS`` records long; a longer one is skipped and counted (``too_large``), and
        each span's record is bounded by the window job as every source's is.
        """
        settings = parse_settings(OtlpSettings, name, table)
        return cls(name, FileSet.of(name, settings.path, base_dir, SUFFIXES, settings.daily_files,
                                    max_line_bytes=LINE_RECORDS * max_record_bytes), settings)

    def traces(self, start: datetime, end: datetime, skipped: Counter[str]) -> Iterator[dict[str, Any]]:
        check_window(start, end)
        start_ns, end_ns = unix_nanos(start), unix_nanos(end)
        for resource, span, attrs in self._picked(start, end, skipped, None):
            try:
                nanos = span.get("startTimeUnixNano")
                if nanos in (None, "", "0", 0):
                    skipped["no_ts"] += 1
                    continue
                try:
                    moment = int(nanos)
                except (TypeError, ValueError):
                    skipped["bad_ts"] += 1
                    continue
                if not start_ns <= moment < end_ns:
                    skipped["outside"] += 1
                    continue
                record = self._record(span, attrs, resource, moment)
            except (_Malformed, KeyError, TypeError, ValueError, AttributeError):
                skipped["malformed"] += 1
                continue
            if record is None:
                skipped["no_content"] += 1
                continue
            yield record

    def passed_over(self, start: datetime, end: datetime) -> PassedOver | None:
        """The names of the window's spans when ``span_names`` (or, without it, the gen_ai.* test) picked none.

        Only spans that start in the window count, picked or not; None when
        one was picked or none was read.
        """
        check_window(start, end)
        start_ns, end_ns = unix_nanos(start), unix_nanos(end)
        passed: Counter[str] = Counter()
        picked = sum(1 for _, span, _ in self._picked(start, end, Counter(), passed)
                     if _starts_in(span, start_ns, end_ns))
        if picked or not passed:
            return None
        if self._names is None:
            hint = ("none has a gen_ai.* attribute, so none is a GenAI span: is the model client instrumented with "
                    "an OpenTelemetry GenAI instrumentation?")
        else:
            hint = (f"sources.{self.name}.span_names = {self.settings.span_names} matches none of them; the names "
                    'are shell-style patterns: "chat *" matches "chat gpt-4o-mini"')
        return PassedOver(read=sum(passed.values()), names=tuple(passed.most_common(5)), distinct=len(passed),
                          hint=hint)

    def _picked(self, start: datetime, end: datetime, skipped: Counter[str],
                passed: Counter[str] | None) -> Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
        """(resource, span, attributes) of every span ``span_names`` (or the gen_ai.* test) picks, in file order.

        With ``passed``, the names of the spans passed over that start in the window are counted there.
        """
        names = self._names
        start_ns, end_ns = unix_nanos(start), unix_nanos(end)
        for line in read_lines(self.files, start, end, skipped):
            try:
                request = orjson.loads(line)
            except orjson.JSONDecodeError:
                if line.strip():
                    skipped["malformed"] += 1
                continue
            if not isinstance(request, dict):
                skipped["malformed"] += 1
                continue
            for resource, span in _spans(request, skipped):
                try:
                    attrs = attributes(span.get("attributes"))
                except (KeyError, TypeError, ValueError, AttributeError):
                    skipped["malformed"] += 1
                    continue
                name = span.get("name")
                if names is not None:
                    chosen = isinstance(name, str) and names.match(name) is not None
                else:
                    chosen = any(key.startswith("gen_ai.") for key in attrs)
                if chosen:
                    yield resource, span, attrs
                elif passed is not None and _starts_in(span, start_ns, end_ns):
                    label = name if isinstance(name, str) else "(no name)"
                    passed[label if label in passed or len(passed) < MAX_NAMES else OTHER_NAMES] += 1

    def count(self, start: datetime, end: datetime) -> int:
        return sum(1 for _ in self.traces(start, end, Counter()))

    def _record(self, span: Mapping[str, Any], attrs: dict[str, Any], resource: Mapping[str, Any],
                nanos: int) -> dict[str, Any] | None:
        """The record of a judged span; None when it holds no output text."""
        for event in span.get("events") or ():
            if event.get("name") in CONTENT_EVENTS:
                attrs = {**attributes(event.get("attributes")), **attrs}
        output = output_text(attrs)
        if not output:
            return None
        record: dict[str, Any] = {"id": f"{_hex(span.get('traceId'), 16)}:{_hex(span.get('spanId'), 8)}",
                                  "input": input_text(attrs) or "", "output": output, "ts": from_unix_nanos(nanos)}
        if self.settings.context_attribute is not None:
            context = attrs.get(self.settings.context_attribute)
            if isinstance(context, list):
                record["context"] = [c if isinstance(c, str) else orjson.dumps(c).decode() for c in context]
            elif context is not None:
                record["context"] = str(context)
        meta: dict[str, Any] = {"span_name": span.get("name", "")}
        service = resource.get("service.name")
        if service is not None:
            meta["service"] = service
        for key, names in self._metadata:
            for attribute in names:
                value = attrs.get(attribute)
                if value is None:
                    value = resource.get(attribute)
                if value is not None:
                    meta[key] = value
                    break
        record["metadata"] = meta
        return record


def _spans(request: Mapping[str, Any], skipped: Counter[str]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(resource attributes, span) of every span of a request, in order; a malformed resource is counted."""
    for resource_spans in request.get("resourceSpans") or ():
        try:
            resource = attributes((resource_spans.get("resource") or {}).get("attributes"))
            scopes = resource_spans.get("scopeSpans") or ()
            spans = [span for scope in scopes for span in scope.get("spans") or ()]
        except (KeyError, TypeError, ValueError, AttributeError):
            skipped["malformed"] += 1
            continue
        for span in spans:
            if isinstance(span, dict):
                yield resource, span
            else:
                skipped["malformed"] += 1


def _starts_in(span: Mapping[str, Any], start_ns: int, end_ns: int) -> bool:
    """Whether a span's start is in ``[start_ns, end_ns)``; False for a span without a readable start."""
    try:
        return start_ns <= int(span.get("startTimeUnixNano") or 0) < end_ns
    except (TypeError, ValueError):
        return False


def _hex(value: Any, size: int) -> str:
    """An OTLP id as lowercase hex: as OTLP JSON writes it (hex), or as proto3 JSON does (base64)."""
    if not isinstance(value, str):
        raise _Malformed("an id is not text")
    if len(value) == 2 * size:
        try:
            return bytes.fromhex(value).hex()
        except ValueError:
            pass
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _Malformed(f"{value!r} is not an id") from None
    if len(raw) != size:
        raise _Malformed(f"{value!r} is not an id of {size} bytes")
    return raw.hex()
