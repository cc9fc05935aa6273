"""Errors raised by scheduler/, and the map of judgeq's whole exception tree.

Each package owns the base of its part (``judges/`` and ``ledger/`` import
nothing of ours, so there is no common base class to import: the root is this
map, and ``scheduler.exitcodes.EXIT_CODES``, which gives each class its exit
code; a class not listed takes its nearest listed base's). Only the CLI turns
them into exit codes::

    Exception
    ├── scheduler.errors.SchedulerError     base of everything raised by scheduler/         → 2
    │   ├── InputError                      a dataset or trace file is unusable             → 2
    │   │   └── DatasetChanged              the file changed after it was validated         → 2
    │   ├── UsageError                      bad flags or a bad gate expression              → 2
    │   ├── ExportUnavailable               an OTLP endpoint cannot be reached or refuses   → 3
    │   ├── TrainingDataError               a teacher's rows cannot train a distilled judge → 2
    │   └── SchedulerArgumentError          a caller's bug (also a ValueError)              → 4
    ├── judges.errors.JudgeError            base of everything raised by judges/            → 4
    │   ├── JudgeConfigError                judgeq.toml or a judge asked for                → 2
    │   │   ├── EgressConfigError           JUDGEQ_KEY_ENDPOINTS is malformed               → 2
    │   │   └── ArtifactError               a distilled judge's artifact: missing, altered, unknown types → 2
    │   ├── JudgeCallError                  one judge call failed (recorded on the row, never reaches the CLI)
    │   │   ├── JudgeAnswerError            the answer holds no usable verdict (retried)
    │   │   └── FatalJudgeCallError         a failure retrying cannot fix
    │   │       ├── AccountJudgeCallError   the provider refuses the account (opens the circuit)
    │   │       └── EgressRefused           the worker's key policy forbids the call (nothing sent)
    │   ├── LimiterError                    the provider rate limiter cannot admit a call now
    │   │   ├── LimitWait                   the next slot is too far away (handed back to the queue)
    │   │   └── LimiterUnavailable          the fleet's Redis is unreachable                → 3
    │   └── JudgeArgumentError              a caller's bug (also a ValueError)              → 4
    ├── online.errors.OnlineError           base of everything raised by online/            → 2
    │   ├── OnlineConfigError               a [sources.*] / [online.*] table or flag        → 2
    │   ├── WindowError                     a malformed, future or not yet closed window    → 2
    │   ├── SourceError                     a source's data cannot be read as configured    → 2
    │   └── SourceUnavailable               the source cannot be reached                    → 3
    ├── ledger.errors.LedgerError           base of everything raised by ledger/            → 3
    │   ├── LedgerUnavailable               the database cannot be reached or opened        → 3
    │   ├── RunNotFound                     no run has that id (see `judgeq runs`)          → 2
    │   ├── RunExists                       a run with that id exists                       → 3
    │   ├── MigrationError                  the schema is behind or ahead of this judgeq    → 3
    │   ├── LedgerConfigError               a URL judgeq cannot use (parse, scheme, memory, driver) → 2
    │   ├── LedgerUrlError                  a password with an unescaped '@' or '/'         → 2
    │   ├── LedgerRefused                   the database refuses; reconnecting will not help → 3
    │   │   ├── LedgerPermissionDenied      a role or file without the rights needed
    │   │   ├── LedgerReadOnly              a read-only file, folder or server
    │   │   ├── LedgerCorrupt               not a database, or damaged
    │   │   ├── LedgerFull                  the disk or a size limit is full
    │   │   └── LedgerDataError             a value a row holds cannot be stored (that row fails)
    │   └── LedgerArgumentError             a caller's bug (also a ValueError)              → 4
    ├── runs.errors.BrokerError             base of everything raised by runs/ and workers/ → 3
    │   ├── BrokerUnavailable               the broker is unreachable                       → 3
    │   ├── BrokerUrlError                  a password with an unescaped '@' or '/'         → 2
    │   ├── BadMessage                      a task message refused as untrusted input (never reaches the CLI)
    │   ├── VerdictCountError               a judge's bug (its chunk's items fail)          → 4
    │   └── WorkerArgumentError             a caller's bug (also a ValueError)              → 4
    ├── pydantic.ValidationError of a *Settings class: a bad JUDGEQ_* variable              → 2
    └── anything else: a bug or an unforeseen failure (traceback in a file, or --debug)     → 4

Exit 2 means nothing was written or enqueued; exit 3 means the run stays
resumable (docs/architecture.md, "Exit codes"); exit 1 is kept for a failed gate and is
never the code of an error.
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


class TrainingDataError(SchedulerError):
    """Raised when the teacher's rows cannot train a distilled judge (none, errors only, one class, too few)."""


class SchedulerArgumentError(SchedulerError, ValueError):
    """Raised when a scheduler function is given values it cannot use: a bug in the caller, not bad input.

    Also a ValueError, which is what such a call raised before it had a class of its own.
    """


class ExportUnavailable(SchedulerError):
    """Raised when ``judgeq export-otel`` cannot deliver its spans: the endpoint is unreachable or refuses them."""
