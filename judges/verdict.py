"""The verdict a judge returns for one record."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Verdict:
    """One judge's verdict on one record.

    A verdict either carries a ``score`` (and usually a ``label``) or an
    ``error``: the explicit "unscored" form. An unparseable or failed judgement
    is never a silent 0.
    """

    trace_id: str
    score: float | None
    label: str | None = None
    reason: str = ""
    cost_usd: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0  # the calls' own time: every attempt's request until its answer (or failure)
    wait_s: float = 0.0  # time spent waiting to call: rate limit slots, backoff sleeps, hand-backs in the queue
    attempts: int = 1
    error: str | None = None
    error_kind: str | None = None
    retry_in_s: float | None = None
    not_before: float | None = None  # a deferred verdict: epoch seconds of its next try
    started_at: float | None = None
    answer_errors: int = 0  # unusable answers among the attempts (carried across hand-backs)
    confidence: float | None = None  # a distilled judge's probability of its label
    stage: str | None = None  # a cascade's: "first" (the distilled judge decided) or "then" (escalated)
    audit_label: str | None = None  # a cascade's audited item: what the teacher said as well
    audit_score: float | None = None
    provider_model: str | None = None  # an LLM judge's: the model the provider says answered (not the alias asked)
    system_fingerprint: str | None = None  # and its backend configuration, where the provider sends one

    @classmethod
    def failed(cls, trace_id: str, error: str, **usage: Any) -> "Verdict":
        """The unscored form: the judge could not judge this record."""
        return cls(trace_id=trace_id, score=None, label=None, error=error, **usage)

    @classmethod
    def deferred(cls, trace_id: str, retry_in_s: float, **usage: Any) -> "Verdict":
        """Not judged yet: try again in ``retry_in_s`` seconds (see the class docstring)."""
        wait = max(0.0, retry_in_s)
        return cls(trace_id=trace_id, score=None, retry_in_s=wait, not_before=time.time() + wait, **usage)

    @property
    def ended(self) -> bool:
        """Whether this is a verdict or a recorded error, rather than a deferral."""
        return self.retry_in_s is None

    @property
    def ok(self) -> bool:
        return self.error is None and self.score is not None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
