"""Progress of long work: a bar on a terminal, plain lines in CI and logs.

The rate shown is judging's: rows written per second over the last
``RATE_WINDOW_S`` seconds of updates, so rows already there when waiting
began (a fleet judges while the submit is still enqueueing) are not counted
as if they had been written in an instant.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final, TextIO

RATE_WINDOW_S: Final = 30.0  # the rate is measured over this much of the most recent time
RATE_MIN_SPAN_S: Final = 1.0  # no rate until the updates span at least this long


class ProgressView:
    """Shows ``done`` of ``total``; a rich bar on a terminal, else a line every ``every_s`` seconds.

    A plain line is printed when the count or the ``extra`` text changed, at
    most every ``every_s`` seconds (and at once for the first and the last).
    """

    def __init__(self, label: str, total: int, stream: TextIO | None = None, every_s: float = 5.0,
                 enabled: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self.enabled = enabled
        self.clock = clock
        self._bar: Any = None
        self._task: Any = None
        self._last_line = 0.0
        self._last_shown: tuple[int, str] | None = None
        self._samples: deque[tuple[float, int]] = deque()

    def __enter__(self) -> "ProgressView":
        if self.enabled and self.stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TextColumn("{task.fields[extra]}"),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, extra="", rate="")
        return self

    def rate(self) -> float | None:
        """Rows per second over the recent window; None until the updates span ``RATE_MIN_SPAN_S``."""
        if len(self._samples) < 2:
            return None
        (first_t, first_done), (last_t, last_done) = self._samples[0], self._samples[-1]
        span = last_t - first_t
        return (last_done - first_done) / span if span >= RATE_MIN_SPAN_S else None

    def update(self, done: int, extra: str = "", *, now: bool = False) -> None:
        """Show ``done`` and ``extra``; ``now``: a plain line at once, whatever the interval (a change of state)."""
        if not self.enabled:
            return
        at = self.clock()
        self._samples.append((at, done))
        while len(self._samples) > 2 and at - self._samples[1][0] >= RATE_WINDOW_S:
            self._samples.popleft()
        rate = self.rate()
        if self._bar is not None:
            self._bar.update(self._task, completed=done, extra=extra, rate="" if rate is None else f"{rate:.0f}/s")
            return
        finished = done >= self.total
        shown = (done, extra)
        due = finished or now or at - self._last_line >= self.every_s or self._last_shown is None
        if shown != self._last_shown and due:
            pct = 100.0 * done / self.total if self.total else 100.0
            figures = f"{pct:.0f}%" if rate is None else f"{pct:.0f}%, {rate:.0f}/s"
            tail = f" {extra}" if extra else ""
            print(f"{self.label}: {done}/{self.total} ({figures}){tail}", file=self.stream, flush=True)
            self._last_line = at
            self._last_shown = shown

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
