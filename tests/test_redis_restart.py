"""Redis restarted under load: every worker rides it out and keeps consuming.

A private Redis with AOF, two prefork workers and one threads worker on the
local queue. Three times, a small run of slow chunks is submitted; once every
worker holds chunks it has not acknowledged (and, the queue being empty, waits
in BRPOP for more), Redis is killed and started again on the same port. That
is the state in which the prefork workers died before workers/consumer.py:
"Unrecoverable error: AttributeError("'NoneType' object has no attribute
'hostname'")". Afterwards every run is complete with one row per item, and a
new run is judged by all three workers.

AOF keeps the queue and the unacknowledged chunks, which come back at once
or after the visibility timeout. What AOF cannot keep is a chunk in transit
at the instant Redis dies (BRPOP took it off the list and the worker had not
yet recorded it as unacknowledged); ``judgeq resume`` re-enqueues those, as
README's Reliability section says.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .ledger_probe import rows_and_keys
from .cli_runner import invoke
from .processes import RedisServer, Worker, base_env, free_port, wait_until
from .test_fleet import write_dataset

pytestmark = pytest.mark.timeout(180)

RESTARTS = 3
CHUNK = 5
#: Chunks per run: about two per worker (its two slots), under its prefetch of 8: the queue runs empty
#: and each worker waits in BRPOP while it holds unacknowledged chunks, the state that crashed it.
CHUNKS = 6
VISIBILITY_S = 8
CONFIG = """
[judges.slow]
type = "local"
builtin = "noop"
delay_s = 0.3
"""


def holds_chunks_since(worker: Worker, mark: int) -> bool:
    """Whether ``worker`` received a chunk since log line ``mark``; fails at once if it has exited."""
    if worker.proc.poll() is not None:
        raise AssertionError(f"worker {worker.name} exited ({worker.proc.returncode}):\n{worker.log()[-4000:]}")
    return any(" received" in line for line in worker.lines[mark:])


def missing(pg_url: str, runs: list[str]) -> int:
    return sum(CHUNKS * CHUNK - rows_and_keys(pg_url, run)[0] for run in runs)


def settle(pg_url: str, runs: list[str], quiet_s: float, timeout: float) -> int:
    """Wait until the runs are complete or their rows stop moving for ``quiet_s``; items still missing."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        left = missing(pg_url, runs)
        if left == 0:
            return 0
        if left != last:
            last, since = left, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return left
        time.sleep(0.5)
    raise AssertionError(f"runs {runs} still moving after {timeout}s ({last} items missing)")


def test_workers_keep_consuming_across_redis_restarts(tmp_path: Path, pg_url: str) -> None:
    (tmp_path / "redis").mkdir()
    redis = RedisServer(tmp_path / "redis", appendonly=True).start()
    (tmp_path / "judgeq.toml").write_text(CONFIG)
    env = base_env(
        JUDGEQ_BROKER_URL=f"{redis.url}/0",
        JUDGEQ_LEDGER_URL=pg_url,
        JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"),
        JUDGEQ_CHUNK_LOCAL=str(CHUNK),
        JUDGEQ_POLL_S="0.2",
        # A chunk takes 1.5 s; those a dead connection held come back after this.
        JUDGEQ_VISIBILITY_TIMEOUT=str(VISIBILITY_S),
        JUDGEQ_RESTORE_INTERVAL="1",
    )
    prefork = [Worker("local", env, "--concurrency", "2", name=f"prefork{k}@restart") for k in range(2)]
    threads = Worker("local", env, "--pool", "threads", "--concurrency", "2", name="threads@restart")
    workers = [*prefork, threads]
    runs: list[str] = []
    try:
        for worker in workers:
            worker.wait_ready()
        for restart in range(RESTARTS):
            marks = [len(w.lines) for w in workers]
            # Every worker is alive, (re)connected and took a chunk it has not acknowledged yet. A worker
            # that reconnected first may take a whole run (its prefetch holds six chunks) before the others
            # wait in BRPOP again: then another run is submitted for them, at most three in all.
            for extra in range(3):
                data = write_dataset(tmp_path / f"run{restart}-{extra}.jsonl", CHUNKS * CHUNK)
                sub = invoke(["submit", str(data), "--judge", "slow"], env)
                assert sub.returncode == 0, sub.stderr
                runs.append(sub.stdout.strip().splitlines()[0])
                try:
                    wait_until(lambda: all(holds_chunks_since(w, m) for w, m in zip(workers, marks)), 20,
                               lambda: f"every worker taking chunks before restart {restart + 1}; " + "; ".join(
                                   f"{w.name} took none, its log since:\n{''.join(w.lines[m:])[-3000:]}"
                                   for w, m in zip(workers, marks) if not holds_chunks_since(w, m)))
                    break
                except AssertionError:
                    if extra == 2:
                        raise
            redis.restart(kill=True)

        # Unacknowledged chunks come back; only a chunk in transit (one per connection at most) is lost.
        left = settle(pg_url, runs, quiet_s=VISIBILITY_S + 4, timeout=90)
        assert left <= RESTARTS * len(workers) * CHUNK, f"{left} items lost, more than chunks in transit"
        for run_id in runs:
            if rows_and_keys(pg_url, run_id)[0] < CHUNKS * CHUNK:
                resumed = invoke(["resume", run_id, "--wait", "--timeout", "60"], env)
                assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert [rows_and_keys(pg_url, run_id) for run_id in runs] == [(CHUNKS * CHUNK,) * 2] * len(runs)

        # Every worker still consumes: a new run completes, and each of them judged part of it.
        marks = [len(w.lines) for w in workers]
        data = write_dataset(tmp_path / "after.jsonl", CHUNKS * CHUNK)
        after = invoke(["submit", str(data), "--judge", "slow", "--wait", "--timeout", "60"], env)
        assert after.returncode == 0, after.stdout + after.stderr
        for worker, mark in zip(workers, marks):
            log = worker.log()
            assert worker.proc.poll() is None, f"{worker.name} exited:\n{log[-4000:]}"
            assert "Unrecoverable error" not in log, log[-4000:]
            assert log.count("Connection to broker lost") >= RESTARTS, f"{worker.name} missed a restart"
            assert any(" succeeded in " in line for line in worker.lines[mark:]), \
                f"{worker.name} judged nothing of the run after the restarts"
    finally:
        for worker in workers:
            worker.stop()
            (tmp_path / f"{worker.name}.log").write_text(worker.log())
        redis.stop()


def test_a_chunk_starting_while_redis_is_down_is_judged_not_failed() -> None:
    """The delivery counter cannot reach Redis: the chunk counts as a first delivery.

    Before, the counter's ConnectionError failed the task, and a failed task is
    acknowledged: once Redis was back the chunk was gone with no row (seen
    under restarts with a backlog of chunks).
    """
    from scheduler.settings import CliSettings
    from workers.tasks import ProcessState

    assert ProcessState(CliSettings(broker_url=f"redis://127.0.0.1:{free_port()}/0")).deliveries("task:0") == 1
