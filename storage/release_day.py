"""Release-day probing's store (docs/musicdata.md, "Release day"): the ``release_day_probes`` rows of
the release groups announced for today by an artist that a ``release_day`` guild follows.

One row per (release group, release day). It is seeded once (``INSERT … ON CONFLICT DO NOTHING``),
each probe slot is taken by one conditional statement (:func:`claim_due_probes`: ``UPDATE … WHERE
next_probe_at <= now … RETURNING``), its hold renewed while its probe lasts (:func:`extend_holds`),
and a probe's result is written back by :func:`finish_probe`. Every function takes an open ``AsyncSession`` and never commits. Times are
aware UTC datetimes; release days are calendar days (``datetime.date``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage._sql import chunks, insert_many_ignore
from storage.models import (
    Follow,
    Guild,
    MusicBrainzReleaseGroup,
    MusicBrainzReleaseGroupArtist,
    ReleaseDayProbe,
)

CHUNK = 500
"""Ids per statement (bound parameter lists stay far under SQLite's and asyncpg's limits)."""


@dataclass(frozen=True)
class ProbeSlot:
    """A probe slot taken by :func:`claim_due_probes`: release group ``mbid`` on ``release_day``; ``probe``
    is this probe's number (1 = the first), counted when the slot was taken."""

    mbid: str
    release_day: dt.date
    probe: int


@dataclass(frozen=True)
class ProbeTarget:
    """What a probe of release group ``mbid`` needs: its ``title``, ``release_date``, ``primary_type`` and
    ``barcodes`` (to recognise its Spotify release), ``artist_ids`` (its Spotify artists that a
    ``release_day`` guild follows: the ones to check) and ``guild_ids`` (those guilds)."""

    mbid: str
    title: str
    release_date: dt.date
    primary_type: str | None
    barcodes: tuple[str, ...]
    artist_ids: tuple[str, ...]
    guild_ids: tuple[int, ...]


async def seed_probes(session: AsyncSession, *, day: dt.date, first_probe_at: dt.datetime) -> list[str]:
    """Give every release group dated ``day`` a probe row (``probes = 0``, ``next_probe_at =
    first_probe_at``) when it is not matched to a Spotify release, not gone, and by a Spotify artist
    that at least one ``release_day`` guild follows. Returns the MBIDs of the groups that qualify (seeded
    now or before). Race-free: ``INSERT … ON CONFLICT DO NOTHING`` (a row seeded already, by any
    process, is left as it is). Not committed."""
    mbids = list(
        (
            await session.scalars(
                select(MusicBrainzReleaseGroup.mbid)
                .join(
                    MusicBrainzReleaseGroupArtist,
                    MusicBrainzReleaseGroupArtist.release_group_mbid == MusicBrainzReleaseGroup.mbid,
                )
                .join(Follow, Follow.artist_id == MusicBrainzReleaseGroupArtist.spotify_id)
                .join(Guild, Guild.id == Follow.guild_id)
                .where(
                    MusicBrainzReleaseGroup.release_date == day,
                    MusicBrainzReleaseGroup.spotify_release_id.is_(None),
                    MusicBrainzReleaseGroup.gone_at.is_(None),
                    Guild.release_day.is_(True),
                )
                .distinct()
                .order_by(MusicBrainzReleaseGroup.mbid)
            )
        ).all()
    )
    if mbids:
        await insert_many_ignore(
            session,
            ReleaseDayProbe,
            [
                {
                    "release_group_mbid": m,
                    "release_day": day,
                    "probes": 0,
                    "requests": 0,
                    "next_probe_at": first_probe_at,
                }
                for m in mbids
            ],
        )
    return mbids


async def claim_due_probes(
    session: AsyncSession,
    *,
    day: dt.date,
    now: dt.datetime,
    max_probes: int,
    hold_until: dt.datetime,
    limit: int = 20,
) -> list[ProbeSlot]:
    """Take the probe slots of release day ``day`` due at ``now``: rows with ``next_probe_at <= now``, nothing
    found yet and fewer than ``max_probes`` probes made; at most ``limit``, earliest due first. A slot of
    another day is never taken (a day that ended is over: the weekly run posts what it missed).

    One conditional statement, ``UPDATE … SET probes = probes + 1, last_probe_at = now, next_probe_at =
    hold_until WHERE <due> … RETURNING``: on PostgreSQL a concurrent claimer waits for the row lock, then
    re-reads the row and its ``WHERE`` no longer matches (``next_probe_at`` is ``hold_until`` now); SQLite
    serialises writers. So two processes never probe one release at once, and a slot a crashed process
    took comes back at ``hold_until``. The probe is counted when taken: ``max_probes`` holds even across
    crashes. Not committed: commit at once.
    """
    due = (
        ReleaseDayProbe.release_day == day,
        ReleaseDayProbe.next_probe_at.is_not(None),
        ReleaseDayProbe.next_probe_at <= now,
        ReleaseDayProbe.found_at.is_(None),
        ReleaseDayProbe.probes < max_probes,
    )
    pick = (
        select(ReleaseDayProbe.release_group_mbid)
        .where(*due)
        .order_by(ReleaseDayProbe.next_probe_at, ReleaseDayProbe.release_group_mbid)
        .limit(limit)
    )
    rows = await session.execute(
        update(ReleaseDayProbe)
        .where(*due, ReleaseDayProbe.release_group_mbid.in_(pick.scalar_subquery()))
        .values(probes=ReleaseDayProbe.probes + 1, last_probe_at=now, next_probe_at=hold_until)
        .returning(ReleaseDayProbe.release_group_mbid, ReleaseDayProbe.release_day, ReleaseDayProbe.probes)
    )
    return sorted((ProbeSlot(m, d, p) for m, d, p in rows.all()), key=lambda s: (s.release_day, s.mbid))


async def extend_holds(
    session: AsyncSession, slots: Collection[ProbeSlot], *, hold_until: dt.datetime
) -> set[tuple[str, dt.date]]:
    """Renew the hold of each of ``slots`` (taken by this process with :func:`claim_due_probes`, probe not
    finished yet) until ``hold_until``. Returns the ``(mbid, release_day)`` of the slots renewed.

    One conditional statement per slot, ``UPDATE … SET next_probe_at = hold_until WHERE release group and
    day match AND probes = slot.probe AND found_at IS NULL``: a slot another process took again after
    its hold ran out (``probes`` grew) or found since is left alone and not returned — the caller lost
    it. The caller must not call this for a slot whose probe it has finished (:func:`finish_probe` moved
    its ``next_probe_at`` on). Not committed: commit at once.
    """
    renewed: set[tuple[str, dt.date]] = set()
    for slot in slots:
        result = await session.execute(
            update(ReleaseDayProbe)
            .where(
                ReleaseDayProbe.release_group_mbid == slot.mbid,
                ReleaseDayProbe.release_day == slot.release_day,
                ReleaseDayProbe.probes == slot.probe,
                ReleaseDayProbe.found_at.is_(None),
            )
            .values(next_probe_at=hold_until)
            .returning(ReleaseDayProbe.release_group_mbid)
        )
        if result.first() is not None:
            renewed.add((slot.mbid, slot.release_day))
    return renewed


async def probe_targets(session: AsyncSession, mbids: Collection[str]) -> dict[str, ProbeTarget]:
    """``{mbid: ProbeTarget}`` for the stored release groups among ``mbids`` (a group no ``release_day`` guild
    follows any artist of has empty ``artist_ids`` and ``guild_ids``). Reads only."""
    groups: dict[str, MusicBrainzReleaseGroup] = {}
    artists: dict[str, set[str]] = {}
    guilds_of: dict[str, set[int]] = {}
    ids = sorted(set(mbids))
    for chunk in chunks(ids, CHUNK):
        for group in await session.scalars(
            select(MusicBrainzReleaseGroup).where(MusicBrainzReleaseGroup.mbid.in_(chunk))
        ):
            groups[group.mbid] = group
        for mbid, artist_id, guild_id in await session.execute(
            select(MusicBrainzReleaseGroupArtist.release_group_mbid, Follow.artist_id, Follow.guild_id)
            .join(Follow, Follow.artist_id == MusicBrainzReleaseGroupArtist.spotify_id)
            .join(Guild, Guild.id == Follow.guild_id)
            .where(MusicBrainzReleaseGroupArtist.release_group_mbid.in_(chunk), Guild.release_day.is_(True))
        ):
            artists.setdefault(mbid, set()).add(artist_id)
            guilds_of.setdefault(mbid, set()).add(guild_id)
    return {
        m: ProbeTarget(
            m,
            g.title,
            g.release_date,
            g.primary_type,
            tuple(g.barcodes),
            tuple(sorted(artists.get(m, ()))),
            tuple(sorted(guilds_of.get(m, ()))),
        )
        for m, g in groups.items()
    }


async def finish_probe(
    session: AsyncSession,
    mbid: str,
    day: dt.date,
    *,
    requests: int,
    next_probe_at: dt.datetime | None,
    found_release_id: str | None = None,
    found_at: dt.datetime | None = None,
) -> None:
    """Record a probe of ``mbid`` on ``day``: ``requests`` Spotify requests added to the row's count; the
    next probe due at ``next_probe_at`` (None: no more); when ``found_release_id`` is given, the Spotify
    release the probe recognised and ``found_at`` (then no more probes, whatever ``next_probe_at``).
    Not committed."""
    values: dict[str, object] = {
        "requests": ReleaseDayProbe.requests + max(0, int(requests)),
        "next_probe_at": None if found_release_id is not None else next_probe_at,
    }
    if found_release_id is not None:
        values["spotify_release_id"] = found_release_id
        values["found_at"] = found_at
    await session.execute(
        update(ReleaseDayProbe)
        .where(ReleaseDayProbe.release_group_mbid == mbid, ReleaseDayProbe.release_day == day)
        .values(**values)
    )


async def probe_row(session: AsyncSession, mbid: str, day: dt.date) -> ReleaseDayProbe | None:
    """The probe row of ``mbid`` on ``day`` (populated afresh), or None."""
    return await session.get(ReleaseDayProbe, (mbid, day), populate_existing=True)
