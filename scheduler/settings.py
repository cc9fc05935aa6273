"""Settings of the front door, read from the environment (prefix ``JUDGEQ_``), and the one object composing all.

Each package defines its own section, the fields it uses: the Celery side
(``workers.settings.WorkerSettings``), chunking (``runs.sending.ChunkSettings``),
the online regime (``online.settings.OnlineSettings``), the ledger
(``ledger.settings.LedgerSettings``), and the front door's own here
(:class:`SchedulerSettings`). None extends another. :class:`CliSettings`
composes them: one object per process, built at its entry (the CLI's root
callback, from the global flags ``--config``, ``--broker-url``,
``--ledger-url``, which win over the environment; worker, beat and Flower are
CLI commands, so theirs too), and each library function is passed the
sections it needs.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.settings import LedgerSettings
from online.settings import OnlineSettings
from runs.sending import ChunkSettings
from workers.settings import WorkerSettings

if TYPE_CHECKING:
    from ledger.store import Ledger


class SchedulerSettings(BaseSettings):
    """The front door's own section: embedded judging and waiting (the config file is ``OnlineSettings``')."""

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


#: Every package's section that ``CliSettings`` composes: the ``JUDGEQ_*`` variables are their fields.
SECTIONS: tuple[type[BaseSettings], ...] = (LedgerSettings, WorkerSettings, ChunkSettings, OnlineSettings,
                                            SchedulerSettings)


class CliSettings:
    """A process's one settings object: every package's section, the global flags over the ``JUDGEQ_*`` environment.

    Each part is read on first use, so a command reads (and a malformed
    variable fails) only the settings it needs, as if each read its own class:
    ``judgeq runs`` with a bad ``JUDGEQ_VISIBILITY_TIMEOUT`` still lists runs.
    Sections that one use needs together are read together, so a bad variable
    fails before anything is sent: the front door's (``scheduler``, and the
    config file) with the online and chunk sections, the online one with the
    chunk sizes (beat's ticks cut chunks by them).
    """

    def __init__(self, *, config: Path | None = None, broker_url: str | None = None,
                 ledger_url: str | None = None) -> None:
        self._config = config
        self._broker_url = broker_url
        self._ledger_url = ledger_url
        self._opened: list[Ledger] = []

    @functools.cached_property
    def scheduler(self) -> SchedulerSettings:
        """The front door's section (embedded threads, waiting); the online and chunk sections are read with it."""
        self.online  # noqa: B018 - read first, as the front door needs them all: a bad one fails before any send
        return SchedulerSettings()

    @functools.cached_property
    def online(self) -> OnlineSettings:
        """The online regime's section (the config file, the lost-chunk check, beat's budget tick)."""
        self.chunks  # noqa: B018 - read first: what the online regime reads, it cuts into chunks
        return OnlineSettings() if self._config is None else OnlineSettings(config=self._config)

    @functools.cached_property
    def chunks(self) -> ChunkSettings:
        """How records are cut into chunks (``runs.sending``): chunk sizes and the record limit."""
        return ChunkSettings()

    @property
    def config(self) -> Path:
        """The judge config file (``--config``, ``JUDGEQ_CONFIG``), read with the front door's sections."""
        self.scheduler  # noqa: B018 - the front door's sections are read together (see the class)
        return self.online.config

    @functools.cached_property
    def ledger_url(self) -> str:
        """The ledger's database URL (``--ledger-url``, ``JUDGEQ_LEDGER_URL``)."""
        return (LedgerSettings() if self._ledger_url is None else LedgerSettings(ledger_url=self._ledger_url)).ledger_url

    @functools.cached_property
    def worker(self) -> WorkerSettings:
        """The Celery side's settings (``--broker-url``, ``JUDGEQ_BROKER_URL``, retries, limits, keys)."""
        return WorkerSettings() if self._broker_url is None else WorkerSettings(broker_url=self._broker_url)

    def ledger(self) -> Ledger:
        """The ledger, opened; :meth:`close` (the CLI's ``main``, as a command ends) closes it."""
        from ledger.store import Ledger

        opened = Ledger(self.ledger_url)
        self._opened.append(opened)
        return opened

    def close(self) -> None:
        """Close every ledger :meth:`ledger` opened: its pooled connections (SQLite folds its WAL into the file
        then), at the end of a command rather than whenever the process exits or the collector runs."""
        while self._opened:
            self._opened.pop().close()

    def environment(self) -> dict[str, str]:
        """The flags given, as the variables they stand for: for the Celery processes, which read their own."""
        given = {"JUDGEQ_CONFIG": self._config, "JUDGEQ_BROKER_URL": self._broker_url,
                 "JUDGEQ_LEDGER_URL": self._ledger_url}
        return {name: str(value) for name, value in given.items() if value is not None}
