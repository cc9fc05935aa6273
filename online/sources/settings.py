"""The settings of one ``[sources.NAME]`` table, validated with the name and key in every message.

Each source type declares its settings as a :class:`SourceSettings` model
(unknown keys refused, so a typo such as ``time_colum`` is caught rather than
ignored); :func:`parse_settings` turns pydantic's errors into one
:class:`OnlineConfigError` that names ``sources.NAME.KEY`` and says what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from online.errors import OnlineConfigError

__all__ = ["SourceSettings", "parse_settings"]


class SourceSettings(BaseModel):
    """The keys every ``[sources.NAME]`` table has; a type's model adds its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str


S = TypeVar("S", bound=SourceSettings)


def parse_settings(model: type[S], name: str, table: Mapping[str, Any]) -> S:
    """``table`` validated as ``model``; OnlineConfigError naming ``sources.NAME.KEY`` otherwise."""
    try:
        return model.model_validate(dict(table))
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"])
        where = f"sources.{name}.{key}" if key else f"sources.{name}"
        kind = table.get("type", "?")
        if error["type"] == "extra_forbidden":
            known = ", ".join(k for k in model.model_fields if k != "type")
            raise OnlineConfigError(f"{where} is not a setting of type = {kind!r} sources; remove it (known: {known})") from None
        if error["type"] == "missing":
            raise OnlineConfigError(f"{where} is required for type = {kind!r} sources; add it") from None
        if error["type"] == "value_error":  # a model's own check: its message says what to do
            raise OnlineConfigError(f"{where}: {error['ctx']['error']}") from None
        raise OnlineConfigError(f"{where}: {error['msg']} (got {error.get('input')!r}); fix it") from None
