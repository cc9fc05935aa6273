"""Drift checks scheduled by beat: the ``[online.NAME.drift]`` table, beat's entry, and the task in a real worker.

The worker test judges the last seven closed hours through the window job
(fr's pass rate falls in the newest), then sends ``judgeq.drift_tick`` to a
real worker on Redis with a PostgreSQL ledger, as beat would: the check is
recorded as run via beat and the alert reaches the webhook whose URL the
variable named by ``webhook_env`` holds.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from online.errors import OnlineConfigError
from online.schedules import load_schedules
from online.windows import parse_size, window_at

from .processes import Worker, base_env, wait_until
from .test_drift_cli import CONFIG, Hook, fill

pytestmark = pytest.mark.timeout(180)

DRIFT = """
[online.hourly.drift]
short = "1h"
long = "6h"
by = ["metadata.locale"]
webhook_env = "JQTEST_DRIFT_HOOK"
"""


def test_the_drift_table_gives_beat_an_entry_per_schedule(tmp_path: Path) -> None:
    from scheduler.beat import DRIFT_TASK, beat_schedule
    from scheduler.settings import CliSettings
    from workers.app import create_worker

    app = create_worker(CliSettings())

    (tmp_path / "judgeq.toml").write_text(CONFIG + DRIFT + 'every = "10m"\nmin_drop = 0.1\n')
    schedules = load_schedules(tmp_path / "judgeq.toml")
    spec = schedules["hourly"].drift
    assert spec is not None and spec.by == ("locale",) and spec.min_drop == 0.1
    assert spec.short == timedelta(hours=1) and spec.long == timedelta(hours=6)
    entries = beat_schedule(schedules)
    assert entries["drift:hourly"] == {"task": DRIFT_TASK, "schedule": 600.0, "args": ["hourly"],
                                       "options": {"queue": "local", "expires": 600.0}}
    assert DRIFT_TASK in app.tasks
    json.dumps(entries)
    (tmp_path / "judgeq.toml").write_text(CONFIG)
    assert "drift:hourly" not in beat_schedule(load_schedules(tmp_path / "judgeq.toml"))


@pytest.mark.parametrize(("table", "says"), [
    ('[online.hourly.drift]\nshort = "1d"\nlong = "1h"\n', "[online.hourly.drift]: the long baseline (1h) is shorter"),
    ('[online.hourly.drift]\nlong = 7\n', '[online.hourly.drift] long: write a duration'),
    ('[online.hourly.drift]\nwebhook = "https://hooks.slack.com/x"\n', "unknown key 'webhook'"),
    ('[online.hourly.drift]\nwebhook_env = "https://x"\n', "webhook_env: name the environment variable"),
    ('[online.hourly.drift]\nmin_drop = -0.1\n', "min_drop: -0.1 is not a score drop"),
    ('[online.hourly.drift]\nby = [1]\n', "by: write a list of metadata keys"),
])
def test_a_bad_drift_table_is_named_with_its_key(tmp_path: Path, table: str, says: str) -> None:
    (tmp_path / "judgeq.toml").write_text(CONFIG + table)
    with pytest.raises(OnlineConfigError) as caught:
        load_schedules(tmp_path / "judgeq.toml")
    assert says in str(caught.value) and str(tmp_path / "judgeq.toml") in str(caught.value)


def test_beat_checks_as_of_the_newest_window_whose_run_is_done(tmp_path: Path) -> None:
    from ledger.store import Ledger
    from online.drift_check import as_of

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    start = datetime(2026, 11, 20, tzinfo=UTC)
    fill(tmp_path, url, start, 4, dropped=3)
    with Ledger(url) as ledger:
        runs = {r.window: r.run_id for r in ledger.drift.runs("hourly", "exact")}
        assert as_of(ledger, "hourly", "exact", start + timedelta(hours=9)) == start + timedelta(hours=4)
        assert as_of(ledger, "hourly", "exact", start + timedelta(hours=3, minutes=59)) == start + timedelta(hours=3)
        ledger.runs.set_status(runs["2026-11-20T03"], "running")  # all its rows are in: beat's check marks it done
        assert as_of(ledger, "hourly", "exact", start + timedelta(hours=9)) == start + timedelta(hours=4)
        assert ledger.runs.get_run(runs["2026-11-20T03"]).status == "done"
        ledger.runs.set_status(runs["2026-11-20T03"], "submitting")  # still being sent: the check waits for it
        assert as_of(ledger, "hourly", "exact", start + timedelta(hours=9)) == start + timedelta(hours=3)
        assert as_of(ledger, "hourly", "exact", start) == start  # nothing done by then: the limit itself


def test_the_drift_tick_in_a_real_worker_records_the_check_and_posts_the_alert(
        tmp_path: Path, pg_url: str, redis_url: str) -> None:
    from workers.app import create_app
    from workers.settings import WorkerSettings

    now = datetime.now(UTC)
    if (now + timedelta(seconds=90)).hour != now.hour:  # the tick must see the hour this test fills
        wait_until(lambda: datetime.now(UTC).hour != now.hour, 120, "the next hour")
        now = datetime.now(UTC)
    newest = window_at(parse_size("1h"), now).start  # the hour in progress; the seven before it are closed
    fill(tmp_path, pg_url, newest - timedelta(hours=7), 7, dropped=6)
    (tmp_path / "judgeq.toml").write_text((tmp_path / "judgeq.toml").read_text() + DRIFT)
    hook = Hook()
    env = base_env(JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=pg_url, JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"),
                   JQTEST_DRIFT_HOOK=hook.url)
    worker = Worker("local", env, "--concurrency", "1").wait_ready()
    sender = create_app(WorkerSettings(broker_url=redis_url))
    try:
        for arg in (123, "../hourly", "nope", "hourly"):
            sender.send_task("judgeq.drift_tick", args=[arg], queue="local")
        engine = sa.create_engine(pg_url)

        def rows() -> list[dict[str, object]]:
            with engine.connect() as conn:
                return [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM drift_checks"))]

        wait_until(lambda: bool(rows()) and bool(hook.bodies), 60,
                   lambda: f"a recorded check and a posted alert; worker:\n{worker.log()[-3000:]}")
        found = {(r["slice_key"], r["slice"]): r for r in rows()}
        fr = found[("locale", "fr")]
        assert fr["status"] == "alert" and fr["via"] == "beat" and fr["short_n"] == 60
        assert fr["short_windows"] in ([window_at(parse_size("1h"), newest - timedelta(hours=1)).id],
                                       json.dumps([window_at(parse_size("1h"), newest - timedelta(hours=1)).id]))
        assert found[("locale", "en")]["status"] == "ok"
        (posted,) = hook.bodies
        assert posted["body"]["text"].startswith("drift of exact on hourly: ALERT")
        wait_until(lambda: "drift tick of nope" in worker.log(), 30, "the unknown schedule's tick logged")
        log = worker.log()
        assert log.count("drift tick refused") == 2 and "no [online.nope.drift] table" in log
        # The task's result (what Flower's task list shows and searches) starts with what on-call filters for.
        assert "succeeded in" in log and "'ALERT: drift of exact on hourly: ALERT" in log, log[-3000:]
        assert "'REFUSED: not a schedule name'" in log and "'ERROR: " in log

        # Beat's daily prune, in the same worker: a check made 100 days ago goes (the retention is 90 days),
        # today's stay.
        from ledger import Ledger

        from .test_retention import check

        with Ledger(pg_url) as ledger:
            ledger.drift.record([check(datetime.now(UTC) - timedelta(days=100), check_id="ancient")])
            sender.send_task("judgeq.prune", queue="local")
            wait_until(lambda: "pruned 0 budget decisions and 1 drift checks made before" in worker.log(), 30,
                       lambda: f"the prune; worker:\n{worker.log()[-2000:]}")
            assert {c.check_id for c in ledger.drift.checks("hourly", "exact")} == {r["check_id"] for r in rows()}
            assert "ancient" not in {r["check_id"] for r in rows()} and rows()
        assert "Traceback" not in log
        engine.dispose()
    finally:
        worker.stop()
        hook.close()


def test_the_tick_summary_says_alert_or_ok_in_its_first_word(tmp_path: Path, sqlite_url: str) -> None:
    """What on-call filters Flower's task list for: a tick that alerted starts ``ALERT``, one that did not ``OK``."""
    from ledger import Ledger
    from online.drift_check import tick, tick_summary

    now = datetime.now(UTC)
    newest = window_at(parse_size("1h"), now).start
    fill(tmp_path, sqlite_url, newest - timedelta(hours=7), 7, dropped=99)  # no hour dropped: nothing to alert
    config = tmp_path / "judgeq.toml"
    config.write_text(config.read_text() + DRIFT)
    with Ledger(sqlite_url) as ledger:
        quiet = tick(config, "hourly", ledger, now)
    assert quiet and all(r.status == "ok" for r in quiet)
    assert tick_summary(quiet).startswith("OK: drift of exact on hourly: no alert")
    assert tick_summary([]) == "OK: nothing to check"
