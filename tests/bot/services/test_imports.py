"""``bot.services.imports``: a playlist's distinct track artists, pasted links and names, uploaded files
(plain text and both Exportify CSV styles, the samples read from ``../shared``), already-followed, the
caps, what the preview says it will cost in Spotify requests and what confirming really costs, the
silent baseline within the day's budget, and the refusals that change nothing — against the Spotify
emulator and a real store (both backends)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from bot.services.errors import UserError
from bot.services.imports import Importer, preview_text, result_text
from fakes.spotify_emulator import SpotifyEmulator
from storage import catalog, guilds, spotify_state
from storage.models import Artist, ArtistRelease, Follow, SpotifyState
from tests.bot.services.helpers import World, services_world
from tests.conftest import shared_path

pytestmark = pytest.mark.timeout(60)
GUILD = 42


def make_importer(world: World, **kwargs) -> Importer:
    """A :class:`Importer` wired like the bot's (``world.services.imports``), with other limits."""
    return Importer(
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
        preview = await importer.preview_playlist(GUILD, f"spotify:playlist:{playlist}")
        assert [x.name for x in preview.to_follow] == ["Alpha", "Bravo"]
        assert (preview.distinct_artists, preview.already_followed, preview.new_artists) == (3, 1, 2)
        assert (preview.entries_read, preview.entries_total, preview.skipped_entries) == (7, 7, 3)
        assert not preview.truncated and preview.left_out == 0 and preview.requests == 1
        text = preview_text(preview)
        assert "**Mix** has 3 artists (1 already followed here)" in text and "Alpha, Bravo." in text
        assert (
            "Cost in Spotify requests: reading the playlist took 1 request; then the silent baselines: "
            "at least 3 per artist (≥ 6 in all)." in text
        )
        assert await follows(db) == {c}  # the preview changes nothing


async def test_cap_per_import_and_server_limit(db, clock):
    async with services_world(db, clock, max_follows=30) as w:
        emu = w.emu
        pairs = artists_with_singles(emu, 40)
        playlist = emu.add_playlist("Big", [album for _, album in pairs])
        preview = await make_importer(w, cap=10).preview_playlist(GUILD, playlist)
        assert len(preview.to_follow) == 10 and preview.cap_reason == "import" and preview.left_out == 30
        assert "at most 10 artists per import; 30 more are not included" in preview_text(preview)
        preview = await make_importer(w, cap=50).preview_playlist(GUILD, playlist)
        assert len(preview.to_follow) == 30 and preview.cap_reason == "limit"
        assert "this server can follow only 30 more artists" in preview_text(preview)
        result = await make_importer(w).confirm(preview)
        assert len(result.followed) == 30 and result.baselined == 30 and not result.pending_baseline
        with pytest.raises(UserError, match="the most allowed"):
            await make_importer(w).preview_playlist(GUILD, playlist)


async def test_reading_is_paged_and_bounded(db, clock):
    async with services_world(db, clock) as w:
        emu = w.emu
        pairs = artists_with_singles(emu, 130)
        playlist = emu.add_playlist("Long", [album for _, album in pairs])
        preview = await make_importer(w, max_entries=1000).preview_playlist(GUILD, playlist)
        assert preview.entries_read == 130 and preview.distinct_artists == 130
        assert preview.requests == 2  # the playlist (100 entries embedded) + one page of /items (≤ 50)
        assert [r.query.get("limit") for r in emu.requests_to("/items")] == ["50"]
        preview = await make_importer(w, max_entries=120).preview_playlist(GUILD, playlist)
        assert preview.truncated and preview.entries_read == 120 and preview.entries_total == 130
        assert "Only the first 120 of 130 tracks were read." in preview_text(preview)


async def test_confirm_follows_with_silent_baseline(db, clock):
    async with services_world(db, clock) as w:
        emu = w.emu
        pairs = artists_with_singles(emu, 3)
        playlist = emu.add_playlist("Three", [album for _, album in pairs])
        importer = make_importer(w)
        preview = await importer.preview_playlist(GUILD, playlist)
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
        preview = await importer.preview_playlist(GUILD, playlist)
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
        result = await importer.confirm(await importer.preview_playlist(GUILD, playlist))
        assert result.baselined == 0 and result.stopped == "time" and len(result.pending_baseline) == 3
        pairs = artists_with_singles(emu, 2, prefix="Other")
        playlist = emu.add_playlist("Two", [album for _, album in pairs])
        importer = make_importer(w)
        preview = await importer.preview_playlist(GUILD, playlist)
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
            await make_importer(w).preview_playlist(GUILD, text)
        assert emu.requests_to("/v1/") == []


async def test_spotify_errors(db, clock):
    async with services_world(db, clock) as w:
        emu = w.emu
        a = emu.add_artist("Alpha")
        album = emu.add_album([a], "A")
        importer = make_importer(w)
        for playlist_id in (emu.add_playlist("Secret", [album], public=False), "0" * 22):
            with pytest.raises(UserError, match="doesn't exist or is private"):
                await importer.preview_playlist(GUILD, playlist_id)
        empty = emu.add_playlist("Empty", [])
        with pytest.raises(UserError, match="no tracks with Spotify artists"):
            await importer.preview_playlist(GUILD, empty)
        only_local = emu.add_playlist("Tapes", [{"local": "a.mp3", "artist": "X"}, {"episode": "Talk"}, None])
        with pytest.raises(UserError, match="no tracks with Spotify artists"):
            await importer.preview_playlist(GUILD, only_local)
        public = emu.add_playlist("Public", [album])
        emu.playlist_items_owner_only = True
        with pytest.raises(UserError, match=r"HTTP 403.*Development Mode.*Extended Quota") as err:
            await importer.preview_playlist(GUILD, public)
        assert "Exportify" in str(err.value) and "`/import file:`" in str(err.value)
        assert "`/import links:`" in str(err.value)
        emu.playlist_items_owner_only = False
        emu.fail_next(status=503, path_contains="/playlists/")
        with pytest.raises(UserError, match="did not answer"):
            await importer.preview_playlist(GUILD, public)
        emu.fail_next(status=429, reason="QUOTA_EXCEEDED", retry_after=3600)
        with pytest.raises(UserError, match="paused"):
            await importer.preview_playlist(GUILD, public)
        assert await follows(db) == set()


async def test_all_followed_already(db, clock):
    async with services_world(db, clock) as w:
        emu = w.emu
        pairs = artists_with_singles(emu, 2)
        playlist = emu.add_playlist("Two", [album for _, album in pairs])
        importer = make_importer(w)
        await importer.confirm(await importer.preview_playlist(GUILD, playlist))
        with pytest.raises(UserError, match="already follows all 2 artists"):
            await importer.preview_playlist(GUILD, playlist)


async def test_one_import_at_a_time_per_server(db, clock):
    async with services_world(db, clock) as w:
        emu = w.emu
        pairs = artists_with_singles(emu, 2)
        playlist = emu.add_playlist("Two", [album for _, album in pairs])
        importer = make_importer(w)
        preview = await importer.preview_playlist(GUILD, playlist)
        first = asyncio.create_task(importer.confirm(preview))
        await asyncio.sleep(0)
        with pytest.raises(UserError, match="already running"):
            await importer.confirm(preview)
        assert len((await first).followed) == 2


# --- /import links: and /import file: ----------------------------------------------------------

SAMPLE_SIX_BY_SEVEN = "4TXdHyuAOl3rAOFmZ6MeKz"  # the artist ids in ../shared/musicdata/exportify
SAMPLE_GHOSTPOET = "69lEbRQRe29JdyLrewNAvD"


def lookups(emu: SpotifyEmulator) -> list[str]:
    """Ids of the ``GET /artists/{id}`` requests the emulator answered (not their albums)."""
    return [r.path.rsplit("/", 1)[1] for r in emu.requests_to("/v1/artists/") if not r.path.endswith("/albums")]


def searches(emu: SpotifyEmulator) -> list[str]:
    return [r.query["q"] for r in emu.requests_to("/v1/search")]


async def no_file() -> bytes:
    raise AssertionError("the file must not be downloaded")


def file_of(data: bytes):
    async def download() -> bytes:
        return data

    return download


async def store_artist(w: World, artist_id: str, name: str, *, follow: bool = False) -> None:
    """An artist the bot already knows (followed by this guild when ``follow``)."""
    await w.services.guild_settings.ensure_guild(GUILD)
    async with w.db.sessions() as s:
        await catalog.get_or_create_artist(s, artist_id, name)
        if follow:
            await guilds.follow_artist(s, GUILD, artist_id, now=w.clock())
        await s.commit()


async def test_links_preview_costs_nothing_and_says_what_confirm_will_cost(db, clock):
    async with services_world(db, clock) as w:
        emu = w.emu
        known = emu.add_artist("Known Artist")
        unknown = emu.add_artist("Unknown Artist")
        followed = emu.add_artist("Followed One")
        daft = emu.add_artist("Daft Punk")
        emu.add_artist("Daft Punk Tribute")
        air = emu.add_artist("Air")
        for artist in (known, unknown, daft, air):
            emu.add_album([artist], "Old Single", album_type="single")
        await store_artist(w, known, "Known Artist")
        await store_artist(w, followed, "Followed One", follow=True)
        await w.services.follows.search("air")  # searched a moment ago (autocomplete): cached
        emu.clear_log()
        text = (
            f"https://open.spotify.com/artist/{known}?si=abc, spotify:artist:{unknown}\n"
            f"daft punk, Air, followed one, {followed}, DAFT  PUNK, https://open.spotify.com/album/{air}"
        )
        importer = make_importer(w)
        preview = await importer.preview_links(GUILD, text)
        assert emu.request_log == []  # the preview asks Spotify nothing
        assert [(i.artist_id, i.name) for i in preview.to_follow] == [
            (known, "Known Artist"),
            (unknown, ""),
            (None, "daft punk"),
            (None, "Air"),
        ]
        assert (preview.distinct_artists, preview.already_followed, preview.duplicates) == (6, 2, 1)
        cost = preview.cost
        assert (cost.searches, cost.cached, cost.lookups, cost.per_baseline, cost.allowance) == (1, 1, 1, 3, None)
        text = preview_text(preview)
        assert "Your list names 6 artists (2 already followed here)." in text
        assert f"Follow **4** of them: Known Artist, `{unknown}`, “daft punk”, “Air”." in text
        assert "Cost in Spotify requests: 0 to read 1 artist id (names known)" in text
        assert "1 to look up 1 id the bot doesn't know (one `GET /artists/{id}` each)" in text
        assert "1 to search 2 names, one each (1 searched in the last minutes: free)" in text
        assert "at least 3 per artist (≥ 12 in all)" in text
        assert "Given twice, counted once: 1 entry." in text
        assert f"Not recognised as artists, skipped: “https://open.spotify.com/album/{air}”" in text
        assert await follows(db) == {followed}  # the preview changes nothing

        result = await importer.confirm(preview)
        assert {a.id for a in result.followed} == {known, unknown, daft, air}
        assert [a.name for a in result.followed] == ["Known Artist", "Unknown Artist", "Daft Punk", "Air"]
        assert lookups(emu) == [unknown] and searches(emu) == ["daft punk"]  # exactly what the preview said
        assert result.baselined == 4 and result.requests == 2 + 4 * 3
        assert await follows(db) == {followed, known, unknown, daft, air}
        async with db.sessions() as s:
            assert (await s.scalar(select(ArtistRelease).where(ArtistRelease.baseline.is_(False)))) is None
        assert "Now following **4** artists. 4 ready" in result_text(result)


async def test_names_no_artist_matches_unknown_ids_and_closest_matches_are_listed(db, clock):
    async with services_world(db, clock) as w:
        emu = w.emu
        beyonce = emu.add_artist("Beyoncé")
        nova = emu.add_artist("Nova Lights")
        importer = make_importer(w)
        ghost_id = "0" * 22
        preview = await importer.preview_links(
            GUILD, f"Beyonc, Nobody Anywhere, {ghost_id}, Nova Lights, spotify:artist:{nova}"
        )
        assert len(preview.to_follow) == 5
        assert "Names that match no Spotify artist are listed after Confirm" in preview_text(preview)
        result = await importer.confirm(preview)
        assert [a.id for a in result.followed] == [beyonce, nova]
        assert result.not_found == ("Nobody Anywhere",) and result.unknown_ids == (ghost_id,)
        assert result.closest == (("Beyonc", "Beyoncé"),) and result.duplicates == 1  # the link and the name
        text = result_text(result)
        assert "No Spotify artist matches “Nobody Anywhere”: not followed." in text
        assert f"Spotify knows no artist with the id `{ghost_id}`: not followed." in text
        assert "Matched by the closest name: “Beyonc” → Beyoncé." in text
        assert "1 matched an artist already in this import." in text
        assert await follows(db) == {beyonce, nova}


async def test_the_cap_applies_before_any_search(db, clock):
    async with services_world(db, clock) as w:
        emu = w.emu
        names = [f"Band {i:02d}" for i in range(12)]
        for name in names:
            emu.add_artist(name)
        preview = await make_importer(w, cap=5).preview_links(GUILD, ", ".join(names))
        assert [i.name for i in preview.to_follow] == names[:5] and preview.left_out == 7
        assert "at most 5 artists per import; 7 more are not included" in preview_text(preview)
        result = await make_importer(w, cap=5).confirm(preview)
        assert len(result.followed) == 5 and searches(emu) == names[:5]


async def test_the_day_budget_caps_the_searches_and_counts_them(db, clock):
    async with services_world(db, clock, requests_per_day=10) as w:
        emu = w.emu
        known = emu.add_artist("Known")
        await store_artist(w, known, "Known")
        for name in ("Alpha", "Bravo", "Charlie", "Delta"):
            emu.add_artist(name)
        importer = make_importer(w, budget_share=0.3)  # 3 of the day's 10 requests
        preview = await importer.preview_links(GUILD, f"Alpha, Bravo, Charlie, Delta, {known}")
        assert [i.label for i in preview.to_follow] == ["Alpha", "Bravo", "Charlie", "Known"]
        assert preview.over_budget == 1 and preview.cost.allowance == 3 and preview.left_out == 0
        text = preview_text(preview)
        assert "Not included: 1 artist whose name or id needs a Spotify request today's budget cannot pay" in text
        assert "Imports may spend 3 more today" in text
        result = await importer.confirm(preview)
        assert searches(emu) == ["Alpha", "Bravo", "Charlie"] and len(result.followed) == 4
        # The searches spent the import's share: every baseline is left to the next run.
        assert result.baselined == 0 and len(result.pending_baseline) == 4 and result.stopped == "budget"
        async with db.sessions() as s:
            state = await s.scalar(select(SpotifyState))
            assert state is not None and state.budget_day_requests == 3  # the searches count in the day's budget

        # Nothing left today (a run spent the rest): a list of names only is refused, and nothing changes.
        async with db.sessions() as s:
            await spotify_state.settle_budget(s, clock().date().isoformat(), 7)
            await s.commit()
        with pytest.raises(UserError, match="Today's Spotify request budget cannot pay for this import") as err:
            await importer.preview_links(GUILD, "Delta")
        assert "finding its 1 artist takes a request each" in str(err.value)
        assert len(searches(emu)) == 3


async def test_budget_spent_between_preview_and_confirm_leaves_names_unsearched(db, clock):
    async with services_world(db, clock, requests_per_day=10) as w:
        emu = w.emu
        for name in ("Alpha", "Bravo"):
            emu.add_artist(name)
        importer = make_importer(w, budget_share=1.0)
        preview = await importer.preview_links(GUILD, "Alpha, Bravo")
        async with db.sessions() as s:
            await spotify_state.settle_budget(s, clock().date().isoformat(), 9)  # a run spent 9 meanwhile
            await s.commit()
        result = await importer.confirm(preview)
        assert [a.name for a in result.followed] == ["Alpha"] and searches(emu) == ["Alpha"]
        assert result.unresolved == 1 and result.unresolved_reason == "budget"
        assert "1 not searched or looked up: today's Spotify request budget ran out" in result_text(result)


async def test_a_cooldown_refuses_what_needs_a_request_and_stops_confirm(db, clock):
    async with services_world(db, clock) as w:
        emu = w.emu
        alpha, bravo = emu.add_artist("Alpha"), emu.add_artist("Bravo")
        known = emu.add_artist("Known")
        await store_artist(w, known, "Known")
        importer = make_importer(w)
        preview = await importer.preview_links(GUILD, "Alpha, Bravo")
        emu.fail_next(status=429, reason="QUOTA_EXCEEDED", retry_after=3600)
        result = await importer.confirm(preview)
        assert result.followed == () and result.unresolved == 2 and result.unresolved_reason == "cooldown"
        assert "Spotify paused the bot's requests" in result_text(result) and await follows(db) == set()
        with pytest.raises(UserError, match="paused this bot's requests") as err:
            await importer.preview_links(GUILD, f"Alpha, {bravo}")
        assert "This import needs 2 Spotify requests" in str(err.value)
        # An artist the bot knows needs no request: followed, its baseline pending.
        preview = await importer.preview_links(GUILD, known)
        result = await importer.confirm(preview)
        assert [a.id for a in result.followed] == [known] and result.stopped == "cooldown"
        assert alpha not in await follows(db)


async def test_exportify_csv_files_from_both_tools(db, clock):
    async with services_world(db, clock) as w:
        emu = w.emu
        six = emu.add_artist("Six by Seven", artist_id=SAMPLE_SIX_BY_SEVEN)
        ghost = emu.add_artist("Ghostpoet", artist_id=SAMPLE_GHOSTPOET)
        emu.add_album([six], "Best of Six By Seven")
        importer = make_importer(w)
        data = shared_path("musicdata", "exportify", "watsonbox_sample.csv").read_bytes()
        preview = await importer.preview_file(GUILD, "Road Trip.csv", len(data), file_of(data), "text/csv")
        assert emu.request_log == []
        assert [(i.artist_id, i.name) for i in preview.to_follow] == [(six, "Six by Seven"), (ghost, "Ghostpoet")]
        text = preview_text(preview)
        assert "`Road Trip.csv` (the `Artist URI(s)` column of 3 rows) names 2 artists." in text
        assert "Skipped 1 local file (no Spotify artist)." in text
        assert "Cost in Spotify requests: 0 to read 2 artist ids (names known); then the silent baselines" in text
        result = await importer.confirm(preview)
        assert lookups(emu) == [] and searches(emu) == []  # ids cost 0 to read: only the baselines
        assert {a.id for a in result.followed} == {six, ghost} and result.baselined == 2

        w.emu.add_artist("Air")
        data = shared_path("musicdata", "exportify", "pavelkomarov_sample.DERIVED.csv").read_bytes()
        with pytest.raises(UserError, match=r"already follows all 1 artist of `Road_Trip\.csv`"):
            await importer.preview_file(GUILD, "Road_Trip.csv", len(data), file_of(data))
        data = data + b'spotify:track:7ATyvp3TmYBmGW7YuC8DJ3,"Song","Album","Air;Six by Seven",2011,1,1,false,,\n'
        preview = await importer.preview_file(GUILD, "Road_Trip.csv", len(data), file_of(data))
        assert [i.name for i in preview.to_follow] == ["Air"] and preview.already_followed == 1
        assert preview.cost.searches == 1
        result = await importer.confirm(preview)
        assert [a.name for a in result.followed] == ["Air"] and searches(emu) == ["Air"]


async def test_refused_files_change_nothing(db, clock):
    async with services_world(db, clock) as w:
        emu = w.emu
        emu.add_artist("Air")
        importer = make_importer(w)
        with pytest.raises(UserError, match="I read files of at most 1 MB"):
            await importer.preview_file(GUILD, "big.csv", 5 * 1024 * 1024, no_file)
        refusals = [
            ("latin1.txt", "Air, Beyoncé".encode("latin-1"), "not UTF-8"),
            ("songs.csv", b"Track,Album\nCrying,Best of\n", "no artist column"),
            ("junk.txt", b"https://example.com/x, ???", "Nothing there is recognisable"),
            ("empty.txt", b"", "is empty"),
        ]
        for name, data, message in refusals:
            with pytest.raises(UserError, match=message):
                await importer.preview_file(GUILD, name, len(data), file_of(data))
        with pytest.raises(UserError, match="nothing to import"):
            await importer.preview_links(GUILD, " , ; ")
        assert emu.request_log == [] and await follows(db) == set()
        async with db.sessions() as s:
            assert (await s.scalar(select(func.count()).select_from(Artist))) == 0


async def test_links_at_the_follow_limit(db, clock):
    async with services_world(db, clock, max_follows=2) as w:
        emu = w.emu
        a, b, c = (emu.add_artist(n) for n in ("Alpha", "Bravo", "Charlie"))
        importer = make_importer(w)
        preview = await importer.preview_links(GUILD, f"{a}, {b}, {c}")
        assert preview.cap == 2 and preview.cap_reason == "limit" and len(preview.to_follow) == 2
        await importer.confirm(preview)
        with pytest.raises(UserError, match="the most allowed"):
            await importer.preview_links(GUILD, c)
