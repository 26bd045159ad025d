"""The free second signal's store (docs/musicdata.md): MusicBrainz artist mappings, the release groups
ListenBrainz lists for followed artists, their matches to Spotify releases, the request slot that
keeps every process within MusicBrainz's rate limit, and the day the daily fetch was made.

Every function takes an open ``AsyncSession`` and never commits: the caller owns the transaction.
Times are aware UTC datetimes; release dates are calendar days (``datetime.date``, UTC). Writes
that may meet a concurrent twin are single conditional statements (the rate slot, the day claim,
a match) or take their row locks with a write before reading (the mapping, the release groups).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Double

from storage._sql import chunks, insert_ignore, insert_many_ignore, insert_many_ignore_returning_ids, rowcount
from storage.models import (
    BotState,
    Follow,
    MusicBrainzArtist,
    MusicBrainzArtistLink,
    MusicBrainzReleaseGroup,
    MusicBrainzReleaseGroupArtist,
    RateSlot,
    Release,
)

CHUNK = 500
"""Ids per statement (bound parameter lists stay far under SQLite's and asyncpg's limits)."""

DAILY_FETCH_KEY = "musicdata:daily-fetch"
"""``bot_state`` key of the UTC day (``YYYY-MM-DD``) whose daily fetch was claimed."""


# --- the shared request slot -----------------------------------------------------------------


def _greatest(session: AsyncSession, value: float) -> ColumnElement[float]:
    """SQL ``GREATEST(rate_slots.next_at, value)`` (PostgreSQL) / two-argument scalar ``max(…)`` (SQLite)."""
    column = RateSlot.next_at
    bound: ColumnElement[float] = literal(value, Double())
    if session.get_bind().dialect.name == "postgresql":
        return func.greatest(column, bound, type_=Double())
    return func.max(column, bound, type_=Double())


async def take_rate_slot(session: AsyncSession, name: str, *, now: float, interval: float) -> float:
    """Take the next free request slot of rate limit ``name``; returns its start (epoch seconds, UTC).

    ``now``: the caller's clock (epoch seconds; processes pass the database-corrected clock);
    ``interval``: seconds between two slots. One race-free statement, ``UPDATE rate_slots SET
    next_at = max(next_at, now) + interval … RETURNING next_at``: on PostgreSQL the second of two
    concurrent takers waits for the first's row lock and then reads its new ``next_at``, on SQLite
    writers are serialised; so every slot handed out, by any process, is ``interval`` after the one
    before it. The slot starts at ``returned - interval``, which is ``now`` when the limit is idle.
    Commit at once (the row stays locked until then), then wait until the slot starts.
    """
    await session.execute(insert_ignore(session, RateSlot, {"name": name, "next_at": now}))
    taken = await session.execute(
        update(RateSlot)
        .where(RateSlot.name == name)
        .values(next_at=_greatest(session, now) + interval)
        .returning(RateSlot.next_at)
    )
    return float(taken.scalar_one()) - interval


async def hold_off_rate_slot(session: AsyncSession, name: str, *, until: float) -> None:
    """No slot of rate limit ``name`` starts before ``until`` (epoch seconds, UTC): after the service
    answered "too many requests", every process waits. A later free slot is kept. Not committed."""
    await session.execute(insert_ignore(session, RateSlot, {"name": name, "next_at": until}))
    await session.execute(update(RateSlot).where(RateSlot.name == name).values(next_at=_greatest(session, until)))


# --- the daily fetch -------------------------------------------------------------------------


async def record_daily_fetch(session: AsyncSession, day: str) -> bool:
    """Record that the daily fetch of UTC day ``day`` (``YYYY-MM-DD``) is done: True when this call
    recorded it, False when ``day`` (or a later day) was recorded already.

    The ``bot_state`` row is inserted if absent, else moved on by ``UPDATE … WHERE value < day`` (one
    conditional statement: of two racing writers exactly one records the day). Written once the
    day's work has succeeded, so a process that dies half-way leaves the day to the next look. Not
    committed.
    """
    inserted = await session.execute(insert_ignore(session, BotState, {"key": DAILY_FETCH_KEY, "value": day}))
    if rowcount(inserted):
        return True
    moved = await session.execute(
        update(BotState).where(BotState.key == DAILY_FETCH_KEY, BotState.value < day).values(value=day)
    )
    return bool(rowcount(moved))


async def daily_fetch_day(session: AsyncSession) -> str | None:
    """The last UTC day (``YYYY-MM-DD``) whose daily fetch was done (:func:`record_daily_fetch`), or None."""
    return await session.scalar(select(BotState.value).where(BotState.key == DAILY_FETCH_KEY))


# --- artist mapping --------------------------------------------------------------------------


async def artists_to_map(session: AsyncSession, *, now: dt.datetime, limit: int) -> list[str]:
    """Followed Spotify artists whose MusicBrainz mapping is due at ``now``: never tried first (by id),
    then the longest overdue; at most ``limit``."""
    followed = select(Follow.artist_id.label("artist_id")).distinct().subquery()
    rows = await session.execute(
        select(followed.c.artist_id)
        .outerjoin(MusicBrainzArtist, MusicBrainzArtist.spotify_id == followed.c.artist_id)
        .where((MusicBrainzArtist.spotify_id.is_(None)) | (MusicBrainzArtist.next_attempt_at <= now))
        .order_by(
            MusicBrainzArtist.next_attempt_at.is_not(None), MusicBrainzArtist.next_attempt_at, followed.c.artist_id
        )
        .limit(limit)
    )
    return list(rows.scalars().all())


async def record_mappings(
    session: AsyncSession,
    mbids_by_artist: Mapping[str, Sequence[str]],
    *,
    now: dt.datetime,
    retry_after: Callable[[int], dt.timedelta],
) -> None:
    """Store the answer of a mapping lookup: Spotify artist id → its MusicBrainz artist ids (empty: unmapped).

    Each artist's links are replaced by the ones given; ``attempted_at`` is ``now``; a mapped
    artist gets ``mapped_at = now`` and ``unmapped_attempts = 0``, an unmapped one one more
    unmapped attempt. ``next_attempt_at = now + retry_after(unmapped_attempts)``. The rows are
    inserted if absent and write-locked (an ``UPDATE``) before their counts are read. Not committed.
    """
    ids = sorted(mbids_by_artist)
    for chunk in chunks(ids, CHUNK):
        await insert_many_ignore(
            session,
            MusicBrainzArtist,
            [
                {
                    "spotify_id": a,
                    "attempted_at": now,
                    "mapped_at": None,
                    "unmapped_attempts": 0,
                    "next_attempt_at": now,
                }
                for a in chunk
            ],
        )
        await session.execute(
            update(MusicBrainzArtist).where(MusicBrainzArtist.spotify_id.in_(chunk)).values(attempted_at=now)
        )
        rows = await session.execute(
            select(
                MusicBrainzArtist.spotify_id, MusicBrainzArtist.unmapped_attempts, MusicBrainzArtist.mapped_at
            ).where(MusicBrainzArtist.spotify_id.in_(chunk))
        )
        for spotify_id, attempts, mapped_at in rows.all():
            mapped = bool(mbids_by_artist[spotify_id])
            attempts = 0 if mapped else attempts + 1
            await session.execute(
                update(MusicBrainzArtist)
                .where(MusicBrainzArtist.spotify_id == spotify_id)
                .values(
                    unmapped_attempts=attempts,
                    mapped_at=now if mapped else mapped_at,
                    next_attempt_at=now + retry_after(attempts),
                )
            )
        await session.execute(delete(MusicBrainzArtistLink).where(MusicBrainzArtistLink.spotify_id.in_(chunk)))
        links = [{"spotify_id": a, "mbid": m} for a in chunk for m in dict.fromkeys(mbids_by_artist[a])]
        if links:
            await insert_many_ignore(session, MusicBrainzArtistLink, links)


@dataclass(frozen=True)
class MappingState:
    """A Spotify artist's mapping: its MusicBrainz ids (empty: unmapped), the last attempt and the next (UTC)."""

    mbids: tuple[str, ...]
    attempted_at: dt.datetime
    unmapped_attempts: int
    next_attempt_at: dt.datetime


async def mapping_states(session: AsyncSession, spotify_ids: Iterable[str]) -> dict[str, MappingState]:
    """``{Spotify artist id: MappingState}`` for the given artists that were ever tried."""
    ids = list(dict.fromkeys(spotify_ids))
    out: dict[str, MappingState] = {}
    for chunk in chunks(ids, CHUNK):
        links: dict[str, list[str]] = {}
        for spotify_id, mbid in await session.execute(
            select(MusicBrainzArtistLink.spotify_id, MusicBrainzArtistLink.mbid)
            .where(MusicBrainzArtistLink.spotify_id.in_(chunk))
            .order_by(MusicBrainzArtistLink.mbid)
        ):
            links.setdefault(spotify_id, []).append(mbid)
        for row in await session.scalars(select(MusicBrainzArtist).where(MusicBrainzArtist.spotify_id.in_(chunk))):
            out[row.spotify_id] = MappingState(
                tuple(links.get(row.spotify_id, ())), row.attempted_at, row.unmapped_attempts, row.next_attempt_at
            )
    return out


async def followed_artists_by_mbid(session: AsyncSession) -> dict[str, list[str]]:
    """``{MusicBrainz artist id: [followed Spotify artist ids]}`` of every followed, mapped artist (ids sorted)."""
    followed = select(Follow.artist_id).distinct().subquery()
    rows = await session.execute(
        select(MusicBrainzArtistLink.mbid, MusicBrainzArtistLink.spotify_id)
        .join(followed, followed.c.artist_id == MusicBrainzArtistLink.spotify_id)
        .order_by(MusicBrainzArtistLink.mbid, MusicBrainzArtistLink.spotify_id)
    )
    out: dict[str, list[str]] = {}
    for mbid, spotify_id in rows.all():
        out.setdefault(mbid, []).append(spotify_id)
    return out


# --- release groups --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseGroupRow:
    """One release group as a fresh-releases listing shows it, with the followed Spotify artists it is by.

    Fields as ListenBrainz's ``/1/explore/fresh-releases/`` items (``release_group_mbid``,
    ``release_name``, ``artist_credit_name``, ``artist_mbids``, ``release_group_primary_type``,
    ``release_group_secondary_type``, ``release_date``, ``release_mbid``, ``caa_id``,
    ``caa_release_mbid``); ``spotify_ids``: non-empty.
    """

    mbid: str
    title: str
    artist_credit_name: str
    artist_mbids: tuple[str, ...]
    primary_type: str | None
    secondary_types: tuple[str, ...]
    release_date: dt.date
    release_mbid: str
    caa_id: int | None
    caa_release_mbid: str | None
    spotify_ids: tuple[str, ...]


@dataclass
class StoredGroups:
    """What :func:`store_release_groups` changed: release group MBIDs first seen, whose date changed,
    that came back after being gone, and that are gone now."""

    new: list[str]
    date_changed: list[str]
    returned: list[str]
    gone: list[str]


def _group_values(row: ReleaseGroupRow) -> dict[str, object]:
    """The columns a listing sets on every sighting."""
    return {
        "title": row.title,
        "artist_credit_name": row.artist_credit_name,
        "artist_mbids": list(row.artist_mbids),
        "primary_type": row.primary_type,
        "secondary_types": list(row.secondary_types),
        "release_mbid": row.release_mbid,
        "caa_id": row.caa_id,
        "caa_release_mbid": row.caa_release_mbid,
    }


async def store_release_groups(
    session: AsyncSession,
    rows: Sequence[ReleaseGroupRow],
    *,
    listed: Collection[str],
    window: tuple[dt.date, dt.date],
    now: dt.datetime,
) -> StoredGroups:
    """Store one daily fetch: ``rows`` (the kept release groups), ``listed`` (every release group MBID the
    listing held, kept or not) and its ``window`` (first and last day it covers, both included).

    A group not stored before is inserted (``first_seen_at = last_seen_at = now``). A stored one
    gets the listing's fields, ``last_seen_at = now``, ``gone_at`` cleared, and a changed date is
    appended to ``date_changes`` (``{"from", "to", "at"}``). Its followed artists are replaced by
    ``spotify_ids``. A stored group dated inside ``window`` that ``listed`` lacks and that is not
    gone already gets ``gone_at = now`` (one dated outside the window may just have left it: no
    conclusion). Existing rows are write-locked before they are read. Not committed.
    """
    unique = list({r.mbid: r for r in rows}.values())
    by_mbid = {r.mbid: r for r in unique}
    result = StoredGroups([], [], [], [])
    for chunk in chunks(sorted(by_mbid), CHUNK):
        new = await insert_many_ignore_returning_ids(
            session,
            MusicBrainzReleaseGroup,
            [
                {
                    "mbid": mbid,
                    **_group_values(by_mbid[mbid]),
                    "release_date": by_mbid[mbid].release_date,
                    "first_seen_at": now,
                    "last_seen_at": now,
                    "date_changes": [],
                    "barcodes": [],
                }
                for mbid in chunk
            ],
        )
        result.new.extend(sorted(new))
        seen = [m for m in chunk if m not in new]
        if seen:
            await session.execute(
                update(MusicBrainzReleaseGroup).where(MusicBrainzReleaseGroup.mbid.in_(seen)).values(last_seen_at=now)
            )
            stored = await session.execute(
                select(
                    MusicBrainzReleaseGroup.mbid,
                    MusicBrainzReleaseGroup.release_date,
                    MusicBrainzReleaseGroup.date_changes,
                    MusicBrainzReleaseGroup.gone_at,
                ).where(MusicBrainzReleaseGroup.mbid.in_(seen))
            )
            for mbid, date, changes, gone_at in stored.all():
                row = by_mbid[mbid]
                values = _group_values(row) | {"gone_at": None}
                if gone_at is not None:
                    result.returned.append(mbid)
                if date != row.release_date:
                    values["release_date"] = row.release_date
                    values["date_changes"] = [
                        *changes,
                        {"from": date.isoformat(), "to": row.release_date.isoformat(), "at": now.isoformat()},
                    ]
                    result.date_changed.append(mbid)
                await session.execute(
                    update(MusicBrainzReleaseGroup).where(MusicBrainzReleaseGroup.mbid == mbid).values(**values)
                )
        await session.execute(
            delete(MusicBrainzReleaseGroupArtist).where(MusicBrainzReleaseGroupArtist.release_group_mbid.in_(chunk))
        )
        await insert_many_ignore(
            session,
            MusicBrainzReleaseGroupArtist,
            [{"release_group_mbid": m, "spotify_id": a} for m in chunk for a in dict.fromkeys(by_mbid[m].spotify_ids)],
        )
    first, last = window
    in_window = await session.scalars(
        select(MusicBrainzReleaseGroup.mbid).where(
            MusicBrainzReleaseGroup.gone_at.is_(None),
            MusicBrainzReleaseGroup.release_date >= first,
            MusicBrainzReleaseGroup.release_date <= last,
        )
    )
    listed_set = set(listed)
    gone = sorted(m for m in in_window.all() if m not in listed_set)
    for chunk in chunks(gone, CHUNK):
        await session.execute(
            update(MusicBrainzReleaseGroup)
            .where(MusicBrainzReleaseGroup.mbid.in_(chunk), MusicBrainzReleaseGroup.gone_at.is_(None))
            .values(gone_at=now)
        )
    result.gone = gone
    return result


@dataclass(frozen=True)
class StoredGroup:
    """A stored release group as matching and barcode lookups need it (see :class:`MusicBrainzReleaseGroup`)."""

    mbid: str
    title: str
    primary_type: str | None
    secondary_types: tuple[str, ...]
    release_date: dt.date
    first_seen_at: dt.datetime
    barcodes: tuple[str, ...]
    barcodes_checked_at: dt.datetime | None
    spotify_ids: tuple[str, ...]


async def _stored_groups(session: AsyncSession, *conditions: ColumnElement[bool]) -> list[StoredGroup]:
    groups = list(
        (
            await session.scalars(
                select(MusicBrainzReleaseGroup)
                .where(*conditions)
                .order_by(MusicBrainzReleaseGroup.release_date, MusicBrainzReleaseGroup.mbid)
            )
        ).all()
    )
    artists: dict[str, list[str]] = {}
    for chunk in chunks([g.mbid for g in groups], CHUNK):
        for mbid, spotify_id in await session.execute(
            select(MusicBrainzReleaseGroupArtist.release_group_mbid, MusicBrainzReleaseGroupArtist.spotify_id)
            .where(MusicBrainzReleaseGroupArtist.release_group_mbid.in_(chunk))
            .order_by(MusicBrainzReleaseGroupArtist.spotify_id)
        ):
            artists.setdefault(mbid, []).append(spotify_id)
    return [
        StoredGroup(
            g.mbid,
            g.title,
            g.primary_type,
            tuple(g.secondary_types),
            g.release_date,
            g.first_seen_at,
            tuple(g.barcodes),
            g.barcodes_checked_at,
            tuple(artists.get(g.mbid, ())),
        )
        for g in groups
    ]


async def unmatched_release_groups(session: AsyncSession, *, since: dt.date) -> list[StoredGroup]:
    """Release groups not matched to a Spotify release, not gone, dated ``since`` or later; by date."""
    return await _stored_groups(
        session,
        MusicBrainzReleaseGroup.spotify_release_id.is_(None),
        MusicBrainzReleaseGroup.gone_at.is_(None),
        MusicBrainzReleaseGroup.release_date >= since,
    )


async def announced_artists(session: AsyncSession, artist_ids: Iterable[str], *, since: dt.date) -> set[str]:
    """Of ``artist_ids`` (Spotify ids), those with a release group dated ``since`` or later that is
    neither gone nor matched to a Spotify release yet: announced ahead, or out so recently that
    Spotify may not list it yet. The tracker looks at them first in a budgeted run; nobody is ever
    left out for lacking one."""
    wanted = list(dict.fromkeys(artist_ids))
    found: set[str] = set()
    for chunk in chunks(wanted, CHUNK):
        found.update(
            await session.scalars(
                select(MusicBrainzReleaseGroupArtist.spotify_id)
                .join(
                    MusicBrainzReleaseGroup,
                    MusicBrainzReleaseGroup.mbid == MusicBrainzReleaseGroupArtist.release_group_mbid,
                )
                .where(
                    MusicBrainzReleaseGroupArtist.spotify_id.in_(chunk),
                    MusicBrainzReleaseGroup.spotify_release_id.is_(None),
                    MusicBrainzReleaseGroup.gone_at.is_(None),
                    MusicBrainzReleaseGroup.release_date >= since,
                )
                .distinct()
            )
        )
    return found


async def release_group(session: AsyncSession, mbid: str) -> MusicBrainzReleaseGroup | None:
    """The stored release group ``mbid``, or None."""
    return await session.get(MusicBrainzReleaseGroup, mbid)


async def store_barcodes(session: AsyncSession, mbid: str, barcodes: Sequence[str], *, now: dt.datetime) -> None:
    """Set release group ``mbid``'s barcodes (those of its releases, as read at ``now``). Not committed."""
    await session.execute(
        update(MusicBrainzReleaseGroup)
        .where(MusicBrainzReleaseGroup.mbid == mbid)
        .values(barcodes=list(dict.fromkeys(barcodes)), barcodes_checked_at=now)
    )


async def matched_release_ids(session: AsyncSession) -> set[str]:
    """The Spotify release ids some release group is matched to."""
    rows = await session.scalars(
        select(MusicBrainzReleaseGroup.spotify_release_id).where(
            MusicBrainzReleaseGroup.spotify_release_id.is_not(None)
        )
    )
    return {r for r in rows.all() if r is not None}


async def record_match(session: AsyncSession, mbid: str, release_id: str, method: str, *, now: dt.datetime) -> bool:
    """Match release group ``mbid`` to Spotify release ``release_id`` by ``method`` (``"upc"`` | ``"title"``)
    at ``now``; False when it was matched already (one conditional ``UPDATE``). Not committed."""
    result = await session.execute(
        update(MusicBrainzReleaseGroup)
        .where(MusicBrainzReleaseGroup.mbid == mbid, MusicBrainzReleaseGroup.spotify_release_id.is_(None))
        .values(spotify_release_id=release_id, match_method=method, matched_at=now)
    )
    return bool(rowcount(result))


async def record_misses(session: AsyncSession, *, dated_before: dt.date, now: dt.datetime) -> list[str]:
    """Mark as missed (``missed_at = now``) every release group dated before ``dated_before`` that no Spotify
    release matched, is not gone and was not missed yet; returns their MBIDs. Not committed."""
    result = await session.execute(
        update(MusicBrainzReleaseGroup)
        .where(
            MusicBrainzReleaseGroup.spotify_release_id.is_(None),
            MusicBrainzReleaseGroup.gone_at.is_(None),
            MusicBrainzReleaseGroup.missed_at.is_(None),
            MusicBrainzReleaseGroup.release_date < dated_before,
        )
        .values(missed_at=now)
        .returning(MusicBrainzReleaseGroup.mbid)
    )
    return sorted(result.scalars().all())


# --- the signal's quality --------------------------------------------------------------------


@dataclass(frozen=True)
class SignalCounts:
    """How the free signal did (docs/musicdata.md, "Quality").

    Artists: ``artists_followed`` (distinct), of them ``artists_mapped`` (≥ 1 MusicBrainz id),
    ``artists_unmapped`` (tried, none found) and ``artists_untried``. Release groups stored:
    ``release_groups``; ``upcoming`` (dated today or later, not gone, unmatched); ``matched``
    (``matched_by_upc`` + ``matched_by_title``), of them ``announced_ahead`` (first listed before
    its date) and ``late`` (Spotify's release first seen by the tracker on a UTC day after the
    group's date); ``missed`` (date passed by the miss delay, no Spotify release); ``gone``
    (disappeared from the listing, unmatched); ``postponed`` (with a date change, any state).
    """

    artists_followed: int
    artists_mapped: int
    artists_unmapped: int
    artists_untried: int
    release_groups: int
    upcoming: int
    matched: int
    matched_by_upc: int
    matched_by_title: int
    announced_ahead: int
    late: int
    missed: int
    gone: int
    postponed: int


async def signal_counts(session: AsyncSession, *, today: dt.date) -> SignalCounts:
    """The counts of :class:`SignalCounts` at UTC day ``today``."""
    followed = set((await session.scalars(select(Follow.artist_id).distinct())).all())
    tried: set[str] = set()
    mapped: set[str] = set()
    for chunk in chunks(sorted(followed), CHUNK):
        tried.update(
            await session.scalars(select(MusicBrainzArtist.spotify_id).where(MusicBrainzArtist.spotify_id.in_(chunk)))
        )
        mapped.update(
            await session.scalars(
                select(MusicBrainzArtistLink.spotify_id).where(MusicBrainzArtistLink.spotify_id.in_(chunk))
            )
        )
    rows = (
        await session.execute(
            select(
                MusicBrainzReleaseGroup.release_date,
                MusicBrainzReleaseGroup.first_seen_at,
                MusicBrainzReleaseGroup.gone_at,
                MusicBrainzReleaseGroup.date_changes,
                MusicBrainzReleaseGroup.match_method,
                MusicBrainzReleaseGroup.missed_at,
                Release.first_seen_at,
            ).outerjoin(Release, Release.id == MusicBrainzReleaseGroup.spotify_release_id)
        )
    ).all()
    matched = [r for r in rows if r[4] is not None]
    unmatched = [r for r in rows if r[4] is None]
    return SignalCounts(
        artists_followed=len(followed),
        artists_mapped=len(mapped),
        artists_unmapped=len(tried - mapped),
        artists_untried=len(followed - tried),
        release_groups=len(rows),
        upcoming=sum(1 for r in unmatched if r[2] is None and r[0] >= today),
        matched=len(matched),
        matched_by_upc=sum(1 for r in matched if r[4] == "upc"),
        matched_by_title=sum(1 for r in matched if r[4] == "title"),
        announced_ahead=sum(1 for r in matched if r[1].date() < r[0]),
        late=sum(1 for r in matched if r[6] is not None and r[6].date() > r[0]),
        missed=sum(1 for r in unmatched if r[5] is not None and r[2] is None),
        gone=sum(1 for r in unmatched if r[2] is not None),
        postponed=sum(1 for r in rows if r[3]),
    )
