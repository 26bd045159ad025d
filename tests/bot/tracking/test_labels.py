"""Releases that are not really new: each label rule, its request cost, and failure isolation.

Against the Spotify emulator through the real client; the store is seeded directly
(baseline or new links), as the tracker would have left it.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from bot.delivery import Deliverer
from bot.spotify.client import SpotifyClient
from bot.spotify.models import Album
from bot.tracking.labels import (
    Labeler,
    _Track,
    count_matches,
    edition_base,
    is_back_catalogue,
    normalise_title,
    remix_base,
)
from fakes.spotify_emulator import SpotifyEmulator
from storage import catalog
from storage.models import Release, ReleaseTrack, SpotifyState
from tests import backend
from tests.bot.helpers import FakeSender, add_guild, follow

T0 = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


@pytest.fixture
async def emu():
    async with SpotifyEmulator() as emulator:
        yield emulator


@pytest.fixture
async def client(emu):
    c = SpotifyClient(
        client_id=emu.client_id,
        client_secret=emu.client_secret,
        api_base_url=emu.api_base_url,
        accounts_base_url=emu.accounts_base_url,
        max_retries=1,
    )
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
def labeler(db, client, clock) -> Labeler:
    return Labeler(db, client, clock=clock)


def album_requests(emu) -> list[str]:
    """Ids of the ``GET /albums/{id}`` requests the emulator answered."""
    return [r.path.rsplit("/", 1)[-1] for r in emu.request_log if r.path.startswith("/v1/albums/")]


async def store(
    db, emu, album_id: str, *, at: dt.datetime, baseline: bool = False, group: str | None = None, artist_ids=None
) -> str:
    """Store emulator album ``album_id`` as the tracker would: release + a link per artist."""
    alb = Album.from_api(emu._simplified_album(emu._albums[album_id]))
    async with db.sessions() as s:
        await catalog.upsert_release(s, alb, now=at)
        for artist in artist_ids or [a.id for a in alb.artists]:
            await catalog.get_or_create_artist(s, artist, "A")
            await catalog.link_release(
                s, artist, alb.id, album_group=group or alb.album_type, now=at, baseline=baseline
            )
        await s.commit()
    return album_id


async def labels_of(db, release_id: str) -> list[dict]:
    async with db.sessions() as s:
        return list((await s.get(Release, release_id)).labels or [])


async def tracks_of(db, release_id: str) -> list[ReleaseTrack]:
    async with db.sessions() as s:
        return list(
            (
                await s.scalars(
                    select(ReleaseTrack).where(ReleaseTrack.release_id == release_id).order_by(ReleaseTrack.position)
                )
            ).all()
        )


def tracks(*names_and_durations):
    return [{"name": n, "duration_ms": d} for n, d in names_and_durations]


# --- titles ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,base",
    [
        ("Now Or Never (TropKillaz Remix)", "Now Or Never"),
        ("Damn I Love Miami (Remixes)", "Damn I Love Miami"),
        ("2 The Moon (The Remixes)", "2 The Moon"),
        ("Tonight (D.I.Y.A) [Pitbull Remix]", "Tonight (D.I.Y.A)"),
        ("Song [Remix]", "Song"),
        ("Song - Remix", "Song"),
        ("Song - Kaytranada Remix", "Song"),
        ("Trackhouse Remixed", "Trackhouse"),
        ("Song (Remix) [feat. Y]", "Song"),
        ("Song (Remix) - Clean", "Song"),
        ("Remixes", None),
        ("Remix", None),
        ("Song", None),
        ("Song (Deluxe)", None),
    ],
)
def test_remix_titles(name, base):
    assert remix_base(name) == base


@pytest.mark.parametrize(
    "name,expected",
    [
        ("Armando (Deluxe)", ("Armando", "deluxe")),
        ("Planet Pit (Deluxe Version)", ("Planet Pit", "deluxe")),
        ("X (Deluxe Edition)", ("X", "deluxe")),
        ("X - Deluxe Version", ("X", "deluxe")),
        ("X (10th Anniversary Edition)", ("X", "anniversary")),
        ("X (Expanded Edition)", ("X", "expanded")),
        ("X (Remastered 2024)", ("X", "remaster")),
        ("X - 2011 Remaster", ("X", "remaster")),
        ("Trackhouse (Daytona 500 Edition)", ("Trackhouse", "special")),
        ("X (Clean Version)", None),
        ("X (Clean Edition)", None),
        ("X (Remix Edition)", None),
        ("Deluxe", None),
    ],
)
def test_edition_titles(name, expected):
    assert edition_base(name) == expected


def test_normalised_titles():
    assert normalise_title("Now or Never (feat. Bon Jovi) - Clean") == "now or never"
    assert normalise_title("I’ll Do It (with X)") == normalise_title("I'll Do It")
    assert normalise_title("We Will Rock You feat. Pitbull x RedOne") == "we will rock you"
    assert normalise_title("Song (Remix)") != normalise_title("Song")


def test_recorded_pitbull_titles(shared_spotify):
    data = json.loads((shared_spotify / "fixtures" / "artist_albums.json").read_text())
    names = [item["name"] for item in data["items"]]
    remixes = {n: remix_base(n) for n in names if remix_base(n)}
    assert remixes == {
        "Damn I Love Miami (Remixes)": "Damn I Love Miami",
        "Now Or Never (TropKillaz Remix)": "Now Or Never",
        "Now or Never (Muzik Junkies & AROCK Remix)": "Now or Never",
        "Now or Never (F.A.S.T x & DJ Triple XL Remix)": "Now or Never",
        "OMG (Remix)": "OMG",
        "2 The Moon (The Remixes)": "2 The Moon",
        "Tonight (D.I.Y.A) [Pitbull Remix]": "Tonight (D.I.Y.A)",
        "Chi Chi Bon Bon (Remix)": "Chi Chi Bon Bon",
    }
    editions = {n: edition_base(n) for n in names if edition_base(n)}
    assert editions == {
        "Trackhouse (Daytona 500 Edition)": ("Trackhouse", "special"),
        "Global Warming: Meltdown (Deluxe Version)": ("Global Warming: Meltdown", "deluxe"),
        "Planet Pit (Deluxe Version)": ("Planet Pit", "deluxe"),
        "Armando (Deluxe)": ("Armando", "deluxe"),
    }
    # Clean twins are not editions nor remixes; "I Am Armando - Armando Reloaded" is neither.
    assert not remix_base("The Boatlift - Clean") and not edition_base("The Boatlift - Clean")
    assert not edition_base("I Am Armando - Armando Reloaded")


async def test_recorded_pitbull_listing_labels_without_requests(db, emu, labeler, shared_spotify):
    """The real listing: its remixes, deluxe re-release and clean twin, first seen as new, cost no request."""
    data = json.loads((shared_spotify / "fixtures" / "artist_albums.json").read_text())
    pitbull = emu.load_recorded_catalogue(data)
    by_name: dict[str, str] = {}
    for item in data["items"]:
        by_name.setdefault(item["name"], item["id"])
    new_names = [
        "Now Or Never (TropKillaz Remix)",
        "Damn I Love Miami (Remixes)",
        "Yeehaw (Clean)",
        "Global Warming: Meltdown (Deluxe Version)",
        "Trackhouse (Daytona 500 Edition)",
    ]
    new_ids = [by_name[n] for n in new_names]
    for item in data["items"]:
        if item["id"] not in new_ids:
            await store(
                db,
                emu,
                item["id"],
                at=T0 - dt.timedelta(days=400),
                baseline=True,
                group=item["album_group"],
                artist_ids=[pitbull],
            )
    released = {item["id"]: item["release_date"] for item in data["items"]}
    for name, rid in zip(new_names, new_ids, strict=True):
        # The remixes and the clean twin are first seen on release; the two old editions only now.
        at = T0 if "Edition" in name or "Version" in name else dt.datetime.fromisoformat(released[rid] + "T18:00+00:00")
        await store(db, emu, rid, at=at, artist_ids=[pitbull])
    emu.clear_log()

    result = await labeler.label(new_ids, run_id=1)

    assert album_requests(emu) == [] and result.album_requests == 0 and result.requests == 0
    now_or_never = await labels_of(db, by_name["Now Or Never (TropKillaz Remix)"])
    assert [(x["kind"], x["name"]) for x in now_or_never] == [("remix_of", "Now Or Never")]
    # Of the two "Now Or Never" singles, the first released is the original.
    assert now_or_never[0]["release_id"] == "".join(
        i["id"] for i in data["items"] if i["name"] == "Now Or Never" and i["release_date"] == "2024-11-14"
    )
    assert [(x["kind"], x["name"]) for x in await labels_of(db, by_name["Damn I Love Miami (Remixes)"])] == [
        ("remix_of", "Damn I Love Miami")
    ]
    assert await labels_of(db, by_name["Yeehaw (Clean)"]) == []  # folded into "Yeehaw" at delivery
    meltdown = await labels_of(db, by_name["Global Warming: Meltdown (Deluxe Version)"])
    assert [x["kind"] for x in meltdown] == ["back_catalogue", "edition_of"]  # 2012, first seen 2026
    assert meltdown[1]["name"] == "Global Warming" and meltdown[1]["edition"] == "deluxe"
    assert meltdown[1]["bonus_tracks"] is None  # 17 tracks vs the original's 18: no honest count
    daytona = await labels_of(db, by_name["Trackhouse (Daytona 500 Edition)"])
    assert [(x["kind"], x.get("name")) for x in daytona] == [("back_catalogue", None), ("edition_of", "Trackhouse")]
    assert result.labelled == 4


# --- rules with requests ---------------------------------------------------------------------


async def test_album_carrying_singles_one_request(db, emu, labeler, clock):
    a = emu.add_artist("Nova Lights")
    b = emu.add_artist("Guest")
    old = emu.add_album(
        [a], "Old Hit", album_type="single", release_date="2025-01-10", tracks=tracks(("Old Hit", 200_000))
    )
    await store(db, emu, old, at=T0 - dt.timedelta(days=300), baseline=True)  # known from the baseline only
    s1 = emu.add_album(
        [a],
        "Midnight Drive",
        album_type="single",
        release_date="2026-10-01",
        tracks=tracks(("Midnight Drive", 190_000)),
    )
    s2 = emu.add_album(
        [a, b],
        "Glow (feat. Guest)",
        album_type="single",
        release_date="2026-10-20",
        tracks=tracks(("Glow (feat. Guest)", 210_000), ("Glow - Instrumental", 210_000)),
    )
    for sid in (s1, s2):
        await store(db, emu, sid, at=T0 - dt.timedelta(days=20))
    first = await labeler.label([s1, s2])
    assert first.album_requests == 2 and first.labelled == 0  # the singles' tracks, kept for later
    assert [t.name for t in await tracks_of(db, s2)] == ["Glow (feat. Guest)", "Glow - Instrumental"]

    album = emu.add_album(
        [a],
        "Afterglow",
        release_date="2026-11-20",
        tracks=tracks(
            ("Intro", 60_000),
            ("Midnight Drive", 191_500),  # 1.5 s longer: the same recording
            ("Glow", 210_000),
            ("Old Hit", 200_000),
            ("Old Hit", 205_000),  # the second one is a different take
            *[(f"New {i}", 180_000) for i in range(5)],
        ),
    )
    await store(db, emu, album, at=T0)
    emu.clear_log()
    result = await labeler.label([album], run_id=3)
    assert album_requests(emu) == [album] and result.album_requests == 1 and result.requests == 1
    assert await labels_of(db, album) == [{"kind": "carries_singles", "new_tracks": 7, "known_tracks": 3}]
    assert len(await tracks_of(db, album)) == 10
    again = await labeler.label([album])  # labelled again: same label, from the stored tracks, no request
    assert again.requests == 0 and await labels_of(db, album) == [
        {"kind": "carries_singles", "new_tracks": 7, "known_tracks": 3}
    ]
    async with db.sessions() as s:
        row = await s.get(Release, album)
        assert row.tracks_fetched and row.upc


async def test_album_with_no_known_single_tracks_is_not_labelled(db, emu, labeler):
    a = emu.add_artist("A")
    s = emu.add_album(
        [a], "Near Miss", album_type="single", release_date="2026-11-10", tracks=tracks(("Near Miss", 200_000))
    )
    await store(db, emu, s, at=T0 - dt.timedelta(days=9))
    await labeler.label([s])
    album = emu.add_album(
        [a], "Record", release_date="2026-11-20", tracks=tracks(("Near Miss", 205_000), ("Other", 100_000))
    )  # 5 s off
    await store(db, emu, album, at=T0)
    await labeler.label([album])
    assert await labels_of(db, album) == []


async def test_deluxe_edition_counts_bonus_tracks_against_stored_tracks(db, emu, labeler):
    a = emu.add_artist("A")
    base_tracks = [(f"Song {i}", 180_000 + i * 1000) for i in range(10)]
    original = emu.add_album([a], "Skyline", release_date="2026-06-01", tracks=tracks(*base_tracks))
    await store(db, emu, original, at=dt.datetime(2026, 6, 2, tzinfo=dt.UTC))
    await labeler.label([original])
    deluxe = emu.add_album(
        [a],
        "Skyline (Deluxe Edition)",
        release_date="2026-11-20",
        tracks=tracks(*base_tracks, *[(f"Bonus {i}", 150_000) for i in range(4)]),
    )
    await store(db, emu, deluxe, at=T0)
    emu.clear_log()
    result = await labeler.label([deluxe])
    assert album_requests(emu) == [deluxe] and result.album_requests == 1
    assert await labels_of(db, deluxe) == [
        {"kind": "edition_of", "release_id": original, "name": "Skyline", "edition": "deluxe", "bonus_tracks": 4}
    ]


async def test_anniversary_edition_of_a_baseline_album_uses_track_counts(db, emu, labeler):
    a = emu.add_artist("A")
    original = emu.add_album([a], "First Light", release_date="2016-03-01", total_tracks=10)
    await store(db, emu, original, at=T0 - dt.timedelta(days=30), baseline=True)
    other = emu.add_artist("Someone Else")
    lookalike = emu.add_album([other], "First Light", release_date="2016-03-01")
    await store(db, emu, lookalike, at=T0 - dt.timedelta(days=30), baseline=True, artist_ids=[other, a])
    edition = emu.add_album([a], "First Light (10th Anniversary Edition)", release_date="2026-11-20", total_tracks=13)
    await store(db, emu, edition, at=T0)
    result = await labeler.label([edition])
    [label] = await labels_of(db, edition)
    assert label["kind"] == "edition_of" and label["release_id"] == original  # not another artist's "First Light"
    assert label["edition"] == "anniversary" and label["bonus_tracks"] == 3
    assert result.album_requests == 1


async def test_remix_single_needs_no_request(db, emu, labeler):
    a = emu.add_artist("A")
    remixer = emu.add_artist("Remixer")
    original = emu.add_album([a], "Tidal", album_type="single", release_date="2026-09-01")
    await store(db, emu, original, at=T0 - dt.timedelta(days=60), baseline=True)
    remix = emu.add_album([a, remixer], "Tidal (Remixer Remix)", album_type="single", release_date="2026-11-20")
    unknown = emu.add_album([a], "Never Heard (Remix)", album_type="single", release_date="2026-11-20")
    for rid in (remix, unknown):
        await store(db, emu, rid, at=T0, artist_ids=[a])
    emu.clear_log()
    result = await labeler.label([remix, unknown])
    assert result.requests == 0 and album_requests(emu) == []
    assert await labels_of(db, remix) == [{"kind": "remix_of", "release_id": original, "name": "Tidal"}]
    assert await labels_of(db, unknown) == []


@pytest.mark.parametrize(
    "date,precision,first_seen,expected",
    [
        ("2026-08-01", "day", T0, True),  # 111 days
        ("2026-08-25", "day", T0, False),  # 87 days
        ("2026-08", "month", T0, False),  # counted from 31 Aug: 81 days
        ("2026-07", "month", T0, True),
        ("2026", "year", T0, False),
        ("2011", "year", T0, True),
        ("garbage", "day", T0, False),
    ],
)
def test_back_catalogue_is_precision_aware(date, precision, first_seen, expected):
    release = Release(
        id="x",
        name="X",
        album_type="album",
        artists=[],
        release_date=date,
        release_date_precision=precision,
        first_seen_at=first_seen,
    )
    assert is_back_catalogue(release, 90) is expected


async def test_back_catalogue_addition_needs_no_request(db, emu, labeler):
    a = emu.add_artist("A")
    old = emu.add_album([a], "Lost Tapes", release_date="2011", release_date_precision="year")
    await store(db, emu, old, at=T0)
    emu.clear_log()
    result = await labeler.label([old])
    assert result.requests == 0 and await labels_of(db, old) == [{"kind": "back_catalogue"}]
    assert result.labelled == 1


def test_track_matching_by_isrc_or_title_and_duration():
    known = [_Track("song", 200_000, "USAAA0000001"), _Track("other", 100_000, None)]
    assert count_matches([_Track("renamed", 50_000, "USAAA0000001")], known) == 1
    assert count_matches([_Track("other", 102_000, None)], known) == 1
    assert count_matches([_Track("other", 102_001, None)], known) == 0
    assert count_matches([_Track("other", 100_000, None), _Track("other", 100_000, None)], known) == 1  # used once


# --- the request bound and failures -----------------------------------------------------------


async def test_at_most_one_request_per_new_release(db, emu, labeler):
    a = emu.add_artist("A")
    base = emu.add_album([a], "Base", release_date="2026-05-01")
    await store(db, emu, base, at=T0 - dt.timedelta(days=100), baseline=True)
    new = [
        emu.add_album([a], "Album One", release_date="2026-11-20"),
        emu.add_album([a], "Album One (Clean)", release_date="2026-11-20"),
        emu.add_album([a], "Single One", album_type="single", release_date="2026-11-19"),
        emu.add_album([a], "Single One - Clean", album_type="single", release_date="2026-11-19"),
        emu.add_album([a], "Base (Deluxe)", release_date="2026-11-20", total_tracks=12),
        emu.add_album([a], "Base (Remixes)", album_type="single", release_date="2026-11-20", total_tracks=4),
        emu.add_album([a], "Oldie", release_date="2019-01-01"),
        emu.add_album([a], "Best Of", album_type="compilation", release_date="2026-11-20"),
    ]
    for rid in new:
        await store(db, emu, rid, at=T0)
    emu.clear_log()
    result = await labeler.label(new + new[:2])  # duplicates are labelled once
    fetched = album_requests(emu)
    assert len(fetched) == len(set(fetched)) == result.album_requests == result.requests == 3
    assert set(fetched) == {new[0], new[2], new[4]}  # album, single, deluxe; never a twin, remix, oldie, compilation
    again = await labeler.label(new)
    assert again.requests == 0  # tracks already fetched
    assert [x["kind"] for x in await labels_of(db, new[4])] == ["edition_of"]


async def test_a_failed_fetch_leaves_that_release_unlabelled_and_it_is_still_posted(db, emu, labeler, clock):
    await add_guild(db, 1, now=clock() - dt.timedelta(days=400))
    a = emu.add_artist("A")
    await follow(db, 1, a, now=clock() - dt.timedelta(days=400))
    single = emu.add_album([a], "Hit", album_type="single", release_date="2026-10-01", tracks=tracks(("Hit", 200_000)))
    await store(db, emu, single, at=T0 - dt.timedelta(days=30))
    await labeler.label([single])
    broken = emu.add_album([a], "Broken", release_date="2026-11-20", tracks=tracks(("Hit", 200_000), ("B", 1000)))
    fine = emu.add_album([a], "Fine", release_date="2026-11-20", tracks=tracks(("Hit", 200_000), ("F", 1000)))
    old = emu.add_album([a], "Vault", release_date="2012-01-01")
    for rid in (broken, fine, old):
        await store(db, emu, rid, at=T0)
    emu.fail_next(1, status=404, path_contains=f"/albums/{broken}")
    result = await labeler.label([broken, fine, old])
    assert set(result.failed) == {broken}
    assert await labels_of(db, broken) == []
    assert await labels_of(db, fine) == [{"kind": "carries_singles", "new_tracks": 1, "known_tracks": 1}]
    assert await labels_of(db, old) == [{"kind": "back_catalogue"}]
    sender = FakeSender()
    delivered = await Deliverer(db, sender, clock=clock).deliver(1)
    assert {"Broken", "Fine", "Vault"} <= set(sender.titles()) and delivered.error is None


async def test_quota_cooldown_stops_fetching_and_is_persisted(db, emu, client, clock):
    a = emu.add_artist("A")
    ids = [emu.add_album([a], f"Album {i}", release_date="2026-11-20") for i in range(4)]
    for rid in ids:
        await store(db, emu, rid, at=T0)
    emu.fail_next(1, status=429, retry_after=86400, reason="QUOTA_EXCEEDED", path_contains="/albums/")
    result = await Labeler(db, client, clock=clock, concurrency=1).label(ids)
    assert result.cooldown is not None and result.album_requests == 1
    assert len(album_requests(emu)) == 1  # nothing more once Spotify said stop
    async with db.sessions() as s:
        assert (await s.get(SpotifyState, 1)).cooldown_until == result.cooldown.until


async def test_store_failure_never_raises(emu, client, clock, tmp_path, monkeypatch):
    from storage.db import open_database

    database = await open_database(backend.database_url(tmp_path, "x"))
    await database.close()
    broken = Labeler(database, client, clock=clock)

    def store_down():
        raise ConnectionError("the store is down")

    monkeypatch.setattr(database, "transaction", store_down)  # anything the store does now fails
    result = await broken.label(["0" * 22])
    assert result.labelled == 0 and result.requests == 0
