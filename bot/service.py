"""What the slash commands do, as plain async calls (no discord import).

Cogs translate an interaction into one call here and render the result; every
call is scoped to one guild id, so one guild never sees or changes another's data.
Bad input raises :class:`UserError` (a message meant for the user) and changes nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import and_, delete, func, select

from bot.delivery.planner import (
    DEFAULT_ALBUM_GROUPS,
    FILTER_KEYWORDS,
    Announcement,
    GuildFilters,
    fold_twins,
    plan_pending,
)
from bot.delivery.render import render_messages, role_mention
from bot.scheduling.due import next_due, parse_day, parse_time, parse_timezone
from bot.scheduling.runner import Runner, RunSummary
from bot.settings import ScheduleSettings
from bot.spotify.client import SpotifyClient
from bot.spotify.errors import SpotifyCooldown, SpotifyError, SpotifyNotFound
from bot.spotify.links import detect_spotify_kind, parse_spotify_id
from bot.spotify.models import ALBUM_GROUPS
from bot.spotify.models import Artist as SpotifyArtist
from bot.tracking import Tracker
from storage import catalog, guilds
from storage.db import Database
from storage.models import (
    Artist,
    ArtistRelease,
    Delivery,
    Follow,
    Guild,
    Release,
    Run,
    SpotifyState,
)

log = logging.getLogger(__name__)

ALBUM_GROUP_NAMES = {"album": "Albums", "single": "Singles", "compilation": "Compilations", "appears_on": "Appears on"}
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
AUTOCOMPLETE_TTL_SECONDS = 300.0
AUTOCOMPLETE_BUDGET_SECONDS = 2.0


class UserError(Exception):
    """Bad input or an impossible request; ``str()`` is the message to show the user."""


@dataclass(frozen=True)
class FollowOutcome:
    """Result of ``follow``: the artist, whether the guild already followed it, and the baseline size."""

    artist_id: str
    artist_name: str
    already_following: bool
    baseline_releases: int | None  # None when the baseline is deferred to the next run


@dataclass(frozen=True)
class FollowedArtist:
    """One row of ``/following``: artist id and name, when the guild followed (UTC), last check (UTC)."""

    artist_id: str
    name: str
    followed_at: dt.datetime
    last_checked_at: dt.datetime | None
    last_error: str | None
    last_release_id: str | None = None
    last_release_name: str | None = None
    last_release_date: str | None = None
    last_release_precision: str | None = None


@dataclass(frozen=True)
class Preview:
    """What ``/preview`` shows: the guild's next post as it would be sent now (nothing is written).

    ``messages``: embed dicts per message (as the deliverer packs them); ``announcements``:
    what they announce; ``skipped``: reason → count of pending releases that will never be
    posted (``type``, ``muted`` or a filter kind); ``mention``: the message content
    mentioning the guild's role (None when no role is set); ``channel_id``: where it goes.
    """

    channel_id: int | None
    announcements: list[Announcement]
    messages: list[list[dict]]
    skipped: dict[str, int]
    mention: str | None


@dataclass(frozen=True)
class HistoryRow:
    """One ``/history`` line: a ``Run`` and what it posted to (and skipped for) this guild."""

    run: Run
    posted: int
    skipped: int

    @property
    def coverage(self) -> float:
        """Share of due artists checked (1.0 when none were due)."""
        due = self.run.artists_due or 0
        return 1.0 if not due else (self.run.artists_checked or 0) / due


@dataclass(frozen=True)
class GuildStatus:
    """What ``/status`` shows for one guild (times are UTC)."""

    channel_id: int | None
    channel_problem: str | None
    follows: int
    schedule_day: int
    schedule_time: str
    timezone: str
    next_due_at: dt.datetime
    last_run: Run | None
    cooldown_until: dt.datetime | None
    cooldown_reason: str | None
    album_groups: tuple[str, ...] = ("album", "single", "compilation")
    mention_role_id: int | None = None
    filters: GuildFilters = GuildFilters()

    @property
    def album_groups_text(self) -> str:
        """E.g. ``"Albums, Singles"`` (in Spotify's group order)."""
        return ", ".join(ALBUM_GROUP_NAMES[g] for g in ALBUM_GROUPS if g in self.album_groups) or "none"

    @property
    def schedule_text(self) -> str:
        """E.g. ``"Fridays at 12:00 (Europe/Berlin)"``."""
        return f"{DAY_NAMES[self.schedule_day]}s at {self.schedule_time} ({self.timezone})"


class ReleaseService:
    """The guild-facing operations behind the slash commands.

    ``db``: the opened store; ``spotify``: the Spotify client; ``tracker``: used for
    the silent baseline on follow; ``runner``: the one run path (``/refresh``);
    ``clock``: returns aware UTC now; ``default_schedule``: the slot of a new guild.
    """

    def __init__(
        self,
        db: Database,
        spotify: SpotifyClient,
        tracker: Tracker,
        runner: Runner,
        *,
        clock: Callable[[], dt.datetime],
        default_schedule: ScheduleSettings,
        max_follows_per_guild: int = 500,
    ) -> None:
        self.db = db
        self.spotify = spotify
        self.tracker = tracker
        self.runner = runner
        self.clock = clock
        self.default_schedule = default_schedule
        self.max_follows_per_guild = max_follows_per_guild
        self._search_cache: dict[str, tuple[float, list[SpotifyArtist]]] = {}
        self._refreshing: set[int] = set()

    # --- guilds ---------------------------------------------------------------------------

    async def ensure_guild(self, guild_id: int) -> Guild:
        """Return the guild's row, creating it with the default schedule on first use."""
        s = self.default_schedule
        async with self.db.sessions() as session:
            guild = await guilds.get_or_create_guild(
                session, guild_id, now=self.clock(), schedule_day=s.day, schedule_time=s.time, timezone=s.timezone
            )
            await session.commit()
            return guild

    async def set_channel(self, guild_id: int, channel_id: int) -> None:
        """Post this guild's releases to ``channel_id`` (the cog has checked the bot can post there)."""
        await self.ensure_guild(guild_id)
        async with self.db.sessions() as session:
            guild = await session.get(Guild, guild_id)
            guild.channel_id = channel_id
            guild.channel_problem = None
            await session.commit()

    async def set_schedule(self, guild_id: int, day: str, time_text: str, timezone: str) -> dt.datetime:
        """Set the weekly slot; returns the next due time (UTC).

        Raises :class:`UserError` for a bad day, time ("HH:MM", 24-hour) or IANA time zone.
        """
        try:
            day_no = parse_day(day)
            hhmm = parse_time(time_text)
            tz = parse_timezone(timezone)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        await self.ensure_guild(guild_id)
        async with self.db.sessions() as session:
            guild = await session.get(Guild, guild_id)
            guild.schedule_day, guild.schedule_time, guild.timezone = day_no, hhmm, tz
            guild.next_due_at = next_due(day_no, hhmm, tz, self.clock())
            await session.commit()
            return guild.next_due_at

    async def set_album_groups(self, guild_id: int, groups) -> tuple[str, ...]:
        """Post only releases of these Spotify album groups (album, single, compilation, appears_on).

        Returns the stored groups in Spotify's order. Raises :class:`UserError` when
        ``groups`` is empty or names an unknown group (nothing is changed then).
        Releases of a group turned off are recorded as skipped at the next delivery;
        turning a group on later posts only what is found from then on.
        """
        chosen = {str(g).strip().lower() for g in groups or ()}
        unknown = sorted(chosen - set(ALBUM_GROUPS))
        if unknown:
            raise UserError(f"Unknown release type {unknown[0]!r}; choose from {', '.join(ALBUM_GROUPS)}.")
        if not chosen:
            raise UserError("Choose at least one release type to post; nothing was changed.")
        ordered = tuple(g for g in ALBUM_GROUPS if g in chosen)
        await self.ensure_guild(guild_id)
        async with self.db.sessions() as session:
            guild = await session.get(Guild, guild_id)
            guild.album_groups = list(ordered)
            await session.commit()
        return ordered

    async def album_groups(self, guild_id: int) -> tuple[str, ...]:
        """The album groups this guild posts, in Spotify's order."""
        guild = await self.ensure_guild(guild_id)
        stored = guild.album_groups or list(DEFAULT_ALBUM_GROUPS)
        return tuple(g for g in ALBUM_GROUPS if g in stored)

    # --- artists --------------------------------------------------------------------------

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
            results = await self._search(text)
        except SpotifyCooldown as exc:
            raise UserError(_cooldown_text(exc.until)) from None
        except SpotifyError:
            log.warning("Spotify lookup failed for %r", text, exc_info=True)
            raise UserError("Spotify did not answer just now; nothing was changed. Try again in a minute.") from None
        if not results:
            raise UserError(
                f"No Spotify artist matches “{text}”. Check the spelling, or paste the artist's Spotify link."
            )
        exact = [a for a in results if a.name.casefold() == text.casefold()]
        return (exact or results)[0]

    async def _search(self, text: str) -> list[SpotifyArtist]:
        key = text.casefold()
        hit = self._search_cache.get(key)
        now = time.monotonic()
        if hit and now - hit[0] < AUTOCOMPLETE_TTL_SECONDS:
            return hit[1]
        results = await self.spotify.search_artists(text, limit=10)
        self._search_cache[key] = (now, results)
        if len(self._search_cache) > 1000:
            self._search_cache.pop(next(iter(self._search_cache)))
        return results

    async def artist_choices(self, text: str, limit: int = 25) -> list[tuple[str, str]]:
        """Autocomplete for ``/follow``: up to ``limit`` ``(label, artist id)`` pairs.

        Known artists from the store first, then Spotify search results (cached for
        five minutes per query; given at most two seconds, so Discord's three-second
        limit holds). Never raises: on any Spotify problem it answers from the store.
        """
        text = (text or "").strip()
        if len(text) < 2 or parse_spotify_id(text, "artist") or detect_spotify_kind(text):
            return []
        choices: dict[str, str] = {}
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(Artist.id, Artist.name)
                .where(Artist.name.ilike(f"%{_escape_like(text)}%", escape="\\"))
                .order_by(Artist.name)
                .limit(limit)
            )
            for artist_id, name in rows:
                choices[artist_id] = name
        try:
            results = await asyncio.wait_for(self._search(text), AUTOCOMPLETE_BUDGET_SECONDS)
        except (TimeoutError, SpotifyError):
            results = []
        for artist in results:
            label = artist.name if not artist.genres else f"{artist.name} · {', '.join(artist.genres[:2])}"
            choices.setdefault(artist.id, label)
        return [(label[:100], artist_id) for artist_id, label in list(choices.items())[:limit]]

    async def follow(self, guild_id: int, text: str) -> FollowOutcome:
        """Follow an artist in this guild and take its silent baseline (nothing already out is posted).

        Raises :class:`UserError` for input ``resolve_artist`` refuses, or when the guild
        already follows ``max_follows_per_guild`` artists. If Spotify cannot give the
        baseline now, the follow still stands and the baseline is taken in the next run.
        """
        artist = await self.resolve_artist(text)
        await self.ensure_guild(guild_id)
        async with self.db.sessions() as session:
            existing = await session.get(Follow, (guild_id, artist.id))
            if existing is not None:
                return FollowOutcome(artist.id, artist.name, True, None)
            count = await session.scalar(select(func.count()).select_from(Follow).where(Follow.guild_id == guild_id))
            if count >= self.max_follows_per_guild:
                raise UserError(f"This server already follows {count} artists, the most allowed. Unfollow some first.")
            row = await session.get(Artist, artist.id)
            if row is None:
                session.add(Artist(id=artist.id, name=artist.name, image_url=artist.image_url, group_state={}))
            else:
                row.name, row.image_url = artist.name, artist.image_url or row.image_url
            session.add(Follow(guild_id=guild_id, artist_id=artist.id, followed_at=self.clock()))
            await session.commit()
        try:
            baseline = await self.tracker.baseline(artist.id)
        except SpotifyError:
            log.warning("baseline of %s deferred to the next run", artist.id, exc_info=True)
            baseline = None
        return FollowOutcome(artist.id, artist.name, False, baseline)

    async def unfollow(self, guild_id: int, text: str) -> str:
        """Stop following an artist (by id — what autocomplete sends —, link, URI or exact name).

        Returns the artist's name. Raises :class:`UserError` if this guild does not follow it.
        Nothing posted is forgotten: following again later does not repost the past.
        """
        text = (text or "").strip()
        artist_id = parse_spotify_id(text, "artist")
        async with self.db.sessions() as session:
            query = (
                select(Follow, Artist.name)
                .join(Artist, Artist.id == Follow.artist_id)
                .where(Follow.guild_id == guild_id)
            )
            if artist_id:
                query = query.where(Follow.artist_id == artist_id)
            else:
                query = query.where(func.lower(Artist.name) == text.lower())
            found = (await session.execute(query)).first()
            if found is None:
                raise UserError(f"This server doesn't follow “{text}”. See `/following` for the list.")
            follow, name = found
            await session.execute(
                delete(Follow).where(Follow.guild_id == guild_id, Follow.artist_id == follow.artist_id)
            )
            await session.commit()
            return name

    async def following(self, guild_id: int) -> list[FollowedArtist]:
        """This guild's followed artists, by name, each with its last release and last check.

        The last release is the newest (by release date, then first seen) of the artist's
        own releases in the store — album, single or compilation, baseline included;
        ``appears_on`` listings are someone else's releases and do not count.
        """
        async with self.db.sessions() as session:
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
                r[0]: r[1:5]
                for r in (
                    await session.execute(
                        select(
                            ranked.c.artist_id,
                            ranked.c.id,
                            ranked.c.name,
                            ranked.c.release_date,
                            ranked.c.release_date_precision,
                        ).where(ranked.c.rank == 1)
                    )
                ).all()
            }
        return [FollowedArtist(*row, *latest.get(row[0], (None, None, None, None))) for row in rows]

    async def followed_choices(self, guild_id: int, text: str, limit: int = 25) -> list[tuple[str, str]]:
        """Autocomplete for ``/unfollow``: ``(name, artist id)`` of this guild's follows matching ``text``."""
        text = (text or "").strip()
        async with self.db.sessions() as session:
            query = (
                select(Artist.name, Artist.id)
                .join(Follow, Follow.artist_id == Artist.id)
                .where(Follow.guild_id == guild_id)
            )
            if text:
                query = query.where(Artist.name.ilike(f"%{_escape_like(text)}%", escape="\\"))
            rows = await session.execute(query.order_by(func.lower(Artist.name)).limit(limit))
            return [(name[:100], artist_id) for name, artist_id in rows]

    # --- runs -----------------------------------------------------------------------------

    def refresh_running(self, guild_id: int) -> bool:
        """True while a ``/refresh`` of this guild is in progress."""
        return guild_id in self._refreshing

    @property
    def run_in_progress(self) -> bool:
        """True while any run (weekly, another server's refresh, a check) holds the runner."""
        return bool(getattr(self.runner, "running", False))

    async def refresh(self, guild_id: int, progress: Callable[[int, int], object] | None = None) -> RunSummary:
        """Check this guild's artists now and post what is new (the same path as the weekly run).

        ``progress(checked, total)`` is called as artists are checked (see ``Runner.run``).
        When another run holds the runner (the weekly run, another server's refresh) this
        one waits for it and then runs. Raises :class:`UserError` at once when a refresh of
        this guild is already running (in any bot process), when the guild has no channel or
        follows nobody.
        """
        if guild_id in self._refreshing:
            raise UserError("A refresh is already running in this server; its reply will show the result.")
        # Several processes: the guard is a named lease in the store, held by whichever process runs it.
        co = getattr(self.runner, "coordinator", None)
        lease = f"refresh:{guild_id}"
        if co is not None and not await co.try_lease(lease):
            raise UserError("A refresh is already running in this server; its reply will show the result.")
        self._refreshing.add(guild_id)
        try:
            guild = await self.ensure_guild(guild_id)
            if guild.channel_id is None:
                raise UserError("Choose where releases go first: `/settings channel`.")
            async with self.db.sessions() as session:
                count = await session.scalar(
                    select(func.count()).select_from(Follow).where(Follow.guild_id == guild_id)
                )
            if not count:
                raise UserError("This server follows no artists yet. Add one with `/follow`.")
            if progress is None:
                return await self.runner.run("refresh", [guild_id])
            return await self.runner.run("refresh", [guild_id], progress=progress)
        finally:
            self._refreshing.discard(guild_id)
            if co is not None:
                await co.release(lease)

    async def history(self, guild_id: int, limit: int = 10) -> list[HistoryRow]:
        """The last ``limit`` runs that concern this guild, newest first: its refreshes and the weekly runs.

        Each with what it posted to this guild (announcements, twins not counted) and
        skipped for it (types not wanted, filters), from the ledger. ``check`` runs are left out.
        """
        await self.ensure_guild(guild_id)
        async with self.db.sessions() as session:
            runs = list(
                (
                    await session.scalars(
                        select(Run)
                        .where((Run.guild_id == guild_id) | (Run.guild_id.is_(None)))
                        .where(Run.trigger != "check")
                        .order_by(Run.started_at.desc(), Run.id.desc())
                        .limit(max(1, limit))
                    )
                ).all()
            )
            counts: dict[tuple[int, str], int] = {}
            if runs:
                rows = await session.execute(
                    select(Delivery.run_id, Delivery.status, func.count())
                    .where(
                        Delivery.guild_id == guild_id,
                        Delivery.run_id.in_([r.id for r in runs]),
                        Delivery.folded_into.is_(None),
                    )
                    .group_by(Delivery.run_id, Delivery.status)
                )
                for run_id, status, n in rows:
                    key = (run_id, "skipped" if status == "skipped" else "posted")
                    counts[key] = counts.get(key, 0) + n
        return [HistoryRow(r, counts.get((r.id, "posted"), 0), counts.get((r.id, "skipped"), 0)) for r in runs]

    async def preview(self, guild_id: int) -> Preview:
        """What the guild's next post would contain now: pending releases after album types and filters,
        folded and rendered as the deliverer would send them. Reads only (no ledger row is written)."""
        guild = await self.ensure_guild(guild_id)
        async with self.db.sessions() as session:
            plan = await plan_pending(session, guild_id)
        announcements = fold_twins(plan.wanted)
        skipped: dict[str, int] = {}
        for _release, reason in plan.skipped:
            skipped[reason] = skipped.get(reason, 0) + 1
        mention, _allowed = role_mention(guild.mention_role_id)
        return Preview(guild.channel_id, announcements, render_messages(announcements), skipped, mention)

    # --- filters and mention ----------------------------------------------------------------

    async def filters(self, guild_id: int) -> GuildFilters:
        """This guild's ``/settings filters``."""
        guild = await self.ensure_guild(guild_id)
        return GuildFilters.from_json(guild.filters)

    async def set_filters(
        self,
        guild_id: int,
        *,
        skip: dict[str, bool | None] | None = None,
        mute: str | None = None,
        unmute: str | None = None,
    ) -> GuildFilters:
        """Change the guild's filters; returns them as stored.

        ``skip``: kind → True (skip it) / False (post it) / None (unchanged), kinds of
        :data:`FILTER_KEYWORDS`. ``mute`` / ``unmute``: one followed artist (id, link, URI
        or exact name) whose appearances are muted / posted again. Raises
        :class:`UserError` for an unknown kind or an artist this guild does not follow
        (nothing is changed then). Releases filtered out are recorded as skipped at the
        next delivery and never posted, even if the filter is turned off later.
        """
        unknown = sorted(set(skip or {}) - set(FILTER_KEYWORDS))
        if unknown:
            raise UserError(f"Unknown filter {unknown[0]!r}; choose from {', '.join(FILTER_KEYWORDS)}.")
        current = await self.filters(guild_id)
        kinds = set(current.skip)
        for kind, value in (skip or {}).items():
            if value is True:
                kinds.add(kind)
            elif value is False:
                kinds.discard(kind)
        muted = set(current.mute_appearances)
        if mute:
            muted.add((await self._followed_artist(guild_id, mute))[0])
        if unmute:
            artist_id = parse_spotify_id(unmute.strip(), "artist")
            if artist_id is None or artist_id not in muted:
                artist_id = (await self._followed_artist(guild_id, unmute))[0]
            muted.discard(artist_id)
        stored = GuildFilters(frozenset(kinds), frozenset(muted))
        async with self.db.sessions() as session:
            guild = await session.get(Guild, guild_id)
            guild.filters = stored.to_json()
            await session.commit()
        return stored

    async def _followed_artist(self, guild_id: int, text: str) -> tuple[str, str]:
        """(id, name) of an artist this guild follows, by id / link / URI / exact name; else :class:`UserError`."""
        text = (text or "").strip()
        artist_id = parse_spotify_id(text, "artist")
        async with self.db.sessions() as session:
            query = (
                select(Artist.id, Artist.name)
                .join(Follow, Follow.artist_id == Artist.id)
                .where(Follow.guild_id == guild_id)
            )
            query = (
                query.where(Artist.id == artist_id)
                if artist_id
                else query.where(func.lower(Artist.name) == text.lower())
            )
            found = (await session.execute(query)).first()
        if found is None:
            raise UserError(f"This server doesn't follow “{text}”. See `/following` for the list.")
        return found[0], found[1]

    async def artist_names(self, artist_ids) -> dict[str, str]:
        """``{id: name}`` of stored artists (for showing muted artists)."""
        async with self.db.sessions() as session:
            return await catalog.artist_names(session, artist_ids)

    async def mention_role(self, guild_id: int) -> int | None:
        """The role this guild's posts mention, or None."""
        return (await self.ensure_guild(guild_id)).mention_role_id

    async def set_mention_role(self, guild_id: int, role_id: int | None) -> None:
        """Mention ``role_id`` in this guild's posts (None: mention nobody)."""
        await self.ensure_guild(guild_id)
        async with self.db.sessions() as session:
            guild = await session.get(Guild, guild_id)
            guild.mention_role_id = role_id
            await session.commit()

    async def status(self, guild_id: int) -> GuildStatus:
        """Channel, follows, schedule and next run, last run touching this guild, and any Spotify cooldown."""
        guild = await self.ensure_guild(guild_id)
        async with self.db.sessions() as session:
            follows = await session.scalar(select(func.count()).select_from(Follow).where(Follow.guild_id == guild_id))
            last_run = await session.scalar(
                select(Run)
                .where((Run.guild_id == guild_id) | (Run.guild_id.is_(None)))
                .where(Run.trigger != "check")
                .order_by(Run.started_at.desc(), Run.id.desc())
                .limit(1)
            )
            state = await session.get(SpotifyState, 1)
        cooldown_until = state.cooldown_until if state else None
        if cooldown_until is not None and cooldown_until <= self.clock():
            cooldown_until = None
        return GuildStatus(
            channel_id=guild.channel_id,
            channel_problem=guild.channel_problem,
            follows=follows or 0,
            schedule_day=guild.schedule_day,
            schedule_time=guild.schedule_time,
            timezone=guild.timezone,
            next_due_at=guild.next_due_at,
            last_run=last_run,
            cooldown_until=cooldown_until,
            cooldown_reason=state.cooldown_reason if state and cooldown_until else None,
            album_groups=tuple(g for g in ALBUM_GROUPS if g in (guild.album_groups or DEFAULT_ALBUM_GROUPS)),
            mention_role_id=guild.mention_role_id,
            filters=GuildFilters.from_json(guild.filters),
        )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _cooldown_text(until: dt.datetime) -> str:
    return (
        f"Spotify has paused this bot's requests until <t:{int(until.timestamp())}:f>. "
        "Nothing was changed; try again after that."
    )
