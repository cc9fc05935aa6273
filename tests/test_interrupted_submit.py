"""A submit cut off mid-enqueue: by SIGTERM, Ctrl-C, a broker blip or a file that changes under it.

The story: the run row and some of its items are in the ledger, status
"submitting", when the submit stops. SIGTERM and Ctrl-C exit 3 naming the
commands that finish the run (``resume RUN --dataset FILE``) or drop it
(``abandon RUN``); resume with the same file completes it with exactly one
row per item, resume with another file is refused (exit 2). A dataset file
written to while it is streamed is caught: exit 2, the run abandoned.

Each submit publishes one chunk per record (``JUDGEQ_CHUNK_LOCAL=1``), so the
enqueue lasts long enough to be interrupted once its first batch is stored.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from .ledger_probe import rows_and_keys
from .cli_runner import invoke
from .processes import RedisServer, Started, Worker, base_env, start_cli, wait_until
from .test_fleet import CONFIG  # judges "exact" and "slow" (a noop with a delay)

pytestmark = pytest.mark.timeout(180)

N = 10_000


def write_dataset(path: Path, n: int = N) -> Path:
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"i{i}", "input": f"q {i}", "output": f"answer {i}",
                                "expected": f"answer {i}"}) + "\n")
    return path


def env_for(tmp_path: Path, ledger_url: str, broker_url: str | None = None, **extra: str) -> dict[str, str]:
    (tmp_path / "judgeq.toml").write_text(CONFIG.format(delay=0.002))
    settings = {"JUDGEQ_LEDGER_URL": ledger_url, "JUDGEQ_CONFIG": str(tmp_path / "judgeq.toml"),
                "JUDGEQ_CHUNK_LOCAL": "1", "JUDGEQ_POLL_S": "0.2", **extra}
    if broker_url:
        settings["JUDGEQ_BROKER_URL"] = broker_url
    return base_env(**settings)


class Ledger:
    """The test's view of the ledger: the one run a test makes, and its items."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)

    def one(self, sql: str, **params: object) -> object:
        try:
            with self.engine.connect() as conn:
                return conn.execute(text(sql), params).scalar()
        except Exception:  # the schema is created by the submit itself
            return None

    def run_id(self) -> str | None:
        return self.one("select id from runs")  # type: ignore[return-value]

    def items(self) -> int:
        return int(self.one("select count(*) from items") or 0)

    def status(self, run_id: str) -> str:
        return str(self.one("select status from runs where id = :r", r=run_id))

    def close(self) -> None:
        self.engine.dispose()


def start_submit(data: Path, env: dict[str, str], *judges: str) -> Started:
    args = ["submit", str(data)] + [a for j in judges or ("exact",) for a in ("--judge", j)]
    return start_cli(args, env)


def mid_enqueue(proc: Started, ledger: Ledger) -> str:
    """Wait until the run exists and its first batch of items is stored; its id."""
    def stored() -> bool:
        assert proc.poll() is None, f"submit ended early ({proc.returncode}): {proc.communicate()[1]}"
        return ledger.items() >= 500

    wait_until(stored, 60, "the first stored batch", interval=0.02)
    run_id = ledger.run_id()
    assert run_id is not None
    return run_id


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_mid_enqueue_exits_3_and_resume_with_the_same_file_completes(
        sig: signal.Signals, tmp_path: Path, pg_url: str, redis_url: str) -> None:
    data = write_dataset(tmp_path / "golden.jsonl")
    env = env_for(tmp_path, pg_url, redis_url)
    ledger = Ledger(pg_url)
    proc = start_submit(data, env)
    run_id = mid_enqueue(proc, ledger)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 3, err
    assert out.strip() == run_id  # printed once its row existed
    assert f"'judgeq resume {run_id} --dataset {data}'" in err and f"'judgeq abandon {run_id}'" in err
    assert "Traceback" not in err
    assert ledger.status(run_id) == "submitting" and ledger.items() < N

    bare = invoke(["resume", run_id], env)
    assert bare.returncode == 2 and "--dataset FILE" in bare.stderr, bare.stderr
    other = write_dataset(tmp_path / "other.jsonl", N - 1)
    refused = invoke(["resume", run_id, "--dataset", str(other)], env)
    assert refused.returncode == 2, refused.stderr
    assert "sha256" in refused.stderr and "same file" in refused.stderr

    worker = Worker("local", env, "--concurrency", "2").wait_ready()
    try:
        done = invoke(["resume", run_id, "--dataset", str(data), "--wait", "--timeout", "90", "--json"],
                      dict(env, JUDGEQ_CHUNK_LOCAL="250"))
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["complete"] is True
        assert ledger.items() == N
        assert rows_and_keys(pg_url, run_id) == (N, N)
        assert ledger.status(run_id) == "done"
    finally:
        worker.stop()
        ledger.close()


def test_sigkill_mid_enqueue_then_resume_with_the_file_completes(tmp_path: Path, pg_url: str,
                                                                 redis_url: str) -> None:
    """SIGKILL cannot be caught: what is stored is whole batches, and resume takes it from there."""
    data = write_dataset(tmp_path / "golden.jsonl")
    env = env_for(tmp_path, pg_url, redis_url)
    ledger = Ledger(pg_url)
    proc = start_submit(data, env)
    run_id = mid_enqueue(proc, ledger)
    proc.kill()
    proc.communicate(timeout=30)
    assert ledger.items() % 500 == 0  # one transaction per batch: never part of one

    worker = Worker("local", env, "--concurrency", "2").wait_ready()
    try:
        done = invoke(["resume", run_id, "--dataset", str(data), "--wait", "--timeout", "90"],
                      dict(env, JUDGEQ_CHUNK_LOCAL="250"))
        assert done.returncode == 0, done.stderr
        assert rows_and_keys(pg_url, run_id) == (N, N)
    finally:
        worker.stop()
        ledger.close()


def test_broker_lost_mid_enqueue_exits_3_and_resume_completes(tmp_path: Path, pg_url: str) -> None:
    """The broker goes away mid-enqueue and stays away until the submit gives up (a blip shorter than the
    publish retries is ridden out: how long that is depends on the machine, so the test does not race it)."""
    broker = RedisServer(tmp_path).start()
    env = env_for(tmp_path, pg_url, f"{broker.url}/0")
    data = write_dataset(tmp_path / "golden.jsonl")
    ledger = Ledger(pg_url)
    worker = None
    try:
        proc = start_submit(data, env)
        run_id = mid_enqueue(proc, ledger)
        broker.stop(kill=True)
        _, err = proc.communicate(timeout=60)
        broker.start()
        assert proc.returncode == 3, err
        assert "broker" in err and f"'judgeq resume {run_id} --dataset {data}'" in err
        assert ledger.status(run_id) == "submitting"

        worker = Worker("local", env, "--concurrency", "2").wait_ready()
        done = invoke(["resume", run_id, "--dataset", str(data), "--wait", "--timeout", "90"],
                      dict(env, JUDGEQ_CHUNK_LOCAL="250"))
        assert done.returncode == 0, done.stderr
        assert rows_and_keys(pg_url, run_id) == (N, N)
    finally:
        if worker:
            worker.stop()
        broker.stop()
        ledger.close()


def test_dataset_written_to_during_submit_abandons_the_run(tmp_path: Path, pg_url: str, redis_url: str) -> None:
    data = write_dataset(tmp_path / "golden.jsonl")
    env = env_for(tmp_path, pg_url, redis_url)
    ledger = Ledger(pg_url)
    try:
        proc = start_submit(data, env)
        run_id = mid_enqueue(proc, ledger)
        with data.open("a") as f:  # a generator still writing, say
            f.write(json.dumps({"id": "late", "output": "x"}) + "\n")
        _, err = proc.communicate(timeout=60)

        assert proc.returncode == 2, err
        assert "was written to after it was validated" in err and f"run {run_id} is marked abandoned" in err
        assert ledger.status(run_id) == "abandoned"
        assert ledger.items() < N
        resumed = invoke(["resume", run_id, "--dataset", str(data)], env)
        assert resumed.returncode == 2 and "abandoned" in resumed.stderr
    finally:
        ledger.close()


def test_sigint_in_embedded_mode_stops_cleanly_then_abandon(tmp_path: Path) -> None:
    """Judging in this process: the interrupt stops the sender, drops queued chunks, and exits 3."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    data = write_dataset(tmp_path / "golden.jsonl", 3000)
    env = env_for(tmp_path, url, JUDGEQ_CHUNK_LOCAL="5")  # 32 pending chunks of 5: the sender waits on judging
    ledger = Ledger(url)
    try:
        proc = start_submit(data, env, "slow")
        run_id = mid_enqueue(proc, ledger)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 3, err
        assert time.monotonic() - started < 10
        assert "interrupted" in err and f"'judgeq resume {run_id} --dataset {data}'" in err
        assert "Traceback" not in err and "Exception" not in err
        assert ledger.status(run_id) == "submitting" and ledger.items() < 3000
        rows = int(ledger.one("select count(*) from scores") or 0)
        time.sleep(0.5)  # nothing of the run goes on after the process ended
        assert int(ledger.one("select count(*) from scores") or 0) == rows

        gone = invoke(["abandon", run_id], env)
        assert gone.returncode == 0 and "abandoned" in gone.stderr, gone.stderr
        assert ledger.status(run_id) == "abandoned"
        again = invoke(["abandon", run_id], env)
        assert again.returncode == 0 and "already" in again.stderr
        for args in (["resume", run_id], ["resume", run_id, "--dataset", str(data)],
                     ["gate", run_id, "--gate", "slow>=0.5"],
                     ["submit", str(data), "--judge", "slow", "--wait", "--baseline", run_id]):
            res = invoke(args, env)
            assert res.returncode == 2 and "abandoned" in res.stderr, (args, res.stderr)
        status = json.loads(invoke(["status", run_id, "--json"], env).stdout)
        assert status["status"] == "abandoned"
    finally:
        ledger.close()


def test_sigterm_in_embedded_mode_then_resume_completes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    data = write_dataset(tmp_path / "golden.jsonl", 3000)
    env = env_for(tmp_path, url, JUDGEQ_CHUNK_LOCAL="5")
    ledger = Ledger(url)
    try:
        proc = start_submit(data, env, "slow")
        run_id = mid_enqueue(proc, ledger)
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 3, err
        done = invoke(["resume", run_id, "--dataset", str(data), "--json"], dict(env, JUDGEQ_CHUNK_LOCAL="250"))
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["complete"] is True
        assert rows_and_keys(url, run_id) == (3000, 3000)
    finally:
        ledger.close()


def test_no_run_id_is_printed_for_a_run_that_was_never_created(tmp_path: Path) -> None:
    from .processes import free_port

    data = write_dataset(tmp_path / "golden.jsonl", 10)
    env = env_for(tmp_path, f"postgresql://judgeq@127.0.0.1:{free_port()}/nothing")  # nothing listens there
    res = invoke(["submit", str(data), "--judge", "exact"], env)
    assert res.returncode == 3, res.stderr
    assert res.stdout == ""
    assert "run r" not in res.stderr and "cut off" not in res.stderr


def test_an_interrupt_python_drops_is_raised_again_at_the_next_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """A signal landing in a weakref callback: Python prints and drops the handler's exception; we don't.

    This is how CI once saw a SIGTERMed submit finish and exit 0: the
    ``KeyboardInterrupt`` was raised inside ``WeakKeyDictionary``'s callback.
    """
    import gc
    import sys
    import weakref

    from scheduler import interrupts

    monkeypatch.setattr(interrupts, "_signalled", [])
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
    dropped: list[object] = []
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        interrupts.interrupt_on_signals()

        class Thing:
            pass

        def callback(ref: object) -> None:  # the signal's handler runs in here, and raises here
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):
                dropped.append(None)

        thing = Thing()
        ref = weakref.ref(thing, callback)
        del thing
        gc.collect()
        assert ref() is None and interrupts._signalled == [signal.SIGTERM]
        assert len(dropped) < 1000  # the callback was cut off, and Python went on as if nothing happened
        with pytest.raises(KeyboardInterrupt):
            interrupts.checkpoint()
    finally:
        signal.signal(signal.SIGTERM, before[signal.SIGTERM])
        signal.signal(signal.SIGINT, before[signal.SIGINT])


def test_an_embedded_run_stopped_by_sigterm_shows_stopped_until_resumed(tmp_path: Path) -> None:
    """Every item stored, judging under way in the process: SIGTERM leaves the run "stopped", not "running"."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    data = write_dataset(tmp_path / "golden.jsonl", 1500)
    env = env_for(tmp_path, url, JUDGEQ_CHUNK_LOCAL="5")
    ledger = Ledger(url)
    try:
        proc = start_submit(data, env, "slow")

        def judging() -> bool:
            assert proc.poll() is None, f"submit ended early ({proc.returncode}): {proc.communicate()[1]}"
            return ledger.one("select status from runs") == "running" and bool(ledger.one("select count(*) from scores"))

        wait_until(judging, 60, "the run judging in the submit's process", interval=0.02)
        run_id = ledger.run_id()
        assert run_id is not None
        os.kill(proc.pid, signal.SIGTERM)
        signalled = time.monotonic()
        _, err = proc.communicate(timeout=60)
        # Chunks being judged finish (5 items each), those not started are dropped: no 30 s stop timeout.
        assert time.monotonic() - signalled < 15, err
        assert proc.returncode == 3 and f"judgeq resume {run_id}" in err, err
        assert int(ledger.one("select count(*) from scores") or 0) < 1500  # cut off while judging
        status = json.loads(invoke(["status", run_id, "--json"], env).stdout)
        assert status["status"] == "stopped"
        listed = invoke(["runs", "--status", "stopped", "--json"], env)
        assert [r["id"] for r in json.loads(listed.stdout)] == [run_id], listed.stderr
        done = invoke(["resume", run_id, "--json"], dict(env, JUDGEQ_CHUNK_LOCAL="250"))
        assert done.returncode == 0 and json.loads(done.stdout)["complete"] is True, done.stderr
        assert ledger.status(run_id) == "done" and rows_and_keys(url, run_id) == (1500, 1500)
    finally:
        ledger.close()
