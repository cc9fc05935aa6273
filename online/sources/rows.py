"""Mapping a database row to a record: which column fills which record field, and JSON-safe values.

``columns`` in a ``[sources.NAME]`` table of ``type = "sql"`` maps record
field paths to column names::

    columns = { id = "trace_id", input = "prompt", output = "completion",
                "metadata.locale" = "locale", "metadata.session_id" = "session_id" }

A path is a record field (``id``, ``input``, ``output``, ``context``,
``expected``), ``metadata`` (a JSON object column, merged into metadata) or
``metadata.KEY``; ``ts`` always comes from ``time_column``. Every column
``columns`` does not name (all of them without ``columns``) is taken by its
name: one named like a record field or one of its aliases fills it, unless
``columns`` maps that field, and any other goes to ``metadata.NAME`` (unless
``columns`` maps that key): a mapping renames, it never drops a column. A
NULL leaves its field out. Values become what a JSON line would hold: datetimes
ISO 8601 UTC text, decimals numbers, UUIDs text, ids always text.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

import orjson

from online.sources.times import parse_ts, utc_iso

__all__ = ["FIELDS", "ColumnMap", "plain"]

#: Record fields a column can fill, with the aliases an unmapped column may be named by (judges.record).
FIELDS: Final = {"id": "id", "trace_id": "id", "input": "input", "query": "input", "output": "output",
                 "response": "output", "context": "context", "retrieved_chunks": "context", "expected": "expected",
                 "reference": "expected", "metadata": "metadata"}


@dataclass(frozen=True)
class ColumnMap:
    """Which column (by name) fills which record field path; ``ts`` is the time column."""

    time_column: str
    paths: tuple[tuple[str, str], ...]  # (field path, column), in select order after the time column

    @classmethod
    def of(cls, time_column: str, columns: Mapping[str, str] | None, available: Sequence[str]) -> ColumnMap:
        """The map of ``columns``, then of the other ``available`` columns by their names (module docstring)."""
        mapped = dict(columns or {})
        named = {time_column, *mapped.values()}
        paths = list(mapped.items())
        for name in available:
            if name in named:
                continue
            path = FIELDS.get(name)
            if path is None or path in mapped:
                path = f"metadata.{name}"
            if path not in mapped:
                paths.append((path, name))
        return cls(time_column, tuple(paths))

    def fills(self, path: str) -> bool:
        """Whether some column fills the record field ``path``."""
        return any(mapped == path for mapped, _ in self.paths)

    def selected(self) -> list[str]:
        """The columns to select: the time column, then the mapped ones (each once)."""
        return list(dict.fromkeys([self.time_column, *(column for _, column in self.paths)]))

    def missing(self, available: Iterable[str]) -> list[tuple[str, str]]:
        """The (field path, column) pairs, time column first (as ``ts``), whose column is not ``available``."""
        have = set(available)
        return [(path, column) for path, column in (("ts", self.time_column), *self.paths) if column not in have]

    def reader(self, ts_text: bool = False) -> RowReader:
        """What makes records of rows (the :meth:`selected` columns, in order).

        ``ts_text``: the database already formats column 0 as ISO 8601 UTC text.
        """
        index = {column: i for i, column in enumerate(self.selected())}
        fields = tuple((path, index[column]) for path, column in self.paths if "." not in path and path != "metadata")
        whole = tuple(index[column] for path, column in self.paths if path == "metadata")
        keyed = tuple((path.partition(".")[2], index[column]) for path, column in self.paths
                      if path.startswith("metadata."))
        return RowReader(fields, whole, keyed, ts_text)


@dataclass(frozen=True)
class RowReader:
    """Builds record dicts from rows; ``ts`` is column 0."""

    fields: tuple[tuple[str, int], ...]
    whole: tuple[int, ...]
    keyed: tuple[tuple[str, int], ...]
    ts_text: bool = False

    def record(self, row: Sequence[Any]) -> dict[str, Any] | None:
        """The record of ``row``; None when its time value is not a timestamp."""
        ts = row[0] if self.ts_text else timestamp(row[0])
        if ts is None:
            return None
        record: dict[str, Any] = {"ts": ts}
        for path, i in self.fields:
            value = row[i]
            if value is not None:
                kind = type(value)
                record[path] = value if kind is str or kind is float else plain(value)
        if "id" in record and type(record["id"]) is not str:
            record["id"] = str(record["id"])
        if self.whole or self.keyed:
            meta: dict[str, Any] = {}
            for i in self.whole:
                meta.update(_object(row[i]))
            for key, i in self.keyed:
                value = row[i]
                if value is not None:
                    meta[key] = value if type(value) is str else plain(value)
            if meta:
                record["metadata"] = meta
        return record


def timestamp(value: Any) -> str | None:
    """A time column's value as ISO 8601 UTC text: a datetime, or text a database stored (SQLite)."""
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, str):
        moment = parse_ts(value)
        return utc_iso(moment) if moment is not None else None
    return None


def plain(value: Any) -> Any:
    """``value`` as JSON would hold it."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    return str(value)


def _object(value: Any) -> dict[str, Any]:
    """A ``metadata`` column's value as a dict: a JSON object (jsonb) or its text (SQLite); else nothing."""
    if isinstance(value, str | bytes):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {}
    return plain(value) if isinstance(value, dict) else {}
