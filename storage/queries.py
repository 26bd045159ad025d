"""Small async query helpers shared by the tracker, the deliverer and the runner.

Conventions: every helper takes an open ``AsyncSession`` and **never commits** —
the caller owns the transaction. Times are timezone-aware UTC ``datetime`` values.
Inserts that may race with another writer (``upsert_release``, ``link_release``,
``get_or_create_guild``, ``get_or_create_artist``, ``follow_artist``) use
``INSERT … ON CONFLICT DO NOTHING`` on SQLite/PostgreSQL, so two tasks (or two
processes) storing the same row never fail on the primary key: the loser's insert does
nothing (on PostgreSQL it first waits for the winner's transaction) and the row is read back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Artist, ArtistRelease, BotState, Follow, Guild, Release, SpotifyState

SPOTIFY_STATE_ID = 1


def _insert_ignore(session: AsyncSession, model: type, values: dict[str, Any]):
    """An ``INSERT`` of ``values`` into ``model`` that does nothing on a key conflict, or None if unsupported."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # pragma: no cover - only SQLite/PostgreSQL are used
        return None
    return insert(model).values(**values).on_conflict_do_nothing()


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
        from bot.scheduling.due import next_due  # pure stdlib helper; imported late to keep storage standalone

        next_due_at = next_due(schedule_day, schedule_time, timezone, now)
    values = {"id": guild_id, "schedule_day": schedule_day, "schedule_time": schedule_time, "timezone": timezone,
              "next_due_at": next_due_at, "created_at": now}
    return await _insert_ignore_then_get(session, Guild, values, guild_id)


async def get_or_create_artist(
    session: AsyncSession, artist_id: str, name: str, image_url: str | None = None
) -> Artist:
    """Return artist ``artist_id``, adding it (not committed, not baselined) if absent.

    An existing row keeps its name unless it is empty; ``image_url`` fills a missing one.
    A concurrent insert of the same artist by another session is not an error.
    """
    artist = await session.get(Artist, artist_id)
    if artist is None:
        artist = await _insert_ignore_then_get(
            session, Artist, {"id": artist_id, "name": name, "image_url": image_url, "group_state": {}}, artist_id)
    if not artist.name and name:
        artist.name = name
    if image_url and not artist.image_url:
        artist.image_url = image_url
    return artist


async def follow_artist(session: AsyncSession, guild_id: int, artist_id: str, *, now: dt.datetime) -> Follow:
    """Make guild ``guild_id`` follow artist ``artist_id`` since ``now`` (not committed).

    Idempotent: an existing follow keeps its original ``followed_at``, also when another
    session inserts it concurrently. The guild and artist rows must exist (foreign keys;
    ``sqlalchemy.exc.IntegrityError`` otherwise).
    """
    follow = await session.get(Follow, (guild_id, artist_id))
    if follow is None:
        follow = await _insert_ignore_then_get(
            session, Follow, {"guild_id": guild_id, "artist_id": artist_id, "followed_at": now}, (guild_id, artist_id))
    return follow


async def _insert_ignore_then_get(session: AsyncSession, model: type, values: dict[str, Any], key: Any) -> Any:
    """Insert ``values`` into ``model`` unless its key exists (``ON CONFLICT DO NOTHING``), then load row ``key``.

    Pending changes are flushed first. When another transaction inserted the same key,
    PostgreSQL makes the insert wait for it to end, and the row it committed is returned.
    """
    await session.flush()
    stmt = _insert_ignore(session, model, values)
    if stmt is None:  # pragma: no cover - only SQLite/PostgreSQL are used
        session.add(model(**values))
        await session.flush()
    else:
        await session.execute(stmt)
    row = await session.get(model, key, populate_existing=True)
    if row is None:  # pragma: no cover - the row was inserted or exists
        raise LookupError(f"{model.__tablename__} row {key!r} vanished after its insert")
    return row


async def followed_artist_ids(session: AsyncSession, guild_ids: Iterable[int] | None = None) -> list[str]:
    """Distinct Spotify ids of the artists followed by ``guild_ids`` (every guild when None), sorted."""
    query = select(Follow.artist_id).distinct()
    if guild_ids is not None:
        ids = list(guild_ids)
        if not ids:
            return []
        query = query.where(Follow.guild_id.in_(ids))
    return sorted((await session.scalars(query)).all())


async def artist_names(session: AsyncSession, artist_ids: Iterable[str]) -> dict[str, str]:
    """``{artist id: name}`` for the given ids that have an ``artists`` row."""
    ids = list(artist_ids)
    if not ids:
        return {}
    rows = await session.execute(select(Artist.id, Artist.name).where(Artist.id.in_(ids)))
    return {artist_id: name for artist_id, name in rows}


async def known_release_ids(session: AsyncSession, artist_id: str) -> set[str]:
    """Ids of the releases already linked to ``artist_id`` (rows of ``artist_releases``, baseline or not)."""
    rows = await session.scalars(select(ArtistRelease.release_id).where(ArtistRelease.artist_id == artist_id))
    return set(rows.all())


async def upsert_release(session: AsyncSession, album: Any, *, now: dt.datetime) -> bool:
    """Store Spotify album ``album`` (a ``bot.spotify.models.Album``) as a release first seen at ``now``.

    Does nothing when the release already exists (its first-seen time is kept).
    Returns True when a row was inserted.
    """
    values = release_values(album, now)
    stmt = _insert_ignore(session, Release, values)
    if stmt is None:  # pragma: no cover
        if await session.get(Release, album.id) is not None:
            return False
        session.add(Release(**values))
        await session.flush()
        return True
    result = await session.execute(stmt)
    return bool(result.rowcount)


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
    stmt = _insert_ignore(session, ArtistRelease, values)
    if stmt is None:  # pragma: no cover
        if await session.get(ArtistRelease, (artist_id, release_id)) is not None:
            return False
        session.add(ArtistRelease(**values))
        await session.flush()
        return True
    result = await session.execute(stmt)
    return bool(result.rowcount)


async def get_cooldown(session: AsyncSession) -> tuple[dt.datetime | None, str | None]:
    """The persisted Spotify cooldown: ``(cooldown_until UTC or None, reason or None)``."""
    state = await session.get(SpotifyState, SPOTIFY_STATE_ID)
    if state is None:
        return None, None
    return state.cooldown_until, state.cooldown_reason


async def set_cooldown(session: AsyncSession, until: dt.datetime | None, reason: str | None) -> SpotifyState:
    """Persist the Spotify cooldown (``until`` UTC; None clears it) in the single ``spotify_state`` row.

    A later ``until`` is never replaced by an earlier one (two concurrent failures keep the longest).
    """
    state = await _lock_spotify_state(session)  # atomic across processes
    if until is None or state.cooldown_until is None or until >= state.cooldown_until:
        state.cooldown_until = until
        state.cooldown_reason = reason
    await session.flush()
    return state


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


# --- tracking (issue 3): bulk reads and writes for a run --------------------------------

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
    for chunk in _chunks(ids, 900):
        rows = await session.execute(
            select(Follow.artist_id, Guild.album_groups).join(Guild, Guild.id == Follow.guild_id)
            .where(Follow.artist_id.in_(chunk))
        )
        for artist_id, groups in rows:
            union[artist_id].update(groups or DEFAULT_ALBUM_GROUPS)
    return {a: tuple(g for g in _GROUP_ORDER if g in (union[a] or set(DEFAULT_ALBUM_GROUPS))) for a in ids}


async def artist_tracking_rows(session: AsyncSession, artist_ids: Iterable[str]) -> dict[str, tuple]:
    """``{id: (baselined_at, last_checked_at, last_release_at, runs_skipped, group_state, exact_checked_at)}``
    in one query per 900 ids."""
    ids = list(dict.fromkeys(artist_ids))
    out: dict[str, tuple] = {}
    for chunk in _chunks(ids, 900):
        rows = await session.execute(
            select(Artist.id, Artist.baselined_at, Artist.last_checked_at, Artist.last_release_at,
                   Artist.runs_skipped, Artist.group_state, Artist.exact_checked_at).where(Artist.id.in_(chunk))
        )
        for row in rows:
            out[row[0]] = tuple(row[1:])
    return out


async def known_release_groups(session: AsyncSession, artist_id: str) -> dict[str, str]:
    """``{release id: album group}`` of every release linked to ``artist_id`` (baseline or not)."""
    rows = await session.execute(
        select(ArtistRelease.release_id, ArtistRelease.album_group).where(ArtistRelease.artist_id == artist_id))
    return dict(rows.all())


async def linked_artist_ids(session: AsyncSession, artist_ids: Iterable[str]) -> set[str]:
    """The ids among ``artist_ids`` with at least one linked release (``artist_releases`` row); one query per 900 ids."""
    ids = list(dict.fromkeys(artist_ids))
    out: set[str] = set()
    for chunk in _chunks(ids, 900):
        rows = await session.scalars(
            select(ArtistRelease.artist_id).where(ArtistRelease.artist_id.in_(chunk)).distinct())
        out.update(rows.all())
    return out


def release_values(album: Any, now: dt.datetime) -> dict[str, Any]:
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
    new_artists: Sequence[dict[str, Any]] = (),
    releases: Sequence[dict[str, Any]] = (),
    links: Sequence[dict[str, Any]] = (),
    artist_updates: Sequence[dict[str, Any]] = (),
    announce_ids: set[str] | frozenset[str] = frozenset(),
) -> set[str]:
    """Store a batch of artist checks in the caller's transaction (not committed).

    Returns the ids among ``announce_ids`` whose ``releases`` row this call inserted (an
    ``INSERT … ON CONFLICT DO NOTHING … RETURNING id``: exact even when another process
    stores the same release at the same time) — the releases first seen now.

    ``new_artists``: ``artists`` rows to insert if absent; ``releases``: rows from
    :func:`release_values` (existing ones keep their first-seen time); ``links``:
    ``artist_releases`` rows (existing links untouched); ``artist_updates``: dicts with
    ``id`` and the columns to set (all dicts of one call must have the same keys).
    Executemany statements: a few round trips per batch, whatever its size.
    """
    if new_artists:
        # Artist rows in primary-key order, inserts and updates alike: two runs writing overlapping
        # artists lock them in the same order, so they cannot deadlock on PostgreSQL.
        await _insert_many_ignore(session, Artist, sorted(new_artists, key=lambda r: r["id"]))
    inserted: set[str] = set()
    if releases:
        unique = list({r["id"]: r for r in releases}.values())
        firsts = [r for r in unique if r["id"] in announce_ids]
        rest = [r for r in unique if r["id"] not in announce_ids]
        if firsts:
            inserted = await _insert_many_ignore(session, Release, firsts, returning=True)
        if rest:
            await _insert_many_ignore(session, Release, rest)
    if links:
        unique_links = list({(r["artist_id"], r["release_id"]): r for r in links}.values())
        await _insert_many_ignore(session, ArtistRelease, unique_links)
    if artist_updates:
        by_keys: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in artist_updates:
            by_keys.setdefault(tuple(sorted(k for k in row if k != "id")), []).append(row)
        for rows in by_keys.values():
            rows.sort(key=lambda r: r["id"])
        table = Artist.__table__
        for keys, rows in by_keys.items():
            stmt = update(table).where(table.c.id == bindparam("b_id")).values({k: bindparam(f"b_{k}") for k in keys})
            await session.execute(stmt, [{f"b_{k}": v for k, v in {"id": r["id"], **{k: r[k] for k in keys}}.items()}
                                         for r in rows])
    return inserted


async def linked_releases(session: AsyncSession, artist_ids: Iterable[str], *,
                          exclude: Iterable[str] = ()) -> dict[str, list[Release]]:
    """``{artist id: [Release]}``: the releases linked to each artist (baseline or not), minus ``exclude``."""
    ids = list(dict.fromkeys(artist_ids))
    skip = set(exclude)
    out: dict[str, list[Release]] = {a: [] for a in ids}
    for chunk in _chunks(ids, 900):
        rows = await session.execute(
            select(ArtistRelease.artist_id, Release).join(Release, Release.id == ArtistRelease.release_id)
            .where(ArtistRelease.artist_id.in_(chunk)).order_by(Release.first_seen_at, Release.id))
        for artist_id, release in rows:
            if release.id not in skip:
                out[artist_id].append(release)
    return out


async def set_folded_into(session: AsyncSession, editions: dict[str, str]) -> None:
    """``releases.folded_into = known`` for each ``{release id: known release id}`` (not committed)."""
    if not editions:
        return
    table = Release.__table__
    await session.execute(update(table).where(table.c.id == bindparam("b_id")).values(folded_into=bindparam("b_k")),
                          [{"b_id": r, "b_k": k} for r, k in editions.items()])


async def bump_runs_skipped(session: AsyncSession, artist_ids: Iterable[str]) -> None:
    """``runs_skipped += 1`` for each id (one statement)."""
    ids = list(artist_ids)
    for chunk in _chunks(ids, 900):
        await session.execute(update(Artist).where(Artist.id.in_(chunk)).values(runs_skipped=Artist.runs_skipped + 1))


async def budget_used_today(session: AsyncSession, day: str) -> int:
    """Requests recorded for UTC day ``day`` ("YYYY-MM-DD"); 0 when the stored day is another one."""
    state = await session.get(SpotifyState, SPOTIFY_STATE_ID)
    if state is None or state.budget_day != day:
        return 0
    return state.budget_day_requests or 0


async def _lock_spotify_state(session: AsyncSession) -> SpotifyState:
    """The ``spotify_state`` row, created if absent and write-locked for the rest of the transaction.

    The first statement is a write (``UPDATE … SET id = id``): on PostgreSQL it takes the row
    lock, on SQLite the database write lock, before anything is read — so a read-modify-write
    that follows is atomic across processes on both backends.
    """
    stmt = _insert_ignore(session, SpotifyState, {"id": SPOTIFY_STATE_ID, "budget_day_requests": 0})
    if stmt is not None:
        await session.execute(stmt)
    await session.execute(update(SpotifyState).where(SpotifyState.id == SPOTIFY_STATE_ID)
                          .values(id=SpotifyState.id))
    state = await session.get(SpotifyState, SPOTIFY_STATE_ID, populate_existing=True)
    assert state is not None
    return state


async def reserve_budget(session: AsyncSession, day: str, want: int, day_limit: int) -> int:
    """Reserve up to ``want`` requests of UTC day ``day``'s budget ``day_limit``; returns how many were granted.

    Atomic across processes (:func:`_lock_spotify_state`): N processes together never reserve
    more than the day's limit. The reservation counts as spent until :func:`settle_budget`
    gives back what was not used. Not committed: commit at once, the lock is held until then.
    """
    state = await _lock_spotify_state(session)
    used = (state.budget_day_requests or 0) if state.budget_day == day else 0
    grant = max(0, min(int(want), int(day_limit) - used))
    state.budget_day = day
    state.budget_day_requests = used + grant
    await session.flush()
    return grant


async def settle_budget(session: AsyncSession, day: str, delta: int) -> None:
    """Add ``delta`` (negative: give back an unused reservation) to day ``day``'s count, never below 0.

    Nothing happens when the stored day is another one (a new UTC day started meanwhile). Not committed.
    """
    state = await _lock_spotify_state(session)
    if state.budget_day == day:
        state.budget_day_requests = max(0, (state.budget_day_requests or 0) + int(delta))
    elif state.budget_day is None or state.budget_day < day:
        state.budget_day = day
        state.budget_day_requests = max(0, int(delta))
    await session.flush()


def _chunks(items: list[Any], size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


async def _insert_many_ignore(session: AsyncSession, model: type, rows: list[dict[str, Any]], *,
                              returning: bool = False) -> set[Any]:
    """Insert ``rows`` into ``model``'s table, skipping key conflicts; with ``returning``, the
    primary keys (single-column) of the rows actually inserted, else an empty set."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # pragma: no cover
        for row in rows:
            await session.merge(model(**row))
        return set()
    table = model.__table__
    stmt = insert(table).on_conflict_do_nothing()
    if not returning:
        await session.execute(stmt, rows)
        return set()
    key = list(table.primary_key.columns)[0]
    return set((await session.execute(stmt.returning(key), rows)).scalars().all())


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
