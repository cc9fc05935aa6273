"""The otlp trace source, on files built from the OTLP protobuf messages as the Collector's file exporter writes them.

Requests are ``opentelemetry.proto`` messages turned into JSON by protobuf's
``json_format``; then, as the OTLP JSON encoding prescribes (and unlike
proto3's own JSON mapping), trace and span ids are written in hex.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span

from online.errors import OnlineConfigError, SourceUnavailable
from online.sources import TraceSource, open_source

pytestmark = pytest.mark.timeout(60)

START = datetime(2026, 11, 22, 13, tzinfo=UTC)
END = START + timedelta(hours=1)


def _value(value: Any) -> AnyValue:
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, list):
        wrapped = AnyValue()
        wrapped.array_value.values.extend(_value(v) for v in value)
        return wrapped
    raise TypeError(value)


def _attrs(values: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_value(value)) for key, value in values.items()]


def span(n: int, at: datetime, name: str = "chat", events: dict[str, dict[str, Any]] | None = None,
         **attributes: Any) -> Span:
    """Span ``n`` (trace id n, span id n) started at ``at``, with dotted attribute names written with ``__``."""
    made = Span(trace_id=n.to_bytes(16, "big"), span_id=n.to_bytes(8, "big"), name=name,
                start_time_unix_nano=int((at - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 10**9,
                attributes=_attrs({k.replace("__", "."): v for k, v in attributes.items()}))
    for event, values in (events or {}).items():
        made.events.add(name=event, attributes=_attrs(values))
    return made


def request(spans: list[Span], **resource: Any) -> ExportTraceServiceRequest:
    made = ExportTraceServiceRequest()
    resource_spans: ResourceSpans = made.resource_spans.add()
    resource_spans.resource.attributes.extend(_attrs({k.replace("__", "."): v for k, v in resource.items()}))
    resource_spans.scope_spans.add().spans.extend(spans)
    return made


def otlp_json(made: ExportTraceServiceRequest, hex_ids: bool = True) -> str:
    """One line of OTLP JSON: protobuf's JSON with ids in hex, as the file exporter writes them."""
    body = MessageToDict(made)
    if hex_ids:
        for resource_spans in body["resourceSpans"]:
            for scope in resource_spans["scopeSpans"]:
                for item in scope["spans"]:
                    for key in ("traceId", "spanId"):
                        item[key] = base64.b64decode(item[key]).hex()
    return json.dumps(body)


def messages(*pairs: tuple[str, str]) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]} for role, text in pairs])


def _source(path: Path, **table: Any) -> TraceSource:
    return open_source("otel", {"type": "otlp", "path": str(path), **table}, path.parent)


def test_genai_spans_become_records(tmp_path: Path) -> None:
    chat = span(1, START + timedelta(minutes=5),
                gen_ai__operation__name="chat", gen_ai__request__model="gpt-4o-mini", session__id="sess-1",
                gen_ai__input__messages=messages(("system", "Be brief."), ("user", "Reset my password?"),
                                                 ("assistant", "Which account?"), ("user", "The admin one.")),
                gen_ai__output__messages=json.dumps([{"role": "assistant", "finish_reason": "stop", "parts": [
                    {"type": "reasoning", "content": "think"}, {"type": "text", "content": "Use the admin console."}]}]),
                app__retrieved_context=["Admins reset passwords in the console.", "Users use the login page."],
                app__locale="de")
    lines = [
        otlp_json(request([chat, span(2, START + timedelta(minutes=6), name="GET /api", http__method="GET"),
                           span(3, START + timedelta(minutes=7), name="embeddings", gen_ai__operation__name="embeddings")],
                          service__name="support-bot", user__id="u-7")),
        "",  # a blank line is not a record
        "not json",
        otlp_json(request([span(4, START - timedelta(seconds=1), gen_ai__prompt="early", gen_ai__completion="x"),
                           span(5, END, gen_ai__prompt="late", gen_ai__completion="y")])),
    ]
    (tmp_path / "traces.json").write_text("\n".join(lines) + "\n")
    source = _source(tmp_path / "traces.json", context_attribute="app.retrieved_context",
                     metadata_attributes={"locale": "app.locale"})
    skipped: Counter[str] = Counter()
    records = list(source.traces(START, END, skipped))
    assert records == [{
        "id": f"{1:032x}:{1:016x}", "input": "The admin one.", "output": "Use the admin console.",
        "ts": "2026-11-22T13:05:00+00:00",
        "context": ["Admins reset passwords in the console.", "Users use the login page."],
        "metadata": {"span_name": "chat", "service": "support-bot", "session_id": "sess-1", "user_id": "u-7",
                     "model": "gpt-4o-mini", "locale": "de"},
    }]
    # the HTTP span is no GenAI span: not counted; the embeddings span has no text to judge
    assert skipped == Counter({"no_content": 1, "malformed": 1, "outside": 2})
    assert source.count(START, END) == 1


def test_older_conventions_events_and_indexed_attributes(tmp_path: Path) -> None:
    indexed: dict[str, Any] = {"gen_ai__prompt__0__role": "system", "gen_ai__prompt__0__content": "S",
                               "gen_ai__prompt__1__role": "user", "gen_ai__prompt__1__content": "Q?",
                               "gen_ai__completion__0__content": "A."}
    spans = [
        span(1, START, gen_ai__prompt="What is 2+2?", gen_ai__completion="4", gen_ai__conversation__id="conv-9"),
        span(2, START + timedelta(minutes=1), gen_ai__system="openai",
             events={"gen_ai.content.prompt": {"gen_ai.prompt": json.dumps([{"role": "system", "content": "Hi"},
                                                                            {"role": "user", "content": "Capital?"}])},
                     "gen_ai.content.completion": {"gen_ai.completion": json.dumps(
                         [{"role": "assistant", "content": "Paris"}])}}),
        span(3, START + timedelta(minutes=2), **indexed),
        span(4, START + timedelta(minutes=3), gen_ai__operation__name="chat",
             events={"gen_ai.client.inference.operation.details": {
                 "gen_ai.input.messages": messages(("user", "Ping")),
                 "gen_ai.output.messages": messages(("assistant", "Pong"))}}),
    ]
    (tmp_path / "t.json").write_text(otlp_json(request(spans)) + "\n")
    records = list(_source(tmp_path / "t.json").traces(START, END, Counter()))
    assert [(r["input"], r["output"]) for r in records] == [("What is 2+2?", "4"), ("Capital?", "Paris"),
                                                            ("Q?", "A."), ("Ping", "Pong")]
    assert records[0]["metadata"]["session_id"] == "conv-9"


def test_span_names_folders_gzip_and_base64_ids(tmp_path: Path) -> None:
    folder = tmp_path / "otel"
    folder.mkdir()
    agent = span(7, START + timedelta(minutes=1), name="invoke_agent", gen_ai__prompt="p", gen_ai__completion="c")
    chat = span(8, START + timedelta(minutes=2), name="chat", gen_ai__prompt="p2", gen_ai__completion="c2")
    with gzip.open(folder / "b-2026-11-22.json.gz", "wt") as file:
        file.write(otlp_json(request([agent, chat])) + "\n")
    # proto3's own JSON mapping (base64 ids): read as the same ids
    (folder / "a-2026-11-22.json").write_text(otlp_json(request([span(6, START, name="chat", gen_ai__prompt="p0",
                                                                      gen_ai__completion="c0")]), hex_ids=False))
    (folder / "notes.txt").write_text("not read")
    records = list(_source(folder, span_names=["chat"]).traces(START, END, Counter()))
    assert [r["id"] for r in records] == [f"{6:032x}:{6:016x}", f"{8:032x}:{8:016x}"]  # a-... before b-...


def test_spans_without_ids_or_start_are_counted(tmp_path: Path) -> None:
    bad = request([span(1, START, gen_ai__prompt="p", gen_ai__completion="c")])
    bad.resource_spans[0].scope_spans[0].spans[0].ClearField("start_time_unix_nano")
    body = json.loads(otlp_json(request([span(2, START, gen_ai__prompt="p", gen_ai__completion="c")])))
    body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = "zz"
    (tmp_path / "t.json").write_text(otlp_json(bad) + "\n" + json.dumps(body) + "\n[1, 2]\n")
    skipped: Counter[str] = Counter()
    assert list(_source(tmp_path / "t.json").traces(START, END, skipped)) == []
    assert skipped == Counter({"no_ts": 1, "malformed": 2})


def test_bad_settings_and_missing_paths(tmp_path: Path) -> None:
    with pytest.raises(OnlineConfigError, match=r"sources\.otel\.span_names"):
        _source(tmp_path, span_names=[])
    with pytest.raises(OnlineConfigError, match=r"sources\.otel\.spans is not a setting of type = 'otlp' sources"):
        _source(tmp_path, spans=["chat"])
    with pytest.raises(SourceUnavailable, match=r"'otel'.*missing.*does not exist.*sources\.otel\.path"):
        _source(tmp_path / "missing").count(START, END)


def _instrumented(n: int, at: datetime, operation: str, subject: str, **attributes: Any) -> Span:
    """A span named as OpenTelemetry's GenAI instrumentations name them: ``{operation} {model, tool or agent}``."""
    return span(n, at, name=f"{operation} {subject}", gen_ai__operation__name=operation, **attributes)


def test_span_names_are_shell_patterns_and_exact_names_still_match(tmp_path: Path) -> None:
    """What the official OpenAI instrumentation emits (``chat gpt-4o-mini``) is matched by the README's "chat *"."""
    content = {"gen_ai__input__messages": messages(("user", "Q?")),
               "gen_ai__output__messages": messages(("assistant", "A."))}
    spans = [_instrumented(1, START, "chat", "gpt-4o-mini", **content),
             _instrumented(2, START + timedelta(minutes=1), "text_completion", "gpt-3.5-turbo-instruct", **content),
             _instrumented(3, START + timedelta(minutes=2), "embeddings", "text-embedding-3-small", **content),
             _instrumented(4, START + timedelta(minutes=3), "execute_tool", "get_weather", **content),
             span(5, START + timedelta(minutes=4), name="chat", **content),   # no model known: the operation alone
             span(6, START + timedelta(minutes=5), name="chatter", **content)]
    (tmp_path / "t.json").write_text(otlp_json(request(spans)) + "\n")

    def picked(*patterns: str) -> list[str]:
        source = _source(tmp_path / "t.json", span_names=list(patterns))
        return [r["metadata"]["span_name"] for r in source.traces(START, END, Counter())]

    assert picked("chat *") == ["chat gpt-4o-mini"]
    assert picked("chat *", "text_completion *") == ["chat gpt-4o-mini", "text_completion gpt-3.5-turbo-instruct"]
    assert picked("chat") == ["chat"]  # an exact name matches only itself
    assert picked("chat*") == ["chat gpt-4o-mini", "chat", "chatter"]
    assert picked("execute_tool get_?eather", "Chat *") == ["execute_tool get_weather"]  # case-sensitive


def test_a_window_that_matched_no_span_says_which_names_it_read(tmp_path: Path) -> None:
    content = {"gen_ai__prompt": "p", "gen_ai__completion": "c"}
    spans = [_instrumented(i, START + timedelta(seconds=i), "chat", "gpt-4o-mini", **content) for i in range(1, 8)]
    spans += [_instrumented(8, START, "embeddings", "text-embedding-3-small", **content),
              span(9, START, name="GET /api", http__method="GET"),
              _instrumented(10, END + timedelta(hours=1), "chat", "o3", **content)]  # another window: not counted
    (tmp_path / "t.json").write_text(otlp_json(request(spans)) + "\n")
    exact = _source(tmp_path / "t.json", span_names=["chat"])
    assert list(exact.traces(START, END, Counter())) == []
    found = exact.passed_over(START, END)  # type: ignore[attr-defined]
    assert found is not None
    assert (found.read, found.names, found.distinct) == (9, (("chat gpt-4o-mini", 7),
                                                           ("embeddings text-embedding-3-small", 1), ("GET /api", 1)), 3)
    assert "span_names = ['chat'] matches none" in found.text() and '"chat *"' in found.text()
    assert found.text().startswith("read 9 spans and matched none: 7 'chat gpt-4o-mini', ")
    # a pattern that picks something in the window: nothing to explain, even when the rest is passed over
    assert _source(tmp_path / "t.json", span_names=["chat *"]).passed_over(START, END) is None  # type: ignore[attr-defined]
    # without span_names, a file of spans none of which is a GenAI span says so
    (tmp_path / "http.json").write_text(otlp_json(request([span(1, START, name="GET /", http__method="GET")])) + "\n")
    plain = _source(tmp_path / "http.json").passed_over(START, END)  # type: ignore[attr-defined]
    assert plain is not None and plain.names == (("GET /", 1),) and "gen_ai.* attribute" in plain.hint
    # an empty window (nothing read at all) is just empty
    (tmp_path / "none.json").write_text("")
    assert _source(tmp_path / "none.json").passed_over(START, END) is None  # type: ignore[attr-defined]


def test_empty_span_name_patterns_are_refused(tmp_path: Path) -> None:
    with pytest.raises(OnlineConfigError, match=r"sources\.otel\.span_names\.0"):
        _source(tmp_path, span_names=[""])
