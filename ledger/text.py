"""Text the ledger stores: the same on every backend.

PostgreSQL's UTF-8 text refuses NUL (``\\x00``) and neither backend's driver
can encode a lone surrogate (``\\ud800``-``\\udfff``, which Python strings may
hold, from ``surrogateescape`` or a JSON ``"\\ud83d"``), while SQLite keeps NUL.
So before any text column is written, both become U+FFFD, the Unicode
replacement character, and both backends store the same text; one model
answer with a NUL in it cannot fail the write of its neighbours.

Records (``items.record``, JSON) keep their exact content instead, NUL
included, through one reversible escaping applied at the ledger's boundary
(:func:`stored_json` on the way in, :func:`loaded_json` on the way out).
PostgreSQL's ``json`` type stores ``"\\u0000"``, but every JSON operator on
such a document (``->``, ``->>``, ``#>>``) fails ("\\u0000 cannot be converted
to text"), so one trace's NUL would fail every query that reads a record's
fields in the database: slices (``report --by``, ``compare --by``, ``drift
--by``), the exporter's per-slice means, compare's excerpts. So in every key
and string of a record, U+2400 (SYMBOL FOR NULL, ``␀``) is doubled and NUL
becomes ``␀0``; both backends store that same text, the database groups and
extracts it like any other, and the ledger turns it back on read (a slice's
value ``"a\\x00b"`` stays itself, apart from ``"ab"`` and ``"a␀0b"``). Text
that holds neither character, nearly all of it, is passed through as it is.
The other JSON columns (``runs.judges``/``tags``/``meta``) are never read
field by field in SQL, so they are stored as given.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from operator import itemgetter
from typing import Any, Final

REPLACEMENT: Final = "\ufffd"
_UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")
#: The escape character of stored records: ``␀0`` is a NUL, ``␀␀`` a ``␀`` (see the module's docstring).
NUL_ESCAPE: Final = "\u2400"
_ESCAPED: Final = re.compile(NUL_ESCAPE + "([0" + NUL_ESCAPE + "])")


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


def escape_text(text: str) -> str:
    """``text`` as a stored record holds it: ``␀`` doubled, NUL as ``␀0`` (the same object when it has neither)."""
    if "\x00" not in text and NUL_ESCAPE not in text:
        return text
    return text.replace(NUL_ESCAPE, NUL_ESCAPE * 2).replace("\x00", NUL_ESCAPE + "0")


def unescape_text(text: str) -> str:
    """The inverse of :func:`escape_text` (a ``␀`` followed by anything else, as a cut excerpt may end, stays)."""
    if NUL_ESCAPE not in text:
        return text
    return _ESCAPED.sub(_unescaped, text)


def _unescaped(match: re.Match[str]) -> str:
    return "\x00" if match.group(1) == "0" else NUL_ESCAPE


def stored_json(value: Any) -> Any:
    """A JSON value (a record) with every key and string escaped by :func:`escape_text`.

    Returns ``value`` itself when nothing needed escaping (nearly always), so
    the write path copies nothing.
    """
    return _mapped(value, escape_text)


def loaded_json(value: Any) -> Any:
    """A stored JSON value as it was given to :func:`stored_json`."""
    return _mapped(value, unescape_text)


def _mapped(value: Any, text: Any) -> Any:
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        changed = None
        for key, item in value.items():
            new_key, new_item = text(key) if isinstance(key, str) else key, _mapped(item, text)
            if changed is None and (new_key is not key or new_item is not item):
                changed = {}
                for k, v in value.items():  # the entries before this one, unchanged
                    if k is key:
                        break
                    changed[k] = v
            if changed is not None:
                changed[new_key] = new_item
        return value if changed is None else changed
    if isinstance(value, list):
        items = [_mapped(item, text) for item in value]
        return value if all(a is b for a, b in zip(items, value)) else items
    return value
