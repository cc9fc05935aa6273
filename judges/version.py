"""Judge versions: ``name@<12 hex>``, a hash of everything that can change a verdict.

The version is the judge's identity: the verdict cache (a verdict reused by
any later run of the fleet) and each worker's built judges are keyed by it, so
it must cover everything that decides *who* produces a verdict, not only what
they are asked. Hashed: the prompt text (not its file name), model, the
endpoint (``api_base``, parsed so that ``HOST:443/v1/`` and ``HOST/v1`` are one
endpoint) and the key variable (``api_key_env``: on a proxy the key picks the
deployment and account that answer), temperature and other litellm params,
labels or scale, the builtin's name and validated parameters (defaults filled
in), JUDGE_CODE_VERSION and the code version of the builtin or of the LLM judge
(:mod:`judges.code_version`). Not hashed, because they neither change a verdict
nor who gives it: rpm, tpm, rps, burst, timeout_s and prices. Moving a prompt
file keeps the version; editing one word of the prompt, or pointing the same
model at another server, changes it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .catalog import get_builtin
from .egress import Endpoint
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
        "endpoint": endpoint_identity(spec.api_base),
        "key": spec.api_key_env,
        "prompt_text": spec.prompt_text,
        "labels": spec.labels,
        "scale": list(spec.scale) if spec.scale is not None else None,
        "temperature": spec.temperature,
        "params": spec.params,
    }


def endpoint_identity(api_base: str | None) -> str | None:
    """``api_base`` as one canonical URL (None: the provider's own endpoint); the text as given if unparsable.

    An unparsable base never reaches a provider (the key policy refuses it), but it still names a judge
    apart from every other.
    """
    if api_base is None:
        return None
    try:
        return str(Endpoint.parse(api_base))
    except ValueError:
        return api_base


def judge_version(name: str, spec: AnySpec) -> str:
    """``name@<first 12 hex of the sha256 of the canonical JSON of verdict_inputs(spec)>``."""
    canonical = json.dumps(
        verdict_inputs(spec), sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )
    return f"{name}@{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"
