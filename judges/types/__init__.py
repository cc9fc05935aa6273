"""The judge types, registered once each: every ``type = "..."`` a ``[judges.NAME]`` table may name.

Each module beside this one is one judge type's entry (:class:`judges.types.entry.JudgeType`):
how its tables are resolved, how its judge is built, what its version hashes, how ``judgeq
judges`` describes it, which queue it runs on, what records it needs and which LLM specs it calls.
Code that depends on a judge's type asks :func:`judge_type` instead of testing the spec's class.

A new judge type is one module here (its spec model, its judge class, its ``JudgeType``) and its
line in :data:`TYPES` below. Not to be confused with :mod:`judges.registry`, which registers the
local *builtins* (``exact_match``, ``regex``, ...) that the ``local`` type runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field, TypeAdapter, ValidationError

from ..errors import JudgeConfigError
from ..spec import NAME_PATTERN, LlmJudgeSpec, Spec
from .cascade import CASCADE
from .distilled import DISTILLED
from .entry import JudgeType
from .llm import LLM
from .local import LOCAL

__all__ = ["TYPES", "AnySpec", "JudgeSpec", "JudgeType", "describe_errors", "judge_type", "needed_fields", "own_calls",
           "parse_spec"]

#: Every judge type by its ``type`` name, in the order messages list them.
TYPES: dict[str, JudgeType[Any]] = {entry.name: entry for entry in (LLM, LOCAL, DISTILLED, CASCADE)}
_BY_SPEC: dict[type[Spec], JudgeType[Any]] = {entry.spec: entry for entry in TYPES.values()}

#: Any judge spec (which one: :func:`judge_type`).
AnySpec = Spec
if TYPE_CHECKING:
    JudgeSpec = Spec
else:  # a pydantic field of this type reads any registered spec, told apart by its ``type``
    JudgeSpec = Annotated[Union[tuple(_BY_SPEC)], Field(discriminator="type")]
_SPEC: TypeAdapter[Spec] = TypeAdapter(JudgeSpec)


def judge_type(spec: Spec) -> JudgeType[Any]:
    """The entry of ``spec``'s judge type."""
    return _BY_SPEC[type(spec)]


def parse_spec(name: str, table: Any) -> Spec:
    """The spec of the ``[judges.NAME]`` table; JudgeConfigError naming table and key otherwise."""
    where = f"[judges.{name}]"
    if not NAME_PATTERN.fullmatch(name):
        raise JudgeConfigError(
            f"{where}: judge name {name!r} may use only letters, digits, '_', '.' and '-' "
            "(and must start with a letter or digit); rename the table"
        )
    if not isinstance(table, dict):
        raise JudgeConfigError(f"{where} must be a table of keys, got {table!r}")
    kind = table.get("type")
    if kind not in TYPES:
        quoted = [f'"{type_name}"' for type_name in TYPES]
        raise JudgeConfigError(f"{where}: type = {kind!r} must be {', '.join(quoted[:-1])} or {quoted[-1]}; "
                               "set type in the table")
    try:
        return _SPEC.validate_python(table)
    except ValidationError as exc:
        raise JudgeConfigError(f"{where}: " + describe_errors(exc)) from None


def needed_fields(spec: Spec) -> tuple[str, ...]:
    """The record fields a judge of ``spec`` cannot judge without, which submit requires of every record.

    A builtin declares its own (``needs``); an LLM judge needs the optional fields its prompt
    template fills in (``{context}``, ``{expected}``: ``judges.prompt.needed_fields``); a resolved
    cascade, those of its LLM stage, since any item may be escalated to it.
    """
    return judge_type(spec).needs(spec)


def own_calls(spec: Spec) -> list[LlmJudgeSpec]:
    """The LLM specs a table calls itself, not through its stages (each stage is a table of its own).

    For a resolved judge and its stages, see :func:`judges.resolved.llm_specs`.
    """
    return judge_type(spec).calls(spec, lambda stage: [])


def describe_errors(exc: ValidationError) -> str:
    """A ValidationError as one line per problem: the key, what is wrong and the bad value."""
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"] if part not in TYPES]
        key = ".".join(loc)
        kind = error["type"]
        message = error["msg"].removeprefix("Value error, ")
        if kind == "extra_forbidden":
            problems.append(f"unknown key {key!r}; remove it or check its spelling")
        elif kind == "missing":
            problems.append(f"missing key {key!r}; add it")
        elif not key or key == "api_key_env":  # model-level check, or a possible secret: no value shown
            problems.append(message if not key else f"{key}: {message}")
        else:
            problems.append(f"{key} = {error.get('input')!r}: {message}")
    return "; ".join(problems)
