"""Tracker: silent baseline, one probe per unchanged artist, failures and the Spotify cooldown.

Against the Spotify emulator through the real client (``tests/bot/helpers.py``: ``emulator_client``).
Request counts follow docs/tracking.md: a baseline reads every tracked group whole
(one request per group here), a check is one probe request when nothing changed.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from bot.spotify.errors import SpotifyCooldown, SpotifyNotFound
from bot.tracking import Tracker
from fakes.spotify_emulator import SpotifyEmulator
from storage import catalog, guilds, spotify_state
from storage.models import Artist, Release
from tests.bot.helpers import UNTIL_CLEARED, add_guild, emulator_client, follow, links

GROUPS = 3
PROBE = 1


@pytest.fixture
async def emu():
    async with SpotifyEmulator() as emulator:
        yield emulator


@pytest.fixture
async def spotify(emu, clock):
    client = emulator_client(emu, clock)
    yield client
    await client.close()


@pytest.fixture
def tracker(db, spotify, clock) -> Tracker:
    return Tracker(db, spotify, clock=clock)


async def artist_with_catalogue(db, emu, clock, *, singles=3, albums=2, guild=1):
    artist = emu.add_artist("Pitbull")
    for i in range(albums):
        emu.add_album([artist], f"Album {i}", release_date=f"201{i}-01-01")
    for i in range(singles):
        emu.add_album(
            [artist], f"Single {i}", album_type="single", release_date=f"{2020 + i // 12}-{i % 12 + 1:02d}-01"
        )
    await add_guild(db, guild, now=clock())
    await follow(db, guild, artist, "Pitbull", now=clock())
    return artist


def quota_429(emu: SpotifyEmulator, path_contains: str, until: dt.datetime, now: dt.datetime) -> None:
    """The next request whose path contains ``path_contains`` answers Spotify's quota 429 until ``until``."""
    seconds = (until - now).total_seconds()
    emu.fail_next(status=429, retry_after=seconds, reason="QUOTA_EXCEEDED", path_contains=path_contains)


async def test_baseline_stores_every_tracked_group_whole_silently(db, emu, spotify, tracker, clock):
    artist = await artist_with_catalogue(db, emu, clock, singles=12, albums=2)
    stored = await tracker.baseline(artist)
    assert stored == 14  # 2 albums + all 12 singles
    assert spotify.request_count == GROUPS + 1  # singles take two pages
    assert spotify.requests_by_endpoint["artist_albums"] == GROUPS + 1
    assert set((await links(db, artist)).values()) == {True}
    async with db.sessions() as s:
        row = await s.get(Artist, artist)
        assert row.baselined_at == clock()
        state = row.group_state
        assert state["counts"] == {"album": 2, "single": 12, "compilation": 0} and state["total"] == 14
        assert len(state["heads"]["single"]) == 10
        assert state["window"]["offset"] == 0 and len(state["window"]["ids"]) == 10  # both albums + singles head
    # Idempotent: no request the second time.
    assert await tracker.baseline(artist) == 0
    assert spotify.request_count == GROUPS + 1


async def test_baseline_creates_a_missing_artist_row(db, emu, tracker):
    artist = emu.add_artist("Newcomer")
    emu.add_album([artist], "First", album_type="single", release_date="2026-11-20")
    assert await tracker.baseline(artist) == 1
    async with db.sessions() as s:
        assert (await s.get(Artist, artist)).name == "Newcomer"


async def test_baseline_unknown_artist_raises_not_found_and_stores_nothing(db, tracker):
    nope = "0" * 22  # a well-formed id no artist has
    with pytest.raises(SpotifyNotFound):
        await tracker.baseline(nope)
    async with db.sessions() as s:
        assert await s.get(Artist, nope) is None


async def test_never_baselined_artist_is_baselined_by_track(db, emu, tracker, clock):
    artist = await artist_with_catalogue(db, emu, clock)
    result = await tracker.track([artist])
    assert result.checked == [artist] and result.baselined == [artist]
    assert result.new_releases == []
    assert set((await links(db, artist)).values()) == {True}


async def test_unchanged_artist_costs_one_request(db, emu, tracker, clock):
    artist = await artist_with_catalogue(db, emu, clock, singles=15)
    await tracker.baseline(artist)
    clock.advance(days=7)
    result = await tracker.track([artist])
    assert result.requests == PROBE
    assert result.new_releases == [] and result.failed == {}
    async with db.sessions() as s:
        row = await s.get(Artist, artist)
        assert row.last_checked_at == clock()


async def test_new_single_is_found_once_and_recorded(db, emu, tracker, clock):
    artist = await artist_with_catalogue(db, emu, clock)
    await tracker.baseline(artist)
    clock.advance(days=1)
    new = emu.add_album([artist], "Fresh", album_type="single", release_date="2026-11-21")
    result = await tracker.track([artist], run_id=7)
    assert result.new_releases == [new]
    assert (await links(db, artist))[new] is False
    async with db.sessions() as s:
        release = await s.get(Release, new)
        assert release.first_seen_at == clock()
        assert release.artists == [{"id": artist, "name": "Pitbull"}]
        row = await s.get(Artist, artist)
        assert row.group_state["heads"]["single"][0] == new
    again = await tracker.track([artist])
    assert again.new_releases == []


async def test_twelve_new_singles_take_two_pages(db, emu, tracker, clock):
    artist = await artist_with_catalogue(db, emu, clock)
    await tracker.baseline(artist)
    fresh = [emu.add_album([artist], f"New {i}", album_type="single", release_date="2026-11-21") for i in range(12)]
    result = await tracker.track([artist])
    assert sorted(result.new_releases) == sorted(fresh)
    assert result.requests == PROBE + 1  # the window shows 4 of them; one more page meets a known one


async def test_ten_new_singles_need_the_second_page_to_prove_the_end(db, emu, tracker, clock):
    artist = await artist_with_catalogue(db, emu, clock)
    await tracker.baseline(artist)
    for i in range(10):
        emu.add_album([artist], f"New {i}", album_type="single", release_date="2026-11-21")
    result = await tracker.track([artist])
    assert len(result.new_releases) == 10
    assert result.requests == PROBE + 1


async def test_each_artist_fetched_once_per_call(db, emu, tracker, clock):
    artist = await artist_with_catalogue(db, emu, clock, guild=1)
    for guild in (2, 3):
        await add_guild(db, guild, now=clock())
        await follow(db, guild, artist, now=clock())
    await tracker.baseline(artist)
    async with db.sessions() as s:
        ids = await guilds.followed_artist_ids(s, [1, 2, 3])
    result = await tracker.track(ids + ids)
    assert result.checked == [artist]
    assert result.requests == PROBE


async def test_one_failing_artist_does_not_stop_the_others(db, emu, tracker, clock):
    good = await artist_with_catalogue(db, emu, clock)
    bad = await artist_with_catalogue(db, emu, clock, guild=2)
    gone = await artist_with_catalogue(db, emu, clock, guild=3)
    for a in (good, bad, gone):
        await tracker.baseline(a)
    new_good = emu.add_album([good], "Good news", album_type="single", release_date="2026-11-21")
    new_bad = emu.add_album([bad], "Bad timing", album_type="single", release_date="2026-11-21")
    emu.fail_next(UNTIL_CLEARED, status=500, path_contains=bad)
    emu.fail_next(UNTIL_CLEARED, status=404, path_contains=gone)
    result = await tracker.track([good, bad, gone])
    assert result.checked == [good]
    assert set(result.failed) == {bad, gone}
    assert "500" in result.failed[bad] and "not found" in result.failed[gone]
    assert result.new_releases == [new_good]
    async with db.sessions() as s:
        assert "500" in (await s.get(Artist, bad)).last_error
    # Healed: the missed release is found next time and the error cleared.
    emu.clear_faults()
    again = await tracker.track([bad])
    assert again.new_releases == [new_bad]
    async with db.sessions() as s:
        assert (await s.get(Artist, bad)).last_error is None


async def test_failure_in_a_later_group_stores_nothing_of_that_artist(db, emu, spotify, clock, monkeypatch):
    artist = await artist_with_catalogue(db, emu, clock, singles=9)  # 11 releases: more than one page
    tracker = Tracker(db, spotify, clock=clock)
    await tracker.baseline(artist)
    for i in range(12):  # more new singles than the probe window shows: a drill is needed
        emu.add_album([artist], f"New Single {i}", album_type="single", release_date="2026-11-21")
    original = spotify.artist_albums
    calls = 0

    async def flaky(artist_id, *, include_groups, limit=10, offset=0):
        nonlocal calls
        calls += 1
        if calls == 2:  # the probe saw the change; the drill-down times out
            raise TimeoutError()
        return await original(artist_id, include_groups=include_groups, limit=limit, offset=offset)

    monkeypatch.setattr(spotify, "artist_albums", flaky)
    result = await tracker.track([artist])
    assert result.failed == {artist: "Spotify request timed out"}
    assert all(baseline for baseline in (await links(db, artist)).values())  # no album stored either


async def test_unexpected_exception_is_caught_per_artist(db, emu, spotify, tracker, clock, monkeypatch):
    a = await artist_with_catalogue(db, emu, clock)
    b = await artist_with_catalogue(db, emu, clock, guild=2)
    await tracker.baseline(a)
    await tracker.baseline(b)
    original = spotify.artist_albums

    async def boom(artist_id, **kwargs):  # not a Spotify error: a bug anywhere below the tracker
        if artist_id == a:
            raise RuntimeError("boom")
        return await original(artist_id, **kwargs)

    monkeypatch.setattr(spotify, "artist_albums", boom)
    result = await tracker.track([a, b])
    assert result.checked == [b] and result.failed[a] == "RuntimeError: boom"


async def test_cooldown_stops_the_run_and_is_persisted(db, emu, tracker, clock):
    # In the order the tracker checks artists of equal priority: by id.
    artists = sorted([await artist_with_catalogue(db, emu, clock, guild=g) for g in (1, 2, 3)])
    for a in artists:
        await tracker.baseline(a)
    until = clock() + dt.timedelta(hours=20)
    quota_429(emu, artists[1], until, clock())  # the first artist passes (PROBE), then a quota 429
    tracker.concurrency = 1
    result = await tracker.track(artists)
    assert result.checked == [artists[0]]
    assert result.cooldown is not None and result.cooldown.until == until
    assert set(result.failed) == set(artists[1:])
    assert all(r.startswith("Spotify cooldown until 2026-11-21T08:00:00") for r in result.failed.values())
    async with db.sessions() as s:
        assert await spotify_state.get_cooldown(s) == (until, "QUOTA_EXCEEDED")
        assert (await s.get(Artist, artists[1])).last_error is None


async def test_cooldown_survives_a_restart(db, emu, spotify, clock):
    artist = await artist_with_catalogue(db, emu, clock)
    await Tracker(db, spotify, clock=clock).baseline(artist)
    until = clock() + dt.timedelta(hours=20)
    async with db.sessions() as s:
        await spotify_state.set_cooldown(s, until, "QUOTA_EXCEEDED")
        await s.commit()
    fresh_client = emulator_client(emu, clock)  # a restarted process: the client knows nothing
    tracker = Tracker(db, fresh_client, clock=clock)
    result = await tracker.track([artist])
    assert fresh_client.request_count == 0
    assert result.checked == [] and result.cooldown is not None and result.cooldown.until == until
    assert fresh_client.cooldown_until == until  # handed to the client
    with pytest.raises(SpotifyCooldown):
        await tracker.baseline(emu.add_artist("Newcomer"))
    assert fresh_client.request_count == 0
    clock.advance(hours=20, seconds=1)
    result = await tracker.track([artist])
    assert result.checked == [artist] and fresh_client.request_count == PROBE
    await fresh_client.close()


async def test_cooldown_during_baseline_is_persisted(db, emu, tracker, clock):
    artist = emu.add_artist("Quota")
    until = clock() + dt.timedelta(hours=2)
    quota_429(emu, "/albums", until, clock())  # get_artist passes, the first listing request is a quota 429
    with pytest.raises(SpotifyCooldown):
        await tracker.baseline(artist)
    async with db.sessions() as s:
        assert (await spotify_state.get_cooldown(s))[0] == until
        assert await s.get(Artist, artist) is None


async def test_concurrency_is_bounded(db, emu, spotify, clock, monkeypatch):
    artists = [await artist_with_catalogue(db, emu, clock, guild=g) for g in range(1, 9)]
    tracker = Tracker(db, spotify, clock=clock, concurrency=3)
    for a in artists:
        await tracker.baseline(a)
    running = peak = 0
    original = spotify.artist_albums
    three_inside = asyncio.Event()

    async def slow(*args, **kwargs):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running >= 3:
            three_inside.set()
        try:
            await asyncio.wait_for(three_inside.wait(), 5)  # hold until 3 artists are in flight
            return await original(*args, **kwargs)
        finally:
            running -= 1

    monkeypatch.setattr(spotify, "artist_albums", slow)
    result = await tracker.track(artists)
    assert len(result.checked) == 8
    assert peak == 3


async def test_collaboration_found_under_two_artists_in_one_run(db, emu, tracker, clock):
    a = await artist_with_catalogue(db, emu, clock)
    b = await artist_with_catalogue(db, emu, clock, guild=2)
    await tracker.baseline(a)
    await tracker.baseline(b)
    collab = emu.add_album([a, b], "Together", album_type="single", release_date="2026-11-21")  # listed under both
    result = await tracker.track([a, b])
    assert result.new_releases == [collab]
    assert (await links(db, a))[collab] is False and (await links(db, b))[collab] is False


async def test_baselines_load_known_ids_only_for_artists_with_links(db, emu, spotify, tracker, clock, monkeypatch):
    fresh = await artist_with_catalogue(db, emu, clock)
    linked = emu.add_artist("Linked")
    old = await spotify.get_album(emu.add_album([linked], "Old single", album_type="single", release_date="2019-01-01"))
    emu.add_album([linked], "Other single", album_type="single", release_date="2019-02-01")
    await follow(db, 1, linked, "Linked", now=clock())
    async with db.sessions() as s:  # linked before its baseline (e.g. by an interrupted older version)
        await catalog.upsert_release(s, old, now=clock())
        await catalog.link_release(s, linked, old.id, album_group="single", now=clock(), baseline=False)
        await s.commit()
    loads: list[str] = []
    original = catalog.known_release_groups

    async def counting(session, artist_id):
        loads.append(artist_id)
        return await original(session, artist_id)

    monkeypatch.setattr(catalog, "known_release_groups", counting)
    result = await tracker.track([fresh, linked])
    assert sorted(result.baselined) == sorted([fresh, linked])
    assert loads == [linked]  # the artist with no link needs no query
    got = await links(db, linked)
    assert got[old.id] is False and list(got.values()).count(True) == 1  # the known link is kept as it was
    assert set((await links(db, fresh)).values()) == {True}
