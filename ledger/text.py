"""Text the ledger stores: the same on every backend.

PostgreSQL's UTF-8 text refuses NUL (``\\x00``) and neither backend's driver
can encode a lone surrogate (``\\ud800``-``\\udfff``, which Python strings may
hold, from ``surrogateescape`` or a JSON ``"\\ud83d"``), while SQLite keeps NUL.
So before any text column is written, both become U+FFFD, the Unicode
replacement character, and both backends store the same text; one model
answer with a NUL in it cannot fail the write of its neighbours.

JSON columns (``items.record``, ``runs.judges``/``tags``/``meta``) need no
such care: they are serialized with ASCII escapes (``"\\u0000"``), which both
backends' ``json`` columns store and give back unchanged, so a record keeps
its exact content (and its content hash) on either backend.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

REPLACEMENT: Final = "\ufffd"
_UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` with NUL and lone surrogates replaced by U+FFFD (the same object when there are none)."""
    if text.isascii():  # O(1) in CPython: the common case costs a flag test and a memchr
        return text.replace("\x00", REPLACEMENT) if "\x00" in text else text
    return _UNSTORABLE.sub(REPLACEMENT, text)


def storable_values(values: tuple[Any, ...], text_positions: Sequence[int]) -> tuple[Any, ...]:
    """A row's column values with every text value at ``text_positions`` made storable.

    The row is checked as one string first, so a clean row (nearly all of
    them) costs one join and two scans, not a call per column.
    """
    texts = [value for value in map(values.__getitem__, text_positions) if isinstance(value, str)]
    joined = "".join(texts)
    if "\x00" not in joined:
        if joined.isascii():
            return values
        try:
            joined.encode("utf-8")
            return values
        except UnicodeEncodeError:
            pass
    fixed = list(values)
    for position in text_positions:
        if isinstance(fixed[position], str):
            fixed[position] = storable(fixed[position])
    return tuple(fixed)
