"""Errors raised by the online regime (the whole tree and its exit codes: judgeq/errors.py).

    OnlineError              base of everything raised by online/
    ├── OnlineConfigError    a [sources.*] / [online.*] table or flag is wrong
    ├── WindowError          a malformed, unknown-size, future or not-yet-closed window
    ├── SourceError          a source's data cannot be read as configured
    └── SourceUnavailable    the source cannot be reached (DB down, file vanished)

Messages name the file, table and key (or the window id) and say what to do.
"""

from __future__ import annotations

from judgeq.errors import BAD_INPUT, INFRASTRUCTURE, JudgeqError


class OnlineError(JudgeqError):
    """Raised for anything that goes wrong in online/."""

    exit_code = BAD_INPUT


class OnlineConfigError(OnlineError):
    """Raised when a [sources.*] or [online.*] table, or a flag, holds something judgeq cannot use."""


class WindowError(OnlineError):
    """Raised when a window id is malformed, of an unknown size, in the future or not closed yet."""


class SourceError(OnlineError):
    """Raised when a source's data cannot be read as configured (a bad column mapping, a missing table)."""


class SourceUnavailable(OnlineError):
    """Raised when a source cannot be reached (its database is down, its files vanished)."""

    exit_code = INFRASTRUCTURE
