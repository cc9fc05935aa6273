"""Judge versions: ``name@<12 hex>``, a hash of everything that can change a verdict.

Hashed: the prompt text (not its file name), model, temperature and other
litellm params, labels or scale, the builtin's name and validated parameters
(defaults filled in), JUDGE_CODE_VERSION and the code version of the builtin
or of the LLM judge (:mod:`judges.code_version`). Not hashed, because they do
not change a verdict: rpm, tpm, rps, burst, timeout_s, api_base, api_key_env
and prices. Moving a prompt file or pointing the same model at another proxy
keeps the version; editing one word of the prompt changes it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .catalog import get_builtin
from .code_version import DISTILLED_CODE_VERSION, JUDGE_CODE_VERSION, LLM_CODE_VERSION
from .errors import JudgeConfigError
from .distilled_spec import CascadeJudgeSpec, DistilledJudgeSpec
from .spec import AnySpec, LocalJudgeSpec


def verdict_inputs(spec: AnySpec) -> dict[str, Any]:
    """The part of a spec that can change a verdict (what the version hashes).

    A distilled judge: its artifact's SHA-256 (not its path). A cascade: both
    stages' versions, the threshold and the audit share.
    """
    if isinstance(spec, DistilledJudgeSpec | CascadeJudgeSpec):
        code = {"judges": JUDGE_CODE_VERSION, "distilled": DISTILLED_CODE_VERSION}
        if isinstance(spec, DistilledJudgeSpec):
            if spec.sha256 is None:
                raise JudgeConfigError(f"the distilled spec of {spec.artifact!r} is not resolved; resolve it "
                                       "through JudgeConfig")
            return {"code": code, "type": "distilled", "sha256": spec.sha256}
        if spec.stages is None or spec.threshold is None:
            raise JudgeConfigError("the cascade spec is not resolved; resolve it through JudgeConfig")
        return {"code": code, "type": "cascade", "first": spec.stages["first"].get("version"),
                "then": spec.stages["then"].get("version"), "threshold": spec.threshold, "audit": spec.audit}
    if isinstance(spec, LocalJudgeSpec):
        return {
            "code": {"judges": JUDGE_CODE_VERSION, "builtin": get_builtin(spec.builtin).code_version},
            "type": "local",
            "builtin": spec.builtin,
            "params": spec.params,
        }
    if spec.prompt_text is None:
        raise JudgeConfigError(f"the spec with prompt {spec.prompt!r} is not resolved; resolve it through JudgeConfig")
    return {
        "code": {"judges": JUDGE_CODE_VERSION, "llm": LLM_CODE_VERSION},
        "type": "llm",
        "model": spec.model,
        "prompt_text": spec.prompt_text,
        "labels": spec.labels,
        "scale": list(spec.scale) if spec.scale is not None else None,
        "temperature": spec.temperature,
        "params": spec.params,
    }


def judge_version(name: str, spec: AnySpec) -> str:
    """``name@<first 12 hex of the sha256 of the canonical JSON of verdict_inputs(spec)>``."""
    canonical = json.dumps(
        verdict_inputs(spec), sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )
    return f"{name}@{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"
