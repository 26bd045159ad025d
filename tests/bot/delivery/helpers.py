"""Releases found for an artist and per-guild album groups, for the delivery planner tests."""

from __future__ import annotations

import datetime as dt

from bot.spotify.models import Album
from storage import catalog
from storage.models import Guild


def album(
    rid: str,
    name: str,
    album_type: str = "album",
    *,
    tracks: int = 1,
    artists: tuple[tuple[str, str], ...] = (("A", "A"),),
) -> Album:
    """A release of ``tracks`` tracks (default one) by ``artists`` (``(id, name)``, default artist ``A``)
    dated 2026-11-20, as Spotify lists it."""
    return Album.from_api(
        {
            "id": rid,
            "name": name,
            "album_type": album_type,
            "release_date": "2026-11-20",
            "release_date_precision": "day",
            "total_tracks": tracks,
            "artists": [{"id": a, "name": n} for a, n in artists],
        }
    )


async def found(db, artist_id: str, alb: Album, group: str, at: dt.datetime) -> None:
    """``alb`` stored and linked to ``artist_id`` in ``group`` as a new (not baseline) release first seen ``at``."""
    async with db.sessions() as s:
        await catalog.upsert_release(s, alb, now=at)
        await catalog.link_release(s, artist_id, alb.id, album_group=group, now=at, baseline=False)
        await s.commit()


async def set_groups(db, guild_id: int, groups: list[str] | None) -> None:
    """The guild's album groups (``/settings types``) set to ``groups`` (None: the default)."""
    async with db.sessions() as s:
        (await s.get(Guild, guild_id)).album_groups = groups
        await s.commit()
