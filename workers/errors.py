"""Errors raised by the worker side.

    BrokerError              base of everything raised by workers/
    ├── BrokerUnavailable    the broker cannot be reached to publish or inspect
    ├── BadMessage           a task message is malformed, or not a chunk of a submitted run: refused
    ├── BrokerUrlError       the broker URL cannot be used as written (an unescaped '@' or '/' in its password)
    ├── VerdictCountError    a judge returned more or fewer verdicts than it was given records (a judge's bug)
    └── WorkerArgumentError  a worker function was given values it cannot use (a caller's bug)

The whole tree and its exit codes: judgeq/errors.py.
"""

from judgeq.errors import BAD_INPUT, INFRASTRUCTURE, INTERNAL, JudgeqError


class BrokerError(JudgeqError):
    """Raised for anything that goes wrong talking to the task broker, or in workers/ otherwise."""

    exit_code = INFRASTRUCTURE


class BrokerUnavailable(BrokerError):
    """Raised when the broker cannot be reached (the run stays resumable)."""


class BrokerUrlError(BrokerError):
    """Raised when the broker URL cannot be used as written; the message shows it masked."""

    exit_code = BAD_INPUT


class BadMessage(BrokerError):
    """Raised when a task message fails validation or does not match its run; it names no record."""

    exit_code = INTERNAL  # refused and acknowledged by the worker: one reaching the CLI is a bug


class VerdictCountError(BrokerError, RuntimeError):
    """Raised when a judge returns a different number of verdicts than records: a judge's bug, recorded per item."""

    exit_code = INTERNAL


class WorkerArgumentError(BrokerError, ValueError):
    """Raised when a worker function is given values it cannot use: a bug in the caller, not bad data."""

    exit_code = INTERNAL
