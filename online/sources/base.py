"""The trace source interface, the registry of source types, and the sources judgeq.toml configures.

A source is anything with a ``name``, ``traces(start, end, skipped)`` and
``count(start, end)`` (:class:`TraceSource`): the window job needs nothing
else, so a new kind of store is one class and one registration.

Adding a source type
    Write the class and a factory ``(name, table, base_dir) -> source`` that
    reads its ``[sources.NAME]`` table (``online.sources.settings`` validates
    one with messages naming each key), then either register it in code::

        from online.sources import register_source
        register_source("kafka", KafkaSource.from_table)

    or, from a package of your own, as an entry point, so judgeq finds it
    without importing anything by hand::

        [project.entry-points."judgeq.sources"]
        kafka = "mypackage.kafka:KafkaSource.from_table"

    ``type = "kafka"`` in a ``[sources.NAME]`` table then opens it.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from judges.config import DEFAULT_CONFIG_PATH, read_config
from judges.record import DEFAULT_MAX_RECORD_BYTES
from judges.errors import JudgeConfigError
from online.errors import OnlineConfigError

__all__ = ["ENTRY_POINT_GROUP", "SOURCE_TYPES", "PassedOver", "PicksByName", "SourceFactory", "TraceSource",
           "configured_source", "load_sources", "open_source", "register_source"]

#: The entry point group packages declare source types in.
ENTRY_POINT_GROUP = "judgeq.sources"


@runtime_checkable
class TraceSource(Protocol):
    """Where the traces of a window are read from.

    ``traces`` yields the raw records whose ``ts`` is in ``[start, end)``
    (tz-aware datetimes), in the source's order (ts order where the source
    can; files in name order, then line order), as dicts in the record format
    of docs/architecture.md, "Records" (aliases allowed) with ``ts`` as ISO 8601 text. What cannot
    be a trace is counted in ``skipped``, never raised: ``no_ts``, ``bad_ts``,
    ``malformed``, and ``outside`` where a record outside the window had to
    be read to know it. It streams: memory stays flat in the window's size.
    ``count`` is the number of traces ``traces`` would yield.
    """

    name: str

    def traces(self, start: datetime, end: datetime, skipped: Counter[str]) -> Iterator[dict[str, Any]]: ...

    def count(self, start: datetime, end: datetime) -> int: ...


@dataclass(frozen=True)
class PassedOver:
    """What a source read in a window and picked none of: why a window that read something judged nothing.

    ``read`` counts what was passed over in the window, ``names`` the most
    common of its names with their counts, ``distinct`` how many names there
    were, and ``hint`` says which setting picks and how to fix it.
    """

    read: int
    names: tuple[tuple[str, int], ...]
    distinct: int
    hint: str

    def to_json(self) -> dict[str, object]:
        return {"read": self.read, "names": [{"name": n, "count": c} for n, c in self.names],
                "distinct": self.distinct, "hint": self.hint}

    def text(self) -> str:
        names = ", ".join(f"{count:,} {name!r}" for name, count in self.names)
        more = f" and {self.distinct - len(self.names)} more names" if self.distinct > len(self.names) else ""
        return f"read {self.read:,} spans and matched none: {names}{more}; {self.hint}"


@runtime_checkable
class PicksByName(Protocol):
    """A source that picks what it reads by name (otlp's ``span_names``), so that a window can find nothing.

    ``passed_over`` reads the window again and says what it passed over,
    when it picked nothing but read something (None otherwise). The window
    job asks only when a window yielded no trace, so the second read costs
    only windows that judged nothing.
    """

    def passed_over(self, start: datetime, end: datetime) -> PassedOver | None: ...


#: Builds a source from its name, its ``[sources.NAME]`` table and the folder relative paths start from.
SourceFactory = Callable[[str, Mapping[str, Any], Path], TraceSource]


def _jsonl(name: str, table: Mapping[str, Any], base_dir: Path, *,
           max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> TraceSource:
    from online.sources.jsonl import JsonlSource

    return JsonlSource.from_table(name, table, base_dir, max_record_bytes=max_record_bytes)


def _sql(name: str, table: Mapping[str, Any], base_dir: Path) -> TraceSource:
    from online.sources.sql import SqlSource

    return SqlSource.from_table(name, table, base_dir)


def _otlp(name: str, table: Mapping[str, Any], base_dir: Path, *,
          max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> TraceSource:
    from online.sources.otlp import OtlpSource

    return OtlpSource.from_table(name, table, base_dir, max_record_bytes=max_record_bytes)


def _phoenix(name: str, table: Mapping[str, Any], base_dir: Path) -> TraceSource:
    from online.sources.phoenix import PhoenixSource

    return PhoenixSource.from_table(name, table, base_dir)


#: Source types by the ``type`` of their table. The built-in ones import their module when first opened.
SOURCE_TYPES: dict[str, SourceFactory] = {"jsonl": _jsonl, "sql": _sql, "otlp": _otlp, "phoenix": _phoenix}


def register_source(type_name: str, factory: SourceFactory) -> None:
    """Make ``type = "type_name"`` in a ``[sources.NAME]`` table open sources with ``factory``."""
    SOURCE_TYPES[type_name] = factory


def _factory(type_name: str) -> SourceFactory | None:
    found = SOURCE_TYPES.get(type_name)
    if found is not None:
        return found
    for entry in entry_points(group=ENTRY_POINT_GROUP, name=type_name):
        factory: SourceFactory = entry.load()
        SOURCE_TYPES[type_name] = factory
        return factory
    return None


def open_source(name: str, table: Mapping[str, Any], base_dir: Path, *,
                config_path: Path | None = None, max_record_bytes: int | None = None) -> TraceSource:
    """The source the ``[sources.NAME]`` table ``table`` describes; relative paths start at ``base_dir``.

    Only the settings are checked here (a missing environment variable
    included); the data is reached when it is read. ``config_path`` is named
    in the messages of the OnlineConfigError a bad table raises.
    ``max_record_bytes`` (``JUDGEQ_MAX_RECORD_BYTES``) is handed to a factory
    that takes a keyword of that name, so that it bounds what it reads (a file
    source, its lines); every source's traces are bounded by the window job.
    """
    prefix = f"{config_path}: " if config_path is not None else ""
    type_name = table.get("type")
    known = ", ".join(sorted({*SOURCE_TYPES, *(e.name for e in entry_points(group=ENTRY_POINT_GROUP))}))
    if not isinstance(type_name, str):
        what = "is missing" if type_name is None else f"must be text, not {type_name!r}"
        raise OnlineConfigError(f"{prefix}sources.{name}.type {what}; set it to one of: {known}")
    factory = _factory(type_name)
    if factory is None:
        raise OnlineConfigError(f"{prefix}sources.{name}.type: unknown source type {type_name!r}; known types: {known} "
                                "(a new type is registered with online.sources.register_source)")
    try:
        if max_record_bytes is not None and _takes_limit(factory):
            return factory(name, table, base_dir, max_record_bytes=max_record_bytes)  # type: ignore[call-arg]
        return factory(name, table, base_dir)
    except OnlineConfigError as exc:
        raise OnlineConfigError(f"{prefix}{exc}") from None


def _takes_limit(factory: SourceFactory) -> bool:
    """Whether ``factory`` takes the keyword ``max_record_bytes`` (a registered factory need not)."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or callable without a signature: call it plainly
        return False
    found = parameters.get("max_record_bytes")
    return found is not None and found.kind in (found.KEYWORD_ONLY, found.POSITIONAL_OR_KEYWORD)


def load_sources(config_path: Path | None) -> dict[str, Mapping[str, Any]]:
    """The raw ``[sources.*]`` tables of judgeq.toml, by name.

    ``None`` means the default ``judgeq.toml``, which may be missing (no
    sources); any other path must exist. Errors name the file.
    """
    try:
        found = read_config(config_path)
    except JudgeConfigError as exc:
        raise OnlineConfigError(str(exc)) from None
    if found is None:
        return {}
    data, target = found
    tables = data.get("sources", {})
    if not isinstance(tables, dict):
        raise OnlineConfigError(f"{target}: 'sources' must be a table of [sources.NAME] tables; fix the file")
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise OnlineConfigError(f'{target}: sources.{name} must be a table ([sources.{name}] type = "jsonl", ...), '
                                    f"not {table!r}; fix the file")
    return tables


def configured_source(name: str, config_path: Path | None, *, max_record_bytes: int | None = None) -> TraceSource:
    """The source ``[sources.NAME]`` of the config at ``config_path`` (None: ./judgeq.toml), opened.

    OnlineConfigError names the configured sources when there is no such table.
    """
    tables = load_sources(config_path)
    target = config_path if config_path is not None else DEFAULT_CONFIG_PATH
    table = tables.get(name)
    if table is None:
        configured = ", ".join(tables) or "none"
        raise OnlineConfigError(f"unknown source {name!r}; {target} configures: {configured}. Add a [sources.{name}] "
                                f"table to {target} or use one of these names")
    return open_source(name, table, target.resolve().parent, config_path=target, max_record_bytes=max_record_bytes)
