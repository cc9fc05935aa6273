"""The daily budget stops an online remote judge's spending: once its actual spend today reaches the budget,
its items still queued are skipped for budget (status "skipped", error_kind "budget"), as ``--max-cost`` skips.

In process (the EmbeddedDispatcher: the workers' chunk code, judging in
threads) against the tests' fake provider, priced in the config so each
call has a cost. The plan underestimates: the judge version's recent calls
(yesterday's, written through the ledger) were much cheaper than today's
long traces, so the window is sampled whole and its reservation is small;
what stops the spend is the workers' gate, not the plan.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger import Ledger, Run, ScoreIn
from online.budget.pacer import window_planner
from online.job import WindowJob
from online.plan import prepare
from online.schedules import load_schedules
from online.windows import parse_size, window_at
from workers.dispatch import EmbeddedDispatcher
from workers.settings import WorkerSettings
from runs.sending import ChunkSettings

from .provider import FakeProvider

pytestmark = pytest.mark.timeout(120)

N = 200  # traces in the window
CHUNK = 4  # items per remote chunk
THREADS = 4
BUDGET = 0.3  # USD per day: about 24 calls of today's
CHEAP = 0.0001  # USD per call the plan expects (yesterday's calls)

CONFIG = """
[judges.faithful]
type = "llm"
model = "openai/judge-small"
api_base = "{base}"
api_key_env = "TEST_PROVIDER_KEY"
prompt_text = "Grade this answer. Output: {{output}}"
prompt = "inline"
timeout_s = 5
price_per_mtok_in = 20.0
price_per_mtok_out = 40.0

[sources.live]
type = "jsonl"
path = "traces.jsonl"

[online.prod]
source = "live"
judges = ["faithful"]
window = "1d"

[online.prod.sampling]
rate = 1.0
"""


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with FakeProvider(latency_s=0.01) as fake:
        yield fake


def test_queued_items_are_skipped_for_budget_once_the_days_spend_reaches_it(
        tmp_path: Path, sqlite_url: str, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PROVIDER_KEY", "sk-test-123")
    (tmp_path / "judgeq.toml").write_text(CONFIG.format(base=provider.base_url))
    now = datetime.now(UTC)
    window = window_at(parse_size("1d"), now - timedelta(days=1))  # yesterday: closed
    long_answer = "GOOD answer, with every detail the user asked for. " * 40  # ~500 tokens a call
    with (tmp_path / "traces.jsonl").open("w") as f:
        for i in range(N):
            ts = window.start + timedelta(seconds=i * 400)
            f.write(json.dumps({"id": f"t{i}", "input": f"question {i}", "output": f"{long_answer} {i}",
                                "ts": ts.isoformat()}) + "\n")
    config = tmp_path / "judgeq.toml"
    plan = prepare(config, load_schedules(config)["prod"])
    (judge,) = plan.judges
    ledger = Ledger(sqlite_url)
    # Yesterday's 40 calls of this judge version cost $0.0001 each: the plan's cost per item.
    ledger.runs.create_run(Run(id="yesterday", kind="online", dataset_name="prod", window="2000-01-01",
                          judges={judge.name: judge.to_message()}, status="done", n_items=40, expected=40))
    ledger.scores.write_scores([ScoreIn(run_id="yesterday", trace_id=f"y{i}", eval=judge.name, judge_version=judge.version,
                                 dataset="w", score=1.0, cost_usd=CHEAP, ts=now - timedelta(days=1))
                         for i in range(40)])
    ledger.budgets.set_budget("judge:faithful", BUDGET, who="ana", via="cli")

    dispatcher = EmbeddedDispatcher(ledger, WorkerSettings(), remote_threads=THREADS, trusted=[judge.spec])  # type: ignore[list-item]
    job = WindowJob(plan.schedule, window, plan.source, plan.judges, ledger, ChunkSettings(chunk_remote=CHUNK),
                    planner=window_planner(ledger, plan.schedule, window, now))
    try:
        outcome = job.run(dispatcher)
        dispatcher.join()
    finally:
        dispatcher.close()

    run_id = outcome.runs["faithful"]
    # The plan expected $0.0001 an item: half the day's $0.30 (yesterday's window, then today) buys every trace.
    assert {c.stratum: c.rate for c in ledger.windows.strata(run_id)} == {"all": 1.0}
    assert outcome.sampled["faithful"] == N
    rows = list(ledger.scores.scores(run_id))
    assert len(rows) == N  # every item has its row: judged, or skipped for budget
    statuses = Counter((r.status, r.error_kind) for r in rows)
    judged = [r for r in rows if r.status == "ok"]
    skipped = [r for r in rows if r.status == "skipped"]
    assert set(statuses) == {("ok", None), ("skipped", "budget")}, statuses
    per_call = max(r.cost_usd for r in judged)
    assert per_call > 10 * CHEAP  # the plan underestimated the window
    spent = sum(r.cost_usd for r in judged)
    assert spent >= BUDGET  # the gate lets spending run up to the budget...
    # ...and stops it there: at most the chunks already being judged when the budget was reached go over.
    assert spent <= BUDGET + THREADS * CHUNK * per_call, (spent, len(judged))
    assert len(skipped) >= N // 2 and provider.count() == len(judged)
    assert all(r.cost_usd == 0 and r.attempts == 0 for r in skipped)
    for reason in {r.error or "" for r in skipped}:  # the spend each chunk saw, with the budget and the day
        assert reason.startswith("budget: judge:faithful spent $"), reason
        assert float(reason.split("$")[1].split()[0]) >= BUDGET, reason
        assert f"of its ${BUDGET:g} per day on {now:%Y-%m-%d} (UTC)" in reason, reason
    ledger.runs.mark_done_if_complete(run_id)  # (unless the job's own check found every row in already)
    assert ledger.runs.get_run(run_id).status == "done"  # skipped rows complete the run
