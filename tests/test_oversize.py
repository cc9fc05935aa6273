"""One oversized trace or record never costs its neighbours (issue 17, items 2 and 4).

Workers refuse a chunk holding a record larger than ``JUDGEQ_MAX_RECORD_BYTES`` can be (a forged
message must stay bounded). Before the fix, an online source read a trace of any size, the window job
stored it, and its chunk was refused whole: its neighbours never got rows, ``resume`` sent the same
chunk again, and the window never completed. A JSONL line was read whole, however long: a small gzip
file that inflates to one line of gigabytes took that much memory in the process running beat's tick.
"""

from __future__ import annotations

import gzip
import json
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from judges.config import load_config
from ledger.store import Ledger
from online.job import WindowJob
from online.sampling import parse_policy
from online.schedules import Schedule
from online.sources.base import SOURCE_TYPES, open_source, register_source
from online.windows import parse_size, parse_window
from workers.dispatch import EmbeddedDispatcher
from workers.settings import WorkerSettings
from scheduler.records import RecordChecks, scan
from runs.errors import BadMessage
from runs.message import ChunkMessage, json_limit
from runs.sending import ChunkSettings, _cut

from .cli_runner import invoke
from .processes import Worker, base_env, wait_until

pytestmark = pytest.mark.timeout(180)

LIMIT = 4096  # JUDGEQ_MAX_RECORD_BYTES in these tests: a worker refuses a record over 6 x 4096 + 4096 bytes
HUGE = "x" * 40_000  # more than any worker with LIMIT admits
WINDOW = "2026-11-22"
DAY = datetime(2026, 11, 22, tzinfo=UTC)

CONFIG = """
[judges.exact]
type = "local"
builtin = "exact_match"

[sources.prod]
type = "jsonl"
path = "traces.jsonl"
"""


def trace(i: int, output: str | None = None) -> dict[str, Any]:
    ts = (DAY + timedelta(seconds=i)).isoformat()
    return {"id": f"t{i}", "input": f"q {i}", "output": f"a {i}" if output is None else output, "expected": f"a {i}", "ts": ts}


def write_lines(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def scores(ledger_url: str) -> dict[str, Any]:
    with Ledger(ledger_url) as ledger:
        return {s.trace_id: s for run in ledger.runs.list_runs() for s in ledger.scores.scores(run.id)}


def test_a_long_line_costs_a_piece_of_memory_not_the_line(tmp_path: Path) -> None:
    """A gzip file of 64 MiB of one line between two traces: the line is dropped as it streams, and counted."""
    path = tmp_path / "traces.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write((json.dumps(trace(0)) + "\n").encode())
        block = b"x" * (1 << 20)
        f.write(b'{"id": "huge", "output": "')
        for _ in range(64):
            f.write(block)
        f.write(b'"}\n')
        f.write((json.dumps(trace(1)) + "\n").encode())
    assert path.stat().st_size < 2 << 20  # a small file that inflates to a line of 64 MiB

    source = open_source("prod", {"type": "jsonl", "path": str(path)}, tmp_path, max_record_bytes=1 << 20)
    skipped: Counter[str] = Counter()
    tracemalloc.start()
    try:
        found = [r["id"] for r in source.traces(DAY, DAY + timedelta(days=1), skipped)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found == ["t0", "t1"] and skipped["too_large"] == 1
    assert peak < 8 << 20, f"reading took {peak / 2**20:.1f} MiB at its peak"


def test_a_line_at_the_limit_is_read_and_one_byte_more_is_not(tmp_path: Path) -> None:
    base = json.dumps(trace(0, output=""))
    fits = json.dumps(trace(0, output="y" * (LIMIT - len(base))))
    over = json.dumps(trace(1, output="y" * (LIMIT - len(base) + 1)))
    assert len(fits) == LIMIT and len(over) == LIMIT + 1
    path = tmp_path / "t.jsonl"
    path.write_text(f"{fits}\n{over}\n{json.dumps(trace(2))}")  # the last line has no newline
    source = open_source("prod", {"type": "jsonl", "path": str(path)}, tmp_path, max_record_bytes=LIMIT)
    skipped: Counter[str] = Counter()
    assert [r["id"] for r in source.traces(DAY, DAY + timedelta(days=1), skipped)] == ["t0", "t2"]
    assert skipped["too_large"] == 1


def test_a_crlf_line_at_the_limit_is_read_as_submit_reads_it(tmp_path: Path) -> None:
    """The limit counts a line's bytes without its line end, "\\r\\n" included, as ``judgeq submit`` does."""
    base = json.dumps(trace(0, output=""))
    fits = json.dumps(trace(0, output="y" * (LIMIT - len(base))))
    over = json.dumps(trace(1, output="y" * (LIMIT - len(base) + 1)))
    submitted = tmp_path / "golden.jsonl"
    submitted.write_bytes(f"{fits}\r\n".encode())
    assert scan(submitted, RecordChecks(max_bytes=LIMIT)).count == 1  # submit takes it
    path = tmp_path / "t.jsonl"
    path.write_bytes(f"{fits}\r\n{over}\r\n{json.dumps(trace(2))}\r\n".encode())
    source = open_source("prod", {"type": "jsonl", "path": str(path)}, tmp_path, max_record_bytes=LIMIT)
    skipped: Counter[str] = Counter()
    assert [r["id"] for r in source.traces(DAY, DAY + timedelta(days=1), skipped)] == ["t0", "t2"]
    assert skipped["too_large"] == 1


class Listed:
    """A source of one's own (registered): it reads traces of any size, so the window job bounds them."""

    name = "listed"

    def __init__(self, traces: list[dict[str, Any]]) -> None:
        self._traces = traces

    def traces(self, start: datetime, end: datetime, skipped: Counter[str]) -> Iterator[dict[str, Any]]:
        yield from self._traces

    def count(self, start: datetime, end: datetime) -> int:
        return len(self._traces)


def test_the_window_job_bounds_every_sources_traces(tmp_path: Path, sqlite_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    traces = [trace(i, output=HUGE if i == 7 else None) for i in range(30)]
    monkeypatch.setitem(SOURCE_TYPES, "listed", SOURCE_TYPES["jsonl"])  # restored after the test
    register_source("listed", lambda name, table, base: Listed(traces))
    source = open_source("listed", {"type": "listed"}, tmp_path)
    schedule = Schedule(name="s", source="listed", judges=("exact",), size=parse_size("1d"),
                        every=timedelta(days=1), policy=parse_policy({"rate": 1.0}, "s"))
    ledger = Ledger(sqlite_url)
    dispatcher = EmbeddedDispatcher(ledger, WorkerSettings())
    job = WindowJob(schedule, parse_window(WINDOW), source, [load_config(None).resolve("exact_match")], ledger,
                    ChunkSettings(max_record_bytes=LIMIT))
    outcome = job.run(dispatcher)
    dispatcher.join()
    assert outcome.skipped == {"too_large": 1} and outcome.new == {"exact_match": 29}
    outcome.settle(ledger)
    (run_id,) = outcome.runs.values()
    assert ledger.runs.get_run(run_id).status == "done"  # complete: 29 rows of 29 items
    ledger.close()


def test_an_oversized_trace_is_skipped_and_its_window_completes(tmp_path: Path, redis_url: str,
                                                                sqlite_url: str) -> None:
    """Through a real worker: before the fix its chunk of ten was refused, and the window never completed."""
    (tmp_path / "judgeq.toml").write_text(CONFIG)
    write_lines(tmp_path / "traces.jsonl", [trace(i, output=HUGE if i == 13 else None) for i in range(60)])
    env = base_env(JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=sqlite_url, JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"),
                   JUDGEQ_CHUNK_LOCAL="10", JUDGEQ_POLL_S="0.2", JUDGEQ_MAX_RECORD_BYTES=str(LIMIT))
    worker = Worker("local", env, "--concurrency", "2").wait_ready()
    try:
        res = invoke(["online", "--source", "prod", "--judge", "exact", "--window", WINDOW, "--rate", "1",
                      "--wait", "--timeout", "60", "--json"], env)
    finally:
        worker.stop()
    assert res.returncode == 0, res.stdout + res.stderr
    payload = json.loads(res.stdout)
    assert payload["skipped"] == {"too_large": 1}, payload
    rows = scores(sqlite_url)
    assert len(rows) == 59 and "t13" not in rows and all(r.status == "ok" for r in rows.values())
    assert "refused a task message" not in worker.log()


def test_resume_never_sends_a_record_no_worker_admits(tmp_path: Path, redis_url: str, sqlite_url: str) -> None:
    """A run stored by a submitter with a larger limit than its workers': the one record gets its own error row."""
    (tmp_path / "judgeq.toml").write_text(CONFIG)
    data = write_lines(tmp_path / "golden.jsonl", [trace(i, output=HUGE if i == 4 else None) for i in range(30)])
    env = base_env(JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=sqlite_url, JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"),
                   JUDGEQ_CHUNK_LOCAL="10", JUDGEQ_POLL_S="0.2", JUDGEQ_MAX_RECORD_BYTES=str(LIMIT))
    submitted = invoke(["submit", str(data), "--judge", "exact", "--json"],
                       {**env, "JUDGEQ_MAX_RECORD_BYTES": str(16 * LIMIT)})
    assert submitted.returncode == 0, submitted.stderr
    run_id = json.loads(submitted.stdout)["run_id"]
    client = redis.Redis.from_url(redis_url)
    client.flushdb()  # the broker lost the chunks (a restart without persistence): resume sends them again
    client.close()

    worker = Worker("local", env, "--concurrency", "2").wait_ready()
    try:
        res = invoke(["resume", run_id, "--wait", "--timeout", "60"], env)
    finally:
        worker.stop()
    assert res.returncode == 0, res.stdout + res.stderr
    rows = scores(sqlite_url)
    assert len(rows) == 30 and sum(r.status == "ok" for r in rows.values()) == 29
    assert rows["t4"].error_kind == "too_large" and "JUDGEQ_MAX_RECORD_BYTES = 4096" in (rows["t4"].error or "")
    assert "refused a task message" not in worker.log()


def test_chunks_are_cut_by_bytes_as_well_as_by_count() -> None:
    settings = ChunkSettings(chunk_bytes=64 * 1024, max_record_bytes=1 << 20)
    records = [{"id": f"r{i}", "output": "z" * (40_000 if i in (3, 4, 30) else 100)} for i in range(50)]
    records.append({"id": "huge", "output": "z" * (7 << 20)})  # more than a worker with 1 MiB admits
    parts, refused = _cut(records, settings)
    cut = list(parts(8))
    assert [r["id"] for r in refused] == ["huge"]
    assert [r for part in cut for r in part] == records[:-1]  # every carriable record once, in order
    for part in cut:
        size = sum(len(json.dumps(r, separators=(",", ":"))) for r in part)
        assert len(part) <= 8 and (size <= settings.chunk_bytes or len(part) == 1)
    assert max(len(p) for p in cut) == 8  # small records still fill a chunk


@pytest.mark.parametrize("chunk_bytes", [8 << 20, 256 << 20])
def test_the_sender_refuses_exactly_what_a_worker_refuses(chunk_bytes: int) -> None:
    """Whatever the limits, a record goes (or gets its too_large row) as the worker's own admission decides.

    Records of small numbers are where the cheap bound of a record's size is
    furthest above its size (a one-digit number is bounded at 24 bytes): one
    of 3.7 KB was taken for more than the 28 KB a worker with a 4 KiB limit
    admits, and got a too_large row though the worker would have judged it.
    """
    for max_record_bytes in (LIMIT, 600 * 1024):
        admitted = json_limit(max_record_bytes)
        settings = ChunkSettings(chunk_bytes=chunk_bytes, max_record_bytes=max_record_bytes)
        records = [{"id": "numbers", "output": "a", "metadata": {"xs": [1] * (admitted // 10)}},
                   {"id": "text", "output": "z" * (admitted - 30)}]
        for n, fill in ((admitted, "y"), (admitted + 1, "y")):  # exactly at a worker's limit, and one byte over
            empty = len(json.dumps({"id": f"edge{n}", "output": ""}, separators=(",", ":")))
            records.append({"id": f"edge{n}", "output": fill * (n - empty)})
        parts, refused = _cut(records, settings)
        for record in records:
            body = {"v": 1, "run_id": "r1", "dataset": "d", "judge": {"name": "j", "version": "j@1"},
                    "records": [record]}
            try:
                ChunkMessage.from_json(body, max_record_bytes=max_record_bytes)
                admits = True
            except BadMessage:
                admits = False
            assert admits == (record not in refused), (max_record_bytes, record["id"])
        assert [r["id"] for r in refused] == [f"edge{admitted + 1}"]


def test_a_scan_cut_off_by_the_broker_says_how_to_complete_its_window(tmp_path: Path, sqlite_url: str) -> None:
    """A private Redis that stops taking messages mid-scan (full, noeviction): exit 3, naming each run's resume."""
    from .processes import RedisServer

    (tmp_path / "judgeq.toml").write_text(CONFIG)
    write_lines(tmp_path / "traces.jsonl", [trace(i, output="w" * 2000) for i in range(2000)])  # ~4 MB to send
    server = RedisServer(tmp_path).start()
    try:
        client = redis.Redis.from_url(server.url)
        client.config_set("maxmemory", str(3 << 20))
        client.config_set("maxmemory-policy", "noeviction")
        client.close()
        env = base_env(JUDGEQ_BROKER_URL=f"{server.url}/0", JUDGEQ_LEDGER_URL=sqlite_url,
                       JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"), JUDGEQ_CHUNK_LOCAL="10")
        res = invoke(["online", "--source", "prod", "--judge", "exact", "--window", WINDOW, "--rate", "1"], env)
    finally:
        server.stop()
    assert res.returncode == 3, res.stdout + res.stderr
    with Ledger(sqlite_url) as ledger:
        (run,) = ledger.runs.list_runs()
    assert run.status == "submitting"
    assert f"'judgeq resume {run.id}'" in res.stderr and "cut off mid-scan" in res.stderr


def test_the_commands_a_cut_off_scan_names_complete_its_window(tmp_path: Path, sqlite_url: str) -> None:
    """Done as the message says, once the broker answers: every trace of the window has its row.

    The scan stopped partway: some traces stored and sent, some stored only,
    the rest never read. ``judgeq resume`` alone sent the stored ones and set
    the run "running", so the unread traces were never judged (and beat no
    longer rescans a window whose runs are running): the command that reads
    them, the same ``judgeq online`` again, has to be named too.
    """
    import re
    import shlex

    from .processes import RedisServer

    (tmp_path / "judgeq.toml").write_text(CONFIG)
    n = 2000
    write_lines(tmp_path / "traces.jsonl", [trace(i, output="w" * 2000) for i in range(n)])
    server = RedisServer(tmp_path).start()
    try:
        client = redis.Redis.from_url(server.url)
        client.config_set("maxmemory", str(3 << 20))
        client.config_set("maxmemory-policy", "noeviction")
        env = base_env(JUDGEQ_BROKER_URL=f"{server.url}/0", JUDGEQ_LEDGER_URL=sqlite_url,
                       JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"), JUDGEQ_CHUNK_LOCAL="10", JUDGEQ_POLL_S="0.2")
        command = ["online", "--source", "prod", "--judge", "exact", "--window", WINDOW, "--rate", "1"]
        res = invoke(command, env)
        assert res.returncode == 3, res.stdout + res.stderr
        client.config_set("maxmemory", "0")  # the broker answers again
        client.close()
        worker = Worker("local", env, "--concurrency", "2").wait_ready()
        try:
            for named in re.findall(r"'(judgeq [^']+)'", res.stderr):
                assert invoke(shlex.split(named)[1:], env).returncode == 0, named
            if "this judgeq online command again" in res.stderr:
                assert invoke([*command, "--wait", "--timeout", "60"], env).returncode == 0
            with Ledger(sqlite_url) as ledger:
                (run,) = ledger.runs.list_runs()
                wait_until(lambda: len(list(ledger.scores.scores(run.id))) >= n, 60, "every trace's row")
        finally:
            worker.stop()
    finally:
        server.stop()


class Cut(EmbeddedDispatcher):
    """A broker that goes away after ``sends`` chunks: the scan dies between storing and counting."""

    def __init__(self, ledger: Ledger, sends: int) -> None:
        super().__init__(ledger, WorkerSettings())
        self.sends = sends

    def send(self, message: Any, queue: str) -> None:
        if self.sends == 0:
            from runs.errors import BrokerUnavailable

            raise BrokerUnavailable("the broker went away")
        self.sends -= 1
        super().send(message, queue)


def test_enqueued_counts_the_windows_sample_over_every_scan(tmp_path: Path, ledger_url: str) -> None:
    """A scan cut off before it wrote its counts, then a rescan for late traces: enqueued is the whole sample."""
    path = write_lines(tmp_path / "traces.jsonl", [trace(i) for i in range(1200)])
    source = open_source("prod", {"type": "jsonl", "path": str(path)}, tmp_path)
    schedule = Schedule(name="s", source="prod", judges=("exact",), size=parse_size("1d"),
                        every=timedelta(days=1), policy=parse_policy({"rate": 1.0}, "s"))
    judges = [load_config(None).resolve("exact_match")]
    ledger = Ledger(ledger_url)
    cut = Cut(ledger, sends=3)
    with pytest.raises(Exception, match="went away"):
        WindowJob(schedule, parse_window(WINDOW), source, judges, ledger, ChunkSettings(chunk_local=250)).run(cut)
    cut.join()
    write_lines(path, [trace(i) for i in range(1250)])  # 50 late traces
    dispatcher = EmbeddedDispatcher(ledger, WorkerSettings())
    outcome = WindowJob(schedule, parse_window(WINDOW), source, judges, ledger, ChunkSettings()).run(dispatcher)
    dispatcher.join()
    (run_id,) = outcome.runs.values()
    assert outcome.new == {"exact_match": 250}  # the 200 the cut scan never stored, and the 50 late ones
    assert sum(c.enqueued for c in ledger.windows.strata(run_id)) == ledger.runs.get_run(run_id).n_items == 1250
    ledger.close()
