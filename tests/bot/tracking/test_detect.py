"""Change detection against the Spotify emulator, with exact request counts (docs/tracking.md).

One emulator for the module; each test makes its own artists, database and client.
"""

from __future__ import annotations

import pytest
import pytest_asyncio
from sqlalchemy import select

from bot.spotify.client import SpotifyClient
from bot.tracking import Tracker
from bot.tracking.groups import tracked_groups
from fakes.spotify_emulator import SpotifyEmulator
from storage.db import open_database
from storage.models import Artist, ArtistRelease, Guild, Release
from tests import backend
from tests.bot.helpers import add_guild, follow, links
from tests.conftest import FakeClock

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def emu():
    async with SpotifyEmulator(seed="detection") as emulator:
        yield emulator


@pytest_asyncio.fixture(loop_scope="module")
async def world(emu, tmp_path):
    db = await open_database(backend.database_url(tmp_path, "d"))
    client = SpotifyClient(
        client_id=emu.client_id,
        client_secret=emu.client_secret,
        api_base_url=emu.api_base_url,
        accounts_base_url=emu.accounts_base_url,
    )
    clock = FakeClock()
    w = World(emu, db, client, clock)
    try:
        yield w
    finally:
        await client.close()
        await db.close()


class World:
    def __init__(self, emu: SpotifyEmulator, db, client, clock) -> None:
        self.emu, self.db, self.client, self.clock = emu, db, client, clock
        self.tracker = Tracker(db, client, clock=clock)

    async def artist(self, *, albums=5, singles=20, compilations=2, guild=1, groups=None) -> str:
        artist = self.emu.add_artist("Artist")
        for i in range(albums):
            self.emu.add_album([artist], f"LP {i}", release_date=f"20{10 + i}-03-01")
        for i in range(singles):
            self.emu.add_album(
                [artist], f"Single {i}", album_type="single", release_date=f"20{10 + i // 12}-{i % 12 + 1:02d}-05"
            )
        for i in range(compilations):
            self.emu.add_album([artist], f"Best of {i}", album_type="compilation", release_date=f"200{i}-01-01")
        await add_guild(self.db, guild, now=self.clock())
        if groups is not None:
            async with self.db.sessions() as s:
                (await s.get(Guild, guild)).album_groups = groups
                await s.commit()
        await follow(self.db, guild, artist, now=self.clock())
        await self.tracker.baseline(artist)
        self.clock.advance(days=7)
        return artist

    async def track(self, *artists):
        return await self.tracker.track(list(artists))

    def album_requests(self, artist: str):
        return self.emu.requests_to(f"/artists/{artist}/albums")


def single(w: World, artist: str, name: str, date: str = "2026-11-20") -> str:
    return w.emu.add_album([artist], name, album_type="single", release_date=date)


def listing(w: World, artist: str, group: str) -> list[str]:
    return [a for g, a in w.emu.artist_listing(artist) if g == group]


async def test_unchanged_artist_is_one_request(world):
    artist = await world.artist()
    before = len(world.album_requests(artist))
    result = await world.track(artist)
    assert result.requests == 1 and result.new_releases == [] and result.lower_bound == 1
    probe = world.album_requests(artist)[before:]
    assert len(probe) == 1
    assert probe[0].query["include_groups"] == "album,single,compilation"
    assert probe[0].query["offset"] == "0" and probe[0].query["limit"] == "10"  # all 5 albums + singles head
    assert result.pages_skipped == 3 - 1  # a full walk: 27 releases = 3 pages


async def test_many_albums_probe_from_the_last_album(world):
    artist = await world.artist(albums=12)
    before = len(world.album_requests(artist))
    assert (await world.track(artist)).requests == 1
    probe = world.album_requests(artist)[before:]
    assert probe[0].query["offset"] == "11"  # the last album (alignment anchor) + singles head
    sg = single(world, artist, "Fresh")
    lp = world.emu.add_album([artist], "New LP", release_date="2026-11-20")
    result = await world.track(artist)
    assert sorted(result.new_releases) == sorted([lp, sg])
    assert result.requests == result.lower_bound == 2  # probe + the album head


async def test_new_album_while_another_album_disappears_is_seen_by_the_probe(world):
    artist = await world.artist()  # 5 albums: the window holds the whole album group
    world.emu.remove_album(listing(world, artist, "album")[2])
    lp = world.emu.add_album([artist], "Replacement LP", release_date="2026-11-20")
    result = await world.track(artist)
    assert result.new_releases == [lp]


async def test_new_single_costs_the_lower_bound(world):
    artist = await world.artist()
    new = single(world, artist, "Fresh")
    result = await world.track(artist)
    assert result.new_releases == [new]
    assert result.requests == result.lower_bound == 1
    assert (await links(world.db, artist))[new] is False
    assert (await world.track(artist)).requests == 1  # unchanged again


async def test_new_album_and_new_single(world):
    artist = await world.artist()
    lp = world.emu.add_album([artist], "New LP", release_date="2026-11-20")
    sg = single(world, artist, "New Single")
    result = await world.track(artist)
    assert sorted(result.new_releases) == sorted([lp, sg])
    assert result.requests == result.lower_bound == 1  # the window holds both heads
    assert result.fallbacks == 0
    assert (await world.track(artist)).requests == 1


async def test_many_new_singles_page_until_a_known_one(world):
    artist = await world.artist()
    fresh = [single(world, artist, f"Burst {i}") for i in range(12)]
    result = await world.track(artist)
    assert sorted(result.new_releases) == sorted(fresh)
    assert result.requests == result.lower_bound == 2


async def test_removal_only_gives_no_false_new(world):
    artist = await world.artist()
    old_single = listing(world, artist, "single")[15]  # beyond the probe window
    world.emu.remove_album(old_single)
    result = await world.track(artist)
    assert result.new_releases == [] and result.failed == {}
    # A removal can hide an addition, so every group head is read: the probe shows the album and
    # singles heads; one more request for the compilation head.
    assert result.requests == 2
    async with world.db.sessions() as s:
        assert (await s.get(Artist, artist)).group_state["counts"]["single"] == 19
    assert (await world.track(artist)).requests == 1


async def test_album_removal_gives_no_false_new(world):
    artist = await world.artist()
    world.emu.remove_album(listing(world, artist, "album")[1])
    result = await world.track(artist)
    assert result.new_releases == [] and result.requests == 2
    assert (await world.track(artist)).requests == 1


async def test_removal_and_addition_in_the_same_run(world):
    artist = await world.artist()
    world.emu.remove_album(listing(world, artist, "single")[12])
    world.emu.remove_album(listing(world, artist, "album")[2])
    lp = world.emu.add_album([artist], "Comeback", release_date="2026-11-20")
    sg = single(world, artist, "Comeback single")
    result = await world.track(artist)
    assert sorted(result.new_releases) == sorted([lp, sg])
    assert (await world.track(artist)).requests == 1


async def test_total_unchanged_removal_and_new_single_is_found(world):
    artist = await world.artist()
    world.emu.remove_album(listing(world, artist, "compilation")[0])
    sg = single(world, artist, "Swap")
    result = await world.track(artist)  # total unchanged: the window shows the new single
    assert result.new_releases == [sg]
    assert (await world.track(artist)).new_releases == []


async def test_replacement_of_a_single(world):
    artist = await world.artist()
    head = listing(world, artist, "single")[0]
    world.emu.remove_album(head)
    replacement = single(world, artist, "Single 19 (re-upload)", date="2011-08-05")
    result = await world.track(artist)
    assert result.new_releases == [replacement]
    assert (await world.track(artist)).requests == 1


async def test_back_catalogue_addition_is_found_with_its_date(world):
    artist = await world.artist()
    old = single(world, artist, "Lost tape", date="2010-06-20")  # lands mid-group
    result = await world.track(artist)
    assert result.new_releases == [old] and result.back_catalogue == [old]
    assert result.requests > result.lower_bound - 1  # more pages; counted
    async with world.db.sessions() as s:
        release = await s.get(Release, old)
        assert release.release_date == "2010-06-20"
    assert (await links(world.db, artist))[old] is False
    assert (await world.track(artist)).requests == 1


async def test_back_catalogue_album_at_the_tail(world):
    artist = await world.artist()
    old = world.emu.add_album([artist], "Demo", release_date="1999-01-01")  # after the anchor
    result = await world.track(artist)
    assert result.new_releases == [old]
    assert (await world.track(artist)).requests == 1


async def test_small_catalogue_window_is_exact(world):
    artist = await world.artist(albums=2, singles=4, compilations=1)
    before = len(world.album_requests(artist))
    world.emu.remove_album(listing(world, artist, "single")[3])
    sg = single(world, artist, "Swap")
    result = await world.track(artist)
    assert result.new_releases == [sg] and result.requests == 1
    assert world.album_requests(artist)[before].query["offset"] == "0"


async def test_appears_on_chosen_by_one_guild_is_fetched_once_for_the_union(world):
    artist = await world.artist(groups=["album", "single", "compilation"])
    other = world.emu.add_artist("Other")
    for i in range(3):
        world.emu.add_album([other], f"Feature {i}", release_date="2019-01-01", appears_on=[artist])
    await add_guild(world.db, 2, now=world.clock())
    async with world.db.sessions() as s:
        (await s.get(Guild, 2)).album_groups = ["single", "appears_on"]
        await s.commit()
    await follow(world.db, 2, artist, now=world.clock())
    async with world.db.sessions() as s:
        assert (await tracked_groups(s, [artist]))[artist] == ("album", "single", "compilation", "appears_on")
    first = await world.track(artist)  # appears_on newly tracked: read whole, silently
    assert first.new_releases == []
    feature = world.emu.add_album([other], "New feature", release_date="2026-11-20", appears_on=[artist])
    before = len(world.album_requests(artist))
    result = await world.track(artist)
    assert result.new_releases == [feature]
    reqs = world.album_requests(artist)[before:]
    assert reqs[0].query["include_groups"] == "album,single,compilation,appears_on"
    assert sum(1 for r in reqs if "appears_on" in r.query["include_groups"]) == len(
        reqs
    )  # one listing, no per-guild fetch
    async with world.db.sessions() as s:
        group = await s.scalar(select(ArtistRelease.album_group).where(ArtistRelease.release_id == feature))
    assert group == "appears_on"
    assert (await world.track(artist)).requests == 1


async def test_issue_two_state_is_upgraded_without_losing_a_release(world):
    artist = await world.artist()
    async with world.db.sessions() as s:
        (await s.get(Artist, artist)).group_state = {"album": {"total": 5, "newest": []}}
        await s.commit()
    sg = single(world, artist, "During the upgrade")
    result = await world.track(artist)
    assert result.new_releases == [sg]
    assert (await world.track(artist)).requests == 1


async def test_first_compilation_while_an_album_disappears(world):
    # Seen in the benchmark: 14 albums, 33 singles, no compilation yet; in one week an album
    # near the head disappears and the artist's first compilation appears (total unchanged).
    artist = await world.artist(albums=14, singles=33, compilations=0)
    world.emu.remove_album(listing(world, artist, "album")[1])
    comp = world.emu.add_album([artist], "First Anthology", album_type="compilation", release_date="2026-11-13")
    result = await world.track(artist)
    assert result.new_releases == [comp]
    assert (await world.track(artist)).requests == 1
