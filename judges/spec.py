"""What one ``[judges.NAME]`` table of judgeq.toml says: the spec models of LLM and local judges.

``type = "llm"`` tables become :class:`LlmJudgeSpec` (unknown keys rejected);
``type = "local"`` tables become :class:`LocalJudgeSpec`, whose extra keys are
the builtin's parameters (checked against the builtin's own signature). Every
spec model derives from :class:`Spec`. Which model a table's ``type`` names,
and what each type does, is the judge-type registry's (:mod:`judges.types`):
:func:`judges.types.parse_spec` turns a table into a spec. These two models
live here, below the registry, because the LLM judge, the key policy and the
workers' trust lists use ``LlmJudgeSpec`` itself.

After resolution (see :mod:`judges.config`) an LLM spec also carries
``prompt_text``, the template itself, so that the spec is self-contained. A
table may also give ``prompt_text`` inline; it then wins over ``prompt``,
which only names the template's origin.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import JudgeConfigError
from .catalog import get_builtin

#: Judge names: used in versions (``name@hash``), ledger rows and CLI flags.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: litellm arguments that judgeq sets itself, so ``params`` may not.
RESERVED_PARAMS: frozenset[str] = frozenset(
    {"model", "messages", "api_base", "base_url", "api_key", "timeout", "max_retries", "num_retries",
     "stream", "temperature", "mock_response"}
)

DEFAULT_LABELS: dict[str, float] = {"pass": 1.0, "fail": 0.0}


class Spec(BaseModel):
    """What every judge spec is: a pydantic model of one ``[judges.NAME]`` table, told apart by ``type``.

    Each judge type narrows ``type`` to its own literal (``Literal["llm"]``), which is the tag
    :mod:`judges.types` dispatches on.
    """

    type: str


class LlmJudgeSpec(Spec):
    """A remote judge: a litellm model asked to grade with a prompt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["llm"]
    model: Annotated[str, Field(min_length=1)]
    api_base: str | None = None
    api_key_env: str | None = None
    prompt: Annotated[str, Field(min_length=1)]
    prompt_text: str | None = None
    labels: dict[str, float] | None = None
    scale: tuple[float, float] | None = None
    rpm: Annotated[int, Field(gt=0)] | None = None
    tpm: Annotated[int, Field(gt=0)] | None = None
    #: What a provider states beside its per-minute limit: requests in any one second, requests at once.
    rps: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    burst: Annotated[int, Field(ge=1)] | None = None
    timeout_s: Annotated[float, Field(gt=0)] = 30.0
    price_per_mtok_in: Annotated[float, Field(ge=0)] | None = None
    price_per_mtok_out: Annotated[float, Field(ge=0)] | None = None
    temperature: float | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        # Never echo the value: if it is not a variable name it may be the key itself.
        if value is not None and not _ENV_NAME.fullmatch(value):
            raise ValueError(
                "api_key_env must be the NAME of an environment variable (like OPENAI_API_KEY), "
                "never the key itself; put the key in that variable"
            )
        return value

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, Any]) -> dict[str, Any]:
        reserved = sorted(set(value) & RESERVED_PARAMS)
        if reserved:
            raise ValueError(
                f"params may not set {', '.join(reserved)}: judgeq sets them "
                "(use the table's own keys, e.g. temperature, timeout_s, api_base, api_key_env)"
            )
        return value

    @model_validator(mode="after")
    def _grading(self) -> LlmJudgeSpec:
        if self.labels is not None and self.scale is not None:
            raise ValueError("set labels or scale, not both")
        if self.scale is None and self.labels is None:
            object.__setattr__(self, "labels", dict(DEFAULT_LABELS))
        if self.labels is not None:
            if not self.labels:
                raise ValueError("labels is empty; give at least two, e.g. labels = { pass = 1.0, fail = 0.0 }")
            folded = [name.casefold() for name in self.labels]
            if len(set(folded)) != len(folded):
                raise ValueError(f"labels {list(self.labels)} differ only by case; labels are matched case-insensitively")
        if self.scale is not None and not self.scale[0] < self.scale[1]:
            raise ValueError(f"scale = {list(self.scale)} must be [low, high] with low < high, e.g. [1, 5]")
        if self.burst is not None and self.rpm is None and self.rps is None:
            raise ValueError("burst caps the pacing of rpm or rps; set rpm (or rps) too, or remove burst")
        if self.burst is not None and self.rps is not None and self.burst > self.rps:
            raise ValueError(f"burst = {self.burst} is more than rps = {self.rps} allows in one second; "
                             "lower burst to at most rps")
        if (self.price_per_mtok_in is None) != (self.price_per_mtok_out is None):
            raise ValueError("set both price_per_mtok_in and price_per_mtok_out, or neither")
        return self


class LocalJudgeSpec(Spec):
    """A local judge: a registered builtin and its parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["local"]
    builtin: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _collect_params(cls, data: Any) -> Any:
        # In judgeq.toml a builtin's parameters are the table's extra keys.
        if not isinstance(data, dict):
            return data
        own = {"type", "builtin", "params"}
        extra = {key: value for key, value in data.items() if key not in own}
        if not extra:
            return data
        given = data.get("params") or {}
        if not isinstance(given, dict):
            return data
        both = sorted(set(extra) & set(given))
        if both:
            raise ValueError(f"{', '.join(both)} given both as a key and in params; keep one")
        return {**{key: data[key] for key in own if key in data}, "params": {**given, **extra}}

    @model_validator(mode="after")
    def _check_params(self) -> LocalJudgeSpec:
        try:
            clean = get_builtin(self.builtin).check(self.params)
        except JudgeConfigError as exc:
            raise ValueError(str(exc)) from None
        object.__setattr__(self, "params", clean)
        return self
