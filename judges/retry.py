"""The retry policy of one remote judge call: tenacity, with full jitter and Retry-After.

Kept apart from the call itself (:meth:`judges.llm.LlmJudge.call_once`).
Retried: every JudgeCallError except FatalJudgeCallError (rate limits,
timeouts, connection errors, 5xx, unparseable answers). The wait before the
next attempt is the provider's ``Retry-After`` when it sent one (capped, plus
a little jitter so that waiting callers do not return in lockstep), and
otherwise ``wait_random_exponential`` (full jitter).

Bounded twice: by ``attempts`` and by ``max_total_s`` since the record's first
attempt. Both bounds hold across hand-backs: a record whose next wait is longer
than ``handback_s`` is handed back to the queue (the caller re-publishes it
with a countdown) together with its :class:`Prior`, what earlier deliveries
spent on it, and the next delivery continues where this one stopped.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)
from tenacity.wait import wait_base

from .errors import FatalJudgeCallError, JudgeArgumentError, JudgeCallError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently one record's call is retried."""

    #: Attempts in all, the first included (across hand-backs).
    attempts: int = 6
    #: Full-jitter exponential backoff: a wait drawn from [0, min(max_wait_s, multiplier * 2**n)].
    multiplier: float = 0.5
    max_wait_s: float = 8.0
    #: The longest Retry-After honoured; a provider asking for more gets this.
    retry_after_cap_s: float = 120.0
    #: Seconds from a record's first attempt after which no new attempt starts.
    max_total_s: float = 600.0
    #: A wait longer than this (a backoff, a Retry-After, a rate limit slot) is not
    #: slept: the record is handed back to the queue. None: always sleep.
    handback_s: float | None = None

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise JudgeArgumentError(f"RetryPolicy.attempts = {self.attempts}; it must be at least 1")

    def retrying(
        self, *, sleep: Callable[[float], None] = time.sleep, prior: Prior | None = None, now: float | None = None
    ) -> Retrying:
        """A fresh tenacity controller for one record (controllers keep per-run state).

        ``prior``: what earlier deliveries spent; its attempts and elapsed time
        count against the bounds, and the backoff continues from its attempt count.
        """
        done = prior.attempts if prior else 0
        elapsed = (now if now is not None else time.time()) - prior.started_at if prior and prior.started_at else 0.0
        return Retrying(
            stop=stop_after_attempt(max(1, self.attempts - done)) | stop_before_delay(max(0.001, self.max_total_s - elapsed)),
            wait=wait_retry_after(self, offset=done),
            retry=retry_if_exception(_retryable),
            sleep=sleep,
            before_sleep=_log_retry,
            reraise=True,
        )


class wait_retry_after(wait_base):  # noqa: N801 - tenacity's naming for waits
    """Wait what the provider's Retry-After asks (capped, with jitter), else full-jitter backoff."""

    def __init__(self, policy: RetryPolicy, offset: int = 0) -> None:
        self.policy = policy
        self.offset = offset  # attempts made by earlier deliveries: the backoff goes on growing
        self.backoff = wait_random_exponential(multiplier=policy.multiplier, max=policy.max_wait_s)

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
        asked = exc.retry_after_s if isinstance(exc, JudgeCallError) else None
        if asked is not None and asked >= 0:
            return min(asked, self.policy.retry_after_cap_s) + random.uniform(0, self.policy.multiplier)
        if self.offset:
            exponent = retry_state.attempt_number + self.offset
            high = min(self.policy.max_wait_s, self.policy.multiplier * 2.0 ** min(exponent, 30))
            return random.uniform(0, high)
        return float(self.backoff(retry_state))


@dataclass(frozen=True)
class Prior:
    """What earlier deliveries spent on one record that is not judged yet (carried in the message)."""

    attempts: int = 0
    started_at: float | None = None  # epoch seconds of the first attempt
    not_before: float = 0.0  # epoch seconds: do not try again before
    cost_usd: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    last_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v not in (None, 0, 0.0)}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Prior:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in body.items() if k in fields})


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, JudgeCallError) and not isinstance(exc, FatalJudgeCallError)


def _log_retry(retry_state: RetryCallState) -> None:
    exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
    wait = retry_state.next_action.sleep if retry_state.next_action is not None else 0.0
    text = exc.describe() if isinstance(exc, JudgeCallError) else repr(exc)  # already free of secrets
    log.info("attempt %d failed (%s); retrying in %.2fs", retry_state.attempt_number, text, wait)
