"""Judge versions: ``name@<12 hex>``, a hash of everything that can change a verdict.

Hashed: the prompt text (not its file name), model, temperature and other
litellm params, labels or scale, the builtin's name and validated parameters
(defaults filled in), JUDGE_CODE_VERSION and the code version of the builtin
or of the LLM judge. Not hashed, because they do not change a verdict: rpm,
tpm, rps, burst, timeout_s, api_base, api_key_env and prices. Moving a prompt file or
pointing the same model at another proxy keeps the version; editing one
word of the prompt changes it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from . import JUDGE_CODE_VERSION
from .errors import JudgeConfigError
from .llm import LLM_CODE_VERSION
from .registry import get_builtin
from .spec import LlmJudgeSpec, LocalJudgeSpec


def verdict_inputs(spec: LlmJudgeSpec | LocalJudgeSpec) -> dict[str, Any]:
    """The part of a spec that can change a verdict (what the version hashes)."""
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


def judge_version(name: str, spec: LlmJudgeSpec | LocalJudgeSpec) -> str:
    """``name@<first 12 hex of the sha256 of the canonical JSON of verdict_inputs(spec)>``."""
    canonical = json.dumps(
        verdict_inputs(spec), sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )
    return f"{name}@{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"
