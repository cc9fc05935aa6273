"""Trace sources: where a window's live traces are read from.

A source iterates the traces of a window ``[start, end)`` and counts them
(:class:`~online.sources.base.TraceSource`). judgeq ships three types, each a
``[sources.NAME]`` table of judgeq.toml: ``jsonl`` (files of records),
``sql`` (a table or a SELECT of any SQLAlchemy database) and ``otlp`` (the
files the OpenTelemetry Collector's file exporter writes). Another type is a
class with the same two methods, registered with :func:`register_source`.
"""

from online.sources.base import (SOURCE_TYPES, SourceFactory, TraceSource, configured_source, load_sources,
                                 open_source, register_source)

__all__ = ["SOURCE_TYPES", "SourceFactory", "TraceSource", "configured_source", "load_sources", "open_source",
           "register_source"]
