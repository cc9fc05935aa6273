"""``judgeq promote``: failing traces into the golden set, deduplicated, appended atomically, seen by the next run.

The ``--where`` language is checked on its own; promotion through the library
on both ledger backends (runs built through the Ledger API as submit and the
window job build them); and end to end through the CLI: an embedded submit
and an online window judged by a real local judge, promoted, and the golden
set submitted again, whose rows must include the promoted traces.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from judges.record import Record
from ledger import ItemIn, Ledger, Run, ScoreIn
from scheduler.errors import InputError, UsageError
from scheduler.promotion import PROVENANCE_KEY, find_run, promote
from scheduler.records import scan
from scheduler.where import parse_where

from .cli_runner import invoke
from .processes import base_env

pytestmark = pytest.mark.timeout(180)

NOW = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)
ROW = {"row": {"score": 0.3, "label": "fail", "status": "ok", "error_kind": None, "cached": False},
       "record": {"id": "t1", "output": "x", "metadata": {"locale": "de", "tier": 2, "a b": True}}}


# --- the --where language ----------------------------------------------------------


@pytest.mark.parametrize(("text", "holds"), [
    ("score < 0.5", True), ("score >= 0.5", False), ("0.5 > score", True), ("0.2 < score < 0.5", True),
    ("0.3 < score <= 0.9", False), ('label == "fail"', True), ("label != 'fail'", False),
    ('label in ["fail", "bad"]', True), ('label not in ["fail"]', False), ("metadata.locale == 'de'", True),
    ("metadata.tier == 2", True), ("metadata.tier == '2'", False), ("metadata.tier > 1", True),
    ('metadata["a b"] == true', True), ('metadata["a b"] == 1', False), ("metadata.missing is null", True),
    ("metadata.missing == 'x'", False), ("metadata.missing not in ['x']", True), ("metadata.missing < 3", False),
    ("error_kind is null", True), ("error_kind is not None", False), ("not score > 0.5", True),
    ("score < 0.5 and metadata.locale == 'fr'", False), ("score > 0.5 or (status == 'ok' and label == 'fail')", True),
    ("trace_id == 't1'", True), ("id == 't2'", False), ("score < -1", False), ("cached == false", True),
])
def test_where_tests_rows(text: str, holds: bool) -> None:
    assert parse_where(text)(ROW) is holds


def test_an_absent_score_fails_every_order_test() -> None:
    error_row = {"row": {"score": None, "status": "error"}, "record": {"output": "x"}}
    assert not parse_where("score < 0.5")(error_row) and not parse_where("score >= 0.5")(error_row)
    assert parse_where("score is null and status == 'error'")(error_row)


def test_nesting_is_bounded_without_recursing() -> None:
    """Deep input is a clear refusal (the compiler recursed: 1,000 ``not`` were a RecursionError, exit 4)."""
    assert parse_where("not " * 30 + "score < 0.5")(ROW) is parse_where("score < 0.5")(ROW)
    for deep in ("not " * 1000 + "score < 0.5", "not " * 200_000 + "score < 0.5", "-" * 5000 + "1 < score"):
        with pytest.raises(UsageError, match="nests more than 64 levels"):
            parse_where(deep)


@pytest.mark.parametrize(("text", "column", "words"), [
    ("score = 0.5", 7, "write == to compare"),
    ("score < 'low'", 9, "score holds a number"),
    ("label < 3", 9, "label holds text"),
    ("sore < 0.5", 1, "unknown name 'sore'"),
    ("score < 0.5 and bogus.x == 1", 17, "unknown name 'bogus.x'"),
    ("score + 1 < 2", 1, "expected a name"),
    ("__import__('os') == 1", 1, "expected a name"),
    ("score", 1, "expected a test"),
    ("label is 'fail'", 10, "'is' compares with null only"),
    ("label in 'fail'", 10, "expected a list of values"),
    ("metadata < 1", 1, "metadata holds keys"),
    ("score < [1]", 9, "expected a value"),
])
def test_a_bad_where_names_its_column(text: str, column: int, words: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_where(text)
    assert f"column {column}:" in str(caught.value) and words in str(caught.value)


# --- promotion through the library, both backends ----------------------------------


def _record(i: int, locale: str, output: str | None = None) -> dict[str, Any]:
    return Record.model_validate({"id": f"t{i:02d}", "input": f"question {i}", "output": output or f"answer {i}",
                                  "metadata": {"locale": locale, "session_id": f"s{i}"},
                                  "ts": "2025-06-01T10:00:00Z"}).to_message()


def _offline_run(ledger: Ledger, rows: list[tuple[dict[str, Any], float | None]], run_id: str = "r-off") -> Run:
    run = Run(id=run_id, kind="offline", dataset_name="traffic", dataset_hash="ab" * 32,
              judges={"helpful": {"version": "helpful@0123456789ab"}}, status="done", expected=len(rows))
    ledger.runs.create_run(run)
    ledger.runs.add_items(run_id, [ItemIn(r["id"], i, "h", r) for i, (r, _) in enumerate(rows)])
    ledger.scores.write_scores([
        ScoreIn(run_id=run_id, trace_id=r["id"], eval="helpful", judge_version="helpful@0123456789ab",
                dataset=run.dataset_hash or "", score=score, label=None if score is None else
                "pass" if score >= 0.5 else "fail", reason=f"because {r['id']}",
                status="ok" if score is not None else "error", error=None if score is not None else "boom",
                error_kind=None if score is not None else "answer") for r, score in rows])
    return ledger.runs.get_run(run_id)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


GOLDEN_HEAD = '{"id": "g1", "input": "question 1", "output": "answer 1", "expected": "ok"}\n{"id": "t23", "output": "kept"}'


def test_promotion_appends_worst_first_deduplicated_once(ledger_url: str, tmp_path: Path) -> None:
    ledger = Ledger(ledger_url)
    locales = ["de", "fr", "ja"]
    rows = [(_record(i, locales[i % 3]), (i % 10) / 10) for i in range(30)]
    rows.append((_record(30, "de"), None))  # an error row: no score, never "< 0.5"
    rows.append((_record(31, "de", output="answer 3"), 0.0))  # t03's output, not its input: not the same
    rows.append((_record(32, "fr") | {"input": "question 2", "output": "answer 2"}, 0.1))  # t02's content
    run = _offline_run(ledger, rows)
    golden = tmp_path / "golden.jsonl"
    golden.write_text(GOLDEN_HEAD)  # t23's id is there already; g1 has t01's content; no final line end
    before = golden.read_bytes()

    done = promote(ledger, run, "helpful", parse_where("score < 0.5"), golden, by="locale", limit=4, now=NOW)

    assert done.considered == 33 and done.matched == 17  # i % 10 < 5: 15 of 30, plus t31 and t32
    after = golden.read_bytes()
    assert after.startswith(before + b"\n")  # old bytes kept; only a line end added before the new lines
    added = [line["id"] for line in _lines(golden)[2:]]
    assert added == [c.trace_id for c in done.added]
    # Per locale the 4 lowest scores, worst first overall; t01 (g1's content) and t23 (id in file) dropped,
    # and t02, whose content t32 (worse, so first) has in the same batch.
    by_locale: dict[str, list[str]] = {}
    for r, score in rows:
        if score is not None and score < 0.5:
            by_locale.setdefault(r["metadata"]["locale"], []).append(r["id"])
    scores = dict((r["id"], s) for r, s in rows)
    selected = sorted((tid for ids in by_locale.values() for tid in sorted(ids, key=lambda t: (scores[t], t))[:4]),
                      key=lambda t: (scores[t], t))
    assert done.selected == len(selected) == 12
    expected_ids = [t for t in selected if t not in ("t01", "t23", "t02")]
    assert added == expected_ids, (added, selected)
    assert done.already_in_file == 2 and done.same_in_batch == 1
    line = _lines(golden)[2]
    source = dict(rows[[r["id"] for r, _ in rows].index(line["id"])][0])
    assert line["expected"] is None and line["output"] == source["output"] and line["ts"] == source["ts"]
    provenance = line["metadata"].pop(PROVENANCE_KEY)
    assert line["metadata"] == source["metadata"]
    assert provenance == {"run": "r-off", "kind": "offline", "judge": "helpful", "judge_version": "helpful@0123456789ab",
                          "score": scores[line["id"]], "label": "fail", "status": "ok",
                          "reason": f"because {line['id']}", "dataset": "traffic", "dataset_hash": "ab" * 32,
                          "where": "score < 0.5", "at": NOW.isoformat()}
    info = scan(golden)  # the file passes submit's validation whole, and the hash is submit's dataset version
    assert done.dataset_hash == info.content_hash == hashlib.sha256(after).hexdigest()
    assert done.records == info.count == 2 + len(added)

    again = promote(ledger, run, "helpful", parse_where("score < 0.5"), golden, by="locale", limit=4, now=NOW)
    assert again.added == [] and golden.read_bytes() == after and again.dataset_hash == done.dataset_hash
    assert again.already_in_file == 12 and again.same_in_batch == 0  # t32 is in the file now


def test_errors_promoted_by_status_and_expected_from_a_field(ledger_url: str, tmp_path: Path) -> None:
    ledger = Ledger(ledger_url)
    with_reference = _record(2, "de")
    with_reference["metadata"]["reference"] = "the right answer"
    run = _offline_run(ledger, [(_record(1, "de"), None), (with_reference, 0.2), (_record(3, "fr"), 0.9)])
    golden = tmp_path / "new" / "golden.jsonl"
    golden.parent.mkdir()
    done = promote(ledger, run, "helpful", parse_where("status == 'error' or score < 0.5"), golden,
                   expected_from="metadata.reference", now=NOW)
    lines = {line["id"]: line for line in _lines(golden)}  # a new file: created
    assert set(lines) == {"t01", "t02"} and done.expected_filled == 1
    assert lines["t02"]["expected"] == "the right answer" and lines["t01"]["expected"] is None
    assert lines["t01"]["metadata"][PROVENANCE_KEY]["error_kind"] == "answer"
    assert [c.trace_id for c in done.added] == ["t02", "t01"]  # scored rows first, then those without a score
    assert golden.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_an_online_window_is_found_by_source_window_and_judge(ledger_url: str, tmp_path: Path) -> None:
    ledger = Ledger(ledger_url)
    for run_id, created in (("on-old", datetime(2025, 6, 2, tzinfo=UTC)), ("on-new", datetime(2025, 6, 3, tzinfo=UTC))):
        ledger.runs.create_run(Run(id=run_id, kind="online", dataset_name="prod", window="2025-06-01",
                              judges={"helpful": {"version": "helpful@0123456789ab"}}, created_at=created))
    assert find_run(ledger, run_id=None, source="prod", window="2025-06-01", judge="helpful")[0].id == "on-new"
    for kwargs, words in (
        ({"source": "prod", "window": "2025-06-02", "judge": "helpful"}, "no online run of 'prod'"),
        ({"source": "prod", "window": "2025-06-01", "judge": "other"}, "with judge 'other'"),
        ({"source": "prod", "window": "2025-06-01"}, r"\(--source S \| --schedule N\) --window W --judge J"),
        ({"run_id": "on-new", "judge": "other"}, "has no judge 'other'"),
        ({"run_id": "on-new", "source": "prod"}, "not both"),
    ):
        with pytest.raises(UsageError, match=words):
            find_run(ledger, **{"run_id": None, "source": None, "window": None, "judge": None, **kwargs})


@pytest.mark.parametrize(("name", "content", "words"), [
    ("golden.csv", "id,output\na,b\n", "not a JSON Lines dataset"),
    ("golden.txt", "", "not a JSON Lines dataset"),
    ("golden.jsonl", '{"output": "a"}\nnot json\n', "golden.jsonl:2: malformed JSON"),
    ("golden.jsonl", '{"outptu": "a"}\n', "unknown field"),
    ("golden.jsonl", None, "is not a regular file"),
])
def test_a_target_that_is_not_a_dataset_is_refused_untouched(sqlite_url: str, tmp_path: Path, name: str,
                                                             content: str | None, words: str) -> None:
    ledger = Ledger(sqlite_url)
    run = _offline_run(ledger, [(_record(1, "de"), 0.0)])
    target = tmp_path / name
    if content is None:
        target.mkdir()
    else:
        target.write_text(content)
    listing = sorted(os.listdir(tmp_path))
    with pytest.raises(InputError, match=words):
        promote(ledger, run, "helpful", parse_where("score < 0.5"), target, now=NOW)
    assert sorted(os.listdir(tmp_path)) == listing
    if content is not None:
        assert target.read_text() == content


def test_a_crash_before_the_rename_leaves_the_file_as_it_was(sqlite_url: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = Ledger(sqlite_url)
    run = _offline_run(ledger, [(_record(i, "de"), 0.0) for i in range(5)])
    golden = tmp_path / "golden.jsonl"
    golden.write_text(GOLDEN_HEAD + "\n")
    before, listing = golden.read_bytes(), sorted(os.listdir(tmp_path))

    def crash(*_: Any) -> None:  # the process dying between writing the copy and renaming it
        raise KeyboardInterrupt

    monkeypatch.setattr("scheduler.promotion.os.replace", crash)
    with pytest.raises(KeyboardInterrupt):
        promote(ledger, run, "helpful", parse_where("score < 0.5"), golden, now=NOW)
    assert golden.read_bytes() == before and sorted(os.listdir(tmp_path)) == listing


def test_a_trace_the_dataset_rules_refuse_writes_nothing(sqlite_url: str, tmp_path: Path) -> None:
    ledger = Ledger(sqlite_url)
    run = _offline_run(ledger, [(_record(1, "de"), 0.0), (_record(2, "de", output="y" * 3000), 0.1)])
    golden = tmp_path / "golden.jsonl"
    golden.write_text(GOLDEN_HEAD)
    listing = sorted(os.listdir(tmp_path))
    with pytest.raises(InputError, match="promoted trace 't02' would not pass"):
        promote(ledger, run, "helpful", parse_where("score < 0.5"), golden, now=NOW, max_bytes=2000)
    assert golden.read_text() == GOLDEN_HEAD and sorted(os.listdir(tmp_path)) == listing


def test_concurrent_promotions_into_one_file_both_land(sqlite_url: str, tmp_path: Path) -> None:
    """Each promotion copies the file and renames its copy over it: without the folder lock one would be lost."""
    ledger = Ledger(sqlite_url)
    runs = [_offline_run(ledger, [(_record(100 * k + i, "de"), 0.0) for i in range(40)], run_id=f"r-{k}")
            for k in range(4)]
    golden = tmp_path / "golden.jsonl"
    golden.write_text(GOLDEN_HEAD + "\n")
    errors: list[BaseException] = []

    def one(run: Run) -> None:
        try:
            promote(ledger, run, "helpful", parse_where("score < 0.5"), golden, now=NOW)
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    ids = [line["id"] for line in _lines(golden)]
    wanted = {f"t{100 * k + i:02d}" for k in range(4) for i in range(40)} - {"t01", "t23"}  # g1's content; an id
    assert len(ids) == len(set(ids)) == scan(golden).count and set(ids) == wanted | {"g1", "t23"}


# --- end to end through the CLI ----------------------------------------------------

CONFIG = """
[judges.okish]
type = "local"
builtin = "regex"
pattern = "^ok"

[sources.live]
type = "jsonl"
path = "{traces}"
"""


def _env(tmp_path: Path, ledger_url: str) -> dict[str, str]:
    traces = tmp_path / "live.jsonl"
    (tmp_path / "judgeq.toml").write_text(CONFIG.format(traces=traces))
    return base_env(JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"), JUDGEQ_LEDGER_URL=ledger_url)


def _write(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _cli(env: dict[str, str], *args: str, code: int = 0) -> Any:
    done = invoke(list(args), env)
    assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
    return json.loads(done.stdout) if "--json" in args and code == 0 else done


def test_promoted_traces_are_judged_by_the_next_golden_run(ledger_url: str, tmp_path: Path) -> None:
    env = _env(tmp_path, ledger_url)
    batch = tmp_path / "batch.jsonl"
    _write(batch, [{"id": f"b{i}", "input": f"q{i}", "output": ("ok " if i % 3 == 0 else "no ") + str(i),
                    "metadata": {"locale": "de" if i % 2 else "fr"}} for i in range(12)])
    live = [{"trace_id": f"w{i}", "query": f"w{i}?", "response": ("ok " if i % 4 == 0 else "meh ") + str(i),
             "ts": f"2025-06-01T{i:02d}:30:00Z", "metadata": {"locale": "de"}} for i in range(8)]
    _write(tmp_path / "live.jsonl", live)
    golden = tmp_path / "golden.jsonl"
    _write(golden, [{"id": "g1", "input": "q", "output": "ok fine"}])

    submitted = _cli(env, "submit", str(batch), "--judge", "okish", "--wait", "--json")
    _cli(env, "online", "--source", "live", "--window", "2025-06-01", "--judge", "okish", "--rate", "1")
    first = _cli(env, "promote", "--run", submitted["run"]["id"], "--where", "score < 0.5", "--by", "locale",
                 "--limit", "3", "--to", str(golden), "--json")
    failing = {"de": [f"b{i}" for i in range(12) if i % 3 and i % 2], "fr": [f"b{i}" for i in range(12) if i % 3 and not i % 2]}
    # All score 0: per locale the first 3 by trace id, then in that order overall.
    assert [a["id"] for a in first["added"]] == sorted(sorted(failing["de"])[:3] + sorted(failing["fr"])[:3])
    second = _cli(env, "promote", "--source", "live", "--window", "2025-06-01", "--judge", "okish",
                  "--where", "label == 'fail'", "--to", str(golden), "--json")
    assert {a["id"] for a in second["added"]} == {f"w{i}" for i in range(8) if i % 4}
    assert second["dataset_hash"] == hashlib.sha256(golden.read_bytes()).hexdigest()
    window_line = next(line for line in _lines(golden) if line["id"] == "w1")
    assert window_line["metadata"][PROVENANCE_KEY]["window"] == "2025-06-01"
    assert window_line["metadata"][PROVENANCE_KEY]["source"] == "live"
    repeated = _cli(env, "promote", "--run", submitted["run"]["id"], "--where", "score < 0.5", "--by", "locale",
                    "--limit", "3", "--to", str(golden))
    assert "0 added" in repeated.stderr and f"dataset sha256 {second['dataset_hash']}" in repeated.stdout

    gated = _cli(env, "submit", str(golden), "--judge", "okish", "--wait", "--json")
    assert gated["run"]["dataset_hash"] == second["dataset_hash"] and gated["run"]["n_items"] == 13
    rows = {row.trace_id: row for row in Ledger(ledger_url).scores.scores(gated["run"]["id"])}
    promoted = {a["id"] for a in first["added"] + second["added"]}
    assert promoted <= set(rows) and all(rows[t].score == 0.0 for t in promoted)


@pytest.mark.parametrize(("args", "words"), [
    (("--where", "score =< 0.5"), "column 7: invalid syntax"),
    (("--where", "not " * 1000 + "score < 0.5"), "--where nests more than 64 levels"),  # was exit 4
    (("--where", "score < 0.5", "--judge", "nope"), "has no judge 'nope'"),
    (("--where", "score < 0.5", "--source", "live", "--window", "2025-13-01", "--judge", "okish"),
     "2025-13-01"),
    (("--where", "score < 0.5", "--to", "{tmp}/golden.csv"), "not a JSON Lines dataset"),
    (("--where", "score < 0.5", "--to", "{tmp}/batch.jsonl", "--run", "r-unknown"), "r-unknown"),
    (("--where", "score < 0.5", "--by", "locale"), "give --limit N too"),
    (("--where", "score < 0.5", "--expected-from", "reference_answer"), "not a record field"),
])
def test_bad_promote_input_exits_2_and_writes_nothing(sqlite_url: str, tmp_path: Path, args: tuple[str, ...],
                                                      words: str) -> None:
    env = _env(tmp_path, sqlite_url)
    batch = tmp_path / "batch.jsonl"
    _write(batch, [{"id": "b1", "output": "no"}])
    with Ledger(sqlite_url) as ledger:
        run_id = _offline_run(ledger, [(_record(1, "de"), 0.0)]).id
    golden = tmp_path / "golden.jsonl"
    _write(golden, [{"id": "g1", "output": "ok"}])

    def files() -> list[str]:  # SQLite's -wal and -shm come and go with its connections: not our writes
        return sorted(n for n in os.listdir(tmp_path) if not n.endswith(("-wal", "-shm")))

    before = files(), golden.read_bytes(), batch.read_bytes()
    given = [a.format(tmp=tmp_path) for a in args]
    done = _cli(env, "promote", *(["--run", run_id] if "--run" not in given and "--source" not in given else []),
                *(["--to", str(golden)] if "--to" not in given else []), *given, code=2)
    assert words in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert (files(), golden.read_bytes(), batch.read_bytes()) == before
