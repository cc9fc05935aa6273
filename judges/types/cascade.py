"""The ``cascade`` judge type: a distilled judge first, its LLM teacher for what it is unsure of
(:class:`judges.cascade.CascadeJudge`).

Resolving resolves both stages through the config (``first`` must be a distilled judge, ``then``
the LLM judge it was trained on, at the version it was trained on), sets the threshold (default:
the one ``distill`` proposed) and inlines both stages' messages, so a worker needs nothing but the
message and the artifact file. The version hashes both stages' versions, the threshold and the
audit share. A cascade runs on the remote queue, since it may call its LLM stage.
"""

from __future__ import annotations

from typing import Any

from ..base import Judge
from ..code_version import DISTILLED_CODE_VERSION
from ..distilled_spec import CascadeJudgeSpec, DistilledJudgeSpec
from ..errors import ArtifactError, JudgeConfigError
from ..spec import LlmJudgeSpec
from .entry import Building, Description, JudgeType, Resolving, StageCalls
from .llm import LLM


def _inputs(spec: CascadeJudgeSpec) -> dict[str, Any]:
    if spec.stages is None or spec.threshold is None:
        raise JudgeConfigError("the cascade spec is not resolved; resolve it through JudgeConfig")
    return {"first": spec.stages["first"].get("version"), "then": spec.stages["then"].get("version"),
            "threshold": spec.threshold, "audit": spec.audit}


def _resolve(name: str, spec: CascadeJudgeSpec, resolving: Resolving) -> CascadeJudgeSpec:
    """The spec with both stages resolved and the threshold set; JudgeConfigError naming what does not fit."""
    from ..distilled import load_checked

    if name in (spec.first, spec.then):
        raise JudgeConfigError(f"cascade {name!r} names itself as a stage; name two other judges")
    first, then = resolving.resolve(spec.first), resolving.resolve(spec.then)
    where = f"cascade {name!r}"
    # A cascade is made of these two types: checking its stages' types is its own rule, not a dispatch.
    if not isinstance(first.spec, DistilledJudgeSpec):
        raise JudgeConfigError(f"{where}: first = {spec.first!r} must be a distilled judge (type = \"distilled\"), "
                               f"not {first.spec.type!r}")
    if not isinstance(then.spec, LlmJudgeSpec):
        raise JudgeConfigError(f"{where}: then = {spec.then!r} must be an LLM judge (type = \"llm\"), "
                               f"not {then.spec.type!r}")
    meta = load_checked(first.name, first.spec.artifact, first.spec.sha256).meta
    if meta.get("teacher") != then.name:
        raise ArtifactError(f"{where}: {first.name!r} was distilled from {meta.get('teacher')!r}, not {then.name!r}; "
                            f"set then = {meta.get('teacher')!r} or distill from {then.name!r}")
    if meta.get("teacher_version") != then.version:
        raise ArtifactError(f"{where}: {first.name!r} was trained on {meta.get('teacher_version')} but {then.name!r} "
                            f"is now {then.version} (its prompt or model changed); distill it again from the new "
                            "version's verdicts")
    threshold = spec.threshold if spec.threshold is not None else float(meta["threshold"])
    threshold = min(max(threshold, 1e-9), 1.0)
    return spec.model_copy(update={"threshold": threshold,
                                   "stages": {"first": first.to_message(), "then": then.to_message()}})


def _build(name: str, version: str, spec: CascadeJudgeSpec, building: Building) -> Judge:
    from ..cascade import CascadeJudge
    from ..distilled import DistilledJudge
    from ..llm import LlmJudge

    if spec.stages is None or spec.threshold is None:
        raise JudgeConfigError(f"judge {name!r} is not a resolved distilled judge or cascade")
    first = building.build_stage(spec.stages["first"])
    then = building.build_stage(spec.stages["then"])
    if not isinstance(first, DistilledJudge) or not isinstance(then, LlmJudge):
        raise JudgeConfigError(f"cascade {name!r} needs a distilled judge first and an LLM judge then")
    return CascadeJudge(name, version, first, then, spec.threshold, spec.audit)


def _describe(spec: CascadeJudgeSpec) -> Description:
    stages = spec.stages or {}
    first, then = stages["first"], stages["then"]
    return Description(
        f"{first['name']} then {then['name']} below confidence {spec.threshold:.3f}, audit {spec.audit:.0%}",
        {"threshold": spec.threshold, "audit": spec.audit, "first": first["version"], "then": then["version"]})


def _needs(spec: CascadeJudgeSpec) -> tuple[str, ...]:
    # Any item may be escalated to the LLM stage, so the cascade needs what that stage needs.
    if spec.stages is None:
        return ()
    return LLM.needs(LlmJudgeSpec.model_validate(spec.stages["then"]["spec"]))


def _calls(spec: CascadeJudgeSpec, stage_calls: StageCalls) -> list[LlmJudgeSpec]:
    return stage_calls(spec.stages["then"]) if spec.stages is not None else []


CASCADE: JudgeType[CascadeJudgeSpec] = JudgeType(
    name="cascade",
    spec=CascadeJudgeSpec,
    kind="remote",
    code=lambda spec: {"distilled": DISTILLED_CODE_VERSION},
    inputs=_inputs,
    resolve=_resolve,
    build=_build,
    describe=_describe,
    needs=_needs,
    calls=_calls,
)
