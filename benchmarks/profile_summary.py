"""Summarize py-spy's collapsed stacks (``py-spy record --format raw``): where the samples went.

    python -m benchmarks.profile_summary FILE [FILE ...] [--top 25] [--match TEXT]

Prints, for all the files together, the share of samples per function
*inclusive* (the function is anywhere on the stack) and *self* (it is the
innermost frame), with the line number dropped so that a function counts once
per stack. py-spy records only threads that are on a CPU (it was not given
``--idle``), so the shares are shares of CPU time.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """``func (path/to/module.py:12)`` -> ``module.py:func`` (last two path parts kept)."""
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match.group("file").replace("\\", "/")
    parts = path.split("/")
    short = "/".join(parts[-2:]) if len(parts) > 1 else path
    return f"{short}:{match.group('func')}"


def load(paths: list[Path]) -> tuple[Counter[str], Counter[str], int]:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            frames = stack.split(";")
            count = int(count_text)
            total += count
            names = [frame_name(f) for f in frames if not f.startswith(("process ", "thread "))]
            for name in set(names):
                inclusive[name] += count
            if names:
                own[names[-1]] += count
    return inclusive, own, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default="", help="only functions whose name contains this text")
    args = parser.parse_args(argv)
    inclusive, own, total = load(args.files)
    if not total:
        print("no samples")
        return 1
    print(f"{total} samples")
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"\n{title}:")
        rows = [(n, c) for n, c in counter.most_common() if args.match in n][: args.top]
        for name, count in rows:
            print(f"{100.0 * count / total:6.1f}%  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
