"""An OTLP/HTTP trace and log receiver on 127.0.0.1 for tests: decodes each request with ``opentelemetry-proto``.

It keeps every ``ExportTraceServiceRequest`` (``/v1/traces``) and
``ExportLogsServiceRequest`` (``/v1/logs``) it was sent, and the headers,
and answers as a collector does (200 with an empty response message), or
with ``status`` (``logs_status`` for logs) when a test sets one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (ExportLogsServiceRequest,
                                                                      ExportLogsServiceResponse)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                        ExportTraceServiceResponse)


class Receiver:
    """``with Receiver() as r``: ``r.url`` is the base URL; ``r.requests`` the decoded requests."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.log_requests: list[ExportLogsServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        self.log_headers: list[dict[str, str]] = []
        self.status = 200
        self.logs_status: int | None = None  # None: as ``status``
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                kinds = {"/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse, receiver.requests,
                                        receiver.headers, receiver.status),
                         "/v1/logs": (ExportLogsServiceRequest, ExportLogsServiceResponse, receiver.log_requests,
                                      receiver.log_headers,
                                      receiver.status if receiver.logs_status is None else receiver.logs_status)}
                if self.path not in kinds or self.headers.get("Content-Type") != "application/x-protobuf":
                    self.send_response(404)
                    self.end_headers()
                    return
                message, response, kept, headers, status = kinds[self.path]
                request = message()
                request.ParseFromString(body)
                kept.append(request)
                headers.append({k.lower(): v for k, v in self.headers.items()})
                answer = response().SerializeToString()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def spans(self) -> Iterator[tuple[dict[str, Any], Any]]:
        """(resource attributes, span) of every span received."""
        for request in self.requests:
            for resource_spans in request.resource_spans:
                resource = {a.key: value_of(a.value) for a in resource_spans.resource.attributes}
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        yield resource, span


    def log_records(self) -> Iterator[tuple[dict[str, Any], Any]]:
        """(resource attributes, log record) of every log record received."""
        for request in self.log_requests:
            for resource_logs in request.resource_logs:
                resource = {a.key: value_of(a.value) for a in resource_logs.resource.attributes}
                for scope in resource_logs.scope_logs:
                    for record in scope.log_records:
                        yield resource, record


def value_of(value: Any) -> Any:
    """The Python value of an OTLP ``AnyValue``."""
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind is not None else None


def attributes(span: Any) -> dict[str, Any]:
    return {a.key: value_of(a.value) for a in span.attributes}
