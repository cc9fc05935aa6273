"""The retry policy of one remote judge call: tenacity, with full jitter and Retry-After.

Kept apart from the call itself (:meth:`judges.llm.LlmJudge.call_once`).
Retried: every JudgeCallError except FatalJudgeCallError. The wait before the
next attempt is the provider's ``Retry-After`` when it sent one (capped, plus
a little jitter so that waiting callers do not return in lockstep), and
otherwise full-jitter exponential backoff, growing with every failed attempt
up to ``backoff_cap_s``.

Two bounds, for two kinds of failure:

- a failed call (429, 5xx, timeout, refused connection: no answer) is not
  evidence about the record, only about the provider, so it is retried until
  ``max_total_s`` have passed since the record's first attempt, however many
  attempts that takes: an outage of minutes is ridden out, and a record whose
  budget runs out ends as a *transient* error that ``judgeq resume`` retries.
  A 429 in particular never ends a record while the provider keeps answering
  others: a provider asking for 50 ms (``retry-after-ms``) may be asked again
  a hundred times, and none of those attempts is counted against anything but
  the time budget (one budget for every failed call, ``JUDGEQ_RETRY_MAX_S``:
  a 429 and a 503 both say "not now", and a second setting would only let the
  two disagree);
- an answer that holds no usable verdict (:class:`JudgeAnswerError`) was a
  real, paid reply: at most ``attempts`` of them, then the record ends as an
  *answer* error.

Both bounds hold across hand-backs: a record whose next wait is longer than
``handback_s`` is handed back to the queue (the caller re-publishes it with a
countdown) together with its :class:`Prior`, what earlier deliveries spent on
it, and the next delivery continues where this one stopped (the backoff goes on
growing, the clock and the count of unusable answers go on running). A wait is
never longer than what is left of the time budget, so the last attempt is made
when the budget ends, not skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_random, wait_random_exponential
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from .errors import FatalJudgeCallError, JudgeAnswerError, JudgeArgumentError, JudgeCallError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently one record's call is retried."""

    #: Unusable answers (JudgeAnswerError) in all, across hand-backs; failed calls do not count.
    attempts: int = 6
    #: Full-jitter exponential backoff: a wait drawn from [0, min(cap, multiplier * 2**(n-1))], n the
    #: record's failed attempts so far (across hand-backs); the cap is ``max_wait_s`` after an unusable
    #: answer (the provider is up) and ``backoff_cap_s`` after a failed call (it may be down).
    multiplier: float = 0.5
    max_wait_s: float = 8.0
    max_outage_wait_s: float = 60.0
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

    @property
    def backoff_cap_s(self) -> float:
        """The longest backoff after a failed call: ``max_outage_wait_s``, at most a tenth of the time budget.

        So the budget sees about ten attempts or more however long an outage
        lasts, and the record's last retry falls late in the budget.
        """
        return min(self.max_outage_wait_s, self.max_total_s / 10)

    def retrying(
        self, *, sleep: Callable[[float], None] = time.sleep, prior: Prior | None = None, now: float | None = None
    ) -> Retrying:
        """A fresh tenacity controller for one record (controllers keep per-run state).

        ``prior``: what earlier deliveries spent; its unusable answers and its
        time count against the bounds, and the backoff continues from its
        attempt count. ``now``: epoch seconds (default: the clock).
        """
        prior = prior or Prior()
        started = prior.started_at if prior.started_at else (now if now is not None else time.time())
        budget = _Budget(self, ends_at=started + self.max_total_s, answers=prior.answer_errors)
        return Retrying(
            stop=budget,
            wait=wait_retry_after(self, offset=prior.attempts, budget=budget),
            retry=retry_if_exception(_retryable),
            sleep=sleep,
            before_sleep=_log_retry,
            reraise=True,
        )


class _Budget(stop_base):
    """Stop when the record's unusable answers reach ``attempts``, or its time budget is spent."""

    def __init__(self, policy: RetryPolicy, ends_at: float, answers: int) -> None:
        self.policy = policy
        self.ends_at = ends_at  # epoch seconds
        self.answers = answers

    def remaining_s(self) -> float:
        return self.ends_at - time.time()

    def __call__(self, retry_state: RetryCallState) -> bool:
        exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
        if isinstance(exc, JudgeAnswerError):
            self.answers += 1  # called once per failed attempt
            if self.answers >= self.policy.attempts:
                return True
        return self.remaining_s() <= 0


class wait_retry_after(wait_base):  # noqa: N801 - tenacity's naming for waits
    """Wait what the provider's Retry-After asks (capped, with jitter), else full-jitter backoff.

    With a ``budget``, no wait outlasts it: the last attempt is made as the budget ends.
    """

    def __init__(self, policy: RetryPolicy, offset: int = 0, budget: _Budget | None = None) -> None:
        self.policy = policy
        self.offset = offset  # attempts made by earlier deliveries: the backoff goes on growing
        self.budget = budget
        # Full jitter on multiplier * 2**(n - 1); earlier deliveries' attempts shift n.
        multiplier = policy.multiplier * 2.0 ** min(offset, 30)
        self.backoff = wait_random_exponential(multiplier=multiplier, max=policy.backoff_cap_s)
        self.answer_backoff = wait_random_exponential(multiplier=multiplier, max=min(policy.max_wait_s,
                                                                                    policy.backoff_cap_s))
        # Spreads callers told the same Retry-After, so they do not all come back in the same instant.
        self.spread = wait_random(0, policy.multiplier)

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
        asked = exc.retry_after_s if isinstance(exc, JudgeCallError) else None
        if asked is not None and asked >= 0:
            wait = min(asked, self.policy.retry_after_cap_s) + float(self.spread(retry_state))
        elif isinstance(exc, JudgeAnswerError):
            wait = float(self.answer_backoff(retry_state))
        else:
            wait = float(self.backoff(retry_state))
        if self.budget is not None:
            wait = min(wait, max(0.0, self.budget.remaining_s()))
        return wait


#: The longest last error a Prior carries (a longer one is cut when carried).
MAX_CARRIED_ERROR = 10_000
#: Bounds of a Prior's fields, checked where one arrives from outside (runs.message validates a
#: chunk's carry against this very class, so the two cannot drift apart): strict types, no negative
#: counts, finite times and amounts, a bounded error text.
_Count = Annotated[int, Strict(), Field(ge=0)]
_Amount = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
_Text = Annotated[str, Strict(), Field(max_length=MAX_CARRIED_ERROR)]


class Prior(BaseModel):
    """What earlier deliveries spent on one record that is not judged yet (carried in the message).

    Its fields are the carry's whole shape: a field added here is carried, and
    accepted by the workers' message check, with no other change. Validated on
    construction and in :meth:`from_json` (strict types, the bounds above); a
    longer error text is cut to ``MAX_CARRIED_ERROR`` rather than refused (a
    model's answer quoted at length).
    """

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    attempts: _Count = 0
    started_at: _Amount | None = None  # epoch seconds of the first attempt
    not_before: _Amount = 0.0  # epoch seconds: do not try again before
    cost_usd: _Amount = 0.0
    tokens_in: _Count = 0
    tokens_out: _Count = 0
    latency_s: _Amount = 0.0  # the calls' own time so far
    wait_s: _Amount = 0.0  # time waited so far (see Verdict.wait_s)
    waiting_since: _Amount | None = None  # epoch seconds the record was handed back: its time in the queue is waited
    last_error: _Text | None = None
    answer_errors: _Count = 0  # unusable answers so far (bounded by RetryPolicy.attempts)

    @field_validator("last_error", mode="before")
    @classmethod
    def _cut(cls, value: Any) -> Any:
        if isinstance(value, str) and len(value) > MAX_CARRIED_ERROR:
            return value[: MAX_CARRIED_ERROR - 1] + "…"
        return value

    def waited_s(self, now: float) -> float:
        """Time waited up to ``now`` (epoch seconds): the carried waits and, if handed back, the time since."""
        queued = max(0.0, now - self.waiting_since) if self.waiting_since is not None else 0.0
        return self.wait_s + queued

    def to_json(self) -> dict[str, Any]:
        """The fields that are not defaults (every default is 0 or null), for a chunk's carry."""
        return self.model_dump(exclude_defaults=True)

    @classmethod
    def from_json(cls, body: Any) -> Prior:
        """A carried Prior, validated; unknown keys (a newer worker's fields) are ignored."""
        return cls.model_validate(body)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, JudgeCallError) and not isinstance(exc, FatalJudgeCallError)


def _log_retry(retry_state: RetryCallState) -> None:
    exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
    wait = retry_state.next_action.sleep if retry_state.next_action is not None else 0.0
    text = exc.describe() if isinstance(exc, JudgeCallError) else repr(exc)  # already free of secrets
    log.info("attempt %d failed (%s); retrying in %.2fs", retry_state.attempt_number, text, wait)
