"""Waiting for a run rides out what the workers ride out, and shows judging's own rate.

The story: ``submit --wait`` polls the ledger. When PostgreSQL restarts, the
workers put their chunks back and retry; the waiter keeps polling, says so on
its progress line, and exits 0 once every row is written. Only an outage
longer than ``JUDGEQ_WAIT_OUTAGE_S`` (or ``--timeout``) ends the wait, with
exit 3. The rate on the progress line counts rows written while waiting, not
the rows a fleet wrote while the submit was still enqueueing.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.views.progress import ProgressView

from .ledger_probe import rows_and_keys
from .pg_server import PostgresServer
from .processes import Worker, base_env, start_cli, wait_until

CONFIG = """
[judges.slow]
type = "local"
builtin = "noop"
delay_s = 0.02
"""


@pytest.fixture
def private_pg() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test's own, which it may stop and start."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.remove()


def fleet(tmp_path: Path, ledger_url: str, redis_url: str, n: int, **extra: str) -> tuple[Path, dict[str, str]]:
    (tmp_path / "judgeq.toml").write_text(CONFIG)
    data = tmp_path / "golden.jsonl"
    data.write_text("".join(json.dumps({"id": f"i{i}", "output": f"a {i}"}) + "\n" for i in range(n)))
    env = base_env(JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=ledger_url, JUDGEQ_POLL_S="0.2",
                   JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"), JUDGEQ_CHUNK_LOCAL="20", **extra)
    return data, env


def count(url: str, table: str, where: str = "true") -> int:
    """Rows in a ledger table (that match ``where``); -1 while the server is down or the table not yet made."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"select count(*) from {table} where {where}")).scalar_one())
    except Exception:
        return -1
    finally:
        engine.dispose()


@pytest.mark.timeout(180)
def test_submit_wait_rides_out_a_postgres_restart(tmp_path: Path, private_pg: PostgresServer,
                                                  redis_url: str) -> None:
    data, env = fleet(tmp_path, private_pg.url, redis_url, 400)
    worker = Worker("local", env, "--concurrency", "2").wait_ready()
    try:
        proc = start_cli(["submit", str(data), "--judge", "slow", "--wait", "--json"], env)
        wait_until(lambda: count(private_pg.url, "scores") >= 40, 60, "the first rows")
        private_pg.stop()
        time.sleep(4)  # the restart's downtime: nothing to wait for
        private_pg.start()
        out, err = proc.communicate(timeout=150)

        assert proc.returncode == 0, err
        assert "ledger unreachable" in err and "ledger back" in err
        payload = json.loads(out)
        assert payload["complete"] is True
        assert payload["run"]["status"] == "done"
        assert rows_and_keys(private_pg.url, payload["run"]["id"]) == (400, 400)
    finally:
        worker.stop()


@pytest.mark.timeout(120)
def test_wait_gives_up_after_the_outage_bound_with_exit_3(tmp_path: Path, private_pg: PostgresServer,
                                                          redis_url: str) -> None:
    data, env = fleet(tmp_path, private_pg.url, redis_url, 50, JUDGEQ_WAIT_OUTAGE_S="3")
    proc = start_cli(["submit", str(data), "--judge", "slow", "--wait"], env)
    # Every item stored and sent: the submit is waiting now (no worker: nothing is judged).
    wait_until(lambda: count(private_pg.url, "runs", "status = 'running'") == 1, 60, "the run sent whole")
    private_pg.stop()
    stopped = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert 3 <= time.monotonic() - stopped < 20
    assert "unreachable for 3 s while waiting" in err and "resumable" in err
    assert "Traceback" not in err


def test_rate_counts_rows_written_while_waiting_not_those_already_there() -> None:
    clock = [100.0]
    out = io.StringIO()
    view = ProgressView("run r1", 100_000, stream=out, every_s=5, clock=lambda: clock[0])
    view.update(90_000)  # the fleet wrote these while the submit was enqueueing
    clock[0] += 5
    view.update(90_500)
    clock[0] += 5
    view.update(91_000)
    lines = out.getvalue().splitlines()
    assert lines[0] == "run r1: 90000/100000 (90%)"  # no rate yet: nothing measured
    assert lines[1] == "run r1: 90500/100000 (90%, 100/s)"
    assert lines[2] == "run r1: 91000/100000 (91%, 100/s)"


def test_rate_is_over_a_recent_window() -> None:
    clock = [0.0]
    out = io.StringIO()
    view = ProgressView("run r1", 10**6, stream=out, every_s=1, clock=lambda: clock[0])
    for _ in range(60):  # a minute at 1,000/s, then 10/s
        clock[0] += 1
        view.update(int(clock[0] * 1000))
    base = int(clock[0] * 1000)
    for k in range(1, 61):
        clock[0] += 1
        view.update(base + 10 * k)
    assert view.rate() == pytest.approx(10, rel=0.05)


def test_a_state_change_is_shown_at_once() -> None:
    clock = [0.0]
    out = io.StringIO()
    view = ProgressView("run r1", 10, stream=out, every_s=5, clock=lambda: clock[0])
    view.update(3)
    clock[0] += 1
    view.update(3, "ledger unreachable for 0 s", now=True)
    clock[0] += 1
    view.update(3, "ledger unreachable for 1 s")  # within the interval: not repeated
    assert out.getvalue().splitlines() == ["run r1: 3/10 (30%)", "run r1: 3/10 (30%, 0/s) ledger unreachable for 0 s"]


def test_wait_for_raises_once_the_outage_bound_passes(tmp_path: Path) -> None:
    """Nothing listens at the ledger's address: polling gives up after ``outage_s``, not at once."""
    from ledger.errors import LedgerUnavailable
    from ledger.store import Ledger
    from runs.waiting import wait_for

    from .processes import free_port

    ledger = Ledger(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")
    out = io.StringIO()
    started = time.monotonic()
    with pytest.raises(LedgerUnavailable, match=r"unreachable for 2 s while waiting for run r1"):
        wait_for("r1", ledger, ProgressView("run r1", 10, stream=out), timeout_s=None, poll_s=0.1, outage_s=2)
    assert 2 <= time.monotonic() - started < 10
    assert "ledger unreachable, still waiting up to 2 s" in out.getvalue()
    with pytest.raises(LedgerUnavailable, match=r"when --timeout 1 s ran out"):
        wait_for("r1", ledger, ProgressView("run r1", 10, stream=out), timeout_s=1, poll_s=0.1, outage_s=60)
