"""``bot.musicdata.signal``: the daily job against the MusicBrainz and ListenBrainz emulators, on the run's
backend, with a simulated clock — the artist mapping and its back-off, what is kept of the fresh releases,
date changes and disappearance, the fetch made once a day across two processes, matching to the Spotify
releases in the store, misses — and the proof that tracking's Spotify requests are the same with it on."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from bot.coordination.coordinator import Coordinator
from bot.musicdata import (
    ListenBrainzClient,
    MusicBrainzClient,
    MusicDataError,
    MusicSignal,
    SharedRateLimit,
    user_agent,
)
from bot.musicdata.signal import DailyReport, mapping_retry_after
from bot.settings import (
    DatabaseSettings,
    MusicBrainzSettings,
    Settings,
    SpotifySettings,
    TrackingSettings,
)
from bot.wiring import build_core
from fakes.listenbrainz_emulator import ListenBrainzEmulator
from fakes.musicbrainz_emulator import MusicBrainzEmulator
from fakes.spotify_emulator import SpotifyEmulator
from storage import musicdata
from storage.db import Database, open_database
from storage.models import ArtistRelease, MusicBrainzReleaseGroup, Release
from tests import backend
from tests.bot.helpers import add_guild, follow
from tests.bot.musicdata.conftest import SimulatedSleep
from tests.conftest import FakeClock

CONTACT = "ops@example.org"


def mbid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def make_signal(
    db: Database,
    owner: str,
    mb: MusicBrainzEmulator,
    lb: ListenBrainzEmulator,
    http: aiohttp.ClientSession,
    clock: FakeClock,
    sleep: SimulatedSleep,
) -> MusicSignal:
    agent = user_agent(CONTACT)
    return MusicSignal(
        db,
        Coordinator(db, clock=clock, lease_seconds=600, heartbeat_seconds=5, owner=owner),
        MusicBrainzClient(
            base_url=mb.base_url,
            user_agent=agent,
            http=http,
            rate_limit=SharedRateLimit(db, "musicbrainz", clock=clock, sleep=sleep),
        ),
        ListenBrainzClient(base_url=lb.base_url, user_agent=agent, http=http, clock=clock, sleep=sleep),
        clock=clock,
        lookahead_days=30,
    )


@pytest.fixture
def signal(db, mb, lb, http, clock, sleep) -> MusicSignal:
    return make_signal(db, "p0", mb, lb, http, clock, sleep)


def day(clock: FakeClock, offset: int) -> str:
    return (clock().date() + dt.timedelta(days=offset)).isoformat()


def announce(lb: ListenBrainzEmulator, name: str, date: str, artists: list[str], **fields) -> str:
    """A release group ListenBrainz lists, named ``name`` (its MBID: ``mbid(name)``)."""
    return lb.add_release_group(
        mbid(name),
        release_mbid=mbid(name + "/release"),
        release_name=fields.pop("title", name),
        artist_credit_name=" & ".join(artists),
        artist_mbids=[mbid(a) for a in artists],
        first_release_date=date,
        **fields,
    )


async def stored(db: Database, name: str) -> MusicBrainzReleaseGroup | None:
    async with db.transaction() as session:
        return await musicdata.release_group(session, mbid(name))


@dataclass
class Catalogue:
    """Followed: spA (on MusicBrainz as A), spB (not on MusicBrainz), spC (on MusicBrainz as C, nothing
    listed). Not followed: spX (on MusicBrainz as X)."""

    followed: tuple[str, ...] = ("spA", "spB", "spC")


async def seed(db: Database, mb: MusicBrainzEmulator, clock: FakeClock) -> Catalogue:
    await add_guild(db, 1, now=clock())
    for artist in ("spA", "spB", "spC"):
        await follow(db, 1, artist, now=clock())
    for name, spotify in (("A", "spA"), ("C", "spC"), ("X", "spX")):
        mb.add_artist(mbid(name), name, spotify_id=spotify)
    return Catalogue()


# --- what is kept ----------------------------------------------------------------------------


async def test_the_release_groups_of_followed_mapped_artists_are_kept_with_their_fields(signal, db, mb, lb, clock):
    await seed(db, mb, clock)
    announce(lb, "album", day(clock, 7), ["A"], primary_type="Album", caa_id=42, caa_release_mbid=mbid("cover"))
    announce(lb, "live single", day(clock, -2), ["A"], primary_type="Single", secondary_types=["Live"])
    announce(lb, "collab", day(clock, 10), ["A", "X"], primary_type="EP")
    announce(lb, "not followed", day(clock, 3), ["X"])
    announce(lb, "unknown artist", day(clock, 3), ["nobody"])
    report = await signal.run_daily()
    assert report is not None
    assert (report.artists_tried, report.artists_mapped) == (3, 2)
    assert (report.listed, report.kept, report.new) == (5, 3, 3)
    assert report.listenbrainz_requests == 1 and report.errors == []
    assert report.musicbrainz_requests == 1 + 3  # one lookup for three artists, one barcode browse per group
    album = await stored(db, "album")
    assert album is not None
    assert (album.title, album.primary_type, album.secondary_types) == ("album", "Album", [])
    assert album.release_date == clock().date() + dt.timedelta(days=7)
    assert (album.release_mbid, album.caa_id, album.caa_release_mbid) == (mbid("album/release"), 42, mbid("cover"))
    assert album.artist_mbids == [mbid("A")] and album.first_seen_at == album.last_seen_at
    live = await stored(db, "live single")
    assert live is not None and (live.primary_type, live.secondary_types) == ("Single", ["Live"])
    assert await stored(db, "not followed") is None and await stored(db, "unknown artist") is None
    async with db.transaction() as session:
        pending = {
            g.mbid: g.spotify_ids
            for g in await musicdata.unmatched_release_groups(session, since=clock().date() - dt.timedelta(days=90))
        }
    assert pending[mbid("collab")] == ("spA",)  # X is not followed


async def test_date_changes_and_disappearance_are_kept_day_after_day(signal, db, mb, lb, clock):
    await seed(db, mb, clock)
    announce(lb, "moving", day(clock, 7), ["A"])
    announce(lb, "vanishing", day(clock, 3), ["A"])
    first_seen = clock()
    await signal.run_daily()
    clock.advance(days=1)
    lb.update_release_group(mbid("moving"), first_release_date=day(clock, 20))
    report = await signal.run_daily()
    assert report is not None and (report.date_changed, report.gone, report.new) == (1, 0, 0)
    clock.advance(days=1)
    lb.remove_release_group(mbid("vanishing"))
    report = await signal.run_daily()
    assert report is not None and (report.date_changed, report.gone) == (0, 1)
    moving, vanishing = await stored(db, "moving"), await stored(db, "vanishing")
    assert moving is not None and vanishing is not None
    assert moving.first_seen_at == first_seen and moving.last_seen_at >= first_seen + dt.timedelta(days=2)
    assert [(c["from"], c["to"]) for c in moving.date_changes] == [
        (
            (first_seen.date() + dt.timedelta(days=7)).isoformat(),
            (first_seen.date() + dt.timedelta(days=21)).isoformat(),
        )
    ]
    assert vanishing.gone_at is not None and vanishing.gone_at.date() == first_seen.date() + dt.timedelta(days=2)


# --- mapping ---------------------------------------------------------------------------------


async def test_unmapped_artists_are_tried_weekly_four_times_then_monthly(signal, db, mb, clock):
    await seed(db, mb, clock)
    start = clock().date()
    looked_up: dict[str, list[int]] = {"spA": [], "spB": [], "spC": []}
    mb.unlink_url("https://open.spotify.com/artist/spC", artist=mbid("C"))  # C is linked on day 10
    for offset in range(100):
        if offset == 10:
            mb.link_url("https://open.spotify.com/artist/spC", artist=mbid("C"))
        mb.clear_log()
        await signal.map_artists(DailyReport(clock().date()))
        for request in mb.request_log:
            for resource in request.query.get("resource", []):
                looked_up[resource.rsplit("/", 1)[1]].append((clock().date() - start).days)
        clock.advance(days=1)
    assert looked_up["spB"] == [0, 7, 14, 21, 28, 58, 88]  # weekly 4 times after the first, then monthly
    assert looked_up["spC"] == [0, 7, 14, 44, 74]  # found on day 14, then checked monthly like A
    assert looked_up["spA"] == [0, 30, 60, 90]
    async with db.transaction() as session:
        states = await musicdata.mapping_states(session, ["spA", "spB", "spC"])
    assert states["spB"].mbids == () and states["spB"].unmapped_attempts == 7
    assert states["spC"].mbids == (mbid("C"),) and states["spA"].mbids == (mbid("A"),)


@pytest.mark.parametrize("attempts, days", [(0, 30), (1, 7), (2, 7), (3, 7), (4, 7), (5, 30), (12, 30)])
def test_the_mapping_back_off(attempts, days):
    assert mapping_retry_after(attempts) == dt.timedelta(days=days)


async def test_a_musicbrainz_outage_leaves_the_artists_due_and_the_fetch_goes_on(signal, db, mb, lb, clock):
    await seed(db, mb, clock)
    announce(lb, "album", day(clock, 7), ["A"])
    mb.fail_next(100)
    report = await signal.run_daily()
    assert report is not None and report.artists_tried == 0 and report.kept == 0  # nobody mapped yet
    assert report.errors and report.errors[0].startswith("mapping: MusicBrainz: unavailable")
    async with db.transaction() as session:
        assert await musicdata.artists_to_map(session, now=clock(), limit=10) == ["spA", "spB", "spC"]
        assert await musicdata.daily_fetch_day(session) == clock().date().isoformat()  # the fetch itself was made


# --- once a day across processes -------------------------------------------------------------


@pytest.fixture
async def two_processes(db, mb, lb, http, clock, sleep) -> AsyncIterator[list[MusicSignal]]:
    url = db.engine.url.render_as_string(hide_password=False)
    other = await open_database(url, migrate=False)
    try:
        yield [make_signal(db, "p0", mb, lb, http, clock, sleep), make_signal(other, "p1", mb, lb, http, clock, sleep)]
    finally:
        await other.close()


async def test_the_daily_fetch_happens_once_a_day_across_two_processes(two_processes, db, mb, lb, clock):
    await seed(db, mb, clock)
    announce(lb, "album", day(clock, 7), ["A"])
    reports = await asyncio.gather(*(s.run_daily() for s in two_processes))
    assert sum(r is not None for r in reports) == 1
    assert [await s.run_daily() for s in two_processes] == [None, None]  # later the same day: done
    assert len(lb.requests_to("fresh-releases")) == 1
    clock.advance(days=1)
    reports = await asyncio.gather(*(s.run_daily() for s in reversed(two_processes)))
    assert sum(r is not None for r in reports) == 1
    assert len(lb.requests_to("fresh-releases")) == 2
    assert len(mb.requests_to("/ws/2/url")) == 1  # the mapping is not repeated before it is due


async def test_a_process_holding_the_lease_keeps_the_other_out(two_processes, db, mb, lb, clock):
    await seed(db, mb, clock)
    first, second = two_processes
    async with first.coordinator.lease("musicdata:daily"):
        assert await second.run_daily() is None
    assert lb.requests_to("fresh-releases") == []
    assert await second.run_daily() is not None


async def test_a_failed_fetch_gives_the_day_back(signal, db, mb, lb, clock):
    await seed(db, mb, clock)
    working = signal.listenbrainz.base_url
    signal.listenbrainz.base_url = "http://127.0.0.1:9"  # discard port: nothing answers
    with pytest.raises(MusicDataError):
        await signal.run_daily()
    async with db.transaction() as session:
        assert await musicdata.daily_fetch_day(session) is None
    signal.listenbrainz.base_url = working
    assert await signal.run_daily() is not None  # the same day, fetched now


async def test_a_job_cut_off_after_the_fetch_leaves_the_day_to_the_next_look(signal, db, mb, lb, clock, monkeypatch):
    """A process killed (here: a step raising) after the fetch but before the end records no day: the
    next look — this process or another, the same day — does the day's work again."""
    await seed(db, mb, clock)
    announce(lb, "album", day(clock, 7), ["A"])

    async def killed(today: dt.date) -> list[str]:
        raise asyncio.CancelledError

    with monkeypatch.context() as m:
        m.setattr(signal, "record_misses", killed)
        with pytest.raises(asyncio.CancelledError):
            await signal.run_daily()
    assert len(lb.requests_to("fresh-releases")) == 1
    async with db.transaction() as session:
        assert await musicdata.daily_fetch_day(session) is None
    report = await signal.run_daily()
    assert report is not None and report.kept == 1
    assert len(lb.requests_to("fresh-releases")) == 2
    assert await signal.run_daily() is None  # done for the day now


# --- matching ----------------------------------------------------------------------------------


async def add_release(
    db: Database,
    release_id: str,
    artist_id: str,
    name: str,
    date: str,
    *,
    upc: str | None = None,
    first_seen: dt.datetime,
) -> None:
    async with db.sessions() as session:
        session.add(
            Release(
                id=release_id,
                name=name,
                album_type="album",
                artists=[{"id": artist_id, "name": artist_id}],
                release_date=date,
                release_date_precision="day",
                first_seen_at=first_seen,
                labels=[],
                upc=upc,
            )
        )
        await session.flush()
        session.add(
            ArtistRelease(
                artist_id=artist_id,
                release_id=release_id,
                album_group="album",
                first_seen_at=first_seen,
                baseline=False,
            )
        )
        await session.commit()


async def test_release_groups_are_matched_by_barcode_else_by_title_and_date(signal, db, mb, lb, clock):
    await seed(db, mb, clock)
    today = clock().date()
    # On MusicBrainz with a barcode; Spotify titles it differently and dates it 10 days later.
    announce(lb, "Barcoded", day(clock, -5), ["A"])
    mb.add_release_group(mbid("Barcoded"), "Barcoded", artist_mbids=[mbid("A")])
    mb.add_release(mbid("Barcoded/release"), mbid("Barcoded"), "Barcoded", barcode="602445791234")
    await add_release(
        db, "sp_upc", "spA", "Barcoded (Expanded)", day(clock, 5), upc="00602445791234", first_seen=clock()
    )
    announce(lb, "Night Drive", day(clock, -2), ["A"])  # Spotify: a day later, typographic quotes
    await add_release(db, "sp_title", "spA", "Night Drive", day(clock, -1), first_seen=clock())
    announce(lb, "Same Title Elsewhere", day(clock, -3), ["A"])  # only another followed artist has it
    await add_release(db, "sp_other", "spC", "Same Title Elsewhere", day(clock, -3), first_seen=clock())
    announce(lb, "Four Days", day(clock, -8), ["A"])
    await add_release(db, "sp_late", "spA", "Four Days", day(clock, -4), first_seen=clock())
    announce(lb, "Original", day(clock, -6), ["A"])
    await add_release(db, "sp_remix", "spA", "Original (Someone Remix)", day(clock, -6), first_seen=clock())
    report = await signal.run_daily()
    assert report is not None and report.matched == 2
    matched = {}
    for name in ("Barcoded", "Night Drive", "Same Title Elsewhere", "Four Days", "Original"):
        group = await stored(db, name)
        assert group is not None
        matched[name] = (group.spotify_release_id, group.match_method)
    assert matched == {
        "Barcoded": ("sp_upc", "upc"),
        "Night Drive": ("sp_title", "title"),
        "Same Title Elsewhere": (None, None),  # a different artist
        "Four Days": (None, None),  # four days off
        "Original": (None, None),  # a remix title
    }
    barcoded = await stored(db, "Barcoded")
    assert barcoded is not None and barcoded.barcodes == ["602445791234"]
    async with db.transaction() as session:
        counts = await musicdata.signal_counts(session, today=today)
    assert (counts.matched, counts.matched_by_upc, counts.matched_by_title) == (2, 1, 1)
    assert counts.late == 2  # both first seen on Spotify after their dates (today)


async def test_a_spotify_release_listed_later_is_matched_on_a_later_day_and_a_long_absence_is_a_miss(
    signal, db, mb, lb, clock
):
    await seed(db, mb, clock)
    announce(lb, "Coming", day(clock, 2), ["A"])
    announce(lb, "Never", day(clock, 1), ["A"])
    await signal.run_daily()
    clock.advance(days=3)
    await add_release(db, "sp_coming", "spA", "Coming", day(clock, -1), first_seen=clock())
    report = await signal.run_daily()
    assert report is not None and (report.matched, report.missed) == (1, 0)
    clock.advance(days=13)  # "Never" is 15 days past its date
    report = await signal.run_daily()
    assert report is not None and (report.matched, report.missed) == (0, 1)
    never = await stored(db, "Never")
    assert never is not None and never.missed_at == clock() and never.spotify_release_id is None


async def test_a_spotify_release_goes_to_one_release_group_only(signal, db, mb, lb, clock):
    await seed(db, mb, clock)
    announce(lb, "Twin", day(clock, -1), ["A"], primary_type="Single")
    announce(lb, "Twin album", day(clock, -1), ["A"], title="Twin", primary_type="Album")
    await add_release(db, "sp_twin", "spA", "Twin", day(clock, -1), first_seen=clock())
    report = await signal.run_daily()
    assert report is not None and report.matched == 1
    album, single = await stored(db, "Twin album"), await stored(db, "Twin")
    assert album is not None and single is not None
    assert (album.spotify_release_id, single.spotify_release_id) == ("sp_twin", None)  # the compatible type


# --- the signal never changes tracking ---------------------------------------------------------


async def spotify_requests_of_a_journey(tmp_path, name: str, *, enabled: bool) -> list[list[tuple]]:
    """Two weekly checks of four followed artists (a new album on Spotify before the second), with the signal
    off or on (its daily job an hour before each check); returns each check's Spotify requests (token
    requests aside). Everything is rebuilt per journey from the same seeds and the same times, so the two
    journeys differ only in ``enabled``."""
    clock = FakeClock()
    start = clock()
    sleep = SimulatedSleep(clock)
    async with (
        SpotifyEmulator(seed="journey") as emu,
        MusicBrainzEmulator(clock=clock) as mb,
        ListenBrainzEmulator(clock=clock) as lb,
    ):
        artists = [emu.add_artist(f"Artist {i}") for i in range(4)]
        for artist in artists:
            emu.add_album([artist], "Old", release_date="2020-01-01")
        mb.add_artist(mbid("A0"), "Artist 0", spotify_id=artists[0])
        mb.add_artist(mbid("A1"), "Artist 1", spotify_id=artists[1])
        out_on = (start + dt.timedelta(days=7)).date().isoformat()
        lb.add_release_group(
            mbid("announced"),
            release_mbid=mbid("announced/release"),
            release_name="Announced",
            artist_credit_name="Artist 0",
            artist_mbids=[mbid("A0")],
            first_release_date=out_on,
            primary_type="Album",
        )
        mb.add_release_group(mbid("announced"), "Announced", artist_mbids=[mbid("A0")])
        mb.add_release(mbid("announced/release"), mbid("announced"), "Announced", barcode="0123456789012")
        settings = Settings(
            spotify=SpotifySettings(
                client_id=emu.client_id,
                client_secret=emu.client_secret,
                api_base_url=emu.api_base_url,
                accounts_base_url=emu.accounts_base_url,
                rate_limit_per_30s=0,
            ),
            tracking=TrackingSettings(recheck_share=0.25),
            database=DatabaseSettings(url=backend.database_url(tmp_path, name)),
            musicbrainz=MusicBrainzSettings(
                enabled=enabled, contact=CONTACT, api_base_url=mb.base_url, listenbrainz_api_base_url=lb.base_url
            ),
        )
        requests = []
        async with await build_core(settings, clock=clock, sleep=sleep, owner=name) as core:
            assert (core.musicdata is not None) == enabled
            await add_guild(core.db, 1, now=clock())
            for artist in artists:
                await follow(core.db, 1, artist, now=clock())
            for week in range(3):
                check_at = start + dt.timedelta(days=7 * week, hours=1)
                if core.musicdata is not None:
                    before = len(emu.request_log)
                    assert await core.musicdata.run_daily() is not None
                    assert len(emu.request_log) == before  # the signal asks Spotify nothing
                clock.now = check_at
                emu.clear_log()
                summary = await core.runner.run("check", artist_ids=artists)
                assert summary.artists_checked == 4  # every artist is probed, announced or not
                requests.append([(r.method, r.path, sorted(r.query.items())) for r in emu.request_log])
                clock.now = start + dt.timedelta(days=7 * (week + 1))
                if week == 0:
                    emu.add_album([artists[0]], "Announced", release_date=out_on, upc="123456789012")
            if core.musicdata is not None:
                async with core.db.transaction() as session:
                    group = await musicdata.release_group(session, mbid("announced"))
                assert group is not None and group.match_method == "upc"  # by the UPC the labeler stored
        return requests


async def test_tracking_makes_the_same_spotify_requests_with_the_signal_on(tmp_path):
    off = await spotify_requests_of_a_journey(tmp_path, "off", enabled=False)
    on = await spotify_requests_of_a_journey(tmp_path, "on", enabled=True)
    assert on == off
    assert all(week for week in off)
    assert any("/albums/" in path and path.count("/") == 3 for _, path, _ in off[1])  # the new album, labelled
