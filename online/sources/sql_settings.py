"""The settings of a ``type = "sql"`` source, and its database URL, which only the environment holds.

The URL comes from the variable ``url_env`` names, as API keys do, so a
password is never written in judgeq.toml; every message shows the URL with
its password masked (``ledger.urls.mask_url``).
"""

from __future__ import annotations

import os
import re
from typing import Literal

import sqlalchemy as sa
from pydantic import Field, field_validator, model_validator

from ledger.urls import ambiguous_password, mask_url, normalize_url, unescaped_message
from online.errors import OnlineConfigError
from online.sources.rows import FIELDS
from online.sources.settings import SourceSettings

__all__ = ["SqlSettings", "database_url"]

_SELECT = re.compile(r"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*(select|with)\b", re.IGNORECASE | re.DOTALL)


class SqlSettings(SourceSettings):
    """A ``[sources.NAME]`` table of ``type = "sql"``."""

    type: Literal["sql"] = "sql"
    url_env: str = Field(min_length=1)
    table: str | None = Field(default=None, min_length=1)
    query: str | None = Field(default=None, min_length=1)
    time_column: str = Field(min_length=1)
    columns: dict[str, str] | None = None
    batch_size: int = Field(default=5000, ge=1, le=1_000_000)

    @field_validator("columns")
    @classmethod
    def _paths(cls, columns: dict[str, str] | None) -> dict[str, str] | None:
        if columns is None:
            return None
        known = ", ".join(sorted({*FIELDS.values(), "metadata.KEY"}))
        paths = {}
        for path, column in columns.items():
            if path == "ts":
                raise ValueError("ts is the time column: set time_column instead of columns.ts")
            field = FIELDS.get(path) or (path if path.startswith("metadata.") and len(path) > 9 else None)
            if field is None:
                raise ValueError(f"{path!r} is not a record field; use one of {known}")
            paths[field] = column
        return paths  # output may come from a column named so (or an alias): checked against the columns there are

    @field_validator("query")
    @classmethod
    def _select(cls, query: str | None) -> str | None:
        if query is None:
            return None
        if not _SELECT.match(query):
            raise ValueError("query must be a SELECT (or WITH ... SELECT); it is read as a subquery")
        return query.strip().rstrip(";").rstrip()

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlSettings:
        if (self.table is None) == (self.query is None):
            raise ValueError("set exactly one of table (a table name) and query (a SELECT)")
        return self


def database_url(name: str, settings: SqlSettings) -> tuple[str, sa.URL]:
    """The database URL of source ``name`` from its environment variable, checked but not connected to.

    OnlineConfigError when the variable is unset, or holds no usable URL (the password masked).
    """
    var = settings.url_env
    url = os.environ.get(var, "").strip()
    if not url:
        raise OnlineConfigError(f"source {name!r} reads its database URL from {var}, which is not set; set {var} "
                                f"to a SQLAlchemy URL (e.g. postgresql://user@host/db), or change "
                                f"sources.{name}.url_env")
    if ambiguous_password(url):
        raise OnlineConfigError(unescaped_message(url, var))
    url = normalize_url(url)
    try:
        parsed = sa.make_url(url)
        parsed.get_dialect().import_dbapi()
    except sa.exc.ArgumentError:
        raise OnlineConfigError(f"source {name!r}: {var} holds {mask_url(url)!r}, which is not a SQLAlchemy URL; "
                                "write it like postgresql://user:password@host/db or sqlite:///traces.db") from None
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise OnlineConfigError(f"source {name!r}: {var} holds {mask_url(url)}, whose database driver is not "
                                f"installed ({exc}); install it into judgeq's environment") from None
    return url, parsed
