"""Errors raised by the worker side.

    BrokerError              base of everything raised by workers/
    ├── BrokerUnavailable    the broker cannot be reached to publish or inspect
    ├── BadMessage           a task message is malformed, or not a chunk of a submitted run: refused
    ├── BrokerUrlError       the broker URL cannot be used as written (an unescaped '@' or '/' in its password)
    ├── VerdictCountError    a judge returned more or fewer verdicts than it was given records (a judge's bug)
    └── WorkerArgumentError  a worker function was given values it cannot use (a caller's bug)
"""


class BrokerError(Exception):
    """Raised for anything that goes wrong talking to the task broker, or in workers/ otherwise."""


class BrokerUnavailable(BrokerError):
    """Raised when the broker cannot be reached (the run stays resumable)."""


class BrokerUrlError(BrokerError):
    """Raised when the broker URL cannot be used as written; the message shows it masked."""


class BadMessage(BrokerError):
    """Raised when a task message fails validation or does not match its run; it names no record."""


class VerdictCountError(BrokerError, RuntimeError):
    """Raised when a judge returns a different number of verdicts than records: a judge's bug, recorded per item."""


class WorkerArgumentError(BrokerError, ValueError):
    """Raised when a worker function is given values it cannot use: a bug in the caller, not bad data."""
