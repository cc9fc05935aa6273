"""Trace timestamps: ISO 8601 text in, tz-aware UTC datetimes out, and back.

A source compares every trace's ``ts`` with its window, so this is on the
hot path: :func:`parse_ts` is one ``datetime.fromisoformat`` (C code, which
since Python 3.11 reads ``Z``, offsets and fractions) and no regex. A ``ts``
without an offset is taken as UTC, the convention of log pipelines.
"""

from __future__ import annotations

from datetime import UTC, datetime

_fromisoformat = datetime.fromisoformat


def parse_ts(text: str) -> datetime | None:
    """``text`` as a tz-aware datetime (UTC when it has no offset); None when it is not ISO 8601."""
    try:
        moment = _fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def utc_iso(moment: datetime) -> str:
    """``moment`` as ISO 8601 text in UTC (a naive datetime is taken as UTC), e.g. ``2026-11-22T13:05:00+00:00``."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC).isoformat()
    return moment.astimezone(UTC).isoformat()


def check_window(start: datetime, end: datetime) -> None:
    """Refuse a window a source cannot compare with: naive bounds, or an end before its start (a caller's bug)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError(f"a window's bounds must be tz-aware datetimes, got {start!r} and {end!r}")
    if end < start:
        raise ValueError(f"a window ends ({end.isoformat()}) before it starts ({start.isoformat()})")


def unix_nanos(moment: datetime) -> int:
    """``moment`` as integer nanoseconds since the Unix epoch, exactly (no float rounding)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def from_unix_nanos(nanos: int) -> str:
    """Integer nanoseconds since the Unix epoch as ISO 8601 UTC text (to the microsecond)."""
    seconds, rest = divmod(nanos, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest // 1_000).isoformat()
