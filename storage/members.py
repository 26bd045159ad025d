"""Members' subscriptions: which member of a guild wants to hear of which artist, and how
(``mention`` in the post, or a ``dm``).

Every function takes an open ``AsyncSession`` and never commits: the caller owns the transaction.
Everything is scoped to one guild except what Discord reports about a user as a whole (their DMs
closed, the user unknown), which concerns every guild they are a member of.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage._sql import chunks, rowcount
from storage.models import Member, Subscription

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
