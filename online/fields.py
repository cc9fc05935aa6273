"""Record field paths ("metadata.locale", "trace_id") read straight from raw trace dicts.

Sampling decides on every trace of a window, most of which are never judged,
so it reads the raw dict a source yields instead of validating a
:class:`judges.record.Record`. A path is checked once against the record's
fields and compiled into a getter; the aliases of the top-level fields
(``trace_id`` for ``id``, ``query`` for ``input``...) are read from the
model, so they are defined in one place. As in the model, the first alias
present in a record wins.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from pydantic import AliasChoices

from judges.record import Record, default_id, hash_content

from .errors import OnlineConfigError

#: What a getter returns for a field the record does not have.
MISSING: Final = object()

Getter = Callable[[Mapping[str, Any]], Any]


def _aliases() -> dict[str, tuple[str, ...]]:
    names: dict[str, tuple[str, ...]] = {}
    for field, info in Record.model_fields.items():
        alias = info.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [field]
        names[field] = tuple(c for c in choices if isinstance(c, str))
    return names


#: Each record field and the keys a raw record may hold it under, in the order the model tries them.
ALIASES: Final = _aliases()
_CANONICAL: Final = {key: field for field, keys in ALIASES.items() for key in keys}


def canonical_path(path: str, where: str) -> str:
    """``path`` with its top-level alias replaced by the field name; OnlineConfigError when no record has it."""
    if not isinstance(path, str) or not path or any(not part.strip() for part in path.split(".")):
        raise OnlineConfigError(f'{where}: {path!r} is not a field path; write one like "metadata.locale"')
    head, _, rest = path.partition(".")
    field = _CANONICAL.get(head)
    if field is None:
        raise OnlineConfigError(
            f"{where}: {head!r} is not a record field (fields: {', '.join(ALIASES)}); "
            f"for a metadata key write \"metadata.{path}\""
        )
    if rest and field != "metadata":
        raise OnlineConfigError(f"{where}: {path!r}: {head!r} holds text, not fields; only metadata has keys "
                                'inside it, e.g. "metadata.locale"')
    return f"{field}.{rest}" if rest else field


def top_getter(field: str) -> Getter:
    """A getter of the top-level ``field`` under any of its keys (MISSING when absent or null)."""
    keys = ALIASES[field]
    if len(keys) == 1:
        (only,) = keys

        def one(raw: Mapping[str, Any]) -> Any:
            value = raw.get(only)
            return MISSING if value is None else value

        return one
    first, *others = keys

    def aliased(raw: Mapping[str, Any]) -> Any:
        value = raw.get(first)
        if value is None:
            for key in others:
                value = raw.get(key)
                if value is not None:
                    return value
            return MISSING
        return value

    return aliased


def compile_path(path: str) -> Getter:
    """A getter for a canonical ``path`` (see :func:`canonical_path`): the value, or MISSING (absent or null)."""
    head, *inner = path.split(".")
    keys = ALIASES[head]
    if not inner:
        return top_getter(head)
    if len(inner) == 1 and len(keys) == 1:  # "metadata.locale", the usual case: one call per trace
        (top,), (key,) = keys, inner

        def nested(raw: Mapping[str, Any]) -> Any:
            holder = raw.get(top)
            if holder.__class__ is dict:
                value = holder.get(key)  # type: ignore[union-attr]
                return MISSING if value is None else value
            return MISSING

        return nested
    get = top_getter(head)

    def deep(raw: Mapping[str, Any]) -> Any:
        value = get(raw)
        for part in inner:
            if value.__class__ is not dict:
                return MISSING
            value = value.get(part)
            if value is None:
                return MISSING
        return value

    return deep


_ID: Final = top_getter("id")
_CONTENT: Final = tuple(top_getter(f) for f in ("input", "output", "context", "expected", "metadata"))
_DEFAULTS: Final[tuple[Any, ...]] = ("", "", None, None, {})


def trace_id(raw: Mapping[str, Any]) -> str:
    """The id :class:`judges.record.Record` would give ``raw``: its id (a number as text), else its content's hash."""
    value = _ID(raw)
    if value.__class__ is str and value:
        return value  # type: ignore[no-any-return]
    if value is MISSING or value == "":
        body = [default if (v := get(raw)) is MISSING else v for get, default in zip(_CONTENT, _DEFAULTS, strict=True)]
        return default_id(hash_content(*body))
    return str(value)
