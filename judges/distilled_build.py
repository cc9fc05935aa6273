"""Building distilled judges and cascades from their resolved specs (called by :func:`judges.build.build`)."""

from __future__ import annotations

from collections.abc import Callable

from .base import Judge
from .distilled import DistilledJudge, load_checked
from .distilled_spec import CascadeJudgeSpec, DistilledJudgeSpec
from .errors import JudgeConfigError
from .resolved import ResolvedJudge


def build_distilled(resolved: ResolvedJudge, build_stage: Callable[[ResolvedJudge], Judge]) -> Judge:
    """The DistilledJudge or CascadeJudge of ``resolved``; ``build_stage`` builds a cascade's LLM stage."""
    from .cascade import CascadeJudge
    from .llm import LlmJudge

    spec = resolved.spec
    if isinstance(spec, DistilledJudgeSpec):
        return DistilledJudge(resolved.name, resolved.version, load_checked(resolved.name, spec.artifact, spec.sha256))
    if not isinstance(spec, CascadeJudgeSpec) or spec.stages is None or spec.threshold is None:
        raise JudgeConfigError(f"judge {resolved.name!r} is not a resolved distilled judge or cascade")
    first = build_distilled(ResolvedJudge.from_message(spec.stages["first"]), build_stage)
    then = build_stage(ResolvedJudge.from_message(spec.stages["then"]))
    if not isinstance(first, DistilledJudge) or not isinstance(then, LlmJudge):
        raise JudgeConfigError(f"cascade {resolved.name!r} needs a distilled judge first and an LLM judge then")
    return CascadeJudge(resolved.name, resolved.version, first, then, spec.threshold, spec.audit)
