"""Settings of the front door, read from the environment (prefix ``JUDGEQ_``).

The broker URL lives with the Celery app (workers/settings.py) and the ledger
URL with the ledger (ledger/settings.py); the CLI's ``--broker-url``,
``--ledger-url`` and ``--config`` flags set the same variables.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from online.settings import OnlineSettings


class SchedulerSettings(OnlineSettings):
    """The CLI's settings; the config file and chunk sizes are ``OnlineSettings``' (shared with workers)."""

    model_config = SettingsConfigDict(env_prefix="JUDGEQ_", extra="ignore")
    embedded_threads: int = Field(
        default=4, ge=1, le=256, description="Chunks judged at once by remote judges in embedded mode."
    )
    poll_s: float = Field(default=0.5, gt=0, description="Seconds between ledger polls while waiting.")
    wait_outage_s: float = Field(
        default=300, gt=0,
        description="Seconds the ledger may stay unreachable while waiting before the wait gives up (exit 3); "
        "the workers retry a chunk for as long (15 s x 20).",
    )
    max_record_bytes: int = Field(
        default=1024 * 1024, ge=1024,
        description="Bytes one record may take in a dataset file (a JSONL line, a CSV row); longer is bad input.",
    )
