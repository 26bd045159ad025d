"""Artists and releases: artist rows and tracking state, releases (first seen), the
artist↔release links, and the batch writes of a tracking run.

Every function takes an open ``AsyncSession`` and never commits: the caller owns the transaction.
Inserts that may race with another writer use ``INSERT … ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, Required, TypedDict

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage._sql import (
    chunks,
    escape_like,
    insert_ignore,
    insert_ignore_then_get,
    insert_many_ignore,
    insert_many_ignore_returning_ids,
    rowcount,
)
from storage.models import (
    Artist,
    ArtistRelease,
    Follow,
    Release,
    ReleaseTrack,
)

LABEL_CHUNK = 500
"""Ids per query of the labeler's reads (bound parameter lists stay under SQLite's limit)."""


class SpotifyArtistRef(Protocol):
    """An album's artist as Spotify lists it (``bot.spotify.models.ArtistRef``)."""

    @property
    def id(self) -> str:
        """The Spotify artist id."""
        ...

    @property
    def name(self) -> str:
        """The artist's name."""
        ...


class SpotifyAlbum(Protocol):
    """The fields of a Spotify album a ``releases`` row keeps (``bot.spotify.models.Album``; Spotify Web
    API, "Get Artist's Albums": ``album_type``, ``release_date``, ``release_date_precision``, …)."""

    @property
    def id(self) -> str:
        """The Spotify album id."""
        ...

    @property
    def name(self) -> str:
        """The title."""
        ...

    @property
    def album_type(self) -> str:
        """``album`` | ``single`` | ``compilation``."""
        ...

    @property
    def artists(self) -> Sequence[SpotifyArtistRef]:
        """The album's artists."""
        ...

    @property
    def release_date(self) -> str:
        """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``."""
        ...

    @property
    def release_date_precision(self) -> str:
        """``year`` | ``month`` | ``day``."""
        ...

    @property
    def total_tracks(self) -> int | None:
        """Tracks on the album, when listed."""
        ...

    @property
    def image_url(self) -> str | None:
        """The largest cover image, when listed."""
        ...


class ReleaseRow(TypedDict):
    """A ``releases`` row to insert (:func:`release_values`); times aware UTC."""

    id: str
    name: str
    album_type: str
    artists: list[dict[str, str]]
    release_date: str
    release_date_precision: str
    total_tracks: int | None
    image_url: str | None
    first_seen_at: dt.datetime
    labels: list[dict[str, Any]]
    tracks_fetched: bool


class NewArtistRow(TypedDict, total=False):
    """An ``artists`` row to insert if absent: ``id`` and the columns to set (the others take their defaults)."""

    id: Required[str]
    name: Required[str]
    image_url: str | None
    group_state: Mapping[str, object]
    runs_skipped: int


class LinkRow(TypedDict):
    """An ``artist_releases`` row: release ``release_id`` listed under ``artist_id`` in ``album_group``,
    first seen at ``first_seen_at`` (UTC), by the silent ``baseline`` or by run ``run_id``."""

    artist_id: str
    release_id: str
    album_group: str
    first_seen_at: dt.datetime
    baseline: bool
    run_id: int | None


class ArtistUpdate(TypedDict, total=False):
    """The columns of artist ``id`` a check sets (times aware UTC; ``group_state`` the JSON of
    ``bot.tracking.detect``); only the keys present are written."""

    id: Required[str]
    last_checked_at: dt.datetime
    last_error: str | None
    group_state: Mapping[str, object]
    last_release_at: dt.datetime | None
    runs_skipped: int
    baselined_at: dt.datetime
    exact_checked_at: dt.datetime


async def get_or_create_artist(
    session: AsyncSession, artist_id: str, name: str, image_url: str | None = None
) -> Artist:
    """Return artist ``artist_id``, adding it (not committed, not baselined) if absent.

    An existing row keeps its name unless it is empty; ``image_url`` fills a missing one.
    A concurrent insert of the same artist by another session is not an error.
    """
    artist = await session.get(Artist, artist_id)
    if artist is None:
        artist = await insert_ignore_then_get(
            session, Artist, {"id": artist_id, "name": name, "image_url": image_url, "group_state": {}}, artist_id
        )
    if not artist.name and name:
        artist.name = name
    if image_url and not artist.image_url:
        artist.image_url = image_url
    return artist


async def artist_names(session: AsyncSession, artist_ids: Iterable[str]) -> dict[str, str]:
    """``{artist id: name}`` for the given ids that have an ``artists`` row."""
    ids = list(artist_ids)
    if not ids:
        return {}
    rows = await session.execute(select(Artist.id, Artist.name).where(Artist.id.in_(ids)))
    return dict(rows.all())


async def known_release_ids(session: AsyncSession, artist_id: str) -> set[str]:
    """Ids of the releases already linked to ``artist_id`` (rows of ``artist_releases``, baseline or not)."""
    rows = await session.scalars(select(ArtistRelease.release_id).where(ArtistRelease.artist_id == artist_id))
    return set(rows.all())


async def upsert_release(session: AsyncSession, album: SpotifyAlbum, *, now: dt.datetime) -> bool:
    """Store Spotify album ``album`` (a ``bot.spotify.models.Album``) as a release first seen at ``now``.

    Does nothing when the release already exists (its first-seen time is kept).
    Returns True when a row was inserted.
    """
    values = release_values(album, now)
    result = await session.execute(insert_ignore(session, Release, dict(values)))
    return bool(rowcount(result))


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
    result = await session.execute(insert_ignore(session, ArtistRelease, values))
    return bool(rowcount(result))


TrackingRow = tuple[dt.datetime | None, dt.datetime | None, dt.datetime | None, int, dict[str, Any], dt.datetime | None]
"""An artist's tracking columns: ``(baselined_at, last_checked_at, last_release_at, runs_skipped, group_state,
exact_checked_at)``; times aware UTC, ``group_state`` the JSON of ``bot.tracking.detect``."""


async def artist_tracking_rows(session: AsyncSession, artist_ids: Iterable[str]) -> dict[str, TrackingRow]:
    """``{id: TrackingRow}`` of the given ids that have an ``artists`` row, in one query per 900 ids."""
    ids = list(dict.fromkeys(artist_ids))
    out: dict[str, TrackingRow] = {}
    for chunk in chunks(ids, 900):
        rows = await session.execute(
            select(
                Artist.id,
                Artist.baselined_at,
                Artist.last_checked_at,
                Artist.last_release_at,
                Artist.runs_skipped,
                Artist.group_state,
                Artist.exact_checked_at,
            ).where(Artist.id.in_(chunk))
        )
        for artist_id, baselined_at, checked_at, release_at, skipped, state, exact_at in rows:
            out[artist_id] = (baselined_at, checked_at, release_at, skipped, state, exact_at)
    return out


async def known_release_groups(session: AsyncSession, artist_id: str) -> dict[str, str]:
    """``{release id: album group}`` of every release linked to ``artist_id`` (baseline or not)."""
    rows = await session.execute(
        select(ArtistRelease.release_id, ArtistRelease.album_group).where(ArtistRelease.artist_id == artist_id)
    )
    return dict(rows.all())


async def linked_artist_ids(session: AsyncSession, artist_ids: Iterable[str]) -> set[str]:
    """The ids among ``artist_ids`` with at least one linked release (``artist_releases`` row); one query per 900 ids."""
    ids = list(dict.fromkeys(artist_ids))
    out: set[str] = set()
    for chunk in chunks(ids, 900):
        rows = await session.scalars(
            select(ArtistRelease.artist_id).where(ArtistRelease.artist_id.in_(chunk)).distinct()
        )
        out.update(rows.all())
    return out


# --- tracking: artist rows of a check, and the labels of new releases (bot.tracking) ----------


async def is_baselined(session: AsyncSession, artist_id: str) -> bool:
    """True when artist ``artist_id`` has a row whose silent baseline is taken (``baselined_at`` set)."""
    return await session.scalar(select(Artist.baselined_at).where(Artist.id == artist_id)) is not None


async def artist_exists(session: AsyncSession, artist_id: str) -> bool:
    """True when artist ``artist_id`` has an ``artists`` row."""
    return await session.scalar(select(Artist.id).where(Artist.id == artist_id)) is not None


async def record_artist_error(session: AsyncSession, artist_id: str, reason: str) -> None:
    """``artists.last_error = reason`` (why its check failed); nothing when the artist has no row."""
    await session.execute(update(Artist).where(Artist.id == artist_id).values(last_error=reason))


class TrackRow(NamedTuple):
    """One ``release_tracks`` row of a release: Spotify ``track_id`` (None when unknown), ``name``,
    ``duration_ms`` (milliseconds), ``isrc`` (None when unknown)."""

    track_id: str | None
    name: str
    duration_ms: int
    isrc: str | None


async def releases_by_id(session: AsyncSession, release_ids: Iterable[str]) -> dict[str, Release]:
    """``{release id: Release}`` for the ids that have a ``releases`` row; one query per 500 ids."""
    out: dict[str, Release] = {}
    for chunk in chunks(list(release_ids), LABEL_CHUNK):
        for release in (await session.scalars(select(Release).where(Release.id.in_(chunk)))).all():
            out[release.id] = release
    return out


async def artist_ids_of_releases(session: AsyncSession, release_ids: Iterable[str]) -> dict[str, set[str]]:
    """``{release id: {artist id, …}}``: the artists each release is linked to (``artist_releases``,
    baseline or not); ids without a link are absent. One query per 500 ids."""
    out: dict[str, set[str]] = {}
    for chunk in chunks(list(release_ids), LABEL_CHUNK):
        rows = await session.execute(
            select(ArtistRelease.release_id, ArtistRelease.artist_id).where(ArtistRelease.release_id.in_(chunk))
        )
        for release_id, artist_id in rows:
            out.setdefault(release_id, set()).add(artist_id)
    return out


async def release_ids_of_artists(session: AsyncSession, artist_ids: Iterable[str]) -> dict[str, set[str]]:
    """``{artist id: {release id, …}}``: every release linked to each artist (baseline or not); artists
    without a link are absent. One query per 500 ids."""
    out: dict[str, set[str]] = {}
    for chunk in chunks(list(artist_ids), LABEL_CHUNK):
        rows = await session.execute(
            select(ArtistRelease.artist_id, ArtistRelease.release_id).where(ArtistRelease.artist_id.in_(chunk))
        )
        for artist_id, release_id in rows:
            out.setdefault(artist_id, set()).add(release_id)
    return out


async def release_tracks(session: AsyncSession, release_ids: Iterable[str]) -> dict[str, list[TrackRow]]:
    """``{release id: [TrackRow in position order]}`` of the releases with stored tracks; one query per 500 ids."""
    out: dict[str, list[TrackRow]] = {}
    for chunk in chunks(list(release_ids), LABEL_CHUNK):
        rows = await session.execute(
            select(
                ReleaseTrack.release_id,
                ReleaseTrack.track_id,
                ReleaseTrack.name,
                ReleaseTrack.duration_ms,
                ReleaseTrack.isrc,
            )
            .where(ReleaseTrack.release_id.in_(chunk))
            .order_by(ReleaseTrack.release_id, ReleaseTrack.position)
        )
        for release_id, track_id, name, duration_ms, isrc in rows:
            out.setdefault(release_id, []).append(TrackRow(track_id, name, duration_ms, isrc))
    return out


async def store_labels(
    session: AsyncSession,
    release_id: str,
    labels: Sequence[Mapping[str, object]],
    *,
    tracks: Sequence[TrackRow] | None = None,
    upc: str | None = None,
) -> None:
    """Set ``releases.labels`` of ``release_id`` (label dicts, see ``bot.tracking.labels``).

    With ``tracks`` (read by ``GET /albums/{id}``) the release's ``release_tracks`` rows are
    replaced by them (``position`` = index in ``tracks``), and ``tracks_fetched`` and ``upc``
    are set too. Not committed.
    """
    values: dict[str, object] = {"labels": list(labels)}
    if tracks is not None:
        values.update(tracks_fetched=True, upc=upc)
        await session.execute(delete(ReleaseTrack).where(ReleaseTrack.release_id == release_id))
        if tracks:
            await session.execute(
                insert(ReleaseTrack),
                [
                    {
                        "release_id": release_id,
                        "position": i,
                        "track_id": t.track_id,
                        "name": t.name,
                        "duration_ms": t.duration_ms,
                        "isrc": t.isrc,
                    }
                    for i, t in enumerate(tracks)
                ],
            )
    await session.execute(update(Release).where(Release.id == release_id).values(**values))


def release_values(album: SpotifyAlbum, now: dt.datetime) -> ReleaseRow:
    """The ``releases`` row of Spotify album ``album`` first seen at ``now``."""
    return {
        "id": album.id,
        "name": album.name,
        "album_type": album.album_type,
        "artists": [{"id": a.id, "name": a.name} for a in album.artists],
        "release_date": album.release_date,
        "release_date_precision": album.release_date_precision,
        "total_tracks": album.total_tracks,
        "image_url": album.image_url,
        "first_seen_at": now,
        "labels": [],
        "tracks_fetched": False,
    }


async def store_checks(
    session: AsyncSession,
    *,
    new_artists: Sequence[NewArtistRow] = (),
    releases: Sequence[ReleaseRow] = (),
    links: Sequence[LinkRow] = (),
    artist_updates: Sequence[ArtistUpdate] = (),
    announce_ids: set[str] | frozenset[str] = frozenset(),
) -> set[str]:
    """Store a batch of artist checks in the caller's transaction (not committed).

    Returns the ids among ``announce_ids`` whose ``releases`` row this call inserted (an
    ``INSERT … ON CONFLICT DO NOTHING … RETURNING id``: exact even when another process
    stores the same release at the same time) — the releases first seen now.

    ``new_artists``: ``artists`` rows to insert if absent; ``releases``: rows from
    :func:`release_values` (existing ones keep their first-seen time); ``links``:
    ``artist_releases`` rows (existing links untouched); ``artist_updates``: ``id`` and the
    columns to set (one statement per set of keys present).
    Executemany statements: a few round trips per batch, whatever its size.
    """
    if new_artists:
        # Artist rows in primary-key order, inserts and updates alike: two runs writing overlapping
        # artists lock them in the same order, so they cannot deadlock on PostgreSQL.
        ordered: list[NewArtistRow] = sorted(new_artists, key=lambda r: r["id"])
        await insert_many_ignore(session, Artist, ordered)
    inserted: set[str] = set()
    if releases:
        unique = list({r["id"]: r for r in releases}.values())
        firsts = [r for r in unique if r["id"] in announce_ids]
        rest = [r for r in unique if r["id"] not in announce_ids]
        if firsts:
            inserted = await insert_many_ignore_returning_ids(session, Release, firsts)
        if rest:
            await insert_many_ignore(session, Release, rest)
    if links:
        unique_links = list({(r["artist_id"], r["release_id"]): r for r in links}.values())
        await insert_many_ignore(session, ArtistRelease, unique_links)
    if artist_updates:
        by_keys: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
        for row in artist_updates:
            by_keys.setdefault(tuple(sorted(k for k in row if k != "id")), []).append(row)
        for rows in by_keys.values():
            rows.sort(key=lambda r: r["id"])
        table = Artist.__table__
        for keys, rows in by_keys.items():
            stmt = update(table).where(table.c.id == bindparam("b_id")).values({k: bindparam(f"b_{k}") for k in keys})
            await session.execute(
                stmt, [{f"b_{k}": v for k, v in {"id": r["id"], **{k: r[k] for k in keys}}.items()} for r in rows]
            )
    return inserted


async def linked_releases(
    session: AsyncSession, artist_ids: Iterable[str], *, exclude: Iterable[str] = ()
) -> dict[str, list[Release]]:
    """``{artist id: [Release]}``: the releases linked to each artist (baseline or not), minus ``exclude``."""
    ids = list(dict.fromkeys(artist_ids))
    skip = set(exclude)
    out: dict[str, list[Release]] = {a: [] for a in ids}
    for chunk in chunks(ids, 900):
        rows = await session.execute(
            select(ArtistRelease.artist_id, Release)
            .join(Release, Release.id == ArtistRelease.release_id)
            .where(ArtistRelease.artist_id.in_(chunk))
            .order_by(Release.first_seen_at, Release.id)
        )
        for artist_id, release in rows:
            if release.id not in skip:
                out[artist_id].append(release)
    return out


async def set_folded_into(session: AsyncSession, editions: dict[str, str]) -> None:
    """``releases.folded_into = known`` for each ``{release id: known release id}`` (not committed)."""
    if not editions:
        return
    table = Release.__table__
    await session.execute(
        update(table).where(table.c.id == bindparam("b_id")).values(folded_into=bindparam("b_k")),
        [{"b_id": r, "b_k": k} for r, k in editions.items()],
    )


async def bump_runs_skipped(session: AsyncSession, artist_ids: Iterable[str]) -> None:
    """``runs_skipped += 1`` for each id (one statement)."""
    ids = list(artist_ids)
    for chunk in chunks(ids, 900):
        await session.execute(update(Artist).where(Artist.id.in_(chunk)).values(runs_skipped=Artist.runs_skipped + 1))


# --- reads for the slash commands ---


async def search_artist_names(session: AsyncSession, text: str, limit: int) -> list[tuple[str, str]]:
    """``(artist id, name)`` of up to ``limit`` stored artists whose name contains ``text``
    (case-insensitive, ``LIKE`` wildcards in ``text`` taken literally), by name."""
    rows = await session.execute(
        select(Artist.id, Artist.name)
        .where(Artist.name.ilike(f"%{escape_like(text)}%", escape="\\"))
        .order_by(Artist.name)
        .limit(limit)
    )
    return [(artist_id, name) for artist_id, name in rows]


@dataclass(frozen=True)
class FollowedArtist:
    """One row of ``/following``: artist id and name, when the guild followed it (UTC), the artist's
    last successful check (UTC) and last check error, and its latest own release in the store
    (id, name, Spotify ``release_date`` and ``release_date_precision``; None when none is known)."""

    artist_id: str
    name: str
    followed_at: dt.datetime
    last_checked_at: dt.datetime | None
    last_error: str | None
    last_release_id: str | None = None
    last_release_name: str | None = None
    last_release_date: str | None = None
    last_release_precision: str | None = None


async def followed_with_latest_release(session: AsyncSession, guild_id: int) -> list[FollowedArtist]:
    """Guild ``guild_id``'s followed artists, by name (case-insensitive), each with its latest release.

    The latest release is the newest (by release date, then first seen, then id) of the
    artist's own releases in the store — album, single or compilation, baseline included;
    ``appears_on`` listings are someone else's releases and do not count. Two queries.
    """
    rows = (
        await session.execute(
            select(Follow.artist_id, Artist.name, Follow.followed_at, Artist.last_checked_at, Artist.last_error)
            .join(Artist, Artist.id == Follow.artist_id)
            .where(Follow.guild_id == guild_id)
            .order_by(func.lower(Artist.name))
        )
    ).all()
    ranked = (
        select(
            ArtistRelease.artist_id,
            Release.id,
            Release.name,
            Release.release_date,
            Release.release_date_precision,
            func.row_number()
            .over(
                partition_by=ArtistRelease.artist_id,
                order_by=(Release.release_date.desc(), Release.first_seen_at.desc(), Release.id),
            )
            .label("rank"),
        )
        .join(Release, Release.id == ArtistRelease.release_id)
        .join(Follow, and_(Follow.artist_id == ArtistRelease.artist_id, Follow.guild_id == guild_id))
        .where(ArtistRelease.album_group != "appears_on")
        .subquery()
    )
    latest = {
        artist_id: (release_id, name, date, precision)
        for artist_id, release_id, name, date, precision in await session.execute(
            select(
                ranked.c.artist_id, ranked.c.id, ranked.c.name, ranked.c.release_date, ranked.c.release_date_precision
            ).where(ranked.c.rank == 1)
        )
    }
    return [
        FollowedArtist(artist_id, name, followed_at, checked, error, *latest.get(artist_id, (None, None, None, None)))
        for artist_id, name, followed_at, checked, error in rows
    ]


# --- writes for the slash commands ---


@dataclass(frozen=True)
class ArtistProfile:
    """A Spotify artist as the commands know it: ``id`` (22-character base-62), ``name``, ``image_url`` or None."""

    id: str
    name: str
    image_url: str | None = None


async def save_artists(session: AsyncSession, artists: Sequence[ArtistProfile], *, refresh_profiles: bool) -> None:
    """Store ``artists`` (not baselined) unless present: ``INSERT … ON CONFLICT DO NOTHING``, in id order.

    With ``refresh_profiles`` the name of each known artist is then set to the given one and its
    image to the given one when there is one (a plain ``UPDATE`` per artist, in id order). Race-free:
    two transactions storing the same new artist both succeed (on PostgreSQL the second waits for
    the first), and writers lock artist rows in id order, as tracking does. Not committed.
    """
    ordered = sorted({a.id: a for a in artists}.values(), key=lambda a: a.id)
    if not ordered:
        return
    await insert_many_ignore(
        session, Artist, [{"id": a.id, "name": a.name, "image_url": a.image_url, "group_state": {}} for a in ordered]
    )
    if refresh_profiles:
        for a in ordered:
            await session.execute(
                update(Artist)
                .where(Artist.id == a.id)
                .values(name=a.name, image_url=func.coalesce(a.image_url, Artist.image_url))
            )


async def releases_by_ids(session: AsyncSession, release_ids: Iterable[str]) -> dict[str, Release]:
    """``{release id: Release}`` for the given ids that have a ``releases`` row (one query per 900 ids)."""
    ids = list(dict.fromkeys(release_ids))
    found: dict[str, Release] = {}
    for chunk in chunks(ids, 900):
        found.update((r.id, r) for r in (await session.scalars(select(Release).where(Release.id.in_(chunk)))).all())
    return found
