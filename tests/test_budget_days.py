"""The day's budget, whatever the window: late windows, catch-ups, and the first estimate of a judgment's cost.

A window draws on the money of the day it is judged. What it is given is its
share of what is left, against the traffic of the windows still to be judged
that day (online/budget/traffic.py, ``ahead_of``): a window of an earlier
day judged late, or a daily window under a daily budget, has nothing ahead of
it and gets the day's money left; a catch-up plans its missed windows each
with the others still ahead. Until a call of the judge version is priced,
the cost of a judgment is estimated from the judge's configured prices and
the tokens of its prompt (judges/estimate.py), not a flat default.

The end-to-end tests run the window job in process (the EmbeddedDispatcher:
the workers' chunk code, judging in threads) against the tests' fake
provider, which reports usage as characters / 4; the config's prices make
each call cost about a cent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from judges.estimate import priced_guess
from judges.record import Record
from ledger import Ledger
from online.budget import PlanInput, expected_traffic, plan
from online.budget.pacer import window_planner
from online.budget.traffic import ahead_of
from online.job import WindowJob
from online.plan import prepare
from online.schedules import load_schedules
from online.windows import parse_size, window_at
from runs.sending import ChunkSettings
from workers.dispatch import EmbeddedDispatcher
from workers.settings import WorkerSettings

from .provider import FakeProvider
from .test_budget_controller import DAY, HOUR, diurnal, history, strata

pytestmark = pytest.mark.timeout(120)

BUDGET = 2.0  # USD per day
N = 400  # traces in the window: judging all of them would cost about twice the budget

CONFIG = """
[judges.faithful]
type = "llm"
model = "openai/judge-small"
api_base = "{base}"
api_key_env = "TEST_PROVIDER_KEY"
prompt_text = "Grade this answer to the question. Question: {{input}} Answer: {{output}}"
prompt = "inline"
timeout_s = 5
price_per_mtok_in = 10.0
price_per_mtok_out = 10.0

[sources.live]
type = "jsonl"
path = "traces.jsonl"

[online.prod]
source = "live"
judges = ["faithful"]
window = "{window}"

[online.prod.sampling]
rate = 1.0
"""

#: About 1,000 tokens of plain prose: a call costs about $0.01 at the config's prices.
ANSWER = ("The GOOD answer walks through each step the user asked about, names the settings to change, and says "
          "what to check afterwards so the change can be verified. ") * 28


# -- which windows are still ahead -----------------------------------------------------------------------------


def test_the_windows_ahead_are_those_judged_today() -> None:
    day_end = DAY + 24 * HOUR
    hourly, daily = parse_size("1h"), parse_size("1d")
    # An hourly window at 14:00, closing 5 minutes after its end: the hours up to 23:00 are judged today; the
    # 23:00 window closes after midnight and is the next day's first.
    assert ahead_of(hourly, DAY + 15 * HOUR, day_end, timedelta(minutes=5)) == (DAY + 15 * HOUR, DAY + 23 * HOUR)
    # Yesterday's last hour, judged just after midnight: today's windows are all ahead of it.
    assert ahead_of(hourly, DAY, day_end, timedelta(minutes=5)) == (DAY, DAY + 23 * HOUR)
    # A window of two weeks ago judged today: what is ahead starts today, not at its own end.
    assert ahead_of(hourly, DAY - timedelta(days=15), day_end, timedelta(minutes=5))[0] == DAY
    # A daily window: today's own closes tomorrow, so nothing is ahead of any daily window judged today.
    begin, end = ahead_of(daily, DAY - timedelta(days=14), day_end, timedelta(minutes=5))
    assert begin >= end
    # No lateness: the window that ends at midnight still closes only then, the next day.
    assert ahead_of(hourly, DAY + 22 * HOUR, day_end, timedelta(0)) == (DAY + 22 * HOUR, DAY + 23 * HOUR)


def test_windows_already_judged_are_not_ahead() -> None:
    past = history()
    span = (DAY + 11 * HOUR, DAY + 23 * HOUR)
    _, everything = expected_traffic(past, DAY + 10 * HOUR, DAY + 11 * HOUR, DAY + 24 * HOUR, HOUR, ahead=span)
    assert everything == pytest.approx(sum(diurnal(h) for h in range(11, 23)))
    # The 10:00 window judged again at 15:00, after 11:00-14:00 were judged: only 15:00-22:00 are ahead.
    judged = [DAY + h * HOUR for h in range(11, 15)]
    _, rest = expected_traffic(past, DAY + 10 * HOUR, DAY + 11 * HOUR, DAY + 24 * HOUR, HOUR, ahead=span,
                               judged=judged)
    assert rest == pytest.approx(sum(diurnal(h) for h in range(15, 23)))


def _day(outage: range | None = None, cost: float = 0.003) -> dict[int, float]:
    """The window budgets of DAY's hourly windows (lateness 5 min), each spending what its plan expects.

    ``outage``: the hours whose windows are not planned when they close but all at the end of the outage,
    oldest first (beat's catch-up).
    """
    past, spent, given, judged = history(), 0.0, {}, []
    day_end = DAY + 24 * HOUR
    order = [(h, DAY + (h + 1) * HOUR + timedelta(minutes=5)) for h in range(-1, 23)]  # 23:00-24:00 of the day before
    if outage is not None:
        back = DAY + (outage.stop + 1) * HOUR + timedelta(minutes=5)
        order = [(h, back if h in outage else at) for h, at in order]
        order.sort(key=lambda pair: (pair[1], pair[0]))
    for h, now in order:
        start = DAY + h * HOUR
        window, remaining = expected_traffic(past, start, start + HOUR, day_end, HOUR,
                                             ahead=ahead_of(parse_size("1h"), start + HOUR, day_end,
                                                            timedelta(minutes=5)), judged=judged)
        result = plan(PlanInput(now=now, day_start=DAY, day_end=day_end, budget_usd=20.0, spent_usd=spent,
                                reserved_usd=0.0, cost_per_item=cost, window_expected=window,
                                remaining_expected=remaining, strata=strata(diurnal(h % 24))))
        spent += result.expected_cost_usd
        given[h] = result.window_budget_usd
        judged.append(start)
    assert spent == pytest.approx(20.0, rel=1e-9)  # the day's money is spent on the windows judged that day
    return given


def test_a_catch_up_after_an_outage_gets_what_those_hours_would_have_been_given() -> None:
    usual = _day()
    caught_up = _day(outage=range(10, 13))  # 10:00-13:00 down: their three windows planned at 13:05
    missed = sum(caught_up[h] for h in range(10, 13))
    assert missed == pytest.approx(sum(usual[h] for h in range(10, 13)), rel=0.05)
    assert sum(caught_up.values()) == pytest.approx(20.0)


# -- end to end: the window job against the fake provider ------------------------------------------------------


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with FakeProvider(latency_s=0.002) as fake:
        yield fake


def _window_job(tmp_path: Path, sqlite_url: str, provider: FakeProvider, size: str, window_start: datetime,
                now: datetime) -> tuple[Ledger, str, float]:
    """Judge the window at ``window_start`` at ``now`` under $2/day: (ledger, run id, USD spent)."""
    (tmp_path / "judgeq.toml").write_text(CONFIG.format(base=provider.base_url, window=size))
    window = window_at(parse_size(size), window_start)
    with (tmp_path / "traces.jsonl").open("w") as f:
        for i in range(N):
            ts = window.start + (window.end - window.start) * i / N
            f.write(json.dumps({"id": f"t{i}", "input": f"How do I set up option {i}?", "output": ANSWER,
                                "ts": ts.isoformat()}) + "\n")
    config = tmp_path / "judgeq.toml"
    prepared = prepare(config, load_schedules(config)["prod"])
    (judge,) = prepared.judges
    ledger = Ledger(sqlite_url)
    ledger.budgets.set_budget("judge:faithful", BUDGET, who="ana", via="cli")
    # One thread and one item a chunk: the workers' gate stops the spend within one call of the budget.
    dispatcher = EmbeddedDispatcher(ledger, WorkerSettings(), remote_threads=1, trusted=[judge.spec])  # type: ignore[list-item]
    job = WindowJob(prepared.schedule, window, prepared.source, prepared.judges, ledger,
                    ChunkSettings(chunk_remote=1), planner=window_planner(ledger, prepared.schedule, window, now))
    try:
        outcome = job.run(dispatcher)
        dispatcher.join()
    finally:
        dispatcher.close()
    run_id = outcome.runs["faithful"]
    return ledger, run_id, sum(r.cost_usd for r in ledger.scores.scores(run_id))


def test_a_daily_window_judged_on_a_later_day_spends_the_days_budget(
        tmp_path: Path, sqlite_url: str, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PROVIDER_KEY", "sk-test-123")
    now = datetime.now(UTC)
    ledger, run_id, spent = _window_job(tmp_path, sqlite_url, provider, "1d", now - timedelta(days=15), now)
    (decision,) = ledger.budgets.decisions(judge="faithful")
    # Nothing else draws on today's money for this daily schedule: its window gets all of it, not a share of
    # the fifteen days of traffic after its end.
    assert "this window's share 100.0%" in decision.reason, decision.reason
    assert 1.60 <= spent <= 2.02, (spent, decision.reason)


def test_the_first_window_is_priced_from_the_judges_configured_prices(
        tmp_path: Path, sqlite_url: str, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PROVIDER_KEY", "sk-test-123")
    now = datetime.now(UTC)
    ledger, run_id, spent = _window_job(tmp_path, sqlite_url, provider, "1h", now - timedelta(hours=1), now)
    (decision,) = ledger.budgets.decisions(judge="faithful")
    calls = [r for r in ledger.scores.scores(run_id) if r.status == "ok"]
    per_call = spent / len(calls)
    assert per_call > 0.005  # a cent a call, not the flat default's
    assert "from the judge's configured prices" in decision.reason, decision.reason
    # litellm's token counter and the provider's characters / 4 differ a little; the default ($0.01) would
    # be right here only by chance, so the estimate must be near the call's cost to mean anything.
    assert decision.cost_per_item == pytest.approx(per_call, rel=0.25)
    # The window spends about what it was given (its expected cost, reserved before anything was sent).
    planned = decision.expected_count * decision.cost_per_item
    assert spent <= 1.3 * planned + per_call, (spent, planned, decision.reason)


def test_the_priced_guess_renders_the_records_and_needs_prices(tmp_path: Path) -> None:
    config = tmp_path / "judgeq.toml"
    config.write_text(CONFIG.format(base="http://127.0.0.1:9/v1", window="1h"))
    prepared = prepare(config, load_schedules(config)["prod"], check_env=False)
    (judge,) = prepared.judges
    short = priced_guess(judge, [Record(id="a", input="q", output="yes")])
    long = priced_guess(judge, [Record(id="b", input="q", output=ANSWER)])
    assert short is not None and long is not None
    assert long.tokens_in - short.tokens_in > 800 and long.usd > 4 * short.usd  # ANSWER: about 1,000 tokens
    assert long.usd == pytest.approx((long.tokens_in * 10 + long.tokens_out * 10) / 1e6)
    unpriced = config.read_text().replace("price_per_mtok_in = 10.0\nprice_per_mtok_out = 10.0\n", "")
    config.write_text(unpriced)
    (judge,) = prepare(config, load_schedules(config)["prod"], check_env=False).judges
    assert priced_guess(judge, [Record(id="a", input="q", output="yes")]) is None
