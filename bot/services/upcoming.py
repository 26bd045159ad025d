"""``/settings upcoming`` and ``/upcoming``: announced releases of the artists a guild follows
(docs/musicdata.md, "Announcements"). Plain async, no discord, no SQL (``storage.upcoming``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bot.clock import Clock
from bot.services.guild_settings import GuildSettingsService
from storage import upcoming
from storage.db import Database, Session

MAX_LISTED = 20
"""Release groups ``/upcoming`` shows (the rest are counted): 20 lines stay far inside an embed's 4,096."""


@dataclass(frozen=True)
class UpcomingEntry:
    """One announced release group: ``title``, ``artist`` (MusicBrainz's artist credit), ``release_date``
    (UTC day), ``postponed`` (its date changed), ``gone`` (MusicBrainz no longer lists it), ``mbid``."""

    mbid: str
    title: str
    artist: str
    release_date: dt.date
    postponed: bool
    gone: bool


@dataclass(frozen=True)
class UpcomingListing:
    """``/upcoming``: whether the guild posts announcements (``enabled``), the first :data:`MAX_LISTED`
    ``entries`` by date, and how many more there are (``more``); ``today``: the UTC day it was made on."""

    enabled: bool
    entries: tuple[UpcomingEntry, ...]
    more: int
    today: dt.date


class UpcomingService:
    """A guild's announced releases. ``db``: the store; ``guild_settings``: creates the guild row on first
    use; ``clock``: aware UTC now."""

    def __init__(self, db: Database, guild_settings: GuildSettingsService, *, clock: Clock) -> None:
        self.db = db
        self.guild_settings = guild_settings
        self.clock = clock

    async def set_enabled(self, guild_id: int, enabled: bool) -> None:
        """Post announced releases in this guild (``enabled``), or stop (the posts made stay)."""

        await self.guild_settings.ensure_guild(guild_id)

        async def work(session: Session) -> None:
            await upcoming.set_upcoming(session, guild_id, enabled)

        await self.db.retrying(work)

    async def enabled(self, guild_id: int) -> bool:
        """Whether this guild posts announced releases (off for a guild without a row)."""
        async with self.db.transaction() as session:
            return await upcoming.upcoming_enabled(session, guild_id)

    async def listing(self, guild_id: int) -> UpcomingListing:
        """What MusicBrainz announces for this guild's followed artists, dated today (UTC) or later, by date
        (gone ones marked): at most :data:`MAX_LISTED` and the count of the rest."""
        today = self.clock().date()
        async with self.db.transaction() as session:
            enabled = await upcoming.upcoming_enabled(session, guild_id)
            groups = await upcoming.guild_groups(session, guild_id, since=today, limit=MAX_LISTED)
            total = await upcoming.count_guild_groups(session, guild_id, since=today)
        entries = tuple(
            UpcomingEntry(g.mbid, g.title, g.artist_credit_name, g.release_date, bool(g.date_changes), g.gone)
            for g in groups
        )
        return UpcomingListing(enabled, entries, max(0, total - len(entries)), today)
