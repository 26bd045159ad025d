"""The mention follow-up ledger (``mention_posts``): the messages that carry the mentions a post could
not hold (Discord: content ≤ 2,000 characters, ≤ 100 user ids in ``allowed_mentions``), each posted once.

A post's follow-ups are keyed by ``(guild, post_key, part)`` (unique): ``post_key`` is the id of the
post's first main release (a release is posted once per guild, so it names one post), ``part`` 1, 2, …
in order. Their life:

* ``waiting`` — written with the post's ledger claim (:func:`add_parts`, same transaction), content
  and user ids included, ``channel_id`` the post's channel (a forum's id for a forum post). The post
  is not confirmed yet: if it turns out never to have been sent its follow-ups are dropped with its
  claim (:func:`drop_waiting`), and a later post makes them again.
* ``pending`` — the post is confirmed (:func:`release_parts`; a forum post's follow-ups move to its
  thread): to send.
* ``claimed`` — taken by ``owner`` to send (:func:`claim_part`: one conditional ``UPDATE``, so two
  processes never both take it).
* ``sent`` — confirmed with the Discord ``message_id``.
* ``gone`` — its channel (or the post's thread) was deleted before it could be sent: nobody can
  read it there any more (:func:`drop_part`).

A ``claimed`` row a dead process left is settled from the channel: the exact ``content`` among the
bot's recent messages there → ``sent``; absent → ``pending`` again (:func:`unclaim_part`). Posts about
the same artists have word-for-word the same follow-ups, so a message already recorded for another
follow-up (:func:`sent_message_ids`) never settles this one.

Every function takes an open ``AsyncSession`` and never commits: the caller owns the transaction.
Times are timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage._sql import rowcount
from storage.leases import dead_owner
from storage.models import MentionPost


class PartConflict(Exception):
    """:func:`add_parts` met an existing row of the same (guild, post_key, part). The transaction is
    then unusable: let the error end it."""


@dataclass(frozen=True)
class Part:
    """One follow-up message: ``part`` (1, 2, …), its ``content`` (the mentions) and the ``user_ids`` it
    may ping (its ``allowed_mentions``)."""

    part: int
    content: str
    user_ids: tuple[int, ...]


async def add_parts(
    session: AsyncSession,
    guild_id: int,
    post_key: str,
    channel_id: int,
    parts: Sequence[Part],
    *,
    now: dt.datetime,
    owner: str | None,
) -> None:
    """Write a post's follow-ups as ``waiting`` (with the post's claim, in its transaction).

    ``channel_id``: the post's channel (the forum for a forum post; :func:`release_parts` moves them
    to the thread). Raises :class:`PartConflict` when one exists already.
    """
    session.add_all(
        MentionPost(
            guild_id=guild_id,
            post_key=post_key,
            part=p.part,
            channel_id=channel_id,
            content=p.content,
            user_ids=list(p.user_ids),
            status="waiting",
            owner=owner,
            claimed_at=now,
        )
        for p in parts
    )
    try:
        await session.flush()
    except IntegrityError as exc:
        raise PartConflict(str(exc.orig)) from exc


async def release_parts(
    session: AsyncSession, guild_id: int, posts: Mapping[str, int | None], *, now: dt.datetime
) -> int:
    """The posts ``posts`` (``{post_key: thread id or None}``) are confirmed: their ``waiting`` follow-ups
    become ``pending`` (to send), moved into the post's thread when a thread id is given. Returns how
    many rows changed."""
    changed = 0
    for post_key, thread_id in posts.items():
        values: dict[str, object] = {"status": "pending", "claimed_at": now, "owner": None}
        if thread_id is not None:
            values["channel_id"] = thread_id
        result = await session.execute(
            update(MentionPost)
            .where(MentionPost.guild_id == guild_id, MentionPost.post_key == post_key, MentionPost.status == "waiting")
            .values(**values)
        )
        changed += rowcount(result)
    return changed


async def drop_waiting(session: AsyncSession, guild_id: int, post_keys: Collection[str]) -> int:
    """The posts ``post_keys`` were never sent (their claims were released): delete their ``waiting``
    follow-ups (a later post writes them again). Returns how many rows went."""
    if not post_keys:
        return 0
    result = await session.execute(
        delete(MentionPost).where(
            MentionPost.guild_id == guild_id,
            MentionPost.post_key.in_(list(post_keys)),
            MentionPost.status == "waiting",
        )
    )
    return rowcount(result)


async def pending_parts(session: AsyncSession, guild_id: int) -> list[MentionPost]:
    """The guild's follow-ups to send (``pending``), in the order they were written (post, then part)."""
    rows = await session.scalars(
        select(MentionPost)
        .where(MentionPost.guild_id == guild_id, MentionPost.status == "pending")
        .order_by(MentionPost.id)
    )
    return list(rows.all())


async def claim_part(session: AsyncSession, part_id: int, *, owner: str | None, now: dt.datetime) -> bool:
    """Take follow-up ``part_id`` to send it (``pending`` → ``claimed`` by ``owner`` at ``now``); False
    when another caller took it first (one conditional ``UPDATE``)."""
    result = await session.execute(
        update(MentionPost)
        .where(MentionPost.id == part_id, MentionPost.status == "pending")
        .values(status="claimed", owner=owner, claimed_at=now)
    )
    return rowcount(result) > 0


async def confirm_part(session: AsyncSession, part_id: int, *, message_id: int, now: dt.datetime) -> bool:
    """Follow-up ``part_id`` is in Discord message ``message_id``: ``claimed`` → ``sent``. False when
    it was not claimed any more (settled elsewhere)."""
    result = await session.execute(
        update(MentionPost)
        .where(MentionPost.id == part_id, MentionPost.status == "claimed")
        .values(status="sent", message_id=message_id, sent_at=now)
    )
    return rowcount(result) > 0


async def sent_message_ids(session: AsyncSession, channel_id: int, content: str) -> set[int]:
    """The Discord message ids of the ``sent`` follow-ups in channel (or thread) ``channel_id`` whose
    content is exactly ``content``: those messages are taken, and cannot settle another follow-up."""
    rows = await session.scalars(
        select(MentionPost.message_id).where(
            MentionPost.channel_id == channel_id,
            MentionPost.status == "sent",
            MentionPost.content == content,
            MentionPost.message_id.is_not(None),
        )
    )
    return {int(mid) for mid in rows.all() if mid is not None}


async def drop_part(session: AsyncSession, part_id: int) -> bool:
    """Follow-up ``part_id`` cannot be sent: its channel or thread is gone (``claimed`` → ``gone``)."""
    result = await session.execute(
        update(MentionPost).where(MentionPost.id == part_id, MentionPost.status == "claimed").values(status="gone")
    )
    return rowcount(result) > 0


async def unclaim_part(session: AsyncSession, part_id: int) -> bool:
    """Follow-up ``part_id`` was not sent: ``claimed`` → ``pending`` (sent by a later delivery)."""
    result = await session.execute(
        update(MentionPost)
        .where(MentionPost.id == part_id, MentionPost.status == "claimed")
        .values(status="pending", owner=None)
    )
    return rowcount(result) > 0


async def claimed_parts(
    session: AsyncSession, *, live: Collection[str] | None, guild_ids: Collection[int] | None = None
) -> list[MentionPost]:
    """``claimed`` follow-ups that may or may not have been sent (of ``guild_ids``, every guild when
    None), in order. ``live``: owner ids of the live processes: only rows whose owner is none of them
    (a dead process's, or without an owner); None: every claimed row."""
    query = select(MentionPost).where(MentionPost.status == "claimed").order_by(MentionPost.id)
    if live is not None:
        query = query.where(dead_owner(MentionPost.owner, set(live)))
    if guild_ids is not None:
        query = query.where(MentionPost.guild_id.in_(list(guild_ids)))
    return list((await session.scalars(query)).all())
