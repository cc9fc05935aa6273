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
(:mod:`judges.code_version`); what each type hashes is its entry's
(:mod:`judges.types`). Not hashed, because they neither change a verdict
nor who gives it: rpm, tpm, rps, burst, timeout_s and prices. Moving a prompt
file keeps the version; editing one word of the prompt, or pointing the same
model at another server, changes it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .code_version import JUDGE_CODE_VERSION
from .spec import Spec
from .types import judge_type


def verdict_inputs(spec: Spec) -> dict[str, Any]:
    """The part of a spec that can change a verdict (what the version hashes).

    Every judge: ``JUDGE_CODE_VERSION`` and the type's name; the rest is the judge type's
    (:class:`judges.types.entry.JudgeType`, ``code`` and ``inputs``). A distilled judge: its
    artifact's SHA-256 (not its path). A cascade: both stages' versions, the threshold and the
    audit share. JudgeConfigError for a spec that is not resolved.
    """
    entry = judge_type(spec)
    code = {"judges": JUDGE_CODE_VERSION, **entry.code(spec)}
    return {"code": code, "type": entry.name, **entry.inputs(spec)}


def judge_version(name: str, spec: Spec) -> str:
    """``name@<first 12 hex of the sha256 of the canonical JSON of verdict_inputs(spec)>``."""
    canonical = json.dumps(
        verdict_inputs(spec), sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )
    return f"{name}@{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"
