"""Errors raised by scheduler/ (the whole tree of judgeq's errors and their exit codes: judgeq/errors.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from judgeq.errors import BAD_INPUT, INFRASTRUCTURE, INTERNAL, JudgeqError


class SchedulerError(JudgeqError):
    """Raised for anything that goes wrong in scheduler/."""

    exit_code = BAD_INPUT


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


class TrainingDataError(SchedulerError):
    """Raised when the teacher's rows cannot train a distilled judge (none, errors only, one class, too few)."""


class SchedulerArgumentError(SchedulerError, ValueError):
    """Raised when a scheduler function is given values it cannot use: a bug in the caller, not bad input.

    Also a ValueError, which is what such a call raised before it had a class of its own.
    """

    exit_code = INTERNAL


class ExportUnavailable(SchedulerError):
    """Raised when ``judgeq export-otel`` cannot deliver its spans: the endpoint is unreachable or refuses them."""

    exit_code = INFRASTRUCTURE
