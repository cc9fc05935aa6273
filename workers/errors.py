"""Errors raised by the worker side.

    BrokerError              base of everything raised by workers/
    ├── BrokerUnavailable    the broker cannot be reached to publish or inspect
    ├── MessageError         a chunk message cannot be read (another version, missing fields)
    ├── VerdictCountError    a judge returned more or fewer verdicts than it was given records (a judge's bug)
    └── WorkerArgumentError  a worker function was given values it cannot use (a caller's bug)
"""


class BrokerError(Exception):
    """Raised for anything that goes wrong talking to the task broker, or in workers/ otherwise."""


class BrokerUnavailable(BrokerError):
    """Raised when the broker cannot be reached (the run stays resumable)."""


class MessageError(BrokerError, ValueError):
    """Raised when a chunk message cannot be read: another message version, or fields missing."""


class VerdictCountError(BrokerError, RuntimeError):
    """Raised when a judge returns a different number of verdicts than records: a judge's bug, recorded per item."""


class WorkerArgumentError(BrokerError, ValueError):
    """Raised when a worker function is given values it cannot use: a bug in the caller, not bad data."""
