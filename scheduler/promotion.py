"""Promotion: a run's failing traces appended to a golden dataset file (``judgeq promote``).

Error analysis closes the loop of docs/architecture.md ("The online path"): the
traces a judge failed, online or offline, become records of the golden set,
so the next offline gate judges them too. The steps:

1. **Rows**: the run's rows of one judge, each with the record it judged
   (``Ledger.scores.judged_items``), kept when the ``--where`` test holds
   (``scheduler.where``).
2. **Selection**: worst first (lowest score; rows without a score after them,
   then by trace id), at most ``limit`` per value of the ``by`` metadata key
   (or overall). The limit is taken *before* deduplication, so a promotion
   run twice selects the same traces and adds nothing the second time.
3. **Deduplication** against the file's records and within the batch: by
   trace id, and by content (the same input, output and context; metadata and
   expected are not compared, since the file's copy may have been reviewed).
4. **Lines**: the trace as a record (id, input, output, context, ts; its
   metadata kept) with ``expected`` null for a reviewer to fill in (or taken
   from a record field, ``expected_from``), and its provenance under
   ``metadata.promoted``: run, judge, judge version, score, label, reason,
   window or dataset hash, the ``--where`` and the time.
5. **Append, atomically**: under an exclusive lock on the file's folder, the
   file is copied byte for byte to a temporary file beside it, the new lines
   are written after it (a line end first if the file's last line had none),
   the copy is fsynced and validated whole by ``scheduler.records.scan`` (as
   ``judgeq submit`` will), then renamed over the file and the folder fsynced.
   Existing lines are never rewritten, and a crash at any point leaves either
   the old file or the new one, never a partial line. A crash can leave a
   hidden ``.NAME.promote-*`` temporary file behind; it is safe to delete.

The file's new SHA-256 (``DatasetInfo.content_hash``) is the dataset version
``judgeq submit`` records for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from judges.record import hash_content
from online.errors import OnlineConfigError
from online.fields import MISSING, canonical_path, compile_path

from .errors import InputError, UsageError
from .records import MAX_RECORD_BYTES, RecordChecks, iter_records, scan
from .where import Where

if TYPE_CHECKING:
    from ledger.models import Run, Score
    from ledger.store import Ledger

#: Where promoted lines keep their provenance: ``metadata["promoted"]``.
PROVENANCE_KEY: Final = "promoted"
MAX_REASON_CHARS: Final = 2000  # a judge's reason is kept, up to this long
NO_SLICE: Final = "(none)"
_JSONL: Final = (".jsonl", ".ndjson", ".json")


@dataclass(frozen=True)
class Candidate:
    """A row that passed ``--where``, with the record it judged."""

    row: Score
    record: dict[str, Any]
    slice: str

    @property
    def trace_id(self) -> str:
        return self.row.trace_id

    def order(self) -> tuple[int, float, str]:
        """Worst first: the lowest score, then rows without one, then by trace id."""
        score = self.row.score
        return (0, score, self.trace_id) if score is not None else (1, 0.0, self.trace_id)


@dataclass
class Promotion:
    """What a promotion did; ``dataset_hash`` is the file's SHA-256 after it (None: the file does not exist)."""

    target: Path
    run_id: str
    judge: str
    considered: int = 0  # the judge's rows in the run
    matched: int = 0  # rows passing --where
    selected: int = 0  # after --by/--limit
    added: list[Candidate] = field(default_factory=list)
    already_in_file: int = 0  # selected but the file has the trace id or its content
    same_in_batch: int = 0  # selected but repeating another selected trace's content
    expected_filled: int = 0  # added with expected from --expected-from
    records: int = 0  # records in the file after the promotion
    dataset_hash: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "target": str(self.target), "run": self.run_id, "judge": self.judge, "considered": self.considered,
            "matched": self.matched, "selected": self.selected, "already_in_file": self.already_in_file,
            "same_in_batch": self.same_in_batch, "expected_filled": self.expected_filled,
            "added": [{"id": c.trace_id, "score": c.row.score, "label": c.row.label, "slice": c.slice}
                      for c in self.added],
            "records": self.records, "dataset_hash": self.dataset_hash,
        }


# --- which run -----------------------------------------------------------------


def find_run(ledger: Ledger, *, run_id: str | None, source: str | None, window: str | None,
             judge: str | None) -> tuple[Run, str]:
    """The run and judge to promote from: ``run_id`` (judge optional when it has one), or a window's run.

    A source's window judged more than once (the judge's version or the
    sampling policy changed) has several runs; the newest is taken.
    UsageError (exit 2) for an unknown judge, window or run.
    """
    if run_id is not None:
        if source is not None or window is not None:
            raise UsageError("give either --run RUN, or (--source S | --schedule N) --window W --judge J, not both")
        run = ledger.runs.get_run(run_id)  # RunNotFound: exit 2
        judges = sorted(run.judges)
        if judge is None:
            if len(judges) != 1:
                raise UsageError(f"run {run_id} has judges {', '.join(judges)}; say which with --judge")
            return run, judges[0]
        if judge not in run.judges:
            raise UsageError(f"run {run_id} has no judge {judge!r} (its judges: {', '.join(judges) or 'none'})")
        return run, judge
    if source is None or window is None or judge is None:
        raise UsageError("say what to promote from: --run RUN, or (--source S | --schedule N) --window W --judge J")
    from online.windows import parse_window

    window_id = parse_window(window).id  # WindowError: exit 2
    runs = ledger.windows.online_runs(source, judge, [window_id])
    if not runs:
        raise UsageError(f"no online run of {source!r} with judge {judge!r} for window {window_id}; check the "
                         "names, and see 'judgeq runs --dataset SOURCE' for the windows judged")
    return runs[-1], judge


# --- the options -----------------------------------------------------------------


def check_target(path: Path) -> Path:
    """The file to append to, symlinks resolved; InputError (exit 2) when it cannot be a JSON Lines dataset."""
    path = Path(path)
    if path.suffix.lower() not in _JSONL:
        raise InputError(path, f"cannot take promoted traces: {path.suffix or 'no extension'} is not a JSON "
                         "Lines dataset", hint="give a .jsonl file (a CSV golden set: convert it, or promote "
                         "into a .jsonl of its own)")
    real = Path(os.path.realpath(path))
    if real.exists() and not real.is_file():
        raise InputError(path, "is not a regular file", hint="give the path of a .jsonl dataset file")
    if not real.parent.is_dir():
        raise InputError(path, f"its folder {real.parent} does not exist", hint="create it, or check the path")
    return real


def expected_getter(path: str | None) -> Any:
    """A getter of ``--expected-from``'s record field, or None; UsageError for a path no record has."""
    if path is None:
        return None
    try:
        canonical = canonical_path(path, "--expected-from")
    except OnlineConfigError as exc:
        raise UsageError(str(exc)) from None
    if canonical in ("metadata", "expected"):
        raise UsageError(f"--expected-from {path!r}: name the field that holds the expected answer, like "
                         "metadata.reference")
    return compile_path(canonical)


def slice_key(by: str | None) -> str | None:
    """``--by``'s metadata key ("locale" or "metadata.locale")."""
    if by is None:
        return None
    key = by.removeprefix("metadata.")
    if not key or not key.strip():
        raise UsageError(f"--by {by!r}: give a metadata key, like locale")
    return key


# --- selecting -------------------------------------------------------------------


def select(ledger: Ledger, run: Run, judge: str, where: Where, *, by: str | None,
           limit: int | None, promotion: Promotion) -> list[Candidate]:
    """The rows to promote, worst first per slice (see the module docstring), counted into ``promotion``.

    The rows that pass ``where`` are held in memory with their records (failures: a share of a run).
    """
    matched: dict[str, list[Candidate]] = {}
    for row, record in ledger.scores.judged_items(run.id, judge):
        promotion.considered += 1
        data = {"row": {name: getattr(row, name) for name in _ROW_NAMES}, "record": record}
        if not where(data):
            continue
        promotion.matched += 1
        metadata = record.get("metadata")
        value = metadata.get(by) if by is not None and isinstance(metadata, dict) else None
        name = "" if by is None else NO_SLICE if value is None else value if isinstance(value, str) else json.dumps(
            value)
        matched.setdefault(name, []).append(Candidate(row, record, name))
    chosen: list[Candidate] = []
    for _, group in sorted(matched.items()):
        group.sort(key=Candidate.order)
        chosen += group if limit is None else group[:limit]
    chosen.sort(key=Candidate.order)
    promotion.selected = len(chosen)
    return chosen


_ROW_NAMES: Final = ("score", "label", "reason", "status", "error_kind", "error", "cost_usd", "latency_s",
                     "attempts", "cached", "weight", "stratum", "cluster")


def content_key(record: dict[str, Any]) -> str:
    """What makes two traces the same for promotion: input, output and context (of a stored record)."""
    return hash_content(record.get("input", ""), record.get("output", ""), record.get("context"), None, {})


def line_for(candidate: Candidate, run: Run, judge: str, where: Where, expected: Any, now: datetime,
             ) -> tuple[dict[str, Any], bool]:
    """The record to append for ``candidate``, and whether its ``expected`` was filled in."""
    record = candidate.record
    row = candidate.row
    value = expected(record) if expected is not None else MISSING
    filled = isinstance(value, str) and bool(value.strip())
    metadata = dict(record.get("metadata") or {})
    reason = row.reason or ""
    provenance: dict[str, Any] = {
        "run": run.id, "kind": run.kind, "judge": judge, "judge_version": row.judge_version, "score": row.score,
        "label": row.label, "status": row.status, "reason": reason[:MAX_REASON_CHARS],
    }
    if row.error_kind:
        provenance["error_kind"] = row.error_kind
    if run.kind == "online":
        provenance.update(source=run.dataset_name, window=run.window)
    else:
        provenance.update(dataset=run.dataset_name, dataset_hash=run.dataset_hash)
    provenance.update(where=where.text, at=now.isoformat())
    metadata[PROVENANCE_KEY] = provenance
    line: dict[str, Any] = {"id": candidate.trace_id, "input": record.get("input", ""), "output": record["output"]}
    if record.get("context") is not None:
        line["context"] = record["context"]
    line["expected"] = value if filled else None
    line["metadata"] = metadata
    if record.get("ts") is not None:
        line["ts"] = record["ts"]
    return line, filled


# --- the file --------------------------------------------------------------------


@contextlib.contextmanager
def folder_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on the file's folder: promotions into one folder take turns (no lock file left behind)."""
    import fcntl

    handle = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def existing(path: Path, max_bytes: int | None) -> tuple[set[str], set[str], int, str | None]:
    """(ids, content keys, record count, sha256) of the file's records; InputError (exit 2) if it is not a dataset.

    A missing or empty file is an empty dataset.
    """
    if not path.exists() or path.stat().st_size == 0:
        return set(), set(), 0, None
    info = scan(path, RecordChecks(max_bytes=max_bytes))
    ids: set[str] = set()
    contents: set[str] = set()
    for _, record in iter_records(path):
        ids.add(record.id)
        contents.add(content_key(record.to_message()))
    return ids, contents, info.count, info.content_hash


def append_lines(path: Path, lines: Sequence[dict[str, Any]], max_bytes: int | None) -> tuple[int, str]:
    """Append ``lines`` as described in the module docstring; (records, sha256) of the file after it."""
    temp = Path(tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.promote-", suffix=path.suffix)[1])
    try:
        with temp.open("wb") as out:
            if path.exists():
                with path.open("rb") as old:
                    shutil.copyfileobj(old, out)
                shutil.copymode(path, temp)
                if out.tell() > 0 and not _ends_with_newline(path):
                    out.write(b"\n")
            else:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(temp, 0o666 & ~umask)
            for line in lines:
                out.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            info = scan(temp, RecordChecks(max_bytes=max_bytes))
        except InputError as exc:
            raise _refused(path, temp, lines, exc) from None
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return info.count, info.content_hash


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as file:
        file.seek(-1, os.SEEK_END)
        return file.read(1) == b"\n"


def _refused(path: Path, temp: Path, lines: Sequence[dict[str, Any]], exc: InputError) -> InputError:
    """A promoted line the dataset rules refuse (say, longer than JUDGEQ_MAX_RECORD_BYTES): name its trace."""
    total = sum(1 for _ in temp.open("rb"))
    index = len(lines) - (total - (exc.line or total)) - 1
    trace = lines[index]["id"] if exc.line is not None and 0 <= index < len(lines) else "?"
    return InputError(path, f"promoted trace {trace!r} would not pass a dataset's validation ({exc.problem})",
                      field=exc.field, hint="leave it out with --where (e.g. id != ...), or fix the limit named; "
                      "nothing was written")


def promote(ledger: Ledger, run: Run, judge: str, where: Where, target: Path, *, by: str | None = None,
            limit: int | None = None, expected_from: str | None = None, now: datetime,
            max_bytes: int | None = MAX_RECORD_BYTES) -> Promotion:
    """Append the run's rows of ``judge`` that pass ``where`` to ``target`` (see the module docstring)."""
    target = check_target(target)
    expected = expected_getter(expected_from)
    key = slice_key(by)
    promotion = Promotion(target=target, run_id=run.id, judge=judge)
    existing(target, max_bytes)  # a target that is not a dataset fails before the ledger is read
    chosen = select(ledger, run, judge, where, by=key, limit=limit, promotion=promotion)
    with folder_lock(target):
        file_ids, file_contents, count, digest = existing(target, max_bytes)  # again: another may have run
        batch: set[str] = set()  # trace ids are unique within a run's rows of one judge; contents need not be
        lines: list[dict[str, Any]] = []
        for candidate in chosen:
            content = content_key(candidate.record)
            if candidate.trace_id in file_ids or content in file_contents:
                promotion.already_in_file += 1
                continue
            if content in batch:
                promotion.same_in_batch += 1
                continue
            batch.add(content)
            line, filled = line_for(candidate, run, judge, where, expected, now)
            lines.append(line)
            promotion.added.append(candidate)
            promotion.expected_filled += filled
        if lines:
            count, digest = append_lines(target, lines, max_bytes)
    promotion.records, promotion.dataset_hash = count, digest
    return promotion
