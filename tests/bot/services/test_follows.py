"""``bot.services.follows``: what ``/follow``, ``/unfollow``, ``/following`` and their autocomplete do,
over a real store and the Spotify emulator, with an injected clock."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from bot.services.errors import NotFollowed, UserError
from bot.services.follows import FollowOutcome, FollowService
from storage import catalog
from storage.models import Artist, ArtistRelease, Follow
from tests.bot.services.helpers import World, services_world

pytestmark = pytest.mark.timeout(60)
GUILD, OTHER = 7, 8


@pytest.fixture
async def world(db, clock):
    async with services_world(db, clock, max_follows=3) as w:
        yield w


async def follows_of(world: World, guild_id: int) -> list[str]:
    return [r.artist_id for r in await world.services.follows.following(guild_id)]


async def stored_rows(world: World) -> tuple[int, int]:
    """(artists, follows) in the store."""
    async with world.db.transaction() as s:
        artists = await s.scalar(select(func.count()).select_from(Artist))
        follows = await s.scalar(select(func.count()).select_from(Follow))
    return int(artists or 0), int(follows or 0)


# --- resolving what the user typed -------------------------------------------------------------


async def test_an_artist_is_found_by_link_uri_id_or_name(world: World):
    nova = world.emu.add_artist("Nova Lights")
    world.emu.add_artist("Nova Lights Tribute")
    resolve = world.services.follows.resolve_artist
    for text in (
        f"https://open.spotify.com/artist/{nova}?si=abc",
        f"https://open.spotify.com/intl-de/artist/{nova}",
        f"spotify:artist:{nova}",
        nova,
        "  nova lights ",  # the exact name wins over a better-ranked longer one
    ):
        artist = await resolve(text)
        assert (artist.id, artist.name) == (nova, "Nova Lights"), text


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "Give an artist"),
        ("x" * 201, "too long"),
        ("https://open.spotify.com/album/4aawyAB9vmqN3uQ7FjRGTy", "That is a Spotify album link, not an artist"),
        ("https://open.spotify.com/playlist/37i9dQZF1DXcBWIGoYBM5M", "Spotify playlist link, not an artist"),
        ("https://open.spotify.com/artist/short", "malformed: it should end in a 22-character id"),
        ("0" * 22, f"No Spotify artist has the id `{'0' * 22}`."),
        ("Zzqx Nobody", "No Spotify artist matches “Zzqx Nobody”"),
    ],
)
async def test_bad_artist_input_is_refused_and_nothing_changes(world: World, text, message):
    with pytest.raises(UserError, match=re.escape(message)):
        await world.services.follows.follow(GUILD, text)
    assert await stored_rows(world) == (0, 0)


async def test_spotify_trouble_is_told_and_nothing_changes(world: World):
    nova = world.emu.add_artist("Nova Lights")
    world.emu.fail_next(status=503)
    with pytest.raises(UserError, match="Spotify did not answer just now; nothing was changed"):
        await world.services.follows.follow(GUILD, nova)
    world.emu.fail_next(status=429, reason="QUOTA_EXCEEDED", retry_after=3600)
    with pytest.raises(UserError, match="Spotify has paused this bot's requests until <t:"):
        await world.services.follows.follow(GUILD, "Nova Lights")
    assert await stored_rows(world) == (0, 0)


# --- following -----------------------------------------------------------------------------------


async def test_follow_takes_the_silent_baseline(world: World, clock):
    nova = world.emu.add_artist("Nova Lights")
    old = world.emu.add_album([nova], "Old Single", album_type="single")
    outcome = await world.services.follows.follow(GUILD, f"spotify:artist:{nova}")
    assert outcome == FollowOutcome(nova, "Nova Lights", False, 1)
    async with world.db.transaction() as s:
        links = (await s.execute(select(ArtistRelease.release_id, ArtistRelease.baseline))).all()
        followed_at = await s.scalar(select(Follow.followed_at))
    assert links == [(old, True)]  # what is already out is never announced
    assert followed_at == clock()
    assert await world.services.follows.follow(GUILD, nova) == FollowOutcome(nova, "Nova Lights", True, None)
    assert await stored_rows(world) == (1, 1)


async def test_follow_stands_when_the_baseline_must_wait(world: World):
    nova = world.emu.add_artist("Nova Lights")
    world.emu.add_album([nova], "Old Single", album_type="single")
    world.emu.fail_next(status=503, path_contains="/albums")
    outcome = await world.services.follows.follow(GUILD, nova)
    assert outcome == FollowOutcome(nova, "Nova Lights", False, None)  # taken by the next run
    assert await follows_of(world, GUILD) == [nova]


async def test_the_follow_limit_refuses_and_changes_nothing(world: World):
    artists = [world.emu.add_artist(f"Artist {i}") for i in range(4)]
    for artist in artists[:3]:
        await world.services.follows.follow(GUILD, artist)
    with pytest.raises(UserError) as refused:
        await world.services.follows.follow(GUILD, artists[3])
    assert str(refused.value) == "This server already follows 3 artists, the most allowed. Unfollow some first."
    assert sorted(await follows_of(world, GUILD)) == sorted(artists[:3])
    assert await stored_rows(world) == (3, 3)  # not even the artist row
    assert await world.services.follows.follow(OTHER, artists[3])  # another server has its own limit


async def test_following_again_keeps_the_profile_fresh(world: World):
    nova = world.emu.add_artist("Nova Lights")
    await world.services.follows.follow(GUILD, nova)
    world.emu.add_artist("Nova Lights (Band)", artist_id=nova)
    outcome = await world.services.follows.follow(OTHER, nova)
    assert outcome.artist_name == "Nova Lights (Band)"
    assert [r.name for r in await world.services.follows.following(GUILD)] == ["Nova Lights (Band)"]


# --- unfollowing ---------------------------------------------------------------------------------


async def test_unfollow_by_id_link_or_name_in_this_server_only(world: World):
    nova, guest = world.emu.add_artist("Nova_Lights"), world.emu.add_artist("Guest")
    for guild in (GUILD, OTHER):
        await world.services.follows.follow(guild, nova)
    await world.services.follows.follow(GUILD, guest)
    unfollow = world.services.follows.unfollow
    assert await unfollow(GUILD, "NOVA_LIGHTS") == "Nova_Lights"
    assert await follows_of(world, GUILD) == [guest]
    assert await follows_of(world, OTHER) == [nova]  # the other server still follows it
    with pytest.raises(NotFollowed, match=re.escape("This server doesn't follow “Nova_Lights”. See `/following`")):
        await unfollow(GUILD, "Nova_Lights")
    with pytest.raises(NotFollowed, match="doesn't follow"):
        await unfollow(OTHER, f"https://open.spotify.com/artist/{guest}")  # followed elsewhere only
    assert await unfollow(GUILD, f"https://open.spotify.com/artist/{guest}") == "Guest"
    assert await follows_of(world, GUILD) == []


# --- reading -------------------------------------------------------------------------------------


async def test_following_lists_this_servers_artists_by_name_with_their_latest_release(world: World):
    zed, abba, guest = (world.emu.add_artist(n) for n in ("zed", "Abba", "Guest"))
    world.emu.add_album([zed], "Zed Old", album_type="single", release_date="2024-01-01")
    newest = world.emu.add_album(
        [zed], "Zed New", album_type="album", release_date="2025-06", release_date_precision="month"
    )
    world.emu.add_album([guest], "Guest's Own", album_type="single", release_date="2020-01-01")
    world.emu.add_album([abba], "Someone Else's", release_date="2026-02-01", appears_on=[zed])
    for artist in (zed, abba):
        await world.services.follows.follow(GUILD, artist)
    await world.services.follows.follow(OTHER, guest)
    rows = await world.services.follows.following(GUILD)
    assert [r.name for r in rows] == ["Abba", "zed"]  # case-insensitive order; the other server's not shown
    assert (rows[1].last_release_id, rows[1].last_release_name) == (newest, "Zed New")  # appears_on not counted
    assert (rows[1].last_release_date, rows[1].last_release_precision) == ("2025-06", "month")
    assert rows[1].last_checked_at is not None and rows[1].last_error is None
    assert rows[0].last_release_name == "Someone Else's"


async def test_followed_choices_match_this_servers_names_literally(world: World):
    names = ["100% Pure", "Nova Lights", "Nova_Band", "Novak"]
    ids = {n: world.emu.add_artist(n) for n in names}
    for name in names:
        await world.services.follows.follow(GUILD if name != "Novak" else OTHER, ids[name])
    choices = world.services.follows.followed_choices
    assert await choices(GUILD, "nova") == [("Nova Lights", ids["Nova Lights"]), ("Nova_Band", ids["Nova_Band"])]
    assert await choices(GUILD, "a_b") == [("Nova_Band", ids["Nova_Band"])]  # "_" is not a wildcard
    assert await choices(GUILD, "%") == [("100% Pure", ids["100% Pure"])]
    assert [n for n, _ in await choices(GUILD, "")] == ["100% Pure", "Nova Lights", "Nova_Band"]
    assert len(await choices(GUILD, "", limit=2)) == 2
    assert await choices(OTHER, "nova") == [("Novak", ids["Novak"])]


async def test_artist_choices_known_artists_first_then_spotify_cached(world: World, db, clock):
    nova = world.emu.add_artist("Nova Lights", genres=["synthpop", "dream pop", "indie"])
    async with db.transaction() as s:
        await catalog.save_artists(s, [catalog.ArtistProfile("K" * 22, "Nova Known")], refresh_profiles=False)
    ticks = [0.0]
    follows = FollowService(
        db, world.spotify, world.tracker, world.services.guild_settings, clock=clock, monotonic=lambda: ticks[0]
    )
    assert await follows.artist_choices("nova") == [
        ("Nova Known", "K" * 22),
        ("Nova Lights · synthpop, dream pop", nova),
    ]
    await follows.artist_choices("NOVA")
    assert len(world.emu.requests_to("/search")) == 1  # cached per query (case-insensitive)
    ticks[0] = 301.0
    await follows.artist_choices("nova")
    assert len(world.emu.requests_to("/search")) == 2  # five minutes later: asked again
    for text in ("n", f"spotify:artist:{nova}", "https://open.spotify.com/album/4aawyAB9vmqN3uQ7FjRGTy"):
        assert await follows.artist_choices(text) == []
    world.emu.fail_next(status=503, path_contains="/search")
    assert await follows.artist_choices("nova known") == [("Nova Known", "K" * 22)]  # Spotify down: the store


async def test_artist_names(world: World):
    nova = world.emu.add_artist("Nova Lights")
    await world.services.follows.follow(GUILD, nova)
    assert await world.services.follows.artist_names([nova, "0" * 22]) == {nova: "Nova Lights"}
    assert await world.services.follows.followed_ids(GUILD) == {nova}
    assert await world.services.follows.followed_ids(OTHER) == set()
