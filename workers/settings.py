"""Settings of the Celery side, read from the environment (prefix ``JUDGEQ_``), and what a worker is given.

:class:`WorkerSettings` is this package's section of a process's one
settings object; :class:`WorkerSections` is the shape of that object as a
worker process sees it (the sections its tasks read), which the object built
at the top (``scheduler.settings.CliSettings``) has.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from judges.record import DEFAULT_MAX_RECORD_BYTES

if TYPE_CHECKING:
    from judges.egress import EgressPolicy
    from judges.limits import LocalLimiter
    from online.settings import OnlineSettings
    from runs.sending import ChunkSettings


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
    ledger_retry_s: float = Field(
        default=15,
        gt=0,
        description=(
            "Seconds before a chunk whose rows the ledger could not take (unreachable, refused) is tried again. "
            "Keep it well under the visibility timeout."
        ),
    )
    ledger_retries: int = Field(
        default=20,
        ge=0,
        description=(
            "Tries again of such a chunk; after the last, it is kept as a dead letter that 'judgeq status RUN' "
            "shows, and 'judgeq resume RUN' re-enqueues its items."
        ),
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
    rate_dir: Path | None = Field(
        default=None,
        description=(
            "Folder where processes without a Redis broker (embedded submits) share their rate limit schedules, "
            "one small file per endpoint and model. Unset: $XDG_RUNTIME_DIR/judgeq, else judgeq-UID in the temp folder."
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

    key_endpoints: str | None = Field(
        default=None,
        description=(
            "Which API key variable a worker may send to which endpoints: a JSON object of variable name -> "
            "list of base URLs, replacing the built-in list for those variables ([] forbids one); "
            "each provider's key may go to its own endpoint without it."
        ),
    )
    cloud_models: str | None = Field(
        default=None,
        description=(
            "Keyless judges (no api_key_env, no api_base) a worker may run on its own cloud identity, which "
            "pays for them: a JSON list of litellm providers (\"bedrock\") or exact model strings "
            "(\"vertex_ai/gemini-1.5-pro\"); every other keyless model is refused, except providers that "
            "send only the key they are given. submit checks its own copy of this setting too."
        ),
    )
    max_record_bytes: int = Field(
        default=DEFAULT_MAX_RECORD_BYTES,
        ge=1024,
        description="Bytes one record may take in a dataset file (a JSONL line, a CSV row); a longer one is bad "
        "input. Workers refuse a chunk whose record could not have passed that check.",
    )

    @property
    def chunk_budget_s(self) -> float:
        """How long one delivery of a remote chunk may judge before handing the rest back."""
        return self.visibility_timeout / 3

    def machine_limiter(self) -> LocalLimiter:
        """The rate limiter of processes without Redis: one schedule per key for every process of this machine."""
        from judges.limits import machine_limiter

        return machine_limiter(self.rate_dir, self.rate_period_s, self.rate_headroom)

    def egress_policy(self) -> EgressPolicy:
        """The built-in key policy with ``key_endpoints`` applied; EgressConfigError if it is malformed."""
        from judges.egress import EgressPolicy
        from judges.errors import EgressConfigError

        policy = EgressPolicy.defaults()
        if (self.cloud_models or "").strip():
            cloud_example = 'JUDGEQ_CLOUD_MODELS=\'["bedrock", "vertex_ai/gemini-1.5-pro"]\''
            try:
                listed = json.loads(self.cloud_models or "")
            except ValueError as exc:
                raise EgressConfigError(f"JUDGEQ_CLOUD_MODELS is not JSON ({exc}); write it like {cloud_example}"
                                        ) from None
            if not isinstance(listed, list):
                raise EgressConfigError(f"JUDGEQ_CLOUD_MODELS must be a list of providers or models, like "
                                        f"{cloud_example}")
            try:
                policy = policy.with_cloud_models(listed)
            except EgressConfigError as exc:
                raise EgressConfigError(f"JUDGEQ_CLOUD_MODELS: {exc}") from None
        if not (self.key_endpoints or "").strip():
            return policy
        example = 'JUDGEQ_KEY_ENDPOINTS=\'{"VLLM_KEY": ["http://vllm.internal:8000/v1"]}\''
        try:
            entries = json.loads(self.key_endpoints or "")
        except ValueError as exc:
            raise EgressConfigError(f"JUDGEQ_KEY_ENDPOINTS is not JSON ({exc}); write it like {example}") from None
        if not isinstance(entries, dict) or not all(isinstance(v, list) for v in entries.values()):
            raise EgressConfigError(
                f"JUDGEQ_KEY_ENDPOINTS must map each variable to a list of base URLs, like {example}")
        try:
            return policy.with_entries(entries)
        except EgressConfigError as exc:
            raise EgressConfigError(f"JUDGEQ_KEY_ENDPOINTS: {exc}") from None


class WorkerSections(Protocol):
    """The sections of a process's settings that a worker's tasks read, each read when first needed.

    A property each, not one eager read: a malformed variable fails only what
    uses it (a worker starts with a bad ``JUDGEQ_LOST_CHECK_S``; its online ticks say why they fail).
    """

    @property
    def worker(self) -> WorkerSettings:
        """The Celery side's settings (this module's)."""

    @property
    def ledger_url(self) -> str:
        """The ledger's database URL (``ledger.settings``)."""

    @property
    def online(self) -> OnlineSettings:
        """The online regime's settings: the config file, the lost-chunk check (``online.settings``)."""

    @property
    def chunks(self) -> ChunkSettings:
        """How beat's online ticks cut records into chunks (``runs.sending``)."""
