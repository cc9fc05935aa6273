"""Errors raised by judge definitions.

    JudgeError                   base of everything raised by judges/
    ├── JudgeConfigError         judgeq.toml (or a judge asked for) is unusable
    │   ├── EgressConfigError    the key allow-list (JUDGEQ_KEY_ENDPOINTS) is malformed
    │   └── ArtifactError        a distilled judge's artifact is missing, altered, of an unknown
    │                            type or trained as another judge (judges.artifact): nothing is loaded
    ├── JudgeCallError           one call of a judge failed (recorded on the row)
    │   ├── JudgeAnswerError     the model answered, but not with a usable verdict (retryable)
    │   └── FatalJudgeCallError  a failure that retrying cannot fix (auth, bad request)
    │       ├── AccountJudgeCallError  the provider refuses the account (auth, permission, quota):
    │       │                          every call of this judge will fail alike (opens its circuit)
    │       └── EgressRefused    the worker's key policy forbids the judge's key, endpoint or
    │                            parameters (judges.egress): nothing is sent
    ├── LimiterError             the provider rate limiter cannot admit a call now
    │   ├── LimitWait            the next slot is further away than the caller will wait
    │   └── LimiterUnavailable   the limiter's store (the fleet's Redis) cannot be reached
    └── JudgeArgumentError       a judge function was given values it cannot use (a caller's bug)

A ``JudgeCallError`` may carry what the failed call cost (``cost_usd``,
``tokens_in``, ``tokens_out``), the HTTP ``status_code`` and a ``retry_after_s``
the provider asked for, and ``cause``: the name of the exception class that
was classified (e.g. ``RateLimitError``), used in the verdict's error text.

The whole tree and its exit codes: judgeq/errors.py.
"""

from __future__ import annotations

from judgeq.errors import BAD_INPUT, INFRASTRUCTURE, INTERNAL, JudgeqError


class JudgeError(JudgeqError):
    """Raised for anything that goes wrong in judges/."""

    exit_code = INTERNAL  # judge call errors are recorded on rows: one reaching the CLI is a bug


class JudgeConfigError(JudgeError):
    """Raised when the judge config, or a judge asked for by name, cannot be used."""

    exit_code = BAD_INPUT


class JudgeCallError(JudgeError):
    """Raised when a call to a judge fails; the worker records it as the row's error."""

    def __init__(
        self,
        message: str,
        *,
        cause: str | None = None,
        status_code: int | None = None,
        retry_after_s: float | None = None,
        cost_usd: float = 0.0,
        tokens_in: int = 0,
        tokens_out: int = 0,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.cause = cause or type(self).__name__
        self.status_code = status_code
        self.retry_after_s = retry_after_s
        self.cost_usd = cost_usd
        self.tokens_in = tokens_in
        self.tokens_out = tokens_out

    def describe(self) -> str:
        """The verdict's error text: ``<ExceptionClass>: <message>``."""
        return f"{self.cause}: {self.message}"


class JudgeAnswerError(JudgeCallError):
    """Raised when the judge model's answer cannot be parsed into a verdict."""


class FatalJudgeCallError(JudgeCallError):
    """Raised when a judge call failed in a way that retrying cannot fix."""


class AccountJudgeCallError(FatalJudgeCallError):
    """Raised when the provider refuses the account itself (auth, permission, quota): no call of this judge can succeed."""


class EgressRefused(FatalJudgeCallError):
    """Raised when the key policy forbids a judge's key, endpoint or parameters; nothing is sent."""

    def __init__(self, message: str) -> None:
        super().__init__(message, cause="EgressRefused")


class EgressConfigError(JudgeConfigError):
    """Raised when the key allow-list (``JUDGEQ_KEY_ENDPOINTS``) is malformed."""
class LimiterError(JudgeError):
    """Raised when the provider rate limiter cannot admit a call now; the caller waits or defers it."""


class LimitWait(LimiterError):
    """Raised when the next slot is further away than the caller wants to wait; nothing was reserved."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"the rate limit's next slot is {wait_s:.1f}s away")
        self.wait_s = wait_s


class LimiterUnavailable(LimiterError):
    """Raised when the limiter's store (the fleet's Redis) cannot be reached; the caller defers the call."""

    exit_code = INFRASTRUCTURE


class JudgeArgumentError(JudgeError, ValueError):
    """Raised when a judge function is given values it cannot use: a bug in the caller, not bad data.

    Also a ValueError, which is what such a call raised before it had a class of its own.
    """

    exit_code = INTERNAL


class ArtifactError(JudgeConfigError):
    """Raised when a distilled judge's artifact is missing, altered, of an unknown type or of another judge."""
