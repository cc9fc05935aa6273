"""Errors raised by scheduler/, and the map of judgeq's whole exception tree.

Each package owns the base of its part; only the CLI turns them into exit codes::

    Exception
    ├── scheduler.errors.SchedulerError    base of everything raised by scheduler/
    │   ├── InputError                     a dataset or trace file is unusable      → exit 2
    │   │   └── DatasetChanged             the file changed after it was validated  → exit 2
    │   └── UsageError                     bad flags or a bad gate expression       → exit 2
    ├── judges.errors.JudgeError           base of everything raised by judges/
    │   ├── JudgeConfigError               judgeq.toml or a judge asked for          → exit 2
    │   └── JudgeCallError                 one judge call failed (recorded on the row)
    │       └── FatalJudgeCallError        a failure retrying cannot fix
    ├── ledger.errors.LedgerError          the ledger database is unusable           → exit 3
    └── workers.errors.BrokerError         the broker is unreachable or misbehaves   → exit 3

Exit 2 means nothing was enqueued; exit 3 means the run stays resumable
(DESIGN.md, "Exit codes").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


class SchedulerError(Exception):
    """Raised for anything that goes wrong in scheduler/."""


class InputError(SchedulerError):
    """Raised when a dataset or trace file cannot be read or fails validation.

    ``str()`` is one line, like a compiler's::

        golden.jsonl:17: field 'output': missing — every record needs an output (alias: response)
    """

    def __init__(
        self,
        path: Path | str,
        problem: str,
        *,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.problem = problem
        self.line = line  # 1-based; for CSV, the line the CSV record starts on
        self.field = field  # as written in the file (an alias stays an alias)
        self.hint = hint  # what to do about it
        where = str(self.path) if line is None else f"{self.path}:{line}"
        what = problem if field is None else f"field '{field}': {problem}"
        super().__init__(f"{where}: {what}" if hint is None else f"{where}: {what} — {hint}")

    def __reduce__(self) -> tuple[Callable[..., InputError], tuple[object, ...]]:
        # Keyword-only arguments do not survive the default exception pickling.
        return _rebuild_input_error, (self.path, self.problem, self.line, self.field, self.hint)


def _rebuild_input_error(
    path: Path, problem: str, line: int | None, field: str | None, hint: str | None
) -> InputError:
    return InputError(path, problem, line=line, field=field, hint=hint)


class DatasetChanged(InputError):
    """Raised when a dataset file being streamed is no longer the file that was validated."""


class UsageError(SchedulerError):
    """Raised when command-line flags or a gate expression cannot be used as given."""
