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
from operator import itemgetter
from typing import Any, Final

REPLACEMENT: Final = "\ufffd"
_UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` with NUL and lone surrogates replaced by U+FFFD (the same object when there are none)."""
    if text.isascii():  # O(1) in CPython: the common case costs a flag test and a memchr
        return text.replace("\x00", REPLACEMENT) if "\x00" in text else text
    return _UNSTORABLE.sub(REPLACEMENT, text)


class TextColumns:
    """Makes the text values of a row's column tuple storable; the text columns are at ``positions``."""

    def __init__(self, positions: Sequence[int]) -> None:
        self.positions = tuple(positions)
        self._pick = itemgetter(*self.positions) if len(self.positions) > 1 else lambda row: (row[self.positions[0]],)

    def storable(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """``values`` with every text value made storable (the same tuple when all are, as nearly all rows are).

        The row's texts are checked as one string (a join and two scans in C),
        not with a call per column: under 1 µs for a row of the 13 text columns of scores.
        """
        try:
            joined = "".join(filter(None, self._pick(values)))
        except TypeError:  # not a str where text was expected: leave it to the driver to complain
            joined = "\x00"
        if "\x00" not in joined:
            if joined.isascii():
                return values
            try:
                joined.encode("utf-8")
                return values
            except UnicodeEncodeError:
                pass
        fixed = list(values)
        for position in self.positions:
            if isinstance(fixed[position], str):
                fixed[position] = storable(fixed[position])
        return tuple(fixed)


def value_text(value: Any) -> str | None:
    """A metadata value as a slice's text: None stays None, booleans are "true"/"false", others ``str``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
