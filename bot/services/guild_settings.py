"""``/settings`` and what every command needs of a guild: its row, channel, weekly slot, release
types, routes, publishing, filters, mention role, and the one-time channel-problem notice (no
discord import, no SQL).

Every call is scoped to one guild id, so one guild never sees or changes another's settings.
Bad input raises :class:`UserError` and changes nothing. A change derived from the current
value (release types, filters) is one transaction under the guild's write lock
(``storage.guilds.lock_guild``), so two admins changing settings at the same instant — in two
bot processes — never lose each other's change. What Discord alone can tell (that a channel
belongs to the guild and the bot may post there) is checked by the cog before it calls here.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from bot.clock import Clock
from bot.delivery.planner import (
    FILTER_KEYWORDS,
    MAX_BLOCK_ARTISTS,
    MAX_BLOCK_KEYWORDS,
    MAX_BLOCK_PATTERNS,
    MAX_KEYWORD_LENGTH,
    MAX_PATTERN_LENGTH,
    BlockedArtist,
    GuildFilters,
    PatternError,
    compile_pattern,
)
from bot.delivery.types import DEFAULT_RELEASE_TYPES, RELEASE_TYPES, ordered_types
from bot.scheduling.due import next_due, parse_day, parse_time, parse_timezone
from bot.services.errors import UserError
from bot.services.text import not_followed_text
from bot.spotify.errors import SpotifyError, SpotifyNotFound
from bot.spotify.links import detect_spotify_kind, parse_spotify_id
from bot.spotify.models import Artist as SpotifyArtist
from storage import catalog, guilds, routes
from storage.db import Database, Session
from storage.models import Guild
from storage.routes import GuildRoutes

__all__ = ["ArtistLookup", "DefaultSchedule", "Destinations", "GuildSettingsService", "posted_groups"]

log = logging.getLogger(__name__)

NO_GROUP_TEXT = "Choose at least one release type to post; nothing was changed."


@dataclass(frozen=True)
class DefaultSchedule:
    """The weekly slot of a guild the bot sees for the first time: ``day`` 0=Monday…6=Sunday,
    local ``time`` "HH:MM", IANA ``timezone``."""

    day: int
    time: str
    timezone: str


class ArtistLookup(Protocol):
    """What the settings ask Spotify: one artist's name, for an artist blocked by link or id that
    the bot has not stored (``bot.spotify.client.SpotifyClient``)."""

    async def get_artist(self, artist_id: str) -> SpotifyArtist:
        """``GET /artists/{id}``; raises ``SpotifyNotFound`` for an unknown id, ``SpotifyError`` (and
        ``SpotifyCooldown``) when Spotify cannot be asked."""
        ...


@dataclass(frozen=True)
class Destinations:
    """Where a guild's releases go: ``channel_id`` (the default channel, None: none set), ``routes``
    (release types and artists sent elsewhere), ``publish`` (crosspost in announcement channels),
    ``artist_names`` (Spotify id → name of the routed artists the bot knows), ``types`` (the
    release types it posts)."""

    channel_id: int | None
    routes: GuildRoutes
    publish: bool
    artist_names: dict[str, str] = field(default_factory=dict)
    types: tuple[str, ...] = DEFAULT_RELEASE_TYPES

    def channel_ids(self) -> list[int]:
        """Every channel a release may go to: the default channel first, then the routed ones, each once."""
        ids = [self.channel_id] if self.channel_id is not None else []
        ids += [self.routes.by_type[t] for t in RELEASE_TYPES if t in self.routes.by_type]
        ids += [self.routes.by_artist[a] for a in sorted(self.routes.by_artist, key=self.artist_name)]
        return list(dict.fromkeys(ids))

    def artist_name(self, artist_id: str) -> str:
        """The routed artist's name, or its id when the bot does not know it."""
        return self.artist_names.get(artist_id, artist_id)


def posted_groups(stored: Iterable[str] | None) -> tuple[str, ...]:
    """The release types a guild posts, in :data:`~bot.delivery.types.RELEASE_TYPES` order (album,
    single, ep, compilation, appears_on), from ``guilds.album_groups`` (empty or None: the default
    album, single, ep, compilation)."""
    return ordered_types(set(stored or ()) or DEFAULT_RELEASE_TYPES)


def _checked_groups(groups: Iterable[str]) -> tuple[str, ...]:
    """``groups`` (release types) normalised (trimmed, lower case) in :data:`RELEASE_TYPES` order;
    :class:`UserError` when one is unknown or none is left."""
    chosen = {str(g).strip().lower() for g in groups}
    unknown = sorted(chosen - set(RELEASE_TYPES))
    if unknown:
        raise UserError(f"Unknown release type {unknown[0]!r}; choose from {', '.join(RELEASE_TYPES)}.")
    if not chosen:
        raise UserError(NO_GROUP_TEXT)
    return ordered_types(chosen)


def _checked_type(release_type: str) -> str:
    """``release_type`` trimmed and lower case; :class:`UserError` when it is no release type."""
    chosen = (release_type or "").strip().lower()
    if chosen not in RELEASE_TYPES:
        raise UserError(f"Unknown release type {release_type!r}; choose from {', '.join(RELEASE_TYPES)}.")
    return chosen


class GuildSettingsService:
    """A guild's settings. ``db``: the opened store; ``clock``: aware UTC now; ``default_schedule``:
    the weekly slot of a guild created on first use; ``spotify``: asked for the name of an artist
    blocked by link or id that the bot has not stored (one ``GET /artists/{id}``)."""

    def __init__(self, db: Database, *, clock: Clock, default_schedule: DefaultSchedule, spotify: ArtistLookup) -> None:
        self.db = db
        self.clock = clock
        self.default_schedule = default_schedule
        self.spotify = spotify

    async def _ensure(self, session: Session, guild_id: int) -> Guild:
        s = self.default_schedule
        now = self.clock()
        return await guilds.get_or_create_guild(
            session,
            guild_id,
            now=now,
            next_due_at=next_due(s.day, s.time, s.timezone, now),
            schedule_day=s.day,
            schedule_time=s.time,
            timezone=s.timezone,
        )

    async def ensure_guild(self, guild_id: int) -> Guild:
        """The guild's row (detached: read it, never write it), created with the default schedule on first
        use (race-free: two processes creating it at once both get the one row)."""
        async with self.db.transaction() as session:
            return await self._ensure(session, guild_id)

    async def set_channel(self, guild_id: int, channel_id: int) -> None:
        """Post this guild's releases to Discord channel ``channel_id`` and forget its channel problem
        (the cog has checked the channel is this guild's and the bot can post there)."""

        async def work(session: Session) -> None:
            await self._ensure(session, guild_id)
            await guilds.set_channel(session, guild_id, channel_id)

        await self.db.retrying(work)

    async def set_schedule(self, guild_id: int, day: str, time_text: str, timezone: str) -> dt.datetime:
        """Set the weekly slot from what the user typed; returns the next due time (UTC).

        Raises :class:`UserError` for a bad day, time ("HH:MM", 24-hour) or IANA time zone.
        """
        try:
            day_no = parse_day(day)
            hhmm = parse_time(time_text)
            tz = parse_timezone(timezone)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        due = next_due(day_no, hhmm, tz, self.clock())

        async def work(session: Session) -> None:
            await self._ensure(session, guild_id)
            await guilds.set_schedule(session, guild_id, day=day_no, time=hhmm, timezone=tz, next_due_at=due)

        await self.db.retrying(work)
        return due

    async def set_release_day(self, guild_id: int, on: bool) -> None:
        """Turn release-day posting on or off (``/settings schedule release_day:``): with it on, a release
        MusicBrainz announced for today is looked for on Spotify that day and posted as soon as it is
        listed, instead of in the weekly post (docs/musicdata.md, "Release day")."""

        async def work(session: Session) -> None:
            await self._ensure(session, guild_id)
            await guilds.set_release_day(session, guild_id, on)

        await self.db.retrying(work)

    # --- release types (/settings types, the Hide button) ------------------------------------------

    async def album_groups(self, guild_id: int) -> tuple[str, ...]:
        """The release types this guild posts (``guilds.album_groups``), in :data:`RELEASE_TYPES` order."""
        return posted_groups((await self.ensure_guild(guild_id)).album_groups)

    async def set_album_groups(self, guild_id: int, groups: Iterable[str]) -> tuple[str, ...]:
        """Post only releases of these types (album, single, ep, compilation, appears_on).

        Returns the stored types in :data:`RELEASE_TYPES` order. Raises :class:`UserError` when
        ``groups`` is empty or names an unknown type (nothing is changed then). Releases of a type
        turned off are recorded as skipped at the next delivery; turning a type on later posts only
        what is found from then on.
        """
        ordered = _checked_groups(groups)

        async def work(session: Session) -> None:
            await self._ensure(session, guild_id)
            await guilds.set_album_groups(session, guild_id, ordered)

        await self.db.retrying(work)
        return ordered

    async def update_album_groups(
        self, guild_id: int, change: Callable[[tuple[str, ...]], Iterable[str]]
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Change the posted release types as a function of the current ones; returns ``(before, after)``.

        ``change(current)`` gets the types posted now (:data:`RELEASE_TYPES` order) and returns the new
        ones, or raises :class:`UserError` to refuse (nothing is changed then). Runs under the guild's
        write lock (a concurrent change is applied before or after this one, never lost). Raises
        :class:`UserError` when the result is empty or names an unknown type.
        """

        async def work(session: Session) -> tuple[tuple[str, ...], tuple[str, ...]]:
            await self._ensure(session, guild_id)
            guild = await guilds.lock_guild(session, guild_id)
            before = posted_groups(guild.album_groups)
            after = _checked_groups(change(before))
            if after != before:
                await guilds.set_album_groups(session, guild_id, after)
            return before, after

        return await self.db.retrying(work)

    async def switch_album_groups(self, guild_id: int, switches: Mapping[str, bool | None]) -> tuple[str, ...]:
        """``/settings types``: turn release types on (True) or off (False); None leaves one as it is.

        Returns the types posted afterwards (:data:`RELEASE_TYPES` order). Raises :class:`UserError` when
        that would post nothing, or for an unknown type (nothing is changed then).
        """

        def change(current: tuple[str, ...]) -> set[str]:
            chosen = {g for g in current if switches.get(g) is not False} | {g for g, on in switches.items() if on}
            if not chosen:
                raise UserError("That would post nothing: keep at least one release type. Nothing was changed.")
            return chosen

        return (await self.update_album_groups(guild_id, change))[1]

    # --- where releases go (/settings channel, route, publish) -------------------------------------

    async def destinations(self, guild_id: int) -> Destinations:
        """This guild's default channel, routes (with the routed artists' names), publish setting and
        posted types."""

        async def work(session: Session) -> Destinations:
            guild = await self._ensure(session, guild_id)
            found = await routes.guild_routes(session, guild_id)
            names = await catalog.artist_names(session, found.by_artist)
            return Destinations(guild.channel_id, found, guild.publish, names, posted_groups(guild.album_groups))

        return await self.db.retrying(work)

    async def set_type_route(self, guild_id: int, release_type: str, channel_id: int) -> str:
        """Send this guild's releases of ``release_type`` (album, single, ep, compilation, appears_on) to
        Discord channel ``channel_id`` (replacing a route it had); returns the type. An artist route
        still wins over it (:func:`bot.delivery.planner.destination_of`). Raises :class:`UserError`
        for an unknown type. The cog has checked the channel is this guild's and the bot can post there.
        """
        chosen = _checked_type(release_type)

        async def work(session: Session) -> None:
            await self._ensure(session, guild_id)
            await routes.set_route(session, guild_id, "type", chosen, channel_id)

        await self.db.retrying(work)
        return chosen

    async def set_artist_route(self, guild_id: int, artist: str, channel_id: int) -> tuple[str, str]:
        """Send the releases of ``artist`` — one this guild follows: its Spotify id, link, URI or exact
        name (case-insensitive) — to Discord channel ``channel_id``; returns ``(artist id, name)``.
        Raises :class:`UserError` when the guild follows no such artist (nothing is changed then)."""

        async def work(session: Session) -> tuple[str, str]:
            await self._ensure(session, guild_id)
            found = await _followed_artist(session, guild_id, artist)
            await routes.set_route(session, guild_id, "artist", found[0], channel_id)
            return found

        return await self.db.retrying(work)

    async def clear_type_route(self, guild_id: int, release_type: str) -> tuple[str, bool]:
        """Remove this guild's route of ``release_type``: ``(the type, whether there was one)``; those
        releases go to the default channel again. Raises :class:`UserError` for an unknown type."""
        chosen = _checked_type(release_type)

        async def work(session: Session) -> bool:
            await self._ensure(session, guild_id)
            return await routes.clear_route(session, guild_id, "type", chosen)

        return chosen, await self.db.retrying(work)

    async def clear_artist_route(self, guild_id: int, artist: str) -> tuple[str, str, bool]:
        """Remove this guild's route of ``artist`` (a routed artist's id, link or URI — also one no longer
        followed — or a followed artist's id, link, URI or name): ``(artist id, name, whether there was
        one)``. Raises :class:`UserError` when the text names neither."""
        text = (artist or "").strip()

        async def work(session: Session) -> tuple[str, str, bool]:
            await self._ensure(session, guild_id)
            artist_id = parse_spotify_id(text, "artist")
            if artist_id is not None and artist_id in (await routes.guild_routes(session, guild_id)).by_artist:
                name = (await catalog.artist_names(session, [artist_id])).get(artist_id, artist_id)
            else:
                artist_id, name = await _followed_artist(session, guild_id, text)
            return artist_id, name, await routes.clear_route(session, guild_id, "artist", artist_id)

        return await self.db.retrying(work)

    async def set_publish(self, guild_id: int, publish: bool) -> Destinations:
        """Crosspost (publish) this guild's posts in announcement channels, or stop; returns its
        :class:`Destinations` afterwards, so the answer can say which of them are announcement channels
        (only posts there are published)."""

        async def work(session: Session) -> None:
            await self._ensure(session, guild_id)
            await guilds.set_publish(session, guild_id, publish)

        await self.db.retrying(work)
        return await self.destinations(guild_id)

    # --- filters ----------------------------------------------------------------------------------

    async def filters(self, guild_id: int) -> GuildFilters:
        """This guild's ``/settings filters``."""
        return GuildFilters.from_json((await self.ensure_guild(guild_id)).filters)

    async def set_filters(
        self,
        guild_id: int,
        *,
        skip: Mapping[str, bool | None] | None = None,
        mute: str | None = None,
        unmute: str | None = None,
        block_keyword: str | None = None,
        unblock_keyword: str | None = None,
        block_pattern: str | None = None,
        unblock_pattern: str | None = None,
        block_artist: str | None = None,
        unblock_artist: str | None = None,
    ) -> GuildFilters:
        """Change the guild's filters; returns them as stored.

        ``skip``: kind → True (skip it) / False (post it) / None (unchanged), kinds of
        :data:`FILTER_KEYWORDS`. ``mute`` / ``unmute``: one followed artist (id, link, URI
        or exact name) whose appearances are muted / posted again (a muted artist's id unmutes
        it even when no longer followed). ``block_keyword`` / ``unblock_keyword``: a title keyword
        (whole words, case-insensitive; at most :data:`MAX_BLOCK_KEYWORDS` of at most
        :data:`MAX_KEYWORD_LENGTH` characters). ``block_pattern`` / ``unblock_pattern``: an RE2 title
        pattern (case-insensitive; at most :data:`MAX_BLOCK_PATTERNS` of at most
        :data:`MAX_PATTERN_LENGTH` characters; refused with RE2's reason when RE2 refuses it, and
        when it matches an empty title, i.e. every release). ``block_artist`` / ``unblock_artist``: any
        Spotify artist (link, URI or id) or a followed artist's exact name, whose releases are never
        posted (at most :data:`MAX_BLOCK_ARTISTS`; the name of an artist the bot has not stored is
        asked of Spotify once, and left out when Spotify cannot answer).

        Raises :class:`UserError` for an unknown kind, an artist this guild does not follow where
        a followed one is needed, a keyword or pattern over its bounds, refused, or not on the list
        to remove, a full list (nothing is changed then). Runs under the guild's write lock.
        Releases filtered out are recorded as skipped at the next delivery and never posted, even
        if the filter is turned off later.
        """
        unknown = sorted(set(skip or {}) - set(FILTER_KEYWORDS))
        if unknown:
            raise UserError(f"Unknown filter {unknown[0]!r}; choose from {', '.join(FILTER_KEYWORDS)}.")
        keyword = _checked_keyword(block_keyword) if block_keyword is not None else None
        pattern = _checked_pattern(block_pattern) if block_pattern is not None else None
        blocked = await self._blocked_artist(guild_id, block_artist) if block_artist is not None else None

        async def work(session: Session) -> GuildFilters:
            await self._ensure(session, guild_id)
            guild = await guilds.lock_guild(session, guild_id)
            current = GuildFilters.from_json(guild.filters)
            kinds = set(current.skip)
            for kind, value in (skip or {}).items():
                if value is True:
                    kinds.add(kind)
                elif value is False:
                    kinds.discard(kind)
            muted = set(current.mute_appearances)
            if mute:
                muted.add((await _followed_artist(session, guild_id, mute))[0])
            if unmute:
                artist_id = parse_spotify_id(unmute.strip(), "artist")
                if artist_id is None or artist_id not in muted:
                    artist_id = (await _followed_artist(session, guild_id, unmute))[0]
                muted.discard(artist_id)
            stored = replace(
                current,
                skip=frozenset(kinds),
                mute_appearances=frozenset(muted),
                block_keywords=_changed_keywords(current.block_keywords, keyword, unblock_keyword),
                block_patterns=_changed_patterns(current.block_patterns, pattern, unblock_pattern),
                block_artists=await _changed_artists(session, guild_id, current.block_artists, blocked, unblock_artist),
            )
            await guilds.set_filters(session, guild_id, stored.to_json())
            return stored

        return await self.db.retrying(work)

    async def _blocked_artist(self, guild_id: int, text: str) -> BlockedArtist:
        """The artist ``text`` names for the block list: a Spotify artist link, URI or id (any artist),
        or the exact name of an artist this guild follows. Its name comes from the store, else from
        Spotify (one request; "" when Spotify cannot answer now). Raises :class:`UserError` for
        another kind of link, an unknown id, or a name this guild follows no artist by."""
        text = (text or "").strip()
        kind = detect_spotify_kind(text)
        if kind is not None and kind != "artist":
            raise UserError(f"That is a Spotify {kind} link, not an artist. Nothing was changed.")
        artist_id = parse_spotify_id(text, "artist")
        async with self.db.transaction() as session:
            if artist_id is None:
                if kind == "artist":
                    raise UserError("That Spotify artist link is malformed: it should end in a 22-character id.")
                found_id, name = await _followed_artist(session, guild_id, text, blockable=True)
                return BlockedArtist(found_id, name)
            known = (await catalog.artist_names(session, [artist_id])).get(artist_id)
        if known is not None:
            return BlockedArtist(artist_id, known)
        try:
            return BlockedArtist(artist_id, (await self.spotify.get_artist(artist_id)).name)
        except SpotifyNotFound:
            raise UserError(f"No Spotify artist has the id `{artist_id}`. Nothing was changed.") from None
        except SpotifyError:  # a cooldown, an outage: block it all the same, shown by its link
            log.warning("could not look up the name of blocked artist %s", artist_id, exc_info=True)
            return BlockedArtist(artist_id)

    # --- the mention role and the channel notice --------------------------------------------------

    async def mention_role(self, guild_id: int) -> int | None:
        """The Discord role this guild's posts mention, or None."""
        return (await self.ensure_guild(guild_id)).mention_role_id

    async def set_mention_role(self, guild_id: int, role_id: int | None) -> None:
        """Mention Discord role ``role_id`` in this guild's posts (None: mention nobody)."""

        async def work(session: Session) -> None:
            await self._ensure(session, guild_id)
            await guilds.set_mention_role(session, guild_id, role_id)

        await self.db.retrying(work)

    async def take_channel_notice(self, guild_id: int) -> tuple[int | None, str] | None:
        """``(channel id, problem)`` when this guild's release channel cannot be posted to and no command
        user was told yet — marking it told (once, across processes and restarts); else None."""
        async with self.db.transaction() as session:
            return await guilds.take_channel_notice(session, guild_id)

    async def forget_channel_notice(self, guild_id: int) -> None:
        """The notice could not be shown after all: the next command tells it again."""
        async with self.db.transaction() as session:
            await guilds.forget_channel_notice(session, guild_id)


async def _followed_artist(session: Session, guild_id: int, text: str, *, blockable: bool = False) -> tuple[str, str]:
    """``(Spotify id, name)`` of the artist this guild follows named by ``text`` (id, link, URI or exact
    name, case-insensitive); :class:`UserError` when it follows no such artist (``blockable``: the
    message says any artist can be blocked by its Spotify link)."""
    text = (text or "").strip()
    found = await guilds.find_followed(session, guild_id, artist_id=parse_spotify_id(text, "artist"), name=text)
    if found is None:
        message = not_followed_text(text)
        if blockable:
            message += " To block an artist this server doesn't follow, paste their Spotify link."
        raise UserError(message)
    return found


def _checked_keyword(keyword: str) -> str:
    """``keyword`` trimmed, its inner whitespace collapsed; :class:`UserError` when it has no word or is
    longer than :data:`MAX_KEYWORD_LENGTH`."""
    words = (keyword or "").split()
    if not words:
        raise UserError("Give a keyword to block, e.g. `block_keyword:karaoke`. Nothing was changed.")
    text = " ".join(words)
    if len(text) > MAX_KEYWORD_LENGTH:
        raise UserError(f"A keyword is at most {MAX_KEYWORD_LENGTH} characters. Nothing was changed.")
    return text


def _checked_pattern(pattern: str) -> str:
    """``pattern`` (untrimmed: spaces may matter) when RE2 accepts it and it cannot match every title;
    :class:`UserError` with RE2's reason otherwise, or when longer than :data:`MAX_PATTERN_LENGTH`."""
    if not pattern:
        raise UserError("Give a pattern to block. Nothing was changed.")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise UserError(f"A pattern is at most {MAX_PATTERN_LENGTH} characters. Nothing was changed.")
    try:
        compiled = compile_pattern(pattern)
    except PatternError as exc:
        raise UserError(f"RE2 refused that pattern: {exc}. Nothing was changed.") from None
    if compiled.search("") is not None:
        raise UserError("That pattern matches an empty title, so it would block every release. Nothing was changed.")
    return pattern


def _changed_keywords(current: tuple[str, ...], add: str | None, remove: str | None) -> tuple[str, ...]:
    """The keyword block list after adding ``add`` (kept once, case-insensitively) and removing
    ``remove``; :class:`UserError` when the list is full or ``remove`` is not on it."""
    keywords = list(current)
    if remove is not None:
        key = " ".join(remove.split()).casefold()
        kept = [k for k in keywords if k.casefold() != key]
        if len(kept) == len(keywords):
            raise UserError(f"“{remove.strip()}” is not a blocked keyword. Nothing was changed.")
        keywords = kept
    if add is not None and add.casefold() not in {k.casefold() for k in keywords}:
        if len(keywords) >= MAX_BLOCK_KEYWORDS:
            raise UserError(f"At most {MAX_BLOCK_KEYWORDS} keywords can be blocked; remove one first.")
        keywords.append(add)
    return tuple(keywords)


def _changed_patterns(current: tuple[str, ...], add: str | None, remove: str | None) -> tuple[str, ...]:
    """The pattern block list after adding ``add`` (kept once) and removing ``remove`` (exactly as
    stored); :class:`UserError` when the list is full or ``remove`` is not on it."""
    patterns = list(current)
    if remove is not None:
        if remove not in patterns:
            raise UserError(f"`{remove}` is not a blocked pattern. Nothing was changed.")
        patterns.remove(remove)
    if add is not None and add not in patterns:
        if len(patterns) >= MAX_BLOCK_PATTERNS:
            raise UserError(f"At most {MAX_BLOCK_PATTERNS} patterns can be blocked; remove one first.")
        patterns.append(add)
    return tuple(patterns)


async def _changed_artists(
    session: Session,
    guild_id: int,
    current: tuple[BlockedArtist, ...],
    add: BlockedArtist | None,
    remove: str | None,
) -> tuple[BlockedArtist, ...]:
    """The artist block list after adding ``add`` (kept once) and removing ``remove`` (a blocked
    artist's id, link, URI or name, or a followed artist's name); :class:`UserError` when the list
    is full or ``remove`` names no blocked artist."""
    artists = list(current)
    if remove is not None:
        text = remove.strip()
        artist_id = parse_spotify_id(text, "artist")
        if artist_id is None:
            named = [a.id for a in artists if a.name and a.name.casefold() == text.casefold()]
            if named:
                artist_id = named[0]
            else:
                found = await guilds.find_followed(session, guild_id, artist_id=None, name=text)
                artist_id = found[0] if found is not None else None
        kept = [a for a in artists if a.id != artist_id]
        if artist_id is None or len(kept) == len(artists):
            raise UserError(f"“{text}” is not a blocked artist. Nothing was changed.")
        artists = kept
    if add is not None and add.id not in {a.id for a in artists}:
        if len(artists) >= MAX_BLOCK_ARTISTS:
            raise UserError(f"At most {MAX_BLOCK_ARTISTS} artists can be blocked; remove one first.")
        artists.append(add)
    return tuple(artists)
