"""A resolved judge: name, kind, version and a self-contained spec, safe to send to workers.

This is what travels in task messages: the prompt text is inlined, so a
worker on another machine needs no files, and the API key is referred to by
its variable's name only, never by value. :meth:`ResolvedJudge.from_message`
recomputes the version and refuses a message whose version does not match,
which catches a worker running different judge code than the submitter.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from .base import Kind
from .errors import JudgeConfigError
from .spec import LlmJudgeSpec, Spec
from .types import JudgeSpec, describe_errors, judge_type
from .version import judge_version


class ResolvedJudge(BaseModel):
    """A judge ready to build: see :func:`judges.build.build`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Kind
    version: str
    spec: JudgeSpec

    @model_validator(mode="after")
    def _consistent(self) -> ResolvedJudge:
        missing = judge_type(self.spec).incomplete(self.spec)
        if missing is not None:
            raise ValueError(f"judge {self.name!r} {missing}")
        expected_kind = spec_kind(self.spec)
        if self.kind != expected_kind:
            raise ValueError(f"judge {self.name!r} is {expected_kind}, not {self.kind}")
        return self

    @classmethod
    def of(cls, name: str, spec: Spec) -> ResolvedJudge:
        """A resolved judge for a spec that is complete (prompt text inlined)."""
        return cls(name=name, kind=spec_kind(spec), version=judge_version(name, spec), spec=spec)

    def to_message(self) -> dict[str, Any]:
        """The JSON-safe form for task messages (holds no secret, only api_key_env's name)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> ResolvedJudge:
        """Rebuild from :meth:`to_message`; JudgeConfigError if it is malformed or its version is stale."""
        try:
            resolved = cls.model_validate(message)
        except ValidationError as exc:
            raise JudgeConfigError(f"judge message is not a valid resolved judge: {describe_errors(exc)}") from None
        actual = judge_version(resolved.name, resolved.spec)
        if actual != resolved.version:
            raise JudgeConfigError(
                f"judge message says version {resolved.version} but this worker's judge code computes {actual} "
                "for the same spec; run workers and submitter on the same judgeq version, or resubmit"
            )
        return resolved



def spec_kind(spec: Spec) -> Kind:
    """The queue a judge of ``spec`` runs on: remote when it may call a provider (LLM judges, cascades)."""
    return judge_type(spec).kind


def llm_specs(resolved: ResolvedJudge) -> list[LlmJudgeSpec]:
    """The LLM judge specs a resolved judge calls: its own, a cascade's ``then``, none for local judges."""
    return judge_type(resolved.spec).calls(resolved.spec, lambda stage: llm_specs(ResolvedJudge.from_message(stage)))
