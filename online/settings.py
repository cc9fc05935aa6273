"""Settings the online regime reads (prefix ``JUDGEQ_``): the config file, the lost-chunk check, beat's budget tick.

This package's section of a process's one settings object
(``scheduler.settings.CliSettings``, which composes the sections of every
package); the online regime cuts chunks by ``runs.sending.ChunkSettings``, a
section of its own, passed beside this one.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OnlineSettings(BaseSettings):
    """Where judgeq.toml is (its [sources], [online] and [judges] tables), and how often beat's online work runs."""

    model_config = SettingsConfigDict(env_prefix="JUDGEQ_", extra="ignore")

    config: Path = Field(default=Path("judgeq.toml"), description="The judge config file (TOML).")
    lost_check_s: float = Field(
        default=30, gt=0,
        description="Seconds a fleet run may go without a new row before the broker is searched for chunks a killed "
        "worker lost (their items are sent again): by a waiting submitter, and by beat's online ticks.",
    )
    retention_days: int = Field(
        default=90, ge=1, le=36_500,
        description="Days the budget controller's decisions and the drift checks are kept; beat prunes older rows "
        "daily (`judgeq db prune` by hand). Budget changes, runs and scores are never pruned.",
    )
    budget_tick_s: float = Field(
        default=60.0, gt=0, le=3600,
        description="Seconds between the budget controller's ticks in `judgeq beat` (each plans the next windows).",
    )
