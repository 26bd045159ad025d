"""``/follow``, ``/unfollow``, ``/following`` and their autocomplete: which artists a guild follows
(no discord import, no SQL).

Every call is scoped to one guild id. Bad input raises :class:`UserError` and changes nothing.
Following goes through ``storage.guilds.follow_artists``: the artist row is upserted with
``INSERT … ON CONFLICT DO NOTHING`` and the follow inserted the same way under the guild's write
lock, after counting its follows — so two guilds (on two bot processes) following the same new
artist at the same instant both succeed, the same guild twice gets one follow and one
"already following", and the follow limit holds exactly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from bot.clock import Clock
from bot.services.errors import NotFollowed, UserError
from bot.services.guild_settings import GuildSettingsService
from bot.services.text import SPOTIFY_DID_NOT_ANSWER, cooldown_text, not_followed_text
from bot.spotify.client import SpotifyClient
from bot.spotify.errors import SpotifyCooldown, SpotifyError, SpotifyNotFound
from bot.spotify.links import detect_spotify_kind, parse_spotify_id
from bot.spotify.models import Artist as SpotifyArtist
from bot.tracking import Tracker
from storage import catalog, guilds
from storage.catalog import ArtistProfile, FollowedArtist
from storage.db import Database, Session
from storage.guilds import FollowResult

__all__ = [
    "DEFAULT_MAX_FOLLOWS_PER_GUILD",
    "FollowOutcome",
    "FollowResult",
    "FollowService",
    "FollowedArtist",
    "best_match",
    "limit_text",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_FOLLOWS_PER_GUILD = 500
AUTOCOMPLETE_TTL_SECONDS = 300.0
AUTOCOMPLETE_BUDGET_SECONDS = 2.0
SEARCH_CACHE_SIZE = 1000


@dataclass(frozen=True)
class FollowOutcome:
    """Result of :meth:`FollowService.follow`: the artist, whether the guild already followed it, and the
    number of releases its silent baseline recorded (None when the baseline is deferred to the next run)."""

    artist_id: str
    artist_name: str
    already_following: bool
    baseline_releases: int | None


def best_match(results: Sequence[SpotifyArtist], text: str) -> SpotifyArtist | None:
    """The artist a typed name means among Spotify's search ``results``: the first whose name equals
    ``text`` (case-insensitive), else the first (Spotify's best); None when there are none."""
    wanted = text.strip().casefold()
    return next((a for a in results if a.name.casefold() == wanted), results[0] if results else None)


def limit_text(count: int) -> str:
    """The guild follows ``count`` artists, the most allowed."""
    return f"This server already follows {count} artists, the most allowed. Unfollow some first."


class FollowService:
    """A guild's followed artists.

    ``db``: the opened store; ``spotify``: asked to resolve what the user typed (``GET /artists/{id}``,
    ``GET /search``); ``tracker``: takes the silent baseline of a new follow; ``guild_settings``:
    creates the guild on first use; ``clock``: aware UTC now (``followed_at``);
    ``max_follows_per_guild``: the follow limit; ``monotonic``: seconds, for the search cache's age.
    """

    def __init__(
        self,
        db: Database,
        spotify: SpotifyClient,
        tracker: Tracker,
        guild_settings: GuildSettingsService,
        *,
        clock: Clock,
        max_follows_per_guild: int = DEFAULT_MAX_FOLLOWS_PER_GUILD,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.spotify = spotify
        self.tracker = tracker
        self.guild_settings = guild_settings
        self.clock = clock
        self.max_follows_per_guild = max_follows_per_guild
        self.monotonic = monotonic
        self._search_cache: dict[str, tuple[float, list[SpotifyArtist]]] = {}

    # --- resolving what the user typed ---------------------------------------------------------

    async def resolve_artist(self, text: str) -> SpotifyArtist:
        """Turn what a user typed into a Spotify artist.

        Accepts an artist URL, a ``spotify:artist:`` URI, a bare 22-character id, or a
        name (the best search match: an exact, case-insensitive name first).
        Raises :class:`UserError` for an album/track/playlist link, an unknown id, a
        name that matches no artist, or when Spotify cannot be asked right now.
        """
        text = (text or "").strip()
        if not text:
            raise UserError("Give an artist: a Spotify artist link, `spotify:artist:` URI, id, or name.")
        if len(text) > 200:
            raise UserError("That is too long for an artist name or link.")
        kind = detect_spotify_kind(text)
        if kind is not None and kind != "artist":
            raise UserError(
                f"That is a Spotify {kind} link, not an artist. Share the artist's page instead "
                "(open the artist in Spotify → Share → Copy link to artist)."
            )
        artist_id = parse_spotify_id(text, "artist")
        try:
            if artist_id is not None:
                try:
                    return await self.spotify.get_artist(artist_id)
                except SpotifyNotFound:
                    raise UserError(f"No Spotify artist has the id `{artist_id}`.") from None
            if kind == "artist":
                raise UserError("That Spotify artist link is malformed: it should end in a 22-character id.")
            results = await self.search(text)
        except SpotifyCooldown as exc:
            raise UserError(cooldown_text(exc.until)) from None
        except SpotifyError:
            log.warning("Spotify lookup failed for %r", text, exc_info=True)
            raise UserError(SPOTIFY_DID_NOT_ANSWER) from None
        match = best_match(results, text)
        if match is None:
            raise UserError(
                f"No Spotify artist matches “{text}”. Check the spelling, or paste the artist's Spotify link."
            )
        return match

    def search_is_cached(self, text: str) -> bool:
        """Whether :meth:`search` would answer ``text`` from its cache now (no request)."""
        hit = self._search_cache.get(text.casefold())
        return hit is not None and self.monotonic() - hit[0] < AUTOCOMPLETE_TTL_SECONDS

    async def search(self, text: str) -> list[SpotifyArtist]:
        """Spotify's artist search for ``text`` (``GET /search``, 10 results), cached for
        :data:`AUTOCOMPLETE_TTL_SECONDS` per query (case-insensitive). Raises ``SpotifyCooldown`` /
        ``SpotifyError``."""
        key = text.casefold()
        hit = self._search_cache.get(key)
        now = self.monotonic()
        if hit and now - hit[0] < AUTOCOMPLETE_TTL_SECONDS:
            return hit[1]
        results = await self.spotify.search_artists(text, limit=10)
        self._search_cache[key] = (now, results)
        if len(self._search_cache) > SEARCH_CACHE_SIZE:
            self._search_cache.pop(next(iter(self._search_cache)))
        return results

    async def artist_choices(self, text: str, limit: int = 25) -> list[tuple[str, str]]:
        """Autocomplete for ``/follow``: up to ``limit`` ``(label, artist id)`` pairs.

        Known artists from the store first, then Spotify search results (cached for
        five minutes per query; given at most two seconds, so Discord's three-second
        limit holds). Never raises for Spotify: on any Spotify problem it answers from the store.
        """
        text = (text or "").strip()
        if len(text) < 2 or parse_spotify_id(text, "artist") or detect_spotify_kind(text):
            return []
        async with self.db.transaction() as session:
            choices = dict(await catalog.search_artist_names(session, text, limit))
        try:
            results = await asyncio.wait_for(self.search(text), AUTOCOMPLETE_BUDGET_SECONDS)
        except (TimeoutError, SpotifyError):
            results = []
        for artist in results:
            label = artist.name if not artist.genres else f"{artist.name} · {', '.join(artist.genres[:2])}"
            choices.setdefault(artist.id, label)
        return [(label[:100], artist_id) for artist_id, label in list(choices.items())[:limit]]

    # --- following -----------------------------------------------------------------------------

    async def follow(self, guild_id: int, text: str) -> FollowOutcome:
        """Follow an artist in this guild and take its silent baseline (nothing already out is posted).

        Raises :class:`UserError` for input :meth:`resolve_artist` refuses, or when the guild
        already follows ``max_follows_per_guild`` artists. If Spotify cannot give the
        baseline now, the follow still stands and the baseline is taken in the next run.
        """
        artist = await self.resolve_artist(text)
        profile = ArtistProfile(artist.id, artist.name, artist.image_url)
        result = await self.follow_many(guild_id, [profile], refresh_profiles=True)
        if result.already:
            return FollowOutcome(artist.id, artist.name, True, None)
        if result.over_limit:
            raise UserError(limit_text(result.count))
        try:
            baseline: int | None = await self.tracker.baseline(artist.id)
        except SpotifyError:
            log.warning("baseline of %s deferred to the next run", artist.id, exc_info=True)
            baseline = None
        return FollowOutcome(artist.id, artist.name, False, baseline)

    async def follow_many(
        self, guild_id: int, artists: Sequence[ArtistProfile], *, refresh_profiles: bool
    ) -> FollowResult:
        """Follow ``artists`` in this guild (``followed_at`` = now), as far as the follow limit allows.

        One transaction (rerun on a PostgreSQL deadlock); takes no baseline. ``refresh_profiles``:
        also update the stored name and image of known artists (``/follow``, which has Spotify's
        current profile), else only add unknown ones (``/import``, which has a playlist's track
        artists). Returns what was followed, what was followed already and what the limit refused.
        """
        await self.guild_settings.ensure_guild(guild_id)
        now = self.clock()

        async def work(session: Session) -> FollowResult:
            return await guilds.follow_artists(
                session,
                guild_id,
                artists,
                now=now,
                limit=self.max_follows_per_guild,
                refresh_profiles=refresh_profiles,
            )

        return await self.db.retrying(work)

    async def unfollow(self, guild_id: int, text: str) -> str:
        """Stop following an artist (by id — what autocomplete sends —, link, URI or exact name).

        Returns the artist's name. Raises :class:`NotFollowed` (a :class:`UserError`) if this guild
        does not follow it — also when another command unfollowed it a moment before. Nothing
        posted is forgotten: following again later does not repost the past.
        """
        text = (text or "").strip()

        async def work(session: Session) -> str | None:
            found = await guilds.find_followed(session, guild_id, artist_id=parse_spotify_id(text, "artist"), name=text)
            if found is None or not await guilds.unfollow(session, guild_id, found[0]):
                return None
            return found[1]

        name = await self.db.retrying(work)
        if name is None:
            raise NotFollowed(not_followed_text(text))
        return name

    # --- reading -------------------------------------------------------------------------------

    async def following(self, guild_id: int) -> list[FollowedArtist]:
        """This guild's followed artists, by name, each with its last release and last check.

        The last release is the newest (by release date, then first seen) of the artist's
        own releases in the store — album, single or compilation, baseline included;
        ``appears_on`` listings are someone else's releases and do not count.
        """
        async with self.db.transaction() as session:
            return await catalog.followed_with_latest_release(session, guild_id)

    async def followed_ids(self, guild_id: int) -> set[str]:
        """Spotify ids of the artists this guild follows."""
        async with self.db.transaction() as session:
            return set(await guilds.followed_artist_ids(session, [guild_id]))

    async def followed_choices(self, guild_id: int, text: str, limit: int = 25) -> list[tuple[str, str]]:
        """Autocomplete for ``/unfollow`` and ``/settings filters``: ``(name, artist id)`` of this guild's
        follows whose name contains ``text`` (all of them, up to ``limit``, when it is empty), by name."""
        async with self.db.transaction() as session:
            rows = await guilds.followed_choices(session, guild_id, (text or "").strip(), limit)
        return [(name[:100], artist_id) for name, artist_id in rows]

    async def artist_names(self, artist_ids: Iterable[str]) -> dict[str, str]:
        """``{id: name}`` of stored artists (for showing muted artists)."""
        async with self.db.transaction() as session:
            return await catalog.artist_names(session, artist_ids)
