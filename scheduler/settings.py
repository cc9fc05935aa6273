"""Settings of the front door, read from the environment (prefix ``JUDGEQ_``).

The broker URL lives with the Celery app (workers/settings.py) and the ledger
URL with the ledger (ledger/settings.py). :class:`CliSettings` puts the three
together for one command: the CLI builds it once from its global flags
(``--config``, ``--broker-url``, ``--ledger-url``), which win over the
environment, and passes it to the library functions it calls.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from online.settings import OnlineSettings

if TYPE_CHECKING:
    from ledger.store import Ledger
    from workers.settings import WorkerSettings


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


class CliSettings:
    """Everything one command is configured with: the global flags over the ``JUDGEQ_*`` environment.

    Each part is read on first use, so a command reads (and a malformed
    variable fails) only the settings it needs, as if each read its own class:
    ``judgeq runs`` with a bad ``JUDGEQ_VISIBILITY_TIMEOUT`` still lists runs.
    """

    def __init__(self, *, config: Path | None = None, broker_url: str | None = None,
                 ledger_url: str | None = None) -> None:
        self._config = config
        self._broker_url = broker_url
        self._ledger_url = ledger_url

    @functools.cached_property
    def scheduler(self) -> SchedulerSettings:
        """The front door's settings (the config file, chunk sizes, waiting)."""
        return SchedulerSettings() if self._config is None else SchedulerSettings(config=self._config)

    @functools.cached_property
    def online(self) -> OnlineSettings:
        """The online regime's settings (the config file, chunk sizes, the lost-chunk check), as a worker reads them."""
        return OnlineSettings() if self._config is None else OnlineSettings(config=self._config)

    @property
    def config(self) -> Path:
        """The judge config file (``--config``, ``JUDGEQ_CONFIG``)."""
        return self.scheduler.config

    @functools.cached_property
    def ledger_url(self) -> str:
        """The ledger's database URL (``--ledger-url``, ``JUDGEQ_LEDGER_URL``)."""
        from ledger.settings import LedgerSettings

        return (LedgerSettings() if self._ledger_url is None else LedgerSettings(ledger_url=self._ledger_url)).ledger_url

    @functools.cached_property
    def worker(self) -> WorkerSettings:
        """The Celery side's settings (``--broker-url``, ``JUDGEQ_BROKER_URL``, retries, limits, keys)."""
        from workers.settings import WorkerSettings

        return WorkerSettings() if self._broker_url is None else WorkerSettings(broker_url=self._broker_url)

    def ledger(self) -> Ledger:
        """The ledger, opened."""
        from ledger.store import Ledger

        return Ledger(self.ledger_url)

    def environment(self) -> dict[str, str]:
        """The flags given, as the variables they stand for: for the Celery processes, which read their own."""
        given = {"JUDGEQ_CONFIG": self._config, "JUDGEQ_BROKER_URL": self._broker_url,
                 "JUDGEQ_LEDGER_URL": self._ledger_url}
        return {name: str(value) for name, value in given.items() if value is not None}
