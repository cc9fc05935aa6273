"""Windows of time: the unit the online regime judges, and its id (the ledger's dataset version).

A window is half open, ``[start, end)``, in UTC, and its id says both where
it starts and how long it is:

    ``2026-W47``            ISO week (Monday 00:00 UTC to the next Monday)
    ``2026-11-22``          day
    ``2026-11-22T13``       hour
    ``2026-11-22T13:05``    one minute
    ``2026-11-22T13:05+5m`` five minutes (minute sizes divide an hour; windows are aligned to the hour)

UTC has no daylight saving time, so every size has one fixed length and
every day has 24 hour windows. Every function here is pure: the current time
is a parameter (``now``), so that callers and tests control the clock.
A window is *closed* once ``end + lateness <= now``: the grace period lets
late traces arrive before the window is judged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal

from .errors import OnlineConfigError, WindowError

Kind = Literal["minute", "hour", "day", "week"]

#: Minute sizes: those that divide an hour, so that windows align to it.
MINUTE_SIZES: Final = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)
#: The most windows one ``A..B`` range may hold (a report line each).
MAX_RANGE: Final = 1000
ACCEPTED_SIZES: Final = "1h, 1d, 1w, or minutes that divide an hour (" + ", ".join(f"{m}m" for m in MINUTE_SIZES) + ")"
ACCEPTED_IDS: Final = ('an hour "2026-11-22T13", a day "2026-11-22", an ISO week "2026-W47", '
                       'a minute "2026-11-22T13:05" or minutes "2026-11-22T13:05+5m"')

_STEP: Final[dict[str, timedelta]] = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_KIND: Final[dict[str, Kind]] = {"m": "minute", "h": "hour", "d": "day", "w": "week"}
_SIZE = re.compile(r"(\d{1,3})([mhdw])")
_WEEK = re.compile(r"(\d{4})-W(\d{2})")
_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?:\+(\w+))?)?)?")
_DURATION = re.compile(r"(\d{1,6})([smhd])")
_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Size:
    """A window length: ``text`` as written ("5m", "1h", "1d", "1w") and the ``step`` it stands for."""

    text: str
    step: timedelta

    @property
    def kind(self) -> Kind:
        return _KIND[self.text[-1]]

    def floor(self, instant: datetime) -> datetime:
        """The start of the window of this size that holds ``instant`` (UTC)."""
        at = utc(instant)
        if self.kind == "minute":
            step = int(self.step.total_seconds()) // 60
            return at.replace(minute=at.minute - at.minute % step, second=0, microsecond=0)
        at = at.replace(minute=0, second=0, microsecond=0)
        if self.kind == "hour":
            return at
        at = at.replace(hour=0)
        return at if self.kind == "day" else at - timedelta(days=at.weekday())


@dataclass(frozen=True)
class Window:
    """One window: its ``id`` and its half-open span ``[start, end)`` in UTC."""

    id: str
    start: datetime
    end: datetime

    @property
    def size(self) -> Size:
        return _size_of(self.end - self.start)

    def __contains__(self, instant: datetime) -> bool:
        return self.start <= utc(instant) < self.end

    def __str__(self) -> str:
        return self.id


def utc(instant: datetime) -> datetime:
    """``instant`` in UTC; a naive datetime is refused, since its zone would be a guess."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise WindowError(f"{instant.isoformat()} has no time zone; windows need an aware time (UTC)")
    return instant.astimezone(UTC)


def parse_size(text: str) -> Size:
    """The window size ``text`` names ("5m", "1h", "1d", "1w"); WindowError for any other."""
    match = _SIZE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match:
        count, unit = int(match[1]), match[2]
        if unit == "m" and count in MINUTE_SIZES:
            return Size(f"{count}m", timedelta(minutes=count))
        if unit != "m" and count == 1:
            return Size(f"1{unit}", _STEP[unit])
    raise WindowError(f"window size {text!r} is not one judgeq knows; use {ACCEPTED_SIZES}")


def _size_of(step: timedelta) -> Size:
    for unit, length in _STEP.items():
        if step == length:
            return Size(f"1{unit}", length)
    return parse_size(f"{int(step.total_seconds()) // 60}m")


def window_at(size: Size, instant: datetime) -> Window:
    """The window of ``size`` that holds ``instant``."""
    return _window(size, size.floor(instant))


def _window(size: Size, start: datetime) -> Window:
    try:
        end = start + size.step
    except OverflowError:
        raise WindowError(f"a window starting {start:%Y-%m-%d %H:%M} UTC ends after the year 9999") from None
    return Window(_window_id(size, start), start, end)


def _window_id(size: Size, start: datetime) -> str:
    if size.kind == "week":
        iso = start.isocalendar()
        return f"{iso.year:04d}-W{iso.week:02d}"
    text = f"{start.year:04d}-{start.month:02d}-{start.day:02d}"
    if size.kind == "day":
        return text
    text += f"T{start.hour:02d}"
    if size.kind == "hour":
        return text
    text += f":{start.minute:02d}"
    return text if size.text == "1m" else f"{text}+{size.text}"


def parse_window(text: str) -> Window:
    """The window a window id names; WindowError (saying which forms exist) for anything else."""
    if not isinstance(text, str):
        raise WindowError(f"window id {text!r} is not text; write {ACCEPTED_IDS}")
    text = text.strip()
    week = _WEEK.fullmatch(text)
    if week:
        year, number = int(week[1]), int(week[2])
        try:
            monday = date.fromisocalendar(year, number, 1)
        except ValueError:
            if not 1 <= year <= 9999:
                raise WindowError(f"window {text!r}: the year must be 0001 to 9999") from None
            weeks = date(year, 12, 28).isocalendar().week  # 28 December is always in the year's last week
            raise WindowError(f"window {text!r}: {year:04d} has ISO weeks W01 to W{weeks:02d}") from None
        return _window(parse_size("1w"), datetime(monday.year, monday.month, monday.day, tzinfo=UTC))
    match = _TIME.fullmatch(text)
    if match is None:
        raise WindowError(f"window id {text!r} is malformed; write {ACCEPTED_IDS} (UTC)")
    y, mo, d, hour, minute, suffix = match.groups()
    try:
        start = datetime(int(y), int(mo), int(d), int(hour or 0), int(minute or 0), tzinfo=UTC)
    except ValueError as exc:
        raise WindowError(f"window {text!r} is not a real time ({exc})") from None
    if minute is None:
        return _window(parse_size("1h" if hour else "1d"), start)
    size = parse_size(suffix or "1m")
    if size.kind != "minute":
        raise WindowError(f"window {text!r}: a minute window's size is in minutes ({ACCEPTED_SIZES})")
    if size.floor(start) != start:
        step = int(size.step.total_seconds()) // 60
        raise WindowError(
            f"window {text!r} does not start on the {size.text} grid: {size.text} windows start at minutes "
            f"00, {step:02d}, {2 * step:02d}, ... of each hour, e.g. {_window_id(size, size.floor(start))!r}"
        )
    return _window(size, start)


def latest_closed(size: Size, now: datetime, lateness: timedelta) -> Window:
    """The newest window of ``size`` that is closed at ``now`` (``end + lateness <= now``): what ``--last`` means."""
    current = size.floor(utc(now) - lateness)  # its window ends after now - lateness: still open
    return _window(size, current - size.step)


def is_closed(window: Window, now: datetime, lateness: timedelta) -> bool:
    """Whether ``window`` may be judged at ``now``: it ended at least ``lateness`` ago."""
    return window.end + lateness <= utc(now)


def check_closed(window: Window, now: datetime, lateness: timedelta) -> None:
    """WindowError unless ``window`` is closed at ``now``; the message says when it will be."""
    now = utc(now)
    if now < window.start:
        raise WindowError(
            f"window {window.id} is in the future: it starts at {_at(window.start)} and it is {_at(now)}; "
            "pick a window that has ended (or --last)"
        )
    if not is_closed(window, now, lateness):
        raise WindowError(
            f"window {window.id} is not closed yet: it ends at {_at(window.end)} and closes at "
            f"{_at(window.end + lateness)} (lateness {format_duration(lateness)}, so late traces are not missed); "
            "run it then, or pick an earlier window"
        )


def _at(instant: datetime) -> str:
    return f"{instant:%Y-%m-%d %H:%M:%S} UTC"


def windows_between(text: str, limit: int = MAX_RANGE) -> list[Window]:
    """The windows of the range ``A..B`` (both ends included, one size), oldest first; ``A`` alone is one window."""
    first_id, sep, last_id = text.partition("..")
    first = parse_window(first_id)
    if not sep:
        return [first]
    last = parse_window(last_id)
    if first.size != last.size:
        raise WindowError(f"range {text!r} mixes sizes ({first.size.text} and {last.size.text}); "
                          "give two windows of one size, e.g. 2026-11-20..2026-11-22")
    if last.start < first.start:
        raise WindowError(f"range {text!r} runs backwards; write the older window first: {last.id}..{first.id}")
    count = (last.start - first.start) // first.size.step + 1
    if count > limit:
        raise WindowError(f"range {text!r} holds {count} windows of {first.size.text}; at most {limit} at once: "
                          "narrow it or use a larger size")
    return [_window(first.size, first.start + i * first.size.step) for i in range(count)]


def parse_duration(text: str, what: str = "lateness") -> timedelta:
    """A duration such as "90s", "5m", "1h" or "1d" (``what`` names the key or flag in the error)."""
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise OnlineConfigError(f'{what}: {text!r} is not a duration; write a whole number and a unit: '
                                '"90s", "5m", "1h" or "1d" ("0s" for none)')
    return timedelta(seconds=int(match[1]) * _SECONDS[match[2]])


def format_duration(duration: timedelta) -> str:
    """The shortest exact form of ``duration`` that :func:`parse_duration` reads back ("5m", "90s")."""
    seconds = int(duration.total_seconds())
    for unit in "dhm":
        if seconds and seconds % _SECONDS[unit] == 0:
            return f"{seconds // _SECONDS[unit]}{unit}"
    return f"{seconds}s"
