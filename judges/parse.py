"""Reading a verdict out of a judge model's text, tolerantly but never by guessing.

Models wrap JSON in ```json fences, put prose around it, or capitalise keys.
This module finds the first JSON object in the text and reads ``label``,
``score`` and ``reason`` from it (keys case-insensitive). With ``labels`` the
label decides the score; with ``scale = (lo, hi)`` the numeric score is
checked against the scale and normalised to [0, 1], the raw value kept as the
verdict's label. Anything else raises JudgeAnswerError (retryable: models
answer differently on a second try), so an unparseable answer becomes a
failed verdict, never a silent 0.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from .errors import JudgeAnswerError, JudgeArgumentError

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_EXCERPT = 120


@dataclass(frozen=True)
class ParsedAnswer:
    """A verdict read from the model's answer."""

    score: float
    label: str
    reason: str


def find_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in ``text``: the whole text, a fenced block, or embedded in prose."""
    stripped = text.strip()
    candidates = [stripped, *(m.group(1).strip() for m in _FENCE.finditer(text))]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise JudgeAnswerError(f"the model's answer has no JSON object: {_excerpt(text)}; expected {{\"label\": ..., \"reason\": ...}}")


def parse_answer(
    text: str, *, labels: dict[str, float] | None = None, scale: tuple[float, float] | None = None
) -> ParsedAnswer:
    """The verdict in the model's answer ``text``; exactly one of ``labels`` and ``scale``."""
    if (labels is None) == (scale is None):
        raise JudgeArgumentError("parse_answer needs exactly one of labels and scale")
    obj = {str(key).strip().lower(): value for key, value in find_json_object(text).items()}
    reason = _text(obj.get("reason", obj.get("explanation", obj.get("reasoning", ""))))
    if labels is not None:
        return _by_label(obj, labels, reason, text)
    assert scale is not None
    return _by_scale(obj, scale, reason, text)


def _by_label(obj: dict[str, Any], labels: dict[str, float], reason: str, text: str) -> ParsedAnswer:
    raw = obj.get("label", obj.get("verdict"))
    if not isinstance(raw, str) or not raw.strip():
        raise JudgeAnswerError(
            f"the model's answer has no 'label' (one of {', '.join(labels)}): {_excerpt(text)}"
        )
    by_folded = {name.casefold(): name for name in labels}
    name = by_folded.get(raw.strip().casefold())
    if name is None:
        raise JudgeAnswerError(
            f"the model answered label {raw.strip()!r}, which is not one of {', '.join(labels)}; "
            "add it to labels in judgeq.toml if it is a valid answer"
        )
    return ParsedAnswer(score=float(labels[name]), label=name, reason=reason)


def _by_scale(obj: dict[str, Any], scale: tuple[float, float], reason: str, text: str) -> ParsedAnswer:
    lo, hi = scale
    raw = obj.get("score", obj.get("rating"))
    value = _number(raw)
    if value is None:
        raise JudgeAnswerError(f"the model's answer has no numeric 'score' on the scale [{lo:g}, {hi:g}]: {_excerpt(text)}")
    if not lo <= value <= hi:
        raise JudgeAnswerError(f"the model's score {value:g} is outside the scale [{lo:g}, {hi:g}]")
    return ParsedAnswer(score=(value - lo) / (hi - lo), label=f"{value:g}", reason=reason)


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        value = float(raw)
    elif isinstance(raw, str):
        match = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(?:/\s*\d+(?:\.\d+)?)?\s*", raw)  # "4" or "4/5"
        if match is None:
            return None
        value = float(match.group(1))
    else:
        return None
    return value if math.isfinite(value) else None


def _text(raw: Any) -> str:
    return raw.strip() if isinstance(raw, str) else ("" if raw is None else json.dumps(raw))


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= _EXCERPT else flat[:_EXCERPT] + "…")
