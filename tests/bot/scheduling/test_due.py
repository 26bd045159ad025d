"""Weekly due times across DST changes (2027 US and EU), week rollover and parsing."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.scheduling.due import next_due, parse_day, parse_time, parse_timezone

UTC = dt.UTC
SUN, FRI = 6, 4


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_spring_forward_gap_moves_forward_by_the_gap():
    # 2027-03-14 02:00 EST → 03:00 EDT: 02:30 does not exist in New York.
    due = next_due(SUN, "02:30", "America/New_York", utc(2027, 3, 13, 12))
    assert due == utc(2027, 3, 14, 7, 30)  # = 03:30 EDT
    assert due.tzinfo is not None and due.utcoffset() == dt.timedelta(0)


def test_fall_back_ambiguous_takes_first_occurrence():
    # 2027-11-07 02:00 EDT → 01:00 EST: 01:30 happens twice; the first is 05:30 UTC.
    assert next_due(SUN, "01:30", "America/New_York", utc(2027, 11, 6, 12)) == utc(2027, 11, 7, 5, 30)


def test_fall_back_second_occurrence_is_not_due_again():
    # Right after the first 01:30, the next due time is a week later, not the repeated 01:30.
    after = utc(2027, 11, 7, 5, 30)
    assert next_due(SUN, "01:30", "America/New_York", after) == utc(2027, 11, 14, 6, 30)


def test_offsets_on_both_sides_of_dst_new_york():
    assert next_due(FRI, "09:00", "America/New_York", utc(2027, 3, 1)) == utc(2027, 3, 5, 14)  # EST
    assert next_due(FRI, "09:00", "America/New_York", utc(2027, 3, 15)) == utc(2027, 3, 19, 13)  # EDT


def test_europe_dst_2027():
    # EU: 2027-03-28 01:00 UTC spring forward; 2027-10-31 01:00 UTC fall back.
    assert next_due(SUN, "02:30", "Europe/Berlin", utc(2027, 3, 27)) == utc(2027, 3, 28, 1, 30)  # → 03:30 CEST
    assert next_due(SUN, "02:30", "Europe/Berlin", utc(2027, 10, 30)) == utc(2027, 10, 31, 0, 30)  # first 02:30 (CEST)
    assert next_due(SUN, "09:00", "Europe/London", utc(2027, 3, 27)) == utc(2027, 3, 28, 8)  # BST
    assert next_due(SUN, "09:00", "Europe/London", utc(2027, 10, 30)) == utc(2027, 10, 31, 9)  # GMT


def test_strictly_after_and_week_rollover():
    friday_9 = utc(2026, 11, 20, 9)
    assert next_due(FRI, "09:00", "UTC", friday_9) == utc(2026, 11, 27, 9)
    assert next_due(FRI, "09:00", "UTC", friday_9 - dt.timedelta(microseconds=1)) == friday_9
    # Saturday → the following Friday; and across a year end.
    assert next_due(FRI, "09:00", "UTC", utc(2026, 11, 21)) == utc(2026, 11, 27, 9)
    assert next_due(FRI, "09:00", "UTC", utc(2026, 12, 31, 23)) == utc(2027, 1, 1, 9)


def test_local_day_differs_from_utc_day():
    # Monday 00:30 in Tokyo is Sunday 15:30 UTC.
    assert next_due(0, "00:30", "Asia/Tokyo", utc(2026, 11, 22, 15)) == utc(2026, 11, 22, 15, 30)
    # Friday 20:00 in Los Angeles is Saturday 04:00 UTC.
    assert next_due(FRI, "20:00", "America/Los_Angeles", utc(2026, 11, 21, 3)) == utc(2026, 11, 21, 4)


def test_after_in_another_zone_is_respected():
    after = dt.datetime(2026, 11, 20, 10, tzinfo=dt.timezone(dt.timedelta(hours=2)))  # 08:00 UTC
    assert next_due(FRI, "09:00", "UTC", after) == utc(2026, 11, 20, 9)


@pytest.mark.parametrize(
    "args",
    [
        (7, "09:00", "UTC", utc(2026, 1, 1)),
        (0, "25:00", "UTC", utc(2026, 1, 1)),
        (0, "09:00", "Mars/Base", utc(2026, 1, 1)),
        (0, "09:00", "UTC", dt.datetime(2026, 1, 1)),
    ],
)
def test_next_due_rejects_bad_input(args):
    with pytest.raises(ValueError):
        next_due(*args)


@pytest.mark.parametrize(
    "text,day",
    [
        ("fri", 4),
        ("Friday", 4),
        (" FRIDAY ", 4),
        ("mon", 0),
        ("tu", 1),
        ("tues", 1),
        ("weds", 2),
        ("thurs", 3),
        ("th", 3),
        ("sat.", 5),
        ("su", 6),
        ("Sunday", 6),
    ],
)
def test_parse_day(text, day):
    assert parse_day(text) == day


@pytest.mark.parametrize(
    "text,fragment", [("5", "number"), ("t", "Unknown"), ("s", "Unknown"), ("funday", "Unknown"), ("", "Unknown")]
)
def test_parse_day_errors_are_clear(text, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        parse_day(text)
    assert "friday" in str(info.value)


def test_parse_time():
    assert parse_time("9:05") == "09:05"
    assert parse_time(" 18:30 ") == "18:30"
    assert parse_time("00:00") == "00:00"
    for bad in ("9", "9am", "24:00", "12:60", "12:5", "", "ab:cd"):
        with pytest.raises(ValueError, match="Time"):
            parse_time(bad)


def test_parse_timezone():
    assert parse_timezone("Europe/Berlin") == "Europe/Berlin"
    assert parse_timezone("america/new_york") == "America/New_York"
    assert parse_timezone("utc") == "UTC"
    for bad in ("Mars/Base", "", "/etc/passwd", "../../etc/passwd", "localtime"):
        with pytest.raises(ValueError, match="time zone"):
            parse_timezone(bad)
