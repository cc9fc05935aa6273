"""``judgeq promote``'s summary: the traces appended (a table), what was skipped, the file's new hash."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scheduler.promotion import Promotion


def show_promotion(done: Promotion) -> None:
    """The traces added (a table), the counts on stderr, and the file's new SHA-256 on stdout."""
    from rich.table import Table

    from .console import console as wide_console

    console = wide_console()
    if done.added:
        table = Table(title=f"promoted into {done.target.name} from run {done.run_id} · {done.judge}",
                      title_justify="left")
        for name, justify in (("trace", "left"), ("score", "right"), ("label", "left"), ("slice", "left")):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for c in done.added:
            score = "–" if c.row.score is None else f"{c.row.score:.3f}"
            table.add_row(c.trace_id, score, c.row.label or "", c.slice)
        console.print(table)
    skipped = done.already_in_file + done.same_in_batch
    print(f"{len(done.added)} added ({done.matched} of {done.considered} rows matched, {done.selected} selected, "
          f"{skipped} already there), {done.expected_filled} with expected; {done.target}: {done.records} records",
          file=sys.stderr)
    print(f"dataset sha256 {done.dataset_hash}" if done.dataset_hash else f"{done.target} has no records "
          "(nothing to promote; the file was not written)")
