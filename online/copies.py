"""Which copy of a trace id is the trace: the first one a scan of the window meets.

A trace source can hold one id more than once (an exporter that retried, a
table without a unique key). The window's rule, the README's: the **first
copy in the source's order is the trace** (a file's line order; a table's
time column: of two copies with one time, the one the database returns
first); every later copy is skipped and counted as ``duplicate``, whatever
became of the first (filtered, not sampled, too large or judged), and
counts in none of the window's seen or filtered figures. So a later copy is
never judged under the id, the counts are of traces, and ``judgeq explain``
(which looks at the first copy) tells what the job did.

Remembering every id as text would cost a window's scan about 100 bytes a
trace (1M traces: 100 MB; the scan is otherwise flat in memory), so the
work is split in two, each exact:

- **Judging.** Copies of an id share u (unit ``trace``: u is the id's
  hash), so only an id with ``u < reach`` can have a copy sampled, ``reach``
  being the highest rate any judge has for any stratum. Those ids' hashes
  are held in a set (about 70 bytes each, for the few percent of the window
  a low rate reaches) and a sampled trace whose id is in it is a later copy:
  not judged. (Unit ``session``: a copy may sit in another session, so
  every id is held.)
- **Counting.** Every trace's id hash and stratum go into two flat arrays
  (12 bytes a trace), from which the window's seen and filtered counts by
  stratum are made at the end of the scan, later copies left out (a sorted
  copy of the hashes, 8 bytes a trace, finds them).

An id's hash is Python's (SipHash, 64 bits, the same for every copy within
the process). Two distinct ids share one with probability 2**-64 a pair
(one in 3.7 million for a window of 10M traces); the later of two such
would be taken for a copy of the other.
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field

import numpy as np



@dataclass
class Counts:
    """A scan's traces (first copies) by stratum, seen and filtered; the later copies it skipped, in all."""

    seen: Counter[str] = field(default_factory=Counter)
    filtered: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0


class Copies:
    """One scan's trace ids and strata: the window's counts, and which traces are later copies.

    The scan loop appends to :attr:`hashes` and :attr:`codes` itself (one
    trace is two appends: the loop runs for every trace of the window) and
    asks :meth:`later` of a trace that may be judged.
    """

    __slots__ = ("reach", "hashes", "codes", "_near", "_strata", "unfiltered")

    def __init__(self, reach: float) -> None:
        self.reach = reach  # a trace whose u is at or above it is sampled by no judge in any stratum
        self.hashes = array("q")  # hash(trace id), one a trace, in scan order
        self.codes = array("I")  # the trace's stratum number << 1 | filtered, one a trace
        self.unfiltered: dict[str, int] = {}  # by stratum, the code of its traces the filters keep
        self._strata: list[str] = []
        self._near: set[int] = set()

    def code(self, stratum: str, filtered: bool) -> int:
        """The code of a trace of ``stratum`` (numbered the first time it is met)."""
        number = self.unfiltered.get(stratum)
        if number is None:
            number = self.unfiltered[stratum] = len(self._strata) << 1
            self._strata.append(stratum)
        return number | filtered

    def note(self, ident: str, stratum: str, filtered: bool) -> None:
        """One trace (the scan loop does this inline)."""
        self.hashes.append(hash(ident))
        self.codes.append(self.code(stratum, filtered))

    def later(self, key: int) -> bool:
        """Whether a copy of this id with u below ``reach`` came before; the caller checks u < reach."""
        if key in self._near:
            return True
        self._near.add(key)
        return False

    def counts(self) -> Counts:
        """Seen and filtered by stratum, first copies only, and how many later copies there were."""
        codes = np.frombuffer(self.codes, dtype=np.uint32) if self.codes else np.zeros(0, np.uint32)
        size = 2 * len(self._strata)
        every = np.bincount(codes, minlength=size)
        duplicates = 0
        if len(self.hashes) > 1:
            hashes = np.frombuffer(self.hashes, dtype=np.int64)
            ordered = np.sort(hashes)  # a copy, 8 bytes a trace (np.unique's return_index costs five times that)
            repeats = ordered[1:] == ordered[:-1]
            if repeats.any():
                # A stable order keeps an id's copies in scan order: each one after the first is a later copy.
                later = np.argsort(hashes, kind="stable")[1:][repeats]
                every = every - np.bincount(codes[later], minlength=size)
                duplicates = len(later)
        out = Counts(duplicates=duplicates)
        for number, stratum in enumerate(self._strata):
            kept, filtered = int(every[2 * number]), int(every[2 * number + 1])
            if kept + filtered:
                out.seen[stratum] = kept + filtered
            if filtered:
                out.filtered[stratum] = filtered
        return out
