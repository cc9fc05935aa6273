"""``judgeq budget`` end to end (in this process, ``tests/cli_runner.py``) on SQLite and PostgreSQL: set, unset,
show, history.

Bad values exit 2 with a message and change nothing; ``show`` counts online spend only, reservations until
their runs settle, and the rates in force from the ledger and the config.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger import Ledger
from ledger.budget_rows import DecisionIn, utc_day

from .cli_runner import invoke
from .processes import base_env
from .test_ledger_budget import online_run, rows

#: Who a CLI change is recorded as: the account this test runs as (the tests' USER=tester is not believed).
ACCOUNT = pwd.getpwuid(os.getuid()).pw_name

pytestmark = pytest.mark.timeout(180)

CONFIG = """
[sources.prod]
type = "jsonl"
path = "traces/"

[sources.adhoc]
type = "jsonl"
path = "adhoc/"

[online.prod-hourly]
source = "prod"
judges = ["exact_match", "contains"]
window = "1h"
[online.prod-hourly.sampling]
strata = "metadata.locale"
rate = 0.05
rates = { de = 0.5 }
"""
PAST: datetime = utc_day(datetime.now(UTC) - timedelta(days=3))[1]  # a day that is over: its figures are final


@pytest.fixture
def env(ledger_url: str, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "judgeq.toml"
    config.write_text(CONFIG)
    return base_env(JUDGEQ_LEDGER_URL=ledger_url, JUDGEQ_CONFIG=str(config), USER="tester")


def judgeq(env: dict[str, str], *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = invoke(list(args), env)
    assert done.returncode == code, f"judgeq {' '.join(args)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def as_json(env: dict[str, str], *args: str) -> Any:
    return json.loads(judgeq(env, *args, "--json").stdout)


@pytest.mark.timeout(300)  # ~10 s: ten CLI processes, each importing judgeq whole
def test_budgets_are_set_unset_and_their_history_shown(env: dict[str, str], ledger_url: str) -> None:
    change = as_json(env, "budget", "set", "--judge", "exact_match", "--usd-per-day", "20", "--note", "pilot")
    assert (change["scope"], change["old_usd"], change["new_usd"], change["who"], change["via"]) == (
        "judge:exact_match", None, 20.0, ACCOUNT, "cli")  # the OS account, not the USER the environment claims
    said = judgeq(env, "budget", "set", "--judge", "exact_match", "--schedule", "prod-hourly", "--usd-per-day", "5.5")
    assert f"schedule:prod-hourly/judge:exact_match: none -> $5.50/day by {ACCOUNT} via cli" in said.stdout
    judgeq(env, "budget", "set", "--judge", "contains", "--schedule", "adhoc", "--usd-per-day", "1")  # a source's runs
    judgeq(env, "budget", "set", "--global", "--usd-per-day", "0")
    judgeq(env, "budget", "set", "--judge", "exact_match", "--usd-per-day", "25")
    removed = as_json(env, "budget", "unset", "--judge", "contains", "--schedule", "adhoc")
    assert (removed["old_usd"], removed["new_usd"]) == (1.0, None)

    with Ledger(ledger_url) as ledger:
        assert ledger.budgets.budgets() == {"judge:exact_match": 25.0, "schedule:prod-hourly/judge:exact_match": 5.5,
                                    "global": 0.0}
        assert len(ledger.budgets.history()) == 6
        ledger.budgets.record_decisions([DecisionIn(day="2026-12-01", schedule="prod-hourly", judge="exact_match",
                                            stratum="de", rate=0.125, expected_count=1200, cost_per_item=0.002,
                                            budget_left=4.2, reserved_usd=0.3, reason="pacing: 14 windows left",
                                            window="2026-12-01T14")])

    history = as_json(env, "budget", "history")
    assert [(e["kind"], e.get("scope"), e.get("new_usd")) for e in history] == [
        ("decision", None, None), ("change", "schedule:adhoc/judge:contains", None),
        ("change", "judge:exact_match", 25.0), ("change", "global", 0.0),
        ("change", "schedule:adhoc/judge:contains", 1.0), ("change", "schedule:prod-hourly/judge:exact_match", 5.5),
        ("change", "judge:exact_match", 20.0)]
    assert history[0]["rate"] == 0.125 and history[0]["reason"] == "pacing: 14 windows left"
    assert [e["kind"] for e in as_json(env, "budget", "history", "--limit", "2")] == ["decision", "change"]
    assert len(as_json(env, "budget", "history", "--judge", "contains")) == 2
    table = judgeq(env, "budget", "history", "--judge", "exact_match").stdout
    assert f"$20.00/day -> $25.00/day by {ACCOUNT} via cli" in table
    assert f"none -> $20.00/day by {ACCOUNT} via cli (pilot)" in table
    assert "0.125 for window 2026-12-01T14: 1,200 traces expected, $0.0020/item, $4.20 left" in table
    assert "contains" not in table
    # The changes people made apart from the controller's decisions (which outnumber them by far), and back.
    only_changes = as_json(env, "budget", "history", "--changes", "--limit", "3")
    assert [(e["kind"], e["scope"]) for e in only_changes] == [
        ("change", "schedule:adhoc/judge:contains"), ("change", "judge:exact_match"), ("change", "global")]
    only_decisions = as_json(env, "budget", "history", "--decisions")
    assert [(e["kind"], e["stratum"]) for e in only_decisions] == [("decision", "de")]
    assert "pacing" not in judgeq(env, "budget", "history", "--changes").stdout
    both = judgeq(env, "budget", "history", "--changes", "--decisions", code=2)
    assert "give --changes or --decisions, not both" in both.stderr


#: Bad values, each with what its message says. Checked before the ledger is written, the same on both backends.
BAD = [
    (["set", "--judge", "exact_match", "--usd-per-day", "-1"], "--usd-per-day -1 is not a budget"),
    (["set", "--judge", "exact_match", "--usd-per-day", "nan"], "--usd-per-day nan is not a budget"),
    (["set", "--judge", "exact_match", "--usd-per-day", "inf"], "--usd-per-day inf is not a budget"),
    (["set", "--judge", "exact_match", "--usd-per-day", "1e13"], "is not a budget"),
    (["set", "--judge", "exact_match", "--usd-per-day", "lots"], "Invalid value for '--usd-per-day'"),
    (["set", "--judge", "exact_match", "--usd-per-day", "-0.0"], "--usd-per-day -0 is not a budget (negative)"),
    # who is the OS account running the command: no flag names someone else
    (["set", "--judge", "exact_match", "--usd-per-day", "1", "--who", "the-ceo"], "No such option: --who"),
    (["set", "--judge", "exact_match", "--usd-per-day", "1", "--note", "ok\nforged line"],
     "--note holds a control or invisible character (U+000A at position 3)"),
    (["set", "--judge", "exact_match", "--usd-per-day", "1", "--note", "ana\u202egnp.exe"], "U+202E at position 4"),
    (["unset", "--judge", "exact_match", "--note", "x" * 501], "--note is 501 characters long, more than 500"),
    (["set", "--judge", "nope", "--usd-per-day", "1"], "unknown judge 'nope'"),
    (["set", "--judge", "regex", "--usd-per-day", "1"], "unknown judge 'regex'"),  # a builtin needing a table
    (["set", "--judge", "exact_match", "--schedule", "nightly", "--usd-per-day", "1"], "unknown schedule 'nightly'"),
    (["set", "--judge", "json_valid", "--schedule", "prod-hourly", "--usd-per-day", "1"], "does not run judge"),
    (["set", "--global", "--judge", "exact_match", "--usd-per-day", "1"], "give it alone"),
    (["set", "--usd-per-day", "1"], "name the budget"),
    (["set", "--schedule", "prod-hourly", "--usd-per-day", "1"], "name the budget"),
    (["unset", "--judge", "contains"], "no budget for judge:contains"),
    (["show", "--day", "2999-01-01"], "has not begun"),
    (["history", "--day", "yesterday"], "not a day"),
]


@pytest.mark.timeout(300)  # ~15 s: twenty CLI processes, each importing judgeq whole
def test_bad_values_exit_2_and_change_nothing(sqlite_url: str, tmp_path: Path) -> None:
    (tmp_path / "judgeq.toml").write_text(CONFIG)
    env = base_env(JUDGEQ_LEDGER_URL=sqlite_url, JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"), USER="tester")
    judgeq(env, "budget", "set", "--judge", "exact_match", "--usd-per-day", "3")
    for args, message in BAD:
        failed = judgeq(env, "budget", *args, code=2)
        assert message in failed.stderr and "Traceback" not in failed.stderr, (args, failed.stderr)
    with Ledger(sqlite_url) as ledger:
        assert ledger.budgets.budgets() == {"judge:exact_match": 3.0}
        assert len(ledger.budgets.history()) == 1


def test_history_shows_stored_text_inert(sqlite_url: str, tmp_path: Path) -> None:
    """A row written before names were checked (or straight into the ledger) cannot drive the terminal."""
    import sqlalchemy as sa

    (tmp_path / "judgeq.toml").write_text(CONFIG)
    env = base_env(JUDGEQ_LEDGER_URL=sqlite_url, JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"), USER="tester",
                   COLUMNS="300")
    judgeq(env, "budget", "set", "--judge", "exact_match", "--usd-per-day", "3")
    with Ledger(sqlite_url) as ledger, ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE budget_history SET who = :who, note = :note"),
                     {"who": "\x1b]0;pwned\x07\x1b[2J[bold red]mallory[/]", "note": "line\n\x1b[1Afake"})
    table = judgeq(env, "budget", "history").stdout
    assert "\x1b" not in table and "\x07" not in table
    assert "by \\x1b]0;pwned\\x07\\x1b[2J[bold red]mallory[/] via cli (line\\n\\x1b[1Afake)" in table, table


def test_show_counts_online_spend_reservations_and_rates_of_the_day(env: dict[str, str], ledger_url: str) -> None:
    day, at = f"{PAST:%Y-%m-%d}", PAST + timedelta(hours=11)
    with Ledger(ledger_url) as ledger:
        ledger.budgets.set_budget("judge:exact_match", 10.0, who="ana", via="cli")
        ledger.budgets.set_budget("schedule:prod-hourly/judge:exact_match", 2.0, who="ana", via="flower")
        ledger.budgets.set_budget("global", 12.0, who="ana", via="api")
        for run_id, judge, schedule, kind in [("o-1", "exact_match", "prod-hourly", "online"),
                                              ("o-2", "exact_match", "adhoc", "online"),
                                              ("o-3", "contains", "prod-hourly", "online"),
                                              ("off-1", "exact_match", "golden", "offline")]:
            online_run(ledger, run_id, judge=judge, schedule=schedule, kind=kind, window=f"{PAST:%Y-%m-%d}T10")
        last_second = PAST + timedelta(hours=23, minutes=59, seconds=59)
        ledger.scores.write_scores([*rows("o-1", 0.5, 0.25, 0.0, judge="exact_match", at=last_second),
                             *rows("o-1", 0.0, judge="exact_match", first=9, cached=True, at=at),
                             *rows("o-2", 7.0, judge="exact_match", first=10, at=PAST + timedelta(days=1)),  # next day
                             *rows("o-2", 1.0, judge="exact_match", at=at),
                             *rows("o-3", 3.0, judge="contains", at=at),
                             *rows("off-1", 100.0, judge="exact_match", at=at)])
        ledger.budgets.reserve("o-1", day, "exact_match", "prod-hourly", 1.0)  # 0.75 of it spent
        ledger.budgets.reserve("o-3", day, "contains", "prod-hourly", 5.0)
        ledger.runs.set_status("o-3", "done")  # settled: its reservation no longer counts
        ledger.windows.set_sampling_rate("prod-hourly", "exact_match", "de", 0.25, set_by="budget", reason="pacing")

    shown = as_json(env, "budget", "show", "--day", day)
    assert shown["offline_counted"] is False and "not counted" in shown["offline_note"]
    assert shown["left_h"] == 0.0 and shown["elapsed_h"] == 24.0  # a past day: nothing left to project
    figures = {b["scope"]: (b["usd_per_day"], b["spent_usd"], b["reserved_usd"], b["projected_usd"])
               for b in shown["budgets"]}
    assert figures == {
        "judge:exact_match": (10.0, 1.75, 0.25, 2.0),  # online rows of the day; offline and the next day's left out
        "schedule:prod-hourly/judge:exact_match": (2.0, 0.75, 0.25, 1.0),
        "global": (12.0, 4.75, 0.25, 5.0),
    }
    by_scope = {b["scope"]: b for b in shown["budgets"]}
    assert by_scope["judge:exact_match"]["cache_hit_rate"] == pytest.approx(1 / 5)
    rates = {(r["schedule"], r["judge"], r["stratum"]): (r["rate"], r["source"])
             for r in by_scope["global"]["rates"]}
    assert rates == {("prod-hourly", "exact_match", "de"): (0.25, "ledger"),  # the ledger's rate steers this judge
                     ("prod-hourly", "contains", "*"): (0.05, "config"), ("prod-hourly", "contains", "de"): (0.5, "config")}
    assert [r["judge"] for r in by_scope["schedule:prod-hourly/judge:exact_match"]["rates"]] == ["exact_match"]

    table = judgeq(env, "budget", "show", "--day", day).stdout
    assert "judge:exact_match" in table and "offline runs (judgeq submit, capped by --max-cost) are not counted" in table
    assert "budget: pacing" in table and "judgeq.toml" in table and "projected = spent + reserved" in table


def test_show_projects_today_on_a_straight_line(env: dict[str, str], ledger_url: str) -> None:
    day, start, _ = utc_day(datetime.now(UTC))
    with Ledger(ledger_url) as ledger:
        ledger.budgets.set_budget("judge:exact_match", 10.0, who="ana", via="cli")
        online_run(ledger, "o-1", judge="exact_match", window=f"{start:%Y-%m-%dT%H}")
        ledger.scores.write_scores(rows("o-1", 0.5, judge="exact_match", at=start + timedelta(seconds=1)))
        ledger.budgets.reserve("o-1", day, "exact_match", "prod", 2.0)

    shown = as_json(env, "budget", "show")
    (budget,) = shown["budgets"]
    assert shown["day"] == day and (budget["spent_usd"], budget["reserved_usd"]) == (0.5, 1.5)
    pace = 0.5 / shown["elapsed_h"] * shown["left_h"]
    assert budget["projected_usd"] == pytest.approx(0.5 + 1.5 + pace)
    assert shown["elapsed_h"] + shown["left_h"] == pytest.approx(24.0)


def test_show_and_history_of_an_empty_ledger_say_so(env: dict[str, str]) -> None:
    assert "no budgets set" in judgeq(env, "budget", "show").stdout
    assert "no budget changes or decisions yet" in judgeq(env, "budget", "history").stdout
    assert as_json(env, "budget", "history") == []


def test_a_broken_config_still_shows_the_ledger(env: dict[str, str], ledger_url: str, tmp_path: Path) -> None:
    with Ledger(ledger_url) as ledger:
        ledger.budgets.set_budget("judge:exact_match", 1.0, who="ana", via="cli")
    (tmp_path / "judgeq.toml").write_text(CONFIG + '\n[online.bad]\nsource = "prod"\n')
    shown = judgeq(env, "budget", "show").stdout
    assert "judge:exact_match" in shown and "the config's rates are not shown" in shown


def test_a_budget_is_echoed_and_shown_as_stored(sqlite_url: str, tmp_path: Path) -> None:
    """0.045 USD a day is 0.045 (it was echoed as $0.04); whole amounts keep their cents."""
    config = tmp_path / "judgeq.toml"
    config.write_text(CONFIG)
    env = base_env(JUDGEQ_LEDGER_URL=sqlite_url, JUDGEQ_CONFIG=str(config), USER="tester")
    said = judgeq(env, "budget", "set", "--judge", "exact_match", "--usd-per-day", "0.045").stdout
    assert f"judge:exact_match: none -> $0.045/day by {ACCOUNT} via cli" in said
    said = judgeq(env, "budget", "set", "--judge", "exact_match", "--usd-per-day", "1234.5").stdout
    assert "$0.045/day -> $1,234.50/day" in said
    judgeq(env, "budget", "set", "--global", "--usd-per-day", "0.0001234")
    shown = judgeq(env, "budget", "show").stdout
    assert "0.0001234" in shown and "1,234.50" in shown
    with Ledger(sqlite_url) as ledger:
        assert ledger.budgets.budgets() == {"judge:exact_match": 1234.5, "global": 0.0001234}
