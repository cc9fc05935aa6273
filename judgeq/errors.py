"""judgeq's one error root, the exit codes of its commands, and which error ends a command with which.

A leaf: it imports nothing of judgeq (and nothing heavy), so every package,
``judges/`` and ``ledger/`` included, may build its errors on it. Each
package owns the base of its part; each class says its exit code once, as
the class attribute ``exit_code`` (a class that says nothing has its
nearest base's), and :func:`exit_code` reads it: the one place an error
becomes an exit code. Only the CLI exits with it (``scheduler/failures.py``,
``scheduler/interrupts.py``)::

    JudgeqError                             the root; a class that says no code is a bug      → 4
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
    │   ├── JudgeArgumentError              a caller's bug (also a ValueError)              → 4
    │   └── judges.llm._HandBack            a record's next wait is too long: deferred (private, never escapes)
    ├── online.errors.OnlineError           base of everything raised by online/            → 2
    │   ├── OnlineConfigError               a [sources.*] / [online.*] table or flag        → 2
    │   ├── WindowError                     a malformed, future or not yet closed window    → 2
    │   ├── SourceError                     a source's data cannot be read as configured    → 2
    │   │   └── online.sources.otlp._Malformed  one span is not OTLP JSON: counted, skipped (private)
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
    └── workers.errors.BrokerError          base of everything raised by workers/           → 3
        ├── BrokerUnavailable               the broker is unreachable                       → 3
        ├── BrokerUrlError                  a password with an unescaped '@' or '/'         → 2
        ├── BadMessage                      a task message refused as untrusted input (never reaches the CLI) → 4
        ├── VerdictCountError               a judge's bug (its chunk's items fail; also a RuntimeError) → 4
        └── WorkerArgumentError             a caller's bug (also a ValueError)              → 4
    pydantic.ValidationError of a *Settings class: a bad JUDGEQ_* variable              → 2
    KeyboardInterrupt (Ctrl-C, or SIGTERM through scheduler/interrupts.py)               → 3
    anything else: a bug or an unforeseen failure (traceback in a file, or --debug)     → 4

Exit 2 means nothing was written or enqueued; exit 3 means the run stays
resumable (docs/architecture.md, "Exit codes"); exit 1 is kept for a failed
gate and is never the code of an error. There is no 130: an interrupt is
infrastructure (3), the run stays resumable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, TypeGuard

if TYPE_CHECKING:
    from pydantic import ValidationError

OK = 0  #: the gate passed (or the command did its job)
GATE_FAILED = 1  #: a gate failed, or --fail-on-errors found judge errors; never the code of an error
BAD_INPUT = 2  #: bad input, usage or configuration; nothing was written or enqueued
INFRASTRUCTURE = 3  #: broker, ledger or provider failure, --timeout or an interrupt; the run stays resumable
INTERNAL = 4  #: an unexpected error (a bug in judgeq, or a failure nothing foresaw); the traceback is kept


class JudgeqError(Exception):
    """Raised for anything judgeq foresaw going wrong; the root of every package's error base."""

    #: The exit code of a command this error ends; a class that does not say has its nearest base's.
    exit_code: ClassVar[int] = INTERNAL


def exit_code(error: BaseException) -> int:
    """The exit code of a command that ``error`` ended: its class's, BAD_INPUT for a bad setting, else INTERNAL."""
    if isinstance(error, JudgeqError):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return INFRASTRUCTURE
    if bad_setting(error):
        return BAD_INPUT
    return INTERNAL


def bad_setting(error: BaseException) -> TypeGuard[ValidationError]:
    """Whether ``error`` is a ``*Settings`` class refusing a ``JUDGEQ_*`` variable (pydantic's ValidationError).

    pydantic is imported here, on an error's path, so that importing this module loads nothing.
    """
    from pydantic import ValidationError

    return isinstance(error, ValidationError) and error.title.endswith("Settings") and bool(error.errors())
