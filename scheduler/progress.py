"""Progress of long work: a bar on a terminal, plain lines in CI and logs."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class ProgressView:
    """Shows ``done`` of ``total``; a rich bar on a terminal, else a line every ``every_s`` seconds."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None, every_s: float = 5.0,
                 enabled: bool = True) -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self.enabled = enabled
        self._bar: Any = None
        self._task: Any = None
        self._last_line = 0.0
        self._last_done = -1
        self._started = time.monotonic()

    def __enter__(self) -> "ProgressView":
        if self.enabled and self.stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[extra]}"),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, extra="")
        return self

    def update(self, done: int, extra: str = "") -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=done, extra=extra)
            return
        now = time.monotonic()
        finished = done >= self.total
        if done != self._last_done and (finished or now - self._last_line >= self.every_s or self._last_done < 0):
            pct = 100.0 * done / self.total if self.total else 100.0
            tail = f" {extra}" if extra else ""
            rate = done / max(now - self._started, 1e-9)
            print(f"{self.label}: {done}/{self.total} ({pct:.0f}%, {rate:.0f}/s){tail}", file=self.stream,
                  flush=True)
            self._last_line = now
            self._last_done = done

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
