"""The simulated music world (fakes/music_world.py) does what its docstring says: its proportions,
its determinism, and what the three emulators show when it advances (a postponed release appears
on Spotify at its new date, not the old one; a cancelled one never; midnight in the market's zone)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from fakes.listenbrainz_emulator import ListenBrainzEmulator
from fakes.music_world import MusicWorld, WorldRelease
from fakes.musicbrainz_emulator import MusicBrainzEmulator
from fakes.spotify_emulator import SpotifyEmulator
from tests.conftest import FakeClock

START = dt.date(2026, 9, 4)
AGENT = {"User-Agent": "release-bot-tests/1.0 ( https://example.invalid/release-bot )"}


def artists(n: int) -> list[tuple[str, str]]:
    return [(f"{i:022d}", f"Artist {i}") for i in range(n)]


@pytest.fixture(scope="module")
def big() -> MusicWorld:
    return MusicWorld(artists(3000), seed="proportions", start=START, weeks=6)


def test_proportions_within_tolerance(big: MusicWorld) -> None:
    releases = big.releases
    assert len(releases) == pytest.approx(3000 * 0.05 * 6, rel=0.1)
    assert sum(a.mapped for a in big.artists) / len(big.artists) == pytest.approx(0.6, abs=0.03)
    share = {k: sum(r.known == k for r in releases) / len(releases) for k in ("ahead", "late", "never")}
    assert share["ahead"] == pytest.approx(0.7, abs=0.04)
    assert share["late"] == pytest.approx(0.15, abs=0.03)
    assert share["never"] == pytest.approx(0.15, abs=0.03)
    ahead = [r for r in releases if r.known == "ahead"]
    assert sum(r.postponed for r in ahead) / len(ahead) == pytest.approx(0.1, abs=0.03)
    assert 0 < sum(r.cancelled_at is not None for r in ahead) / len(ahead) <= 0.06


def test_timing_rules(big: MusicWorld) -> None:
    for r in big.releases:
        assert START < r.first_date <= START + dt.timedelta(weeks=6)
        midnight = dt.datetime.combine(r.first_date, dt.time(0), tzinfo=ZoneInfo(r.tz))
        if r.known == "ahead":  # announced 1-6 weeks (plus hours) before the first announced date
            assert r.announced_at is not None
            assert dt.timedelta(days=7) <= midnight - r.announced_at <= dt.timedelta(days=43)
        elif r.known == "late":  # MusicBrainz learns after Spotify lists it
            assert r.announced_at is not None and r.appears_at is not None and r.announced_at > r.appears_at
        else:
            assert r.announced_at is None
        if r.postponed_at is not None:
            assert (
                r.announced_at is not None
                and r.announced_at < r.postponed_at < midnight
                and r.final_date > r.first_date
            )
        else:
            assert r.final_date == r.first_date
        if r.cancelled_at is not None:
            assert r.appears_at is None and r.announced_at is not None and r.announced_at < r.cancelled_at < midnight
        else:  # Spotify lists it at midnight of its final date in its market's time zone
            assert r.appears_at is not None
            local = r.appears_at.astimezone(ZoneInfo(r.tz))
            assert local.date() == r.final_date and local.time() == dt.time(0)


def test_deterministic_by_seed() -> None:
    one = MusicWorld(artists(200), seed="a", start=START, weeks=4)
    two = MusicWorld(artists(200), seed="a", start=START, weeks=4)
    other = MusicWorld(artists(200), seed="b", start=START, weeks=4)
    assert one.releases == two.releases and one.artists == two.artists
    assert [r.first_date for r in one.releases] != [r.first_date for r in other.releases]


def test_appeared_is_the_spotify_ground_truth(big: MusicWorld) -> None:
    t0 = dt.datetime.combine(START, dt.time(9), tzinfo=dt.UTC)
    week = [big.appeared(t0 + dt.timedelta(weeks=k), t0 + dt.timedelta(weeks=k + 1)) for k in range(12)]
    everything = big.appeared(None, t0 + dt.timedelta(weeks=12))
    assert [r.index for w in week for r in w] == [r.index for r in everything]
    assert {r.index for r in everything} == {r.index for r in big.releases if r.cancelled_at is None}


@pytest.fixture
async def emulators(
    clock: FakeClock,
) -> AsyncIterator[tuple[SpotifyEmulator, MusicBrainzEmulator, ListenBrainzEmulator]]:
    async with (
        SpotifyEmulator() as spotify,
        MusicBrainzEmulator(clock=clock, rate_limit=None) as mb,
        ListenBrainzEmulator(clock=clock) as lb,
    ):
        yield spotify, mb, lb


async def fresh(lb: ListenBrainzEmulator, day: dt.date) -> dict[str, str]:
    """ListenBrainz's fresh releases around ``day``: ``{release group MBID: date}``."""
    async with aiohttp.ClientSession(headers=AGENT) as http:
        url = f"{lb.base_url}/1/explore/fresh-releases/?days=90&release_date={day.isoformat()}"
        async with http.get(url) as response:
            body = await response.json()
    return {r["release_group_mbid"]: r["release_date"] for r in body["payload"]["releases"]}


async def mb_date(mb: MusicBrainzEmulator, r: WorldRelease) -> str | None:
    async with (
        aiohttp.ClientSession(headers=AGENT) as http,
        http.get(f"{mb.base_url}/release-group/{r.rg_mbid}?fmt=json") as response,
    ):
        if response.status == 404:
            return None
        return (await response.json())["first-release-date"]


def when(t: dt.datetime | None) -> dt.datetime:
    """A time the world chose (the test picked a release that has it)."""
    assert t is not None
    return t


def listed(spotify: SpotifyEmulator, r: WorldRelease) -> bool:
    return r.spotify_id in {a for _, a in spotify.artist_listing(r.artist)}


async def test_postponed_release_appears_on_spotify_at_the_new_date(emulators) -> None:
    spotify, mb, lb = emulators
    world = MusicWorld(artists(300), seed="postponed", start=START, weeks=6)
    world.install(mb, spotify=spotify)
    r = next(r for r in world.releases if r.postponed)
    old_midnight = dt.datetime.combine(r.first_date, dt.time(0), tzinfo=ZoneInfo(r.tz)).astimezone(dt.UTC)
    world.advance(when(r.announced_at), spotify=spotify, musicbrainz=mb, listenbrainz=lb)
    assert await mb_date(mb, r) == r.first_date.isoformat()
    assert (await fresh(lb, r.first_date))[r.rg_mbid] == r.first_date.isoformat()
    world.advance(when(r.postponed_at), spotify=spotify, musicbrainz=mb, listenbrainz=lb)
    assert await mb_date(mb, r) == r.final_date.isoformat()
    assert (await fresh(lb, r.final_date))[r.rg_mbid] == r.final_date.isoformat()
    world.advance(old_midnight + dt.timedelta(days=1), spotify=spotify, musicbrainz=mb, listenbrainz=lb)
    assert not listed(spotify, r)  # not at the old date
    assert r.appears_at is not None
    world.advance(r.appears_at - dt.timedelta(seconds=1), spotify=spotify, musicbrainz=mb, listenbrainz=lb)
    assert not listed(spotify, r)
    world.advance(r.appears_at, spotify=spotify, musicbrainz=mb, listenbrainz=lb)
    assert listed(spotify, r)
    assert spotify._albums[r.spotify_id].release_date == r.final_date.isoformat()


async def test_cancelled_release_disappears_and_never_appears(emulators) -> None:
    spotify, mb, lb = emulators
    world = MusicWorld(artists(600), seed="cancelled", start=START, weeks=6)
    world.install(mb, spotify=spotify)
    r = next(r for r in world.releases if r.cancelled_at is not None)
    world.advance(when(r.announced_at), spotify=spotify, musicbrainz=mb, listenbrainz=lb)
    assert r.rg_mbid in await fresh(lb, r.first_date)
    world.advance(when(r.cancelled_at), spotify=spotify, musicbrainz=mb, listenbrainz=lb)
    assert r.rg_mbid not in await fresh(lb, r.first_date) and await mb_date(mb, r) is None
    # The whole world after it: every event applies (no barcode of a cancelled release, …).
    end = dt.datetime.combine(START + dt.timedelta(weeks=12), dt.time(0), tzinfo=dt.UTC)
    world.advance(end, spotify=spotify, musicbrainz=mb, listenbrainz=lb)
    assert not listed(spotify, r)


async def test_mapping_barcodes_and_late_arrivals(emulators) -> None:
    spotify, mb, lb = emulators
    world = MusicWorld(artists(300), seed="late", start=START, weeks=4)
    world.install(mb, spotify=spotify)
    async with aiohttp.ClientSession(headers=AGENT) as http:
        for a in world.artists[:20]:
            url = f"{mb.base_url}/url?resource=https://open.spotify.com/artist/{a.spotify_id}&inc=artist-rels&fmt=json"
            async with http.get(url) as response:
                assert (response.status == 200) == a.mapped
    late = next(r for r in world.releases if r.known == "late")
    assert late.appears_at is not None and late.announced_at is not None
    world.advance(late.appears_at, spotify=spotify, musicbrainz=mb, listenbrainz=lb)
    assert listed(spotify, late) and await mb_date(mb, late) is None  # Spotify first
    world.advance(when(late.announced_at), spotify=spotify, musicbrainz=mb, listenbrainz=lb)
    assert await mb_date(mb, late) == late.final_date.isoformat()
    # A barcode entered on release day is unknown (null) before and the digits after.
    r = next(r for r in world.releases if r.known == "ahead" and r.barcode_at is not None and not r.postponed)
    world2 = MusicWorld(artists(300), seed="late", start=START, weeks=4)
    async with (
        MusicBrainzEmulator(rate_limit=None) as mb2,
        aiohttp.ClientSession(headers=AGENT) as http,
    ):
        world2.install(mb2)
        world2.advance(when(r.announced_at), musicbrainz=mb2)
        url = f"{mb2.base_url}/release?release-group={r.rg_mbid}&fmt=json"
        async with http.get(url) as response:
            assert (await response.json())["releases"][0]["barcode"] is None
        world2.advance(when(r.barcode_at), musicbrainz=mb2)
        async with http.get(url) as response:
            assert (await response.json())["releases"][0]["barcode"] == r.upc


def test_cannot_go_back(big: MusicWorld) -> None:
    world = MusicWorld(artists(10), seed="back", start=START, weeks=1)
    t = dt.datetime.combine(START, dt.time(0), tzinfo=dt.UTC)
    world.advance(t)
    with pytest.raises(ValueError):
        world.advance(t - dt.timedelta(seconds=1))
