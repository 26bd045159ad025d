"""``/settings upcoming`` (on, off, shown) and ``/upcoming`` (the announced releases of followed artists in one
embed: dates in words, postponed and gone marked, bounded, the rest counted; a private answer); the music
data cog runs the announcements after each look of the daily job."""

from __future__ import annotations

import asyncio
import datetime as dt
from unittest.mock import MagicMock, create_autospec

import pytest

from bot.delivery.upcoming import Announcer
from bot.discord_app.client import ReleaseBot
from bot.musicdata import MusicSignal
from bot.services.upcoming import UpcomingEntry, UpcomingListing
from bot.wiring import Core
from cogs import musicdata
from cogs.musicdata import MusicData
from cogs.upcoming import Upcoming, listing_embed
from tests.cogs.mocks import GUILD_ID, make_interaction, sent, text

TODAY = dt.date(2026, 11, 20)


def entry(n: int, *, days: int = 5, postponed: bool = False, gone: bool = False, title: str | None = None):
    return UpcomingEntry(
        f"mbid-{n}", title or f"Record {n}", "Nova & Guest", TODAY + dt.timedelta(days=days), postponed, gone
    )


async def test_settings_upcoming_on_off_and_shown(settings, bot):
    service = bot.services.upcoming
    i = make_interaction()
    await settings.upcoming.callback(settings, i, enabled=True)
    service.set_enabled.assert_awaited_once_with(GUILD_ID, True)
    assert text(i).startswith("Releases MusicBrainz announces ahead for followed artists will be posted")
    assert sent(i)["ephemeral"] is True
    i = make_interaction()
    await settings.upcoming.callback(settings, i, enabled=False)
    assert text(i) == "Announced releases are not posted. `/upcoming` still lists them."
    service.enabled.return_value = True
    i = make_interaction()
    await settings.upcoming.callback(settings, i)
    assert text(i).endswith("Turn it off with `enabled:False`. Nothing was changed.")
    assert service.set_enabled.await_count == 2


@pytest.fixture
def cog(bot):
    return Upcoming(bot)


async def test_upcoming_lists_with_marks(bot, cog):
    bot.services.upcoming.listing.return_value = UpcomingListing(
        False,
        (entry(1), entry(2, days=12, postponed=True), entry(3, days=50, gone=True, title="A*B")),
        more=3,
        today=TODAY,
    )
    i = make_interaction(user_id=222, manage=False)  # any member
    await cog.upcoming.callback(cog, i)
    bot.services.upcoming.listing.assert_awaited_once_with(GUILD_ID)
    embed = sent(i)["embed"]
    assert sent(i)["ephemeral"] is True
    assert embed.description.splitlines() == [
        "Wed 25 Nov · [*Record 1*](<https://musicbrainz.org/release-group/mbid-1>) — Nova & Guest",
        "Wed 2 Dec · [*Record 2*](<https://musicbrainz.org/release-group/mbid-2>) — Nova & Guest (postponed)",
        "~~Sat 9 Jan 2027 · [*A\\*B*](<https://musicbrainz.org/release-group/mbid-3>) — Nova & Guest~~ "
        "(gone: no longer listed)",
        "…and 3 more",
    ]
    assert "/settings upcoming enabled:True" in embed.footer.text


async def test_upcoming_with_nothing_announced(bot, cog):
    bot.services.upcoming.listing.return_value = UpcomingListing(True, (), 0, TODAY)
    i = make_interaction()
    await cog.upcoming.callback(cog, i)
    assert text(i).startswith("Nothing is announced for this server's followed artists right now")


def test_the_listing_fits_an_embed():
    long = "x" * 150
    listing = UpcomingListing(True, tuple(entry(n, title=long) for n in range(40)), 0, TODAY)
    embed = listing_embed(listing)
    assert embed.description is not None and len(embed.description) <= 4096 and embed.description.endswith("more")


async def test_the_music_data_cog_announces_after_each_look(monkeypatch):
    monkeypatch.setattr(musicdata, "CHECK_EVERY_SECONDS", 0.0)
    second = asyncio.Event()
    signal = create_autospec(MusicSignal, instance=True)
    announcer = create_autospec(Announcer, instance=True)
    order: list[str] = []

    async def run_daily() -> None:
        order.append("daily")

    async def run() -> list:
        order.append("announce")
        if order.count("announce") == 2:
            second.set()
        return []

    signal.run_daily.side_effect = run_daily
    announcer.run.side_effect = run
    bot = MagicMock(spec=ReleaseBot)
    bot.core = create_autospec(Core, instance=True)
    bot.core.musicdata, bot.core.announcer = signal, announcer
    cog = MusicData(bot)
    await cog.cog_load()
    await asyncio.wait_for(second.wait(), 5)
    await cog.cog_unload()
    assert order[:4] == ["daily", "announce", "daily", "announce"]
