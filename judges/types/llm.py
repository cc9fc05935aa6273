"""The ``llm`` judge type: a litellm model asked to grade with a prompt (:class:`judges.llm.LlmJudge`).

Resolving reads the prompt (an inline ``prompt_text``, a built-in template, or a file relative to
the toml's folder, at most ``MAX_PROMPT_BYTES``: a prompt travels in every task message) into the
spec, and by default checks that the API key variable is set, so that ``judgeq submit`` fails
before enqueueing anything rather than every row failing later. The version hashes the prompt text
(not its file name), model, endpoint, key variable, temperature, params and labels or scale; not
rpm, tpm, rps, burst, timeout_s or prices, which change neither a verdict nor who gives it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

from ..base import Judge
from ..code_version import LLM_CODE_VERSION
from ..egress import Endpoint
from ..errors import JudgeConfigError
from ..files import read_small_file
from ..prompt import BUILTIN_TEMPLATES, PLACEHOLDERS, builtin_template, placeholders
from ..prompt import needed_fields as prompt_fields
from ..spec import LlmJudgeSpec
from .entry import Building, Description, JudgeType, Resolving, StageCalls

MAX_PROMPT_BYTES: Final = 256 * 1024


def _inputs(spec: LlmJudgeSpec) -> dict[str, Any]:
    if spec.prompt_text is None:
        raise JudgeConfigError(f"the spec with prompt {spec.prompt!r} is not resolved; resolve it through JudgeConfig")
    return {
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

    ``HOST:443/v1/`` and ``HOST/v1`` are one endpoint. An unparsable base never reaches a provider
    (the key policy refuses it), but it still names a judge apart from every other.
    """
    if api_base is None:
        return None
    try:
        return str(Endpoint.parse(api_base))
    except ValueError:
        return api_base


def _resolve(name: str, spec: LlmJudgeSpec, resolving: Resolving) -> LlmJudgeSpec:
    spec = spec.model_copy(update={"prompt_text": _prompt_text(name, spec, resolving)})
    if resolving.check_env and spec.api_key_env and not os.environ.get(spec.api_key_env):
        raise JudgeConfigError(
            f"judge {name!r} needs {spec.api_key_env}; set it or change api_key_env in {resolving.file}"
        )
    return spec


def _prompt_text(name: str, spec: LlmJudgeSpec, resolving: Resolving) -> str:
    """The template: inline ``prompt_text`` if given, else a built-in template, else the file."""
    if spec.prompt_text is not None:
        text, source = spec.prompt_text, "prompt_text"
    elif spec.prompt in BUILTIN_TEMPLATES:
        return builtin_template(spec.prompt)
    else:
        path = Path(spec.prompt).expanduser()
        if not path.is_absolute():
            path = resolving.base_dir / path
        text, source = _read_prompt(name, path, resolving.file), f"prompt file {str(path)!r}"
    if "output" not in placeholders(text):
        raise JudgeConfigError(
            f"judge {name!r}: {source} has no {{output}} placeholder, so the model would never see "
            f"what it judges; add it (placeholders: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})"
        )
    return text


def _read_prompt(name: str, path: Path, config_file: str) -> str:
    try:
        data = read_small_file(path, MAX_PROMPT_BYTES, "prompt file")
    except FileNotFoundError:
        raise JudgeConfigError(
            f"judge {name!r}: prompt file {str(path)!r} does not exist; create it, or set prompt in "
            f"{config_file} to an existing file or a built-in template ({', '.join(BUILTIN_TEMPLATES)})"
        ) from None
    except JudgeConfigError as exc:
        raise JudgeConfigError(f"judge {name!r}: {exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JudgeConfigError(
            f"judge {name!r}: prompt file {str(path)!r} is not UTF-8 text (byte {exc.start + 1}); save it as UTF-8"
        ) from None


def _build(name: str, version: str, spec: LlmJudgeSpec, building: Building) -> Judge:
    from ..llm import LlmJudge  # only when an LLM judge is built: resolving and listing judges stay light

    return LlmJudge(name, version, spec, retry=building.retry, max_workers=building.max_workers,
                    limiter=building.limiter, egress=building.egress)


def _calls(spec: LlmJudgeSpec, stage_calls: StageCalls) -> list[LlmJudgeSpec]:
    return [spec]


def _incomplete(spec: LlmJudgeSpec) -> str | None:
    return "has no prompt_text; resolve it through JudgeConfig.resolve" if spec.prompt_text is None else None


LLM: JudgeType[LlmJudgeSpec] = JudgeType(
    name="llm",
    spec=LlmJudgeSpec,
    kind="remote",
    code=lambda spec: {"llm": LLM_CODE_VERSION},
    inputs=_inputs,
    resolve=_resolve,
    build=_build,
    describe=lambda spec: Description(spec.model),
    # The optional fields the prompt template fills in ({context}, {expected}).
    needs=lambda spec: prompt_fields(spec.prompt_text or ""),
    calls=_calls,
    incomplete=_incomplete,
)
