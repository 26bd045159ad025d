"""``/import lastfm:`` and ``/import listenbrainz:`` in the service (``bot.services.import_history`` and
``Importer.preview_history``): against the Last.fm, ListenBrainz, MusicBrainz and Spotify emulators and a
real store (both backends). The mapping order — a MusicBrainz id through its Spotify URL relationship
first (0 Spotify requests), one search each only for the rest —, the counts and costs the preview says
and what Confirm really spends, the cap bounding the MusicBrainz lookups, and the refusals (unknown
user, bad key, no statistics, not set up) that change nothing."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from sqlalchemy import select

from bot.musicdata import LastFmClient, ListenBrainzClient, MusicBrainzClient, SharedRateLimit, user_agent
from bot.services.errors import UserError
from bot.services.import_history import ListeningHistory
from bot.services.imports import preview_text, result_text
from fakes.lastfm_emulator import LastFmEmulator
from fakes.listenbrainz_emulator import ListenBrainzEmulator
from fakes.musicbrainz_emulator import MusicBrainzEmulator
from storage.models import ArtistRelease
from tests.bot.musicdata.conftest import SimulatedSleep
from tests.bot.services.helpers import World, services_world
from tests.bot.services.test_imports import GUILD, follows, lookups, make_importer, searches, store_artist

pytestmark = pytest.mark.timeout(60)
KEY = "history-test-key"


def mbid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


@dataclass
class Music:
    lastfm: LastFmEmulator
    lb: ListenBrainzEmulator
    mb: MusicBrainzEmulator
    history: ListeningHistory


@contextlib.asynccontextmanager
async def music(w: World, *, key: str | None = KEY, contact: bool = True) -> AsyncIterator[Music]:
    """The three emulators on the world's clock and a :class:`ListeningHistory` on them (the MusicBrainz
    client paced by the shared slot, its waits simulated). ``key``/``contact`` None/False: not configured."""
    sleep = SimulatedSleep(w.clock)
    async with (
        LastFmEmulator(api_keys=[KEY], clock=w.clock) as lastfm,
        ListenBrainzEmulator(clock=w.clock) as lb,
        MusicBrainzEmulator(clock=w.clock) as mb,
        aiohttp.ClientSession() as http,
    ):
        agent = user_agent("ops@example.org")
        history = ListeningHistory(
            lastfm=LastFmClient(base_url=lastfm.base_url, api_key=key, user_agent=agent, http=http, sleep=sleep)
            if key is not None
            else None,
            listenbrainz=ListenBrainzClient(
                base_url=lb.base_url, user_agent=agent, http=http, clock=w.clock, sleep=sleep
            )
            if contact
            else None,
            musicbrainz=MusicBrainzClient(
                base_url=mb.base_url,
                user_agent=agent,
                http=http,
                rate_limit=SharedRateLimit(w.db, "musicbrainz", clock=w.clock, sleep=sleep),
                backoff_seconds=0.5,
                max_retries=1,
            )
            if contact
            else None,
        )
        yield Music(lastfm, lb, mb, history)


def spotify_requests(w: World) -> int:
    return len(w.emu.request_log)


async def test_lastfm_maps_through_musicbrainz_first_and_searches_only_the_rest(db, clock):
    async with services_world(db, clock) as w, music(w) as m:
        emu = w.emu
        nova = emu.add_artist("Nova Lights")
        harbour = emu.add_artist("The Quiet Harbour")
        air = emu.add_artist("Air")
        followed = emu.add_artist("Followed One")
        for artist in (nova, harbour, air):
            emu.add_album([artist], "Old Single", album_type="single")
        await store_artist(w, followed, "Followed One", follow=True)
        m.mb.add_artist(mbid("nova"), "Nova Lights", spotify_id=nova)  # linked to Spotify
        m.mb.add_artist(mbid("harbour"), "The Quiet Harbour")  # on MusicBrainz, no Spotify link
        m.lastfm.add_user("alice")
        m.lastfm.set_top_artists(
            "alice",
            [
                {"name": "Nova Lights", "playcount": 300, "mbid": mbid("nova")},
                {"name": "Followed One", "playcount": 200, "mbid": mbid("followed")},
                {"name": "The Quiet Harbour", "playcount": 90, "mbid": mbid("harbour")},
                {"name": "Air", "playcount": 40},  # no MusicBrainz id
                {"name": "Nobody We Know", "playcount": 12, "mbid": mbid("nobody")},  # unknown to MusicBrainz
                {"name": "Barely Played", "playcount": 2},
            ],
            period="3month",
        )
        emu.clear_log()
        importer = make_importer(w, history=m.history)
        preview = await importer.preview_history(GUILD, "lastfm", "alice", period="3month", min_plays=10)

        assert spotify_requests(w) == 0  # the preview asks Spotify nothing
        assert [r.path.rsplit("/", 1)[1] for r in m.mb.requests_to("/ws/2/artist/")] == [
            mbid("nova"),
            mbid("harbour"),
            mbid("nobody"),
        ]  # a followed name is not looked up
        assert [(i.artist_id, i.name) for i in preview.to_follow] == [
            (nova, "Nova Lights"),
            (None, "The Quiet Harbour"),
            (None, "Air"),
            (None, "Nobody We Know"),
        ]
        info = preview.history
        assert info is not None
        assert (info.listed, info.mapped, info.no_link, info.no_mbid, info.not_mapped) == (5, 1, 2, 1, 0)
        assert (info.musicbrainz, info.musicbrainz_requests) == ("ok", 3)
        assert (preview.already_followed, preview.cost.searches, preview.cost.lookups) == (1, 3, 0)
        text = preview_text(preview)
        assert (
            "**alice**'s top artists on Last.fm (`3month`, at least 10 plays): 5 artists (1 already followed here)."
            in text
        )
        assert (
            "Mapped through MusicBrainz (its Spotify link): 1; by name: 3 (1 without a MusicBrainz id, "
            "2 with no Spotify link on MusicBrainz)." in text
        )
        assert (
            "Cost in Spotify requests: mapped via MusicBrainz: 0 to read 1 artist; names: 3 to search 3 names, one each"
            in text
        )
        assert await follows(db) == {followed}  # nothing changed yet

        result = await importer.confirm(preview)
        assert searches(w.emu) == ["The Quiet Harbour", "Air", "Nobody We Know"]  # never the mapped one
        assert lookups(w.emu) == []  # the mapped artist's id and name were known: no GET /artists/{id}
        assert {a.id for a in result.followed} == {nova, harbour, air}
        assert result.not_found == ("Nobody We Know",)
        assert await follows(db) == {followed, nova, harbour, air}
        async with db.sessions() as s:  # silent baselines: nothing already out is new
            assert (await s.scalar(select(ArtistRelease).where(ArtistRelease.baseline.is_(False)))) is None
        assert "Now following **3** artists. 3 ready" in result_text(result)


async def test_a_mapped_artist_already_followed_counts_as_followed_and_the_cap_bounds_the_lookups(db, clock):
    async with services_world(db, clock) as w, music(w) as m:
        emu = w.emu
        ids = [emu.add_artist(f"Artist {i}") for i in range(5)]
        for i, artist in enumerate(ids):
            m.mb.add_artist(mbid(f"a{i}"), f"Artist {i}", spotify_id=artist)
        await store_artist(w, ids[0], "Renamed On Spotify", follow=True)  # followed under another name
        m.lastfm.add_user("bob")
        m.lastfm.set_top_artists(
            "bob", [{"name": f"Artist {i}", "playcount": 100 - i, "mbid": mbid(f"a{i}")} for i in range(5)]
        )
        preview = await make_importer(w, history=m.history, cap=2).preview_history(GUILD, "lastfm", "bob")
        assert [i.artist_id for i in preview.to_follow] == [ids[1], ids[2]]
        assert preview.already_followed == 1 and preview.left_out == 2
        assert preview.history is not None and (preview.history.mapped, preview.history.not_mapped) == (3, 2)
        assert len(m.mb.requests_to("/ws/2/artist/")) == 3  # the followed one and the two that fill the cap
        assert spotify_requests(w) == 0


async def test_listenbrainz_with_range_and_minimum(db, clock):
    async with services_world(db, clock) as w, music(w) as m:
        nova = w.emu.add_artist("Nova Lights")
        m.mb.add_artist(mbid("nova"), "Nova Lights", spotify_id=nova)
        m.lb.add_user("carol")
        m.lb.set_artist_stats(
            "carol",
            [
                {"artist_mbid": mbid("nova"), "artist_name": "Nova Lights", "listen_count": 80},
                {"artist_mbid": None, "artist_name": "Air", "listen_count": 20},
                {"artist_mbid": None, "artist_name": "Rarely", "listen_count": 4},
            ],
            stats_range="half_yearly",
            from_ts=0,
            to_ts=1,
            last_updated=1,
        )
        preview = await make_importer(w, history=m.history).preview_history(
            GUILD, "listenbrainz", "carol", period="half_yearly", min_plays=5
        )
        assert [(i.artist_id, i.name) for i in preview.to_follow] == [(nova, "Nova Lights"), (None, "Air")]
        assert m.lb.requests_to("/1/stats/user/carol/artists")[0].query["range"] == ["half_yearly"]
        assert "**carol**'s top artists on ListenBrainz (`half_yearly`, at least 5 plays): 2 artists." in preview_text(
            preview
        )


async def test_musicbrainz_failing_leaves_the_rest_to_names(db, clock):
    async with services_world(db, clock) as w, music(w) as m:
        m.mb.add_artist(mbid("a"), "A", spotify_id=w.emu.add_artist("A"))
        m.lastfm.add_user("dave")
        m.lastfm.set_top_artists(
            "dave", [{"name": n, "playcount": 10, "mbid": mbid(n.lower())} for n in ("A", "B", "C")]
        )
        m.mb.fail_next(10)
        preview = await make_importer(w, history=m.history).preview_history(GUILD, "lastfm", "dave")
        assert [i.artist_id for i in preview.to_follow] == [None, None, None]
        assert preview.history is not None and (preview.history.musicbrainz, preview.history.not_mapped) == (
            "failed",
            3,
        )
        assert len(m.mb.request_log) == 2  # one request and its one retry: then no more asked
        assert "MusicBrainz stopped answering, so the rest are found by name." in preview_text(preview)


@pytest.mark.parametrize(
    ("service", "user", "setup", "message"),
    [
        ("lastfm", "nobody", None, "Last.fm knows no user \\*\\*nobody\\*\\*"),
        ("listenbrainz", "nobody", None, "ListenBrainz knows no user"),
        ("listenbrainz", "fresh", "no-stats", "ListenBrainz has no statistics for \\*\\*fresh\\*\\* yet"),
        ("lastfm", "erin", "bad-key", "Last.fm refused this bot's API key"),
        ("lastfm", "erin", "suspended", "Last.fm refused this bot's API key"),
        ("lastfm", "erin", "no-key", "Importing from Last.fm is not set up"),
        ("listenbrainz", "erin", "no-contact", "Importing from ListenBrainz is not set up"),
        ("lastfm", "erin", "few-plays", "has no artist with at least 50 plays"),
        ("lastfm", "two words", None, "Give a user name"),
    ],
)
async def test_refusals_say_why_and_change_nothing(db, clock, service, user, setup, message):
    async with services_world(db, clock) as w:
        key = {"bad-key": "wrong-key", "no-key": None}.get(setup or "", KEY)
        async with music(w, key=key, contact=setup != "no-contact") as m:
            m.lastfm.add_user("erin")
            m.lastfm.set_top_artists("erin", [{"name": "Air", "playcount": 3}])
            m.lb.add_user("fresh")
            if setup == "suspended":
                m.lastfm.suspend_api_key(KEY)
            importer = make_importer(w, history=m.history)
            with pytest.raises(UserError, match=message) as caught:
                await importer.preview_history(GUILD, service, user, min_plays=50 if setup == "few-plays" else 1)
            assert "Nothing was changed" in str(caught.value) or (setup is None and user == "two words")
            assert KEY not in str(caught.value)
            assert await follows(db) == set() and spotify_requests(w) == 0


async def test_a_period_of_the_other_service_is_refused(db, clock):
    async with services_world(db, clock) as w, music(w) as m:
        with pytest.raises(UserError, match=r"Last\.fm periods are"):
            await make_importer(w, history=m.history).preview_history(GUILD, "lastfm", "erin", period="all_time")
        assert m.lastfm.request_log == []
