"""What a ledger cannot store is bad input, found by ``scan`` (both formats) before anything is written.

``tests/test_exit_codes.py`` runs the JSON Lines cases through the CLI; here
the same bounds on CSV, the aliases, and the judges' needed fields.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from scheduler.errors import InputError
from scheduler.records import RecordChecks, scan

NEEDS_EXPECTED = RecordChecks(needed={"expected": "exact"})


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def rejected(path: Path, checks: RecordChecks = RecordChecks()) -> str:
    with pytest.raises(InputError) as caught:
        scan(path, checks)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path)), message
    return message


@pytest.mark.parametrize("name,text,checks,needle", [
    ("surrogate_in_csv_metadata", 'id,output,metadata\na,x,"{""k"": ""\\ud800""}"\n', RecordChecks(),
     "bad.csv:2: field 'metadata': holds a lone UTF-16 surrogate (\\ud800)"),
    ("surrogate_in_csv_context_list", 'id,output,context\na,x,"[""\\udfff""]"\n', RecordChecks(),
     "bad.csv:2: field 'context': holds a lone UTF-16 surrogate"),
    ("deep_csv_metadata", "id,output,metadata\na,x," + '"' + '{""k"": ' * 40 + "1" + "}" * 40 + '"\n',
     RecordChecks(), "bad.csv:2: field 'metadata': nested more than 32 levels deep"),
    ("csv_row_too_long", 'id,output\na,"' + "line\n" * 300 + '"\n', RecordChecks(max_bytes=1024),
     "bad.csv:2: the record's row is longer than 1,024 bytes"),
    ("csv_without_expected", "id,output,expected\na,x,x\nb,y,\n", NEEDS_EXPECTED,
     "bad.csv:3: field 'expected': missing or empty — judge 'exact' needs it"),
    ("control_character_in_csv_id", "id,output\n\"a\tb\",x\n", RecordChecks(), "field 'id': holds a control character"),
])
def test_csv_records_a_ledger_cannot_store_are_rejected(name: str, text: str, checks: RecordChecks, needle: str,
                                                       tmp_path: Path) -> None:
    assert needle in rejected(write(tmp_path, "bad.csv", text), checks)


def test_the_problem_names_the_field_as_the_file_spells_it(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.jsonl", '{"trace_id": "a\\u0007", "response": "x"}\n')
    assert "bad.jsonl:1: field 'trace_id': holds a control character ('\\x07' at position 2)" in rejected(path)
    path = write(tmp_path, "bad.jsonl", '{"id": "a", "response": "x", "reference": " "}\n')
    assert "field 'expected': missing or empty" in rejected(path, NEEDS_EXPECTED)


def test_valid_pairs_and_flat_or_shallow_metadata_pass(tmp_path: Path) -> None:
    shallow = '{"k": ' * 31 + "1" + "}" * 31
    path = write(tmp_path, "ok.jsonl", '{"id": "\\ud83d\\ude00", "output": "x", "expected": "y", "metadata": %s}\n'
                 % shallow)
    assert scan(path, NEEDS_EXPECTED).count == 1


def test_a_huge_line_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    with path.open("w") as file:
        file.write('{"id": "a", "output": "' + "x" * (64 << 20) + '"}\n')  # 64 MiB on one line
    tracemalloc.start()
    try:
        message = rejected(path, RecordChecks(max_bytes=1 << 20))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "huge.jsonl:1: the record's line is longer than 1,048,576 bytes" in message
    assert peak < 8 << 20, peak
