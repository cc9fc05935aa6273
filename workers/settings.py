"""Settings of the Celery side, read from the environment (prefix ``JUDGEQ_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    """Where the broker is and how long a delivery may stay unacknowledged."""

    model_config = SettingsConfigDict(env_prefix="JUDGEQ_", extra="ignore")

    broker_url: str | None = Field(
        default=None,
        description="Celery broker URL (redis://…). Unset: embedded mode, judging in-process.",
    )
    visibility_timeout: int = Field(
        default=180,
        description=(
            "Seconds before Redis hands an unacknowledged chunk to another worker. "
            "Bounds how long a chunk of a dead worker waits; every chunk must finish well inside it."
        ),
    )
    restore_interval: int = Field(
        default=5, description="Seconds between sweeps that put overdue unacknowledged chunks back."
    )
    max_deliveries: int = Field(
        default=3,
        description="A chunk delivered this many times (its worker died each time) is recorded as failed.",
    )
    task_events: bool = Field(
        default=True, description="Send task events (Flower's task list and metrics need them)."
    )
    rate_period_s: float = Field(
        default=60,
        gt=0,
        description=(
            "Seconds a judge's rpm and tpm are counted over (60: per minute). "
            "Only tests and benchmarks change it, to match a fake provider's shorter window."
        ),
    )
    rate_headroom: float = Field(
        default=0.03,
        ge=0,
        lt=0.5,
        description=(
            "Share of a judge's rpm/tpm kept unused: calls are paced at (1 - h) of the limit, "
            "bursts of at most h/2 of it, so no period-long window sees more than (1 - h/2) of the limit."
        ),
    )
    handback_s: float = Field(
        default=10,
        gt=0,
        description=(
            "A remote call's wait (backoff, Retry-After, rate limit slot) longer than this is not slept: "
            "the item goes back to the queue with a countdown, freeing the worker slot."
        ),
    )
    retry_attempts: int = Field(
        default=6,
        ge=1,
        description=(
            "Unusable answers (no verdict in them) a remote judge accepts per item before recording it as an error. "
            "Failed calls (429, 5xx, timeouts, refused connections) do not count: JUDGEQ_RETRY_MAX_S bounds them."
        ),
    )
    retry_max_s: float = Field(
        default=600,
        gt=0,
        description=(
            "Seconds from an item's first attempt during which failed calls are retried (backoff up to a tenth of it, "
            "at most 60 s; long waits go back to the queue); then the item is a transient error that resume retries."
        ),
    )
    circuit_threshold: int = Field(
        default=3,
        ge=1,
        description=(
            "Auth, permission or quota errors of one judge in one run (fleet-wide) that open its circuit: "
            "its remaining items are recorded as errors without calls."
        ),
    )

    @property
    def chunk_budget_s(self) -> float:
        """How long one delivery of a remote chunk may judge before handing the rest back."""
        return self.visibility_timeout / 3
