"""Members' subscriptions: which member of a guild wants to hear of which artist, and how
(``mention`` in the post, or a ``dm``).

Every function takes an open ``AsyncSession`` and never commits: the caller owns the transaction.
Everything is scoped to one guild except what Discord reports about a user as a whole (their DMs
closed, the user unknown), which concerns every guild they are a member of.

A member subscribes only to an artist their guild follows (:func:`subscribe` checks it under a
lock), and an unfollow removes the guild's subscriptions to that artist in the same transaction
(:func:`forget_artist`, called by ``storage.guilds.unfollow``): so every subscription names an
artist the guild follows, and following the artist again starts with none. Writes a concurrent
twin can meet (two clicks at once, two bot processes) are race-free: a member's subscriptions
change under their ``members`` row's write lock (:func:`subscribe`), removals are one ``DELETE``
whose row count says who won, and the closed-DMs notice is taken by one conditional ``UPDATE``
(:func:`take_dm_notice`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage._sql import chunks, escape_like, insert_ignore, insert_or_update, rowcount
from storage.models import Artist, Follow, Member, Subscription

MODES = ("mention", "dm")


@dataclass(frozen=True)
class Subscriber:
    """A member to notify: ``user_id`` (Discord snowflake) and ``mode`` (``mention`` or ``dm``)."""

    user_id: int
    mode: str


async def subscribers(session: AsyncSession, guild_id: int, artist_ids: Iterable[str]) -> dict[str, list[Subscriber]]:
    """``{artist id: [Subscriber, …]}`` of guild ``guild_id`` for each of ``artist_ids`` that has
    any, members in ascending user id order. A member without a ``members`` row is ``mention``."""
    ids = list(dict.fromkeys(artist_ids))
    out: dict[str, list[Subscriber]] = {}
    for chunk in chunks(ids, 900):
        rows = await session.execute(
            select(Subscription.artist_id, Subscription.user_id, Member.mode)
            .outerjoin(Member, (Member.guild_id == Subscription.guild_id) & (Member.user_id == Subscription.user_id))
            .where(Subscription.guild_id == guild_id, Subscription.artist_id.in_(chunk))
            .order_by(Subscription.artist_id, Subscription.user_id)
        )
        for artist_id, user_id, mode in rows:
            out.setdefault(artist_id, []).append(Subscriber(user_id, mode or "mention"))
    return out


async def mark_dms_closed(session: AsyncSession, user_id: int, *, now: dt.datetime) -> int:
    """Discord refused a direct message to ``user_id`` (error 50007): every guild membership of
    theirs in ``dm`` mode switches to ``mention`` and owes them a private notice. Returns how many
    memberships were switched (0 when none was in ``dm`` mode any more)."""
    result = await session.execute(
        update(Member)
        .where(Member.user_id == user_id, Member.mode == "dm")
        .values(mode="mention", dm_closed_at=now, dm_notice_pending=True)
    )
    return rowcount(result)


async def forget_member(session: AsyncSession, guild_id: int, user_id: int) -> int:
    """The member left guild ``guild_id`` (Discord: Unknown Member): their subscriptions and
    preferences there are removed. Returns how many subscriptions were removed."""
    result = await session.execute(
        delete(Subscription).where(Subscription.guild_id == guild_id, Subscription.user_id == user_id)
    )
    await session.execute(delete(Member).where(Member.guild_id == guild_id, Member.user_id == user_id))
    return rowcount(result)


async def forget_user(session: AsyncSession, user_id: int) -> int:
    """The user no longer exists (Discord: Unknown User): their subscriptions and preferences in
    every guild are removed. Returns how many subscriptions were removed."""
    result = await session.execute(delete(Subscription).where(Subscription.user_id == user_id))
    await session.execute(delete(Member).where(Member.user_id == user_id))
    return rowcount(result)


# --- a member's own subscriptions (the /notify commands and the Notify me buttons) ------------


@dataclass(frozen=True)
class MemberSettings:
    """How member ``user_id`` of a guild is notified: ``mode`` (``mention`` or ``dm``; ``mention``
    without a ``members`` row) and ``dm_closed_at`` (aware UTC: when Discord last refused them a
    DM, error 50007; None if never)."""

    mode: str
    dm_closed_at: dt.datetime | None


@dataclass(frozen=True)
class SubscribeResult:
    """What :func:`subscribe` did.

    ``status``: ``"added"`` (subscribed now), ``"already"`` (subscribed before), ``"limit"``
    (refused: the member has ``count`` subscriptions in the guild, the most allowed) or
    ``"not_followed"`` (refused: the guild does not follow the artist). ``count``: the member's
    subscriptions in the guild afterwards; ``mode``: how they are notified there.
    """

    status: str
    count: int
    mode: str


async def _lock_member(session: AsyncSession, guild_id: int, user_id: int) -> Member:
    """Member ``user_id`` of guild ``guild_id``'s row (added in ``mention`` mode if absent),
    write-locked for the rest of the transaction and read after the lock.

    The first statements are writes (``INSERT … ON CONFLICT DO NOTHING``, then ``UPDATE members SET
    user_id = user_id``): on PostgreSQL they take the row lock (a concurrent insert of the same new
    row waits for this one), on SQLite the database write lock, before anything is read. The guild
    row must exist (foreign key)."""
    await session.execute(insert_ignore(session, Member, {"guild_id": guild_id, "user_id": user_id}))
    await session.execute(
        update(Member).where(Member.guild_id == guild_id, Member.user_id == user_id).values(user_id=Member.user_id)
    )
    member = await session.get(Member, (guild_id, user_id), populate_existing=True)
    if member is None:
        raise LookupError(f"member {user_id} of guild {guild_id} vanished after its insert")
    return member


async def subscription_count(session: AsyncSession, guild_id: int, user_id: int) -> int:
    """How many artists member ``user_id`` is subscribed to in guild ``guild_id``."""
    count = await session.scalar(
        select(func.count())
        .select_from(Subscription)
        .where(Subscription.guild_id == guild_id, Subscription.user_id == user_id)
    )
    return int(count or 0)


async def subscribe(
    session: AsyncSession, guild_id: int, user_id: int, artist_id: str, *, now: dt.datetime, limit: int
) -> SubscribeResult:
    """Subscribe member ``user_id`` of guild ``guild_id`` to artist ``artist_id`` since ``now`` (UTC),
    never past ``limit`` subscriptions of theirs in the guild, and only when the guild follows the artist.

    Race-free: the member's row is write-locked first (:func:`_lock_member`), then the guild's
    follow of the artist is read under a share lock (``FOR KEY SHARE`` on PostgreSQL: an unfollow
    committing meanwhile waits for this transaction, then removes what it added; an unfollow that
    committed first is seen and the subscription refused), then the member's subscriptions are
    counted and the subscription inserted (``ON CONFLICT DO NOTHING``). So two clicks at the same
    instant (two processes) give one subscription and one ``"already"``, never an error, and the
    limit holds exactly. A refusal writes nothing but the member's ``members`` row (``mention``
    mode; the caller may roll back). The guild row must exist (foreign key). Not committed.
    """
    member = await _lock_member(session, guild_id, user_id)
    followed = await session.scalar(
        select(Follow.artist_id)
        .where(Follow.guild_id == guild_id, Follow.artist_id == artist_id)
        .with_for_update(read=True, key_share=True)
    )
    count = await subscription_count(session, guild_id, user_id)
    if followed is None:
        return SubscribeResult("not_followed", count, member.mode)
    exists = await session.scalar(
        select(Subscription.artist_id).where(
            Subscription.guild_id == guild_id, Subscription.user_id == user_id, Subscription.artist_id == artist_id
        )
    )
    if exists is not None:
        return SubscribeResult("already", count, member.mode)
    if count >= limit:
        return SubscribeResult("limit", count, member.mode)
    values = {"guild_id": guild_id, "user_id": user_id, "artist_id": artist_id, "created_at": now}
    added = rowcount(await session.execute(insert_ignore(session, Subscription, values)))
    return SubscribeResult("added" if added else "already", count + added, member.mode)


async def unsubscribe(session: AsyncSession, guild_id: int, user_id: int, artist_id: str) -> bool:
    """Member ``user_id`` of guild ``guild_id`` stops hearing of ``artist_id`` (one ``DELETE``). True
    when a subscription was removed, False when there was none (e.g. another click removed it first).
    Not committed."""
    result = await session.execute(
        delete(Subscription).where(
            Subscription.guild_id == guild_id, Subscription.user_id == user_id, Subscription.artist_id == artist_id
        )
    )
    return rowcount(result) > 0


def _member_subscriptions(guild_id: int, user_id: int) -> Select[str, str]:
    """``SELECT artist name (the id when the artist row is missing), artist id`` of the member's
    subscriptions in the guild."""
    name = func.coalesce(Artist.name, Subscription.artist_id)
    return (
        select(name.label("name"), Subscription.artist_id)
        .outerjoin(Artist, Artist.id == Subscription.artist_id)
        .where(Subscription.guild_id == guild_id, Subscription.user_id == user_id)
    )


async def member_subscriptions(session: AsyncSession, guild_id: int, user_id: int) -> list[tuple[str, str]]:
    """``(artist id, name)`` of every artist member ``user_id`` is subscribed to in guild ``guild_id``,
    by name (case-insensitive); nothing of another guild."""
    query = _member_subscriptions(guild_id, user_id)
    rows = await session.execute(query.order_by(func.lower(query.selected_columns.name), Subscription.artist_id))
    return [(artist_id, name) for name, artist_id in rows]


async def find_subscription(
    session: AsyncSession, guild_id: int, user_id: int, *, artist_id: str | None, name: str
) -> tuple[str, str] | None:
    """``(artist id, name)`` of member ``user_id``'s subscription in guild ``guild_id`` to the artist with
    Spotify id ``artist_id``, or — when ``artist_id`` is None — whose name is ``name`` (case-insensitive);
    None when they have no such subscription."""
    query = _member_subscriptions(guild_id, user_id)
    if artist_id is not None:
        query = query.where(Subscription.artist_id == artist_id)
    else:
        query = query.where(func.lower(Artist.name) == name.lower())
    found = (await session.execute(query.limit(1))).first()
    return None if found is None else (found[1], found[0])


async def subscription_choices(
    session: AsyncSession, guild_id: int, user_id: int, text: str, limit: int
) -> list[tuple[str, str]]:
    """``(name, artist id)`` of up to ``limit`` of member ``user_id``'s subscriptions in guild ``guild_id``
    whose artist name contains ``text`` (case-insensitive; all of them when ``text`` is empty), by name."""
    query = _member_subscriptions(guild_id, user_id)
    if text:
        query = query.where(Artist.name.ilike(f"%{escape_like(text)}%", escape="\\"))
    rows = await session.execute(
        query.order_by(func.lower(query.selected_columns.name), Subscription.artist_id).limit(limit)
    )
    return [(name, artist_id) for name, artist_id in rows]


async def member_settings(session: AsyncSession, guild_id: int, user_id: int) -> MemberSettings:
    """Member ``user_id`` of guild ``guild_id``'s :class:`MemberSettings` (``mention`` when they have no row)."""
    row = (
        await session.execute(
            select(Member.mode, Member.dm_closed_at).where(Member.guild_id == guild_id, Member.user_id == user_id)
        )
    ).first()
    return MemberSettings("mention", None) if row is None else MemberSettings(row[0], row[1])


async def set_mode(session: AsyncSession, guild_id: int, user_id: int, mode: str) -> None:
    """Notify member ``user_id`` of guild ``guild_id`` by ``mode`` (``mention`` or ``dm``) from now on.

    One ``INSERT … ON CONFLICT DO UPDATE`` (the last writer wins). A closed-DMs notice still owed
    to them in this guild is dropped: they chose a mode since. Raises ``ValueError`` for another
    mode. The guild row must exist (foreign key). Not committed."""
    if mode not in MODES:
        raise ValueError(f"unknown notification mode {mode!r}")
    await session.execute(
        insert_or_update(
            session,
            Member,
            {"guild_id": guild_id, "user_id": user_id, "mode": mode, "dm_notice_pending": False},
            keys=("guild_id", "user_id"),
            update=("mode", "dm_notice_pending"),
        )
    )


async def dm_notice_pending(session: AsyncSession, guild_id: int, user_id: int) -> bool:
    """Whether member ``user_id`` of guild ``guild_id`` is owed the closed-DMs notice (a read only:
    :func:`take_dm_notice` decides who tells it)."""
    pending = await session.scalar(
        select(Member.dm_notice_pending).where(Member.guild_id == guild_id, Member.user_id == user_id)
    )
    return bool(pending)


async def take_dm_notice(session: AsyncSession, guild_id: int, user_id: int) -> bool:
    """Mark the closed-DMs notice owed to member ``user_id`` of guild ``guild_id`` as told; True when it
    was owed. One conditional ``UPDATE … WHERE dm_notice_pending``: of two commands finishing at the
    same instant (two processes) only the one whose update took effect gets True. Not committed."""
    result = await session.execute(
        update(Member)
        .where(Member.guild_id == guild_id, Member.user_id == user_id, Member.dm_notice_pending.is_(True))
        .values(dm_notice_pending=False)
    )
    return rowcount(result) > 0


async def restore_dm_notice(session: AsyncSession, guild_id: int, user_id: int) -> None:
    """The closed-DMs notice taken by :func:`take_dm_notice` could not be delivered: owe it again, as
    long as the member is still in ``mention`` mode after a refused DM (not when they switched back to
    ``dm`` meanwhile). Not committed."""
    await session.execute(
        update(Member)
        .where(
            Member.guild_id == guild_id,
            Member.user_id == user_id,
            Member.mode == "mention",
            Member.dm_closed_at.is_not(None),
        )
        .values(dm_notice_pending=True)
    )


async def forget_artist(session: AsyncSession, guild_id: int, artist_id: str) -> int:
    """Guild ``guild_id`` stopped following ``artist_id``: every member's subscription to it there is
    removed (one ``DELETE``; other guilds keep theirs). Returns how many were removed. Not committed."""
    result = await session.execute(
        delete(Subscription).where(Subscription.guild_id == guild_id, Subscription.artist_id == artist_id)
    )
    return rowcount(result)
