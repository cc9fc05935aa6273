"""Window ids, sizes and closing (online/windows.py): pure functions with an injected clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from online.errors import OnlineConfigError, WindowError
from online.windows import (
    MINUTE_SIZES,
    Window,
    check_closed,
    format_duration,
    is_closed,
    latest_closed,
    parse_duration,
    parse_size,
    parse_window,
    window_at,
    windows_between,
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "text,start,end",
    [
        ("2026-11-22T13", "2026-11-22T13:00", "2026-11-22T14:00"),
        ("2026-11-22", "2026-11-22T00:00", "2026-11-23T00:00"),
        ("2026-W47", "2026-11-16T00:00", "2026-11-23T00:00"),  # a Monday to the next Monday
        ("2026-11-22T13:05", "2026-11-22T13:05", "2026-11-22T13:06"),
        ("2026-11-22T13:05+5m", "2026-11-22T13:05", "2026-11-22T13:10"),
        ("2026-11-22T23:30+30m", "2026-11-22T23:30", "2026-11-23T00:00"),
        ("2026-12-31T23", "2026-12-31T23:00", "2027-01-01T00:00"),
    ],
)
def test_parse_window_spans(text: str, start: str, end: str) -> None:
    window = parse_window(text)
    assert (window.id, window.start, window.end) == (text, at(start), at(end))
    assert window.start.tzinfo is UTC and window.end.tzinfo is UTC
    assert window.start in window and window.end not in window  # half open


def test_round_trip_every_size_at_random_instants() -> None:
    rng = random.Random(7)
    sizes = [parse_size(s) for s in ["1h", "1d", "1w"] + [f"{m}m" for m in MINUTE_SIZES]]
    for _ in range(300):
        instant = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(40 * 365 * 86400))
        for size in sizes:
            window = window_at(size, instant)
            assert parse_window(window.id) == window
            assert window.start <= instant < window.end and window.end - window.start == size.step
            assert window.size == size


def test_iso_week_edges() -> None:
    # 2026 and 2020 have 53 ISO weeks (1 January on a Thursday; a leap year starting on a Wednesday); 2027 has 52.
    w53 = parse_window("2026-W53")
    assert (w53.start, w53.end) == (at("2026-12-28T00:00"), at("2027-01-04T00:00"))
    assert window_at(parse_size("1w"), at("2027-01-01T12:00")) == w53  # New Year's Day 2027 is in 2026's week 53
    assert parse_window("2020-W53").start == at("2020-12-28T00:00")
    with pytest.raises(WindowError, match="2027 has ISO weeks W01 to W52"):
        parse_window("2027-W53")
    with pytest.raises(WindowError, match="2026 has ISO weeks W01 to W53"):
        parse_window("2026-W00")
    # The first ISO week can start in the previous calendar year, and a year's last days can be in the next's week 1.
    assert parse_window("2025-W01").start == at("2024-12-30T00:00")
    assert window_at(parse_size("1w"), at("2024-12-31T23:59")).id == "2025-W01"
    assert windows_between("2026-W52..2027-W01")[1].id == "2026-W53"


def test_utc_only_so_daylight_saving_does_not_matter() -> None:
    # Europe switched clocks on 2026-03-29 and 2026-10-25: in UTC that day still has 24 hour windows.
    day = parse_window("2026-10-25")
    hours = windows_between("2026-10-25T00..2026-10-25T23")
    assert len(hours) == 24 and hours[0].start == day.start and hours[-1].end == day.end
    # An instant given in another zone lands in the UTC window that holds it.
    cest = timezone(timedelta(hours=2))
    assert window_at(parse_size("1h"), datetime(2026, 3, 29, 3, 30, tzinfo=cest)).id == "2026-03-29T01"


@pytest.mark.parametrize(
    "text,says",
    [
        ("2026-11-22T13:07+5m", "does not start on the 5m grid.*'2026-11-22T13:05\\+5m'"),
        ("2026-11-22T13:05+7m", "window size '7m' is not one judgeq knows"),
        ("2026-11-22T13:05+1h", "size is in minutes"),
        ("2026-02-30", "not a real time"),
        ("2026-11-22T24", "not a real time"),
        ("2026-11-22T13:60", "not a real time"),
        ("2026-11-22 13", "malformed"),
        ("2026-11-22T13Z", "malformed"),
        ("22/11/2026", "malformed"),
        ("2026-W5", "malformed"),
        ("", "malformed"),
        ("0000-W01", "the year must be 0001 to 9999"),
        ("9999-12-31", "after the year 9999"),
    ],
)
def test_bad_window_ids(text: str, says: str) -> None:
    with pytest.raises(WindowError, match=says):
        parse_window(text)


def test_sizes() -> None:
    assert [parse_size(f"{m}m").step for m in MINUTE_SIZES] == [timedelta(minutes=m) for m in MINUTE_SIZES]
    assert parse_size(" 1w ").step == timedelta(weeks=1) and parse_size("1d").kind == "day"
    for bad in ["7m", "60m", "2h", "1y", "h", "1 h", "", "-5m"]:
        with pytest.raises(WindowError, match="use 1h, 1d, 1w, or minutes that divide an hour \\(1m, 2m"):
            parse_size(bad)


def test_latest_closed_and_closing() -> None:
    hour, lateness = parse_size("1h"), timedelta(minutes=5)
    assert latest_closed(hour, at("2026-11-22T14:04:59"), lateness).id == "2026-11-22T12"
    assert latest_closed(hour, at("2026-11-22T14:05:00"), lateness).id == "2026-11-22T13"  # end + lateness == now
    assert latest_closed(parse_size("1d"), at("2026-11-23T00:05"), lateness).id == "2026-11-22"
    assert latest_closed(parse_size("1w"), at("2026-11-23T00:04"), lateness).id == "2026-W46"
    assert latest_closed(parse_size("5m"), at("2026-11-22T13:11"), timedelta(0)).id == "2026-11-22T13:05+5m"
    window = parse_window("2026-11-22T13")
    assert not is_closed(window, at("2026-11-22T14:04:59"), lateness)
    assert is_closed(window, at("2026-11-22T14:05"), lateness)
    check_closed(window, at("2026-11-22T14:05"), lateness)
    with pytest.raises(WindowError, match="not closed yet: it ends at 2026-11-22 14:00:00 UTC and closes at "
                                          "2026-11-22 14:05:00 UTC \\(lateness 5m"):
        check_closed(window, at("2026-11-22T13:30"), lateness)
    with pytest.raises(WindowError, match="in the future: it starts at 2026-11-22 13:00:00 UTC"):
        check_closed(window, at("2026-11-22T12:59"), lateness)
    with pytest.raises(WindowError, match="no time zone"):
        is_closed(window, datetime(2026, 11, 23), lateness)


def test_windows_between() -> None:
    days = windows_between("2026-11-20..2026-11-22")
    assert [w.id for w in days] == ["2026-11-20", "2026-11-21", "2026-11-22"]
    assert all(a.end == b.start for a, b in zip(days, days[1:], strict=False))
    assert windows_between("2026-11-22T13") == [parse_window("2026-11-22T13")]
    assert len(windows_between("2026-11-22T13:00+5m..2026-11-22T13:55+5m")) == 12
    with pytest.raises(WindowError, match="mixes sizes \\(1d and 1h\\)"):
        windows_between("2026-11-20..2026-11-22T13")
    with pytest.raises(WindowError, match="runs backwards; write the older window first: 2026-11-20..2026-11-22"):
        windows_between("2026-11-22..2026-11-20")
    with pytest.raises(WindowError, match="holds 8761 windows of 1h; at most 1000"):
        windows_between("2026-01-01T00..2027-01-01T00")
    with pytest.raises(WindowError, match="malformed"):
        windows_between("2026-11-20..")


def test_durations() -> None:
    assert parse_duration("5m") == timedelta(minutes=5)
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("1h") == timedelta(hours=1) and parse_duration("0s") == timedelta(0)
    assert [format_duration(parse_duration(t)) for t in ["90s", "5m", "120m", "1d", "0s"]] == \
        ["90s", "5m", "2h", "1d", "0s"]
    for bad in ["5", "5 min", "-5m", "1.5h", "", "5M"]:
        with pytest.raises(OnlineConfigError, match="lateness: .* is not a duration; write a whole number and a unit"):
            parse_duration(bad)
    with pytest.raises(OnlineConfigError, match="^--lateness: 300"):
        parse_duration(300, "--lateness")  # type: ignore[arg-type]  # what a TOML integer would give


def test_window_is_a_value() -> None:
    window = parse_window("2026-11-22")
    assert window == Window("2026-11-22", at("2026-11-22T00:00"), at("2026-11-23T00:00"))
    assert str(window) == "2026-11-22" and len({window, parse_window("2026-11-22")}) == 1
