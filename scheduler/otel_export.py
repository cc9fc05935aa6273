"""``judgeq export-otel``: each verdict of a run (or of a window's runs) as a span of the trace it judged.

The span of a ledger row lives in the judged trace, so the score sits beside
the latency and tokens that trace already carries:

- a row whose trace id is ``TRACE:SPAN`` (32 and 16 hex digits, the ids the
  ``otlp`` source gives a judged span) becomes a child of that span: its parent
  is a non-recording ``SpanContext`` (remote) passed to ``start_span``;
- a row whose trace id is a W3C trace id alone (32 hex digits) becomes a root
  span of that trace (the SDK's ``IdGenerator`` hook hands the SDK the trace id);
- any other id is no OpenTelemetry trace: the row is skipped and counted.

Only verdicts are sent (status ok with a score); error and skipped rows are
counted, not sent. A span starts ``latency_s`` before the row's ``ts`` and ends
at it, and carries ``app.eval.<eval>`` (the score), ``app.eval.name``,
``app.eval.judge_version``, ``app.eval.sampled`` (an online run's row),
``app.eval.weight`` (1/p), ``app.eval.label``, ``app.eval.run_id``,
``app.eval.dataset`` (dataset hash or window id) and, online,
``app.eval.stratum``; never the record's text (the judge's reason goes in the
evaluation event, below, as the conventions ask).

**Evaluation events.** Beside its span, each verdict is also sent as the
GenAI semantic conventions' evaluation event: a log record whose
``event_name`` is ``gen_ai.evaluation.result``, carrying the judged trace's
id and, when the row names it, the judged span's id (the event belongs to
the span that was evaluated, not to judgeq's span), with
``gen_ai.evaluation.name`` (the eval), ``gen_ai.evaluation.score.value``,
``gen_ai.evaluation.score.label`` (when the judge gave one) and
``gen_ai.evaluation.explanation`` (the judge's reason, when it gave one).
The attribute names are the conventions' package's
(``opentelemetry.semconv._incubating.attributes.gen_ai_attributes``); the
package has no constant for the event's name, so it is written here. The
conventions are in development: names may still change. ``gen_ai.response.id``
is not sent: the ledger keeps no provider response id. The events go to
``/v1/logs`` of the same endpoint through the SDK's ``OTLPLogExporter``.

Spans go out over OTLP/HTTP (protobuf) in batches through the SDK's
``OTLPSpanExporter``, whose endpoint, headers and timeout follow the standard
``OTEL_EXPORTER_OTLP_*`` variables (secrets such as an auth header stay in the
environment). A batch the endpoint does not take ends the export with
:class:`ExportUnavailable` (exit 3), saying how many spans were sent before it.

The environment's credentials belong to the environment's collector: headers
(``OTEL_EXPORTER_OTLP_HEADERS``, ``..._TRACES_HEADERS``) and a credential
provider (``OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER``) go
only to the endpoint the environment names (``..._TRACES_ENDPOINT``, else
``OTEL_EXPORTER_OTLP_ENDPOINT`` + ``/v1/traces``, else the SDK's default). An
``--endpoint`` elsewhere gets none of them (the SDK would add them to any
URL): a flag typed from a runbook, or a shared script's argument, must not
hand the collector's API key to another host. To send credentials to another
collector, name it in the environment (``OTEL_EXPORTER_OTLP_ENDPOINT``)
beside its headers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from typing import TYPE_CHECKING, Any, Final, Protocol

from .errors import ExportUnavailable

if TYPE_CHECKING:
    from ledger.models import Run, Score

BATCH: Final = 512  # spans per OTLP request (the SDK's batch processor's default)
TRACES_PATH: Final = "/v1/traces"
LOGS_PATH: Final = "/v1/logs"
#: The GenAI conventions' evaluation event (its attributes' names come from opentelemetry-semantic-conventions).
EVALUATION_EVENT: Final = "gen_ai.evaluation.result"
_TRACE_AND_SPAN: Final = re.compile(r"([0-9a-f]{32}):([0-9a-f]{16})")
_TRACE: Final = re.compile(r"[0-9a-f]{32}")
DEFAULT_ENDPOINT: Final = "http://localhost:4318"  # the SDK's, when the environment names none
#: The environment's credentials for its collector (the SDK reads them for any endpoint).
CREDENTIAL_VARIABLES: Final = ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                               "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
                               "OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER",
                               "OTEL_PYTHON_EXPORTER_OTLP_HTTP_LOGS_CREDENTIAL_PROVIDER")


@dataclass
class ExportCounts:
    """What an export did: spans sent, and rows not sent with why."""

    endpoint: str
    sent: int = 0
    events: int = 0  # gen_ai.evaluation.result log records sent, one a span
    events_endpoint: str = ""
    children: int = 0  # of the sent: children of the judged span
    not_scored: int = 0  # error or skipped rows
    no_trace: int = 0  # ids that are no OpenTelemetry trace id
    runs: list[str] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)  # credential variables not sent to --endpoint


class Skips(Protocol):
    """Where :func:`verdicts` counts what it does not yield."""

    runs: list[str]
    not_scored: int
    no_trace: int


def verdicts(runs: Sequence[Run], rows_of: Callable[[Run], Iterable[Score]],
             counts: Skips) -> Iterator[tuple[Run, Score, tuple[int, int | None]]]:
    """The runs' verdicts (status ok, with a score) whose trace id is an OpenTelemetry one, with its ids;
    the rows left out counted in ``counts`` (every exporter of verdicts to a trace store reads them so)."""
    for run in runs:
        counts.runs.append(run.id)
        for row in rows_of(run):
            if row.status != "ok" or row.score is None:
                counts.not_scored += 1
                continue
            found = trace_ids(row.trace_id)
            if found is None:
                counts.no_trace += 1
                continue
            yield run, row, found


def trace_ids(trace_id: str) -> tuple[int, int | None] | None:
    """(trace id, parent span id or None) of a row's trace id, as integers; None when it is no OTel trace."""
    text = trace_id.lower()
    match = _TRACE_AND_SPAN.fullmatch(text)
    if match is not None:
        trace, span = int(match[1], 16), int(match[2], 16)
        return (trace, span) if trace and span else None
    if _TRACE.fullmatch(text) and int(text, 16):
        return int(text, 16), None
    return None


def traces_endpoint(endpoint: str | None) -> str | None:
    """``--endpoint`` as the SDK wants it: a base URL (as ``OTEL_EXPORTER_OTLP_ENDPOINT``) gets ``/v1/traces``."""
    if endpoint is None:
        return None
    base = endpoint.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


def logs_endpoint(endpoint: str | None) -> str | None:
    """The logs URL beside ``--endpoint``'s traces URL (the same base, ``/v1/logs``)."""
    traces = traces_endpoint(endpoint)
    return None if traces is None else traces[: -len(TRACES_PATH)] + LOGS_PATH


def environment_endpoint() -> str:
    """The traces URL the environment names, as the SDK resolves it."""
    traces = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if traces:
        return traces
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or DEFAULT_ENDPOINT
    return base.rstrip("/") + TRACES_PATH


def same_endpoint(a: str, b: str) -> bool:
    """Whether two URLs name the same endpoint: scheme, host, port and path compared, not the text."""
    def key(url: str) -> tuple[str, str, int | None, str]:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        try:
            port = parts.port or {"http": 80, "https": 443}.get(scheme)
        except ValueError:
            port = None
        return scheme, (parts.hostname or "").rstrip("."), port, parts.path.rstrip("/")

    return key(a) == key(b)


@contextmanager
def _environment_without(names: Sequence[str]) -> Iterator[None]:
    """The process's environment without ``names`` for the duration (the SDK reads them when built)."""
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def export_rows(runs: Sequence[Run], rows_of: Callable[[Run], Iterable[Score]], endpoint: str | None,
                progress: Callable[[int], None] = lambda sent: None) -> ExportCounts:
    """Send the verdicts of ``runs`` (``rows_of`` streams a run's rows) as spans; the counts."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExportResult
    from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
    from opentelemetry.sdk._logs.export import LogRecordExportResult

    class TraceIds(IdGenerator):
        """Random span ids; the trace id of a root span is the judged trace's (set before each root span)."""

        def __init__(self) -> None:
            self.random = RandomIdGenerator()
            self.next_trace: int | None = None

        def generate_span_id(self) -> int:
            return self.random.generate_span_id()

        def generate_trace_id(self) -> int:
            found, self.next_trace = self.next_trace, None
            return found if found is not None else self.random.generate_trace_id()

    class Collect(SpanProcessor):
        """Keeps ended spans until the caller sends them (so a refused batch is known, not logged and lost)."""

        def __init__(self) -> None:
            self.ended: list[ReadableSpan] = []

        def on_end(self, span: ReadableSpan) -> None:
            self.ended.append(span)

    class CollectLogs(LogRecordProcessor):
        """Keeps emitted records until the caller sends them, as ``Collect`` keeps spans."""

        def __init__(self) -> None:
            self.emitted: list[Any] = []

        def on_emit(self, log_record: Any) -> None:
            self.emitted.append(log_record)

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    resolved = traces_endpoint(endpoint)
    foreign = resolved is not None and not same_endpoint(resolved, environment_endpoint())
    withheld = [name for name in CREDENTIAL_VARIABLES if foreign and os.environ.get(name)]
    if foreign:  # no credential of the environment's collector reaches another host (module docstring)
        import requests

        with _environment_without(CREDENTIAL_VARIABLES):
            exporter = OTLPSpanExporter(endpoint=resolved, session=requests.Session())
            log_exporter = OTLPLogExporter(endpoint=logs_endpoint(endpoint), session=requests.Session())
    else:
        exporter = OTLPSpanExporter(endpoint=resolved)
        log_exporter = OTLPLogExporter(endpoint=logs_endpoint(endpoint))
    counts = ExportCounts(endpoint=exporter._endpoint,  # the URL the SDK resolved (flag, env or default)
                          withheld=withheld, events_endpoint=log_exporter._endpoint)
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: "judgeq"}
    ids = TraceIds()
    collect = Collect()
    provider = TracerProvider(resource=Resource.create(attributes), id_generator=ids)
    provider.add_span_processor(collect)
    tracer = provider.get_tracer("judgeq.export_otel")
    collect_logs = CollectLogs()
    logs = LoggerProvider(resource=provider.resource)
    logs.add_log_record_processor(collect_logs)
    logger = logs.get_logger("judgeq.export_otel")

    def flush() -> None:
        if not collect.ended:
            return
        batch, collect.ended = collect.ended, []
        if exporter.export(batch) != SpanExportResult.SUCCESS:
            raise ExportUnavailable(f"the OTLP endpoint {counts.endpoint} did not take {len(batch)} spans "
                                    f"({counts.sent} were sent before); check that a collector listens there "
                                    "(--endpoint, OTEL_EXPORTER_OTLP_ENDPOINT) and its headers "
                                    "(OTEL_EXPORTER_OTLP_HEADERS), then run export-otel again")
        counts.sent += len(batch)
        events, collect_logs.emitted = collect_logs.emitted, []
        if events and log_exporter.export(events) != LogRecordExportResult.SUCCESS:
            raise ExportUnavailable(f"the OTLP endpoint {counts.events_endpoint} did not take {len(events)} "
                                    f"{EVALUATION_EVENT} events ({counts.events} were sent before; the spans "
                                    "were taken); check that the collector takes logs there, then run "
                                    "export-otel again")
        counts.events += len(events)
        progress(counts.sent)

    try:
        for run, row, found in verdicts(runs, rows_of, counts):
            _span(tracer, trace, ids, run, row, *found)
            _event(logger, trace, row, *found)
            counts.children += found[1] is not None
            if len(collect.ended) >= BATCH:
                flush()
        flush()
    finally:
        exporter.shutdown()
        log_exporter.shutdown()
    return counts


def _span(tracer: Any, trace: Any, ids: Any, run: Run, row: Score, trace_id: int, parent: int | None) -> None:
    """Start and end the span of one verdict (see the module's docstring)."""
    end = int(row.ts.timestamp() * 1e9)
    start = end - max(0, int(row.latency_s * 1e9))
    if parent is not None:
        context = trace.SpanContext(trace_id=trace_id, span_id=parent, is_remote=True,
                                    trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))
        parent_context = trace.set_span_in_context(trace.NonRecordingSpan(context))
    else:
        ids.next_trace = trace_id
        parent_context = trace.set_span_in_context(trace.INVALID_SPAN)  # a new root span, not the caller's
    span = tracer.start_span(f"judge {row.eval}", context=parent_context, start_time=start,
                             attributes=dict(_attributes(run, row)))
    span.end(end_time=end)


def _event(logger: Any, trace: Any, row: Score, trace_id: int, judged_span: int | None) -> None:
    """Emit the verdict as the conventions' evaluation event, in the judged trace (and span, when known)."""
    from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai

    context = trace.SpanContext(trace_id=trace_id, span_id=judged_span or 0, is_remote=True,
                                trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))
    attributes: dict[str, Any] = {gen_ai.GEN_AI_EVALUATION_NAME: row.eval,
                                  gen_ai.GEN_AI_EVALUATION_SCORE_VALUE: float(row.score or 0.0)}
    if row.label is not None:
        attributes[gen_ai.GEN_AI_EVALUATION_SCORE_LABEL] = row.label
    if row.reason:
        attributes[gen_ai.GEN_AI_EVALUATION_EXPLANATION] = row.reason
    logger.emit(timestamp=int(row.ts.timestamp() * 1e9), event_name=EVALUATION_EVENT, attributes=attributes,
                context=trace.set_span_in_context(trace.NonRecordingSpan(context)))


def _attributes(run: Run, row: Score) -> Iterator[tuple[str, Any]]:
    yield f"app.eval.{row.eval}", float(row.score or 0.0)
    yield "app.eval.name", row.eval
    yield "app.eval.judge_version", row.judge_version
    yield "app.eval.sampled", run.kind == "online"
    yield "app.eval.weight", float(row.weight)
    yield "app.eval.run_id", row.run_id
    yield "app.eval.dataset", row.dataset
    if row.label is not None:
        yield "app.eval.label", row.label
    if run.kind == "online" and row.stratum is not None:
        yield "app.eval.stratum", row.stratum

