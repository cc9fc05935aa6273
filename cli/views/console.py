"""The rich console every CLI table and message prints on.

On a terminal rich fits tables to its width. Anywhere else (a pipe, a file, a
CI log) rich would assume 80 columns and wrap or cut the cells of a wide
table (a scorecard has up to 16 columns, ``judgeq runs`` long window ids),
while a log has no width at all: there the console is ``WIDE`` columns, so
each row of a table stays one line. Tables do not expand to the console's
width, so a narrow table stays narrow. ``COLUMNS`` (often exported as 80 by
shells and CI runners) does not narrow a log: it counts only on a terminal.
"""

from __future__ import annotations

from typing import IO, Any, Final

#: The width when output is not a terminal: wider than any table judgeq prints.
WIDE: Final = 400


def console(file: IO[str] | None = None) -> Any:
    """A ``rich.console.Console`` on ``file`` (stdout): the terminal's width, or ``WIDE`` when not a terminal."""
    from rich.console import Console

    out = Console(file=file)
    if out.is_terminal:
        return out
    return Console(file=file, width=WIDE)
