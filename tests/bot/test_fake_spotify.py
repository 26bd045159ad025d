"""The in-memory Spotify fake keeps the client contract the tracker relies on."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.spotify.errors import SpotifyCooldown, SpotifyError, SpotifyNotFound
from tests.bot.fake_spotify import FakeSpotify


async def test_grouped_newest_first_with_real_paging(clock):
    spotify = FakeSpotify(clock)
    a = spotify.add_artist(name="A")
    spotify.release(a, "Old LP", group="album", date="2010-01-01")
    singles = [spotify.release(a, f"S{i}", date=f"2020-01-{i + 1:02d}") for i in range(12)]
    spotify.release(a, "New LP", group="album", date="2026-01-01")
    page = await spotify.artist_albums(a, include_groups="album,single", limit=10)
    assert [x.name for x in page.items[:3]] == ["New LP", "Old LP", "S11"]
    assert page.total == 14 and page.next
    page2 = await spotify.artist_albums_next(page)
    assert [x.id for x in page2.items] == [s.id for s in reversed(singles)][8:]
    assert page2.next is None and await spotify.artist_albums_next(page2) is None
    assert spotify.request_count == 2
    only = await spotify.artist_albums(a, include_groups="single", limit=5)
    assert {x.album_group for x in only.items} == {"single"}
    with pytest.raises(SpotifyError):
        await spotify.artist_albums(a, include_groups="single", limit=11)


async def test_failures_and_cooldown(clock):
    spotify = FakeSpotify(clock)
    a = spotify.add_artist()
    with pytest.raises(SpotifyNotFound):
        await spotify.get_artist("missing")
    spotify.fail(a, SpotifyError("boom", 500))
    with pytest.raises(SpotifyError):
        await spotify.artist_albums(a, include_groups="single")
    spotify.fail(a, None)
    spotify.cooldown_after(1, clock() + dt.timedelta(hours=1))
    await spotify.artist_albums(a, include_groups="single")
    with pytest.raises(SpotifyCooldown):
        await spotify.artist_albums(a, include_groups="single")
    count = spotify.request_count
    with pytest.raises(SpotifyCooldown):
        await spotify.get_artist(a)
    assert spotify.request_count == count  # refused locally, not sent
    clock.advance(hours=1)
    assert (await spotify.get_artist(a)).id == a
