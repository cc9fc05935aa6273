"""``judgeq online`` as a user drives it: OTLP span patterns, ranges of windows, ``--lateness``, empty windows.

Each test writes a judgeq.toml of its own (a ``noop`` judge, so nothing but
the source and the windows decide what happens) and runs the real CLI on a
SQLite ledger; the OTLP files are built from the real protobuf messages as
tests/test_sources_otlp.py builds them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger import Ledger

from .cli_runner import invoke
from .processes import base_env
from .test_sources_otlp import messages, otlp_json, request, span

pytestmark = pytest.mark.timeout(120)

DAY = datetime(2026, 11, 22, tzinfo=UTC)


def _config(folder: Path, span_names: list[str] | None = None) -> dict[str, str]:
    """judgeq.toml with an otlp source ``otel`` and a jsonl source ``logs``; the env of a CLI using it."""
    names = f"span_names = {json.dumps(span_names)}\n" if span_names is not None else ""
    (folder / "judgeq.toml").write_text(
        '[judges.ok]\ntype = "local"\nbuiltin = "noop"\n\n'
        f'[sources.otel]\ntype = "otlp"\npath = "otel.json"\n{names}\n'
        '[sources.logs]\ntype = "jsonl"\npath = "logs.jsonl"\n\n'
        '[online.hourly]\nsource = "logs"\njudges = ["ok"]\nwindow = "1h"\nlateness = "10m"\n')
    return base_env(JUDGEQ_CONFIG=str(folder / "judgeq.toml"), JUDGEQ_LEDGER_URL=f"sqlite:///{folder / 'l.db'}")


def _openai_spans(folder: Path, hours: int = 1, per_hour: int = 6) -> None:
    """Spans as the OpenAI client's GenAI instrumentation names them, content captured (span_only)."""
    spans = []
    for hour in range(hours):
        for i in range(per_hour):
            n = hour * 100 + i + 1
            spans.append(span(n, DAY + timedelta(hours=hour, minutes=i), name="chat gpt-4o-mini",
                              gen_ai__operation__name="chat", gen_ai__request__model="gpt-4o-mini",
                              gen_ai__input__messages=messages(("user", f"question {n}")),
                              gen_ai__output__messages=messages(("assistant", f"answer {n}"))))
    spans.append(span(9999, DAY, name="embeddings text-embedding-3-small", gen_ai__operation__name="embeddings"))
    (folder / "otel.json").write_text(otlp_json(request(spans, service__name="bot")) + "\n")


def _logs(folder: Path, hours: list[int]) -> None:
    with (folder / "logs.jsonl").open("w") as file:
        for hour in hours:
            for i in range(3):
                ts = DAY + timedelta(hours=hour, minutes=10 * i)
                file.write(json.dumps({"id": f"t{hour}-{i}", "input": "q", "output": f"a{hour}-{i}", "ts": ts.isoformat()}) + "\n")


def test_a_span_name_that_matches_nothing_says_which_names_it_read_and_exits_2(tmp_path: Path) -> None:
    """Issue 17 item 13: ``span_names = ["chat"]`` against the real names used to judge 0 traces, exit 0, silently."""
    _openai_spans(tmp_path)
    env = _config(tmp_path, span_names=["chat"])
    args = ["online", "--source", "otel", "--judge", "ok", "--window", "2026-11-22T00"]
    res = invoke(args, env)
    assert res.returncode == 2, res.stderr
    assert ("window 2026-11-22T00 of source 'otel' read 7 spans and matched none: 6 'chat gpt-4o-mini', "
            "1 'embeddings text-embedding-3-small'") in res.stderr
    assert "span_names = ['chat'] matches none" in res.stderr and '"chat *"' in res.stderr
    assert "nothing picked" in res.stdout
    shown = json.loads(invoke([*args, "--json"], env).stdout)
    assert shown["empty"] is True and shown["seen"] == 0
    assert shown["passed_over"]["read"] == 7
    assert shown["passed_over"]["names"][0] == {"name": "chat gpt-4o-mini", "count": 6}
    # the README's pattern picks them; the runs the failed attempt left are filled by the same command
    env = _config(tmp_path, span_names=["chat *", "text_completion *"])
    fixed = invoke([*args, "--json"], env)
    assert fixed.returncode == 0, fixed.stderr
    body = json.loads(fixed.stdout)
    assert body["seen"] == 6 and body["enqueued"] == {"ok": 6} and body["passed_over"] is None
    assert body["runs"] == shown["runs"]


def test_a_range_judges_each_window_once_and_refuses_bad_ranges_whole(tmp_path: Path) -> None:
    _logs(tmp_path, [0, 1, 3])
    env = _config(tmp_path)
    res = invoke(["online", "--schedule", "hourly", "--window", "2026-11-22T00..2026-11-22T03", "--json"], env)
    assert res.returncode == 0, res.stderr
    body = json.loads(res.stdout)
    assert body["range"] == "2026-11-22T00..2026-11-22T03"
    assert [(w["window"], w["seen"], w["empty"]) for w in body["windows"]] == [
        ("2026-11-22T00", 3, False), ("2026-11-22T01", 3, False), ("2026-11-22T02", 0, True),
        ("2026-11-22T03", 3, False)]
    ledger = Ledger(env["JUDGEQ_LEDGER_URL"])
    runs = [w["runs"]["ok"] for w in body["windows"]]
    assert [ledger.runs.get_run(r).window for r in runs] == ["2026-11-22T00", "2026-11-22T01", "2026-11-22T02",
                                                         "2026-11-22T03"]
    assert all(ledger.runs.get_run(r).status == "done" for r in runs)
    again = invoke(["online", "--schedule", "hourly", "--window", "2026-11-22T01..2026-11-22T02"], env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("(judged before: only new traces sent)") == 2
    assert "empty: the source had no trace in window 2026-11-22T02" in again.stdout
    for bad, says in [("2026-11-22T00..2026-11-23", "mixes sizes (1h and 1d)"),
                      ("2026-11-22T03..2026-11-22T01", "runs backwards"),
                      ("2026-01-01T00..2026-03-01T00", "holds 1417 windows of 1h; at most 1000"),
                      ("2026-11-22T00..2099-01-01T00", "at most 1000"),
                      ("2026-11-22T00..2026-11-22T0x", "malformed")]:
        refused = invoke(["online", "--schedule", "hourly", "--window", bad], env)
        assert refused.returncode == 2 and says in refused.stderr, (bad, refused.stderr)
    assert len(Ledger(env["JUDGEQ_LEDGER_URL"]).runs.list_runs(limit=100)) == 4  # nothing written by the refusals


def test_a_range_reaching_an_open_window_is_refused_whole(tmp_path: Path) -> None:
    env = _config(tmp_path)
    _logs(tmp_path, [])
    now = datetime.now(UTC)
    newest = (now + timedelta(hours=2)).strftime("%Y-%m-%dT%H")
    oldest = (now - timedelta(hours=3)).strftime("%Y-%m-%dT%H")
    res = invoke(["online", "--schedule", "hourly", "--window", f"{oldest}..{newest}"], env)
    assert res.returncode == 2 and f"window {newest} is in the future" in res.stderr
    assert Ledger(env["JUDGEQ_LEDGER_URL"]).runs.list_runs(limit=10) == []


def test_lateness_decides_when_an_ad_hoc_window_is_closed(tmp_path: Path) -> None:
    """--lateness is the schedules' grace period, for this command: the window just ended is closed with 0s."""
    env = _config(tmp_path)
    _logs(tmp_path, [])
    now = datetime.now(UTC)
    # the hour that just ended is open for an hour's lateness, whatever the minute now is
    just_ended = (now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)).strftime("%Y-%m-%dT%H")
    base = ["online", "--source", "logs", "--judge", "ok", "--window", just_ended]
    refused = invoke([*base, "--lateness", "1h"], env)
    assert refused.returncode == 2 and f"window {just_ended} is not closed yet" in refused.stderr
    assert "lateness 1h" in refused.stderr
    judged = invoke([*base, "--lateness", "0s", "--json"], env)
    assert judged.returncode == 0, judged.stderr
    assert json.loads(judged.stdout)["window"] == just_ended
    bad = invoke([*base, "--lateness", "soon"], env)
    assert bad.returncode == 2 and "--lateness: 'soon' is not a duration" in bad.stderr
    # --last follows it too: with 0s the newest closed hour is the one that just ended
    last = invoke(["online", "--source", "logs", "--judge", "ok", "--last", "1h", "--lateness", "0s", "--json"], env)
    assert json.loads(last.stdout)["window"] in (just_ended, now.strftime("%Y-%m-%dT%H"))  # the hour may turn


def test_last_hour_that_was_empty_says_so(tmp_path: Path) -> None:
    env = _config(tmp_path)
    _logs(tmp_path, [0])  # nothing in any recent hour
    res = invoke(["online", "--source", "logs", "--judge", "ok", "--last", "1h"], env)
    assert res.returncode == 0, res.stderr
    assert "empty: the source had no trace in window" in res.stdout and "nothing was judged" in res.stdout
    body: dict[str, Any] = json.loads(invoke(["online", "--source", "logs", "--judge", "ok", "--last", "1h",
                                               "--json"], env).stdout)
    assert body["empty"] is True and body["seen"] == 0 and body["passed_over"] is None


def test_promote_takes_a_schedule_as_drift_does(tmp_path: Path) -> None:
    _logs(tmp_path, [0])
    env = _config(tmp_path)
    assert invoke(["online", "--schedule", "hourly", "--window", "2026-11-22T00"], env).returncode == 0
    golden = tmp_path / "golden.jsonl"
    base = ["promote", "--window", "2026-11-22T00", "--where", 'id != ""', "--to", str(golden)]
    res = invoke([*base, "--schedule", "hourly", "--judge", "ok", "--json"], env)
    assert res.returncode == 0, res.stderr
    assert sorted(json.loads(line)["id"] for line in golden.read_text().splitlines()) == ["t0-0", "t0-1", "t0-2"]
    for extra, says in [(["--schedule", "nightly", "--judge", "ok"], "unknown schedule 'nightly'"),
                        (["--schedule", "hourly", "--judge", "noop"], "schedule 'hourly' does not run judge 'noop'"),
                        (["--schedule", "hourly", "--source", "logs", "--judge", "ok"], "not both")]:
        refused = invoke([*base, *extra], env)
        assert refused.returncode == 2 and says in refused.stderr, (extra, refused.stderr)


def test_runs_shows_window_ids_whole(tmp_path: Path) -> None:
    """`judgeq runs` cut every version to 12 characters: 2026-11-22T13:05+15m showed as 2026-11-22T1."""
    from ledger import Run

    env = _config(tmp_path)
    ledger = Ledger(env["JUDGEQ_LEDGER_URL"])
    for run_id, window in [("o-week", "2026-W47"), ("o-minutes", "2026-11-22T13:05+15m")]:
        ledger.runs.create_run_if_absent(Run(id=run_id, kind="online", dataset_name="prod", window=window,
                                        judges={"ok": {"version": "ok@abc", "kind": "local"}}))
    ledger.runs.create_run_if_absent(Run(id="r-offline", kind="offline", dataset_name="golden", dataset_hash="ab" * 32,
                                    judges={"ok": {"version": "ok@abc", "kind": "local"}}))
    res = invoke(["runs"], env)
    assert res.returncode == 0, res.stderr
    assert "prod (2026-W47)" in res.stdout and "prod (2026-11-22T13:05+15m)" in res.stdout
    assert f"golden ({'ab' * 6})" in res.stdout  # a dataset hash stays short
