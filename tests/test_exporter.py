"""``judgeq exporter``'s figures: each metric against numbers computed here from the rows written, on both
backends; the snapshot cache; bounded slice labels; the [exporter] table's errors; a ledger that is down.

The collector runs in-process here and its exposition text is parsed with
prometheus_client's own parser (what a scrape gets); the real server and a
real Prometheus are tests/test_exporter_prometheus.py's.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ledger.models import CanaryCheck
from ledger.store import Ledger
from scheduler.errors import UsageError
from scheduler.exporter import LedgerCollector
from scheduler.metrics import (COUNT_LAG, Counters, ExporterConfig, SnapshotCache, load_exporter_config, metric_name,
                               take_snapshot)

from .metrics_rows import Row, make_run, weighted_mean, write_rows
from .processes import base_env, free_port, run_cli

pytestmark = pytest.mark.timeout(120)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(ledger: Ledger, config_path: Path, *, broker_url: str | None = None,
           window: timedelta = timedelta(hours=1)) -> Samples:
    """One scrape of a fresh collector that counts rows from a day ago, taken as if COUNT_LAG had passed since the
    rows were written: every sample by (name, sorted labels)."""
    config = load_exporter_config(config_path)
    now = datetime.now(UTC) + COUNT_LAG + timedelta(seconds=1)
    counters = Counters(now - timedelta(days=1))
    cache = SnapshotCache(lambda: take_snapshot(ledger, config, config_path, window, broker_url, now, counters),
                          timedelta(seconds=15))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(cache, config))
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def config_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "judgeq.toml"
    path.write_text(body)
    return path


def test_every_metric_agrees_with_the_rows(ledger_url: str, tmp_path: Path, redis_url: str) -> None:
    ledger = Ledger(ledger_url)
    now = datetime.now(UTC)
    online = [Row("a", "en", 0.8, weight=4.0, cost_usd=0.02, latency_s=0.3),
              Row("b", "en", 0.2, weight=1.0, cost_usd=0.01, latency_s=1.5),
              Row("c", "de", 1.0, weight=50.0, cost_usd=0.02, latency_s=7.0),
              Row("d", None, 0.5, weight=2.0, latency_s=0.0, cached=True),
              Row("e", "de", None, status="error", cost_usd=0.005, latency_s=40.0),
              Row("f", "fr", 0.0, status="skipped")]
    old = [Row("g", "en", 0.0, weight=1.0, cost_usd=1.0, ts=now - timedelta(hours=2))]  # outside the 1 h window
    offline = [Row("h", "en", 1.0, cost_usd=0.5, latency_s=0.2), Row("i", "en", 0.0, latency_s=0.2)]
    make_run(ledger, "on")
    write_rows(ledger, "on", online + old)
    make_run(ledger, "off", kind="offline", dataset_name="golden")
    write_rows(ledger, "off", offline, dataset="sha256:test")
    make_run(ledger, "other", judges=("tone-v2",))
    write_rows(ledger, "other", [Row("x", "en", 0.75)], eval_name="tone-v2", version="tone-v2@aaaaaaaaaaaa")
    ledger.budgets.set_budget("judge:relevance", 12.5, who="test", via="api")
    ledger.windows.set_sampling_rate("prod", "relevance", "de", 0.02, set_by="budget", reason="test")
    for at, agreement, status in ((now - timedelta(days=1), 1.0, "ok"), (now, 0.7, "alert"), (now, None, "no_data")):
        ledger.canary.record(CanaryCheck(at=at, judge="relevance", judge_version="relevance@0123456789ab",
                                         reference_run="r0", run_id="r1", n=50, agreement=agreement, threshold=0.1,
                                         status=status))
    client = redis.Redis.from_url(redis_url)
    client.rpush("remote", *[b"m"] * 3)
    client.close()

    got = scrape(ledger, config_file(tmp_path, '[exporter]\nslices = ["metadata.locale"]\n'), broker_url=redis_url)

    def value(name: str, **labels: str) -> float:
        return got[(name, tuple(sorted(labels.items())))]

    in_window = online
    for locale in ("en", "de"):
        rows = [r for r in in_window if r.locale == locale]
        assert math.isclose(value("app_eval_relevance", kind="online", locale=locale), weighted_mean(rows))
    assert math.isclose(value("app_eval_relevance", kind="online", locale="en"), (4 * 0.8 + 0.2) / 5)
    # All traffic beside the slices: every slice label empty, which Prometheus stores as no label at all.
    assert math.isclose(value("app_eval_relevance", kind="online", locale=""), weighted_mean(in_window))
    assert math.isclose(value("app_eval_relevance", kind="online", locale=""), (4 * 0.8 + 0.2 + 50 + 2 * 0.5) / 57)
    assert value("app_eval_relevance", kind="offline", locale="") == 0.5
    assert value("app_eval_relevance", kind="online", locale="(none)") == 0.5
    assert value("app_eval_relevance", kind="offline", locale="en") == 0.5
    assert ("app_eval_relevance", (("kind", "online"), ("locale", "fr"))) not in got  # a skip is no verdict
    assert value("app_eval_tone_v2", kind="online", locale="en") == 0.75  # '-' is not allowed in a metric name
    assert value("judgeq_eval_window_verdicts", judge="relevance", judge_version="relevance@0123456789ab",
                 kind="online") == 4

    every = online + old + offline
    for status in ("ok", "error", "skipped"):
        assert value("judgeq_scores_total", judge="relevance", status=status) == sum(r.status == status for r in every)
    assert math.isclose(value("judgeq_cost_usd_total", judge="relevance"), sum(r.cost_usd for r in every))
    timed = [r for r in every if not r.cached]
    assert value("judgeq_judge_latency_seconds_count", judge="relevance") == len(timed)
    assert math.isclose(value("judgeq_judge_latency_seconds_sum", judge="relevance"), sum(r.latency_s for r in timed))
    for bound in ("0.25", "1", "5", "30", "60", "+Inf"):
        limit = math.inf if bound == "+Inf" else float(bound)
        assert value("judgeq_judge_latency_seconds_bucket", judge="relevance", le=bound) == sum(
            r.latency_s <= limit for r in timed)

    # today's spend counts online rows written today only (a row 2 h ago may be yesterday's: computed, not assumed)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today = sum(r.cost_usd for r in online) + sum(r.cost_usd for r in old if (r.ts or now) >= start)
    assert math.isclose(value("judgeq_spent_today_usd", judge="relevance"), today)
    assert value("judgeq_budget_usd_per_day", scope="judge:relevance") == 12.5
    assert math.isclose(value("judgeq_budget_spent_today_usd", scope="judge:relevance"), today)
    assert value("judgeq_sampling_rate", schedule="prod", judge="relevance", stratum="de") == 0.02
    # the newest check that compared two runs (the later no-data one says nothing of agreement)
    assert value("judgeq_canary_agreement", judge="relevance", judge_version="relevance@0123456789ab") == 0.7
    assert value("judgeq_queue_depth", queue="remote") == 3 and value("judgeq_queue_depth", queue="local") == 0
    assert value("judgeq_broker_up") == 1 and value("judgeq_ledger_up") == 1


def test_counters_count_each_row_once_as_the_cut_advances(sqlite_url: str) -> None:
    ledger = Ledger(sqlite_url)
    t0 = datetime(2026, 11, 22, 13, 0, tzinfo=UTC)
    make_run(ledger, "on")
    write_rows(ledger, "on", [Row("a", "en", 1.0, cost_usd=0.5, ts=t0 + timedelta(seconds=1)),
                              Row("b", "en", None, status="error", ts=t0 + timedelta(seconds=9)),
                              Row("c", "en", 1.0, cost_usd=0.25, ts=t0 + timedelta(seconds=15)),
                              Row("z", "en", 1.0, cost_usd=9.0, ts=t0 - timedelta(seconds=1))])  # before counting
    counters = Counters(t0)

    def counts() -> dict[tuple[str, str], tuple[int, float]]:
        return {(t.eval, t.status): (t.rows, t.cost_usd) for t in counters.totals.values()}

    counters.advance(ledger, t0 + timedelta(seconds=10))
    assert counts() == {("relevance", "ok"): (1, 0.5), ("relevance", "error"): (1, 0.0)}
    counters.advance(ledger, t0 + timedelta(seconds=10))  # the same cut again: nothing added
    counters.advance(ledger, t0 + timedelta(seconds=5))  # an earlier cut (a clock step back): nothing either
    assert counts() == {("relevance", "ok"): (1, 0.5), ("relevance", "error"): (1, 0.0)}
    write_rows(ledger, "on", [Row("d", "en", 0.0, cost_usd=1.0, ts=t0 + timedelta(seconds=12))])
    counters.advance(ledger, t0 + timedelta(seconds=20))
    assert counts() == {("relevance", "ok"): (3, 1.75), ("relevance", "error"): (1, 0.0)}


def test_slice_values_beyond_max_values_fold_into_other(sqlite_url: str, tmp_path: Path) -> None:
    ledger = Ledger(sqlite_url)
    make_run(ledger, "on")
    rows = ([Row(f"en{i}", "en", 1.0) for i in range(5)] + [Row(f"de{i}", "de", 0.5) for i in range(3)]
            + [Row("fr", "fr", 0.0), Row("it", "it", 0.25, weight=3.0)])
    write_rows(ledger, "on", rows)
    got = scrape(ledger, config_file(tmp_path, '[exporter]\nslices = ["metadata.locale"]\nmax_values = 2\n'))
    series = {dict(labels)["locale"]: v for (name, labels), v in got.items() if name == "app_eval_relevance"}
    assert set(series) == {"en", "de", "(other)", ""}  # the two with most rows keep their value; "": all traffic
    assert math.isclose(series["(other)"], weighted_mean(rows[-2:]))
    assert math.isclose(series[""], weighted_mean(rows))


def test_the_cache_reads_the_ledger_once_per_refresh(sqlite_url: str, tmp_path: Path) -> None:
    ledger = Ledger(sqlite_url)
    config = ExporterConfig()
    taken: list[datetime] = []
    clock = [1000.0]

    def take():  # type: ignore[no-untyped-def]
        now = datetime.now(UTC)
        snapshot = take_snapshot(ledger, config, tmp_path / "none.toml", timedelta(hours=1), None, now, Counters(now))
        taken.append(snapshot.taken_at)
        return snapshot

    cache = SnapshotCache(take, timedelta(seconds=15), clock=lambda: clock[0])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(cache, config))
    for _ in range(50):  # a scrape storm
        generate_latest(registry)
    assert len(taken) == 1
    clock[0] += 14.9
    generate_latest(registry)
    assert len(taken) == 1
    clock[0] += 0.2
    text = generate_latest(registry).decode()
    assert len(taken) == 2 and "judgeq_exporter_snapshots_total 2.0" in text


def test_a_ledger_or_broker_that_is_down_is_said_not_hidden(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    ledger = Ledger(f"postgresql+psycopg://postgres@127.0.0.1:{port}/judgeq?connect_timeout=2")
    got = scrape(ledger, config_file(tmp_path, ""), broker_url=f"redis://127.0.0.1:{port}/0")
    assert got[("judgeq_ledger_up", ())] == 0 and got[("judgeq_broker_up", ())] == 0
    assert not any(name == "judgeq_queue_depth" for name, _ in got)  # no depth rather than a made-up 0
    assert got[("judgeq_exporter_snapshot_failures_total", ())] == 1
    assert not any(name.startswith("app_eval_") or name.startswith("judgeq_scores") for name, _ in got)


def test_metric_names_follow_prometheus_rules() -> None:
    assert metric_name("faithfulness") == "app_eval_faithfulness"
    assert metric_name("tone-v2.1") == "app_eval_tone_v2_1"
    assert metric_name("relevância") == "app_eval_relev_ncia"


@pytest.mark.parametrize(("body", "says"), [
    ('[exporter]\nslices = ["input"]\n', "slices: 'input' is not a metadata key"),
    ('[exporter]\nslices = ["metadata.kind"]\n', "would be the label 'kind', which is reserved"),
    ('[exporter]\nslices = ["bogus"]\n', "'bogus' is not a record field"),
    ('[exporter]\nslices = ["metadata.a-b", "metadata.a_b"]\n', "are both the label 'a_b'"),
    ('[exporter]\nslice = ["metadata.locale"]\n', "unknown key 'slice'; the keys are slices, max_values"),
    ('[exporter]\nmax_values = 0\n', "max_values: 0 is not a count"),
    ('exporter = 3\n', "[exporter]: must be a table"),
])
def test_a_bad_exporter_table_names_file_table_and_key(tmp_path: Path, body: str, says: str) -> None:
    path = config_file(tmp_path, body)
    with pytest.raises(UsageError) as caught:
        load_exporter_config(path)
    assert says in str(caught.value) and f"{path} [exporter]" in str(caught.value)


def test_cli_bad_usage_exits_2_before_listening(tmp_path: Path, sqlite_url: str) -> None:
    env = base_env(JUDGEQ_LEDGER_URL=sqlite_url, JUDGEQ_CONFIG=str(config_file(tmp_path, '[exporter]\nslices = 3\n')))
    done = run_cli(["exporter", "--port", str(free_port())], env, timeout=60)
    assert done.returncode == 2 and "[exporter] slices: write a list" in done.stderr, done.stderr
    env["JUDGEQ_CONFIG"] = str(config_file(tmp_path, ""))
    done = run_cli(["exporter", "--refresh", "0s"], env, timeout=60)
    assert done.returncode == 2 and "--refresh 0s: give 1 s to 3600 s" in done.stderr, done.stderr
    done = run_cli(["exporter", "--window", "soon"], env, timeout=60)
    assert done.returncode == 2 and "--window: 'soon' is not a duration" in done.stderr, done.stderr
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        done = run_cli(["exporter", "--port", str(busy)], env, timeout=60)
    assert done.returncode == 2 and f"cannot listen on 127.0.0.1:{busy}" in done.stderr, done.stderr
