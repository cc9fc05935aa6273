"""``judgeq export-otel``: verdicts land as spans of the judged traces, checked by a receiver that decodes the
OTLP protobuf (``opentelemetry-proto``).

The story: an online run judged spans of an OTLP source (ids TRACE:SPAN), a
trace id alone, and a record whose id is no trace; export-otel (a real
subprocess) sends each verdict as a span whose trace id is the judged trace's
and whose parent is the judged span when known, with the score and the
judge's version as attributes. Then: a window instead of a run, the standard
OTEL_* variables (headers stay out of the output), batches of 512, an
endpoint that is down (exit 3) or refuses (exit 3), and bad usage (exit 2).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger.store import Ledger

from .metrics_rows import Row, make_run, write_rows
from .otlp_receiver import Receiver, attributes
from .cli_runner import invoke
from .processes import base_env, free_port

pytestmark = pytest.mark.timeout(180)

TRACE_A, SPAN_A = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
TRACE_B = "0af7651916cd43dd8448eb211c80319c"
WHEN = datetime(2026, 11, 22, 13, 30, tzinfo=UTC)
ROWS = [Row(f"{TRACE_A}:{SPAN_A}", "en", 0.75, weight=4.0, latency_s=1.25, ts=WHEN),
        Row(TRACE_B, "de", 1.0, weight=50.0, latency_s=0.5, ts=WHEN + timedelta(seconds=3)),
        Row("order-1234", "en", 0.5, ts=WHEN),  # no OpenTelemetry trace
        Row(f"{TRACE_B[:-1]}d:{SPAN_A}", "en", None, status="error", ts=WHEN)]  # no verdict


def env_for(url: str, **extra: str) -> dict[str, str]:
    env = base_env(JUDGEQ_LEDGER_URL=url, OTEL_EXPORTER_OTLP_TIMEOUT="3", **extra)
    for name in [k for k in env if k.startswith("OTEL_") and k not in extra and k != "OTEL_EXPORTER_OTLP_TIMEOUT"]:
        del env[name]
    return env


def nanos(instant: datetime) -> int:
    return int(instant.timestamp() * 1e9)


def test_each_verdict_is_a_span_of_the_judged_trace(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    make_run(ledger, "online-1")
    write_rows(ledger, "online-1", ROWS)
    with Receiver() as receiver:
        done = invoke(["export-otel", "online-1", "--endpoint", receiver.url], env_for(ledger_url))
    assert done.returncode == 0, done.stderr
    assert (f"sent 2 spans to {receiver.url}/v1/traces (1 as children of the judged span) from 1 run(s); not sent: "
            "1 rows without a verdict, 1 whose trace id is no OpenTelemetry trace id") in done.stdout
    spans = {span.trace_id.hex(): (resource, span) for resource, span in receiver.spans()}
    assert set(spans) == {TRACE_A, TRACE_B}

    resource, child = spans[TRACE_A]
    assert resource["service.name"] == "judgeq"
    assert child.parent_span_id.hex() == SPAN_A and child.span_id.hex() != SPAN_A and len(child.span_id) == 8
    assert child.name == "judge relevance"
    assert child.start_time_unix_nano == nanos(WHEN) - 1_250_000_000 and child.end_time_unix_nano == nanos(WHEN)
    assert attributes(child) == {
        "app.eval.relevance": 0.75, "app.eval.name": "relevance", "app.eval.judge_version": "relevance@0123456789ab",
        "app.eval.sampled": True, "app.eval.weight": 4.0, "app.eval.run_id": "online-1",
        "app.eval.dataset": "2026-11-22T13", "app.eval.stratum": "en"}

    _, root = spans[TRACE_B]
    assert root.parent_span_id == b""  # a root span of the judged trace: the record named no span
    assert attributes(root)["app.eval.relevance"] == 1.0 and attributes(root)["app.eval.weight"] == 50.0
    assert root.end_time_unix_nano == nanos(WHEN + timedelta(seconds=3))


def test_each_verdict_is_also_the_conventions_evaluation_event_of_the_judged_span(sqlite_url: str) -> None:
    from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai

    ledger = Ledger(sqlite_url)
    make_run(ledger, "online-1")
    write_rows(ledger, "online-1", [
        Row(f"{TRACE_A}:{SPAN_A}", "en", 1.0, ts=WHEN, label="pass", reason="the answer cites its source"),
        Row(TRACE_B, "de", 0.0, ts=WHEN + timedelta(seconds=3), label="fail"),
        *ROWS[2:]])
    with Receiver() as receiver:
        done = invoke(["export-otel", "online-1", "--endpoint", receiver.url], env_for(sqlite_url))
    assert done.returncode == 0, done.stderr
    assert f"sent 2 gen_ai.evaluation.result events to {receiver.url}/v1/logs" in done.stdout
    records = {record.trace_id.hex(): (resource, record) for resource, record in receiver.log_records()}
    assert set(records) == {TRACE_A, TRACE_B}  # the row without a verdict and the one with no trace: no event
    resource, judged = records[TRACE_A]
    assert resource["service.name"] == "judgeq"
    assert judged.event_name == "gen_ai.evaluation.result"
    assert judged.span_id.hex() == SPAN_A  # the judged span's, not judgeq's own span's
    assert judged.time_unix_nano == nanos(WHEN)
    assert attributes(judged) == {gen_ai.GEN_AI_EVALUATION_NAME: "relevance",
                                  gen_ai.GEN_AI_EVALUATION_SCORE_VALUE: 1.0,
                                  gen_ai.GEN_AI_EVALUATION_SCORE_LABEL: "pass",
                                  gen_ai.GEN_AI_EVALUATION_EXPLANATION: "the answer cites its source"}
    assert set(attributes(judged)) == {"gen_ai.evaluation.name", "gen_ai.evaluation.score.value",
                                       "gen_ai.evaluation.score.label", "gen_ai.evaluation.explanation"}
    _, root = records[TRACE_B]
    assert root.span_id == b"" or root.span_id == bytes(8)  # the record named no span: the trace's alone
    assert attributes(root) == {"gen_ai.evaluation.name": "relevance", "gen_ai.evaluation.score.value": 0.0,
                                "gen_ai.evaluation.score.label": "fail"}  # no reason given: no explanation


def test_a_collector_that_takes_spans_but_not_logs_is_exit_3(sqlite_url: str) -> None:
    ledger = Ledger(sqlite_url)
    make_run(ledger, "online-1")
    write_rows(ledger, "online-1", ROWS)
    with Receiver() as receiver:
        receiver.logs_status = 500
        done = invoke(["export-otel", "online-1", "--endpoint", receiver.url], env_for(sqlite_url))
    assert done.returncode == 3
    assert f"the OTLP endpoint {receiver.url}/v1/logs did not take 2 gen_ai.evaluation.result events" in done.stderr


def test_a_window_through_the_standard_variables(sqlite_url: str) -> None:
    ledger = Ledger(sqlite_url)
    make_run(ledger, "online-1")
    write_rows(ledger, "online-1", ROWS)
    make_run(ledger, "online-2", window="2026-11-22T14")  # another window: not sent
    write_rows(ledger, "online-2", [Row("1" * 32, "en", 0.1)], dataset="2026-11-22T14")
    with Receiver() as receiver:
        env = env_for(sqlite_url, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
                      OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer%20s3cret", OTEL_SERVICE_NAME="evals")
        done = invoke(["export-otel", "--source", "prod", "--window", "2026-11-22T13", "--judge", "relevance",
                       "--json"], env)
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout)
    assert counts["sent"] == 2 and counts["runs"] == ["online-1"] and counts["no_trace"] == 1
    assert {span.trace_id.hex() for _, span in receiver.spans()} == {TRACE_A, TRACE_B}
    assert {resource["service.name"] for resource, _ in receiver.spans()} == {"evals"}
    assert receiver.headers[0]["authorization"] == "Bearer s3cret"
    assert "s3cret" not in done.stdout + done.stderr


def test_the_environments_headers_go_only_to_the_environments_endpoint(sqlite_url: str) -> None:
    """OTEL_EXPORTER_OTLP_HEADERS is the configured collector's key: --endpoint elsewhere must not receive it."""
    ledger = Ledger(sqlite_url)
    make_run(ledger, "online-1")
    write_rows(ledger, "online-1", ROWS)
    with Receiver() as collector, Receiver() as elsewhere:
        env = env_for(sqlite_url, OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
                      OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer%20collector-key-77",
                      OTEL_EXPORTER_OTLP_TRACES_HEADERS="x-api-key=traces-key-88")
        done = invoke(["export-otel", "online-1", "--endpoint", elsewhere.url], env)
        assert done.returncode == 0, done.stderr
        assert len(elsewhere.requests) == 1 and not collector.requests
        assert "authorization" not in elsewhere.headers[0] and "x-api-key" not in elsewhere.headers[0]
        assert ("OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TRACES_HEADERS not sent to "
                f"{elsewhere.url}/v1/traces") in done.stderr
        assert "key-77" not in done.stdout + done.stderr and "key-88" not in done.stdout + done.stderr
        # The same endpoint written as the flag (a trailing slash, the path spelled out) is the environment's.
        done = invoke(["export-otel", "online-1", "--endpoint", collector.url + "/v1/traces/"], env)
        assert done.returncode == 0, done.stderr
        assert len(collector.requests) == 1 and collector.headers[0]["x-api-key"] == "traces-key-88"
        assert "not sent" not in done.stderr


def test_spans_go_in_batches_and_offline_rows_are_not_sampled(sqlite_url: str) -> None:
    ledger = Ledger(sqlite_url)
    make_run(ledger, "golden", kind="offline", dataset_name="golden")
    rows = [Row(f"{i + 1:032x}", "en", (i % 5) / 4) for i in range(1100)]
    write_rows(ledger, "golden", rows, dataset="sha256:test")
    with Receiver() as receiver:
        done = invoke(["export-otel", "golden", "--endpoint", f"{receiver.url}/v1/traces"], env_for(sqlite_url))
    assert done.returncode == 0, done.stderr
    assert [sum(len(s.spans) for rs in r.resource_spans for s in rs.scope_spans) for r in receiver.requests] == [
        512, 512, 76]
    sent = {span.trace_id.hex(): attributes(span) for _, span in receiver.spans()}
    assert len(sent) == 1100
    assert all(a["app.eval.sampled"] is False and a["app.eval.weight"] == 1.0 for a in sent.values())
    assert sent[f"{7:032x}"]["app.eval.relevance"] == rows[6].score


def test_an_endpoint_that_is_down_or_refuses_is_exit_3(sqlite_url: str) -> None:
    ledger = Ledger(sqlite_url)
    make_run(ledger, "online-1")
    write_rows(ledger, "online-1", ROWS)
    down = f"http://127.0.0.1:{free_port()}"
    done = invoke(["export-otel", "online-1", "--endpoint", down], env_for(sqlite_url))
    assert done.returncode == 3, done.stderr
    assert f"the OTLP endpoint {down}/v1/traces did not take 2 spans (0 were sent before)" in done.stderr
    assert "Traceback" not in done.stderr
    with Receiver() as receiver:
        receiver.status = 401
        done = invoke(["export-otel", "online-1", "--endpoint", receiver.url], env_for(sqlite_url))
    assert done.returncode == 3 and "did not take 2 spans" in done.stderr, done.stderr


@pytest.mark.parametrize(("args", "says"), [
    (["export-otel"], "name what to send: a RUN, or --source S --window W"),
    (["export-otel", "nope"], "nope"),
    (["export-otel", "online-1", "--window", "2026-11-22T13"], "give a RUN or --source S --window W, not both"),
    (["export-otel", "--source", "prod", "--window", "2026-11-22T15"], "no online run of 'prod' judged window"),
    (["export-otel", "--source", "prod", "--window", "yesterday"], "window id 'yesterday' is malformed"),
    (["export-otel", "online-1", "--judge", "tone"], "run online-1 has no judge 'tone'"),
    (["export-otel", "online-1", "--endpoint", "collector:4318"], "is not an http(s) URL"),
])
def test_bad_usage_is_exit_2(sqlite_url: str, args: list[str], says: str) -> None:
    ledger = Ledger(sqlite_url)
    make_run(ledger, "online-1")
    done = invoke(args, env_for(sqlite_url))
    assert done.returncode == 2 and says in done.stderr, done.stderr


def test_help_stays_light(tmp_path: Path) -> None:
    code = ("import sys; from cli.main import app; "
            "assert not [m for m in sys.modules if m.startswith(('opentelemetry', 'prometheus_client'))]")
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], env=base_env(), capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
