"""Reading the small text files a judge config names: judgeq.toml itself and prompt files."""

from __future__ import annotations

import stat
from pathlib import Path

from .errors import JudgeConfigError


def read_small_file(path: Path, limit: int, what: str) -> bytes:
    """The bytes of the regular file ``path``, which must hold at most ``limit`` of them.

    FileNotFoundError for a missing file (callers say what to do about it);
    JudgeConfigError for anything else: a device, pipe or folder (never opened,
    so ``/dev/zero`` is not read and a pipe does not block), a file too large,
    a file that cannot be read.
    """
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a device, a pipe or a socket)"
            raise JudgeConfigError(f"{what} {str(path)!r} is {kind}; give the path of a text file")
        with path.open("rb") as file:
            data = file.read(limit + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise JudgeConfigError(f"cannot read {what} {str(path)!r} ({exc.strerror}); check its permissions") from None
    if len(data) > limit:
        raise JudgeConfigError(f"{what} {str(path)!r} is larger than {limit:,} bytes; shorten it")
    return data
