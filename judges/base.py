"""The judge protocol: a batch of records in, one verdict per record out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

from .record import Record
from .verdict import Verdict

#: Which worker queue a judge runs on: CPU-bound local judges or I/O-bound remote ones.
Kind = Literal["local", "remote"]


@runtime_checkable
class Judge(Protocol):
    """What workers call. Implementations never raise for one bad record:
    a record that cannot be judged gets ``Verdict.failed``."""

    name: str
    version: str
    kind: Kind

    def judge(self, records: Sequence[Record]) -> list[Verdict]:
        """Judge every record; the result has one verdict per record, in order."""
        ...
