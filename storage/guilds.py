"""Guilds and follows: the guild rows (schedule, channel, types, filters), who follows whom,
and the one-time channel-problem notice.

Every function takes an open ``AsyncSession`` and never commits: the caller owns the transaction.
Times are timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage._sql import chunks, insert_ignore_then_get
from storage.models import (
    BotState,
    Follow,
    Guild,
)


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
    after ``now`` (``bot.scheduling.due.next_due``). An existing guild is returned unchanged,
    also when another session inserts it concurrently (``INSERT … ON CONFLICT DO NOTHING``).
    """
    guild = await session.get(Guild, guild_id)
    if guild is not None:
        return guild
    if next_due_at is None:
        from bot.scheduling.due import (
            next_due,  # pure stdlib helper; imported late to keep storage standalone
        )

        next_due_at = next_due(schedule_day, schedule_time, timezone, now)
    values = {
        "id": guild_id,
        "schedule_day": schedule_day,
        "schedule_time": schedule_time,
        "timezone": timezone,
        "next_due_at": next_due_at,
        "created_at": now,
    }
    return await insert_ignore_then_get(session, Guild, values, guild_id)


async def follow_artist(session: AsyncSession, guild_id: int, artist_id: str, *, now: dt.datetime) -> Follow:
    """Make guild ``guild_id`` follow artist ``artist_id`` since ``now`` (not committed).

    Idempotent: an existing follow keeps its original ``followed_at``, also when another
    session inserts it concurrently. The guild and artist rows must exist (foreign keys;
    ``sqlalchemy.exc.IntegrityError`` otherwise).
    """
    follow = await session.get(Follow, (guild_id, artist_id))
    if follow is None:
        follow = await insert_ignore_then_get(
            session, Follow, {"guild_id": guild_id, "artist_id": artist_id, "followed_at": now}, (guild_id, artist_id)
        )
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


DEFAULT_ALBUM_GROUPS = ("album", "single", "compilation")


_GROUP_ORDER = ("album", "single", "compilation", "appears_on")


async def tracked_groups(session: AsyncSession, artist_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """``{artist id: album groups to track}``: the union of ``album_groups`` of the guilds following it.

    In API order (album, single, compilation, appears_on). An artist no guild follows
    (``release-bot check --artist``) gets the default (album, single, compilation).
    One query for all ids.
    """
    ids = list(dict.fromkeys(artist_ids))
    union: dict[str, set[str]] = {a: set() for a in ids}
    for chunk in chunks(ids, 900):
        rows = await session.execute(
            select(Follow.artist_id, Guild.album_groups)
            .join(Guild, Guild.id == Follow.guild_id)
            .where(Follow.artist_id.in_(chunk))
        )
        for artist_id, groups in rows:
            union[artist_id].update(groups or DEFAULT_ALBUM_GROUPS)
    return {a: tuple(g for g in _GROUP_ORDER if g in (union[a] or set(DEFAULT_ALBUM_GROUPS))) for a in ids}


def channel_notice_key(guild_id: int) -> str:
    """``bot_state`` key remembering that a guild's channel problem was told to a command user."""
    return f"channel_notice:{guild_id}"


async def take_channel_notice(session: AsyncSession, guild_id: int) -> tuple[int | None, str] | None:
    """The guild's ``(channel_id, channel_problem)`` if no command user was told of it yet, marking it told.

    None when there is no problem or it was already told. Not committed: commit to mark it
    (a concurrent second commit fails on the key, so the notice is given once). A guild
    whose problem is gone has its mark removed.
    """
    guild = await session.get(Guild, guild_id)
    row = await session.get(BotState, channel_notice_key(guild_id))
    problem = guild.channel_problem if guild is not None else None
    if not problem:
        if row is not None:
            await session.delete(row)
        return None
    if row is not None and row.value == problem:
        return None
    if row is None:
        session.add(BotState(key=channel_notice_key(guild_id), value=problem))
    else:
        row.value = problem
    return guild.channel_id, problem


async def forget_channel_notice(session: AsyncSession, guild_id: int) -> None:
    """Forget that the guild's channel problem was told (a new problem is told again). Not committed."""
    await session.execute(delete(BotState).where(BotState.key == channel_notice_key(guild_id)))
