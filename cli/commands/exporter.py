"""Metrics and traces: ``judgeq exporter`` (Prometheus) and ``judgeq export-otel`` (scores as spans).

Registered on the root app by ``cli.main``. The figures are
``scheduler.metrics`` and ``scheduler.exporter`` (which serves them:
``serve``); the spans ``scheduler.otel_export``. prometheus_client and
OpenTelemetry are imported inside the commands.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from cli.options import JsonOpt
from cli.state import settings_of
from scheduler.errors import UsageError

if TYPE_CHECKING:
    from ledger.models import Run
    from ledger.store import Ledger


def exporter(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port to serve /metrics on.")] = 9464,
    address: Annotated[str, typer.Option("--address", help="Address to listen on (0.0.0.0: every interface).")] = (
        "127.0.0.1"),
    window: Annotated[str, typer.Option("--window", help="app_eval_<eval> is the mean of the verdicts written in "
                                        "this last stretch of time (e.g. 1h, 15m, 90s).")] = "1h",
    refresh: Annotated[str, typer.Option("--refresh", help="Read the ledger at most this often, however many "
                                         "scrapes arrive (e.g. 15s).")] = "15s",
) -> None:
    """Serve Prometheus metrics from the ledger: app_eval_<eval> per slice, rows, cost, latency, queues, budgets.

    Slices are configured in judgeq.toml's [exporter] table (README, "Metrics and traces"). Runs until stopped
    (Ctrl-C or SIGTERM).
    """
    from scheduler.exporter import serve

    span = _duration(window, "--window", timedelta(seconds=1), timedelta(days=31))
    every = _duration(refresh, "--refresh", timedelta(seconds=1), timedelta(hours=1))
    serve(settings_of(ctx), port=port, address=address, span=span, every=every,
          shown=f"window {window} · refresh {refresh}")


def export_otel(
    ctx: typer.Context,
    run_id: Annotated[Optional[str], typer.Argument(help="The run whose verdicts to send (or --source/--window).")
                      ] = None,
    source: Annotated[Optional[str], typer.Option("--source", help="An online schedule or source: send the runs "
                                                  "of its --window.")] = None,
    window: Annotated[Optional[str], typer.Option("--window", help="The window id with --source, e.g. "
                                                  "2026-11-22T13.")] = None,
    judge: Annotated[Optional[str], typer.Option("--judge", help="Only this judge's verdicts.")] = None,
    endpoint: Annotated[Optional[str], typer.Option("--endpoint", help="OTLP/HTTP base URL, e.g. "
                                                    "http://collector:4318 (default: OTEL_EXPORTER_OTLP_ENDPOINT "
                                                    "or ..._TRACES_ENDPOINT, else http://localhost:4318). "
                                                    "An endpoint other than the environment's gets none of "
                                                    "its headers (OTEL_EXPORTER_OTLP_HEADERS).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Send each verdict as a span of the trace it judged (child of the judged span when the id says which).

    Attributes app.eval.<eval> (the score), app.eval.judge_version, app.eval.sampled, app.eval.weight. Headers
    (e.g. an API key) come from OTEL_EXPORTER_OTLP_HEADERS and go only to the environment's endpoint
    (OTEL_EXPORTER_OTLP_ENDPOINT); to send them to another collector, set that variable instead of --endpoint.
    An endpoint that does not take the spans: exit 3.
    """
    from scheduler.otel_export import export_rows
    from cli.views.progress import ProgressView

    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise UsageError(f"--endpoint {endpoint!r} is not an http(s) URL; write e.g. http://127.0.0.1:4318")
    if run_id is not None and (source is not None or window is not None):
        raise UsageError("give a RUN or --source S --window W, not both")
    if run_id is None and (source is None or window is None):
        raise UsageError("name what to send: a RUN, or --source S --window W (an online window's runs)")
    ledger = _ledger(ctx)
    runs = _runs(ledger, run_id, source, window, judge)
    total = sum(ledger.scores.progress(run.id).done for run in runs)
    with ProgressView("spans", total, stream=sys.stderr, enabled=not json_out) as view:
        counts = export_rows(runs, lambda run: ledger.scores.scores(run.id, judge), endpoint, progress=view.update)
    if counts.withheld:
        print(f"judgeq: {', '.join(counts.withheld)} not sent to {counts.endpoint}: the environment's "
              "credentials go only to its own endpoint (OTEL_EXPORTER_OTLP_ENDPOINT); to send them there, set "
              "OTEL_EXPORTER_OTLP_ENDPOINT to it instead of --endpoint", file=sys.stderr)
    if json_out:
        from cli.views.render import print_json

        print_json(counts)
        return
    print(f"sent {counts.sent} spans to {counts.endpoint} ({counts.children} as children of the judged span) "
          f"from {len(counts.runs)} run(s); not sent: {counts.not_scored} rows without a verdict, "
          f"{counts.no_trace} whose trace id is no OpenTelemetry trace id")
    print(f"sent {counts.events} gen_ai.evaluation.result events to {counts.events_endpoint}")


def export_phoenix(
    ctx: typer.Context,
    run_id: Annotated[Optional[str], typer.Argument(help="The run whose verdicts to write.")] = None,
    source: Annotated[Optional[str], typer.Option("--source", help="An online source (with --window).")] = None,
    window: Annotated[Optional[str], typer.Option("--window", help="The window id with --source, e.g. "
                                                  "2026-11-22T13.")] = None,
    judge: Annotated[Optional[str], typer.Option("--judge", help="Only this judge's verdicts.")] = None,
    url: Annotated[Optional[str], typer.Option("--url", help="The Phoenix server, e.g. http://127.0.0.1:6006 "
                                               "(default: the phoenix source's url with --source).")] = None,
    api_key_env: Annotated[Optional[str], typer.Option("--api-key-env", help="The variable holding Phoenix's API "
                                                       "key, when its auth is on.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Write each verdict back into Phoenix as an annotation of the span it judged (again: nothing added twice)."""
    from cli.views.progress import ProgressView
    from online.sources.phoenix import phoenix_headers
    from scheduler.phoenix_export import export_annotations

    if run_id is not None and (source is not None or window is not None):
        raise UsageError("give a RUN or --source S --window W, not both")
    if run_id is None and (source is None or window is None):
        raise UsageError("name what to write: a RUN, or --source S --window W (an online window's runs)")
    if url is None and source is not None:
        from online.sources import load_sources

        table = load_sources(settings_of(ctx).config).get(source) or {}
        if table.get("type") == "phoenix":
            url, api_key_env = str(table["url"]), api_key_env or table.get("api_key_env")
    if url is None or not url.startswith(("http://", "https://")):
        raise UsageError("--url: name the Phoenix server as an http(s) URL, e.g. http://127.0.0.1:6006")
    ledger = _ledger(ctx)
    runs = _runs(ledger, run_id, source, window, judge)
    total = sum(ledger.scores.progress(run.id).done for run in runs)
    with ProgressView("annotations", total, stream=sys.stderr, enabled=not json_out) as view:
        counts = export_annotations(runs, lambda run: ledger.scores.scores(run.id, judge), url,
                                    phoenix_headers(api_key_env), progress=view.update)
    if json_out:
        from cli.views.render import print_json

        print_json(counts)
        return
    print(f"wrote {counts.sent} span annotations to {counts.url} from {len(counts.runs)} run(s); not sent: "
          f"{counts.not_scored} rows without a verdict, {counts.no_trace + counts.no_span} whose id names no span")


def _runs(ledger: Ledger, run_id: Optional[str], source: Optional[str], window: Optional[str],
          judge: Optional[str]) -> list[Run]:
    """The runs the flags name: RUN, or the online runs of --source's --window; UsageError otherwise."""
    if run_id is not None:
        run = ledger.runs.get_run(run_id)
        if judge is not None and judge not in run.judges:
            raise UsageError(f"run {run_id} has no judge {judge!r}; its judges: {', '.join(sorted(run.judges))}")
        return [run]
    assert source is not None and window is not None  # export_otel checked the flags
    from online.windows import parse_window

    chosen = parse_window(window)
    runs = ledger.windows.online_runs(source, judge, [chosen.id])
    if not runs:
        raise UsageError(f"no online run of {source!r} judged window {chosen.id}"
                         f"{'' if judge is None else f' with judge {judge!r}'}; see `judgeq runs`")
    return runs


def _duration(text: str, flag: str, least: timedelta, most: timedelta) -> timedelta:
    from online.errors import OnlineConfigError
    from online.windows import parse_duration

    try:
        found = parse_duration(text, flag)
    except OnlineConfigError as exc:
        raise UsageError(str(exc)) from None
    if not least <= found <= most:
        raise UsageError(f"{flag} {text}: give {least.total_seconds():g} s to {most.total_seconds():g} s")
    return found


def _ledger(ctx: typer.Context) -> Ledger:
    return settings_of(ctx).ledger()

