"""The cost owner's console: a budget set through Flower's HTTP API changes the next budget tick's rates.

Real processes: Flower (with basic auth), a ``judgeq worker --queues local``
and ``judgeq beat`` (a one-minute schedule ticking every 2 s, and the budget
controller's tick every 2 s through JUDGEQ_BUDGET_TICK_S), on Redis and
PostgreSQL. Traces are written relative to now, so beat's first tick finds
closed windows to judge: their counts are the history the budget tick plans
the window in progress from. A budget set through ``POST
/api/task/async-apply/judgeq.budget_set`` shows in the ledger's history as
made through Flower by the logged-in user, and the tick after it writes the rates in force
(``sampling_rates`` set by "budget"), which Flower's task list shows as the
tick's one-line summary; bad values fail the task, as Flower shows, and
change nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from ledger import Ledger
from ledger.models import SamplingRate
from online.windows import parse_size, window_at

from .processes import REPO, Worker, base_env, free_port, judgeq_cmd, wait_until
from .test_online_beat import Beat

# About 15 s: three process starts (in parallel), a few 2 s ticks, a dozen tasks through Flower.
pytestmark = pytest.mark.timeout(120)

SCHEDULE = "minutely"
AUTH = ("ops", "correct-horse-battery")
CONFIG = f"""
[judges.exact]
type = "local"
builtin = "exact_match"

[sources.live]
type = "jsonl"
path = "traces.jsonl"

[online.{SCHEDULE}]
source = "live"
judges = ["exact"]
window = "1m"
lateness = "0s"
every = "2s"
catch_up = 3

[online.{SCHEDULE}.sampling]
rate = 1.0
"""


def write_traces(path: Path, now: datetime, per_minute: int = 12) -> None:
    """``per_minute`` traces in each of the five minutes before ``now``'s and the two after it."""
    size = parse_size("1m")
    with path.open("w") as f:
        for back in range(-2, 6):
            window = window_at(size, now - timedelta(minutes=back))
            for i in range(per_minute):
                ts = window.start + timedelta(seconds=i * 60 / per_minute + 1)
                f.write(json.dumps({"id": f"{window.id}/{i}", "input": "q", "output": f"answer {i % 3}",
                                    "expected": "answer 1", "ts": ts.isoformat()}) + "\n")


class Flower:
    """``judgeq flower`` on a free port, and its authenticated API."""

    def __init__(self, env: dict[str, str], log: Path | None = None) -> None:
        """Started; its output to ``log`` if given, else discarded."""
        self.base = f"http://127.0.0.1:{free_port()}"
        port = self.base.rsplit(":", 1)[1]
        with open(log or os.devnull, "wb") as out:
            self.proc = subprocess.Popen(judgeq_cmd() + ["flower", "--port", port], env=env, cwd=REPO,
                                         stdout=out, stderr=subprocess.STDOUT)

    def up(self) -> bool:
        try:
            return httpx.get(f"{self.base}/healthcheck", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def apply(self, body: dict[str, Any] | bytes, auth: tuple[str, str] | None = AUTH) -> httpx.Response:
        url = f"{self.base}/api/task/async-apply/judgeq.budget_set"
        if isinstance(body, bytes):
            return httpx.post(url, content=body, headers={"Content-Type": "application/json"}, auth=auth,
                              timeout=10)
        return httpx.post(url, json=body, auth=auth, timeout=10)

    def task(self, task_id: str) -> dict[str, Any]:
        """What Flower knows of a task from the workers' events ({} before the first event)."""
        resp = httpx.get(f"{self.base}/api/task/info/{task_id}", auth=AUTH, timeout=10)
        return resp.json() if resp.status_code == 200 else {}

    def tasks(self, name: str) -> list[dict[str, Any]]:
        """The tasks named ``name`` Flower has seen, as its task list shows them."""
        resp = httpx.get(f"{self.base}/api/tasks", params={"taskname": name}, auth=AUTH, timeout=10)
        return list(resp.json().values()) if resp.status_code == 200 else []

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def ledger(pg_url: str) -> Iterator[Ledger]:
    with Ledger(pg_url) as ledger:
        yield ledger


def budget_rates(ledger: Ledger) -> dict[str, SamplingRate]:
    """The rates in force the budget controller set for the schedule's judge, by stratum."""
    return {r.stratum: r for r in ledger.budgets.rates_in_force(schedule=SCHEDULE, judge="exact") if r.set_by == "budget"}


def test_a_budget_set_through_flower_sets_the_next_ticks_rates(tmp_path: Path, redis_url: str, pg_url: str,
                                                                ledger: Ledger) -> None:
    (tmp_path / "judgeq.toml").write_text(CONFIG)
    write_traces(tmp_path / "traces.jsonl", datetime.now(UTC))
    env = base_env(JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=pg_url, JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"),
                   JUDGEQ_BUDGET_TICK_S="2", FLOWER_BASIC_AUTH=":".join(AUTH))
    ledger.budgets.budgets()  # the schema, before three processes race to create it
    worker = Worker("local", env, "--concurrency", "2")
    beat = Beat(env)
    flower = Flower(env)
    try:
        worker.wait_ready()
        wait_until(flower.up, 60, "Flower's healthcheck")

        def state() -> str:
            return (f"history {[(c.scope, c.new_usd, c.via) for c in ledger.budgets.history()]}, "
                    f"rates {[(r.stratum, r.rate, r.set_by) for r in ledger.budgets.rates_in_force()]};\n"
                    f"beat:\n{beat.log()}\nworker:\n{worker.log()[-4000:]}")

        # Beat judges the closed windows: the traffic the budget tick will plan from. No budget, no rates.
        wait_until(lambda: len(ledger.spend.recent_window_counts(SCHEDULE, "exact", datetime.now(UTC) - timedelta(hours=1)))
                   >= 2, 30, lambda: f"two windows judged; {state()}")
        assert budget_rates(ledger) == {} and ledger.budgets.history() == []

        # Flower's API wants its credentials: without them nothing is sent.
        assert flower.apply({"kwargs": {"judge": "exact", "usd_per_day": 1}}, auth=None).status_code == 401

        resp = flower.apply({"kwargs": {"judge": "exact", "usd_per_day": 1.5}})
        assert resp.status_code == 200, resp.text
        wait_until(lambda: flower.task(resp.json()["task-id"]).get("state") == "SUCCESS", 30,
                   lambda: f"budget_set succeeded: {flower.task(resp.json()['task-id'])}; {state()}")
        assert "judge:exact: None -> 1.5 USD/day" in flower.task(resp.json()["task-id"])["result"]
        (change,) = ledger.budgets.history()
        assert (change.scope, change.old_usd, change.new_usd, change.via, change.who) == (
            "judge:exact", None, 1.5, "flower", "ops")  # who: the logged-in Flower user (scheduler/flower_pages)
        assert ledger.budgets.budgets() == {"judge:exact": 1.5}
        # Beat fires the budget tick every JUDGEQ_BUDGET_TICK_S (redbeat keeps its entry in Redis).
        broker = redis.Redis.from_url(redis_url)
        try:
            entry = json.loads(broker.hget("judgeq:beat:budget", "definition") or "{}")
        finally:
            broker.close()
        assert entry.get("task") == "judgeq.budget_tick" and entry["schedule"]["every"] == 2.0, entry
        # The next tick plans the minute in progress: the judge's calls are free (a local judge), so every trace.
        wait_until(lambda: budget_rates(ledger).get("all") is not None, 20, lambda: f"the budget's rates; {state()}")
        first = budget_rates(ledger)["all"]
        assert first.rate == 1.0 and first.updated_at >= change.at
        assert "the window's money covers every trace" in first.reason
        decided = ledger.budgets.decisions(judge="exact", limit=1)
        assert decided and decided[0].schedule == SCHEDULE and decided[0].window is not None
        # Flower's task list shows the ticks, each with its one-line summary of the decisions.
        wait_until(lambda: any("$1.50 left" in str(t.get("result")) for t in flower.tasks("judgeq.budget_tick")),
                   20, lambda: f"a budget tick in Flower: {flower.tasks('judgeq.budget_tick')}")
        (tick, *_) = [t for t in flower.tasks("judgeq.budget_tick") if "$1.50 left" in str(t.get("result"))]
        assert f"{SCHEDULE}/exact " in tick["result"] and ": rates all 1; $1.50 left; " in tick["result"]

        # Cut to nothing: the tick after the change sets rate 0.
        resp = flower.apply({"kwargs": {"judge": "exact", "usd_per_day": 0}})
        assert resp.status_code == 200, resp.text
        wait_until(lambda: len(ledger.budgets.history()) == 2, 30, lambda: f"the second change; {state()}")
        cut = ledger.budgets.history()[0]
        assert (cut.old_usd, cut.new_usd, cut.via) == (1.5, 0.0, "flower")
        wait_until(lambda: budget_rates(ledger)["all"].rate == 0.0, 20, lambda: f"rate 0; {state()}")
        now = budget_rates(ledger)["all"]
        assert now.updated_at >= cut.at and "budget spent" in now.reason

        # Bad values fail the task with a message saying what to send, and change nothing.
        bad = {
            "negative": (flower.apply({"kwargs": {"judge": "exact", "usd_per_day": -5}}), "-5 is not a budget"),
            "minus zero": (flower.apply({"kwargs": {"judge": "exact", "usd_per_day": -0.0}}),
                           "usd_per_day -0 is not a budget (negative)"),
            "NaN text": (flower.apply({"kwargs": {"judge": "exact", "usd_per_day": "NaN"}}), "str, not a number"),
            "NaN": (flower.apply(b'{"kwargs": {"judge": "exact", "usd_per_day": NaN}}'), "not a finite number"),
            "unknown judge": (flower.apply({"kwargs": {"judge": "nope", "usd_per_day": 3}}), "unknown judge 'nope'"),
            "no judge": (flower.apply({"kwargs": {"usd_per_day": 3}}), "name the budget"),
            "too much": (flower.apply({"kwargs": {"judge": "exact", "usd_per_day": 1e13}}),
                         "more than the most a budget may be"),
            # 10**400: a whole number JSON carries exactly, which float() cannot hold (it was an OverflowError).
            "huge": (flower.apply(b'{"kwargs": {"judge": "exact", "usd_per_day": 1' + b"0" * 400 + b"}}"),
                     "about 10^400) is not a budget (more than the most"),
            "line in note": (flower.apply({"kwargs": {"judge": "exact", "usd_per_day": 2, "note": "a\nb"}}),
                             "note holds a control or invisible character"),
        }
        for what, (sent, _) in bad.items():
            assert sent.status_code == 200, (what, sent.text)
        # who is the logged-in user's: another one, escapes or not, is refused before anything is sent.
        other = flower.apply({"kwargs": {"judge": "exact", "usd_per_day": 2, "who": "\x1b[2J\x1b[31mroot"}})
        assert other.status_code == 400 and "who is recorded as the logged-in Flower user ('ops')" in other.text
        ids = {what: sent.json()["task-id"] for what, (sent, _) in bad.items()}
        wait_until(lambda: all(flower.task(i).get("state") == "FAILURE" for i in ids.values()), 30,
                   lambda: f"every bad call failed: {[flower.task(i) for i in ids.values()]}; {state()}")
        for what, (_, says) in bad.items():
            info = flower.task(ids[what])
            assert says in info["exception"], (what, info)
        assert len(ledger.budgets.history()) == 2 and ledger.budgets.budgets() == {"judge:exact": 0.0}
        assert budget_rates(ledger)["all"].rate == 0.0
    finally:
        flower.stop()
        beat.stop()
        worker.stop()
