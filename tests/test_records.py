"""Loading dataset files: a bad file is rejected whole, naming file, line and field.

The story: a golden set arrives as JSON Lines or CSV; ``scan`` validates all of
it (streaming) and gives its content hash and count; ``iter_records`` then
streams the same records for enqueueing.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import tracemalloc
from pathlib import Path

import pytest

from judges.record import Record
from scheduler.errors import InputError, SchedulerError
from scheduler import records
from scheduler.records import DatasetInfo, iter_batches, iter_records, scan

DATA = Path(__file__).parent / "data"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def rejected(path: Path) -> InputError:
    with pytest.raises(InputError) as caught:
        scan(path)
    message = str(caught.value)
    assert "\n" not in message, "an InputError is one line"
    assert message.startswith(str(path)), message
    return caught.value


# --- the golden files: JSONL and CSV of the same data --------------------------


def test_scan_describes_a_valid_file() -> None:
    info = scan(DATA / "golden.jsonl")
    raw = (DATA / "golden.jsonl").read_bytes()
    assert info == DatasetInfo(
        path=DATA / "golden.jsonl",
        name="golden",
        format="jsonl",
        content_hash=hashlib.sha256(raw).hexdigest(),
        count=4,
    )
    assert info.short == info.content_hash[:12]


def test_csv_and_jsonl_of_the_same_data_give_equal_records() -> None:
    from_jsonl = [record for _, record in iter_records(DATA / "golden.jsonl")]
    from_csv = [record for _, record in iter_records(DATA / "golden.csv")]  # has a BOM, a multi-line cell
    assert from_jsonl == from_csv
    assert scan(DATA / "golden.csv").count == scan(DATA / "golden.jsonl").count == 4
    assert scan(DATA / "golden.csv").format == "csv"
    # CSV: a JSON list string is a list of chunks; other text stays text, even "[1] ...".
    assert from_csv[0].context == ["France's capital is Paris.", "Paris is on the Seine."]
    assert from_csv[3].context == "[1] Smith et al., 2021"
    assert from_csv[0].metadata == {"locale": "en", "tenant": "acme"}
    assert from_csv[3].metadata == {}  # an empty cell means absent


def test_line_numbers_are_physical_lines() -> None:
    # JSONL: the blank line 3 is skipped but counted. CSV: a record's starting line.
    assert [line for line, _ in iter_records(DATA / "golden.jsonl")] == [1, 2, 4, 5]
    assert [line for line, _ in iter_records(DATA / "golden.csv")] == [2, 3, 5, 7]


def test_aliases_are_accepted() -> None:
    _, record = list(iter_records(DATA / "golden.jsonl"))[1]  # trace_id, query, response, ...
    assert record.id == "q-2"
    assert record.input.startswith("Wie heißt")
    assert record.output == "Wien."
    assert record.context == "Wien ist die Hauptstadt Österreichs."
    assert record.expected == "Wien"
    assert record.ts == "2026-11-16T09:30:00Z"


def test_id_defaults_to_a_stable_content_hash(tmp_path: Path) -> None:
    (_, first), = iter_records(write(tmp_path, "a.jsonl", '{"input": "q", "output": "a"}\n'))
    (_, again), = iter_records(write(tmp_path, "b.csv", "output,input\na,q\n"))
    (_, other), = iter_records(write(tmp_path, "c.jsonl", '{"input": "q", "output": "b"}\n'))
    assert first.id == again.id == "h" + first.content_hash()[:16]
    assert other.id != first.id


def test_content_hash_changes_with_one_byte(tmp_path: Path) -> None:
    a = write(tmp_path, "a.jsonl", '{"id": "1", "output": "yes"}\n')
    b = write(tmp_path, "b.jsonl", '{"id": "1", "output": "yes."}\n')
    c = write(tmp_path, "c.jsonl", '{"id": "1", "output": "yes"}\n')
    assert scan(a).content_hash != scan(b).content_hash
    assert scan(a).content_hash == scan(c).content_hash


def test_bom_crlf_and_ndjson_are_read(tmp_path: Path) -> None:
    path = tmp_path / "traces.ndjson"
    path.write_bytes(b'\xef\xbb\xbf{"output": "a"}\r\n\r\n{"output": "b"}\r\n')
    assert [(line, r.output) for line, r in iter_records(path)] == [(1, "a"), (3, "b")]
    assert scan(path).format == "jsonl"
    csv_path = tmp_path / "traces.csv"
    csv_path.write_bytes(b"\xef\xbb\xbfid,output\r\n1,a\r\n2,\"b\r\nc\"\r\n")
    assert [(line, r.id, r.output) for line, r in iter_records(csv_path)] == [(2, "1", "a"), (3, "2", "b\r\nc")]


def test_json_file_holding_json_lines_is_read(tmp_path: Path) -> None:
    assert scan(write(tmp_path, "set.json", '{"output": "a"}\n{"output": "b"}\n')).count == 2


def test_iter_batches(tmp_path: Path) -> None:
    path = write(tmp_path, "b.jsonl", "".join(f'{{"id": "{i}", "output": "x"}}\n' for i in range(7)))
    batches = list(iter_batches(path, 3))
    assert [len(batch) for batch in batches] == [3, 3, 1]
    assert [record.id for batch in batches for _, record in batch] == [str(i) for i in range(7)]
    with pytest.raises(ValueError):
        list(iter_batches(path, 0))


# --- each kind of bad input -----------------------------------------------------

GOOD = '{"id": "q-1", "output": "fine"}\n'

BAD_JSONL = {
    # name: (text, line, field, words the message must contain)
    "missing output": (GOOD + '{"input": "q"}\n', 2, "output", "missing — every record needs an output (alias: response)"),
    "malformed json": (GOOD + GOOD.replace("q-1", "q-2") + '{"output": "a",}\n', 3, None, "malformed JSON at column 16"),
    "not an object": (GOOD + '"just text"\n', 2, None, "is a string, not a JSON object"),
    "context a number": ('{"output": "a", "context": 3}\n', 1, "context", "got a number (3)"),
    "chunk a number": ('{"output": "a", "retrieved_chunks": ["x", 3]}\n', 1, "retrieved_chunks", "item [1] is a number"),
    "metadata a list": ('{"output": "a", "metadata": ["de"]}\n', 1, "metadata", "must be a JSON object"),
    "output a number": ('{"output": 42}\n', 1, "output", "got a number (42) — it must be a string"),
    "output null": ('{"response": null}\n', 1, "response", "got null"),
    "id a boolean": ('{"id": true, "output": "a"}\n', 1, "id", "got a boolean"),
    "unknown field": ('{"output": "a", "reponse": "b"}\n', 1, "reponse", "did you mean 'response'?"),
    "field and alias": ('{"output": "a", "response": "b"}\n', 1, "output", "given twice, as 'output' and as 'response'"),
    "bad ts": (GOOD + '{"output": "a", "ts": "yesterday"}\n', 2, "ts", "not an ISO 8601 time"),
    "nan": ('{"output": "a", "metadata": {"score": NaN}}\n', 1, None, "NaN is not valid JSON"),
    "blank lines counted": ('\n\n{"output": 1}\n', 3, "output", "got a number"),
}


@pytest.mark.parametrize("case", BAD_JSONL)
def test_bad_jsonl_is_rejected_naming_line_and_field(tmp_path: Path, case: str) -> None:
    text, line, field, words = BAD_JSONL[case]
    error = rejected(write(tmp_path, "golden.jsonl", text))
    message = str(error)
    assert (error.line, error.field) == (line, field), message
    assert message.startswith(f"{tmp_path / 'golden.jsonl'}:{line}: "), message
    if field is not None:
        assert f"field '{field}'" in message
    assert words in message


BAD_CSV = {
    "unknown column": ("id,output,score\n1,a,0.5\n", 1, "score", "unknown field"),
    "column and alias": ("output,response\na,b\n", 1, "output", "given twice"),
    "empty output cell": ("id,output\n1,a\n2,\n", 3, "output", "missing"),
    "after a multi-line cell": ('id,output\n1,"two\nlines"\n2,\n', 4, "output", "missing"),
    "metadata not json": ('id,output,metadata\n1,a,"{locale: de}"\n', 2, "metadata", "not a JSON object"),
    "metadata a list": ('id,output,metadata\n1,a,"[1]"\n', 2, "metadata", "got an array"),
    "context list of numbers is text": ('id,output,context,ts\n1,a,"[1, 2]",never\n', 2, "ts", "not an ISO 8601 time"),
    "too many cells": ("id,output\n1,a,b\n", 2, None, "the row has 3 cells but the header names 2 columns"),
    "stray quote": ('id,output\n1,a\n2,"b"c\n', 3, None, "malformed CSV"),
    "empty column name": (",output\n1,a\n", 1, None, "has an empty name"),
}


@pytest.mark.parametrize("case", BAD_CSV)
def test_bad_csv_is_rejected_naming_line_and_field(tmp_path: Path, case: str) -> None:
    text, line, field, words = BAD_CSV[case]
    error = rejected(write(tmp_path, "golden.csv", text))
    message = str(error)
    assert (error.line, error.field) == (line, field), message
    assert message.startswith(f"{tmp_path / 'golden.csv'}:{line}: "), message
    assert words in message


def test_unknown_field_lists_the_allowed_names(tmp_path: Path) -> None:
    message = str(rejected(write(tmp_path, "g.jsonl", '{"output": "a", "locale": "de"}\n')))
    for name in ("id (trace_id)", "input (query)", "output (response)", "context (retrieved_chunks)",
                 "expected (reference)", "metadata", "ts"):  # fmt: skip
        assert name in message
    assert message.endswith("put anything else under metadata")


def test_repeated_ids_name_both_lines(tmp_path: Path) -> None:
    lines = [f'{{"id": "q-{i}", "output": "a"}}' for i in range(1, 40)] + ['{"id": "q-3", "output": "b"}']
    error = rejected(write(tmp_path, "golden.jsonl", "\n".join(lines) + "\n"))
    assert (error.line, error.field) == (40, "id")
    assert "line 40 repeats id 'q-3' from line 3" in str(error)


@pytest.mark.parametrize("set_check_max", [1_000, 10], ids=["set", "numpy"])
def test_repeated_ids_are_found_the_same_way_by_a_set_and_by_numpy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 set_check_max: int) -> None:
    """Small files look for repeats with a set, large ones with numpy's sort: both find the same first repeat."""
    monkeypatch.setattr(records, "SET_CHECK_MAX", set_check_max)
    lines = [f'{{"id": "q-{i % 30}", "output": "a"}}' for i in range(1, 60)]
    error = rejected(write(tmp_path, "golden.jsonl", "\n".join(lines) + "\n"))
    assert (error.line, str(error).count("repeats id 'q-1' from line 1")) == (31, 1)
    assert records.scan(write(tmp_path, "unique.jsonl", "\n".join(lines[:29]) + "\n")).count == 29


def test_identical_records_without_ids_are_repeats(tmp_path: Path) -> None:
    error = rejected(write(tmp_path, "g.csv", "input,output\nq,a\nq,b\nq,a\n"))
    assert error.line == 4
    assert "from line 2" in str(error) and "the two records are the same" in str(error)


def test_a_bad_line_is_reported_before_a_repeated_id(tmp_path: Path) -> None:
    text = '{"id": "x", "output": "a"}\n{"id": "x", "output": "a"}\n{"output": 1}\n'
    assert rejected(write(tmp_path, "g.jsonl", text)).line == 3


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("empty.jsonl", "", "has no records"),
        ("blank.jsonl", "\n  \n", "has no records"),
        ("empty.csv", "", "is empty — the first row must be a header"),
        ("header.csv", "id,output\n", "has a header but no records"),
        ("golden.txt", GOOD, "unsupported file type '.txt'"),
        ("golden", GOOD, "unsupported file type '(no extension)'"),
    ],
)
def test_files_without_records_or_of_the_wrong_type(tmp_path: Path, name: str, text: str, words: str) -> None:
    error = rejected(write(tmp_path, name, text))
    assert error.line is None
    assert words in str(error)


def test_json_array_file_is_rejected_with_a_way_out(tmp_path: Path) -> None:
    error = rejected(write(tmp_path, "golden.json", '[\n  {"output": "a"}\n]\n'))
    assert error.line == 1
    assert str(error).endswith("convert it with: jq -c '.[]' golden.json > golden.jsonl")


def test_unreadable_files(tmp_path: Path) -> None:
    assert "no such file" in str(rejected(tmp_path / "nowhere.jsonl"))
    (tmp_path / "folder.jsonl").mkdir()
    assert "is a directory" in str(rejected(tmp_path / "folder.jsonl"))
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes(GOOD.encode() + '{"output": "café"}\n'.encode("latin-1"))
    error = rejected(latin1)
    assert error.line == 2
    assert str(error).endswith("is not UTF-8 text (byte 0xe9 at byte 16 of the line) — save the file as UTF-8")


def test_input_error_is_a_scheduler_error_and_pickles(tmp_path: Path) -> None:
    error = InputError(tmp_path / "g.jsonl", "missing", line=17, field="output", hint="add one")
    assert isinstance(error, SchedulerError)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.line, copy.field, copy.hint) == (str(error), 17, "output", "add one")


def test_iter_records_validates_with_the_same_parser(tmp_path: Path) -> None:
    path = write(tmp_path, "g.jsonl", GOOD + '{"output": 1}\n')
    with pytest.raises(InputError, match=r"g\.jsonl:2: field 'output'"):
        list(iter_records(path))


# --- a large file is streamed ---------------------------------------------------


@pytest.fixture(scope="module")
def big_jsonl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100,000 records of about 300 bytes, written without building a list."""
    path = tmp_path_factory.mktemp("big") / "big.jsonl"
    with path.open("w", encoding="utf-8") as file:
        for i in range(100_000):
            record = {
                "id": f"q-{i}",
                "input": f"What does clause {i} of the contract say about renewals?",
                "output": "It renews yearly unless either party gives notice 30 days ahead.",
                "context": [f"Clause {i}: renewal is automatic.", "Notice must be written."],
                "metadata": {"locale": ("de", "en", "fr")[i % 3], "tenant": f"t{i % 17}"},
                "ts": "2026-11-16T09:30:00Z",
            }
            file.write(json.dumps(record) + "\n")
    return path


def test_100k_records_scan_in_little_memory(big_jsonl: Path) -> None:
    tracemalloc.start()
    try:
        info = scan(big_jsonl)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.count == 100_000
    assert peak < 20 * 1024 * 1024, f"scan peaked at {peak / 1e6:.1f} MB"


def test_a_repeat_at_the_end_of_100k_records_is_found(big_jsonl: Path, tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    shutil.copyfile(big_jsonl, path)
    with path.open("a", encoding="utf-8") as file:
        file.write('{"id": "q-12345", "output": "again"}\n')
    error = rejected(path)
    assert "line 100001 repeats id 'q-12345' from line 12346" in str(error)
