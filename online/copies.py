"""Which copy of a trace id is the trace: the first one a scan of the window meets.

A trace source can hold one id more than once (an exporter that retried, a
table without a unique key). The window's rule, the README's: the **first
copy in the source's order is the trace** (a file's line order; a table's
time column: of two copies with one time, the one the database returns
first); every later copy is skipped and counted as
``duplicate``, whatever became of the first (filtered, not sampled, too
large or judged), and counts in none of the window's seen, filtered or
sampled figures. So a later copy is never judged under the id, the counts
are of traces, and ``judgeq explain`` (which looks at the first copy) tells
what the job did.

The scan must remember every id it met, which a set of strings would do at
about 100 bytes an id (1M traces: 100 MB). :class:`FirstCopies` keeps each
id's 64-bit hash in one of 65,536 byte strings, 8 bytes an id plus a fixed
few MB, so a window's scan stays close to flat in memory. Two distinct ids
share a hash with probability 2**-64 a pair (one in 3.7 million for a
window of 10M traces); the later of such two would be counted as a
duplicate.
"""

from __future__ import annotations

from typing import Final

_BITS: Final = 16
_MASK: Final = (1 << _BITS) - 1


class FirstCopies:
    """The trace ids one scan has met: :meth:`again` is False for an id's first copy, True for each later one."""

    __slots__ = ("_buckets", "met")

    def __init__(self) -> None:
        self._buckets: list[bytearray | None] = [None] * (1 << _BITS)
        self.met = 0  # distinct ids met

    def again(self, ident: str) -> bool:
        """Whether ``ident`` was met before in this scan; met now, if not."""
        h = hash(ident)  # SipHash of the text: the same for every copy within one process
        key = h.to_bytes(8, "little", signed=True)
        i = h & _MASK
        bucket = self._buckets[i]
        if bucket is None:
            self._buckets[i] = bytearray(key)
            self.met += 1
            return False
        at = bucket.find(key)
        while at & 7 and at != -1:  # a match across two stored hashes is none
            at = bucket.find(key, at + 1)
        if at != -1:
            return True
        bucket += key
        self.met += 1
        return False
