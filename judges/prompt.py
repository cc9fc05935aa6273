"""Prompt templates for LLM judges: the built-in ones, and rendering a record into one.

A template is plain text with the placeholders ``{input}``, ``{output}``,
``{context}`` and ``{expected}``. Rendering replaces exactly those four names,
in one pass, so braces anywhere else (JSON examples in the template, code in
the record) are left alone and record text is never re-interpreted. A
template that uses ``{context}`` or ``{expected}`` cannot judge a record that
lacks it (absent or blank, :meth:`Record.has`): submit refuses such a dataset
(:func:`needed_fields`, through ``judges.types.needed_fields``), and a record
that still reaches the judge (an online trace) fails with a clear error, before
any call, instead of a made-up verdict.

The instruction telling the model how to answer (a JSON object with a label or
a score) is written here too, from the judge's ``labels`` or ``scale``, so
templates only describe the criterion.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import FatalJudgeCallError, JudgeConfigError
from .record import Record

#: Built-in template names; ``prompt = "faithfulness"`` in judgeq.toml picks one.
BUILTIN_TEMPLATES: tuple[str, ...] = ("faithfulness", "relevance", "correctness")

PLACEHOLDERS: tuple[str, ...] = ("input", "output", "context", "expected")

#: Placeholders of fields a record may lack; a template using one needs it in every record.
OPTIONAL_FIELDS: tuple[str, ...] = ("context", "expected")

_PROMPTS_DIR = Path(__file__).with_name("prompts")
_PLACEHOLDER = re.compile(r"\{(input|output|context|expected)\}")


def builtin_template(name: str) -> str:
    """The text of the built-in template ``name`` (one of :data:`BUILTIN_TEMPLATES`)."""
    if name not in BUILTIN_TEMPLATES:
        raise JudgeConfigError(f"no built-in prompt template {name!r}; built-ins: {', '.join(BUILTIN_TEMPLATES)}")
    return (_PROMPTS_DIR / f"{name}.md").read_text(encoding="utf-8")


def placeholders(template: str) -> set[str]:
    """The placeholders a template uses."""
    return set(_PLACEHOLDER.findall(template))


def needed_fields(template: str) -> tuple[str, ...]:
    """The record fields a template cannot be filled without: those of :data:`OPTIONAL_FIELDS` it uses."""
    used = placeholders(template)
    return tuple(name for name in OPTIONAL_FIELDS if name in used)


_ALIASES = {"context": "retrieved_chunks", "expected": "reference"}


def missing_field(template: str, record: Record, *, judge: str) -> FatalJudgeCallError | None:
    """The error for the first field the template needs and the record lacks; None when it has them all."""
    for name in needed_fields(template):
        if not record.has(name):
            return FatalJudgeCallError(
                f"record {record.id!r} has no {name!r}, which judge {judge!r} needs; "
                f"add {name} (or {_ALIASES[name]}) to the record or use a judge that does not need it"
            )
    return None


def render(template: str, record: Record, *, judge: str) -> str:
    """The template with the record's fields filled in.

    Raises FatalJudgeCallError when the template needs a field the record lacks.
    """
    lacking = missing_field(template, record, judge=judge)
    if lacking is not None:
        raise lacking
    values = {
        "input": record.input,
        "output": record.output,
        "context": record.context_text(),
        "expected": record.expected or "",
    }
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def answer_instructions(*, labels: dict[str, float] | None, scale: tuple[float, float] | None) -> str:
    """The system message: how the model must shape its answer."""
    if scale is not None:
        lo, hi = (_number(v) for v in scale)
        shape = f'{{"score": <a number from {lo} to {hi}>, "reason": "<one or two sentences>"}}'
        meaning = f"{hi} means the criterion is fully met and {lo} means it is not met at all."
    else:
        names = list(labels or {})
        shape = f'{{"label": <one of {json.dumps(names)}>, "reason": "<one or two sentences>"}}'
        meaning = "Labels and the scores they stand for: " + ", ".join(
            f"{name} = {_number(score)}" for name, score in (labels or {}).items()
        ) + " (higher is better)."
    return (
        "You are a careful, impartial evaluator. Judge only by the criterion you are given.\n"
        f"Answer with a single JSON object and nothing else, shaped like: {shape}\n{meaning}"
    )


def _number(value: float) -> str:
    return f"{value:g}"
