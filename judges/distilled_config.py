"""Resolving distilled judges and cascades: the artifact checked and pinned, the stages inlined.

Called by :meth:`judges.config.JudgeConfig.resolve`; kept apart so the config
module stays about tables and files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .distilled import load_checked
from .distilled_spec import CascadeJudgeSpec, DistilledJudgeSpec
from .errors import ArtifactError, JudgeConfigError
from .resolved import ResolvedJudge
from .spec import LlmJudgeSpec


def resolve_distilled(name: str, spec: DistilledJudgeSpec, base_dir: Path) -> DistilledJudgeSpec:
    """The spec with the artifact's absolute path and SHA-256; ArtifactError if the file is unusable."""
    path = Path(spec.artifact).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    try:
        artifact = load_checked(name, str(path), spec.sha256)
    except ArtifactError as exc:
        raise ArtifactError(f"judge {name!r}: {exc}") from None
    return spec.model_copy(update={"artifact": str(path), "sha256": artifact.sha256})


def resolve_cascade(name: str, spec: CascadeJudgeSpec, resolve: Callable[[str], ResolvedJudge]) -> CascadeJudgeSpec:
    """The spec with both stages resolved and the threshold set; JudgeConfigError naming what does not fit."""
    first, then = resolve(spec.first), resolve(spec.then)
    where = f"cascade {name!r}"
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


def llm_specs(resolved: ResolvedJudge) -> list[LlmJudgeSpec]:
    """The LLM judge specs a resolved judge calls: its own, a cascade's ``then``, none for local judges."""
    spec = resolved.spec
    if isinstance(spec, LlmJudgeSpec):
        return [spec]
    if isinstance(spec, CascadeJudgeSpec) and spec.stages is not None:
        return llm_specs(ResolvedJudge.from_message(spec.stages["then"]))
    return []
