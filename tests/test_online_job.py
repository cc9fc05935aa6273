"""The window job in one process, on SQLite and PostgreSQL: sample, store, judge, count; again, and late.

The story: a day of traces in a JSONL file, four locales of very different
sizes, judged by a local judge in this process. What lands in the ledger
is one run per judge with exactly the traces whose u is below their
stratum's rate, each row weighted 1/p; judging the window again sends
nothing, late traces are added at the window's stored rates, and the
ledger's sampling_rates table steers later windows.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from judges.config import load_config
from ledger.store import Ledger
from online.job import WindowJob
from online.sampling import Decider, parse_policy
from online.schedules import Schedule
from online.sources.base import open_source
from online.windows import parse_size, parse_window
from workers.dispatch import EmbeddedDispatcher
from workers.settings import WorkerSettings
from runs.sending import ChunkSettings

from .cli_runner import invoke
from .processes import base_env

DAY = parse_window("2026-11-22")
LOCALES = {"en": 0.80, "de": 0.15, "fr": 0.045, "ja": 0.005}


def trace(i: int, locale: str | None, ts: datetime, **extra: Any) -> dict[str, Any]:
    meta = {"session_id": f"s{i // 3}"} | ({"locale": locale} if locale else {})
    return {"id": f"t{i:05d}", "input": f"q {i}", "output": "yes" if i % 4 else "no", "expected": "yes",
            "ts": ts.isoformat(), "metadata": meta, **extra}


def write(path: Path, records: list[dict[str, Any]], mode: str = "w") -> Path:
    with path.open(mode) as f:
        for record in records:
            f.write((record if isinstance(record, str) else json.dumps(record)) + "\n")
    return path


def population(n: int = 4000) -> list[dict[str, Any]]:
    out, i = [], 0
    for locale, share in LOCALES.items():
        for _ in range(round(n * share)):
            out.append(trace(i, locale, DAY.start + timedelta(seconds=(i * 17) % 86_400)))
            i += 1
    return out


def schedule(**sampling: Any) -> Schedule:
    policy = parse_policy({"strata": "metadata.locale", "rate": 0.05, **sampling}, "test")
    return Schedule(name="prod-daily", source="prod", judges=("exact",), size=parse_size("1d"),
                    every=timedelta(days=1), policy=policy)


class Deferred(EmbeddedDispatcher):
    """Judges nothing until ``join``: the rows come after the job's own completion check, as on a busy machine."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(ledger, WorkerSettings())
        self.held: list[tuple[Any, str]] = []

    def send(self, message: Any, queue: str) -> None:
        self.held.append((message, queue))

    def join(self) -> None:
        for message, queue in self.held:
            super().send(message, queue)
        super().join()


def judge(ledger: Ledger, path: Path, sched: Schedule, window: Any = DAY) -> Any:
    source = open_source("prod", {"type": "jsonl", "path": str(path)}, path.parent)
    judges = [load_config(None).resolve(name) for name in sched.judges]
    dispatcher = Deferred(ledger)
    outcome = WindowJob(sched, window, source, judges, ledger, ChunkSettings()).run(dispatcher)
    dispatcher.join()
    outcome.settle(ledger)
    return outcome


def rows(ledger: Ledger, run_id: str) -> dict[str, Any]:
    return {s.trace_id: s for s in ledger.scores.scores(run_id)}


def test_a_window_is_sampled_per_stratum_judged_once_and_weighted(tmp_path: Path, ledger_url: str) -> None:
    traces = population()
    path = write(tmp_path / "traces.jsonl", traces)
    sched = schedule(min_per_stratum=15)
    ledger = Ledger(ledger_url)

    outcome = judge(ledger, path, sched)

    run_id = outcome.runs["exact"]
    assert run_id.startswith("o-2026-11-22-exact-") and outcome.created["exact"]
    counts = {c.stratum: c for c in ledger.windows.strata(run_id)}
    sizes = Counter(t["metadata"]["locale"] for t in traces)
    assert {s: c.seen for s, c in counts.items()} == dict(sizes)
    # ja has 20 traces: 5 % of it is one, so min_per_stratum lifts its rate to 15/20.
    assert counts["ja"].rate == pytest.approx(15 / 20) and counts["en"].rate == pytest.approx(0.05)
    decider = Decider(sched.policy)
    expected = {t["id"] for t in traces if decider.decide(t).u < counts[t["metadata"]["locale"]].rate}  # type: ignore[union-attr]
    written = rows(ledger, run_id)
    assert set(written) == expected and outcome.new["exact"] == len(expected)
    for trace_id, row in written.items():
        locale = row.stratum
        assert row.dataset == "2026-11-22" and row.weight == pytest.approx(1 / counts[locale].rate)
        assert row.cluster is not None and row.status == "ok"
    assert sum(c.sampled for c in counts.values()) == len(expected)
    run = ledger.runs.get_run(run_id)
    assert run.kind == "online" and run.window == "2026-11-22" and run.n_items == len(expected)
    assert run.status == "done"

    again = judge(ledger, path, sched)
    assert again.runs == outcome.runs and not again.created["exact"] and again.new["exact"] == 0
    assert len(rows(ledger, run_id)) == len(expected)


def test_late_traces_are_added_at_the_windows_rates(tmp_path: Path, ledger_url: str) -> None:
    traces = population(2000)
    path = write(tmp_path / "traces.jsonl", traces)
    sched = schedule(min_per_stratum=15)
    ledger = Ledger(ledger_url)
    first = judge(ledger, path, sched)
    run_id = first.runs["exact"]
    rates = {c.stratum: c.rate for c in ledger.windows.strata(run_id)}
    before = set(rows(ledger, run_id))

    late = [trace(10_000 + i, "ja", DAY.start + timedelta(hours=23, minutes=i)) for i in range(40)]
    write(path, late, mode="a")
    second = judge(ledger, path, sched)

    assert second.runs == first.runs
    after = rows(ledger, run_id)
    added = set(after) - before
    decider = Decider(sched.policy)
    assert added == {t["id"] for t in late if decider.decide(t).u < rates["ja"]}  # type: ignore[union-attr]
    assert second.new["exact"] == len(added) > 0
    assert {c.stratum: c.rate for c in ledger.windows.strata(run_id)} == rates  # the window keeps its rates
    assert all(after[t].weight == pytest.approx(1 / rates["ja"]) for t in added)
    assert {c.stratum: c.seen for c in ledger.windows.strata(run_id)}["ja"] == 10 + 40
    assert ledger.runs.get_run(run_id).n_items == len(after)


def test_bad_traces_are_skipped_and_counted_not_fatal(tmp_path: Path, sqlite_url: str) -> None:
    at = DAY.start + timedelta(hours=1)
    good = [trace(i, "en", at) for i in range(20)]
    path = write(tmp_path / "traces.jsonl", [
        *good,
        trace(1, "en", at),  # a duplicate id: the first is kept
        trace(100, None, at),  # no locale: stratum (none)
        "{not json",
        json.dumps({"id": "no-ts", "output": "x"}),
        json.dumps({"id": "bad-ts", "output": "x", "ts": "yesterday"}),
        trace(101, "en", DAY.end + timedelta(hours=1)),  # the next day
        json.dumps({"id": "not-a-record", "output": 7, "ts": at.isoformat()}),
    ])
    ledger = Ledger(sqlite_url)
    outcome = judge(ledger, path, schedule(rate=1.0))
    skipped = outcome.skipped
    assert skipped["duplicate"] == 1 and skipped["malformed"] == 1 and skipped["no_ts"] == 1
    assert skipped["bad_ts"] == 1 and skipped["invalid"] == 1
    run_id = outcome.runs["exact"]
    written = rows(ledger, run_id)
    assert set(written) == {t["id"] for t in good} | {"t00100"}
    assert written["t00100"].stratum == "(none)"
    assert ledger.runs.get_run(run_id).meta["skipped"]["duplicate"] == 1


def test_the_ledgers_rates_steer_new_windows_and_a_policy_change_makes_new_runs(tmp_path: Path,
                                                                                sqlite_url: str) -> None:
    path = write(tmp_path / "traces.jsonl", population(2000))
    ledger = Ledger(sqlite_url)
    ledger.windows.set_sampling_rate("prod-daily", "exact", "en", 0.5, set_by="test", reason="more English")
    ledger.windows.set_sampling_rate("prod-daily", "exact", "*", 0.0, set_by="test", reason="nothing else")
    outcome = judge(ledger, path, schedule())
    counts = {c.stratum: c for c in ledger.windows.strata(outcome.runs["exact"])}
    assert counts["en"].rate == 0.5 and counts["de"].rate == 0.0 and counts["de"].sampled == 0
    assert 0.4 < counts["en"].sampled / counts["en"].seen < 0.6

    salted = judge(ledger, path, schedule(salt="another"))
    assert salted.runs["exact"] != outcome.runs["exact"] and salted.created["exact"]
    higher = judge(ledger, path, schedule(rate=0.9))  # the rate is not the policy: the same run
    assert higher.runs == outcome.runs and higher.new["exact"] == 0


def test_the_embedded_command_leaves_its_runs_done(tmp_path: Path) -> None:
    """README's one-command window (no broker, a SQLite ledger): once it returns, its runs are "done".

    The job's own check runs as the sample is sent, before the in-process judges
    wrote their rows; without a beat to look again the run stayed "running".
    """
    db = tmp_path / "ledger.db"
    env = base_env(JUDGEQ_LEDGER_URL=f"sqlite:///{db}")
    done = invoke(["online", "--schedule", "examples-daily", "--window", "2026-11-22", "--json"], env)
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)["runs"]
    ledger = Ledger(f"sqlite:///{db}")
    for run_id in runs.values():
        run = ledger.runs.get_run(run_id)
        assert run.status == "done" and run.finished_at is not None and run.n_items > 0
