"""The online path through a real fleet: ``judgeq online`` processes, a Redis broker, workers, a PostgreSQL ledger.

What is sampled is recomputed here from the documented formula (u =
blake2b(salt NUL trace id) / 2**64 < p), not asked of judgeq, and what was
enqueued is read from the broker's queue itself: each chunk message decoded
from its kombu envelope, so "each trace enqueued once" is counted, not
inferred from the ledger (whose upsert would hide a double send).
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from .ledger_probe import rows_and_keys
from .cli_runner import invoke
from .processes import Started, Worker, base_env, start_cli, wait_until

pytestmark = pytest.mark.timeout(180)

WINDOW = "2025-06-01"
DAY = datetime(2025, 6, 1, tzinfo=UTC)
RATE = 0.3
MIN_PER_STRATUM = 20
#: Locales by share: "ja" is small enough that min_per_stratum raises its rate to 1.
LOCALES = ("en",) * 12 + ("de",) * 7 + ("ja",)

CONFIG = """
[judges.exact]
type = "local"
builtin = "exact_match"

[sources.traces]
type = "jsonl"
path = "traces.jsonl"

[sources.gone]
type = "jsonl"
path = "gone/traces.jsonl"

[sources.warehouse]
type = "sql"
url_env = "JUDGEQ_TEST_DOWN_DB"
table = "traces"
time_column = "created_at"
columns = { id = "trace_id", input = "prompt", output = "completion" }

[online.traces-daily]
source = "traces"
judges = ["exact"]
window = "1d"
lateness = "5m"

[online.traces-daily.sampling]
rate = 0.3
strata = "metadata.locale"
min_per_stratum = 20
"""


def trace(i: int, *, ts: datetime, locale: str | None = None, prefix: str = "t", right: bool = True,
          ) -> dict[str, Any]:
    metadata: dict[str, Any] = {"session_id": f"s{i // 4}", "user_id": f"u{i % 13}"}
    if locale is not None:
        metadata["locale"] = locale
    return {"trace_id": f"{prefix}{i}", "input": f"q {i}", "output": f"a {i}" if right else "wrong",
            "expected": f"a {i}", "ts": ts.isoformat().replace("+00:00", "Z"), "metadata": metadata}


def day_traces(n: int, prefix: str = "t") -> list[dict[str, Any]]:
    """``n`` traces spread over the window's day, locales by LOCALES' shares."""
    step = timedelta(days=1) / n
    return [trace(i, ts=DAY + i * step, locale=LOCALES[i % len(LOCALES)], prefix=prefix) for i in range(n)]


def write_lines(path: Path, lines: list[Any], mode: str = "w") -> None:
    with path.open(mode) as f:
        for line in lines:
            f.write((line if isinstance(line, str) else json.dumps(line)) + "\n")


def u(trace_id: str, salt: str = "judgeq") -> float:
    """The sampling formula as the docs give it: users reproduce it, and so does this test."""
    digest = hashlib.blake2b(f"{salt}\x00{trace_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def rates_for(traces: list[dict[str, Any]]) -> dict[str, float]:
    """The policy's rates for these traces: RATE, raised to MIN_PER_STRATUM / count for small strata."""
    counts = Counter(t["metadata"].get("locale", "(none)") for t in traces)
    return {s: min(1.0, max(RATE, MIN_PER_STRATUM / n)) for s, n in counts.items()}


def expected_sample(traces: list[dict[str, Any]], rates: dict[str, float]) -> dict[str, str]:
    """Trace id -> stratum of the traces the policy samples."""
    return {t["trace_id"]: t["metadata"].get("locale", "(none)") for t in traces
            if u(t["trace_id"]) < rates[t["metadata"].get("locale", "(none)")]}


def queued_chunks(broker: redis.Redis, queue: str = "local") -> list[dict[str, Any]]:
    """The chunk messages waiting in ``queue``: each kombu envelope's base64 body, decoded to the task's args."""
    chunks = []
    for raw in broker.lrange(queue, 0, -1):
        envelope = json.loads(raw)
        assert envelope["properties"]["body_encoding"] == "base64"
        args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        assert envelope["headers"]["task"] == "judgeq.judge_chunk"
        chunks.append(args[0])
    return chunks


def queued_ids(broker: redis.Redis) -> Counter[str]:
    return Counter(record["id"] for chunk in queued_chunks(broker) for record in chunk["records"])


def ledger_rows(pg_url: str, run_id: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.text("select trace_id, dataset, weight, stratum, cluster, score from scores "
                                         "where run_id = :r"), {"r": run_id})
            return [dict(row._mapping) for row in found]
    finally:
        engine.dispose()


def strata_rows(pg_url: str, run_id: str) -> dict[str, dict[str, Any]]:
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.text("select stratum, seen, filtered, sampled, enqueued, rate from window_strata "
                                         "where run_id = :r"), {"r": run_id})
            return {row.stratum: dict(row._mapping) for row in found}
    finally:
        engine.dispose()


def ledger_counts(pg_url: str) -> dict[str, int]:
    """Runs and items in the ledger; tables that do not exist yet count 0 (nothing was written)."""
    engine = sa.create_engine(pg_url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
        with engine.connect() as conn:
            return {t: int(conn.execute(sa.text(f"select count(*) from {t}")).scalar_one()) if t in tables else 0
                    for t in ("runs", "items", "scores")}
    finally:
        engine.dispose()


@pytest.fixture
def env(tmp_path: Path, redis_url: str, pg_url: str) -> dict[str, str]:
    (tmp_path / "judgeq.toml").write_text(CONFIG)
    return base_env(
        JUDGEQ_BROKER_URL=redis_url,
        JUDGEQ_LEDGER_URL=pg_url,
        JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"),
        JUDGEQ_CHUNK_LOCAL="10",
        JUDGEQ_POLL_S="0.2",
        JUDGEQ_TEST_DOWN_DB="postgresql://judgeq@127.0.0.1:1/traces",
    )


@pytest.fixture
def broker(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def worker(env: dict[str, str]) -> Iterator[Worker]:
    started = Worker("local", env, "--concurrency", "2").wait_ready()
    yield started
    started.stop()


def online(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return invoke(["online", *args], env)


SCHEDULE = ("--schedule", "traces-daily", "--window", WINDOW)


def test_a_window_through_the_fleet_once(tmp_path: Path, env: dict[str, str], pg_url: str, worker: Worker,
                                         broker: redis.Redis) -> None:
    traces = day_traces(600)
    write_lines(tmp_path / "traces.jsonl", traces)
    rates = rates_for(traces)
    assert RATE < rates["ja"] < 1 and rates["en"] == RATE  # the small stratum is raised, the others not
    sample = expected_sample(traces, rates)

    first = online(env, *SCHEDULE, "--wait", "--json")
    assert first.returncode == 0, first.stderr
    outcome = json.loads(first.stdout)
    run_id = outcome["runs"]["exact"]
    assert run_id.startswith(f"o-{WINDOW}-exact-")
    assert outcome["seen"] == 600 and outcome["sampled"] == {"exact": len(sample)}
    assert outcome["enqueued"] == {"exact": len(sample)} and outcome["created"] == {"exact": True}

    rows = ledger_rows(pg_url, run_id)
    assert rows_and_keys(pg_url, run_id) == (len(sample), len(sample))
    assert {r["trace_id"] for r in rows} == set(sample)
    for row in rows:
        stratum = sample[row["trace_id"]]
        assert row["dataset"] == WINDOW
        assert row["stratum"] == stratum
        assert row["weight"] == pytest.approx(1 / rates[stratum])
        assert row["cluster"] is not None and row["cluster"].startswith("s")
        assert row["score"] == 1.0
    # The weighted estimate is of the window's population: its n is the sample's.
    assert outcome["estimates"]["exact"]["n"] == len(sample)
    strata = strata_rows(pg_url, run_id)
    assert {s: c["seen"] for s, c in strata.items()} == Counter(t["metadata"]["locale"] for t in traces)
    assert sum(c["enqueued"] for c in strata.values()) == len(sample)

    again = online(env, *SCHEDULE, "--wait", "--json")
    assert again.returncode == 0, again.stderr
    repeat = json.loads(again.stdout)
    assert repeat["runs"] == outcome["runs"] and repeat["created"] == {"exact": False}
    assert repeat["enqueued"] == {"exact": 0} and repeat["sampled"] == {"exact": len(sample)}
    assert broker.llen("local") == 0
    assert rows_and_keys(pg_url, run_id) == (len(sample), len(sample))


def test_a_window_whose_chunks_were_lost_is_resumed_at_its_sampling_weights(tmp_path: Path, env: dict[str, str],
                                                                             pg_url: str, broker: redis.Redis,
                                                                             ) -> None:
    """Chunks lost in the broker (a flushed queue here) are sent again by resume with each item's 1/p and stratum.

    They travel in the chunk only, so a resend must read them from the ledger's items, or the rows would
    weigh 1 and bias the window's estimate towards the oversampled strata.
    """
    traces = day_traces(300)
    write_lines(tmp_path / "traces.jsonl", traces)
    rates = rates_for(traces)
    sample = expected_sample(traces, rates)
    sent = online(env, *SCHEDULE, "--json")  # no worker yet: the chunks wait in the queue
    assert sent.returncode == 0, sent.stderr
    run_id = json.loads(sent.stdout)["runs"]["exact"]
    assert sum(queued_ids(broker).values()) == len(sample)
    broker.delete("local")  # every chunk lost

    resumed = invoke(["resume", run_id], env)
    assert resumed.returncode == 0, resumed.stderr
    assert sum(queued_ids(broker).values()) == len(sample)
    started = Worker("local", env, "--concurrency", "2").wait_ready()
    try:
        wait_until(lambda: rows_and_keys(pg_url, run_id)[0] == len(sample), 60, "the resumed window's rows")
    finally:
        started.stop()
    rows = ledger_rows(pg_url, run_id)
    assert {r["trace_id"] for r in rows} == set(sample)
    for row in rows:
        stratum = sample[row["trace_id"]]
        assert row["stratum"] == stratum
        assert row["weight"] == pytest.approx(1 / rates[stratum])


def test_beats_tick_sends_again_a_chunk_a_killed_worker_took(tmp_path: Path, env: dict[str, str], pg_url: str,
                                                              broker: redis.Redis, redis_url: str) -> None:
    """Nobody waits on an online run: the schedule's next tick finds the lost chunk's items and sends them again."""
    from workers.app import create_app
    from workers.settings import WorkerSettings

    traces = day_traces(300)
    write_lines(tmp_path / "traces.jsonl", traces)
    rates = rates_for(traces)
    sample = expected_sample(traces, rates)
    sent = online(env, *SCHEDULE, "--json")
    assert sent.returncode == 0, sent.stderr
    run_id = json.loads(sent.stdout)["runs"]["exact"]
    taken = broker.rpop("local")  # what a worker's BRPOP gets; the worker dies before it records it unacked
    assert taken is not None
    lost = len(json.loads(base64.b64decode(json.loads(taken)["body"]))[0][0]["records"])
    started = Worker("local", dict(env, JUDGEQ_LOST_CHECK_S="1"), "--concurrency", "2").wait_ready()
    try:
        wait_until(lambda: rows_and_keys(pg_url, run_id)[0] == len(sample) - lost, 60, "the other chunks' rows")
        sender = create_app(WorkerSettings(broker_url=redis_url))
        wait_until(lambda: bool(sender.send_task("judgeq.online_tick", args=["traces-daily"], queue="local"))
                   and rows_and_keys(pg_url, run_id)[0] == len(sample), 60,
                   lambda: f"the lost chunk's rows; worker:\n{started.log()[-3000:]}", interval=3)
        assert f"sent {lost} items again" in started.log()
    finally:
        started.stop()
    rows = ledger_rows(pg_url, run_id)
    assert {r["trace_id"] for r in rows} == set(sample)
    assert all(row["weight"] == pytest.approx(1 / rates[sample[row["trace_id"]]]) for row in rows)


def waiting_on_items(pg_url: str) -> int:
    """Sessions waiting for a lock on the items table."""
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(
                "select count(*) from pg_locks l join pg_class c on c.oid = l.relation "
                "where c.relname = 'items' and not l.granted")).scalar_one())
    finally:
        engine.dispose()


def test_two_schedulers_racing_on_a_window_enqueue_each_trace_once(tmp_path: Path, env: dict[str, str],
                                                                   pg_url: str, broker: redis.Redis) -> None:
    """Two ``judgeq online`` on one window, made to collide, and no worker running while they do.

    Started together, one would usually scan ahead of the other, and the
    other find everything stored: no race. So the test holds the items table
    locked until both scans wait to store their first batch, then lets them
    go at once. The queue then holds exactly what the two sent: decoded and
    counted, each trace must be in it once.
    """
    import psycopg

    env = dict(env, JUDGEQ_CHUNK_LOCAL="100")
    traces = day_traces(10_000)
    write_lines(tmp_path / "traces.jsonl", traces)
    sample = expected_sample(traces, rates_for(traces))
    assert len(sample) > 5 * 500  # several store batches each (online.job.STORE_BATCH)
    assert invoke(["db", "upgrade"], env).returncode == 0
    gate = psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://"))
    procs: list[Started] = []
    try:
        gate.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")  # held until the rollback below
        procs = [start_cli(["online", *SCHEDULE, "--json"], env) for _ in range(2)]
        wait_until(lambda: waiting_on_items(pg_url) == 2 or any(p.poll() is not None for p in procs), 60,
                   "both schedulers waiting to store their first batch")
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs if p.poll() is not None]
    finally:
        gate.rollback()
        gate.close()
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err
    outcomes = [json.loads(out) for out, _ in results]
    (run_id,) = {o["runs"]["exact"] for o in outcomes}
    assert sorted(o["created"]["exact"] for o in outcomes) == [False, True]  # one created the run
    assert sum(o["enqueued"]["exact"] for o in outcomes) == len(sample)

    sent = queued_ids(broker)
    assert set(sent) == set(sample)
    assert max(sent.values()) == 1, f"sent twice: {[t for t, n in sent.items() if n > 1][:5]}"
    assert {c["run_id"] for c in queued_chunks(broker)} == {run_id}
    assert ledger_counts(pg_url)["items"] == len(sample)
    assert sum(c["enqueued"] for c in strata_rows(pg_url, run_id).values()) == len(sample)

    worker = Worker("local", env, "--concurrency", "2").wait_ready()
    try:
        wait_until(lambda: rows_and_keys(pg_url, run_id)[0] >= len(sample), 60,
                   lambda: f"{len(sample)} rows; have {rows_and_keys(pg_url, run_id)}")
        assert rows_and_keys(pg_url, run_id) == (len(sample), len(sample))
    finally:
        worker.stop()
    print("enqueued by each:", [o["enqueued"]["exact"] for o in outcomes])


def test_late_traces_are_enqueued_alone_at_the_windows_rates(tmp_path: Path, env: dict[str, str], pg_url: str,
                                                              worker: Worker, broker: redis.Redis) -> None:
    traces = day_traces(400)
    write_lines(tmp_path / "traces.jsonl", traces)
    rates = rates_for(traces)
    first = online(env, *SCHEDULE, "--wait", "--json")
    assert first.returncode == 0, first.stderr
    run_id = json.loads(first.stdout)["runs"]["exact"]
    before = set(expected_sample(traces, rates))
    assert rows_and_keys(pg_url, run_id) == (len(before), len(before))

    # Late arrivals inside the window: ja grows past what min_per_stratum raised (a fresh plan would now sample
    # it at 20/60), and a locale the first scan never saw appears; neither may change the window's rates.
    late = ([trace(1000 + i, ts=DAY + timedelta(hours=23, minutes=i), locale="ja", prefix="late") for i in range(40)]
            + [trace(2000 + i, ts=DAY + timedelta(hours=22, minutes=i), locale="pt", prefix="late")
               for i in range(30)]
            + [trace(3000 + i, ts=DAY + timedelta(hours=12, seconds=i), locale="en", prefix="late")
               for i in range(60)])
    write_lines(tmp_path / "traces.jsonl", late, mode="a")
    stored = {**rates, "pt": RATE}  # the new stratum gets the base rate
    new = expected_sample(late, stored)
    assert any(s == "ja" for s in new.values()) and any(s == "pt" for s in new.values())

    again = online(env, *SCHEDULE, "--wait", "--json")
    assert again.returncode == 0, again.stderr
    outcome = json.loads(again.stdout)
    assert outcome["runs"]["exact"] == run_id and outcome["created"] == {"exact": False}
    assert outcome["enqueued"] == {"exact": len(new)}
    assert outcome["sampled"] == {"exact": len(before) + len(new)} and outcome["seen"] == 400 + len(late)

    rows = {r["trace_id"]: r for r in ledger_rows(pg_url, run_id)}
    assert set(rows) == before | set(new) and rows_and_keys(pg_url, run_id)[0] == len(rows)
    for trace_id, stratum in new.items():
        assert rows[trace_id]["weight"] == pytest.approx(1 / stored[stratum]), (trace_id, stratum)
    assert rows[next(t for t, s in new.items() if s == "ja")]["weight"] == 1.0  # not 3: the window's rate held
    strata = strata_rows(pg_url, run_id)
    seen = Counter(t["metadata"]["locale"] for t in traces + late)
    assert {s: c["seen"] for s, c in strata.items()} == seen
    assert {s: c["rate"] for s, c in strata.items()} == pytest.approx(stored)
    assert sum(c["enqueued"] for c in strata.values()) == len(before) + len(new)
    assert broker.llen("local") == 0


# -- bad input -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "code", "says"), [
    (("--source", "nope", "--judge", "exact", "--window", WINDOW), 2, "unknown source 'nope'"),
    (("--schedule", "nope", "--window", WINDOW), 2, "no [online.nope] table"),
    (("--source", "traces", "--judge", "nope", "--window", WINDOW), 2, "nope"),
    (("--source", "traces", "--judge", "exact", "--window", "2025-13-45"), 2, "2025-13-45"),
    (("--source", "traces", "--judge", "exact", "--window", "yesterday"), 2, "yesterday"),
    (("--source", "traces", "--judge", "exact", "--window", "2099-01-01"), 2, "2099-01-01"),
    (("--source", "traces", "--judge", "exact", "--window", WINDOW, "--rate", "2"), 2, "--rate"),
    (("--source", "gone", "--judge", "exact", "--window", WINDOW), 3, "does not exist"),
    (("--source", "warehouse", "--judge", "exact", "--window", WINDOW), 3, "warehouse"),
])
def test_bad_input_exits_with_its_code_and_writes_nothing(tmp_path: Path, env: dict[str, str], pg_url: str,
                                                          broker: redis.Redis, args: tuple[str, ...], code: int,
                                                          says: str) -> None:
    write_lines(tmp_path / "traces.jsonl", day_traces(50))
    res = online(env, *args)
    assert res.returncode == code, res.stderr
    assert says in res.stderr
    assert "Traceback" not in res.stderr
    assert ledger_counts(pg_url) == {"runs": 0, "items": 0, "scores": 0}
    assert broker.llen("local") == 0


def test_bad_traces_are_skipped_and_counted(tmp_path: Path, env: dict[str, str], pg_url: str,
                                            broker: redis.Redis) -> None:
    """Every trace is sampled (rate 1): what is left out is left out as bad input, and counted."""
    good = day_traces(30)
    no_ts = {**trace(900, ts=DAY, locale="en"), "ts": None}
    del no_ts["ts"]
    lines: list[Any] = [
        *good[:10],
        "{not json",
        no_ts,
        {**trace(901, ts=DAY, locale="en"), "ts": "noon yesterday"},
        [1, 2, 3],
        trace(902, ts=DAY - timedelta(seconds=1), locale="en"),  # the day before: outside the window
        {**good[3], "output": "a duplicate, later"},  # the same id again: the first is kept
        trace(903, ts=DAY + timedelta(hours=5)),  # no locale: stratum "(none)"
        *good[10:],
    ]
    write_lines(tmp_path / "traces.jsonl", lines)
    res = online(env, "--source", "traces", "--judge", "exact", "--window", WINDOW, "--rate", "1",
                 "--strata", "metadata.locale", "--json")
    assert res.returncode == 0, res.stderr
    outcome = json.loads(res.stdout)
    assert outcome["skipped"] == {"malformed": 2, "no_ts": 1, "bad_ts": 1, "outside": 1, "duplicate": 1}
    assert outcome["seen"] == 31  # the 30 and the one without a locale (a duplicate is no trace)
    assert outcome["enqueued"] == {"exact": 31}

    sent = {record["id"]: (record, chunk["strata"][record["id"]], chunk["weights"][record["id"]])
            for chunk in queued_chunks(broker) for record in chunk["records"]}
    assert len(sent) == 31 and "t903" in sent
    assert sent["t3"][0]["output"] == good[3]["output"]  # the first of the two t3 lines
    assert sent["t903"][1] == "(none)" and sent["t903"][2] == 1.0
    run_id = outcome["runs"]["exact"]
    strata = strata_rows(pg_url, run_id)
    assert strata["(none)"]["seen"] == 1 and strata["(none)"]["enqueued"] == 1
    assert sum(c["seen"] for c in strata.values()) == 31  # no duplicate among them


def test_a_wait_no_worker_answers_ends_3_naming_the_run(tmp_path: Path, env: dict[str, str], pg_url: str,
                                                       broker: redis.Redis) -> None:
    """``judgeq online --wait`` on a fleet without workers: the window is enqueued, the wait gives up, exit 3."""
    write_lines(tmp_path / "traces.jsonl", day_traces(40))
    res = online(env, *SCHEDULE, "--wait", "--timeout", "2")
    assert res.returncode == 3, res.stderr
    assert "is not complete (0/" in res.stderr and "'judgeq resume o-" in res.stderr
    assert queued_chunks(broker)  # sent, and waiting for a worker
