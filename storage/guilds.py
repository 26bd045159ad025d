"""Guilds and follows: the guild rows (schedule, channel, types, filters, publish), who follows whom,
and the one-time channel-problem notice.

Every function takes an open ``AsyncSession`` and never commits: the caller owns the transaction.
Times are timezone-aware UTC. Writes that can meet a concurrent twin (two processes, two guilds,
the same guild twice) are single race-free statements (``INSERT … ON CONFLICT DO NOTHING``,
``UPDATE``/``DELETE`` whose row count says who won) or run under the guild's write lock
(:func:`lock_guild`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import catalog, members
from storage._sql import chunks, escape_like, insert_ignore, insert_ignore_then_get, rowcount
from storage.models import (
    DEFAULT_RELEASE_TYPES,
    Artist,
    BotState,
    Follow,
    Guild,
)
from storage.routes import GuildRoutes, clear_route, guild_routes


async def get_or_create_guild(
    session: AsyncSession,
    guild_id: int,
    *,
    now: dt.datetime,
    next_due_at: dt.datetime,
    schedule_day: int = 4,
    schedule_time: str = "09:00",
    timezone: str = "UTC",
) -> Guild:
    """Return guild ``guild_id``, adding it (not committed) with the given schedule if absent.

    ``schedule_day`` 0=Monday…6=Sunday, ``schedule_time`` local "HH:MM" in IANA
    ``timezone``; ``next_due_at`` (UTC) is when its first weekly run is due (the caller
    computes it from the schedule: ``bot.scheduling.due.next_due``); ``now`` (UTC) is its
    ``created_at``. An existing guild is returned unchanged, also when another session
    inserts it concurrently (``INSERT … ON CONFLICT DO NOTHING``).
    """
    guild = await session.get(Guild, guild_id)
    if guild is not None:
        return guild
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


async def tracked_types(session: AsyncSession, artist_ids: Iterable[str]) -> dict[str, frozenset[str]]:
    """``{artist id: release types}``: the union of ``album_groups`` (the release types they post:
    album, single, ep, compilation, appears_on) of the guilds following each artist.

    A guild whose ``album_groups`` is empty counts with :data:`DEFAULT_RELEASE_TYPES`; an artist no
    guild follows (``release-bot check --artist``) gets an empty set (the caller picks its default).
    Every id given is a key. One query per 900 ids.
    """
    ids = list(dict.fromkeys(artist_ids))
    union: dict[str, set[str]] = {a: set() for a in ids}
    for chunk in chunks(ids, 900):
        rows = await session.execute(
            select(Follow.artist_id, Guild.album_groups)
            .join(Guild, Guild.id == Follow.guild_id)
            .where(Follow.artist_id.in_(chunk))
        )
        for artist_id, types in rows:
            union[artist_id].update(types or DEFAULT_RELEASE_TYPES)
    return {a: frozenset(union[a]) for a in ids}


def channel_notice_key(guild_id: int) -> str:
    """``bot_state`` key remembering that a guild's channel problem was told to a command user."""
    return f"channel_notice:{guild_id}"


async def take_channel_notice(session: AsyncSession, guild_id: int) -> tuple[int | None, str] | None:
    """The guild's ``(channel_id, channel_problem)`` if no command user was told of it yet, marking it told.

    None when there is no problem or it was already told. Race-free: the mark is written with
    ``INSERT … ON CONFLICT DO NOTHING`` or an ``UPDATE … WHERE value <> problem``, and only the
    transaction whose write took effect gets the notice, so two commands finishing at the same
    moment (two processes) tell it once; nothing is raised for the loser. Not committed. A guild
    whose problem is gone has its mark removed.
    """
    guild = await session.get(Guild, guild_id)
    key = channel_notice_key(guild_id)
    told = await session.scalar(select(BotState.value).where(BotState.key == key))
    problem = guild.channel_problem if guild is not None else None
    if guild is None or not problem:
        if told is not None:
            await session.execute(delete(BotState).where(BotState.key == key))
        return None
    if told == problem:
        return None
    if told is None:
        marked = await session.execute(insert_ignore(session, BotState, {"key": key, "value": problem}))
    else:
        marked = await session.execute(
            update(BotState).where(BotState.key == key, BotState.value != problem).values(value=problem)
        )
    if not rowcount(marked):
        return None  # another transaction marked it first: it tells the user
    return guild.channel_id, problem


async def forget_channel_notice(session: AsyncSession, guild_id: int) -> None:
    """Forget that the guild's channel problem was told (a new problem is told again). Not committed."""
    await session.execute(delete(BotState).where(BotState.key == channel_notice_key(guild_id)))


# --- the slash commands: guild settings ------------------------------------------------------


async def lock_guild(session: AsyncSession, guild_id: int) -> Guild:
    """Guild ``guild_id``'s row, write-locked for the rest of the transaction and read after the lock.

    The first statement is a write (``UPDATE guilds SET id = id WHERE id = :g``): on PostgreSQL it
    takes the row lock, on SQLite the database write lock, before anything is read — so a
    read-modify-write of the guild's settings or follows that follows it is atomic across
    processes. The row is then (re)loaded, so what the session held before is not used.
    Raises ``LookupError`` when the guild has no row (create it first).
    """
    result = await session.execute(update(Guild).where(Guild.id == guild_id).values(id=Guild.id))
    guild = await session.get(Guild, guild_id, populate_existing=True) if rowcount(result) else None
    if guild is None:
        raise LookupError(f"guild {guild_id} has no row")
    return guild


async def _update_guild(session: AsyncSession, guild_id: int, values: dict[str, object]) -> None:
    result = await session.execute(update(Guild).where(Guild.id == guild_id).values(**values))
    if not rowcount(result):
        raise LookupError(f"guild {guild_id} has no row")


async def set_channel(session: AsyncSession, guild_id: int, channel_id: int) -> None:
    """Post guild ``guild_id``'s releases to Discord channel ``channel_id``; its channel problem is cleared.

    One ``UPDATE`` (a blind write: concurrent changes of other settings are kept). Raises
    ``LookupError`` when the guild has no row. Not committed.
    """
    await _update_guild(session, guild_id, {"channel_id": channel_id, "channel_problem": None})


async def set_schedule(
    session: AsyncSession, guild_id: int, *, day: int, time: str, timezone: str, next_due_at: dt.datetime
) -> None:
    """Set guild ``guild_id``'s weekly slot: ``day`` 0=Monday…6=Sunday, local ``time`` "HH:MM" in IANA
    ``timezone``, and ``next_due_at`` (UTC) computed from it. One ``UPDATE``; ``LookupError`` when the
    guild has no row. Not committed."""
    await _update_guild(
        session,
        guild_id,
        {"schedule_day": day, "schedule_time": time, "timezone": timezone, "next_due_at": next_due_at},
    )


async def set_release_day(session: AsyncSession, guild_id: int, on: bool) -> None:
    """Turn release-day posting of guild ``guild_id`` on or off (``guilds.release_day``; docs/musicdata.md,
    "Release day"). One ``UPDATE``; ``LookupError`` when the guild has no row. Not committed."""
    await _update_guild(session, guild_id, {"release_day": on})


async def set_album_groups(session: AsyncSession, guild_id: int, album_groups: Sequence[str]) -> None:
    """Store the release types guild ``guild_id`` posts (``guilds.album_groups``: album, single, ep,
    compilation, appears_on).

    One ``UPDATE``; ``LookupError`` when the guild has no row. Not committed. A change that
    depends on the current types locks the guild first (:func:`lock_guild`).
    """
    await _update_guild(session, guild_id, {"album_groups": list(album_groups)})


async def set_filters(session: AsyncSession, guild_id: int, filters: dict[str, Any]) -> None:
    """Store guild ``guild_id``'s ``/settings filters`` (the ``guilds.filters`` JSON: ``{"skip": [kinds],
    "mute_appearances": [artist ids], "block_keywords": [...], "block_patterns": [...],
    "block_artists": [{"id", "name"}]}``, ``bot.delivery.planner.GuildFilters``). One ``UPDATE``;
    ``LookupError`` when the guild has no row. Not committed. Lock the guild first when the new value
    is derived from the old."""
    await _update_guild(session, guild_id, {"filters": filters})


async def set_publish(session: AsyncSession, guild_id: int, publish: bool) -> None:
    """Crosspost (publish) guild ``guild_id``'s posts in announcement channels (``guilds.publish``), or
    stop. One ``UPDATE``; ``LookupError`` when the guild has no row. Not committed."""
    await _update_guild(session, guild_id, {"publish": publish})


async def set_mention_role(session: AsyncSession, guild_id: int, role_id: int | None) -> None:
    """Mention Discord role ``role_id`` in guild ``guild_id``'s posts (None: nobody). One ``UPDATE``;
    ``LookupError`` when the guild has no row. Not committed."""
    await _update_guild(session, guild_id, {"mention_role_id": role_id})


# --- the slash commands: follows --------------------------------------------------------------


@dataclass(frozen=True)
class FollowResult:
    """What :func:`follow_artists` did, each tuple in the order the artists were given (Spotify ids).

    ``followed``: newly followed now; ``already``: followed before; ``over_limit``: refused
    because the guild reached its follow limit; ``count``: the guild's follows afterwards.
    """

    followed: tuple[str, ...]
    already: tuple[str, ...]
    over_limit: tuple[str, ...]
    count: int


async def follow_artists(
    session: AsyncSession,
    guild_id: int,
    artists: Sequence[catalog.ArtistProfile],
    *,
    now: dt.datetime,
    limit: int,
    refresh_profiles: bool,
) -> FollowResult:
    """Make guild ``guild_id`` follow ``artists`` since ``now`` (UTC), never past ``limit`` follows.

    Atomic across processes: the guild row is write-locked first (:func:`lock_guild`), then
    its follows are read and counted, then the artist rows are upserted
    (:func:`storage.catalog.save_artists`; ``refresh_profiles``: also update the name and
    image of known artists) and the follows inserted with ``ON CONFLICT DO NOTHING`` — so two
    commands following at the same instant (two processes, two guilds, the same guild twice)
    neither fail nor exceed the limit. Artists already followed, and those past the limit, are
    reported and left untouched. Raises ``LookupError`` when the guild has no row. Not committed.
    """
    await lock_guild(session, guild_id)
    existing = set(await followed_artist_ids(session, [guild_id]))
    count = len(existing)
    new: list[catalog.ArtistProfile] = []
    already: list[str] = []
    over: list[str] = []
    for artist in artists:
        if artist.id in existing:
            already.append(artist.id)
        elif count >= limit:
            over.append(artist.id)
        else:
            new.append(artist)
            existing.add(artist.id)
            count += 1
    followed: list[str] = []
    if new:
        await catalog.save_artists(session, new, refresh_profiles=refresh_profiles)
        for artist in new:
            values = {"guild_id": guild_id, "artist_id": artist.id, "followed_at": now}
            if rowcount(await session.execute(insert_ignore(session, Follow, values))):
                followed.append(artist.id)
            else:  # followed meanwhile by a writer that did not lock the guild (never the commands)
                already.append(artist.id)
    return FollowResult(tuple(followed), tuple(already), tuple(over), await follow_count(session, guild_id))


async def follow_count(session: AsyncSession, guild_id: int) -> int:
    """How many artists guild ``guild_id`` follows."""
    count = await session.scalar(select(func.count()).select_from(Follow).where(Follow.guild_id == guild_id))
    return int(count or 0)


async def find_followed(
    session: AsyncSession, guild_id: int, *, artist_id: str | None, name: str
) -> tuple[str, str] | None:
    """``(artist id, name)`` of the artist guild ``guild_id`` follows with Spotify id ``artist_id``, or —
    when ``artist_id`` is None — whose name is ``name`` (case-insensitive); None when it follows no such artist."""
    query = (
        select(Artist.id, Artist.name).join(Follow, Follow.artist_id == Artist.id).where(Follow.guild_id == guild_id)
    )
    if artist_id is not None:
        query = query.where(Artist.id == artist_id)
    else:
        query = query.where(func.lower(Artist.name) == name.lower())
    found = (await session.execute(query.limit(1))).first()
    return None if found is None else (found[0], found[1])


async def unfollow(session: AsyncSession, guild_id: int, artist_id: str) -> bool:
    """Guild ``guild_id`` stops following ``artist_id`` (one ``DELETE``), and its members' subscriptions
    to that artist go with it (:func:`storage.members.forget_artist`), and so does its artist route
    (:func:`storage.routes.clear_route`), in the same transaction. True when a
    follow was removed, False when there was none (e.g. another command removed it first). Not committed."""
    result = await session.execute(delete(Follow).where(Follow.guild_id == guild_id, Follow.artist_id == artist_id))
    if not rowcount(result):
        return False
    await members.forget_artist(session, guild_id, artist_id)
    await clear_route(session, guild_id, "artist", artist_id)
    return True


async def followed_choices(session: AsyncSession, guild_id: int, text: str, limit: int) -> list[tuple[str, str]]:
    """``(name, artist id)`` of up to ``limit`` artists guild ``guild_id`` follows whose name contains
    ``text`` (case-insensitive; every followed artist when ``text`` is empty), by name."""
    query = (
        select(Artist.name, Artist.id).join(Follow, Follow.artist_id == Artist.id).where(Follow.guild_id == guild_id)
    )
    if text:
        query = query.where(Artist.name.ilike(f"%{escape_like(text)}%", escape="\\"))
    rows = await session.execute(query.order_by(func.lower(Artist.name)).limit(limit))
    return [(name, artist_id) for name, artist_id in rows]


# --- delivery and scheduling ------------------------------------------------------------------
#
# What the deliverer, the planner and the runner read and write of a guild row.


@dataclass(frozen=True)
class DeliverySettings:
    """What delivery needs of a guild: where to post and what.

    ``channel_id``: the default channel (None: none set); ``channel_problem``: why the last
    post there failed (403/404, None when it did not); ``mention_role_id``: the role the posts
    mention (None: nobody); ``album_groups``: the release types it wants posted (album, single,
    ep, compilation, appears_on; :data:`DEFAULT_RELEASE_TYPES` when unset); ``filters``: the
    ``guilds.filters`` JSON (``{}`` when unset); ``publish``: crosspost posts made in announcement
    channels; ``routes``: release types and artists sent to another channel than ``channel_id``.
    """

    guild_id: int
    channel_id: int | None
    channel_problem: str | None
    mention_role_id: int | None
    album_groups: tuple[str, ...]
    filters: dict[str, Any]
    publish: bool = False
    routes: GuildRoutes = field(default_factory=GuildRoutes)


async def delivery_settings(session: AsyncSession, guild_id: int) -> DeliverySettings | None:
    """Guild ``guild_id``'s :class:`DeliverySettings` (two queries: the guild row, its routes), or None
    for an unknown guild."""
    row = (
        await session.execute(
            select(
                Guild.channel_id,
                Guild.channel_problem,
                Guild.mention_role_id,
                Guild.album_groups,
                Guild.filters,
                Guild.publish,
            ).where(Guild.id == guild_id)
        )
    ).first()
    if row is None:
        return None
    channel_id, problem, role_id, types, filters, publish = row
    return DeliverySettings(
        guild_id=guild_id,
        channel_id=channel_id,
        channel_problem=problem,
        mention_role_id=role_id,
        album_groups=tuple(types) if types else DEFAULT_RELEASE_TYPES,
        filters=dict(filters or {}),
        publish=bool(publish),
        routes=await guild_routes(session, guild_id),
    )


async def set_channel_problem(session: AsyncSession, guild_id: int, reason: str) -> None:
    """Store why posting to the guild's channel failed (``reason``, fit to show an admin).

    A new problem (there was none) also forgets that the last one was told
    (:func:`forget_channel_notice`), so the next command tells this one once.
    """
    new = await session.execute(
        update(Guild).where(Guild.id == guild_id, Guild.channel_problem.is_(None)).values(channel_problem=reason)
    )
    if rowcount(new):
        await forget_channel_notice(session, guild_id)
    else:
        await session.execute(update(Guild).where(Guild.id == guild_id).values(channel_problem=reason))


async def clear_channel_problem(session: AsyncSession, guild_id: int) -> bool:
    """Clear the guild's channel problem after a successful post (and the notice mark with it);
    returns whether there was one."""
    result = await session.execute(
        update(Guild).where(Guild.id == guild_id, Guild.channel_problem.is_not(None)).values(channel_problem=None)
    )
    if not rowcount(result):
        return False
    await forget_channel_notice(session, guild_id)
    return True


async def set_due(session: AsyncSession, guild_id: int, *, next_due_at: dt.datetime, last_run_at: dt.datetime) -> None:
    """Move guild ``guild_id``'s weekly run on: due next at ``next_due_at``, last run at ``last_run_at`` (UTC)."""
    await session.execute(
        update(Guild).where(Guild.id == guild_id).values(next_due_at=next_due_at, last_run_at=last_run_at)
    )


# --- retrying a delivery Discord failed ---------------------------------------------------------


@dataclass(frozen=True)
class DeliveryRetry:
    """A guild's posts waiting for a retry after Discord failed them: ``retry_at`` (UTC, when the due
    scan tries again; None: nothing waits), ``failures`` (failed deliveries in a row), ``error`` (what
    Discord answered last, fit to show an admin)."""

    retry_at: dt.datetime | None
    failures: int
    error: str | None


async def record_delivery_failure(session: AsyncSession, guild_id: int, *, error: str) -> int:
    """Count one more failed delivery of guild ``guild_id`` and store ``error`` (cut to 300 characters);
    returns the failures in a row now (1 after the first). The caller then sets the retry time
    (:func:`set_delivery_retry`) from it, in the same transaction. One ``UPDATE … RETURNING`` (the row
    stays write-locked until the transaction ends); 0 for an unknown guild."""
    result = await session.execute(
        update(Guild)
        .where(Guild.id == guild_id)
        .values(delivery_failures=Guild.delivery_failures + 1, last_delivery_error=error[:300])
        .returning(Guild.delivery_failures)
    )
    failures = result.scalar_one_or_none()
    return int(failures or 0)


async def set_delivery_retry(session: AsyncSession, guild_id: int, retry_at: dt.datetime) -> None:
    """Have the due scan try guild ``guild_id``'s pending posts again at ``retry_at`` (UTC)."""
    await session.execute(update(Guild).where(Guild.id == guild_id).values(delivery_retry_at=retry_at))


async def clear_delivery_retry(session: AsyncSession, guild_id: int) -> bool:
    """After a delivery Discord did not fail: nothing waits for a retry any more (failures back to 0,
    the error forgotten); returns whether something was waiting."""
    waiting = (Guild.delivery_retry_at.is_not(None)) | (Guild.delivery_failures != 0)
    result = await session.execute(
        update(Guild)
        .where(Guild.id == guild_id, waiting)
        .values(delivery_retry_at=None, delivery_failures=0, last_delivery_error=None)
    )
    return bool(rowcount(result))


async def delivery_retry(session: AsyncSession, guild_id: int) -> DeliveryRetry | None:
    """Guild ``guild_id``'s :class:`DeliveryRetry`, or None for an unknown guild."""
    row = (
        await session.execute(
            select(Guild.delivery_retry_at, Guild.delivery_failures, Guild.last_delivery_error).where(
                Guild.id == guild_id
            )
        )
    ).first()
    if row is None:
        return None
    retry_at, failures, error = row
    return DeliveryRetry(retry_at, int(failures or 0), error)


async def retry_due_guilds(session: AsyncSession, now: dt.datetime) -> list[int]:
    """Ids of the guilds whose failed posts are due for a retry at ``now`` (``delivery_retry_at <=
    now``) and whose weekly run is not due (that run delivers anyway), earliest first."""
    rows = await session.scalars(
        select(Guild.id)
        .where(Guild.delivery_retry_at <= now, Guild.next_due_at > now)
        .order_by(Guild.delivery_retry_at, Guild.id)
    )
    return list(rows.all())
