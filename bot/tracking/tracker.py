"""Change detection: which releases of the followed artists are new (docs/design.md, "Tracking").

Plain async code over the store and a Spotify client; no discord import. The client
is anything with the ``SpotifyClient`` surface used here (``artist_albums``,
``artist_albums_next``, ``get_artist``, ``request_count``, ``cooldown_until``).

Requests follow Spotify Web API "Get Artist's Albums" (``GET /artists/{id}/albums``):
one ``include_groups=<group>`` request per tracked group, ``limit=10`` (the 2026
maximum), results newest first inside a group. ``appears_on`` is not tracked by
default because Spotify lists it unordered, which breaks early stopping.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.spotify.errors import SpotifyCooldown, SpotifyError, SpotifyNotFound
from storage import queries
from storage.db import Database
from storage.models import Artist

log = logging.getLogger(__name__)

TRACKED_GROUPS = ("album", "single", "compilation")
PAGE_LIMIT = 10


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def cooldown_reason(until: dt.datetime) -> str:
    """The ``failed`` reason of an artist skipped because of a Spotify cooldown ending at ``until`` (UTC)."""
    return f"Spotify cooldown until {until.astimezone(dt.timezone.utc).isoformat(timespec='seconds')}"


def failure_reason(exc: BaseException) -> str:
    """A short, user-readable reason for a failed artist check (≤ 300 characters)."""
    if isinstance(exc, SpotifyNotFound):
        text = "artist not found on Spotify (404)"
    elif isinstance(exc, SpotifyError):
        status = f" {exc.status}" if exc.status else ""
        text = f"Spotify error{status}: {exc}"
    elif isinstance(exc, TimeoutError):
        text = "Spotify request timed out"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text[:300]


@dataclass
class TrackResult:
    """Outcome of :meth:`Tracker.track`.

    ``checked``: artist ids checked successfully (including ones baselined this run),
    in input order; ``failed``: artist id → reason; ``new_releases``: release ids newly
    linked (non-baseline) in this call, each once; ``baselined``: artists whose silent
    baseline was taken instead of a check; ``requests``: Spotify API requests made
    (client ``request_count`` delta); ``cooldown``: the cooldown that stopped the run.
    """

    checked: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    new_releases: list[str] = field(default_factory=list)
    requests: int = 0
    cooldown: SpotifyCooldown | None = None
    baselined: list[str] = field(default_factory=list)


class Tracker:
    """Finds new releases of artists and records them in the store.

    ``db``: :class:`storage.db.Database`; ``spotify``: the Spotify client;
    ``clock``: returns the current aware UTC datetime; ``groups``: album groups
    tracked; ``concurrency``: artists checked at once (``asyncio.Semaphore``);
    ``max_pages``: safety cap of pages followed per group in one check (a check that
    meets no known release pages on at most this far).

    Store writes are serialised inside the process (one lock) and committed once per
    artist, so an artist's findings are stored whole or not at all.
    """

    def __init__(
        self,
        db: Database,
        spotify: Any,
        *,
        clock: Callable[[], dt.datetime] = _utcnow,
        groups: Sequence[str] = TRACKED_GROUPS,
        concurrency: int = 4,
        max_pages: int = 20,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be ≥ 1")
        self.db = db
        self.spotify = spotify
        self.clock = clock
        self.groups = tuple(groups)
        self.concurrency = concurrency
        self.max_pages = max_pages
        self._write_lock = asyncio.Lock()

    # --- cooldown ------------------------------------------------------------------
    async def active_cooldown(self) -> SpotifyCooldown | None:
        """The Spotify cooldown in force now, or None.

        Reads ``spotify_state`` (so a cooldown survives restarts) and hands a stored one
        to the client (``spotify.cooldown_until``); a cooldown known only to the client
        is persisted.
        """
        now = self.clock()
        async with self.db.sessions() as session:
            until, reason = await queries.get_cooldown(session)
        client_until = getattr(self.spotify, "cooldown_until", None)
        if until is not None and until > now:
            if client_until is None or client_until < until:
                try:
                    self.spotify.cooldown_until = until
                except AttributeError:  # pragma: no cover - a client without the attribute
                    pass
            return SpotifyCooldown(until, reason or "rate limit")
        if client_until is not None and client_until > now:
            cooldown = SpotifyCooldown(client_until, "rate limit")
            await self._persist_cooldown(cooldown)
            return cooldown
        return None

    async def _persist_cooldown(self, cooldown: SpotifyCooldown) -> None:
        async with self._write_lock, self.db.sessions() as session:
            await queries.set_cooldown(session, cooldown.until, cooldown.reason)
            await session.commit()
        log.warning("Spotify cooldown until %s (%s)", cooldown.until.isoformat(), cooldown.reason)

    # --- baseline ------------------------------------------------------------------
    async def baseline(self, artist_id: str) -> int:
        """Take the silent baseline of ``artist_id``; returns the number of releases recorded.

        The newest page (``limit=10``) of each tracked group is stored with
        ``baseline=True`` (never announced) and ``artists.baselined_at`` is set. One
        request per group, plus one ``get_artist`` when the artist has no row yet.
        Idempotent: an artist already baselined costs no request and returns 0.
        Raises ``SpotifyCooldown`` (persisted; no request made while one is in force),
        ``SpotifyNotFound`` or ``SpotifyError``; nothing is stored then.
        """
        async with self.db.sessions() as session:
            artist = await session.get(Artist, artist_id)
            if artist is not None and artist.baselined_at is not None:
                return 0
        cooldown = await self.active_cooldown()
        if cooldown is not None:
            raise cooldown
        try:
            return await self._baseline(artist_id, run_id=None)
        except SpotifyCooldown as exc:
            await self._persist_cooldown(exc)
            raise

    async def _baseline(self, artist_id: str, run_id: int | None) -> int:
        async with self.db.sessions() as session:
            exists = await session.get(Artist, artist_id) is not None
        spotify_artist = None if exists else await self.spotify.get_artist(artist_id)
        pages = {}
        for group in self.groups:
            pages[group] = await self.spotify.artist_albums(artist_id, include_groups=group, limit=PAGE_LIMIT)
        async with self._write_lock, self.db.sessions() as session:
            if spotify_artist is not None:
                artist = await queries.get_or_create_artist(
                    session, artist_id, spotify_artist.name, getattr(spotify_artist, "image_url", None)
                )
            else:
                artist = await session.get(Artist, artist_id)
            if artist.baselined_at is not None:  # taken meanwhile by another task
                return 0
            now = self.clock()
            stored = 0
            for group, page in pages.items():
                for album in page.items:
                    await queries.upsert_release(session, album, now=now)
                    stored += await queries.link_release(
                        session, artist_id, album.id, album_group=group, now=now, baseline=True, run_id=run_id
                    )
            artist.baselined_at = now
            artist.last_checked_at = now
            artist.last_error = None
            artist.group_state = _group_state(pages)
            await session.commit()
        log.info("baseline of %s: %d releases", artist_id, stored)
        return stored

    # --- tracking ------------------------------------------------------------------
    async def track(self, artist_ids: Iterable[str], *, run_id: int | None = None) -> TrackResult:
        """Check each artist once for new releases and store them.

        Duplicate ids are checked once. An artist never baselined gets its baseline
        instead (nothing new from it). Otherwise, per tracked group: the newest page
        (``limit=10``), items collected until the first release already linked to the
        artist; the next page is fetched only when the whole page was unknown. New
        items are stored (``releases`` first seen now, ``artist_releases`` with
        ``baseline=False`` and ``run_id``); ``last_checked_at``/``group_state`` are
        updated and ``last_error`` cleared — one commit per artist.

        Failures never raise: an artist that fails (Spotify error, not found, timeout,
        anything) gets ``last_error`` and a ``failed`` entry; the others go on. A
        ``SpotifyCooldown`` — raised by the client, or already in force at the start
        (read from ``spotify_state``) — is persisted and stops the run: every artist not
        yet checked is ``failed`` with "Spotify cooldown until …" (its ``last_error``
        is left alone: not the artist's fault) and ``cooldown`` is set.
        """
        ids = list(dict.fromkeys(artist_ids))
        result = TrackResult()
        before = getattr(self.spotify, "request_count", 0)
        cooldown = await self.active_cooldown()
        skipped: set[str] = set()
        outcomes: dict[str, list[str] | BaseException] = {}
        baselined: set[str] = set()
        semaphore = asyncio.Semaphore(self.concurrency)

        async def check_one(artist_id: str) -> None:
            nonlocal cooldown
            async with semaphore:
                if cooldown is not None:
                    skipped.add(artist_id)
                    return
                try:
                    new, was_baseline = await self._check(artist_id, run_id)
                except SpotifyCooldown as exc:
                    if cooldown is None or exc.until > cooldown.until:
                        cooldown = exc
                    skipped.add(artist_id)
                except Exception as exc:  # one artist never stops the others
                    log.warning("check of artist %s failed: %s", artist_id, exc, exc_info=True)
                    outcomes[artist_id] = exc
                    await self._record_error(artist_id, failure_reason(exc))
                else:
                    outcomes[artist_id] = new
                    if was_baseline:
                        baselined.add(artist_id)

        if cooldown is None:
            await asyncio.gather(*(check_one(a) for a in ids))
            if cooldown is not None:
                await self._persist_cooldown(cooldown)
        else:
            skipped.update(ids)

        seen_new: set[str] = set()
        for artist_id in ids:
            if artist_id in skipped:
                result.failed[artist_id] = cooldown_reason(cooldown.until)
                continue
            outcome = outcomes[artist_id]
            if isinstance(outcome, BaseException):
                result.failed[artist_id] = failure_reason(outcome)
                continue
            result.checked.append(artist_id)
            if artist_id in baselined:
                result.baselined.append(artist_id)
            for release_id in outcome:
                if release_id not in seen_new:
                    seen_new.add(release_id)
                    result.new_releases.append(release_id)
        result.cooldown = cooldown
        result.requests = getattr(self.spotify, "request_count", 0) - before
        return result

    async def _check(self, artist_id: str, run_id: int | None) -> tuple[list[str], bool]:
        """Check one artist; returns (release ids newly linked, whether a baseline was taken instead)."""
        async with self.db.sessions() as session:
            artist = await session.get(Artist, artist_id)
            if artist is None or artist.baselined_at is None:
                baselined_now = True
            else:
                baselined_now = False
                known = await queries.known_release_ids(session, artist_id)
        if baselined_now:
            await self._baseline(artist_id, run_id)
            return [], True

        found: dict[str, list[Any]] = {}
        first_pages: dict[str, Any] = {}
        seen: set[str] = set()
        for group in self.groups:
            page = await self.spotify.artist_albums(artist_id, include_groups=group, limit=PAGE_LIMIT)
            first_pages[group] = page
            new_items: list[Any] = []
            pages = 1
            while page is not None:
                hit_known = False
                for album in page.items:
                    if album.id in known:
                        hit_known = True
                        break
                    if album.id not in seen:
                        seen.add(album.id)
                        new_items.append(album)
                if hit_known or not page.next or pages >= self.max_pages:
                    if not hit_known and page.next:
                        log.warning("artist %s group %s: stopped after %d pages without a known release", artist_id, group, pages)
                    break
                page = await self.spotify.artist_albums_next(page)
                pages += 1
            found[group] = new_items

        linked: list[str] = []
        async with self._write_lock, self.db.sessions() as session:
            now = self.clock()
            for group, albums in found.items():
                # Oldest first, so the first-seen order of one check follows release order.
                for album in reversed(albums):
                    await queries.upsert_release(session, album, now=now)
                    if await queries.link_release(
                        session, artist_id, album.id, album_group=group, now=now, baseline=False, run_id=run_id
                    ):
                        linked.append(album.id)
            artist = await session.get(Artist, artist_id)
            artist.last_checked_at = now
            artist.last_error = None
            artist.group_state = _group_state(first_pages)
            await session.commit()
        if linked:
            log.info("artist %s: %d new releases", artist_id, len(linked))
        return linked, False

    async def _record_error(self, artist_id: str, reason: str) -> None:
        try:
            async with self._write_lock, self.db.sessions() as session:
                artist = await session.get(Artist, artist_id)
                if artist is not None:
                    artist.last_error = reason
                    await session.commit()
        except Exception:  # pragma: no cover - the store failing too; the run still reports it
            log.exception("could not record the error of artist %s", artist_id)


def _group_state(pages: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{group: {"total": page.total, "newest": [ids of the newest page]}}``."""
    return {group: {"total": page.total, "newest": [a.id for a in page.items]} for group, page in pages.items()}
