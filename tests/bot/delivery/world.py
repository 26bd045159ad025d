"""A guild's world for the destination, mention and DM tests: releases by several artists, routes,
subscribed members, the publish setting. Rows are written straight into the store."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.spotify.models import Album
from storage import catalog, routes
from storage.db import Database
from storage.models import Guild, Member, Subscription
from tests.bot.helpers import add_guild, follow

GUILD = 1
DEFAULT = 100


async def guild_following(
    db: Database, clock, artists: Iterable[str] = ("A", "B"), *, guild_id: int = GUILD, channel_id: int | None = DEFAULT
) -> None:
    """Guild ``guild_id`` with default channel ``channel_id`` follows ``artists`` (named "Artist X");
    the clock moves an hour on, so what is found next is new."""
    await add_guild(db, guild_id, now=clock(), channel_id=channel_id)
    for artist in artists:
        await follow(db, guild_id, artist, f"Artist {artist}", now=clock())
    clock.advance(hours=1)


async def release(
    db: Database,
    clock,
    rid: str,
    name: str | None = None,
    *,
    artists: Sequence[str] = ("A",),
    album_type: str = "single",
    total_tracks: int = 1,
    links: Sequence[tuple[str, str]] | None = None,
) -> str:
    """Release ``rid`` credited to ``artists`` (in that order), found a second after the last one through
    ``links`` ((artist, album group); default: its first artist in its own group). Returns ``rid``."""
    clock.advance(seconds=1)
    album = Album.from_api(
        {
            "id": rid,
            "name": name or f"Song {rid}",
            "album_type": album_type,
            "release_date": "2026-11-20",
            "release_date_precision": "day",
            "total_tracks": total_tracks,
            "artists": [{"id": a, "name": f"Artist {a}"} for a in artists],
        }
    )
    async with db.transaction() as s:
        await catalog.upsert_release(s, album, now=clock())
        for artist, group in links or [(artists[0], album_type)]:
            await catalog.get_or_create_artist(s, artist, f"Artist {artist}")
            await catalog.link_release(s, artist, rid, album_group=group, now=clock(), baseline=False)
    return rid


async def route(db: Database, kind: str, key: str, channel_id: int, *, guild_id: int = GUILD) -> None:
    async with db.transaction() as s:
        await routes.set_route(s, guild_id, kind, key, channel_id)


async def subscribe(
    db: Database, clock, users: Iterable[int], artist_id: str, *, mode: str = "mention", guild_id: int = GUILD
) -> None:
    """Members ``users`` of the guild subscribe to ``artist_id`` in ``mode``."""
    async with db.sessions() as s:
        for user in users:
            member = await s.get(Member, (guild_id, user))
            if member is None:
                s.add(Member(guild_id=guild_id, user_id=user, mode=mode))
            else:
                member.mode = mode
            s.add(Subscription(guild_id=guild_id, user_id=user, artist_id=artist_id, created_at=clock()))
        await s.commit()


async def set_guild(db: Database, guild_id: int = GUILD, **values) -> None:
    """Set guild columns (``publish``, ``mention_role_id``, ``album_groups``, ``channel_id``)."""
    async with db.sessions() as s:
        guild = await s.get(Guild, guild_id)
        assert guild is not None
        for key, value in values.items():
            setattr(guild, key, value)
        await s.commit()


def url(rid: str) -> str:
    return f"https://open.spotify.com/album/{rid}"
