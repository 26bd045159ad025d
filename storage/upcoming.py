"""Announced releases (docs/musicdata.md, "Announcements"): ``guilds.upcoming`` and the announcement ledger
``upcoming_posts``, one row per (guild, MusicBrainz release group).

A row's life: ``claimed`` (:func:`claim`: ``INSERT … ON CONFLICT DO NOTHING``, with the ``content`` the
message will carry, the channel, the ``owner`` and ``claimed_at``) → ``posted`` (:func:`confirm`, with the
Discord ``message_id`` and, for a forum post, its ``thread_id``) — or deleted again (:func:`unclaim`) when
the message was never made. ``skipped`` (:func:`record_skipped`): the guild's types or filters leave the
release group out, for good. ``shown_date`` / ``shown_state`` are what the posted message says now; an edit
is taken by one conditional ``UPDATE`` (:func:`mark_shown`), so two processes never both make it.

Every function takes an open ``AsyncSession`` and never commits: the caller owns the transaction.
Times are aware UTC datetimes; release dates are calendar days (``datetime.date``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage._sql import chunks, insert_ignore, insert_many_ignore, rowcount
from storage.models import (
    Follow,
    Guild,
    MusicBrainzReleaseGroup,
    MusicBrainzReleaseGroupArtist,
    UpcomingPost,
)

CHUNK = 500
"""Ids per statement (bound parameter lists stay far under SQLite's and asyncpg's limits)."""

SHOWN_STATES = ("announced", "postponed", "gone")
"""What a posted announcement says: the date it was announced for, a new date, or that it is gone."""


# --- guilds.upcoming -------------------------------------------------------------------------------


async def set_upcoming(session: AsyncSession, guild_id: int, enabled: bool) -> None:
    """Post announced releases in guild ``guild_id`` (``guilds.upcoming``), or stop. One ``UPDATE``;
    ``LookupError`` when the guild has no row. Not committed."""
    result = await session.execute(update(Guild).where(Guild.id == guild_id).values(upcoming=enabled))
    if not rowcount(result):
        raise LookupError(f"guild {guild_id} has no row")


async def upcoming_enabled(session: AsyncSession, guild_id: int) -> bool:
    """Whether guild ``guild_id`` posts announced releases (False for an unknown guild)."""
    return bool(await session.scalar(select(Guild.upcoming).where(Guild.id == guild_id)))


async def upcoming_guilds(session: AsyncSession) -> list[int]:
    """The ids of the guilds that post announced releases, ascending."""
    return list((await session.scalars(select(Guild.id).where(Guild.upcoming.is_(True)).order_by(Guild.id))).all())


# --- release groups as a guild sees them -----------------------------------------------------------


@dataclass(frozen=True)
class AnnouncedGroup:
    """A stored MusicBrainz release group of artists a guild follows (see ``MusicBrainzReleaseGroup``).

    ``spotify_ids``: the guild's followed Spotify artists it is by (sorted); ``date_changes``: every date
    change seen (``{"from", "to", "at"}``); ``gone``: it left the listing (``gone_at`` set).
    """

    mbid: str
    title: str
    artist_credit_name: str
    primary_type: str | None
    secondary_types: tuple[str, ...]
    release_date: dt.date
    first_seen_at: dt.datetime
    date_changes: tuple[dict[str, str], ...]
    gone: bool
    spotify_release_id: str | None
    caa_id: int | None
    caa_release_mbid: str | None
    spotify_ids: tuple[str, ...]

    @property
    def first_date(self) -> dt.date:
        """The date the group had when it was first seen (before any change)."""
        if self.date_changes:
            return dt.date.fromisoformat(self.date_changes[0]["from"])
        return self.release_date

    @property
    def announced_ahead(self) -> bool:
        """First seen (UTC day) before the date it had then: MusicBrainz announced it ahead."""
        return self.first_seen_at.date() < self.first_date


def _followed_by(guild_id: int) -> ColumnElement[bool]:
    """The release group is by an artist guild ``guild_id`` follows."""
    return exists(
        select(MusicBrainzReleaseGroupArtist.spotify_id)
        .join(Follow, Follow.artist_id == MusicBrainzReleaseGroupArtist.spotify_id)
        .where(
            MusicBrainzReleaseGroupArtist.release_group_mbid == MusicBrainzReleaseGroup.mbid,
            Follow.guild_id == guild_id,
        )
    )


async def _with_artists(
    session: AsyncSession, guild_id: int, groups: Sequence[MusicBrainzReleaseGroup]
) -> list[AnnouncedGroup]:
    artists: dict[str, list[str]] = {}
    for chunk in chunks([g.mbid for g in groups], CHUNK):
        rows = await session.execute(
            select(MusicBrainzReleaseGroupArtist.release_group_mbid, MusicBrainzReleaseGroupArtist.spotify_id)
            .join(Follow, Follow.artist_id == MusicBrainzReleaseGroupArtist.spotify_id)
            .where(MusicBrainzReleaseGroupArtist.release_group_mbid.in_(chunk), Follow.guild_id == guild_id)
            .order_by(MusicBrainzReleaseGroupArtist.spotify_id)
        )
        for mbid, spotify_id in rows.all():
            artists.setdefault(mbid, []).append(spotify_id)
    return [
        AnnouncedGroup(
            mbid=g.mbid,
            title=g.title,
            artist_credit_name=g.artist_credit_name,
            primary_type=g.primary_type,
            secondary_types=tuple(g.secondary_types or ()),
            release_date=g.release_date,
            first_seen_at=g.first_seen_at,
            date_changes=tuple(g.date_changes or ()),
            gone=g.gone_at is not None,
            spotify_release_id=g.spotify_release_id,
            caa_id=g.caa_id,
            caa_release_mbid=g.caa_release_mbid,
            spotify_ids=tuple(artists.get(g.mbid, ())),
        )
        for g in groups
    ]


async def guild_groups(
    session: AsyncSession, guild_id: int, *, since: dt.date, include_gone: bool = True, limit: int | None = None
) -> list[AnnouncedGroup]:
    """The stored release groups by artists guild ``guild_id`` follows, dated ``since`` or later (gone ones
    too unless ``include_gone`` is False), by date then title; at most ``limit`` (None: all)."""
    conditions = [MusicBrainzReleaseGroup.release_date >= since, _followed_by(guild_id)]
    if not include_gone:
        conditions.append(MusicBrainzReleaseGroup.gone_at.is_(None))
    stmt = (
        select(MusicBrainzReleaseGroup)
        .where(*conditions)
        .order_by(MusicBrainzReleaseGroup.release_date, MusicBrainzReleaseGroup.title, MusicBrainzReleaseGroup.mbid)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return await _with_artists(session, guild_id, list((await session.scalars(stmt)).all()))


async def count_guild_groups(session: AsyncSession, guild_id: int, *, since: dt.date) -> int:
    """How many release groups :func:`guild_groups` lists for ``since`` (gone ones included)."""
    stmt = select(func.count(MusicBrainzReleaseGroup.mbid)).where(
        MusicBrainzReleaseGroup.release_date >= since, _followed_by(guild_id)
    )
    return int(await session.scalar(stmt) or 0)


async def unannounced_groups(session: AsyncSession, guild_id: int, *, since: dt.date) -> list[AnnouncedGroup]:
    """Release groups guild ``guild_id`` may be told about: by an artist it follows, dated ``since`` or later,
    not gone, not matched to a Spotify release yet, and with no ``upcoming_posts`` row for the guild; by
    date then title. (Whether each was announced ahead is :attr:`AnnouncedGroup.announced_ahead`.)"""
    has_row = exists(
        select(UpcomingPost.guild_id).where(
            UpcomingPost.guild_id == guild_id, UpcomingPost.release_group_mbid == MusicBrainzReleaseGroup.mbid
        )
    )
    stmt = (
        select(MusicBrainzReleaseGroup)
        .where(
            MusicBrainzReleaseGroup.release_date >= since,
            MusicBrainzReleaseGroup.gone_at.is_(None),
            MusicBrainzReleaseGroup.spotify_release_id.is_(None),
            _followed_by(guild_id),
            ~has_row,
        )
        .order_by(MusicBrainzReleaseGroup.release_date, MusicBrainzReleaseGroup.title, MusicBrainzReleaseGroup.mbid)
    )
    return await _with_artists(session, guild_id, list((await session.scalars(stmt)).all()))


# --- the announcement ledger -----------------------------------------------------------------------


async def claim(
    session: AsyncSession,
    guild_id: int,
    mbid: str,
    *,
    channel_id: int,
    destination: str,
    content: str,
    shown_date: dt.date,
    owner: str | None,
    now: dt.datetime,
) -> bool:
    """Claim the announcement of release group ``mbid`` in guild ``guild_id``: one ``INSERT … ON CONFLICT DO
    NOTHING`` of a ``claimed`` row (``channel_id``: the channel or forum it goes to; ``destination``:
    ``message`` or ``forum``; ``content``: the message's exact content, to find it again; ``shown_date``:
    the date it announces). True for exactly one claimer; False when the guild has a row for it already
    (claimed, posted or skipped, by any process). Not committed."""
    result = await session.execute(
        insert_ignore(
            session,
            UpcomingPost,
            {
                "guild_id": guild_id,
                "release_group_mbid": mbid,
                "channel_id": channel_id,
                "destination": destination,
                "status": "claimed",
                "content": content,
                "owner": owner,
                "claimed_at": now,
                "shown_date": shown_date,
                "shown_state": "announced",
            },
        )
    )
    return bool(rowcount(result))


async def record_skipped(session: AsyncSession, guild_id: int, mbids: Iterable[str], *, now: dt.datetime) -> None:
    """Record release groups ``mbids`` as ``skipped`` in guild ``guild_id`` (never announced there); a group
    with a row already keeps it (``ON CONFLICT DO NOTHING``). Not committed."""
    rows = [
        {"guild_id": guild_id, "release_group_mbid": m, "status": "skipped", "claimed_at": now}
        for m in dict.fromkeys(mbids)
    ]
    if rows:
        await insert_many_ignore(session, UpcomingPost, rows)


async def confirm(
    session: AsyncSession, guild_id: int, mbid: str, *, message_id: int, thread_id: int | None, now: dt.datetime
) -> bool:
    """Mark the claimed announcement posted with Discord ``message_id`` (a forum post: its ``thread_id``
    too, the same id) at ``now``. One conditional ``UPDATE … WHERE status = 'claimed'``: False when the claim
    is gone (settled elsewhere meanwhile). Not committed."""
    result = await session.execute(
        update(UpcomingPost)
        .where(
            UpcomingPost.guild_id == guild_id,
            UpcomingPost.release_group_mbid == mbid,
            UpcomingPost.status == "claimed",
        )
        .values(status="posted", message_id=message_id, thread_id=thread_id, posted_at=now)
    )
    return bool(rowcount(result))


async def unclaim(session: AsyncSession, guild_id: int, mbid: str) -> None:
    """Delete the ``claimed`` row of release group ``mbid`` in guild ``guild_id`` (its message was never made:
    announced again later). A posted or skipped row is left alone. Not committed."""
    await session.execute(
        delete(UpcomingPost).where(
            UpcomingPost.guild_id == guild_id,
            UpcomingPost.release_group_mbid == mbid,
            UpcomingPost.status == "claimed",
        )
    )


async def claims(session: AsyncSession, guild_id: int) -> list[UpcomingPost]:
    """Guild ``guild_id``'s unconfirmed (``claimed``) announcements, oldest claim first (detached rows: read them)."""
    rows = await session.scalars(
        select(UpcomingPost)
        .where(UpcomingPost.guild_id == guild_id, UpcomingPost.status == "claimed")
        .order_by(UpcomingPost.claimed_at, UpcomingPost.release_group_mbid)
    )
    return list(rows.all())


async def guilds_with_claims(session: AsyncSession) -> list[int]:
    """The ids of the guilds with unconfirmed announcements, ascending."""
    rows = await session.scalars(select(UpcomingPost.guild_id).where(UpcomingPost.status == "claimed").distinct())
    return sorted(rows.all())


@dataclass(frozen=True)
class PostedAnnouncement:
    """A posted announcement and what it says now: ``channel_id`` (a forum post: the forum), ``message_id``,
    ``thread_id`` (a forum post's thread, else None), ``destination`` (``message`` | ``forum``),
    ``shown_date`` / ``shown_state`` (:data:`SHOWN_STATES`)."""

    guild_id: int
    mbid: str
    channel_id: int
    message_id: int
    thread_id: int | None
    destination: str
    shown_date: dt.date | None
    shown_state: str

    @property
    def message_channel_id(self) -> int:
        """The channel holding the message: a forum post's thread, else :attr:`channel_id`."""
        return self.thread_id if self.thread_id is not None else self.channel_id


def _posted(row: UpcomingPost) -> PostedAnnouncement:
    assert row.channel_id is not None and row.message_id is not None  # a posted row has both
    return PostedAnnouncement(
        row.guild_id,
        row.release_group_mbid,
        row.channel_id,
        row.message_id,
        row.thread_id,
        row.destination,
        row.shown_date,
        row.shown_state,
    )


async def posted_announcements(session: AsyncSession, guild_id: int) -> list[tuple[PostedAnnouncement, AnnouncedGroup]]:
    """Guild ``guild_id``'s posted announcements with their release groups as stored now, by group date."""
    rows = (
        await session.execute(
            select(UpcomingPost, MusicBrainzReleaseGroup)
            .join(MusicBrainzReleaseGroup, MusicBrainzReleaseGroup.mbid == UpcomingPost.release_group_mbid)
            .where(UpcomingPost.guild_id == guild_id, UpcomingPost.status == "posted")
            .order_by(MusicBrainzReleaseGroup.release_date, MusicBrainzReleaseGroup.mbid)
        )
    ).all()
    groups = await _with_artists(session, guild_id, [g for _p, g in rows])
    return [(_posted(p), g) for (p, _g), g in zip(rows, groups, strict=True)]


async def mark_shown(
    session: AsyncSession,
    guild_id: int,
    mbid: str,
    *,
    was: tuple[dt.date | None, str],
    now_shown: tuple[dt.date | None, str],
    now: dt.datetime | None,
) -> bool:
    """Move a posted announcement's ``(shown_date, shown_state)`` from ``was`` to ``now_shown`` (``edited_at =
    now``): one conditional ``UPDATE … WHERE shown_date = … AND shown_state = …``, so of two processes
    meaning to make the same edit exactly one gets True (and edits the message). Also used to give an edit
    back (``was`` the new values, ``now_shown`` the old) when the message could not be edited. Not committed."""
    old_date, old_state = was
    new_date, new_state = now_shown
    date_is = UpcomingPost.shown_date.is_(None) if old_date is None else UpcomingPost.shown_date == old_date
    result = await session.execute(
        update(UpcomingPost)
        .where(
            and_(
                UpcomingPost.guild_id == guild_id,
                UpcomingPost.release_group_mbid == mbid,
                UpcomingPost.status == "posted",
                UpcomingPost.shown_state == old_state,
                date_is,
            )
        )
        .values(shown_date=new_date, shown_state=new_state, edited_at=now)
    )
    return bool(rowcount(result))


async def announcement_messages(
    session: AsyncSession, guild_id: int, release_ids: Collection[str]
) -> dict[str, PostedAnnouncement]:
    """``{Spotify release id: PostedAnnouncement}``: for each of ``release_ids`` that a release group is matched
    to, that group's posted announcement in guild ``guild_id`` (absent: none)."""
    out: dict[str, PostedAnnouncement] = {}
    for chunk in chunks(sorted(set(release_ids)), CHUNK):
        rows = await session.execute(
            select(MusicBrainzReleaseGroup.spotify_release_id, UpcomingPost)
            .join(UpcomingPost, UpcomingPost.release_group_mbid == MusicBrainzReleaseGroup.mbid)
            .where(
                MusicBrainzReleaseGroup.spotify_release_id.in_(chunk),
                UpcomingPost.guild_id == guild_id,
                UpcomingPost.status == "posted",
            )
        )
        for release_id, post in rows.all():
            if release_id is not None:
                out[release_id] = _posted(post)
    return out
