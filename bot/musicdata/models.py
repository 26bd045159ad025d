"""What the MusicBrainz and ListenBrainz clients return, parsed from their JSON.

Sources: ``../shared/musicdata/README.md`` section 1 (ListenBrainz ``/1/explore/fresh-releases/``
items) and section 3 (MusicBrainz ws/2).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_MBID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def parse_mbid(value: object) -> str | None:
    """A MusicBrainz id (a UUID, lowercased), or None for anything else (``""``, null, a malformed value)."""
    text = str(value or "").strip().lower()
    return text if _MBID_RE.match(text) else None


def parse_day(text: str) -> dt.date | None:
    """A ``YYYY-MM-DD`` date (parts may be unpadded, as ``2022-5-27`` in ListenBrainz's stored data), or
    None for anything else (a partial date such as ``2026`` or ``2026-12``)."""
    parts = text.split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    try:
        return dt.date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        return None


@dataclass(frozen=True)
class FreshRelease:
    """One item of ListenBrainz's fresh releases: a release group and the one release shown for it.

    ``release_group_mbid``, ``release_mbid``; ``title`` (``release_name``); ``artist_credit_name``;
    ``artist_mbids`` (the credited MusicBrainz artists); ``primary_type`` (Album, Single, EP,
    Other, Broadcast or None: the key is omitted when null); ``secondary_types`` (ListenBrainz
    shows one value at most: Live, Remix, Compilation, …); ``release_date`` (the group's
    first-release date); ``caa_id`` / ``caa_release_mbid`` (Cover Art Archive image id and the
    release it belongs to, or None).
    """

    release_group_mbid: str
    release_mbid: str
    title: str
    artist_credit_name: str
    artist_mbids: tuple[str, ...]
    primary_type: str | None
    secondary_types: tuple[str, ...]
    release_date: dt.date
    caa_id: int | None
    caa_release_mbid: str | None

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> FreshRelease | None:
        """Parse one ``releases`` item; None when it lacks a release group id or a full date."""
        group = item.get("release_group_mbid")
        day = parse_day(str(item.get("release_date") or ""))
        if not group or day is None:
            return None
        secondary = item.get("release_group_secondary_type")
        caa_id = item.get("caa_id")
        return cls(
            release_group_mbid=str(group),
            release_mbid=str(item.get("release_mbid") or ""),
            title=str(item.get("release_name") or ""),
            artist_credit_name=str(item.get("artist_credit_name") or ""),
            artist_mbids=tuple(str(m) for m in item.get("artist_mbids") or ()),
            primary_type=item.get("release_group_primary_type") or None,
            secondary_types=(str(secondary),) if secondary else (),
            release_date=day,
            caa_id=int(caa_id) if isinstance(caa_id, int) else None,
            caa_release_mbid=item.get("caa_release_mbid") or None,
        )


@dataclass(frozen=True)
class ListenedArtist:
    """One artist of a user's listening history, most played first: ``name`` as the service spells it,
    ``mbid`` (its MusicBrainz artist id, None when the service does not know it) and ``plays`` (Last.fm
    ``playcount``, ListenBrainz ``listen_count``) in the period asked for."""

    name: str
    mbid: str | None
    plays: int
