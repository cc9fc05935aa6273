"""The provider's own identity on every row: the model that answered behind the alias, and its fingerprint.

The tests' fake provider answers as ``judge-small-2026-01`` (fingerprint
``fp_a``) and is switched, as a provider may rotate a model behind an alias,
to ``judge-small-2026-03`` (``fp_b``) at a chosen call. Seven hourly windows
are judged in this process by the window job with an LLM judge through
litellm; the last hour's calls are answered by the new model. Each score row
stores what answered (``provider_model``, ``system_fingerprint``); ``judgeq
report`` says when it changed within a run, and ``judgeq drift`` says so
between the spans it compares (beside its figures, in its alert text and its
JSON), whatever the scores did.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.models import CanaryCheck
from ledger.store import Ledger
from online.job import WindowJob
from online.plan import prepare, schedule_for
from online.windows import parse_size, parse_window, window_at
from runs.sending import ChunkSettings
from workers.dispatch import EmbeddedDispatcher
from workers.settings import WorkerSettings

from .cli_runner import invoke
from .processes import base_env
from .provider import FakeProvider, default_verdict
from .remote_judge import CONFIG as JUDGE

pytestmark = pytest.mark.timeout(180)

FIRST = parse_window("2026-11-20T00")
HOURS = 7
PER_HOUR = 12
AT = "2026-11-20T07:00Z"
OLD, NEW = ("judge-small-2026-01", "fp_a"), ("judge-small-2026-03", "fp_b")

SCHEDULE = """
[sources.live]
type = "jsonl"
path = "traces.jsonl"

[online.hourly]
source = "live"
judges = ["faithful"]
window = "1h"
lateness = "0s"

[online.hourly.sampling]
rate = 1.0
"""


def judgeq_toml(base: str) -> str:
    return JUDGE.format(base=base, prompt="Grade this answer.", timeout=5, limits="") + SCHEDULE


class Rotating:
    """The fake provider's answers, naming the old model until call ``switch_at``, the new one from then on."""

    def __init__(self, provider: FakeProvider, switch_at: int) -> None:
        self.provider, self.switch_at, self.calls = provider, switch_at, 0

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        model, fingerprint = NEW if self.calls >= self.switch_at else OLD
        self.provider.served_model, self.provider.system_fingerprint = model, fingerprint
        return default_verdict(body)


@pytest.fixture
def judged(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[dict[str, str], str]]:
    """Seven hours judged; the new model answers from the middle of the last hour on. (env, last run id)."""
    monkeypatch.setenv("TEST_PROVIDER_KEY", "sk-test-123")
    with FakeProvider(served_model=OLD[0], system_fingerprint=OLD[1]) as provider:
        provider.verdict = Rotating(provider, switch_at=(HOURS - 1) * PER_HOUR + PER_HOUR // 2 + 1)
        (tmp_path / "judgeq.toml").write_text(judgeq_toml(provider.base_url))
        with (tmp_path / "traces.jsonl").open("w") as f:
            for h in range(HOURS):
                for i in range(PER_HOUR):
                    ts = FIRST.start + timedelta(hours=h, seconds=i * 3600 // PER_HOUR)
                    f.write(json.dumps({"id": f"t{h}-{i}", "input": "q", "output": f"GOOD {h}-{i}" if i % 4 else f"bad {h}-{i}",
                                        "ts": ts.isoformat()}) + "\n")
        config = tmp_path / "judgeq.toml"
        plan = prepare(config, schedule_for(config, schedule="hourly"))
        last = ""
        with Ledger(sqlite_url) as ledger:
            for h in range(HOURS):
                window = window_at(parse_size("1h"), FIRST.start + timedelta(hours=h))
                # one thread: one call at a time, so the switch falls between two calls of the last hour
                dispatcher = EmbeddedDispatcher(ledger, WorkerSettings(), remote_threads=1,
                                                trusted=[plan.judges[0].spec])  # type: ignore[list-item]
                job = WindowJob(plan.schedule, window, plan.source, plan.judges, ledger,
                                ChunkSettings(chunk_remote=1))
                try:
                    last = job.run(dispatcher).runs["faithful"]
                    dispatcher.join()
                finally:
                    dispatcher.close()
        yield base_env(JUDGEQ_LEDGER_URL=sqlite_url, JUDGEQ_CONFIG=str(config), TEST_PROVIDER_KEY="sk-test-123"), last


def test_each_row_stores_what_answered_and_report_says_it_changed(judged: tuple[dict[str, str], str],
                                                                  sqlite_url: str) -> None:
    env, last = judged
    with Ledger(sqlite_url) as ledger:
        rows = list(ledger.scores.scores(last))
        assert len(rows) == PER_HOUR and all(r.status == "ok" for r in rows)
        answered = Counter((r.provider_model, r.system_fingerprint) for r in rows)
        assert answered == {OLD: PER_HOUR // 2, NEW: PER_HOUR // 2}
        (first, *_) = ledger.runs.list_runs(limit=100)[-1:]
        assert {(r.provider_model, r.system_fingerprint) for r in ledger.scores.scores(first.id)} == {OLD}

    report = invoke(["report", last], env)
    assert report.returncode == 0, report.stderr
    assert ("judge faithful: the provider's model changed within the run: judge-small-2026-01 (fp_a) on 6 rows"
            in report.stdout), report.stdout
    assert ", then judge-small-2026-03 (fp_b) on 6 rows" in report.stdout
    payload = json.loads(invoke(["report", last, "--json"], env).stdout)
    (judge,) = payload["judges"]
    assert [(p["model"], p["fingerprint"], p["rows"]) for p in judge["providers"]] == [(*OLD, 6), (*NEW, 6)]


def test_drift_names_the_model_change_between_the_spans(judged: tuple[dict[str, str], str]) -> None:
    env, _ = judged
    done = invoke(["drift", "--schedule", "hourly", "--judge", "faithful", "--short", "1h", "--long", "6h",
                   "--at", AT, "--json"], env)
    assert done.returncode in (0, 1), done.stderr
    out = json.loads(done.stdout)
    note = out["provider_changed"]
    assert note is not None and note.startswith("the provider's model changed between the spans: long "
                                                "judge-small-2026-01 (fp_a) on 72 rows")
    assert "short judge-small-2026-01 (fp_a) on 6 rows" in note and "judge-small-2026-03 (fp_b) on 6 rows" in note
    assert note.endswith("the drop may be the measurement's")
    table = invoke(["drift", "--schedule", "hourly", "--judge", "faithful", "--short", "1h", "--long", "6h",
                    "--at", AT], env)
    assert "the provider's model changed between the spans" in table.stdout, table.stdout
    assert out["canary_moved"] is None  # no canary check alerted meanwhile
    # An hour earlier both spans were answered by the old model alone: nothing to say.
    earlier = invoke(["drift", "--schedule", "hourly", "--judge", "faithful", "--short", "1h", "--long", "5h",
                      "--at", "2026-11-20T06:00Z", "--json"], env)
    assert json.loads(earlier.stdout)["provider_changed"] is None

    # The judge's canary alerted within the spans (judgeq canary check): drift says so beside its figures.
    with Ledger(env["JUDGEQ_LEDGER_URL"]) as ledger:
        ledger.canary.record(CanaryCheck(at=FIRST.start + timedelta(hours=6, minutes=30), judge="faithful",
                                         judge_version="v", reference_run="r0", run_id="r1", n=50, agreement=0.7,
                                         threshold=0.1, status="alert"))
        ledger.canary.record(CanaryCheck(at=FIRST.start - timedelta(days=3), judge="faithful", judge_version="v",
                                         reference_run="r0", run_id="r1", n=50, agreement=0.6, threshold=0.1,
                                         status="alert"))  # before the spans: not theirs
    again = json.loads(invoke(["drift", "--schedule", "hourly", "--judge", "faithful", "--short", "1h", "--long",
                               "6h", "--at", AT, "--json"], env).stdout)
    assert again["canary_moved"] == ("the judge's canary moved within the compared spans (1 alerting check(s), the "
                                     "last at 2026-11-20 06:30 UTC, agreement 70.0% with its reference): the drop "
                                     "may be the measurement's")


def test_a_local_judge_names_no_provider(tmp_path: Path, sqlite_url: str) -> None:
    records = tmp_path / "golden.jsonl"
    records.write_text("".join(json.dumps({"id": f"g{i}", "output": "a", "expected": "a"}) + "\n" for i in range(3)))
    env = base_env(JUDGEQ_LEDGER_URL=sqlite_url)
    done = invoke(["submit", str(records), "--judge", "exact_match", "--json"], env)
    assert done.returncode == 0, done.stderr
    (judge,) = json.loads(done.stdout)["judges"]
    assert judge["providers"] == []
