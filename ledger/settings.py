"""Settings owned by the ledger: where it lives."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.urls import normalize_url


class LedgerSettings(BaseSettings):
    """The ledger's settings, read from ``JUDGEQ_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="JUDGEQ_", extra="ignore")

    ledger_url: str = Field(
        default="sqlite:///judgeq.db",
        description=(
            "Database holding runs, items and scores. SQLite for one machine "
            "(sqlite:///path/to/judgeq.db; a file, never in memory), PostgreSQL for a fleet "
            "(postgresql://user:password@host:5432/judgeq). Checked when the ledger is opened "
            "(ledger.engine.check_url)."
        ),
    )

    @field_validator("ledger_url")
    @classmethod
    def _psycopg_driver(cls, value: str) -> str:
        return normalize_url(value)
