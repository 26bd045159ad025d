"""The delivery ledger: one ``deliveries`` row per (guild, release), claimed before a post is sent,
confirmed with the Discord message id after, or recorded ``skipped``; the reads that tell which
releases are still pending for a guild; and the crosspost state of posts in announcement channels.

The unique constraint on (guild_id, release_id) is what makes a post exactly-once: a second
claim of the same release for the same guild fails (:class:`LedgerConflict`), whichever
process or task makes it. Rows a process claimed carry its ``owner`` (``processes.id``), so
only a dead process's unconfirmed claims are settled by another. ``destination`` says whether the
release went out in a message (``message``: a text or announcement channel, possibly a digest of
several releases) or as a forum post of its own (``forum``: ``message_id`` is the post's thread id,
which is its starter message's id).

Crossposts (``publish_state``): a message confirmed in an announcement channel of a guild that
publishes gets ``pending`` with ``publish_after`` = now; a publisher takes a due message with one
conditional ``UPDATE`` that moves ``publish_after`` on (:func:`take_publish`, so two processes never
both try it), then records ``done`` (published, or Discord says it already was), ``failed`` (Discord
refused for good) or a later ``publish_after`` (rate limited: Discord allows about 10 publishes per
channel per hour).

Every function takes an open ``AsyncSession`` and never commits: the caller owns the transaction.
Times are timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage._sql import chunks, rowcount
from storage.leases import dead_owner
from storage.models import ArtistRelease, Delivery, Follow, Release


class LedgerConflict(Exception):
    """A ledger write met an existing row: a release of it already has a row for the guild (the
    unique (guild_id, release_id)), or a row it refers to is gone (a foreign key). The session's
    transaction is then unusable: let the error end it (``Database.transaction()`` rolls it back),
    so none of the rows of that write is kept."""


# --- pending releases ---------------------------------------------------------------------


@dataclass
class PendingRelease:
    """A release new for a guild, with its qualifying links ``(artist id, album group)``."""

    release: Release
    links: set[tuple[str, str]]


async def pending_releases(session: AsyncSession, guild_id: int) -> list[PendingRelease]:
    """The releases new for guild ``guild_id`` with their qualifying links, oldest first seen first.

    A release is new for a guild when it is linked to an artist the guild follows, the link is
    not a baseline link, the link was first seen strictly after the guild's ``followed_at`` for
    that artist, and the guild's ledger has no row for it (claimed, sent or skipped). Ties are
    ordered by release date, then id, so the order is stable. One query; reads only.
    """
    delivered = exists().where(Delivery.guild_id == guild_id, Delivery.release_id == Release.id)
    query = (
        select(Release, ArtistRelease.artist_id, ArtistRelease.album_group)
        .join(ArtistRelease, ArtistRelease.release_id == Release.id)
        .join(Follow, and_(Follow.artist_id == ArtistRelease.artist_id, Follow.guild_id == guild_id))
        .where(
            ArtistRelease.baseline.is_(False),
            ArtistRelease.first_seen_at > Follow.followed_at,
            ~delivered,
        )
        .order_by(Release.first_seen_at, Release.release_date, Release.id)
    )
    out: dict[str, PendingRelease] = {}
    for release, artist_id, group in (await session.execute(query)).all():
        out.setdefault(release.id, PendingRelease(release, set())).links.add((artist_id, group))
    return list(out.values())


async def release_links(
    session: AsyncSession, guild_id: int, release_ids: Collection[str]
) -> dict[str, set[tuple[str, str]]]:
    """``{release id: {(artist id, album group), …}}``: the links that make each of ``release_ids`` new
    for guild ``guild_id`` (as :func:`pending_releases` counts them: an artist the guild follows, not a
    baseline link, first seen after the follow), whether or not the release has a ledger row yet.
    Releases without such a link are absent. One query per 500 ids; reads only."""
    out: dict[str, set[tuple[str, str]]] = {}
    for chunk in chunks(list(release_ids), 500):
        rows = await session.execute(
            select(ArtistRelease.release_id, ArtistRelease.artist_id, ArtistRelease.album_group)
            .join(Follow, and_(Follow.artist_id == ArtistRelease.artist_id, Follow.guild_id == guild_id))
            .where(
                ArtistRelease.release_id.in_(chunk),
                ArtistRelease.baseline.is_(False),
                ArtistRelease.first_seen_at > Follow.followed_at,
            )
        )
        for release_id, artist_id, group in rows:
            out.setdefault(release_id, set()).add((artist_id, group))
    return out


# --- claims, confirmation, skips ----------------------------------------------------------


async def claim(
    session: AsyncSession,
    guild_id: int,
    channel_id: int,
    releases: Sequence[tuple[str, str | None]],
    *,
    now: dt.datetime,
    run_id: int | None,
    owner: str | None,
    destination: str = "message",
    publish: bool = False,
) -> None:
    """Claim ``releases`` for one post to ``channel_id``: a ``claimed`` row each, all or none.

    ``releases``: ``(release id, folded_into)`` in message order, ``folded_into`` naming the
    main release a twin is announced with (None for a main release). ``owner``: the claiming
    process (None for a process that runs alone). ``destination``: ``message`` (a message in a
    text or announcement channel) or ``forum`` (a forum post; ``channel_id`` is the forum).
    ``publish``: the message is to be crossposted once sent (``publish_state="pending"``, due from
    its confirmation: :func:`confirm`). Raises :class:`LedgerConflict` when any of them already has a row for the guild (another
    delivery claimed, sent or skipped it).
    """
    session.add_all(
        Delivery(
            guild_id=guild_id,
            release_id=release_id,
            status="claimed",
            channel_id=channel_id,
            folded_into=folded_into,
            claimed_at=now,
            run_id=run_id,
            owner=owner,
            destination=destination,
            publish_state="pending" if publish else None,
        )
        for release_id, folded_into in releases
    )
    await _flush(session)


async def record_skipped(
    session: AsyncSession, guild_id: int, release_ids: Sequence[str], *, now: dt.datetime, run_id: int | None
) -> None:
    """Record ``release_ids`` as ``skipped`` for the guild (never to be posted), all or none.

    Raises :class:`LedgerConflict` when any of them already has a row for the guild.
    """
    session.add_all(
        Delivery(guild_id=guild_id, release_id=rid, status="skipped", claimed_at=now, run_id=run_id)
        for rid in release_ids
    )
    await _flush(session)


async def _flush(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        raise LedgerConflict(str(exc.orig)) from exc


async def confirm(
    session: AsyncSession, guild_id: int, release_ids: Sequence[str], *, message_id: int, now: dt.datetime
) -> int:
    """Mark the guild's ``claimed`` rows of ``release_ids`` ``sent`` in Discord message ``message_id`` at ``now``.

    Rows claimed to be crossposted (``publish_state="pending"``) fall due now (``publish_after``).
    One conditional ``UPDATE … WHERE status = 'claimed'``; returns how many rows it confirmed
    (fewer than the distinct ``release_ids`` when a claim was settled elsewhere meanwhile).
    """
    result = await session.execute(
        update(Delivery)
        .where(
            Delivery.guild_id == guild_id,
            Delivery.release_id.in_(list(release_ids)),
            Delivery.status == "claimed",
        )
        .values(status="sent", message_id=message_id, sent_at=now)
    )
    await session.execute(
        update(Delivery)
        .where(
            Delivery.guild_id == guild_id,
            Delivery.message_id == message_id,
            Delivery.publish_state == "pending",
            Delivery.publish_after.is_(None),
        )
        .values(publish_after=now)
    )
    return rowcount(result)


async def unclaim(session: AsyncSession, guild_id: int, release_ids: Sequence[str]) -> int:
    """Delete the guild's ``claimed`` rows of ``release_ids`` (the releases are pending again); returns how many.

    Rows already ``sent`` or ``skipped`` are left alone.
    """
    result = await session.execute(
        delete(Delivery).where(
            Delivery.guild_id == guild_id,
            Delivery.release_id.in_(list(release_ids)),
            Delivery.status == "claimed",
        )
    )
    return rowcount(result)


# --- unconfirmed claims (recovery) --------------------------------------------------------


async def guilds_with_claims(
    session: AsyncSession, *, live: Collection[str] | None, guild_ids: Sequence[int] | None = None
) -> list[int]:
    """Ids of the guilds (of ``guild_ids``; every guild when None) that have ``claimed`` rows, sorted.

    ``live``: owner ids of the live processes: only claims whose owner is none of them count
    (a row without an owner counts too); None counts every claim (a process that runs alone).
    """
    query = select(Delivery.guild_id).where(Delivery.status == "claimed").distinct()
    if live is not None:
        query = query.where(dead_owner(Delivery.owner, set(live)))
    if guild_ids is not None:
        query = query.where(Delivery.guild_id.in_(list(guild_ids)))
    return sorted((await session.scalars(query)).all())


async def unconfirmed_claims(session: AsyncSession, guild_id: int) -> list[Delivery]:
    """The guild's ``claimed`` rows without a message id (claim order): posts that may or may not exist."""
    rows = await session.scalars(
        select(Delivery)
        .where(Delivery.guild_id == guild_id, Delivery.status == "claimed", Delivery.message_id.is_(None))
        .order_by(Delivery.id)
    )
    return list(rows.all())


# --- crossposts (announcement channels) -----------------------------------------------------


@dataclass(frozen=True)
class PublishTask:
    """A message to crosspost: guild ``guild_id``'s message ``message_id`` in channel ``channel_id``,
    due since ``publish_after`` (UTC)."""

    guild_id: int
    channel_id: int
    message_id: int
    publish_after: dt.datetime


async def due_publishes(
    session: AsyncSession, *, now: dt.datetime, limit: int, guild_id: int | None = None
) -> list[PublishTask]:
    """Messages whose crosspost is ``pending`` and due (``publish_after <= now``), longest due first, at
    most ``limit`` (of guild ``guild_id`` only when given). Reads only: take one with :func:`take_publish`."""
    query = (
        select(Delivery.guild_id, Delivery.channel_id, Delivery.message_id, func.min(Delivery.publish_after))
        .where(
            Delivery.publish_state == "pending",
            Delivery.publish_after <= now,
            Delivery.message_id.is_not(None),
            Delivery.channel_id.is_not(None),
        )
        .group_by(Delivery.guild_id, Delivery.channel_id, Delivery.message_id)
        .order_by(func.min(Delivery.publish_after), Delivery.message_id)
        .limit(limit)
    )
    if guild_id is not None:
        query = query.where(Delivery.guild_id == guild_id)
    rows = (await session.execute(query)).all()
    return [PublishTask(g, c, m, after) for g, c, m, after in rows if c is not None and m is not None and after]


async def take_publish(
    session: AsyncSession, guild_id: int, message_id: int, *, now: dt.datetime, hold_until: dt.datetime
) -> bool:
    """Take the due crosspost of message ``message_id`` for this caller: its ``pending`` rows whose
    ``publish_after <= now`` get ``publish_after = hold_until`` (a caller that dies leaves it due again
    then). One conditional ``UPDATE``: of two processes taking it at once only one gets True."""
    result = await session.execute(
        update(Delivery)
        .where(
            Delivery.guild_id == guild_id,
            Delivery.message_id == message_id,
            Delivery.publish_state == "pending",
            Delivery.publish_after <= now,
        )
        .values(publish_after=hold_until)
    )
    return rowcount(result) > 0


async def finish_publish(session: AsyncSession, guild_id: int, message_id: int, *, state: str) -> int:
    """Record the crosspost of message ``message_id`` as ``state``: ``done`` (published, or it already
    was) or ``failed`` (Discord refused for good: the message or channel is gone, or the bot may not
    publish there). Only ``pending`` rows change; returns how many."""
    if state not in ("done", "failed"):
        raise ValueError(f"a crosspost ends done or failed, not {state!r}")
    result = await session.execute(
        update(Delivery)
        .where(Delivery.guild_id == guild_id, Delivery.message_id == message_id, Delivery.publish_state == "pending")
        .values(publish_state=state, publish_after=None)
    )
    return rowcount(result)


async def defer_publishes(session: AsyncSession, channel_id: int, *, until: dt.datetime) -> int:
    """Discord limits crossposts in channel ``channel_id`` until ``until`` (UTC): every ``pending``
    crosspost there due earlier waits until then. Returns how many rows moved."""
    result = await session.execute(
        update(Delivery)
        .where(
            Delivery.channel_id == channel_id,
            Delivery.publish_state == "pending",
            or_(Delivery.publish_after.is_(None), Delivery.publish_after < until),
        )
        .values(publish_after=until)
    )
    return rowcount(result)


async def defer_publish(session: AsyncSession, guild_id: int, message_id: int, *, until: dt.datetime) -> int:
    """Retry the ``pending`` crosspost of message ``message_id`` at ``until`` (UTC), after a transient
    failure. Returns how many rows moved."""
    result = await session.execute(
        update(Delivery)
        .where(Delivery.guild_id == guild_id, Delivery.message_id == message_id, Delivery.publish_state == "pending")
        .values(publish_after=until)
    )
    return rowcount(result)


async def next_publish_at(session: AsyncSession) -> dt.datetime | None:
    """The earliest ``publish_after`` of any ``pending`` crosspost (None when there is none)."""
    return await session.scalar(select(func.min(Delivery.publish_after)).where(Delivery.publish_state == "pending"))
