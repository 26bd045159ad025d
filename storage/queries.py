"""Small async query helpers shared by the tracker, the deliverer and the runner.

Conventions: every helper takes an open ``AsyncSession`` and **never commits** —
the caller owns the transaction. Times are timezone-aware UTC ``datetime`` values.
Inserts that may race with another writer (``upsert_release``, ``link_release``)
use ``INSERT … ON CONFLICT DO NOTHING`` on SQLite/PostgreSQL, so two tasks (or two
processes) storing the same release never fail on the primary key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Artist, ArtistRelease, Follow, Guild, Release, SpotifyState

SPOTIFY_STATE_ID = 1


def _insert_ignore(session: AsyncSession, model: type, values: dict[str, Any]):
    """An ``INSERT`` of ``values`` into ``model`` that does nothing on a key conflict, or None if unsupported."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # pragma: no cover - only SQLite/PostgreSQL are used
        return None
    return insert(model).values(**values).on_conflict_do_nothing()


async def get_or_create_guild(
    session: AsyncSession,
    guild_id: int,
    *,
    now: dt.datetime,
    schedule_day: int = 4,
    schedule_time: str = "09:00",
    timezone: str = "UTC",
    next_due_at: dt.datetime | None = None,
) -> Guild:
    """Return guild ``guild_id``, adding it (not committed) with the given schedule if absent.

    ``schedule_day`` 0=Monday…6=Sunday, ``schedule_time`` local "HH:MM" in IANA
    ``timezone``. ``next_due_at`` (UTC) defaults to the first scheduled time strictly
    after ``now`` (``bot.scheduling.due.next_due``). An existing guild is returned unchanged.
    """
    guild = await session.get(Guild, guild_id)
    if guild is not None:
        return guild
    if next_due_at is None:
        from bot.scheduling.due import next_due  # pure stdlib helper; imported late to keep storage standalone

        next_due_at = next_due(schedule_day, schedule_time, timezone, now)
    guild = Guild(
        id=guild_id,
        schedule_day=schedule_day,
        schedule_time=schedule_time,
        timezone=timezone,
        next_due_at=next_due_at,
        created_at=now,
    )
    session.add(guild)
    await session.flush()
    return guild


async def get_or_create_artist(
    session: AsyncSession, artist_id: str, name: str, image_url: str | None = None
) -> Artist:
    """Return artist ``artist_id``, adding it (not committed, not baselined) if absent.

    An existing row keeps its name unless it is empty; ``image_url`` fills a missing one.
    """
    artist = await session.get(Artist, artist_id)
    if artist is None:
        artist = Artist(id=artist_id, name=name, image_url=image_url, group_state={})
        session.add(artist)
        await session.flush()
    else:
        if not artist.name and name:
            artist.name = name
        if image_url and not artist.image_url:
            artist.image_url = image_url
    return artist


async def follow_artist(session: AsyncSession, guild_id: int, artist_id: str, *, now: dt.datetime) -> Follow:
    """Make guild ``guild_id`` follow artist ``artist_id`` since ``now`` (not committed).

    Idempotent: an existing follow keeps its original ``followed_at``. The guild and
    artist rows must exist (foreign keys).
    """
    follow = await session.get(Follow, (guild_id, artist_id))
    if follow is None:
        follow = Follow(guild_id=guild_id, artist_id=artist_id, followed_at=now)
        session.add(follow)
        await session.flush()
    return follow


async def followed_artist_ids(session: AsyncSession, guild_ids: Iterable[int] | None = None) -> list[str]:
    """Distinct Spotify ids of the artists followed by ``guild_ids`` (every guild when None), sorted."""
    query = select(Follow.artist_id).distinct()
    if guild_ids is not None:
        ids = list(guild_ids)
        if not ids:
            return []
        query = query.where(Follow.guild_id.in_(ids))
    return sorted((await session.scalars(query)).all())


async def artist_names(session: AsyncSession, artist_ids: Iterable[str]) -> dict[str, str]:
    """``{artist id: name}`` for the given ids that have an ``artists`` row."""
    ids = list(artist_ids)
    if not ids:
        return {}
    rows = await session.execute(select(Artist.id, Artist.name).where(Artist.id.in_(ids)))
    return {artist_id: name for artist_id, name in rows}


async def known_release_ids(session: AsyncSession, artist_id: str) -> set[str]:
    """Ids of the releases already linked to ``artist_id`` (rows of ``artist_releases``, baseline or not)."""
    rows = await session.scalars(select(ArtistRelease.release_id).where(ArtistRelease.artist_id == artist_id))
    return set(rows.all())


async def upsert_release(session: AsyncSession, album: Any, *, now: dt.datetime) -> bool:
    """Store Spotify album ``album`` (a ``bot.spotify.models.Album``) as a release first seen at ``now``.

    Does nothing when the release already exists (its first-seen time is kept).
    Returns True when a row was inserted.
    """
    values = {
        "id": album.id,
        "name": album.name,
        "album_type": album.album_type,
        "artists": [{"id": a.id, "name": a.name} for a in album.artists],
        "release_date": album.release_date,
        "release_date_precision": album.release_date_precision,
        "total_tracks": album.total_tracks,
        "image_url": album.image_url,
        "first_seen_at": now,
    }
    stmt = _insert_ignore(session, Release, values)
    if stmt is None:  # pragma: no cover
        if await session.get(Release, album.id) is not None:
            return False
        session.add(Release(**values))
        await session.flush()
        return True
    result = await session.execute(stmt)
    return bool(result.rowcount)


async def link_release(
    session: AsyncSession,
    artist_id: str,
    release_id: str,
    *,
    album_group: str,
    now: dt.datetime,
    baseline: bool,
    run_id: int | None = None,
) -> bool:
    """Link ``release_id`` to ``artist_id`` (``artist_releases``), first seen at ``now``.

    Does nothing when the link exists already. Returns True when a row was inserted.
    """
    values = {
        "artist_id": artist_id,
        "release_id": release_id,
        "album_group": album_group,
        "first_seen_at": now,
        "baseline": baseline,
        "run_id": run_id,
    }
    stmt = _insert_ignore(session, ArtistRelease, values)
    if stmt is None:  # pragma: no cover
        if await session.get(ArtistRelease, (artist_id, release_id)) is not None:
            return False
        session.add(ArtistRelease(**values))
        await session.flush()
        return True
    result = await session.execute(stmt)
    return bool(result.rowcount)


async def get_cooldown(session: AsyncSession) -> tuple[dt.datetime | None, str | None]:
    """The persisted Spotify cooldown: ``(cooldown_until UTC or None, reason or None)``."""
    state = await session.get(SpotifyState, SPOTIFY_STATE_ID)
    if state is None:
        return None, None
    return state.cooldown_until, state.cooldown_reason


async def set_cooldown(session: AsyncSession, until: dt.datetime | None, reason: str | None) -> SpotifyState:
    """Persist the Spotify cooldown (``until`` UTC; None clears it) in the single ``spotify_state`` row.

    A later ``until`` is never replaced by an earlier one (two concurrent failures keep the longest).
    """
    state = await session.get(SpotifyState, SPOTIFY_STATE_ID)
    if state is None:
        state = SpotifyState(id=SPOTIFY_STATE_ID, cooldown_until=until, cooldown_reason=reason)
        session.add(state)
    elif until is None or state.cooldown_until is None or until >= state.cooldown_until:
        state.cooldown_until = until
        state.cooldown_reason = reason
    await session.flush()
    return state


async def due_guilds(session: AsyncSession, now: dt.datetime) -> list[Guild]:
    """Guilds whose weekly run is due: ``next_due_at <= now`` (UTC), earliest first."""
    rows = await session.scalars(select(Guild).where(Guild.next_due_at <= now).order_by(Guild.next_due_at, Guild.id))
    return list(rows.all())


async def guilds_by_ids(session: AsyncSession, guild_ids: Sequence[int] | None) -> list[Guild]:
    """The guild rows for ``guild_ids`` (every guild when None), by id; unknown ids are skipped."""
    query = select(Guild).order_by(Guild.id)
    if guild_ids is not None:
        if not guild_ids:
            return []
        query = query.where(Guild.id.in_(list(guild_ids)))
    return list((await session.scalars(query)).all())
