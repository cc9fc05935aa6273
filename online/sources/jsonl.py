"""``type = "jsonl"``: records, one JSON object a line, in a file, a glob or a folder of (daily) files.

    [sources.prod]
    type = "jsonl"
    path = "traces/"          # a file, a glob ("traces/*.jsonl.gz") or a folder (its *.jsonl and *.jsonl.gz)
    daily_files = false       # true: skip files whose name's date is a day or more outside the window

Lines are records in the format of docs/architecture.md, "Records" (aliases included); ``ts`` is
required. Reading is the hot path of a window (a million lines an hour is an
ordinary product), so a line costs one ``orjson.loads`` and one
``datetime.fromisoformat``, and nothing is validated beyond ``ts``: the
records sampled are validated later, the others never need to be. A line
longer than ``JUDGEQ_MAX_RECORD_BYTES`` is skipped and counted (``too_large``)
without being held in memory, as ``judgeq submit`` bounds a dataset's line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from judges.record import DEFAULT_MAX_RECORD_BYTES
from online.sources.files import FileSet, read_lines
from online.sources.settings import SourceSettings, parse_settings
from online.sources.times import check_window

__all__ = ["JsonlSettings", "JsonlSource"]

#: What a folder's files are read: JSONL, gzipped or not.
SUFFIXES = (".jsonl", ".jsonl.gz")


class JsonlSettings(SourceSettings):
    """A ``[sources.NAME]`` table of ``type = "jsonl"``."""

    type: Literal["jsonl"] = "jsonl"
    path: str
    daily_files: bool = False


@dataclass
class JsonlSource:
    """The records of JSONL files whose ``ts`` falls in a window."""

    name: str
    files: FileSet

    @classmethod
    def from_table(cls, name: str, table: Mapping[str, Any], base_dir: Path, *,
                   max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> JsonlSource:
        """The source of a ``[sources.NAME]`` table; a line is a record, so it is bounded as a dataset's line is."""
        settings = parse_settings(JsonlSettings, name, table)
        return cls(name, FileSet.of(name, settings.path, base_dir, SUFFIXES, settings.daily_files,
                                    max_line_bytes=max_record_bytes))

    def traces(self, start: datetime, end: datetime, skipped: Counter[str]) -> Iterator[dict[str, Any]]:
        check_window(start, end)
        loads, decode_error, fromiso, utc = orjson.loads, orjson.JSONDecodeError, datetime.fromisoformat, UTC
        outside = no_ts = bad_ts = malformed = 0
        try:
            for line in read_lines(self.files, start, end, skipped):
                try:
                    record = loads(line)
                except decode_error:
                    if line.strip():  # blank lines are not records
                        malformed += 1
                    continue
                if type(record) is not dict:
                    malformed += 1
                    continue
                ts = record.get("ts")
                if ts is None or ts == "":
                    no_ts += 1
                    continue
                try:
                    moment = fromiso(ts)
                except (ValueError, TypeError):  # not ISO 8601, or not text
                    bad_ts += 1
                    continue
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=utc)
                if start <= moment < end:
                    yield record
                else:
                    outside += 1
        finally:  # counted locally (a Counter update per line is most of a line's cost), added once
            for key, value in (("outside", outside), ("no_ts", no_ts), ("bad_ts", bad_ts), ("malformed", malformed)):
                if value:
                    skipped[key] += value

    def count(self, start: datetime, end: datetime) -> int:
        return sum(1 for _ in self.traces(start, end, Counter()))
