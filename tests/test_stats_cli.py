"""The statistics commands end to end: report --by/--cluster-by, compare, gate with a baseline, CI files.

Runs are made in embedded mode (no broker) with the local exact-match judge,
on each ledger backend. The baseline has 170 of 200 items right; the
candidate breaks 30 of them (and fixes 1), drops two items and adds one.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .cli_runner import invoke
from .processes import base_env

pytestmark = pytest.mark.timeout(180)

BROKEN = {f"q{i:03d}" for i in range(0, 60, 2)}  # 30 baseline passes the candidate fails
FIXED = "q199"  # a baseline fail the candidate passes


def _record(i: int, right: bool) -> dict[str, object]:
    locale = "xx-XX" if i % 20 == 0 else ("en" if i % 2 else "de")  # xx-XX: a slice of 10
    return {"id": f"q{i:03d}", "input": f"question {i}", "output": "yes" if right else f"no, item {i} is wrong",
            "expected": "yes", "metadata": {"locale": locale, "session_id": f"s{i // 5}"}}


def _write(folder: Path, records: list[dict[str, object]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "golden.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _datasets(tmp_path: Path) -> tuple[Path, Path]:
    base = [_record(i, i < 170) for i in range(200)]
    cand = [_record(i, (i < 170 and f"q{i:03d}" not in BROKEN) or f"q{i:03d}" == FIXED) for i in range(2, 200)]
    cand.append({**_record(200, True), "id": "q-new"})
    return _write(tmp_path / "base", base), _write(tmp_path / "cand", cand)


def _submit(env: dict[str, str], path: Path, *extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    res = invoke(["submit", str(path), "--judge", "exact", "--wait", "--json", *extra], env)
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, json.loads(res.stdout)


def test_report_compare_and_gate_against_a_baseline(tmp_path: Path, ledger_url: str) -> None:
    env = base_env(JUDGEQ_LEDGER_URL=ledger_url)
    base_path, cand_path = _datasets(tmp_path)
    code, base = _submit(env, base_path, "--tag", "main", "--meta", "branch=main")
    assert code == 0 and base["run"]["tags"] == ["main"]
    base_id = base["run"]["id"]

    # A candidate gated on the latest main run: the regression fails it, with the items named.
    junit, md = tmp_path / "gate.xml", tmp_path / "summary.md"
    code, cand = _submit(env, cand_path, "--baseline", "latest", "--max-drop", "0.02",
                         "--junit", str(junit), "--markdown", str(md))
    assert code == 1 and cand["passed"] is False and cand["baseline"]["id"] == base_id
    (gate,) = [g for g in cand["gates"] if g["kind"] == "baseline"]
    assert not gate["passed"] and "29 pass->fail, 1 fail->pass" in gate["detail"]
    assert "2 items only in the baseline" in gate["detail"] and "1 items only in the candidate" in gate["detail"]
    assert set(gate["regressed"]) == BROKEN - {"q000"}  # q000 is not in the candidate
    assert cand["judges"][0]["n"] == 199 and "scorecard" in cand
    suite = ET.parse(junit).getroot()
    (case,) = suite.iter("testcase")
    failure = case.find("failure")
    assert failure is not None and suite.get("failures") == "1" and "q002" in (failure.text or "")
    assert "❌ FAILED" in md.read_text() and "`q002`" in md.read_text()
    cand_id = cand["run"]["id"]

    # compare: the flips, pass to fail first, with excerpts; one-sided items counted and listed.
    res = invoke(["compare", base_id, cand_id, "--by", "locale", "--json"], env)
    assert res.returncode == 0, res.stderr
    (judge,) = json.loads(res.stdout)["judges"]
    assert judge["pass_to_fail"] == 29 and judge["fail_to_pass"] == 1 and judge["n_paired"] == 198
    assert {f["id"] for f in judge["worse"]} == BROKEN - {"q000"}
    assert judge["worse"][0]["excerpt"].startswith("no, item")
    assert [f["id"] for f in judge["better"]] == [FIXED]
    assert judge["only_base"] == ["q000", "q001"] and judge["only_cand"] == ["q-new"]
    assert judge["test"]["name"] == "mcnemar-exact" and judge["test"]["p_value"] < 1e-5
    assert {s["slice"] for s in judge["slices"]} == {"de", "en", "xx-XX"}
    table = invoke(["compare", base_id, cand_id], env)
    assert table.returncode == 0 and "pass→fail: q002" in table.stdout and "q-new" in table.stdout

    # report: slices, the small one flagged; clustered errors beside the naive ones.
    res = invoke(["report", cand_id, "--by", "locale", "--cluster-by", "session_id", "--json"], env)
    assert res.returncode == 0, res.stderr
    cards = json.loads(res.stdout)["scorecard"]
    overall = cards[0]
    assert overall["slice"] is None and overall["ok"] == 199 and overall["interval"] == "wilson"
    assert overall["ci_low"] < overall["mean"] < overall["ci_high"] and overall["n_clusters"] == 41
    assert overall["se"] != pytest.approx(overall["se_naive"], rel=1e-3)
    small = {c["slice"]: c["small"] for c in cards[1:]}
    assert small == {"de": False, "en": False, "xx-XX": True}
    text = invoke(["report", cand_id, "--by", "locale", "--cluster-by", "session_id"], env)
    assert text.returncode == 0 and "se clustered" in text.stdout and "(small)" in text.stdout

    # gate: a tolerant baseline gate passes; the interval gate is stricter than the point one.
    ok = invoke(["gate", cand_id, "--baseline", base_id, "--max-drop", "0.5"], env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    point = invoke(["gate", cand_id, "--gate", "exact>=0.69", "--json"], env)
    interval = invoke(["gate", cand_id, "--gate", "exact>=0.69", "--gate-on", "interval", "--json"], env)
    assert point.returncode == 0 and interval.returncode == 1
    assert "95% CI lower end" in json.loads(interval.stdout)["gates"][0]["detail"]

    # No baseline with that tag: exit 2 and what to do.
    missing = invoke(["gate", cand_id, "--baseline", "latest", "--baseline-tag", "nightly"], env)
    assert missing.returncode == 2
    assert "no completed run of dataset 'golden' tagged 'nightly'; submit one with --tag nightly" in missing.stderr


@pytest.mark.parametrize("args,message", [
    (["gate", "RUN"], "nothing to gate on"),
    (["gate", "RUN", "--max-drop", "0.02"], "--max-drop needs --baseline"),
    (["gate", "RUN", "--gate", "exact>=0.5", "--gate-on", "upper"], "--gate-on 'upper'"),
    (["gate", "no-such-run", "--gate", "exact>=0.5"], "no run with id 'no-such-run'"),
    (["compare", "no-such-run", "RUN"], "no run with id 'no-such-run'"),
    (["gate", "RUN", "--baseline", "RUN"], "cannot be its own baseline"),
])
def test_bad_usage_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    env = base_env(JUDGEQ_LEDGER_URL=f"sqlite:///{tmp_path / 'l.db'}")
    path = _write(tmp_path, [_record(i, True) for i in range(5)])
    run_id = json.loads(invoke(["submit", str(path), "--judge", "exact", "--wait", "--json"], env).stdout)["run"]["id"]
    res = invoke([run_id if a == "RUN" else a for a in args], env)
    assert res.returncode == 2 and message in res.stderr, res.stderr
