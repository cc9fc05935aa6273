"""The budget controller around the window job, in one process, on SQLite and PostgreSQL (``ledger_url``).

The story: a schedule of two local judges over hourly windows of two locales
(1,900 "en" traces and 100 "ja" ones an hour), a daily budget on one judge.
A window judged by the WindowJob with ``window_planner`` samples at the
budget's rates (the judge has no priced calls yet, so the plan uses the
default cost per item), reserves the plan's expected cost, and writes each
decision with its reason; once the day's spend reaches the budget the next
window's rates are 0; a judge without a budget keeps the config's rates; the
global cap binds when it leaves less. Beat's minute tick (``plan_ahead``)
writes the rates it plans as ``sampling_rates`` set by "budget", and the
workers' gate says "spent" from the moment spend reaches the budget.

Clocks are injected: the budget day is a fixed past day, so spend written
for it by the tests is the only spend it has (rows the judges write carry
the real clock and cost nothing: local judges are free).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest
import sqlalchemy as sa

from ledger import Ledger, Run, ScoreIn, StratumCounts
from ledger.models import BUDGET_RESERVATIONS
from online.budget.ahead import plan_ahead
from online.budget.controller import DEFAULT_COST_PER_ITEM_USD, MIN_MARGIN_Z
from online.budget.gate import DailyBudgetGate, Reading, trusted_for
from online.budget.pacer import Money
from online.budget.pacer import money_for, window_planner
from online.job import WindowJob, WindowOutcome
from online.plan import Plan, prepare
from online.schedules import load_schedules
from online.windows import Window, parse_window
from workers.dispatch import EmbeddedDispatcher
from runs.sending import ChunkSettings
from workers.settings import WorkerSettings

pytestmark = pytest.mark.timeout(120)

SCHEDULE = "prod"
EN, JA = 1900, 100  # traces per hour
MIN = 5  # min_per_stratum
CONFIG_RATE = 0.5
DAY = "2026-06-15"
#: The day's last hour, planned in its last second: with nothing after it in the day, its share of what is
#: left of the day's money is all of it, so $1 buys 1 / $0.01 = 100 items.
LAST_HOUR = parse_window(f"{DAY}T23")
NOW = LAST_HOUR.end - timedelta(seconds=1)

CONFIG = f"""
[judges.exact]
type = "local"
builtin = "exact_match"

[judges.contains]
type = "local"
builtin = "contains"

[sources.live]
type = "jsonl"
path = "traces.jsonl"

[online.{SCHEDULE}]
source = "live"
judges = ["exact", "contains"]
window = "1h"
lateness = "0s"

[online.{SCHEDULE}.sampling]
strata = "metadata.locale"
rate = {CONFIG_RATE}
min_per_stratum = {MIN}
"""


def write_hours(path: Path, *hours: Window) -> None:
    """EN "en" and JA "ja" traces in each hour, spread over it."""
    with path.open("w") as f:
        for window in hours:
            for i in range(EN + JA):
                locale = "ja" if i % ((EN + JA) // JA) == 0 else "en"
                ts = window.start + timedelta(seconds=i * 3600 / (EN + JA))
                f.write(json.dumps({"id": f"{window.id}/{i}", "input": "q", "output": f"answer {i % 7}",
                                    "expected": "answer 1", "ts": ts.isoformat(),
                                    "metadata": {"locale": locale, "session_id": f"s{i}"}}) + "\n")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "judgeq.toml").write_text(CONFIG)
    write_hours(tmp_path / "traces.jsonl", *(parse_window(f"{DAY}T{h:02d}") for h in range(20, 24)))
    return tmp_path / "judgeq.toml"


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with Ledger(ledger_url) as ledger:
        yield ledger


@pytest.fixture
def plan(config: Path) -> Plan:
    return prepare(config, load_schedules(config)[SCHEDULE])


def judge_window(ledger: Ledger, plan: Plan, window: Window, now: datetime = NOW) -> WindowOutcome:
    """Judge ``window`` with the budget planner, in this process, and mark its runs done once judged."""
    dispatcher = EmbeddedDispatcher(ledger, WorkerSettings())
    job = WindowJob(plan.schedule, window, plan.source, plan.judges, ledger, ChunkSettings(),
                    planner=window_planner(ledger, plan.schedule, window, now))
    try:
        outcome = job.run(dispatcher)
        dispatcher.join()
    finally:
        dispatcher.close()
    for run_id in outcome.runs.values():
        ledger.runs.mark_done_if_complete(run_id)
    return outcome


def rates(ledger: Ledger, run_id: str) -> dict[str, float]:
    return {c.stratum: c.rate for c in ledger.windows.strata(run_id)}


def reservations(ledger: Ledger) -> dict[str, tuple[str, str, str, float]]:
    """The budget_reservations rows: run id -> (day, judge, schedule, reserved USD)."""
    with ledger.db.connect() as conn:  # read back as stored: no public reader lists them
        return {r.run_id: (r.day, r.judge, r.schedule, float(r.reserved_usd))
                for r in conn.execute(sa.select(BUDGET_RESERVATIONS))}


def spend(ledger: Ledger, usd: float, *, judge: str = "exact", kind: Literal["online", "offline"] = "online",
          run_id: str | None = None, at: datetime = NOW - timedelta(hours=3), n: int = 2,
          version: str | None = None) -> str:
    """``n`` rows costing ``usd`` in all, of a finished run of ``judge`` (online by default), written at ``at``."""
    run_id = run_id or f"spend-{judge}-{kind}-{usd}-{at:%d%H%M%S}"
    version = version or f"{judge}@v1"
    ledger.runs.create_run(Run(id=run_id, kind=kind, dataset_name=SCHEDULE if kind == "online" else "golden",
                          window=f"{DAY}T20" if kind == "online" else None,
                          judges={judge: {"version": version, "kind": "local"}}, status="running",
                          n_items=n, expected=n))
    ledger.scores.write_scores([ScoreIn(run_id=run_id, trace_id=f"t{i}", eval=judge, judge_version=version,
                                 dataset="w", score=1.0, cost_usd=usd / n, ts=at) for i in range(n)])
    assert ledger.runs.mark_done_if_complete(run_id)
    return run_id


def history(ledger: Ledger, *hours: int) -> None:
    """Judged hours of the schedule as the window job leaves them (runs and their stratum counts), no rows."""
    for hour in hours:
        window = parse_window(f"{DAY}T{hour:02d}")
        run_id = f"o-{window.id}-exact-history"
        ledger.runs.create_run(Run(id=run_id, kind="online", dataset_name=SCHEDULE, window=window.id,
                              judges={"exact": {"version": "exact@v0", "kind": "local"}}, status="done",
                              meta={"window": {"start": window.start.isoformat(), "end": window.end.isoformat()}}))
        ledger.windows.record_strata(run_id, [StratumCounts(stratum="en", seen=EN, filtered=0, sampled=0, enqueued=0,
                                                    rate=CONFIG_RATE),
                                      StratumCounts(stratum="ja", seen=JA, filtered=0, sampled=0, enqueued=0,
                                                    rate=CONFIG_RATE)])


def minimum_items() -> float:
    """A stratum's minimum with the controller's margin: what ``ja`` is guaranteed before the common rate."""
    return (math.sqrt(MIN) + MIN_MARGIN_Z / 2) ** 2  # the square root's normal approximation of a Poisson count


# -- a window judged on the budget ------------------------------------------------------------------------------


def test_a_budget_sets_the_windows_rates_reserves_its_cost_and_says_why(ledger: Ledger, plan: Plan) -> None:
    ledger.budgets.set_budget("judge:exact", 1.0, who="ana", via="cli")

    outcome = judge_window(ledger, plan, LAST_HOUR)

    # $1 at the default $0.01 per item buys 100 items: ja's minimum and its margin first (it is too small for
    # the common rate to reach them), the rest of the 100 spread over en at one rate.
    assert DEFAULT_COST_PER_ITEM_USD == 0.01
    exact = outcome.runs["exact"]
    got = rates(ledger, exact)
    assert got["ja"] == pytest.approx(minimum_items() / JA)
    assert got["en"] == pytest.approx((100 - minimum_items()) / EN)
    assert got["en"] < CONFIG_RATE / 10  # the budget, not the config, set it
    sampled = outcome.sampled["exact"]
    assert 70 <= sampled <= 130, sampled  # ~100 expected: a binomial count, sd ~ 9.6
    rows = list(ledger.scores.scores(exact))
    assert len(rows) == sampled and all(r.status == "ok" for r in rows)
    assert all(r.weight == pytest.approx(1 / got[str(r.stratum)]) for r in rows)

    # The judge without a budget keeps the config's rates; nothing is reserved or decided for it.
    contains = outcome.runs["contains"]
    assert rates(ledger, contains) == {"en": CONFIG_RATE, "ja": CONFIG_RATE}
    assert 0.4 * (EN + JA) < outcome.sampled["contains"] < 0.6 * (EN + JA)

    # Reserved before anything was sent: the plan's expected cost, on the budget's day.
    reserved = reservations(ledger)
    assert set(reserved) == {exact}
    day, judge, schedule, usd = reserved[exact]
    assert (day, judge, schedule) == (DAY, "exact", SCHEDULE)
    assert usd == pytest.approx(1.0)
    # The run is done (its rows are in): its reservation is settled, nothing is outstanding.
    assert ledger.runs.get_run(exact).status == "done"
    assert ledger.budgets.outstanding_reservations(DAY, "exact") == 0.0

    decided = {d.stratum: d for d in ledger.budgets.decisions(DAY, judge="exact")}
    assert set(decided) == {"en", "ja"} and not ledger.budgets.decisions(DAY, judge="contains")
    for stratum, d in decided.items():
        assert (d.schedule, d.window, d.day) == (SCHEDULE, LAST_HOUR.id, DAY)
        assert d.rate == pytest.approx(got[stratum]) and d.cost_per_item == pytest.approx(0.01)
        assert d.budget_left == pytest.approx(1.0) and d.reserved_usd == 0.0
        assert "cost per item unknown" in d.reason and "the default $0.0100" in d.reason
    assert decided["ja"].expected_count == pytest.approx(minimum_items())
    assert f"minimum {MIN} items" in decided["ja"].reason
    assert decided["en"].reason.startswith("the common rate")
    assert sum(d.expected_count for d in decided.values()) == pytest.approx(100)

    # Its rows are priced now: a local judge costs nothing, so the next window takes every trace, and
    # reserves nothing.
    late = parse_window(f"{DAY}T22")
    after = judge_window(ledger, plan, late)
    assert rates(ledger, after.runs["exact"]) == {"en": 1.0, "ja": 1.0}
    assert after.sampled["exact"] == EN + JA and reservations(ledger)[after.runs["exact"]][3] == 0.0
    (d, *_) = ledger.budgets.decisions(DAY, judge="exact", limit=1)
    assert d.window == late.id and d.cost_per_item == 0.0 and "the window's money covers every trace" in d.reason


def test_once_the_days_spend_reaches_the_budget_new_windows_get_rate_0(ledger: Ledger, plan: Plan) -> None:
    ledger.budgets.set_budget("judge:exact", 1.0, who="ana", via="cli")
    spend(ledger, 0.5)  # half spent earlier in the day: the window gets the other half
    spend(ledger, 5.0, kind="offline")  # an offline --max-cost run does not draw on the daily budget
    spend(ledger, 5.0, at=NOW - timedelta(days=1))  # nor does yesterday's spend

    first = judge_window(ledger, plan, LAST_HOUR)
    half = rates(ledger, first.runs["exact"])
    assert half["en"] == pytest.approx((50 - minimum_items()) / EN)
    assert reservations(ledger)[first.runs["exact"]][3] == pytest.approx(0.5)

    spend(ledger, 0.75, run_id="spend-more")  # now over the budget
    assert money_for(ledger, SCHEDULE, "exact", NOW).spent == 1.25  # type: ignore[union-attr]

    late = parse_window(f"{DAY}T22")  # the next window judged (late, caught up) in the same day
    second = judge_window(ledger, plan, late)
    exact = second.runs["exact"]
    assert rates(ledger, exact) == {"en": 0.0, "ja": 0.0}
    assert second.sampled["exact"] == 0 and list(ledger.scores.scores(exact)) == []
    assert reservations(ledger)[exact][3] == 0.0
    decided = ledger.budgets.decisions(DAY, judge="exact", limit=2)
    assert {(d.window, d.stratum) for d in decided} == {(late.id, "en"), (late.id, "ja")}
    assert all(d.rate == 0.0 and d.reason.startswith("budget spent; budget spent: $1.00 - $1.25 spent")
               for d in decided), decided[0].reason
    assert all(d.budget_left == pytest.approx(-0.25) for d in decided)
    # The other judge, with no budget, is judged as configured all along.
    assert rates(ledger, second.runs["contains"]) == {"en": CONFIG_RATE, "ja": CONFIG_RATE}


def test_without_a_budget_the_config_sets_the_rates_as_before(ledger: Ledger, plan: Plan) -> None:
    ledger.budgets.set_budget("judge:other", 0.0, who="ana", via="cli")  # someone else's budget changes nothing here

    outcome = judge_window(ledger, plan, LAST_HOUR)

    for judge in ("exact", "contains"):
        assert rates(ledger, outcome.runs[judge]) == {"en": CONFIG_RATE, "ja": CONFIG_RATE}
    assert reservations(ledger) == {} and ledger.budgets.decisions() == []
    assert money_for(ledger, SCHEDULE, "exact", NOW) is None


def test_the_global_cap_binds_when_it_leaves_less(ledger: Ledger, plan: Plan) -> None:
    ledger.budgets.set_budget("judge:exact", 10.0, who="ana", via="cli")
    ledger.budgets.set_budget("global", 1.0, who="ana", via="cli")
    spend(ledger, 0.6, judge="contains")  # another judge's online spend draws on the global cap

    money = money_for(ledger, SCHEDULE, "exact", NOW)
    assert money is not None and money.scope == "judge:exact (global cap)"
    assert money.left == pytest.approx(0.4)

    outcome = judge_window(ledger, plan, LAST_HOUR)
    got = rates(ledger, outcome.runs["exact"])
    assert got["en"] == pytest.approx((40 - minimum_items()) / EN)
    assert reservations(ledger)[outcome.runs["exact"]][3] == pytest.approx(0.4)

    # A cap that leaves more than the judge's own budget does not bind.
    ledger.budgets.set_budget("global", 100.0, who="ana", via="cli")
    ledger.budgets.set_budget("judge:exact", 0.2, who="ana", via="cli")
    money = money_for(ledger, SCHEDULE, "exact", NOW)
    assert money is not None and money.scope == "judge:exact" and money.left == pytest.approx(0.2)


def test_a_global_cap_others_overspent_leaves_nothing_and_plans_a_window(ledger: Ledger, plan: Plan) -> None:
    """Other judges spent past today's cap: this judge has $0 left (a negative budget crashed planning, exit 4)."""
    ledger.budgets.set_budget("judge:exact", 10.0, who="ana", via="cli")
    ledger.budgets.set_budget("global", 1.0, who="ana", via="cli")
    spend(ledger, 1.6, judge="contains")

    money = money_for(ledger, SCHEDULE, "exact", NOW)
    assert money is not None and money.scope == "judge:exact (global cap)"
    assert money.left == 0.0 and money.budget == pytest.approx(money.spent + money.reserved)
    outcome = judge_window(ledger, plan, LAST_HOUR)
    assert reservations(ledger)[outcome.runs["exact"]][3] == pytest.approx(0.0, abs=1e-9)


def test_a_schedules_own_budget_comes_before_the_judges(ledger: Ledger, plan: Plan) -> None:
    ledger.budgets.set_budget("judge:exact", 10.0, who="ana", via="cli")
    ledger.budgets.set_budget(f"schedule:{SCHEDULE}/judge:exact", 0.3, who="ana", via="cli")
    money = money_for(ledger, SCHEDULE, "exact", NOW)
    assert money is not None and money.scope == f"schedule:{SCHEDULE}/judge:exact" and money.budget == 0.3
    assert money_for(ledger, "elsewhere", "exact", NOW).budget == 10.0  # type: ignore[union-attr]


# -- beat's minute tick -----------------------------------------------------------------------------------------


def test_plan_ahead_writes_the_rates_in_force_and_its_decisions(ledger: Ledger, config: Path) -> None:
    history(ledger, 20, 21, 22)  # three hours of 2,000 traces
    assert plan_ahead(config, ledger, NOW) == []  # no budget at all: nothing to plan
    ledger.budgets.set_budget("judge:exact", 1.0, who="ana", via="cli")

    (ahead,) = plan_ahead(config, ledger, NOW)

    # The hour in progress, its strata as the recent hours had them; the day's last, so all $1 is its share.
    assert (ahead.schedule, ahead.judge, ahead.window) == (SCHEDULE, "exact", LAST_HOUR.id)
    assert ahead.rates["ja"] == pytest.approx(minimum_items() / JA)
    assert ahead.rates["en"] == pytest.approx((100 - minimum_items()) / EN)
    assert "$1.00 left" in ahead.summary() and ahead.summary().startswith(f"{SCHEDULE}/exact {LAST_HOUR.id}: ")
    in_force = {(r.judge, r.stratum): r for r in ledger.budgets.rates_in_force(schedule=SCHEDULE)}
    assert set(in_force) == {("exact", "en"), ("exact", "ja")}  # the judge without a budget is left alone
    for (_, stratum), row in in_force.items():
        assert row.set_by == "budget" and row.rate == pytest.approx(ahead.rates[stratum])
        assert row.reason.startswith(f"planned ahead for {LAST_HOUR.id}: ")
    decided = ledger.budgets.decisions(DAY, judge="exact")
    assert {(d.window, d.stratum) for d in decided} == {(LAST_HOUR.id, "en"), (LAST_HOUR.id, "ja")}
    assert all(d.cost_per_item == DEFAULT_COST_PER_ITEM_USD for d in decided)
    # Nothing is reserved ahead: the window job reserves when it enqueues the window.
    assert reservations(ledger) == {}


def test_plan_ahead_paces_the_rest_of_the_day_at_the_measured_cost(ledger: Ledger, plan: Plan,
                                                                   config: Path) -> None:
    history(ledger, 20, 21)
    exact = next(j for j in plan.judges if j.name == "exact")
    spend(ledger, 0.5, n=40, version=exact.version)  # 40 calls at $0.0125: the judge version's measured cost
    ledger.budgets.set_budget("judge:exact", 2.5, who="ana", via="cli")
    now = parse_window(f"{DAY}T22").start + timedelta(minutes=1)

    (ahead,) = plan_ahead(config, ledger, now)

    # $2 left; the hour in progress is the last window judged today (the next one closes after midnight, so
    # the next day's money pays for it): $2, at $0.0125 an item, 160 items.
    assert ahead.window == f"{DAY}T22" and ahead.budget_left == pytest.approx(2.0)
    assert ahead.rates["en"] == pytest.approx((160 - minimum_items()) / EN)
    (d, *_) = ledger.budgets.decisions(DAY, judge="exact", limit=1)
    assert d.cost_per_item == pytest.approx(0.0125) and "this window's share 100.0%" in d.reason


def test_a_removed_budget_gives_the_judge_back_to_the_config_at_the_next_tick(ledger: Ledger, plan: Plan,
                                                                             config: Path) -> None:
    history(ledger, 20, 21, 22)
    ledger.windows.set_sampling_rate(SCHEDULE, "exact", "*", 0.25, set_by="ana", reason="a person's rate")
    ledger.budgets.set_budget("judge:exact", 1.0, who="ana", via="cli")
    spend(ledger, 1.5)
    (ahead,) = plan_ahead(config, ledger, NOW)
    assert ahead.rates == {"en": 0.0, "ja": 0.0}  # spent: the rates in force are 0

    ledger.budgets.set_budget("judge:exact", None, who="ana", via="cli")
    assert plan_ahead(config, ledger, NOW) == []

    # The budget's rates are gone with it (a person's rate stays): the window is judged as configured.
    in_force = {(r.stratum, r.set_by) for r in ledger.budgets.rates_in_force(schedule=SCHEDULE, judge="exact")}
    assert in_force == {("*", "ana")}
    outcome = judge_window(ledger, plan, LAST_HOUR)
    assert rates(ledger, outcome.runs["exact"]) == {"en": 0.25, "ja": 0.25}


# -- the workers' gate ------------------------------------------------------------------------------------------


def test_the_gate_says_spent_once_spend_reaches_the_budget_and_never_for_offline_runs(ledger: Ledger) -> None:
    ledger.budgets.set_budget("judge:exact", 1.0, who="ana", via="cli")
    online = spend(ledger, 0.75, run_id="o-online", n=3)
    offline = spend(ledger, 3.0, kind="offline", run_id="offline")
    gate = DailyBudgetGate(cache_s=0)

    assert gate.spent(ledger, online, "exact", NOW) is None
    spend(ledger, 0.25, run_id="o-more", n=1)
    said = gate.spent(ledger, online, "exact", NOW)
    assert said is not None and said.startswith("budget: judge:exact spent $1.0000 of its $1 per day on 2026-06-15")
    assert gate.spent(ledger, offline, "exact", NOW) is None  # offline runs keep --max-cost, not the day's budget
    assert gate.spent(ledger, online, "exact", NOW + timedelta(days=1)) is None  # a new day, a new budget
    assert gate.spent(ledger, online, "contains", NOW) is None  # no budget: never spent
    ledger.budgets.set_budget("judge:exact", 5.0, who="ana", via="cli")
    assert gate.spent(ledger, online, "exact", NOW) is None  # a raised budget applies at once (no cache here)
    ledger.budgets.set_budget("global", 1.5, who="ana", via="cli")
    assert gate.spent(ledger, online, "exact", NOW) is None
    spend(ledger, 0.5, judge="contains")  # the global cap is spent, by every judge together
    said = gate.spent(ledger, online, "exact", NOW)
    assert said is not None and said.startswith("budget: judge:exact (global cap) spent $1.0000")


def test_between_readings_the_gate_adds_what_this_process_spent(ledger: Ledger) -> None:
    ledger.budgets.set_budget("judge:exact", 1.0, who="ana", via="cli")
    online = spend(ledger, 0.5, run_id="o-online")
    offline = spend(ledger, 0.5, kind="offline", run_id="offline")
    gate = DailyBudgetGate(cache_s=3600)

    assert gate.spent(ledger, online, "exact", NOW) is None  # read: $0.50 of $1
    spend(ledger, 0.5, run_id="o-elsewhere")  # another process's: not seen before the next reading
    assert gate.spent(ledger, online, "exact", NOW) is None
    gate.charge(offline, "exact", 5.0, NOW)  # an offline run's spend is not the day's
    gate.charge(online, "exact", 0.25, NOW)
    assert gate.spent(ledger, online, "exact", NOW) is None  # $0.75 as far as this process knows
    gate.charge(online, "exact", 0.25, NOW)
    said = gate.spent(ledger, online, "exact", NOW)
    assert said is not None and "spent $1.0000 of its $1 per day" in said


def test_a_reading_is_trusted_for_less_when_the_spend_would_reach_the_budget_sooner() -> None:
    def money(spent: float) -> Money:
        return Money("judge:exact", 1.0, spent, 0.0)

    before = Reading(at=100.0, money=money(0.2), trusted_s=60.0, charged=0.0)
    # $0.40 in 10 s: the $0.40 left would go in 10 s more, so the new reading is trusted for half that.
    assert trusted_for(money(0.6), before, 110.0, cache_s=60.0) == pytest.approx(5.0)
    assert trusted_for(money(0.6), before, 110.0, cache_s=2.0) == 2.0
    assert trusted_for(money(0.2), before, 110.0, cache_s=60.0) == 60.0  # nothing spent since: no hurry
    assert trusted_for(money(0.6), None, 110.0, cache_s=60.0) == 60.0  # the first reading
    assert trusted_for(money(1.2), before, 110.0, cache_s=60.0) == 60.0  # spent already: it stays spent
    assert trusted_for(None, before, 110.0, cache_s=60.0) == 60.0  # no budget
