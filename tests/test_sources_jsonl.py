"""The jsonl trace source, and what every source shares: the config tables, the type registry, the errors."""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from online.errors import OnlineConfigError, SourceError, SourceUnavailable
from online.sources import (SOURCE_TYPES, TraceSource, configured_source, load_sources, open_source,
                            register_source)

pytestmark = pytest.mark.timeout(60)

START = datetime(2026, 11, 22, 13, tzinfo=UTC)
END = START + timedelta(hours=1)


def _write(path: Path, records: list[Any], gz: bool = False) -> Path:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as file:
            file.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _jsonl(path: str, base: Path, **table: Any) -> TraceSource:
    return open_source("prod", {"type": "jsonl", "path": path, **table}, base)


def test_a_folder_of_daily_files_is_read_in_name_order_with_ts_in_utc(tmp_path: Path) -> None:
    folder = tmp_path / "traces"
    folder.mkdir()
    _write(folder / "2026-11-23.jsonl", [{"id": "c1", "output": "x", "ts": "2026-11-22T13:59:59.999999Z"}])
    _write(folder / "2026-11-22.jsonl.gz", [
        {"trace_id": "b1", "query": "q", "response": "r", "ts": "2026-11-22T13:00:00Z", "metadata": {"locale": "de"}},
        {"id": "b2", "output": "x", "ts": "2026-11-22T15:30:00+02:00"},  # 13:30 UTC
        {"id": "b3", "output": "x", "ts": "2026-11-22T13:45:00"},  # no offset: UTC
        {"id": "o1", "output": "x", "ts": "2026-11-22T14:00:00Z"},  # the end is not in the window
        {"id": "o2", "output": "x", "ts": "2026-11-22T14:59:59+02:00"},  # 12:59:59 UTC
    ], gz=True)
    _write(folder / "2026-11-21.jsonl", [{"id": "a1", "output": "x", "ts": "2026-11-22T13:10:00.5+00:00"}])
    (folder / "notes.txt").write_text('{"id": "n", "output": "x", "ts": "2026-11-22T13:00:00Z"}\n')
    skipped: Counter[str] = Counter()
    records = list(_jsonl("traces", tmp_path).traces(START, END, skipped))
    assert [r.get("id", r.get("trace_id")) for r in records] == ["a1", "b1", "b2", "b3", "c1"]
    assert records[1] == {"trace_id": "b1", "query": "q", "response": "r", "ts": "2026-11-22T13:00:00Z",
                          "metadata": {"locale": "de"}}  # as written: aliases are the record model's to read
    assert skipped == Counter({"outside": 2})
    assert _jsonl("traces", tmp_path).count(START, END) == 5


def test_lines_that_are_not_traces_are_counted_not_fatal(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.jsonl", [
        {"id": "ok", "output": "x", "ts": "2026-11-22T13:30:00Z"},
        {"id": "none", "output": "x"}, {"id": "null", "output": "x", "ts": None}, {"id": "e", "ts": ""},
        {"id": "bad", "output": "x", "ts": "yesterday"}, {"id": "num", "output": "x", "ts": 1795870800},
        {"id": "list", "output": "x", "ts": ["2026-11-22T13:30:00Z"]},
        '{"id": "cut", "output": "x", "ts": "2026-11-22T1', "[1, 2]", '"text"', "", "   ",
    ])
    with path.open("ab") as file:
        file.write(b'{"id": "latin", "output": "\xe9", "ts": "2026-11-22T13:30:00Z"}\n')  # not UTF-8
    skipped: Counter[str] = Counter()
    assert [r["id"] for r in _jsonl("t.jsonl", tmp_path).traces(START, END, skipped)] == ["ok"]
    assert skipped == Counter({"no_ts": 3, "bad_ts": 3, "malformed": 4})


def test_globs_are_relative_to_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    _write(tmp_path / "a" / "x.jsonl.gz", [{"id": "1", "output": "x", "ts": "2026-11-22T13:00:00Z"}], gz=True)
    _write(tmp_path / "a" / "y.jsonl", [{"id": "2", "output": "x", "ts": "2026-11-22T13:00:00Z"}])
    assert [r["id"] for r in _jsonl("a/*.gz", tmp_path).traces(START, END, Counter())] == ["1"]
    assert _jsonl("**/*.jsonl*", tmp_path).count(START, END) == 2
    assert _jsonl("a/none-*.jsonl", tmp_path).count(START, END) == 0  # the folder is there: no traces yet


def test_daily_files_skips_only_files_dated_well_outside_the_window(tmp_path: Path) -> None:
    for day in ("2026-11-10", "2026-11-21", "20261122", "2026-11-23", "2026-11-24", "undated"):
        _write(tmp_path / f"traces-{day}.jsonl", [{"id": day, "output": "x", "ts": "2026-11-22T13:30:00Z"}])
    read_all = _jsonl(str(tmp_path), tmp_path)
    read_dated = _jsonl(str(tmp_path), tmp_path, daily_files=True)
    assert read_all.count(START, END) == 6
    # a day of slack either side: the 21st and the 23rd are still opened, the 10th and the 24th are not
    assert [r["id"] for r in read_dated.traces(START, END, Counter())] == ["2026-11-21", "2026-11-23", "20261122",
                                                                          "undated"]


def test_cut_and_corrupt_gzip_files(tmp_path: Path) -> None:
    # Incompressible outputs, so that the cut falls past the first of the reader's buffers.
    records = [{"id": str(i), "output": os.urandom(500).hex(), "ts": "2026-11-22T13:00:00Z"} for i in range(1000)]
    whole = _write(tmp_path / "whole.jsonl.gz", records, gz=True).read_bytes()
    (tmp_path / "cut.jsonl.gz").write_bytes(whole[: len(whole) // 2])  # still being written
    skipped: Counter[str] = Counter()
    got = list(_jsonl("cut.jsonl.gz", tmp_path).traces(START, END, skipped))
    assert 0 < len(got) < 1000 and [r["id"] for r in got] == [str(i) for i in range(len(got))]
    assert skipped["truncated"] == 1
    (tmp_path / "bad.jsonl.gz").write_bytes(whole[:10] + b"\x00" * 200 + whole[210:])
    with pytest.raises(SourceError, match=r"bad\.jsonl\.gz' is not a valid gzip file"):
        _jsonl("bad.jsonl.gz", tmp_path).count(START, END)


def test_missing_paths_are_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable, match=r"source 'prod': .*gone\.jsonl' does not exist .*sources\.prod\.path"):
        _jsonl("gone.jsonl", tmp_path).count(START, END)
    with pytest.raises(SourceUnavailable, match=r"mnt' does not exist"):
        list(_jsonl("mnt/*.jsonl", tmp_path).traces(START, END, Counter()))
    with pytest.raises(OnlineConfigError, match=r"sources\.prod\.path is required for type = 'jsonl' sources"):
        open_source("prod", {"type": "jsonl"}, tmp_path)
    with pytest.raises(ValueError, match="tz-aware"):
        _jsonl(".", tmp_path).count(START.replace(tzinfo=None), END)


CONFIG = """
[judges.exact]
type = "local"
builtin = "exact_match"

[sources.prod]
type = "jsonl"
path = "traces/"

[sources.bogus]
type = "kafak"
"""


def test_config_tables_and_their_errors(tmp_path: Path) -> None:
    config = tmp_path / "judgeq.toml"
    config.write_text(CONFIG)
    (tmp_path / "traces").mkdir()
    _write(tmp_path / "traces" / "t.jsonl", [{"id": "1", "output": "x", "ts": "2026-11-22T13:00:00Z"}])
    assert load_sources(config) == {"prod": {"type": "jsonl", "path": "traces/"}, "bogus": {"type": "kafak"}}
    assert configured_source("prod", config).count(START, END) == 1  # relative to the toml's folder
    with pytest.raises(OnlineConfigError, match=rf"{config}: sources\.bogus\.type: unknown source type 'kafak'; "
                                                r"known types: jsonl, otlp, phoenix, sql"):
        configured_source("bogus", config)
    with pytest.raises(OnlineConfigError, match=r"unknown source 'web'; .*configures: prod, bogus\. Add a "
                                                r"\[sources\.web\] table"):
        configured_source("web", config)
    with pytest.raises(OnlineConfigError, match=r"sources\.x\.type is missing; set it to one of: jsonl, otlp, phoenix, sql"):
        open_source("x", {"path": "t"}, tmp_path)
    with pytest.raises(OnlineConfigError, match=r"config file .*nope\.toml' does not exist"):
        load_sources(tmp_path / "nope.toml")
    config.write_text("[sources]\nprod = 3\n")
    with pytest.raises(OnlineConfigError, match=rf"{config}: sources\.prod must be a table"):
        load_sources(config)
    config.write_text("[sources.prod\n")
    with pytest.raises(OnlineConfigError, match=rf"{config}: not valid TOML"):
        load_sources(config)


@dataclass
class ListSource:
    """A source of a user's own: records held in memory."""

    name: str
    records: list[dict[str, Any]]

    def traces(self, start: datetime, end: datetime, skipped: Counter[str]) -> Iterator[dict[str, Any]]:
        return (r for r in self.records if start <= datetime.fromisoformat(r["ts"]) < end)

    def count(self, start: datetime, end: datetime) -> int:
        return sum(1 for _ in self.traces(start, end, Counter()))


def list_source(name: str, table: Any, base_dir: Path) -> ListSource:
    return ListSource(name, [{"id": str(i), "output": "x", "ts": ts} for i, ts in enumerate(table["ts"])])


def test_a_source_type_of_ones_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SOURCE_TYPES, "list", SOURCE_TYPES["jsonl"])  # restored after the test
    register_source("list", list_source)
    source = open_source("mine", {"type": "list", "ts": ["2026-11-22T13:00:00+00:00", "2026-11-22T14:00:00+00:00"]},
                         tmp_path)
    assert isinstance(source, TraceSource) and source.count(START, END) == 1
    # or from an installed package's entry point, found without importing anything by hand
    dist = tmp_path / "site" / "judgeq_listsource-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: judgeq-listsource\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[judgeq.sources]\nlisted = {__name__}:list_source\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(SOURCE_TYPES, "listed", raising=False)
    source = open_source("mine", {"type": "listed", "ts": ["2026-11-22T13:30:00+00:00"]}, tmp_path)
    assert source.count(START, END) == 1
    monkeypatch.delitem(SOURCE_TYPES, "listed")
