"""The ``distilled`` judge type: a small model trained on an LLM judge's verdicts (:class:`judges.distilled.DistilledJudge`).

Resolving loads and checks the artifact (a bad one fails the submit) and pins its absolute path and
SHA-256 into the spec; the version hashes that SHA-256, not the path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..base import Judge
from ..code_version import DISTILLED_CODE_VERSION
from ..distilled_spec import DistilledJudgeSpec
from ..errors import ArtifactError, JudgeConfigError
from .entry import Building, Description, JudgeType, Resolving


def _inputs(spec: DistilledJudgeSpec) -> dict[str, Any]:
    if spec.sha256 is None:
        raise JudgeConfigError(f"the distilled spec of {spec.artifact!r} is not resolved; resolve it "
                               "through JudgeConfig")
    return {"sha256": spec.sha256}


def _resolve(name: str, spec: DistilledJudgeSpec, resolving: Resolving) -> DistilledJudgeSpec:
    """The spec with the artifact's absolute path and SHA-256; ArtifactError if the file is unusable."""
    from ..distilled import load_checked

    path = Path(spec.artifact).expanduser()
    if not path.is_absolute():
        path = resolving.base_dir / path
    try:
        artifact = load_checked(name, str(path), spec.sha256)
    except ArtifactError as exc:
        raise ArtifactError(f"judge {name!r}: {exc}") from None
    return spec.model_copy(update={"artifact": str(path), "sha256": artifact.sha256})


def _build(name: str, version: str, spec: DistilledJudgeSpec, building: Building) -> Judge:
    from ..distilled import DistilledJudge, load_checked

    return DistilledJudge(name, version, load_checked(name, spec.artifact, spec.sha256))


def _describe(spec: DistilledJudgeSpec) -> Description:
    """The artifact's holdout figures: what it was distilled from, how well it agrees, what it escalates."""
    from ..artifact import read_meta

    _, meta = read_meta(Path(spec.artifact), spec.sha256)
    keys = ("teacher_version", "accuracy", "kappa", "ece", "threshold", "escalation_share")
    metrics = {key: meta[key] for key in keys} | {"rows": meta["rows"]["total"]}
    return Description(
        f"distilled from {meta['teacher_version']}: accuracy {meta['accuracy']:.3f}, kappa {meta['kappa']:.3f}, "
        f"ECE {meta['ece']:.3f}, {meta['rows']['total']:,} rows; threshold {meta['threshold']:.3f} escalates "
        f"{meta['escalation_share']:.1%}", metrics)


DISTILLED: JudgeType[DistilledJudgeSpec] = JudgeType(
    name="distilled",
    spec=DistilledJudgeSpec,
    kind="local",
    code=lambda spec: {"distilled": DISTILLED_CODE_VERSION},
    inputs=_inputs,
    resolve=_resolve,
    build=_build,
    describe=_describe,
)
