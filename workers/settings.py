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
