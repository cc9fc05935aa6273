"""Verdicts where traces live: a real Arize Phoenix server as a trace source, and judgeq's verdicts written back.

The test starts Phoenix itself (``phoenix serve`` of judgeq's ``phoenix``
extra, which scripts/test installs in ``.venv-phoenix``: beside judgeq's test
environment it would resolve an older litellm), on free ports with a working
directory of its own (its own SQLite). An app's LLM
spans reach it over OTLP/HTTP as any instrumented app sends them
(OpenInference attributes: ``input.value``, ``output.value``,
``metadata.*``). ``judgeq online`` reads a window of the project's spans
through Phoenix's HTTP API (the ``phoenix`` source), stratified by a
metadata key, and judges them; ``judgeq export-phoenix`` writes each verdict
back as a span annotation, which Phoenix's API then returns for the judged
span; writing again adds nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from ledger.store import Ledger

from .cli_runner import invoke
from .processes import REPO, base_env, free_port, wait_until

pytestmark = pytest.mark.timeout(300)

PHOENIX = REPO / ".venv-phoenix" / "bin" / "phoenix"  # judgeq[phoenix] in a venv of its own (scripts/test)
PROJECT = "shop-assistant"


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Phoenix server of this module's own: its base URL."""
    if not PHOENIX.exists():
        pytest.fail(f"{PHOENIX} is missing: scripts/test installs judgeq's phoenix extra there (python3 -m venv "
                    ".venv-phoenix && .venv-phoenix/bin/pip install -e '.[phoenix]')")
    work = tmp_path_factory.mktemp("phoenix")
    port = free_port()
    env = {**os.environ, "PHOENIX_WORKING_DIR": str(work), "PHOENIX_PORT": str(port),
           "PHOENIX_GRPC_PORT": str(free_port()), "PHOENIX_HOST": "127.0.0.1"}
    with open(work / "phoenix.log", "wb") as log:
        proc = subprocess.Popen([str(PHOENIX), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, 120, lambda: f"Phoenix up; its log:\n{(work / 'phoenix.log').read_text()[-3000:]}",
                   interval=0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def send_spans(url: str, start: datetime, n: int) -> list[tuple[str, str]]:
    """``n`` LLM spans of the app, a minute apart from ``start``, over OTLP/HTTP; their (trace, span) ids."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "shop",
                                                        "openinference.project.name": PROJECT}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces")))
    tracer = provider.get_tracer("shop")
    ids = []
    for i in range(n):
        at = int((start + timedelta(minutes=i)).timestamp() * 1e9)
        span = tracer.start_span("chat shop-model", start_time=at, attributes={
            "openinference.span.kind": "LLM", "input.value": f"Where is order {i}?",
            "output.value": f"Order {i} ships tomorrow." if i % 3 else f"I do not know about order {i}.",
            "metadata.locale": "de" if i % 2 else "en", "session.id": f"s{i // 2}"})
        span.end(end_time=at + 1_000_000)
        ctx = span.get_span_context()
        ids.append((f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"))
    provider.shutdown()
    return ids


CONFIG = """
[judges.ships]
type = "local"
builtin = "regex"
pattern = "ships"

[sources.phoenix]
type = "phoenix"
url = "{url}"
project = "{project}"

[online.assistant]
source = "phoenix"
judges = ["ships"]
window = "1h"
lateness = "0s"

[online.assistant.sampling]
rate = 1.0
strata = "metadata.locale"
"""


def test_a_window_read_from_phoenix_is_judged_and_written_back(phoenix: str, tmp_path: Path,
                                                             sqlite_url: str) -> None:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    ids = send_spans(phoenix, hour + timedelta(minutes=5), 12)
    send_spans(phoenix, hour + timedelta(hours=1, minutes=5), 2)  # the next hour's: not this window's
    def held() -> int:  # the project exists once its first span is in
        found = httpx.get(f"{phoenix}/v1/projects/{PROJECT}/spans", params={"limit": 100}, timeout=5)
        return len(found.json().get("data") or []) if found.status_code == 200 else 0

    wait_until(lambda: held() == 14, 30, lambda: f"Phoenix holds the 14 spans, not {held()}")
    (tmp_path / "judgeq.toml").write_text(CONFIG.format(url=phoenix, project=PROJECT))
    env = base_env(JUDGEQ_LEDGER_URL=sqlite_url, JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"))
    window = f"{hour:%Y-%m-%dT%H}"
    done = invoke(["online", "--schedule", "assistant", "--window", window, "--json"], env)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    run_id = outcome["runs"]["ships"]
    with Ledger(sqlite_url) as ledger:
        rows = {r.trace_id: r for r in ledger.scores.scores(run_id)}
        strata = {s.stratum: s.seen for s in ledger.windows.strata(run_id)}
    assert set(rows) == {f"{t}:{s}" for t, s in ids}  # the window's twelve spans, ids trace:span
    assert strata == {"de": 6, "en": 6}
    assert sum(r.score == 1.0 for r in rows.values()) == 8  # "ships" in 8 of the 12 answers

    written = invoke(["export-phoenix", run_id, "--url", phoenix, "--json"], env)
    assert written.returncode == 0, written.stderr
    assert json.loads(written.stdout)["sent"] == 12

    def annotations() -> list[dict[str, object]]:
        found = httpx.get(f"{phoenix}/v1/projects/{PROJECT}/span_annotations",
                          params={"span_ids": [s for _, s in ids], "limit": 1000}, timeout=10)
        assert found.status_code == 200, found.text
        return list(found.json()["data"])

    first = annotations()
    assert len(first) == 12
    by_span = {a["span_id"]: a for a in first}
    trace, span = ids[1]
    note = by_span[span]
    assert note["name"] == "ships" and note["annotator_kind"] == "CODE" and note["identifier"] == f"judgeq:{run_id}"
    assert note["result"]["score"] == rows[f"{trace}:{span}"].score  # type: ignore[index]
    assert note["metadata"]["judge_version"] == rows[f"{trace}:{span}"].judge_version  # type: ignore[index]
    # Idempotent: a second export updates the same annotations, adds none.
    again = invoke(["export-phoenix", run_id, "--url", phoenix], env)
    assert again.returncode == 0 and "wrote 12 span annotations" in again.stdout
    assert len(annotations()) == 12


def test_a_phoenix_that_is_down_is_exit_3_and_writes_nothing(tmp_path: Path, sqlite_url: str) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    (tmp_path / "judgeq.toml").write_text(CONFIG.format(url=down, project=PROJECT))
    env = base_env(JUDGEQ_LEDGER_URL=sqlite_url, JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"))
    window = f"{datetime.now(UTC) - timedelta(hours=2):%Y-%m-%dT%H}"
    done = invoke(["online", "--schedule", "assistant", "--window", window], env)
    assert done.returncode == 3 and "cannot reach Phoenix at" in done.stderr, done.stderr
    with Ledger(sqlite_url) as ledger:
        assert ledger.runs.list_runs() == []
