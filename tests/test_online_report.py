"""The report of online runs: the window's population estimated from weighted rows, per stratum and overall.

Runs are built through the Ledger API as the window job builds them (items,
score rows with weight 1/p, stratum and cluster, the window's counts), and
every figure is checked against the estimator written out here in numpy:
the ratio mean, its CR1 clustered variance, and the t or Wilson interval.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps

from ledger import ItemIn, Ledger, Run, ScoreIn, StratumCounts
from ledger.population import PopulationEstimate
from cli.views.online_report import trend_view

from .cli_runner import invoke
from .processes import base_env

pytestmark = pytest.mark.timeout(120)

#: stratum -> (eligible traces, rate p, mean score); "ko" has traces but none sampled.
STRATA = {"de": (400, 0.5, 0.8), "fr": (2000, 0.05, 0.4), "jp": (30, 1.0, 0.6), "(none)": (300, 0.1, 0.2),
          "ko": (40, 0.0, 0.5)}
LEVELS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])


@dataclass
class Row:
    trace_id: str
    stratum: str
    weight: float
    cluster: str | None
    score: float | None  # None: an error row


def _rows(seed: int, binary: bool = False) -> list[Row]:
    """A sample as the window job draws it: about eligible x p rows per stratum, sessions of up to 3 traces."""
    rng = np.random.default_rng(seed)
    rows: list[Row] = []
    for stratum, (eligible, rate, mean) in STRATA.items():
        n = int(rng.binomial(eligible, rate)) if rate < 1 else eligible
        for i in range(n):
            if binary:
                score: float | None = float(rng.random() < mean)
            else:
                score = float(LEVELS[np.clip(np.round(rng.normal(mean * 4, 1.2)), 0, 4).astype(int)])
            cluster = None if i % 7 == 6 else f"{stratum}-s{i // 3}"  # some traces have no session or user
            rows.append(Row(f"{stratum}-{i:04d}", stratum, 1 / rate, cluster, None if i % 25 == 24 else score))
    return rows


def _store(ledger: Ledger, run_id: str, window: str, rows: list[Row], judge: str = "helpful") -> None:
    ledger.runs.create_run_if_absent(Run(id=run_id, kind="online", dataset_name="prod", window=window,
                                    judges={judge: {"version": f"{judge}@abc", "kind": "llm"}},
                                    meta={"skipped": {"no_ts": 3, "bad_ts": 0}}))
    ledger.runs.add_new_items(run_id, [ItemIn(r.trace_id, i, "h", {"id": r.trace_id, "metadata": {
        "session_id": f"user-{i % 11}"}}) for i, r in enumerate(rows)])
    ledger.runs.refresh_run_counts(run_id)
    ledger.runs.set_status(run_id, "running")
    ledger.scores.write_scores([ScoreIn(run_id=run_id, trace_id=r.trace_id, eval=judge, judge_version=f"{judge}@abc",
                                 dataset=window, score=r.score, status="ok" if r.score is not None else "error",
                                 error=None if r.score is not None else "boom", weight=r.weight,
                                 stratum=r.stratum, cluster=r.cluster) for r in rows])
    sampled = {s: sum(1 for r in rows if r.stratum == s) for s in STRATA}
    ledger.windows.record_strata(run_id, [StratumCounts(s, eligible + 5, 5, sampled[s], sampled[s], rate)
                                  for s, (eligible, rate, _) in STRATA.items()])


def _by_hand(rows: list[Row], binary: bool = False) -> tuple[float, float, float, int]:
    """(mean, lo, hi, clusters): sum(w y)/sum(w), CR1 over clusters (no cluster: its own), t or Wilson interval."""
    ok = [r for r in rows if r.score is not None]
    y = np.array([r.score for r in ok], dtype=float)
    w = np.array([r.weight for r in ok])
    mean = float((w * y).sum() / w.sum())
    u = w * (y - mean) / w.sum()
    keys = [r.cluster if r.cluster is not None else f"own-{r.trace_id}" for r in ok]
    sums = np.array([u[[k == key for k in keys]].sum() for key in sorted(set(keys))])
    g = sums.size
    var = g / (g - 1) * float((sums**2).sum())
    if binary:
        n = y.size
        n_eff = mean * (1 - mean) / (var * (n - 1) / n)
        z = sps.norm.ppf(0.975)
        centre = (mean + z * z / (2 * n_eff)) / (1 + z * z / n_eff)
        half = z / (1 + z * z / n_eff) * np.sqrt(mean * (1 - mean) / n_eff + z * z / (4 * n_eff * n_eff))
        return mean, float(centre - half), float(centre + half), g
    half = float(sps.t.ppf(0.975, g - 1)) * float(np.sqrt(var))
    return mean, max(0.0, mean - half), min(1.0, mean + half), g


@pytest.fixture
def ledger(ledger_url: str):  # type: ignore[no-untyped-def]
    with Ledger(ledger_url) as ledger:
        yield ledger


def _check(estimate: PopulationEstimate, rows: list[Row], binary: bool = False) -> None:
    mean, lo, hi, clusters = _by_hand(rows, binary)
    overall = estimate.overall.card
    assert overall is not None and overall.estimate is not None
    assert (overall.estimate.mean, overall.estimate.lo, overall.estimate.hi) == pytest.approx((mean, lo, hi), abs=1e-12)
    assert overall.estimate.n_clusters == clusters
    for figures in estimate.strata:
        mine = [r for r in rows if r.stratum == figures.stratum]
        if not mine:
            assert figures.card is None
            continue
        mean, lo, hi, clusters = _by_hand(mine, binary)
        assert figures.card is not None and figures.card.estimate is not None
        assert (figures.card.estimate.mean, figures.card.estimate.lo, figures.card.estimate.hi) == pytest.approx(
            (mean, lo, hi), abs=1e-12), figures.stratum
        assert figures.card.estimate.n_clusters == clusters
        assert figures.card.errors == sum(1 for r in mine if r.score is None)


def test_the_estimate_is_the_weighted_clustered_mean_overall_and_per_stratum(ledger: Ledger) -> None:
    rows = _rows(seed=1)
    _store(ledger, "o-w1", "2026-11-22", rows)

    (estimate,) = ledger.windows.population("o-w1")
    _check(estimate, rows)
    assert [s.stratum for s in estimate.strata] == ["de", "fr", "jp", "ko", "(none)"]
    de = estimate.strata[0]
    assert de.counts == StratumCounts("de", 405, 5, sum(r.stratum == "de" for r in rows),
                                      sum(r.stratum == "de" for r in rows), 0.5)
    assert de.eligible == 400
    assert estimate.unrepresented == ["ko"]
    overall = estimate.overall
    assert overall.counts is not None and overall.counts.seen == sum(e + 5 for e, _, _ in STRATA.values())
    # The weights matter here: fr is a twentieth sampled and scores low, de is half sampled and scores high.
    scored = [r.score for r in rows if r.score is not None]
    assert overall.card is not None and overall.card.estimate is not None
    assert abs(overall.card.estimate.mean - float(np.mean(scored))) > 0.05


def test_pass_fail_judges_get_wilson_intervals_on_the_weighted_effective_size(ledger: Ledger) -> None:
    rows = _rows(seed=2, binary=True)
    _store(ledger, "o-b", "2026-11-22", rows)
    (estimate,) = ledger.windows.population("o-b")
    _check(estimate, rows, binary=True)
    assert estimate.overall.card is not None and estimate.overall.card.estimate is not None
    assert estimate.overall.card.estimate.method == "wilson"


def test_cluster_by_a_metadata_key_replaces_the_rows_clusters(ledger: Ledger) -> None:
    rows = _rows(seed=3)
    _store(ledger, "o-c", "2026-11-22", rows)
    (estimate,) = ledger.windows.population("o-c", cluster_by="session_id")
    assert estimate.clustered_by == "session_id"
    overall = estimate.overall.card
    assert overall is not None and overall.estimate is not None and overall.estimate.n_clusters == 11


def test_a_run_without_rows_yet_shows_its_counts_and_no_estimate(ledger: Ledger) -> None:
    ledger.runs.create_run_if_absent(Run(id="o-empty", kind="online", dataset_name="prod", window="2026-11-22",
                                    judges={"helpful": {"version": "helpful@abc"}}))
    ledger.windows.record_strata("o-empty", [StratumCounts("de", 10, 0, 5, 5, 0.5)])
    (estimate,) = ledger.windows.population("o-empty")
    assert estimate.overall.card is None and estimate.strata[0].counts == StratumCounts("de", 10, 0, 5, 5, 0.5)
    assert estimate.unrepresented == ["de"]


def test_the_trend_has_one_line_per_window_with_its_estimate(ledger: Ledger, capsys: Any) -> None:
    windows = ["2026-11-20", "2026-11-21", "2026-11-22"]
    samples = {window: _rows(seed=10 + i) for i, window in enumerate(windows)}
    for window in reversed(windows):
        _store(ledger, f"o-{window}", window, samples[window])
    runs = ledger.windows.online_runs("prod", "helpful", windows)

    points = trend_view(ledger, runs, json_out=True)
    lines = json.loads(capsys.readouterr().out)["windows"]
    assert [line["window"] for line in lines] == windows
    for point, line in zip(points, lines):
        mean, lo, hi, _ = _by_hand(samples[line["window"]])
        assert (line["mean"], line["ci_low"], line["ci_high"]) == pytest.approx((mean, lo, hi), abs=1e-12)
        assert line["judged"] == sum(r.score is not None for r in samples[line["window"]])
        assert line["unrepresented"] == ["ko"] and point.run_id == line["run"]

    trend_view(ledger, runs, title="prod · helpful")
    table = capsys.readouterr().out
    assert all(window in table for window in windows) and "no scored row" in table


def test_report_of_an_online_run_prints_and_emits_the_estimate(ledger_url: str) -> None:
    rows = _rows(seed=4)
    with Ledger(ledger_url) as ledger:
        _store(ledger, "o-cli", "2026-11-22T13", rows)
        (estimate,) = ledger.windows.population("o-cli")
    env = base_env(JUDGEQ_LEDGER_URL=ledger_url)

    res = invoke(["report", "o-cli", "--json"], env)
    assert res.returncode == 0, res.stderr
    payload = json.loads(res.stdout)
    assert payload["run"]["kind"] == "online" and payload["run"]["window"] == "2026-11-22T13"
    (population,) = payload["population"]
    assert population["clustered_by"] == "session, else user" and population["unrepresented"] == ["ko"]
    assert estimate.overall.card is not None and estimate.overall.card.estimate is not None
    assert population["overall"]["mean"] == pytest.approx(estimate.overall.card.estimate.mean)
    assert all(s.keys() == population["overall"].keys() for s in population["strata"])
    fr = next(s for s in population["strata"] if s["stratum"] == "fr")
    assert (fr["seen"], fr["filtered"], fr["eligible"], fr["rate"]) == (2005, 5, 2000, 0.05)
    assert fr["judged"] + fr["errors"] == fr["rows"] == sum(r.stratum == "fr" for r in rows)

    res = invoke(["report", "o-cli"], env)
    assert res.returncode == 0, res.stderr
    assert "window 2026-11-22T13" in res.stdout and "weighted by 1/p" in res.stdout
    assert "3 no_ts" in res.stdout and "ko" in res.stdout

    res = invoke(["report", "o-cli", "--baseline", "latest"], env)
    assert res.returncode == 2 and "online run" in res.stderr and "--baseline" in res.stderr
