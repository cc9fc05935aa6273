"""Dataset and trace files: validated whole by ``scan``, then streamed.

A file is JSON Lines (``.jsonl``, ``.ndjson``, or a ``.json`` that holds JSON
Lines) or CSV with the same columns. Every record is validated through
``judges.record.Record``, which owns the field names and their aliases; this
module only reads files and turns problems into one-line ``InputError``s that
name the file, the line and the field.

Nothing here holds the records of a file. ``scan`` keeps 8 bytes per record
(a hash of its id) and finds repeated ids at the end with numpy; only when two
hashes collide does it read the file a second time to name both lines.
``scan`` and ``iter_records`` share one parser, so what was scanned is what is
streamed; ``iter_batches`` given the scan's ``DatasetInfo`` also checks that
the file it streams is still the file that was scanned (see there).

Input that a ledger cannot store is bad input, found here before anything is
written: a record (a JSONL line, a CSV row) longer than ``max_bytes``
(``JUDGEQ_MAX_RECORD_BYTES``; lines are read at most that long, so memory stays
bounded), JSON nested deeper than Python can decode, text holding a lone UTF-16
surrogate (no UTF-8 can carry it), and the bounds ``Record`` itself sets (ids,
metadata depth). So is a record without a field one of the run's judges needs
(``RecordChecks.needed``): every such row would only be an error.

The module is longer than most (about 580 lines) because error messages are
most of it: each kind of bad input gets its own sentence and its own next step,
and they need the field names and parsers that sit beside them.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import json
import os
import re
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Literal, NoReturn, Protocol, Union, get_args, get_origin

from pydantic import AliasChoices, ValidationError

from judges.record import DEFAULT_MAX_RECORD_BYTES, Record
from scheduler.errors import DatasetChanged, InputError, SchedulerArgumentError

Format = Literal["jsonl", "csv"]

_FORMATS: dict[str, Format] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}
_BOM = b"\xef\xbb\xbf"
_MASK64 = (1 << 64) - 1
_MAX_CSV_CELL = 64 * 1024 * 1024  # csv's default limit (128 KiB) is too small for long contexts
MAX_RECORD_BYTES = DEFAULT_MAX_RECORD_BYTES  # JUDGEQ_MAX_RECORD_BYTES's default (judges.record)
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class RecordChecks:
    """What a submission asks of every record beyond its format: a size, and the fields its judges need."""

    max_bytes: int | None = MAX_RECORD_BYTES  # bytes of one JSONL line or CSV row; None: unbounded
    needed: Mapping[str, str] = field(default_factory=dict)  # record field -> a judge that needs it

    @classmethod
    def of(cls, judges: Sequence[Any], max_bytes: int | None = MAX_RECORD_BYTES) -> RecordChecks:
        """The checks for records judged by ``judges`` (resolved judges; see ``judges.types.needed_fields``)."""
        from judges.types import needed_fields

        needed: dict[str, str] = {}
        for judge in judges:
            for name in needed_fields(judge.spec):
                needed.setdefault(name, judge.name)
        return cls(max_bytes=max_bytes, needed=needed)


@dataclass(frozen=True)
class DatasetInfo:
    """What ``scan`` learned about a valid file; ``content_hash`` is its version."""

    path: Path
    name: str  # the file's stem: "golden" for golden.jsonl
    format: Format
    content_hash: str  # sha256 of the file's bytes, 64 hex digits
    count: int  # number of records
    # (device, inode, size, mtime in ns) of the file before it was read; None if it could not be stat'ed
    stamp: tuple[int, int, int, int] | None = field(default=None, compare=False)

    @property
    def short(self) -> str:
        """The first 12 hex digits of the content hash, for display."""
        return self.content_hash[:12]


def scan(path: Path, checks: RecordChecks = RecordChecks()) -> DatasetInfo:
    """Validate a whole file, streaming; raise ``InputError`` on its first problem.

    Repeated ids are found after the last line, so a file with both a bad line
    and a repeated id reports the bad line.
    """
    path = Path(path)
    fmt = _format_of(path)
    stamp = _stamp(path)  # before reading: a write during the scan then shows as a change
    digest = hashlib.sha256()
    id_hashes = array("Q")
    for line, record in _parse(path, fmt, digest, checks.max_bytes):
        for name, judge in checks.needed.items():
            if not record.has(name):
                _missing_for_judge(path, line, name, judge)
        # hash() is salted per process; both passes run in this one, so that is fine.
        id_hashes.append(hash(record.id) & _MASK64)
    if not id_hashes:
        if fmt == "csv":
            raise InputError(path, "has a header but no records", hint="add one row per record under the header")
        raise InputError(path, "has no records", hint='write one JSON object per line, like {"output": "..."}')
    _check_unique_ids(path, fmt, id_hashes)
    return DatasetInfo(
        path=path, name=path.stem, format=fmt, content_hash=digest.hexdigest(), count=len(id_hashes), stamp=stamp
    )


def iter_records(path: Path) -> Iterator[tuple[int, Record]]:
    """Stream (line number, record) from a file that ``scan`` accepted.

    Records are validated again on the way (the same parser), but repeated ids
    are only detected by ``scan``.
    """
    path = Path(path)
    return _parse(path, _format_of(path), None)


def iter_batches(path: Path, size: int, *, expect: DatasetInfo | None = None) -> Iterator[list[tuple[int, Record]]]:
    """Stream ``iter_records`` in lists of at most ``size``.

    With ``expect`` (the file's ``scan``), the file must still be the one that
    was scanned, or ``DatasetChanged`` is raised: before each batch is handed
    out the file's stamp (inode, size, mtime) is compared with the scan's, and
    before the last one the SHA-256 of every byte streamed is compared with
    the scan's content hash. So a batch read after a change is never handed
    out, and a change the stamp cannot see (same size and mtime) is still
    caught before the end. Records are validated on the way too, so a line
    made invalid by a change raises its own ``InputError`` first.
    """
    if size < 1:
        raise SchedulerArgumentError(f"batch size must be at least 1, not {size}")
    path = Path(path)
    digest = hashlib.sha256() if expect is not None else None
    batch: list[tuple[int, Record]] = []
    for item in _parse(path, _format_of(path), digest):
        if len(batch) == size:  # handed out only once the next record is read: the check sees that read too
            _check_unchanged(path, expect)
            yield batch
            batch = []
        batch.append(item)
    _check_unchanged(path, expect)
    if digest is not None and expect is not None and digest.hexdigest() != expect.content_hash:
        problem = f"changed after it was validated (sha256 {expect.short} then, {digest.hexdigest()[:12]} now)"
        raise DatasetChanged(path, problem, hint=_CHANGED_HINT)
    if batch:
        yield batch


_CHANGED_HINT = "submit it again once nothing writes to it"


def _stamp(path: Path) -> tuple[int, int, int, int] | None:
    """What changes when a file is written or replaced: (device, inode, size, mtime in ns)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None  # reading it raises the error that explains why
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _check_unchanged(path: Path, expect: DatasetInfo | None) -> None:
    if expect is None or expect.stamp is None:
        return
    now = _stamp(path)
    if now != expect.stamp:
        what = "was replaced" if now is None or now[:2] != expect.stamp[:2] else "was written to"
        raise DatasetChanged(path, f"{what} after it was validated (sha256 {expect.short})", hint=_CHANGED_HINT)


# --- field names, from Record -------------------------------------------------


def _field_names() -> dict[str, tuple[str, ...]]:
    """Each field of Record with the names it accepts, the field's own name first."""
    names: dict[str, tuple[str, ...]] = {}
    for field, info in Record.model_fields.items():
        alias = info.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias] if alias else []
        accepted = [field] + [c for c in choices if isinstance(c, str) and c != field]
        names[field] = tuple(accepted)
    return names


def _expected(field: str) -> str:
    """What a field must hold, in words: "a string or a list of strings"."""
    annotation = Record.model_fields[field].annotation
    options = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    words = []
    for option in options:
        origin = get_origin(option) or option
        if option is NoneType:
            continue
        if origin is list:
            words.append("a list of strings" if get_args(option) == (str,) else "a list")
        elif origin is dict:
            words.append("a JSON object")
        elif option is str:
            words.append("a string")
        else:
            words.append(getattr(option, "__name__", str(option)))
    return " or ".join(words)


_NAMES = _field_names()
_FIELD_OF = {name: field for field, names in _NAMES.items() for name in names}
_ALLOWED = ", ".join(f"{f} ({', '.join(n[1:])})" if len(n) > 1 else f for f, n in _NAMES.items())
_EXPECTED = {field: _expected(field) for field in _NAMES}


# --- reading ------------------------------------------------------------------


def _format_of(path: Path) -> Format:
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            path,
            f"unsupported file type '{path.suffix or '(no extension)'}'",
            hint="give a JSON Lines file (.jsonl, .ndjson) or a .csv file",
        )
    return fmt


class _Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


class _CsvReader(Iterator[list[str]], Protocol):
    line_num: int


def _parse(path: Path, fmt: Format, digest: _Digest | None,
           max_bytes: int | None = None) -> Iterator[tuple[int, Record]]:
    """The one parser: (line, record) for each record; ``digest`` sees every byte."""
    lines = _lines(path, digest, max_bytes)
    return _parse_csv(path, lines, max_bytes) if fmt == "csv" else _parse_jsonl(path, lines)


def _lines(path: Path, digest: _Digest | None, max_bytes: int | None = None) -> Iterator[str]:
    """The file's lines as text, line ends kept, BOM dropped, fed to ``digest``.

    With ``max_bytes``, no more than that (and its line end) is read for one
    line: a longer line is an InputError, however long it is.
    """
    try:
        with path.open("rb") as file:
            raws: Iterable[bytes] = file if max_bytes is None else iter(lambda: file.readline(max_bytes + 2), b"")
            for number, raw in enumerate(raws, 1):
                if max_bytes is not None and len(raw) > max_bytes and len(raw.rstrip(b"\r\n")) > max_bytes:
                    _too_long(path, number, max_bytes, "line")
                if digest is not None:
                    digest.update(raw)
                if number == 1 and raw.startswith(_BOM):
                    raw = raw[len(_BOM) :]
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    problem = f"is not UTF-8 text (byte 0x{raw[error.start]:02x} at byte {error.start + 1} of the line)"
                    raise InputError(path, problem, line=number, hint="save the file as UTF-8") from None
                yield text
    except IsADirectoryError:
        raise InputError(path, "is a directory", hint="give the path of a .jsonl or .csv file") from None
    except FileNotFoundError:
        raise InputError(path, "no such file", hint="check the path") from None
    except OSError as error:
        raise InputError(path, f"cannot be read ({error.strerror})", hint="check the path and its permissions") from None


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


# NaN and Infinity are Python's extension to JSON; the ledger (PostgreSQL JSONB) refuses them.
_JSON = json.JSONDecoder(parse_constant=_reject_constant)


def _parse_jsonl(path: Path, lines: Iterable[str]) -> Iterator[tuple[int, Record]]:
    first = True
    for number, text in enumerate(lines, 1):
        if text.isspace():
            continue
        if first and text.lstrip().startswith("["):
            raise InputError(
                path,
                "holds a JSON array; judgeq reads JSON Lines (one object per line)",
                line=number,
                hint=f"convert it with: jq -c '.[]' {path.name} > {_jsonl_name(path)}",
            )
        first = False
        try:
            data = _JSON.decode(text)
        except RecursionError:
            _too_deep(path, number, None)
        except json.JSONDecodeError as error:
            hint = "each line must be one complete JSON object"
            if text.strip() == "{":
                hint += f"; a pretty-printed file can be converted with: jq -c . {path.name} > {_jsonl_name(path)}"
            where = "at the end of the line" if error.pos >= len(text.rstrip()) else f"at column {error.pos + 1}"
            raise InputError(path, f"malformed JSON {where}: {error.msg}", line=number, hint=hint) from None
        except ValueError as error:
            hint = "write standard JSON (NaN and Infinity are not JSON; use null)"
            raise InputError(path, f"malformed JSON: {error}", line=number, hint=hint) from None
        if not isinstance(data, dict):
            problem = f"the line is {_kind(data)}, not a JSON object"
            hint = 'each line must be one JSON object, like {"output": "..."}'
            raise InputError(path, problem, line=number, hint=hint)
        if "\\u" in text:  # only a \u escape can make a lone surrogate out of UTF-8 text
            _check_surrogates(path, number, data)
        yield number, _record(path, number, data)


def _jsonl_name(path: Path) -> str:
    """A name to convert ``path`` to, never ``path`` itself."""
    return f"{path.stem}.lines.jsonl" if path.suffix.lower() == ".jsonl" else f"{path.stem}.jsonl"


def _parse_csv(path: Path, lines: Iterable[str], max_bytes: int | None = None) -> Iterator[tuple[int, Record]]:
    if csv.field_size_limit() < _MAX_CSV_CELL:
        csv.field_size_limit(_MAX_CSV_CELL)
    counted = _Counted(lines)
    reader = csv.reader(counted, strict=True)
    header, header_line = _next_row(path, reader)
    if header is None:
        raise InputError(path, "is empty", hint="the first row must be a header naming the columns, like id,input,output")
    _check_keys(path, header_line, header)
    while True:
        counted.chars = 0
        row, line = _next_row(path, reader)
        if row is None:
            return
        # A character is 1 to 4 bytes: only a row of more than max_bytes / 4 characters needs counting.
        if max_bytes is not None and counted.chars * 4 > max_bytes and sum(len(c.encode()) for c in row) > max_bytes:
            _too_long(path, line, max_bytes, "row")
        if len(row) > len(header):
            problem = f"the row has {len(row)} cells but the header names {len(header)} columns"
            raise InputError(path, problem, line=line, hint='quote cells that contain commas: "a, b"')
        # Empty cells mean absent; so do missing cells at the end of a short row.
        data = {column: _cell(path, line, column, cell) for column, cell in zip(header, row) if cell}
        yield line, _record(path, line, data)


class _Counted(Iterator[str]):
    """Lines passed through, counting their characters: a row's size, cheaply, before its bytes are counted."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self.chars = 0

    def __next__(self) -> str:
        line = next(self._lines)
        self.chars += len(line)
        return line


def _next_row(path: Path, reader: _CsvReader) -> tuple[list[str] | None, int]:
    """The next non-blank CSV row and the line it starts on."""
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return None, line
        except csv.Error as error:
            hint = 'check the quoting: a quote inside a quoted cell is written twice ("")'
            raise InputError(path, f"malformed CSV ({error})", line=line, hint=hint) from None
        if row:
            return row, line


def _cell(path: Path, line: int, column: str, cell: str) -> Any:
    """A CSV cell as the value the same field would have in JSON Lines."""
    field = _FIELD_OF.get(column)
    if field == "context" and cell.startswith("["):
        # A JSON list of strings is a list of chunks; anything else is plain text.
        try:
            value = _JSON.decode(cell)
        except (ValueError, RecursionError):
            return cell
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return cell
        if "\\u" in cell:
            _check_surrogates(path, line, {column: value})
        return value
    if field == "metadata":
        hint = 'write a JSON object like {"locale": "de"}, or leave the cell empty'
        try:
            value = _JSON.decode(cell)
        except RecursionError:
            _too_deep(path, line, column)
        except json.JSONDecodeError as error:
            problem = f"not a JSON object ({error.msg} at column {error.colno})"
            raise InputError(path, problem, line=line, field=column, hint=hint) from None
        except ValueError as error:
            raise InputError(path, f"not a JSON object ({error})", line=line, field=column, hint=hint) from None
        if not isinstance(value, dict):
            raise InputError(path, f"got {_describe(value)}", line=line, field=column, hint=hint)
        if "\\u" in cell:
            _check_surrogates(path, line, {column: value})
        return value
    return cell


# --- what cannot be stored ------------------------------------------------------


def _too_long(path: Path, line: int, max_bytes: int, what: str) -> NoReturn:
    raise InputError(
        path, f"the record's {what} is longer than {max_bytes:,} bytes", line=line,
        hint="shorten it (an excerpt of a long context, not all of it), or raise JUDGEQ_MAX_RECORD_BYTES",
    )


def _too_deep(path: Path, line: int, column: str | None) -> NoReturn:
    raise InputError(
        path, "JSON nested deeper than can be read", line=line, field=column,
        hint='keep metadata to flat keys like {"locale": "de", "tenant": "acme"}',
    )


def _check_surrogates(path: Path, line: int, data: dict[str, Any]) -> None:
    """A lone UTF-16 surrogate (an unpaired ``\\ud800``-``\\udfff`` escape) in any key or text is an InputError."""
    for key, value in data.items():
        stack: list[Any] = [key, value]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                bad = _SURROGATE.search(item)
                if bad is not None:
                    problem = f"holds a lone UTF-16 surrogate (\\u{ord(bad.group()):04x}), which is not a character"
                    hint = r"escape a character outside the BMP as a pair, like \ud83d\ude00, or remove it"
                    raise InputError(path, problem, line=line, field=key, hint=hint)
            elif isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)


def _missing_for_judge(path: Path, line: int, name: str, judge: str) -> NoReturn:
    aliases = _NAMES.get(name, (name,))
    also = f" (alias: {', '.join(aliases[1:])})" if len(aliases) > 1 else ""
    raise InputError(
        path, "missing or empty", line=line, field=name,
        hint=f"judge {judge!r} needs it in every record; add {name}{also} to each, or leave out --judge {judge}",
    )


# --- validating ---------------------------------------------------------------


def _record(path: Path, line: int, data: dict[str, Any]) -> Record:
    _check_keys(path, line, data)
    try:
        record = Record.model_validate(data)
    except ValidationError as error:
        raise _explain(path, line, data, error) from None
    unstorable = record.unstorable()
    if unstorable is not None:
        raise InputError(path, unstorable[1], line=line, field=_written_as(data, unstorable[0]))
    if record.ts is not None:
        try:
            datetime.fromisoformat(record.ts)
        except ValueError:
            problem = f"not an ISO 8601 time: {json.dumps(record.ts, ensure_ascii=False)[:60]}"
            raise InputError(path, problem, line=line, field="ts", hint="write it like 2026-11-16T09:30:00Z") from None
    return record


def _written_as(data: dict[str, Any], field: str) -> str:
    """The name ``field`` has in the file (an alias stays an alias)."""
    return next((name for name in _NAMES[field] if name in data), field)


def _check_keys(path: Path, line: int, keys: Iterable[str]) -> None:
    """Unknown names, and a field given under two of its names, are errors."""
    seen: dict[str, str] = {}
    for key in keys:
        field = _FIELD_OF.get(key)
        if not key:
            hint = f"name it one of: {_ALLOWED}; or remove it"
            raise InputError(path, "a field (or CSV column) has an empty name", line=line, hint=hint)
        if field is None:
            close = difflib.get_close_matches(key, _FIELD_OF, n=1)
            guess = f"did you mean '{close[0]}'? " if close else ""
            hint = f"{guess}the fields are: {_ALLOWED}; put anything else under metadata"
            raise InputError(path, "unknown field", line=line, field=key, hint=hint)
        if field in seen:
            problem = f"given twice, as '{seen[field]}' and as '{key}'"
            raise InputError(path, problem, line=line, field=field, hint="keep one of them")
        seen[field] = key


def _explain(path: Path, line: int, data: dict[str, Any], error: ValidationError) -> InputError:
    """The first problem pydantic found, as an InputError in our words."""
    errors = error.errors(include_url=False)
    # A union reports one error per branch; the deepest one is the most specific.
    first = max(errors, key=lambda e: len(e["loc"]))
    key = str(first["loc"][0])
    field = _FIELD_OF.get(key, key)
    if first["type"] == "missing":
        names = _NAMES.get(field, (field,))
        also = f" (alias: {', '.join(names[1:])})" if len(names) > 1 else ""
        article = "an" if field[0] in "aeiou" else "a"
        return InputError(path, "missing", line=line, field=key, hint=f"every record needs {article} {field}{also}")
    hint = f"it must be {_EXPECTED.get(field, 'something else')}"
    indexes = [part for part in first["loc"][1:] if isinstance(part, int)]
    if indexes and isinstance(data.get(key), list):
        problem = f"item [{indexes[-1]}] is {_describe(first['input'])}"
    elif first["type"].endswith("_type"):
        problem = f"got {_describe(first['input'])}"
    else:
        problem = str(first["msg"])
    return InputError(path, problem, line=line, field=key, hint=hint)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _describe(value: Any) -> str:
    """A kind and a short JSON excerpt: ``a number (3)``."""
    if value is None:
        return "null"
    text = json.dumps(value, ensure_ascii=False)
    return f"{_kind(value)} ({text if len(text) <= 40 else text[:37] + '...'})"


# --- repeated ids -------------------------------------------------------------


#: Up to this many ids, repeated hashes are found with a set; above it with numpy's sort, which needs a
#: tenth of the memory but costs its import (some 0.05-0.1 s, before a small submit's first call).
SET_CHECK_MAX = 200_000


def _repeated_hashes(id_hashes: array[int]) -> set[int]:
    """The hashes that occur more than once."""
    if len(id_hashes) <= SET_CHECK_MAX:
        seen: set[int] = set()
        repeated: set[int] = set()
        for h in id_hashes:
            (repeated if h in seen else seen).add(h)
        return repeated
    import numpy as np  # here, not at the top: `judgeq --help` must stay fast

    ordered = np.sort(np.frombuffer(id_hashes, dtype=np.uint64))
    return set(np.unique(ordered[1:][ordered[1:] == ordered[:-1]]).tolist())


def _check_unique_ids(path: Path, fmt: Format, id_hashes: array[int]) -> None:
    suspects = _repeated_hashes(id_hashes)
    if not suspects:
        return
    # Second pass, only over records whose hash repeats: the one that repeats an
    # earlier id first (in file order) is reported. Equal hashes of different ids
    # are possible, if unlikely; they pass.
    first_line: dict[str, int] = {}
    for line, record in _parse(path, fmt, None):
        if hash(record.id) & _MASK64 not in suspects:
            continue
        if record.id not in first_line:
            first_line[record.id] = line
            continue
        hint = "ids must be unique within a file; rename or remove one of the two records"
        if record.id == "h" + record.content_hash()[:16]:
            hint = "the id is a hash of the content, so the two records are the same; remove one or give each an id"
        problem = f"line {line} repeats id '{record.id}' from line {first_line[record.id]}"
        raise InputError(path, problem, line=line, field="id", hint=hint)
