"""The retry policy of one remote judge call: tenacity, with full jitter and Retry-After.

Kept apart from the call itself (:meth:`judges.llm.LlmJudge.call_once`) so a
fleet-wide limiter can replace this policy later without touching the call.
Retried: every JudgeCallError except FatalJudgeCallError (rate limits,
timeouts, connection errors, 5xx, unparseable answers). The wait before the
next attempt is the provider's ``Retry-After`` when it sent one (capped, plus
a little jitter so that waiting callers do not return in lockstep), and
otherwise ``wait_random_exponential`` (full jitter).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential
from tenacity.wait import wait_base

from .errors import FatalJudgeCallError, JudgeCallError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently one record's call is retried."""

    #: Attempts in all, the first included.
    attempts: int = 3
    #: Full-jitter exponential backoff: a wait drawn from [0, min(max_wait_s, multiplier * 2**n)].
    multiplier: float = 0.5
    max_wait_s: float = 8.0
    #: The longest Retry-After honoured; a provider asking for more gets this.
    retry_after_cap_s: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts = {self.attempts}; it must be at least 1")

    def retrying(self, *, sleep: Callable[[float], None] = time.sleep) -> Retrying:
        """A fresh tenacity controller for one record (controllers keep per-run state)."""
        return Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_retry_after(self),
            retry=retry_if_exception(_retryable),
            sleep=sleep,
            before_sleep=_log_retry,
            reraise=True,
        )


class wait_retry_after(wait_base):  # noqa: N801 - tenacity's naming for waits
    """Wait what the provider's Retry-After asks (capped, with jitter), else full-jitter backoff."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.backoff = wait_random_exponential(multiplier=policy.multiplier, max=policy.max_wait_s)

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
        asked = exc.retry_after_s if isinstance(exc, JudgeCallError) else None
        if asked is not None and asked >= 0:
            return min(asked, self.policy.retry_after_cap_s) + random.uniform(0, self.policy.multiplier)
        return float(self.backoff(retry_state))


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, JudgeCallError) and not isinstance(exc, FatalJudgeCallError)


def _log_retry(retry_state: RetryCallState) -> None:
    exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
    wait = retry_state.next_action.sleep if retry_state.next_action is not None else 0.0
    text = exc.describe() if isinstance(exc, JudgeCallError) else repr(exc)  # already free of secrets
    log.info("attempt %d failed (%s); retrying in %.2fs", retry_state.attempt_number, text, wait)
