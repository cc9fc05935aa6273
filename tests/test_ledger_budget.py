"""The ledger's budget data, on SQLite and PostgreSQL (``ledger_url``): budgets and their history, the
controller's decisions, reservations that settle as rows arrive, spend per UTC day, cost and cache figures,
and the traffic of recent windows.

Online runs and their rows are built through the Ledger API as the window job and the workers build them.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ledger import Ledger, Run, ScoreIn, StratumCounts
from ledger.budget_rows import DecisionIn, budget_scope, parse_scope, utc_day
from ledger.engine import create_ledger_engine
from ledger.errors import LedgerArgumentError, LedgerDataError, LedgerError
from ledger.migrate import alembic_config, upgrade
from ledger.models import BUDGETS, LedgerModel

pytestmark = pytest.mark.timeout(120)

DAY = datetime(2026, 12, 1, tzinfo=UTC)
BUDGET_TABLES = {"budgets", "budget_history", "budget_decisions", "budget_reservations"}


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with Ledger(ledger_url) as ledger:
        yield ledger


def online_run(ledger: Ledger, run_id: str, *, judge: str = "helpful", schedule: str = "prod",
               window: str = "2026-12-01T10", start: datetime | None = None, kind: str = "online",
               version: str | None = None) -> str:
    start = start or datetime.fromisoformat(window + ":00:00+00:00")
    ledger.runs.create_run(Run(id=run_id, kind=kind, dataset_name=schedule, window=window if kind == "online" else None,
                          judges={judge: {"version": version or f"{judge}@v1", "kind": "llm"}},
                          meta={"window": {"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()}},
                          status="running", n_items=10, expected=10))
    return run_id


def rows(run_id: str, *costs: float, judge: str = "helpful", at: datetime = DAY + timedelta(hours=11),
         first: int = 0, version: str | None = None, **extra: Any) -> list[ScoreIn]:
    return [ScoreIn(run_id=run_id, trace_id=f"t{first + i:05d}", eval=judge, judge_version=version or f"{judge}@v1",
                    dataset="w", score=1.0, cost_usd=cost, ts=at, **extra)
            for i, cost in enumerate(costs)]


# -- schema -------------------------------------------------------------------


def test_migration_0006_goes_down_to_0005_and_up_again(empty_ledger_url: str) -> None:
    upgrade(empty_ledger_url)
    engine = create_ledger_engine(empty_ledger_url)
    with Ledger(empty_ledger_url) as ledger:
        ledger.budgets.set_budget("judge:helpful", 5.0, who="ana", via="cli")

    command.downgrade(alembic_config(empty_ledger_url), "0005")
    inspector = sa.inspect(engine)
    assert not BUDGET_TABLES & set(inspector.get_table_names())
    assert "ix_scores_eval_ts" not in {index["name"] for index in inspector.get_indexes("scores")}

    command.upgrade(alembic_config(empty_ledger_url), "head")
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert list(compare_metadata(context, LedgerModel.metadata)) == []
    with Ledger(empty_ledger_url) as ledger:
        assert ledger.budgets.budgets() == {}  # the downgrade dropped the data with its tables
    engine.dispose()


# -- budgets and their history ------------------------------------------------


def test_every_change_is_written_with_its_old_and_new_amount(ledger: Ledger) -> None:
    first = ledger.budgets.set_budget("judge:helpful", 20, who="ana", via="cli", note="pilot")
    ledger.budgets.set_budget("schedule:prod/judge:helpful", 5.5, who="flower-admin", via="flower")
    ledger.budgets.set_budget("judge:helpful", 30.0, who="bo", via="api")
    ledger.budgets.set_budget("global", 0, who="ana", via="cli")
    removed = ledger.budgets.set_budget("judge:helpful", None, who="ana", via="cli", note="pilot over")

    assert ledger.budgets.budgets() == {"schedule:prod/judge:helpful": 5.5, "global": 0.0}
    assert ledger.budgets.set_budget("judge:helpful", None, who="ana", via="cli") is None  # nothing to remove
    assert first is not None and (first.old_usd, first.new_usd, first.note) == (None, 20.0, "pilot")
    assert removed is not None and (removed.old_usd, removed.new_usd) == (30.0, None)

    history = ledger.budgets.history()
    assert [(c.scope, c.old_usd, c.new_usd, c.who, c.via) for c in history] == [
        ("judge:helpful", 30.0, None, "ana", "cli"),
        ("global", None, 0.0, "ana", "cli"),
        ("judge:helpful", 20.0, 30.0, "bo", "api"),
        ("schedule:prod/judge:helpful", None, 5.5, "flower-admin", "flower"),
        ("judge:helpful", None, 20.0, "ana", "cli"),
    ]
    assert history[0].id == removed.id and history[0].at.tzinfo is not None
    assert [c.new_usd for c in ledger.budgets.history(limit=2, scope="judge:helpful")] == [None, 30.0]
    (entry,) = [b for b in ledger.budgets.entries() if b.scope == "global"]
    assert entry.updated_by == "ana" and entry.usd_per_day == 0.0


@pytest.mark.parametrize("amount", [-0.01, math.nan, math.inf, -math.inf, 1e13, True, "10"])
def test_a_bad_amount_is_refused_and_changes_nothing(ledger: Ledger, amount: Any) -> None:
    ledger.budgets.set_budget("judge:helpful", 3.0, who="ana", via="cli")
    with pytest.raises(LedgerArgumentError, match="budget of judge:helpful"):
        ledger.budgets.set_budget("judge:helpful", amount, who="ana", via="cli")
    assert ledger.budgets.budgets() == {"judge:helpful": 3.0}
    assert len(ledger.budgets.history()) == 1


def test_the_database_refuses_what_the_call_refuses(ledger: Ledger) -> None:
    ledger.budgets.budgets()  # the schema
    for amount in (math.nan, math.inf, -1.0):
        with pytest.raises((sa.exc.IntegrityError, LedgerDataError)):  # NaN: NULL on SQLite, > all on PostgreSQL
            with ledger.engine.begin() as conn:
                conn.execute(sa.insert(BUDGETS), {"scope": "global", "usd_per_day": amount, "updated_at": DAY,
                                                  "updated_by": "x"})
    assert ledger.budgets.budgets() == {}


@pytest.mark.parametrize(("call", "message"), [
    (dict(scope="judge:"), "not a budget scope"),
    (dict(scope="schedule:prod/helpful"), "not a budget scope"),
    (dict(scope="everything"), "not a budget scope"),
    (dict(via="email"), "via must be one of"),
    (dict(who=""), "who must name"),
])
def test_a_bad_scope_or_author_is_refused(ledger: Ledger, call: dict[str, str], message: str) -> None:
    args = {"scope": "judge:helpful", "who": "ana", "via": "cli"} | call
    with pytest.raises(LedgerArgumentError, match=message):
        ledger.budgets.set_budget(args.pop("scope"), 1.0, **args)
    assert ledger.budgets.history() == []


def test_scopes_are_written_and_read_back() -> None:
    for judge, schedule in [(None, None), ("helpful", None), ("a/b:c", "prod-hourly")]:
        scope = budget_scope(judge, schedule)
        assert (parse_scope(scope).judge, parse_scope(scope).schedule) == (judge, schedule)
    assert budget_scope("helpful", "prod") == "schedule:prod/judge:helpful"
    with pytest.raises(LedgerArgumentError):
        budget_scope(None, "prod")


def test_concurrent_changes_leave_a_history_whose_old_amounts_chain(ledger: Ledger) -> None:
    def setter(who: str, base: int) -> None:
        for i in range(15):
            ledger.budgets.set_budget("judge:helpful", base + i, who=who, via="api")

    threads = [threading.Thread(target=setter, args=(f"p{n}", 100 * n)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    history = list(reversed(ledger.budgets.history(limit=100)))
    assert len(history) == 45
    assert [c.old_usd for c in history[1:]] == [c.new_usd for c in history[:-1]]  # no change lost its predecessor
    assert ledger.budgets.budgets()["judge:helpful"] == history[-1].new_usd


# -- decisions ------------------------------------------------------------------


def test_decisions_are_read_back_newest_first_by_day(ledger: Ledger) -> None:
    def decision(day: str, stratum: str, rate: float, **extra: Any) -> DecisionIn:
        return DecisionIn(day=day, schedule="prod", judge="helpful", stratum=stratum, rate=rate,
                          expected_count=1200.0, cost_per_item=0.002, budget_left=-0.5 if rate == 0 else 12.0,
                          reserved_usd=0.4, reason="pacing", **extra)

    assert ledger.budgets.record_decisions([decision("2026-12-01", "de", 0.2, window="2026-12-01T10"),
                                    decision("2026-12-01", "fr", 0.1)]) == 2
    ledger.budgets.record_decisions([decision("2026-12-02", "de", 0.0, at=DAY + timedelta(days=1))])

    assert [(d.day, d.stratum, d.rate) for d in ledger.budgets.decisions()] == [
        ("2026-12-02", "de", 0.0), ("2026-12-01", "fr", 0.1), ("2026-12-01", "de", 0.2)]
    (first, second) = ledger.budgets.decisions(day="2026-12-01")
    assert (second.window, second.expected_count, second.budget_left, second.reason) == (
        "2026-12-01T10", 1200.0, 12.0, "pacing")
    assert ledger.budgets.decisions(limit=1, judge="helpful")[0].at == DAY + timedelta(days=1)
    assert ledger.budgets.decisions(schedule="other") == []
    for bad in (dict(rate=1.5), dict(cost_per_item=math.nan), dict(reserved_usd=-1.0), dict(day="Monday")):
        with pytest.raises(LedgerArgumentError):
            DecisionIn(**({"day": "2026-12-01", "schedule": "prod", "judge": "j", "stratum": "all", "rate": 0.5,
                           "expected_count": 1, "cost_per_item": 0.1, "budget_left": 1, "reserved_usd": 0} | bad))


def test_a_plans_rates_and_its_decisions_are_written_together_or_not_at_all(ledger: Ledger) -> None:
    def decision(stratum: str, rate: float) -> DecisionIn:
        return DecisionIn(day="2026-12-01", schedule="prod", judge="helpful", stratum=stratum, rate=rate,
                          expected_count=100.0, cost_per_item=0.002, budget_left=1.0, reserved_usd=0.2, reason="pacing")

    def rates() -> list[tuple[str, float, str]]:
        return [(r.stratum, r.rate, r.reason) for r in ledger.budgets.rates_in_force(schedule="prod", judge="helpful")]

    ledger.budgets.set_planned_rates("prod", "helpful", {"de": (0.2, "planned: pacing")}, [decision("de", 0.2)],
                             set_by="budget")
    assert rates() == [("de", 0.2, "planned: pacing")]
    assert [(d.stratum, d.rate) for d in ledger.budgets.decisions()] == [("de", 0.2)]
    # The decisions' table refuses the insert: the rates of the same plan are not left in force either.
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE budget_decisions"))
    with pytest.raises(LedgerError):
        ledger.budgets.set_planned_rates("prod", "helpful", {"de": (0.9, "x"), "fr": (0.5, "x")},
                                 [decision("de", 0.9), decision("fr", 0.5)], set_by="budget")
    assert rates() == [("de", 0.2, "planned: pacing")]


# -- spend and reservations -----------------------------------------------------


def test_spend_counts_the_online_rows_written_in_the_utc_day(ledger: Ledger) -> None:
    online_run(ledger, "o-1")
    online_run(ledger, "o-2", schedule="staging")
    online_run(ledger, "o-3", judge="other")
    online_run(ledger, "off-1", kind="offline")
    last_moment = DAY + timedelta(days=1) - timedelta(microseconds=1)
    ledger.scores.write_scores([
        *rows("o-1", 1.0, at=DAY - timedelta(seconds=1)),                          # the day before
        *rows("o-1", 0.25, at=DAY, first=1),                                       # 00:00:00
        *rows("o-1", 0.5, at=DAY + timedelta(hours=23, minutes=59, seconds=59), first=2),
        *rows("o-1", 0.125, at=last_moment, first=3),
        *rows("o-1", 4.0, at=DAY + timedelta(days=1), first=4),                    # 00:00:00 the next day
        *rows("o-1", 0.0, at=DAY + timedelta(hours=3), first=5, cached=True, saved_usd=0.5),
        *rows("o-2", 2.0),
        *rows("o-3", 8.0, judge="other"),
        *rows("off-1", 16.0),
    ])
    day, start, end = utc_day(DAY + timedelta(hours=15))
    assert (day, start, end) == ("2026-12-01", DAY, DAY + timedelta(days=1))

    assert ledger.spend.spent(start, end, "helpful") == 0.25 + 0.5 + 0.125 + 2.0
    assert ledger.spend.spent(start, end, "helpful", schedule="prod") == 0.875
    assert ledger.spend.spent(start, end, "helpful", online_only=False) == 2.875 + 16.0
    assert ledger.spend.spent(start, end) == 2.875 + 8.0                                # every judge
    assert ledger.spend.spent(end, end + timedelta(days=1), "helpful") == 4.0
    assert ledger.spend.spent(start, end, "nobody") == 0.0
    tokyo = datetime(2026, 12, 1, 9, tzinfo=UTC).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))
    assert ledger.spend.spent(tokyo, end, "helpful", schedule="prod") == 0.5 + 0.125  # bounds in any zone mean the instant
    with pytest.raises(LedgerArgumentError, match="time zone"):
        ledger.spend.spent(datetime(2026, 12, 1), end, "helpful")


def test_spend_of_an_empty_ledger_is_zero(ledger: Ledger) -> None:
    assert ledger.spend.spent(DAY, DAY + timedelta(days=1)) == 0.0
    assert ledger.spend.cache_hit_rate(None, DAY) is None


def test_reservations_settle_as_rows_arrive_and_release_when_the_run_is_done(ledger: Ledger) -> None:
    online_run(ledger, "o-a")
    online_run(ledger, "o-b", window="2026-12-01T11")
    online_run(ledger, "o-c", judge="other")
    assert ledger.budgets.reserve("o-a", "2026-12-01", "helpful", "prod", 1.0) is True
    assert ledger.budgets.reserve("o-a", "2026-12-01", "helpful", "prod", 9.0) is False  # once per run: the first stands
    assert ledger.budgets.reserve("o-b", "2026-12-01", "helpful", "prod", 0.5)
    assert ledger.budgets.reserve("o-c", "2026-12-01", "other", "prod", 2.0)
    assert ledger.budgets.reserve("o-later", "2026-12-02", "helpful", "prod", 7.0)  # its run is not created yet
    assert ledger.budgets.outstanding_reservations("2026-12-01", "helpful") == 1.5
    assert ledger.budgets.outstanding_reservations("2026-12-01") == 3.5
    assert ledger.budgets.outstanding_reservations("2026-12-02", "helpful") == 7.0  # reserved before its run exists

    ledger.scores.write_scores(rows("o-a", 0.25, 0.25, 0.125))
    assert ledger.budgets.outstanding_reservations("2026-12-01", "helpful") == pytest.approx(0.375 + 0.5)
    ledger.scores.write_scores(rows("o-b", 0.75))  # costs more than reserved: nothing outstanding, the spend has it all
    assert ledger.budgets.outstanding_reservations("2026-12-01", "helpful") == pytest.approx(0.375)
    assert ledger.budgets.outstanding_reservations("2026-12-01", "helpful", schedule="staging") == 0.0

    ledger.runs.set_status("o-a", "done")  # settled: what it did not spend goes back to the day
    assert ledger.budgets.outstanding_reservations("2026-12-01", "helpful") == 0.0
    ledger.runs.set_status("o-c", "abandoned")
    assert ledger.budgets.outstanding_reservations("2026-12-01") == 0.0
    with pytest.raises(LedgerArgumentError):
        ledger.budgets.reserve("o-d", "2026-12-01", "helpful", "prod", math.nan)


# -- cost per item, cache hits, traffic ---------------------------------------------


def test_cost_per_item_is_the_mean_of_recent_paid_verdicts(ledger: Ledger) -> None:
    online_run(ledger, "o-1")
    online_run(ledger, "off-1", kind="offline")
    old = DAY + timedelta(hours=1)
    ledger.scores.write_scores([
        *rows("o-1", *[0.01] * 10, at=old),                                           # older: past the limit
        *[replace_ts(r, DAY + timedelta(hours=2, seconds=i)) for i, r in enumerate(rows("o-1", *[0.002, 0.004] * 15,
                                                                                         first=100))],
        *rows("o-1", *[0.0] * 30, first=200, cached=True),                            # hits: not a cost per call
        *rows("o-1", *[9.0] * 5, first=300, status="error", error="boom"),            # not verdicts
        *rows("o-1", *[0.5] * 25, first=400, version="helpful@v2", at=DAY + timedelta(hours=3)),
        *rows("off-1", *[1.0] * 40),
    ])
    since = DAY
    assert ledger.spend.cost_per_item("helpful", since, version="helpful@v1", limit=30) == pytest.approx(0.003)
    assert ledger.spend.cost_per_item("helpful", since, version="helpful@v1") == pytest.approx((0.09 + 0.1) / 40)
    assert ledger.spend.cost_per_item("helpful", since, limit=25) == pytest.approx(0.5)  # the newest: version 2
    assert ledger.spend.cost_per_item("helpful", since, version="helpful@v2", min_rows=26) is None  # too few to say
    assert ledger.spend.cost_per_item("helpful", DAY + timedelta(hours=4)) is None
    assert ledger.spend.cost_per_item("helpful", since, online_only=False, limit=40) == pytest.approx(1.0)

    # 30 of the 30 + 10 + 25 ok rows of online runs are cache hits (errors are not verdicts)
    assert ledger.spend.cache_hit_rate("helpful", since) == pytest.approx(30 / 95)
    assert ledger.spend.cache_hit_rate("helpful", DAY + timedelta(hours=2, minutes=30)) == pytest.approx(30 / 55)
    assert ledger.spend.cache_hit_rate("helpful", since, until=DAY + timedelta(hours=3)) == 0.0  # before the hits
    assert ledger.spend.cache_hit_rate("helpful", since, limit=30) == 1.0  # the newest rows: the hits, at 11:00
    assert ledger.spend.cache_hit_rate("helpful", since, limit=55) == pytest.approx(30 / 55)
    assert ledger.spend.cache_hit_rate("helpful", since, online_only=False) == pytest.approx(30 / 135)
    assert ledger.spend.cache_hit_rate("nobody", since) is None


def replace_ts(row: ScoreIn, ts: datetime) -> ScoreIn:
    row.ts = ts
    return row


def test_recent_windows_give_their_traffic_per_stratum_oldest_first(ledger: Ledger) -> None:
    counts = {"2026-11-30T09": {"de": (100, 10), "fr": (50, 0)}, "2026-12-01T09": {"de": (300, 30), "fr": (40, 0)},
              "2026-12-01T10": {"de": (120, 0)}}
    for window, strata in counts.items():
        online_run(ledger, f"o-{window}", window=window)
        ledger.windows.record_strata(f"o-{window}", [StratumCounts(s, seen, filtered, 0, 0, 0.1)
                                             for s, (seen, filtered) in strata.items()])
    online_run(ledger, "o-other", window="2026-12-01T09", judge="other")  # another judge: same traffic
    ledger.windows.record_strata("o-other", [StratumCounts("de", 999, 0, 0, 0, 0.1)])
    online_run(ledger, "o-v2", window="2026-12-01T10", version="helpful@v2")  # judged again after a new version
    ledger.windows.record_strata("o-v2", [StratumCounts("de", 130, 0, 0, 0, 0.1), StratumCounts("it", 5, 5, 0, 0, 0.1)])
    online_run(ledger, "o-staging", window="2026-12-01T10", schedule="staging")
    ledger.windows.record_strata("o-staging", [StratumCounts("de", 7, 0, 0, 0, 0.1)])

    found = ledger.spend.recent_window_counts("prod", "helpful", DAY)
    assert [(t.window, t.start, t.seen, dict(t.eligible)) for t in found] == [
        ("2026-12-01T09", DAY + timedelta(hours=9), 340, {"de": 270, "fr": 40}),
        ("2026-12-01T10", DAY + timedelta(hours=10), 135, {"de": 130, "it": 0}),  # the most-read run
    ]
    assert found[0].eligible_total == 310
    assert len(ledger.spend.recent_window_counts("prod", "helpful", DAY - timedelta(days=1))) == 3
    assert ledger.spend.recent_window_counts("prod", "helpful", DAY + timedelta(hours=9, minutes=30))[0].window == (
        "2026-12-01T10")
    assert [t.seen for t in ledger.spend.recent_window_counts("prod", None, DAY)] == [999, 135]
    assert ledger.spend.recent_window_counts("nothing", "helpful", DAY) == []


def test_rates_in_force_are_listed_per_schedule_judge_and_stratum(ledger: Ledger) -> None:
    ledger.windows.set_sampling_rate("prod", "helpful", "de", 0.2, set_by="budget", reason="pacing")
    ledger.windows.set_sampling_rate("prod", "other", "*", 0.5, set_by="ana")
    ledger.windows.set_sampling_rate("staging", "helpful", "de", 1.0, set_by="ana")
    assert [(r.schedule, r.judge, r.stratum, r.rate) for r in ledger.budgets.rates_in_force("helpful")] == [
        ("prod", "helpful", "de", 0.2), ("staging", "helpful", "de", 1.0)]
    assert len(ledger.budgets.rates_in_force()) == 3 and len(ledger.budgets.rates_in_force(schedule="prod")) == 2
