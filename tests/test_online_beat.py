"""A real ``judgeq beat`` firing a one-minute schedule into a real worker, and restarted.

Traces are written relative to now, a few every minute over the last seven
minutes, so that beat's first tick finds more closed windows than it may
catch up: it judges the newest ``catch_up`` only, oldest first. Beat then
keeps firing every two seconds, and is restarted; the ledger must still
hold one run per window and judge, and one row per trace and judge.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from online.windows import parse_size, window_at

from .ledger_probe import rows_and_keys
from .processes import Worker, base_env, run_cli, start_session, wait_until

# About 18 s: two process starts, five ticks 2 s apart, a beat restart and two ticks more.
pytestmark = pytest.mark.timeout(120)

SCHEDULE = "minutely"
JUDGES = ("exact", "contains")
CATCH_UP = 3
PER_MINUTE = 6
MINUTE = timedelta(minutes=1)

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
judges = {json.dumps(list(JUDGES))}
window = "1m"
lateness = "0s"
every = "2s"
catch_up = {CATCH_UP}

[online.{SCHEDULE}.sampling]
rate = 1.0
"""


class Beat:
    """A ``judgeq beat`` process in its own process group, its log kept for failure messages."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.proc = start_session(["beat"], env)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def log(self) -> str:
        return "".join(self.lines[-40:])


def write_traces(path: Path, now: datetime) -> dict[str, int]:
    """PER_MINUTE traces in each of the seven minutes before ``now``'s and two after; traces per window id."""
    size = parse_size("1m")
    counts: dict[str, int] = {}
    with path.open("w") as f:
        for back in range(-2, 8):
            window = window_at(size, now - back * MINUTE)
            counts[window.id] = PER_MINUTE
            for i in range(PER_MINUTE):
                ts = window.start + timedelta(seconds=i * 60 / PER_MINUTE + 1)
                f.write(json.dumps({"id": f"{window.id}/{i}", "input": "q", "output": f"answer {i}",
                                    "expected": f"answer {i}", "ts": ts.isoformat(),
                                    "metadata": {"session_id": f"s{i % 2}"}}) + "\n")
    return counts


def online_runs(pg_url: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(pg_url)
    try:
        if "runs" not in sa.inspect(engine).get_table_names():
            return []
        with engine.connect() as conn:
            found = conn.execute(sa.text("select id, \"window\", judges, status, created_at from runs "
                                         "where kind = 'online' order by created_at, id"))
            return [dict(row._mapping) for row in found]
    finally:
        engine.dispose()


def ticks(broker: redis.Redis) -> int:
    """How often beat has fired the schedule, from redbeat's state in Redis (0 before the first)."""
    meta = broker.hget(f"judgeq:beat:online:{SCHEDULE}", "meta")
    return int(json.loads(meta).get("total_run_count", 0)) if meta else 0


def check_windows(pg_url: str, counts: dict[str, int]) -> dict[str, list[str]]:
    """Each judged window: one run per judge, each with one row per trace, every row there. Runs by window."""
    by_window: dict[str, list[str]] = defaultdict(list)
    for run in online_runs(pg_url):
        (judge,) = run["judges"]
        by_window[run["window"]].append(judge)
        assert rows_and_keys(pg_url, run["id"]) == (counts[run["window"]], counts[run["window"]]), run
    for window, judges in by_window.items():
        assert sorted(judges) == sorted(JUDGES), f"window {window}: runs of {judges}"
    return dict(by_window)


def all_done(pg_url: str) -> bool:
    runs = online_runs(pg_url)
    return bool(runs) and all(run["status"] == "done" for run in runs)


@pytest.fixture
def env(tmp_path: Path, redis_url: str, pg_url: str) -> dict[str, str]:
    (tmp_path / "judgeq.toml").write_text(CONFIG)
    return base_env(JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=pg_url,
                    JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"), JUDGEQ_CHUNK_LOCAL="4")


@pytest.fixture
def broker(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_beat_judges_each_closed_window_once_catching_up_oldest_first(tmp_path: Path, env: dict[str, str],
                                                                        pg_url: str, broker: redis.Redis) -> None:
    counts = write_traces(tmp_path / "traces.jsonl", datetime.now(UTC))
    worker = Worker("local", env, "--concurrency", "2").wait_ready()
    beat = Beat(env)
    restarted: Beat | None = None
    try:
        def state() -> str:
            return (f"runs {[(r['window'], r['status']) for r in online_runs(pg_url)]}, ticks {ticks(broker)};\n"
                    f"beat:\n{beat.log()}\nworker:\n{worker.log()[-3000:]}")

        wait_until(lambda: len(online_runs(pg_url)) >= CATCH_UP * len(JUDGES) and all_done(pg_url), 30,
                   lambda: f"the first tick's {CATCH_UP} windows judged; {state()}")

        # The first tick: the newest CATCH_UP closed windows, oldest first, none of the older ones in the file.
        runs = online_runs(pg_url)
        first = [r["window"] for r in runs[:CATCH_UP * len(JUDGES):len(JUDGES)]]
        starts = [datetime.fromisoformat(w).replace(tzinfo=UTC) for w in first]
        assert starts == [starts[0] + i * MINUTE for i in range(CATCH_UP)], first
        fired = runs[0]["created_at"].replace(tzinfo=UTC)
        newest_closed = window_at(parse_size("1m"), fired - MINUTE).start
        assert starts[-1] in (newest_closed, newest_closed - MINUTE)  # the tick may straddle a minute
        assert min(r["window"] for r in runs) == first[0]
        assert sum(1 for w in counts if w < first[0]) >= 2  # older closed windows were there, left alone

        wait_until(lambda: ticks(broker) >= 5, 30, lambda: f"five ticks; {state()}")
        check_windows(pg_url, counts)

        beat.stop()
        before = ticks(broker)
        restarted = beat = Beat(env)
        # redbeat kept the schedule's state in Redis: the count goes on from where it was, not from 1.
        wait_until(lambda: ticks(broker) >= before + 2, 30, lambda: f"two more ticks after {before}; {state()}")
        wait_until(lambda: all_done(pg_url), 30, lambda: f"every judged window done; {state()}")
        judged = check_windows(pg_url, counts)
        assert set(first) <= set(judged) and len(judged) <= CATCH_UP + 1
    finally:
        beat.stop()
        if restarted is not None:
            restarted.stop()
        worker.stop()


# -- the tick task and beat's schedule ------------------------------------------------------------------------


def test_the_tick_task_refuses_bad_arguments_without_raising(tmp_path: Path, env: dict[str, str], pg_url: str,
                                                             redis_url: str) -> None:
    """Anyone who can write to the broker (or log in to Flower) can send the tick any argument."""
    from workers.app import create_app
    from workers.settings import WorkerSettings

    bad: list[Any] = [123, "two words", [SCHEDULE], None, "x" * 300, "../minutely", {"schedule": SCHEDULE}]
    worker = Worker("local", env, "--concurrency", "1").wait_ready()
    sender = create_app(WorkerSettings(broker_url=redis_url))
    try:
        sent = {sender.send_task("judgeq.online_tick", args=[arg], queue="local").id: arg for arg in bad}
        unknown = sender.send_task("judgeq.online_tick", args=["nope"], queue="local").id

        def finished(task_id: str) -> bool:
            return f"online_tick[{task_id}] succeeded" in worker.log()

        wait_until(lambda: all(finished(t) for t in [*sent, unknown]), 30,
                   lambda: f"every tick acknowledged; worker:\n{worker.log()[-3000:]}")
        log = worker.log()
        assert log.count("online tick refused") == len(bad)
        assert "online tick of nope: " in log and "no [online.nope] table" in log
        assert "raised" not in log and "Traceback" not in log
        assert online_runs(pg_url) == []
    finally:
        worker.stop()


def test_beat_schedule_fires_each_schedules_tick_on_the_local_queue(tmp_path: Path) -> None:
    from celery.beat import ScheduleEntry

    from online.schedules import load_schedules
    from scheduler.beat import BEAT_KEY_PREFIX, TICK_TASK, beat_config, beat_schedule
    from scheduler.settings import CliSettings
    from workers.app import create_worker

    app = create_worker(CliSettings())  # the app beat, Flower and workers start with

    (tmp_path / "judgeq.toml").write_text(CONFIG + """
[online.daily]
source = "live"
judges = ["exact"]
window = "1d"
""")
    schedules = load_schedules(tmp_path / "judgeq.toml")
    entries = beat_schedule(schedules)
    assert list(entries) == ["online:daily", f"online:{SCHEDULE}", "budget", "prune"]  # prune: daily (online/retention.py)
    assert entries["budget"]["task"] == "judgeq.budget_tick" and entries["budget"]["schedule"] == 60.0
    assert entries[f"online:{SCHEDULE}"] == {"task": TICK_TASK, "schedule": 2.0, "args": [SCHEDULE],
                                            "options": {"queue": "local", "expires": 2.0}}
    assert entries["online:daily"]["schedule"] == 86400.0  # every defaults to the window's length
    assert TICK_TASK in app.tasks  # the task beat names is the one workers run
    json.dumps(entries)  # beat's state is JSON in Redis (redbeat), never pickle
    for name, entry in entries.items():  # Celery reads each entry as we mean it
        parsed = ScheduleEntry(name=name, app=app, **entry)
        assert parsed.schedule.run_every == timedelta(seconds=entry["schedule"])
        assert parsed.args == entry["args"] and parsed.options["queue"] == "local"
    assert beat_schedule({}) == {}

    config = beat_config(schedules, "redis://redis:6379/0")
    assert config["beat_schedule"] == entries
    assert config["beat_scheduler"] == "redbeat.RedBeatScheduler"
    assert config["redbeat_redis_url"] == "redis://redis:6379/0" and config["redbeat_key_prefix"] == BEAT_KEY_PREFIX
    assert config["beat_max_loop_interval"] == 1.0  # half the shortest cadence: a 2 s schedule is not late


@pytest.mark.parametrize(("table", "says"), [
    ('[online."two words"]\nsource = "live"\njudges = ["exact"]\nwindow = "1h"\n', "is not a schedule name"),
    ('[online.other]\nsource = "nope"\njudges = ["exact"]\nwindow = "1h"\n', "unknown source 'nope'"),
    ('[online.other]\nsource = "live"\njudges = ["nope"]\nwindow = "1h"\n', "unknown judge 'nope'"),
])
def test_beat_refuses_a_schedule_every_tick_would_fail(tmp_path: Path, env: dict[str, str], table: str,
                                                       says: str) -> None:
    (tmp_path / "judgeq.toml").write_text(CONFIG + table)
    res = run_cli(["beat"], env, timeout=60)
    assert res.returncode == 2, res.stderr
    assert says in res.stderr


def test_beat_without_its_redis_exits_3(tmp_path: Path, env: dict[str, str]) -> None:
    from .processes import free_port

    res = run_cli(["beat"], dict(env, JUDGEQ_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0"), timeout=60)
    assert res.returncode == 3, res.stderr
    assert "cannot reach the broker" in res.stderr and "Traceback" not in res.stderr


def test_a_second_beat_says_once_that_it_waits_for_the_first(tmp_path: Path, env: dict[str, str],
                                                              broker: redis.Redis) -> None:
    """redbeat's lock lets one beat fire; the second waited without a word. It says why, once, and takes over."""
    from scheduler.beat import BEAT_LOCK_KEY

    write_traces(tmp_path / "traces.jsonl", datetime.now(UTC))
    first = Beat(env)
    second: Beat | None = None
    try:
        wait_until(lambda: broker.exists(BEAT_LOCK_KEY) == 1, 30, lambda: f"the first beat's lock; {first.log()}")
        assert "another beat holds the lock" not in first.log()
        second = Beat(env)
        waiting = f"beat: another beat holds the lock {BEAT_LOCK_KEY}"
        wait_until(lambda: waiting in "".join(second.lines), 30, lambda: f"the second beat's line; {second.log()}")
        assert "this one waits, and fires once that one stops" in second.log()
        first.stop()  # releases the lock: the second takes it
        wait_until(lambda: "Acquired lock" in "".join(second.lines), 30, lambda: f"the take-over; {second.log()}")
        assert "".join(second.lines).count(waiting) == 1
    finally:
        first.stop()
        if second is not None:
            second.stop()
