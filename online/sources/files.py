"""The files a source's ``path`` names, and reading them line by line whether gzipped or not.

``path`` is a file, a glob (``traces/*.jsonl.gz``, ``**`` allowed) or a
folder, whose files with the source's suffixes are read; all in name order,
listed anew on every read, since daily files keep appearing. A relative
``path`` starts at the config's folder. Gzip is recognised by its magic
bytes, not the name, so a rotated file renamed without ``.gz`` still reads.

Daily files (``daily_files = true``): when every file name carries the UTC
date of the traces it holds (``2026-11-22`` or ``20261122``), a file dated D
is only opened for a window that overlaps [D - 1 day, D + 2 days): a day of
slack on each side for late writes and time zones. Off by default, because a
file named by the day it was written may hold traces of any earlier day, and
skipping it would lose them without a trace. A name without a date is read.
"""

from __future__ import annotations

import glob
import gzip
import io
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, cast

from online.errors import SourceError, SourceUnavailable

__all__ = ["FileSet", "open_lines", "read_lines"]

_GLOB_CHARS = frozenset("*?[")
_NAME_DATE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")
_GZIP_MAGIC = b"\x1f\x8b"
_BUFFER = 1 << 18
_SLACK_BEFORE = timedelta(days=1)
_SLACK_AFTER = timedelta(days=2)


@dataclass(frozen=True)
class FileSet:
    """The files of source ``source``: ``path`` as written, resolved against ``base_dir``."""

    source: str
    written: str
    path: Path
    suffixes: tuple[str, ...]
    daily: bool = False
    #: Lines longer than this are skipped and counted (``too_large``) without being held; None: unbounded.
    max_line_bytes: int | None = None

    @classmethod
    def of(cls, source: str, written: str, base_dir: Path, suffixes: tuple[str, ...], daily: bool,
           max_line_bytes: int | None = None) -> FileSet:
        path = Path(written).expanduser()
        return cls(source, written, path if path.is_absolute() else base_dir / path, suffixes, daily, max_line_bytes)

    def files(self, start: datetime | None = None, end: datetime | None = None) -> list[Path]:
        """The files to read for ``[start, end)``, in name order.

        SourceUnavailable when the file, the folder or a glob's folder does not exist.
        """
        if _GLOB_CHARS.intersection(str(self.path)):
            self._exists(_fixed_part(self.path))
            found = sorted(Path(p) for p in glob.glob(str(self.path), recursive=True))
            found = [p for p in found if p.is_file()]
        elif self._exists(self.path).is_dir():
            found = sorted(p for p in self.path.iterdir() if p.name.endswith(self.suffixes) and p.is_file())
        else:
            found = [self.path]
        if self.daily and start is not None and end is not None:
            found = [p for p in found if _may_hold(p.name, start, end)]
        return found

    def _exists(self, path: Path) -> Path:
        if not path.exists():
            raise SourceUnavailable(
                f"source {self.source!r}: {str(path)!r} does not exist (path = {self.written!r}); mount or create it, "
                f"or fix sources.{self.source}.path (a relative path starts at the config file's folder)")
        return path

    def unavailable(self, path: Path, exc: OSError) -> SourceUnavailable | SourceError:
        """The error for ``path`` failing to open or read with ``exc``."""
        if isinstance(exc, FileNotFoundError):
            return SourceUnavailable(f"source {self.source!r}: {str(path)!r} vanished while it was read; run again")
        if isinstance(exc, PermissionError):
            return SourceError(f"source {self.source!r}: cannot read {str(path)!r} (permission denied); "
                               "let judgeq's user read it")
        return SourceUnavailable(f"source {self.source!r}: cannot read {str(path)!r} ({exc.strerror or exc}); "
                                 "check the disk or mount, then run again")


def _fixed_part(path: Path) -> Path:
    """The folder a glob starts from: its parts before the first with a wildcard."""
    fixed = []
    for part in path.parts:
        if _GLOB_CHARS.intersection(part):
            break
        fixed.append(part)
    return Path(*fixed)


def _may_hold(name: str, start: datetime, end: datetime) -> bool:
    """Whether a file so named may hold traces of ``[start, end)``, its date give or take a day."""
    match = _NAME_DATE.search(name)
    if match is None:
        return True
    try:
        day = datetime(int(match[1]), int(match[2]), int(match[3]), tzinfo=UTC)
    except ValueError:  # digits that are not a date: the name says nothing
        return True
    return day - _SLACK_BEFORE < end and start < day + _SLACK_AFTER


@contextmanager
def open_lines(path: Path) -> Iterator[IO[bytes]]:
    """``path`` opened for reading bytes line by line, decompressed when it is gzip."""
    raw = cast(io.BufferedReader, path.open("rb", buffering=_BUFFER))
    try:
        if raw.peek(2)[:2] == _GZIP_MAGIC:
            # GzipFile's own lines come through 8 KiB reads of Python code; a larger buffer halves their cost.
            # (A file cut short loses the lines of the buffer it was cut in: at most _BUFFER bytes of them.)
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                yield cast(IO[bytes], io.BufferedReader(cast(io.RawIOBase, unzipped), buffer_size=_BUFFER))
        else:
            yield raw
    finally:
        raw.close()


def read_lines(files: FileSet, start: datetime, end: datetime, skipped: Counter[str]) -> Iterator[bytes]:
    """Every line of the files to read for ``[start, end)``, file after file.

    A gzip file cut short (still being written, or copied half) yields its
    complete lines and counts ``truncated``; one that is not gzip past its
    magic bytes is a SourceError; a file that vanishes or cannot be read is
    SourceUnavailable (permission denied: SourceError).

    ``files.max_line_bytes``: a longer line (its newline not counted) is not
    yielded but counted as ``too_large``, and never held whole: it is read
    and dropped in pieces of that size, so a small gzip file that inflates to
    one line of gigabytes costs a piece's memory, not the line's.
    """
    for path in files.files(start, end):
        try:
            with open_lines(path) as lines:
                if files.max_line_bytes is None:
                    yield from lines
                else:
                    yield from _bounded(lines, files.max_line_bytes, skipped)
        except EOFError:
            skipped["truncated"] += 1
        except (gzip.BadGzipFile, zlib.error) as exc:
            raise SourceError(f"source {files.source!r}: {str(path)!r} is not a valid gzip file ({exc}); "
                              "remove or repair it") from None
        except OSError as exc:
            raise files.unavailable(path, exc) from None


def _bounded(lines: IO[bytes], limit: int, skipped: Counter[str]) -> Iterator[bytes]:
    """The lines of ``lines`` of at most ``limit`` bytes (besides the line end); longer ones dropped and counted.

    The line end may be "\\r\\n", as ``judgeq submit`` counts a line (``scheduler.records``): a piece
    has room for it, so a line a dataset may hold is read whole here too.
    """
    readline, piece = lines.readline, limit + 2
    while line := readline(piece):
        ended = len(line) < piece or line.endswith(b"\n")  # short only at a newline or the file's end
        if ended and len(line.rstrip(b"\r\n")) <= limit:
            yield line
            continue
        while line and not line.endswith(b"\n"):  # the rest of the long line, a piece at a time
            line = readline(piece)
        skipped["too_large"] += 1
