"""Issue 7: a release is announced once in its life — by ``release-bot check`` and by the bot.

Every path that used to re-announce gets a regression test here: a release newly listed
under a second artist, a removal and re-appearance of an id, a clean/explicit twin (first
seen together or its second edition a week later), a re-issue under a new id, an
``album_type`` relabel, a re-baseline after a group change. And the rotating exact
re-check turns a release the one-request probe cannot see into a bounded delay.
"""

from __future__ import annotations

import datetime as dt
import io
import json

import aiohttp
import pytest

from bot.cli.check import run_check
from bot.delivery import Deliverer
from bot.scheduling.runner import Runner
from bot.settings import DatabaseSettings, DiscordSettings, Settings, SpotifySettings, TrackingSettings
from bot.spotify.client import SpotifyClient
from bot.tracking import Tracker
from fakes.spotify_emulator import SpotifyEmulator
from storage import catalog, guilds
from storage.db import open_database
from storage.models import Delivery, Release
from tests.backend import database_url
from tests.bot.helpers import FakeSender, add_guild, follow
from tests.conftest import FakeClock

UTC = dt.UTC


@pytest.fixture
async def emulator():
    async with SpotifyEmulator() as emu:
        yield emu


async def no_wait(_seconds: float) -> None:
    return None


class Checker:
    """``release-bot check`` passes on one database, a week apart, recording every printed album id."""

    def __init__(self, emu: SpotifyEmulator, tmp_path, *, recheck_share: float = 0.0) -> None:
        self.clock = FakeClock()
        self.settings = Settings(
            discord=DiscordSettings(token=""),
            spotify=SpotifySettings(
                client_id=emu.client_id,
                client_secret=emu.client_secret,
                api_base_url=emu.api_base_url,
                accounts_base_url=emu.accounts_base_url,
                rate_limit_per_30s=0,
            ),
            tracking=TrackingSettings(recheck_share=recheck_share),
            database=DatabaseSettings(url=database_url(tmp_path, "bot")),
        )
        self.printed: list[str] = []  # every album id printed, in order, over all passes
        self.requests = 0

    async def run(self, artists: list[str], *, advance_days: float = 7) -> list[dict]:
        """One pass (after moving the clock ``advance_days``): the JSON lines it printed."""
        self.clock.advance(days=advance_days)
        out, err = io.StringIO(), io.StringIO()
        code = await run_check(self.settings, artists, as_json=True, out=out, err=err, sleep=no_wait, clock=self.clock)
        assert code == 0, err.getvalue()
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        self.printed += [line["album_id"] for line in lines] + [a for line in lines for a in line["also"]]
        self.requests = int(err.getvalue().rsplit(" new, ", 1)[1].split()[0])
        return lines

    def duplicates(self) -> list[str]:
        return sorted({a for a in self.printed if self.printed.count(a) > 1})


async def test_a_release_newly_listed_under_a_second_artist_is_not_printed_again(emulator, tmp_path):
    a, b = emulator.add_artist("Ava"), emulator.add_artist("Ben")
    emulator.add_album([a], "Ava Old", release_date="2020-01-01")
    emulator.add_album([b], "Ben Old", release_date="2020-01-01")
    check = Checker(emulator, tmp_path)
    assert await check.run([a, b]) == []
    duet = emulator.add_album([a], "Duet", album_type="single", release_date="2026-11-27")
    assert [x["album_id"] for x in await check.run([a, b])] == [duet]
    # Spotify lists the single under its second artist a week later.
    emulator.add_album([a, b], "Duet", album_type="single", release_date="2026-11-27", album_id=duet)
    assert await check.run([a, b]) == []
    assert check.duplicates() == []


async def test_twins_first_seen_together_print_as_one_line(emulator, tmp_path):
    a = emulator.add_artist("Ava")
    emulator.add_album([a], "Old", release_date="2020-01-01")
    check = Checker(emulator, tmp_path)
    await check.run([a])
    explicit = emulator.add_album([a], "Song", album_type="single", release_date="2026-11-27")
    clean = emulator.add_album([a], "Song (Clean)", album_type="single", release_date="2026-11-26")
    lines = await check.run([a])
    assert [(x["album_id"], x["also"]) for x in lines] == [(explicit, [clean])]


async def test_a_twin_whose_second_edition_arrives_later_is_never_announced(emulator, tmp_path):
    a = emulator.add_artist("Ava")
    emulator.add_album([a], "Old", release_date="2020-01-01")
    check = Checker(emulator, tmp_path)
    await check.run([a])
    clean_first = emulator.add_album([a], "Night (Clean)", release_date="2026-11-26")
    assert [x["album_id"] for x in await check.run([a])] == [clean_first]
    emulator.add_album([a], "Night", release_date="2026-11-27")  # the explicit edition, a week late
    assert await check.run([a]) == []
    assert check.duplicates() == []


async def test_removal_and_reappearance_of_an_id_is_not_printed_again(emulator, tmp_path):
    a = emulator.add_artist("Ava")
    for i in range(12):
        emulator.add_album([a], f"Single {i}", album_type="single", release_date=f"2021-01-{i + 1:02d}")
    check = Checker(emulator, tmp_path)
    await check.run([a])
    fresh = emulator.add_album([a], "Fresh", album_type="single", release_date="2026-11-27")
    assert [x["album_id"] for x in await check.run([a])] == [fresh]
    emulator.remove_album(fresh)
    assert await check.run([a]) == []
    emulator.add_album([a], "Fresh", album_type="single", release_date="2026-11-27", album_id=fresh)
    assert await check.run([a]) == []
    assert check.duplicates() == []


async def test_a_reissue_under_a_new_id_is_not_printed(emulator, tmp_path):
    a = emulator.add_artist("Ava")
    emulator.add_album([a], "Old", release_date="2020-01-01")
    check = Checker(emulator, tmp_path)
    await check.run([a])
    first = emulator.add_album([a], "Horizons", release_date="2026-11-27", total_tracks=11)
    assert [x["album_id"] for x in await check.run([a])] == [first]
    emulator.remove_album(first)  # moved to another label: the same album under a new id
    emulator.add_album([a], "Horizons", release_date="2026-11-27", total_tracks=11)
    assert await check.run([a]) == []
    # A re-release on another date, or a deluxe edition, is a release of its own.
    deluxe = emulator.add_album([a], "Horizons (Deluxe)", release_date="2026-12-11", total_tracks=15)
    assert [x["album_id"] for x in await check.run([a])] == [deluxe]


async def test_an_album_type_relabel_keeps_the_id_and_is_not_printed(emulator, tmp_path):
    a = emulator.add_artist("Ava")
    for i in range(3):
        emulator.add_album([a], f"Album {i}", release_date=f"2019-0{i + 1}-01")
    check = Checker(emulator, tmp_path)
    await check.run([a])
    ep = emulator.add_album([a], "The EP", album_type="single", release_date="2026-11-27", total_tracks=5)
    assert [x["album_id"] for x in await check.run([a])] == [ep]
    emulator.add_album([a], "The EP", album_type="album", release_date="2026-11-27", total_tracks=5, album_id=ep)
    assert await check.run([a]) == []


async def test_a_rebaseline_after_a_group_change_prints_nothing_again(emulator, tmp_path):
    a, host = emulator.add_artist("Ava"), emulator.add_artist("Host")
    emulator.add_album([a], "Old", release_date="2020-01-01")
    emulator.add_album([host], "Old Compilation", album_type="compilation", release_date="2019-01-01", appears_on=[a])
    check = Checker(emulator, tmp_path)
    db = await open_database(check.settings.database_url)
    try:
        await add_guild(db, 1, now=check.clock())
        await follow(db, 1, a, "Ava", now=check.clock())
        await check.run([a])
        single = emulator.add_album([a], "Single", album_type="single", release_date="2026-11-27")
        assert [x["album_id"] for x in await check.run([a])] == [single]
        async with db.sessions() as session:  # the guild turns appears_on on: the union changes
            (await guilds.guilds_by_ids(session, [1]))[0].album_groups = [
                "album",
                "single",
                "compilation",
                "appears_on",
            ]
            await session.commit()
        assert await check.run([a]) == []
        async with db.sessions() as session:  # and off again
            (await guilds.guilds_by_ids(session, [1]))[0].album_groups = ["album", "single"]
            await session.commit()
        assert await check.run([a]) == []
        later = emulator.add_album([a], "Later", album_type="single", release_date="2026-12-18")
        assert [x["album_id"] for x in await check.run([a])] == [later]
        assert check.duplicates() == []
    finally:
        await db.close()


# --- the bot's posts follow the same rule ------------------------------------------------


class Bot:
    """Runner = Tracker (real client → emulator) + Deliverer (recording sender) on one store."""

    def __init__(self, emu: SpotifyEmulator, db, http: aiohttp.ClientSession, clock: FakeClock) -> None:
        self.db, self.clock, self.sender = db, clock, FakeSender()
        spotify = SpotifyClient(
            client_id=emu.client_id,
            client_secret=emu.client_secret,
            api_base_url=emu.api_base_url,
            accounts_base_url=emu.accounts_base_url,
            session=http,
            clock=clock,
            sleep=no_wait,
        )
        self.tracker = Tracker(db, spotify, clock=clock)
        self.runner = Runner(db, self.tracker, Deliverer(db, self.sender, clock=clock), clock=clock)

    async def follow(self, guild: int, artist: str, channel_id: int) -> None:
        await add_guild(self.db, guild, now=self.clock(), channel_id=channel_id)
        await follow(self.db, guild, artist, now=self.clock())
        await self.tracker.baseline(artist)
        self.clock.advance(minutes=1)

    async def week(self):
        self.clock.advance(days=7)
        return await self.runner.run("schedule")


@pytest.fixture
async def bot(emulator, db, clock):
    async with aiohttp.ClientSession() as http:
        yield Bot(emulator, db, http, clock)


async def test_the_bot_never_posts_a_late_edition_of_a_release_it_posted(emulator, bot):
    a = emulator.add_artist("Ava")
    emulator.add_album([a], "Old", release_date="2020-01-01")
    await bot.follow(1, a, 100)
    explicit = emulator.add_album([a], "Night", release_date="2026-11-27")
    await bot.week()
    assert bot.sender.urls() == [f"https://open.spotify.com/album/{explicit}"]
    clean = emulator.add_album([a], "Night (Clean)", release_date="2026-11-28")
    summary = await bot.week()
    assert summary.releases_found == 0 and len(bot.sender.messages) == 1
    async with bot.db.sessions() as session:
        assert (await session.get(Release, clean)).folded_into == explicit
        row = (await session.execute(Delivery.__table__.select().where(Delivery.release_id == clean))).one()
        assert row.status == "skipped"
    # A re-issue of a posted release under a new id is not posted either.
    emulator.remove_album(explicit)
    emulator.add_album([a], "Night", release_date="2026-11-27")
    await bot.week()
    assert len(bot.sender.messages) == 1


async def test_a_late_edition_of_a_release_still_pending_is_folded_into_its_post(emulator, bot):
    a = emulator.add_artist("Ava")
    emulator.add_album([a], "Old", release_date="2020-01-01")
    await bot.follow(1, a, None)  # no channel yet: the release stays pending
    explicit = emulator.add_album([a], "Night", release_date="2026-11-27")
    await bot.week()
    clean = emulator.add_album([a], "Night (Clean)", release_date="2026-11-28")
    await bot.week()
    async with bot.db.sessions() as session:
        (await guilds.guilds_by_ids(session, [1]))[0].channel_id = 100
        await session.commit()
    await bot.week()
    assert bot.sender.urls() == [f"https://open.spotify.com/album/{explicit}"]
    async with bot.db.sessions() as session:
        row = (await session.execute(Delivery.__table__.select().where(Delivery.release_id == clean))).one()
        assert row.folded_into == explicit


async def test_a_guild_following_only_the_second_artist_still_gets_the_release(emulator, bot):
    a, b = emulator.add_artist("Ava"), emulator.add_artist("Ben")
    emulator.add_album([a], "Ava Old", release_date="2020-01-01")
    emulator.add_album([b], "Ben Old", release_date="2020-01-01")
    await bot.follow(1, a, 100)
    await bot.follow(2, b, 200)
    await bot.follow(3, a, 300)
    await bot.follow(3, b, 300)
    duet = emulator.add_album([a], "Duet", album_type="single", release_date="2026-11-27")
    await bot.week()
    emulator.add_album([a, b], "Duet", album_type="single", release_date="2026-11-27", album_id=duet)
    summary = await bot.week()
    assert summary.releases_found == 0  # not a new release: one more artist on it
    url = f"https://open.spotify.com/album/{duet}"
    posted = [(channel, e["url"]) for channel, embeds, _ in bot.sender.messages for e in embeds]
    assert sorted(posted) == [(100, url), (200, url), (300, url)]


# --- recall: the rotating exact re-check --------------------------------------------------


def _blind_spot_catalogue(emu: SpotifyEmulator) -> str:
    """An artist with 12 albums and 12 singles: the probe window is the last album + the singles head."""
    a = emu.add_artist("Ava")
    for i in range(12):
        emu.add_album([a], f"Album {i}", release_date=f"2015-{i + 1:02d}-01")
        emu.add_album([a], f"Single {i}", album_type="single", release_date=f"2016-{i + 1:02d}-01")
    return a


async def test_the_probe_blind_spot_is_found_by_the_rotating_recheck_within_its_bound(emulator, tmp_path):
    a = _blind_spot_catalogue(emulator)
    check = Checker(emulator, tmp_path, recheck_share=0.125)  # one artist: forced every 8 weeks
    await check.run([a])
    # One album leaves and a new one arrives in the same week: total and window unchanged.
    emulator.remove_album(emulator.artist_listing(a, ("album",))[3][1])
    hidden = emulator.add_album([a], "Hidden", release_date="2026-11-27")
    weeks_to_find = None
    for week in range(1, 9):
        lines = await check.run([a])
        if lines:
            assert [x["album_id"] for x in lines] == [hidden]
            weeks_to_find = week
            break
        assert check.requests == 1  # a plain probe until the re-check is due
    assert weeks_to_find == 8  # the re-check bound: ceil(1 / 0.125) weekly runs
    assert check.requests == 3 + 1  # the listing read whole (24 items: 3 pages) + the labeler's album request
    for _ in range(3):
        assert await check.run([a]) == []
    assert check.duplicates() == []


async def test_without_the_recheck_the_blind_spot_stays_hidden(emulator, tmp_path):
    a = _blind_spot_catalogue(emulator)
    check = Checker(emulator, tmp_path, recheck_share=0.0)
    await check.run([a])
    emulator.remove_album(emulator.artist_listing(a, ("album",))[3][1])
    emulator.add_album([a], "Hidden", release_date="2026-11-27")
    for _ in range(9):
        assert await check.run([a]) == []


async def test_the_recheck_reads_about_its_share_of_artists_per_run(emulator, tmp_path):
    artists = []
    for i in range(16):
        artist = emulator.add_artist(f"Artist {i}")
        emulator.add_album([artist], "Old", release_date="2020-01-01")
        artists.append(artist)
    check = Checker(emulator, tmp_path, recheck_share=0.25)
    await check.run(artists)
    db = await open_database(check.settings.database_url)
    try:
        seen: dict[str, int] = {}
        for week in range(1, 5):
            await check.run(artists)
            async with db.sessions() as session:
                rows = await catalog.artist_tracking_rows(session, artists)
            fresh = {a for a, row in rows.items() if row[5] == check.clock()}
            assert len(fresh) == 4  # floor(0.25 × 16) per run
            for artist in fresh:
                seen.setdefault(artist, week)
        assert len(seen) == 16  # every artist read whole within ceil(1 / 0.25) = 4 runs
    finally:
        await db.close()
