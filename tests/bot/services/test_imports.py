"""``bot.services.imports``: distinct track artists, already-followed, the cap, the silent baseline
within the day's budget, and the errors — against the Spotify emulator and a real store."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bot.services.errors import UserError
from bot.services.imports import PlaylistImporter, preview_text, result_text
from fakes.spotify_emulator import SpotifyEmulator
from storage import catalog, guilds
from storage.models import Artist, ArtistRelease, Follow
from tests.bot.services.helpers import World, services_world

pytestmark = pytest.mark.timeout(60)
GUILD = 42


def make_importer(world: World, **kwargs) -> PlaylistImporter:
    """A :class:`PlaylistImporter` wired like the bot's (``world.services.imports``), with other limits."""
    return PlaylistImporter(
        world.db,
        world.spotify,
        world.tracker,
        world.services.guild_settings,
        world.services.follows,
        world.coordinator,
        clock=world.clock,
        **kwargs,
    )


def artists_with_singles(emu: SpotifyEmulator, n: int, prefix: str = "Artist") -> list[tuple[str, str]]:
    out = []
    for i in range(n):
        artist = emu.add_artist(f"{prefix} {i:02d}")
        out.append((artist, emu.add_album([artist], f"{prefix} {i:02d} Single", album_type="single")))
    return out


async def follows(db) -> set[str]:
    async with db.sessions() as s:
        return set((await s.scalars(select(Follow.artist_id).where(Follow.guild_id == GUILD))).all())


async def test_distinct_track_artists_in_order_minus_followed(db, clock):
    async with services_world(db, clock) as w:
        emu = w.emu
        a, b, c = (emu.add_artist(n) for n in ("Alpha", "Bravo", "Charlie"))
        one = emu.add_album([a, b], "Duet", album_type="single")
        two = emu.add_album([c], "Solo")
        three = emu.add_album([b], "Bravo Alone")
        playlist = emu.add_playlist(
            "Mix", [one, {"local": "x.mp3", "artist": "Local Hero"}, two, None, {"episode": "Talk"}, three, one]
        )
        await w.services.guild_settings.ensure_guild(GUILD)
        async with db.sessions() as s:
            await catalog.get_or_create_artist(s, c, "Charlie")
            await guilds.follow_artist(s, GUILD, c, now=clock())
            await s.commit()
        importer = make_importer(w)
        preview = await importer.preview(GUILD, f"spotify:playlist:{playlist}")
        assert [x.name for x in preview.to_follow] == ["Alpha", "Bravo"]
        assert (preview.distinct_artists, preview.already_followed, preview.new_artists) == (3, 1, 2)
        assert (preview.entries_read, preview.entries_total, preview.skipped_entries) == (7, 7, 3)
        assert not preview.truncated and preview.left_out == 0 and preview.requests == 1
        text = preview_text(preview)
        assert "**Mix** has 3 artists (1 already followed here)" in text and "Alpha, Bravo." in text
        assert await follows(db) == {c}  # the preview changes nothing


async def test_cap_per_import_and_server_limit(db, clock):
    async with services_world(db, clock, max_follows=30) as w:
        emu = w.emu
        pairs = artists_with_singles(emu, 40)
        playlist = emu.add_playlist("Big", [album for _, album in pairs])
        preview = await make_importer(w, cap=10).preview(GUILD, playlist)
        assert len(preview.to_follow) == 10 and preview.cap_reason == "import" and preview.left_out == 30
        assert "at most 10 artists per import; 30 more are not included" in preview_text(preview)
        preview = await make_importer(w, cap=50).preview(GUILD, playlist)
        assert len(preview.to_follow) == 30 and preview.cap_reason == "limit"
        assert "this server can follow only 30 more artists" in preview_text(preview)
        result = await make_importer(w).confirm(preview)
        assert len(result.followed) == 30 and result.baselined == 30 and not result.pending_baseline
        with pytest.raises(UserError, match="the most allowed"):
            await make_importer(w).preview(GUILD, playlist)


async def test_reading_is_paged_and_bounded(db, clock):
    async with services_world(db, clock) as w:
        emu = w.emu
        pairs = artists_with_singles(emu, 130)
        playlist = emu.add_playlist("Long", [album for _, album in pairs])
        preview = await make_importer(w, max_entries=1000).preview(GUILD, playlist)
        assert preview.entries_read == 130 and preview.distinct_artists == 130
        assert preview.requests == 2  # the playlist (100 entries embedded) + one page of /items (≤ 50)
        assert [r.query.get("limit") for r in emu.requests_to("/items")] == ["50"]
        preview = await make_importer(w, max_entries=120).preview(GUILD, playlist)
        assert preview.truncated and preview.entries_read == 120 and preview.entries_total == 130
        assert "Only the first 120 of 130 tracks were read." in preview_text(preview)


async def test_confirm_follows_with_silent_baseline(db, clock):
    async with services_world(db, clock) as w:
        emu = w.emu
        pairs = artists_with_singles(emu, 3)
        playlist = emu.add_playlist("Three", [album for _, album in pairs])
        importer = make_importer(w)
        preview = await importer.preview(GUILD, playlist)
        seen = []

        async def progress(done, total):
            seen.append((done, total))

        result = await importer.confirm(preview, progress=progress)
        assert seen == [(1, 3), (2, 3), (3, 3)]
        assert result.baselined == 3 and result.stopped is None and result.requests >= 9
        assert await follows(db) == {a for a, _ in pairs}
        async with db.sessions() as s:
            links = (await s.execute(select(ArtistRelease.release_id, ArtistRelease.baseline))).all()
            assert sorted(links) == sorted((album, True) for _, album in pairs)  # never announced
            assert all(a.baselined_at is not None for a in (await s.scalars(select(Artist))).all())
        assert "Now following **3** artists" in result_text(result) and "3 ready" in result_text(result)
        # Followed in the meantime: skipped on a second confirm of the same preview.
        again = await importer.confirm(preview)
        assert again.followed == () and again.already_followed == 3


async def test_budget_leaves_the_rest_pending(db, clock):
    async with services_world(db, clock, requests_per_day=20) as w:
        emu = w.emu
        pairs = artists_with_singles(emu, 8)
        playlist = emu.add_playlist("Eight", [album for _, album in pairs])
        importer = make_importer(w, budget_share=0.5)
        preview = await importer.preview(GUILD, playlist)
        result = await importer.confirm(preview)
        # 10 requests for the import (half of the 20 left today), 3 per baseline (album, single, compilation).
        assert result.baselined == 3 and len(result.pending_baseline) == 5 and result.stopped == "budget"
        assert len(result.followed) == 8 and await follows(db) == {a for a, _ in pairs}
        text = result_text(result)
        assert "5 pending" in text and "budget" in text and "next check" in text
        # The next run baselines them silently (Tracker.track baselines never-baselined artists).
        track = await w.tracker.track([a.id for a in result.pending_baseline])
        async with db.sessions() as s:
            assert (await s.scalar(select(ArtistRelease).where(ArtistRelease.baseline.is_(False)))) is None
        assert track is not None


async def test_cooldown_and_time_limit(db, clock):
    async with services_world(db, clock) as w:
        emu = w.emu
        pairs = artists_with_singles(emu, 3)
        playlist = emu.add_playlist("Three", [album for _, album in pairs])
        importer = make_importer(w, baseline_seconds=0.0)
        result = await importer.confirm(await importer.preview(GUILD, playlist))
        assert result.baselined == 0 and result.stopped == "time" and len(result.pending_baseline) == 3
        pairs = artists_with_singles(emu, 2, prefix="Other")
        playlist = emu.add_playlist("Two", [album for _, album in pairs])
        importer = make_importer(w)
        preview = await importer.preview(GUILD, playlist)
        emu.fail_next(status=429, reason="QUOTA_EXCEEDED", retry_after=3600)
        result = await importer.confirm(preview)
        assert result.stopped == "cooldown" and result.baselined == 0 and len(result.pending_baseline) == 2
        assert "paused" in result_text(result) and len(result.followed) == 2


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "Give a public Spotify playlist link"),
        ("https://open.spotify.com/album/4aawyAB9vmqN3uQ7FjRGTy", "album link, not a playlist"),
        ("spotify:artist:0TnOYISbd1XYRBk9myaseg", "artist link, not a playlist"),
        ("just some words", "not a Spotify playlist link"),
        ("https://open.spotify.com/playlist/short", "not a Spotify playlist link"),
    ],
)
async def test_input_errors(db, clock, text, message):
    async with services_world(db, clock) as w:
        emu = w.emu
        with pytest.raises(UserError, match=message):
            await make_importer(w).preview(GUILD, text)
        assert emu.requests_to("/v1/") == []


async def test_spotify_errors(db, clock):
    async with services_world(db, clock) as w:
        emu = w.emu
        a = emu.add_artist("Alpha")
        album = emu.add_album([a], "A")
        importer = make_importer(w)
        for playlist_id in (emu.add_playlist("Secret", [album], public=False), "0" * 22):
            with pytest.raises(UserError, match="doesn't exist or is private"):
                await importer.preview(GUILD, playlist_id)
        empty = emu.add_playlist("Empty", [])
        with pytest.raises(UserError, match="no tracks with Spotify artists"):
            await importer.preview(GUILD, empty)
        only_local = emu.add_playlist("Tapes", [{"local": "a.mp3", "artist": "X"}, {"episode": "Talk"}, None])
        with pytest.raises(UserError, match="no tracks with Spotify artists"):
            await importer.preview(GUILD, only_local)
        public = emu.add_playlist("Public", [album])
        emu.playlist_items_owner_only = True
        with pytest.raises(UserError, match=r"HTTP 403.*Development Mode.*Extended Quota"):
            await importer.preview(GUILD, public)
        emu.playlist_items_owner_only = False
        emu.fail_next(status=503, path_contains="/playlists/")
        with pytest.raises(UserError, match="did not answer"):
            await importer.preview(GUILD, public)
        emu.fail_next(status=429, reason="QUOTA_EXCEEDED", retry_after=3600)
        with pytest.raises(UserError, match="paused"):
            await importer.preview(GUILD, public)
        assert await follows(db) == set()


async def test_all_followed_already(db, clock):
    async with services_world(db, clock) as w:
        emu = w.emu
        pairs = artists_with_singles(emu, 2)
        playlist = emu.add_playlist("Two", [album for _, album in pairs])
        importer = make_importer(w)
        await importer.confirm(await importer.preview(GUILD, playlist))
        with pytest.raises(UserError, match="already follows all 2 artists"):
            await importer.preview(GUILD, playlist)


async def test_one_import_at_a_time_per_server(db, clock):
    async with services_world(db, clock) as w:
        emu = w.emu
        pairs = artists_with_singles(emu, 2)
        playlist = emu.add_playlist("Two", [album for _, album in pairs])
        importer = make_importer(w)
        preview = await importer.preview(GUILD, playlist)
        first = asyncio.create_task(importer.confirm(preview))
        await asyncio.sleep(0)
        with pytest.raises(UserError, match="already running"):
            await importer.confirm(preview)
        assert len((await first).followed) == 2
