"""Errors of the run's corridor and of its broker: raised by runs/ and by the Celery adapter (workers/).

    BrokerError              base of everything raised by runs/ and workers/
    ├── BrokerUnavailable    the broker cannot be reached to publish or inspect
    ├── BadMessage           a task message is malformed, or not a chunk of a submitted run: refused
    └── BrokerUrlError       the broker URL cannot be used as written (an unescaped '@' or '/' in its password)

The base and these three live here, not in ``workers.errors``, because runs/
raises them (the chunk message's validation, the broker URL's check, a
dispatcher's publishing) and never imports workers/; ``workers.errors`` adds
the Celery side's own (``VerdictCountError``, ``WorkerArgumentError``) under
the same base. The whole tree and its exit codes: judgeq/errors.py.
"""

from judgeq.errors import BAD_INPUT, INFRASTRUCTURE, INTERNAL, JudgeqError


class BrokerError(JudgeqError):
    """Raised for anything that goes wrong talking to the task broker, or in runs/ and workers/ otherwise."""

    exit_code = INFRASTRUCTURE


class BrokerUnavailable(BrokerError):
    """Raised when the broker cannot be reached (the run stays resumable)."""


class BrokerUrlError(BrokerError):
    """Raised when the broker URL cannot be used as written; the message shows it masked."""

    exit_code = BAD_INPUT


class BadMessage(BrokerError):
    """Raised when a task message fails validation or does not match its run; it names no record."""

    exit_code = INTERNAL  # refused and acknowledged by the worker: one reaching the CLI is a bug
