"""``bot.services.upcoming``: ``/settings upcoming`` creates the guild row on first use and is per guild;
``/upcoming`` lists the guild's followed artists' release groups dated today or later, by date, with the
postponed and gone marks, at most ``MAX_LISTED`` and the rest counted."""

from __future__ import annotations

import datetime as dt

from bot.services.guild_settings import GuildSettingsService
from bot.services.upcoming import MAX_LISTED, UpcomingService
from storage import musicdata
from storage.db import Database
from tests.bot.helpers import add_guild, follow
from tests.bot.services.helpers import SCHEDULE
from tests.bot.services.test_notify import NoSpotify
from tests.conftest import FakeClock
from tests.storage.test_musicdata import group, mbid


def service(db: Database, clock: FakeClock) -> UpcomingService:
    settings = GuildSettingsService(db, clock=clock, default_schedule=SCHEDULE, spotify=NoSpotify())
    return UpcomingService(db, settings, clock=clock)


async def test_the_setting_is_per_guild_and_made_on_first_use(db, clock):
    upcoming = service(db, clock)
    assert not await upcoming.enabled(7)
    await upcoming.set_enabled(7, True)  # no row yet: created
    assert await upcoming.enabled(7) and not await upcoming.enabled(8)
    await upcoming.set_enabled(7, False)
    assert not await upcoming.enabled(7)


async def test_the_listing_is_the_guilds_own_by_date_with_marks_and_bounded(db, clock):
    await add_guild(db, 1, now=clock())
    await add_guild(db, 2, now=clock())
    await follow(db, 1, "artA", now=clock())
    await follow(db, 2, "artB", now=clock())
    today = clock().date()
    window = (today - dt.timedelta(days=30), today + dt.timedelta(days=30))
    rows = [group(n, date=today + dt.timedelta(days=n)) for n in range(1, MAX_LISTED + 4)]
    rows.append(group(40, date=today - dt.timedelta(days=1)))  # out already: not listed
    rows.append(group(41, date=today + dt.timedelta(days=2), spotify_ids=("artB",)))  # another guild's artist
    async with db.transaction() as session:
        await musicdata.store_release_groups(session, rows, listed={r.mbid for r in rows}, window=window, now=clock())
    moved = [group(1, date=today + dt.timedelta(days=1 + 30))]  # postponed (past the others)
    listed_now = {r.mbid for r in rows} - {mbid(2)}  # group 2 disappeared
    async with db.transaction() as session:
        await musicdata.store_release_groups(session, moved, listed=listed_now, window=window, now=clock())
    listing = await service(db, clock).listing(1)
    assert not listing.enabled and listing.today == today
    assert len(listing.entries) == MAX_LISTED and listing.more == 3
    first, second = listing.entries[:2]
    assert (first.mbid, first.gone, first.postponed) == (mbid(2), True, False)
    assert second.mbid == mbid(3) and not second.gone
    assert mbid(41) not in {e.mbid for e in listing.entries}
    assert (await service(db, clock).listing(2)).entries[0].mbid == mbid(41)
