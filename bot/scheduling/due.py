"""Weekly due times, DST-correct, with ``zoneinfo`` (no APScheduler triggers involved).

A guild's schedule is a weekday (0 = Monday … 6 = Sunday), a local wall time
"HH:MM" and an IANA time zone. :func:`next_due` turns that into the next UTC instant
strictly after a given one. DST rules (PEP 495 ``fold=0``):

* a local time that does not exist (spring forward gap, e.g. 02:30 on 2027-03-14 in
  America/New_York) is moved forward by the gap (→ 03:30 EDT, 07:30 UTC);
* an ambiguous local time (fall back, e.g. 01:30 on 2027-11-07 in New York) takes the
  first occurrence (01:30 EDT, 05:30 UTC).

The ``parse_*`` helpers validate what a user typed and raise ``ValueError`` with a
message fit to show them.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

__all__ = ["DAY_NAMES", "next_due", "parse_day", "parse_time", "parse_timezone"]

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_ALIASES = {"weds": 2, "thur": 3, "thurs": 3, "tues": 1}
_NOT_ZONES = {"localtime", "Factory", "posixrules"}  # system aliases, not places
_TIME_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")


def _split_time(time: str) -> tuple[int, int]:
    match = _TIME_RE.match(time or "")
    if not match:
        raise ValueError(f"Time {time!r} is not HH:MM (24-hour clock), e.g. 09:00 or 18:30.")
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        raise ValueError(f"Time {time!r} is out of range: hours 00–23, minutes 00–59.")
    return hour, minute


def next_due(day: int, time: str, tz: str, after: dt.datetime) -> dt.datetime:
    """The first weekly occurrence of weekday ``day`` at local ``time`` in ``tz``, strictly after ``after``.

    ``day``: 0 = Monday … 6 = Sunday; ``time``: "HH:MM" (24 h, local wall time);
    ``tz``: IANA name; ``after``: an aware datetime (any zone). Returns an aware UTC
    datetime. A non-existent local time (spring-forward gap) is moved forward by the
    gap; an ambiguous one (fall back) is its first occurrence. Raises ``ValueError``
    for a naive ``after``, a day outside 0–6, a malformed time or an unknown zone.
    """
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError("next_due needs a timezone-aware 'after'")
    if not isinstance(day, int) or not 0 <= day <= 6:
        raise ValueError(f"Day {day!r} must be 0 (Monday) … 6 (Sunday).")
    hour, minute = _split_time(time)
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"Unknown time zone {tz!r}.") from exc
    after_utc = after.astimezone(dt.UTC)
    # The first ``day`` from the local day before ``after`` on (any earlier one is long past); when
    # its time is not after ``after`` (``after`` is later that day), the one a week later is.
    start = after_utc.astimezone(zone).date() - dt.timedelta(days=1)
    first = start + dt.timedelta(days=(day - start.weekday()) % 7)
    candidate = _utc_at(first, hour, minute, zone)
    if candidate <= after_utc:
        candidate = _utc_at(first + dt.timedelta(days=7), hour, minute, zone)
    return candidate


def _utc_at(date: dt.date, hour: int, minute: int, zone: ZoneInfo) -> dt.datetime:
    """Local ``hour:minute`` of ``date`` in ``zone`` as aware UTC. ``fold=0``: a gap time resolves with
    the pre-transition offset (i.e. moved forward by the gap once converted), an ambiguous time to its
    first occurrence."""
    local = dt.datetime(date.year, date.month, date.day, hour, minute, tzinfo=zone, fold=0)
    return local.astimezone(dt.UTC)


def parse_day(text: str) -> int:
    """Parse a weekday name → 0 (Monday) … 6 (Sunday).

    Accepts full English names and any unambiguous prefix of at least 2 letters
    ("fri", "Friday", "tu", "th", "sa"), plus "tues", "weds", "thur", "thurs";
    case-insensitive, surrounding spaces and a trailing "." ignored. Numbers are
    refused on purpose (0- vs 1-based and Sunday-first conventions disagree).
    Raises ``ValueError`` naming the accepted forms.
    """
    word = (text or "").strip().lower().rstrip(".")
    if word in _DAY_ALIASES:
        return _DAY_ALIASES[word]
    matches = [i for i, name in enumerate(DAY_NAMES) if len(word) >= 2 and name.startswith(word)]
    if len(matches) == 1:
        return matches[0]
    hint = "use a weekday name such as 'friday' or 'fri'"
    if word.isdigit():
        raise ValueError(f"Day {text!r} is a number; {hint}.")
    if len(matches) > 1:
        raise ValueError(f"Day {text!r} is ambiguous ({', '.join(DAY_NAMES[i] for i in matches)}); {hint}.")
    raise ValueError(f"Unknown day {text!r}; {hint}.")


def parse_time(text: str) -> str:
    """Parse a 24-hour local time "H:MM" / "HH:MM" → normalised "HH:MM".

    Raises ``ValueError`` for anything else ("9", "9am", "24:00", "12:60").
    """
    hour, minute = _split_time(text)
    return f"{hour:02d}:{minute:02d}"


@lru_cache(maxsize=1)
def _zones_by_lower() -> dict[str, str]:
    zones = {name.lower(): name for name in available_timezones() if name not in _NOT_ZONES}
    zones.setdefault("utc", "UTC")
    return zones


def parse_timezone(name: str) -> str:
    """Parse an IANA time zone name (case-insensitive, e.g. "europe/berlin") → its canonical spelling.

    Only names of the installed tz database are accepted (no file paths, no
    "localtime"). Raises ``ValueError`` with an example for an unknown name.
    """
    key = (name or "").strip()
    canonical = _zones_by_lower().get(key.lower())
    if canonical is None:
        raise ValueError(
            f"Unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin', 'America/New_York' or 'UTC'."
        )
    ZoneInfo(canonical)  # loadable
    return canonical
