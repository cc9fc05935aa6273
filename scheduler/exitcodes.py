"""Exit codes of judgeq's commands (docs/architecture.md, "Exit codes"), and which error ends a command with which.

Only the CLI turns errors into these: ``scheduler.cli.main`` asks
:func:`for_error`. The tree of error classes is drawn in ``scheduler.errors``.
"""

from __future__ import annotations

import functools

OK = 0  #: the gate passed (or the command did its job)
GATE_FAILED = 1  #: a gate failed, or --fail-on-errors found judge errors; never the code of an error
BAD_INPUT = 2  #: bad input, usage or configuration; nothing was written or enqueued
INFRASTRUCTURE = 3  #: broker, ledger or provider failure, or --timeout; the run stays resumable
INTERNAL = 4  #: an unexpected error (a bug in judgeq, or a failure nothing foresaw); the traceback is kept


@functools.cache
def exit_codes() -> dict[type[BaseException], int]:
    """Error class -> exit code; a class not listed takes its nearest listed base's (its MRO).

    Imported on first use: the error modules are light, but ``judgeq --help`` needs none of them.
    """
    from online.errors import OnlineError, SourceUnavailable
    from judges.errors import JudgeArgumentError, JudgeConfigError, JudgeError, LimiterUnavailable
    from ledger.errors import LedgerArgumentError, LedgerConfigError, LedgerError, LedgerUrlError, RunNotFound
    from runs.errors import BadMessage, BrokerError, BrokerUrlError
    from workers.errors import VerdictCountError, WorkerArgumentError

    from .errors import ExportUnavailable, SchedulerArgumentError, SchedulerError

    return {
        SchedulerError: BAD_INPUT,
        SchedulerArgumentError: INTERNAL,
        ExportUnavailable: INFRASTRUCTURE,
        JudgeError: INTERNAL,  # judge call errors are recorded on rows; one reaching the CLI is a bug
        JudgeConfigError: BAD_INPUT,
        LimiterUnavailable: INFRASTRUCTURE,
        JudgeArgumentError: INTERNAL,
        LedgerError: INFRASTRUCTURE,
        RunNotFound: BAD_INPUT,
        LedgerConfigError: BAD_INPUT,
        LedgerUrlError: BAD_INPUT,
        LedgerArgumentError: INTERNAL,
        BrokerError: INFRASTRUCTURE,
        BrokerUrlError: BAD_INPUT,
        BadMessage: INTERNAL,
        VerdictCountError: INTERNAL,
        WorkerArgumentError: INTERNAL,
        OnlineError: BAD_INPUT,
        SourceUnavailable: INFRASTRUCTURE,
    }


def for_error(error: BaseException) -> int:
    """The exit code for ``error``, which ended a command: its class's, else INTERNAL."""
    codes = exit_codes()
    for cls in type(error).__mro__:
        if cls in codes:
            return codes[cls]
    return INTERNAL
