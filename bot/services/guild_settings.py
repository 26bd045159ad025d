"""``/settings`` and what every command needs of a guild: its row, channel, weekly slot, release
types, filters, mention role, and the one-time channel-problem notice (no discord import, no SQL).

Every call is scoped to one guild id, so one guild never sees or changes another's settings.
Bad input raises :class:`UserError` and changes nothing. A change derived from the current
value (release types, filters) is one transaction under the guild's write lock
(``storage.guilds.lock_guild``), so two admins changing settings at the same instant — in two
bot processes — never lose each other's change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from bot.clock import Clock
from bot.delivery.planner import DEFAULT_ALBUM_GROUPS, FILTER_KEYWORDS, GuildFilters
from bot.scheduling.due import next_due, parse_day, parse_time, parse_timezone
from bot.services.errors import UserError
from bot.services.text import not_followed_text
from bot.spotify.links import parse_spotify_id
from bot.spotify.models import ALBUM_GROUPS
from storage import guilds
from storage.db import Database, Session
from storage.models import Guild

__all__ = ["DefaultSchedule", "GuildSettingsService", "posted_groups"]

NO_GROUP_TEXT = "Choose at least one release type to post; nothing was changed."


@dataclass(frozen=True)
class DefaultSchedule:
    """The weekly slot of a guild the bot sees for the first time: ``day`` 0=Monday…6=Sunday,
    local ``time`` "HH:MM", IANA ``timezone``."""

    day: int
    time: str
    timezone: str


def posted_groups(stored: Iterable[str] | None) -> tuple[str, ...]:
    """The album groups a guild posts, in Spotify's order (album, single, compilation, appears_on),
    from ``guilds.album_groups`` (empty or None: the default album, single, compilation)."""
    chosen = set(stored or ()) or set(DEFAULT_ALBUM_GROUPS)
    return tuple(g for g in ALBUM_GROUPS if g in chosen)


def _checked_groups(groups: Iterable[str]) -> tuple[str, ...]:
    """``groups`` normalised (trimmed, lower case) in Spotify's order; :class:`UserError` when one is
    unknown or none is left."""
    chosen = {str(g).strip().lower() for g in groups}
    unknown = sorted(chosen - set(ALBUM_GROUPS))
    if unknown:
        raise UserError(f"Unknown release type {unknown[0]!r}; choose from {', '.join(ALBUM_GROUPS)}.")
    if not chosen:
        raise UserError(NO_GROUP_TEXT)
    return tuple(g for g in ALBUM_GROUPS if g in chosen)


class GuildSettingsService:
    """A guild's settings. ``db``: the opened store; ``clock``: aware UTC now; ``default_schedule``:
    the weekly slot of a guild created on first use."""

    def __init__(self, db: Database, *, clock: Clock, default_schedule: DefaultSchedule) -> None:
        self.db = db
        self.clock = clock
        self.default_schedule = default_schedule

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
        (the cog has checked the bot can post there)."""

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

    async def album_groups(self, guild_id: int) -> tuple[str, ...]:
        """The album groups this guild posts, in Spotify's order."""
        return posted_groups((await self.ensure_guild(guild_id)).album_groups)

    async def set_album_groups(self, guild_id: int, groups: Iterable[str]) -> tuple[str, ...]:
        """Post only releases of these Spotify album groups (album, single, compilation, appears_on).

        Returns the stored groups in Spotify's order. Raises :class:`UserError` when
        ``groups`` is empty or names an unknown group (nothing is changed then).
        Releases of a group turned off are recorded as skipped at the next delivery;
        turning a group on later posts only what is found from then on.
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
        """Change the posted album groups as a function of the current ones; returns ``(before, after)``.

        ``change(current)`` gets the groups posted now (Spotify's order) and returns the new ones, or
        raises :class:`UserError` to refuse (nothing is changed then). Runs under the guild's write lock
        (a concurrent change is applied before or after this one, never lost). Raises :class:`UserError`
        when the result is empty or names an unknown group.
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
        """``/settings types``: turn album groups on (True) or off (False); None leaves one as it is.

        Returns the groups posted afterwards (Spotify's order). Raises :class:`UserError` when that would
        post nothing, or for an unknown group (nothing is changed then).
        """

        def change(current: tuple[str, ...]) -> set[str]:
            chosen = {g for g in current if switches.get(g) is not False} | {g for g, on in switches.items() if on}
            if not chosen:
                raise UserError("That would post nothing: keep at least one release type. Nothing was changed.")
            return chosen

        return (await self.update_album_groups(guild_id, change))[1]

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
    ) -> GuildFilters:
        """Change the guild's filters; returns them as stored.

        ``skip``: kind → True (skip it) / False (post it) / None (unchanged), kinds of
        :data:`FILTER_KEYWORDS`. ``mute`` / ``unmute``: one followed artist (id, link, URI
        or exact name) whose appearances are muted / posted again (a muted artist's id unmutes
        it even when no longer followed). Raises :class:`UserError` for an unknown kind or an
        artist this guild does not follow (nothing is changed then). Runs under the guild's
        write lock. Releases filtered out are recorded as skipped at the next delivery and
        never posted, even if the filter is turned off later.
        """
        unknown = sorted(set(skip or {}) - set(FILTER_KEYWORDS))
        if unknown:
            raise UserError(f"Unknown filter {unknown[0]!r}; choose from {', '.join(FILTER_KEYWORDS)}.")

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
                muted.add(await _followed_artist_id(session, guild_id, mute))
            if unmute:
                artist_id = parse_spotify_id(unmute.strip(), "artist")
                if artist_id is None or artist_id not in muted:
                    artist_id = await _followed_artist_id(session, guild_id, unmute)
                muted.discard(artist_id)
            stored = GuildFilters(frozenset(kinds), frozenset(muted))
            await guilds.set_filters(session, guild_id, stored.to_json())
            return stored

        return await self.db.retrying(work)

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


async def _followed_artist_id(session: Session, guild_id: int, text: str) -> str:
    """The Spotify id of the artist this guild follows named by ``text`` (id, link, URI or exact name,
    case-insensitive); :class:`UserError` when it follows no such artist."""
    text = (text or "").strip()
    found = await guilds.find_followed(session, guild_id, artist_id=parse_spotify_id(text, "artist"), name=text)
    if found is None:
        raise UserError(not_followed_text(text))
    return found[0]
