"""Errors raised by the worker side (the Celery adapter), under the base of runs/ (``runs.errors``).

    runs.errors.BrokerError  base of everything raised by runs/ and workers/
    ├── BrokerUnavailable    (runs.errors) the broker cannot be reached to publish or inspect
    ├── BadMessage           (runs.errors) a task message is malformed, or not a chunk of a submitted run
    ├── BrokerUrlError       (runs.errors) the broker URL cannot be used as written
    ├── VerdictCountError    a judge returned more or fewer verdicts than it was given records (a judge's bug)
    └── WorkerArgumentError  a worker function was given values it cannot use (a caller's bug)

The whole tree and its exit codes: judgeq/errors.py.
"""

from judgeq.errors import INTERNAL
from runs.errors import BrokerError


class VerdictCountError(BrokerError, RuntimeError):
    """Raised when a judge returns a different number of verdicts than records: a judge's bug, recorded per item."""

    exit_code = INTERNAL


class WorkerArgumentError(BrokerError, ValueError):
    """Raised when a worker function is given values it cannot use: a bug in the caller, not bad data."""

    exit_code = INTERNAL
