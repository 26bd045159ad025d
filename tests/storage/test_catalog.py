"""``storage.catalog``: artists, releases and their links, the artist rows a check reads and writes, and
the labeler's reads and writes — and concurrent writers: two sessions making the same artist, and
batched updates taking their row locks in key order (no deadlock on PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select, text

from bot.spotify.models import Album, ArtistRef
from storage import catalog
from storage.catalog import TrackRow
from storage.models import Artist, Release
from tests import backend
from tests.storage.helpers import race

postgresql_only = backend.postgresql_only("row-lock deadlocks")


def album(rid: str, artists: tuple[str, ...] = ("A",), album_type: str = "single") -> Album:
    return Album(
        id=rid,
        name=f"Song {rid}",
        album_type=album_type,
        release_date="2026-11-20",
        release_date_precision="day",
        total_tracks=2,
        artists=tuple(ArtistRef(a, a) for a in artists),
    )


def song(rid: str = "r1", name: str = "Song") -> Album:
    """A one-track single by artist ``A`` (named "Artist") dated 2026-11-20."""
    return Album(
        id=rid,
        name=name,
        album_type="single",
        release_date="2026-11-20",
        release_date_precision="day",
        total_tracks=1,
        artists=(ArtistRef("A", "Artist"),),
    )


async def seed(db, clock, links: dict[str, tuple[str, ...]]) -> None:
    """Releases ``{release id: its artist ids}``, each linked to its artists."""
    async with db.transaction() as s:
        for artist in sorted({a for artists in links.values() for a in artists}):
            await catalog.get_or_create_artist(s, artist, artist)
        for rid, artists in links.items():
            await catalog.upsert_release(s, album(rid, artists), now=clock())
            for artist in artists:
                await catalog.link_release(s, artist, rid, album_group="single", now=clock(), baseline=False)


async def test_baselined_exists_and_last_error(db, clock):
    async with db.transaction() as s:
        await catalog.get_or_create_artist(s, "A", "A")
        await catalog.get_or_create_artist(s, "B", "B")
        await catalog.store_checks(s, artist_updates=[{"id": "B", "baselined_at": clock()}])
    async with db.transaction() as s:
        assert [await catalog.artist_exists(s, a) for a in ("A", "B", "Z")] == [True, True, False]
        assert [await catalog.is_baselined(s, a) for a in ("A", "B", "Z")] == [False, True, False]
        await catalog.record_artist_error(s, "A", "Spotify error 500: boom")
        await catalog.record_artist_error(s, "Z", "no row: nothing happens")
    async with db.transaction() as s:
        assert (await s.get(Artist, "A")).last_error == "Spotify error 500: boom"
        assert (await s.get(Artist, "B")).last_error is None
        assert await s.get(Artist, "Z") is None


async def test_releases_and_links_both_ways(db, clock):
    await seed(db, clock, {"r1": ("A",), "r2": ("A", "B"), "r3": ("C",)})
    async with db.transaction() as s:
        got = await catalog.releases_by_id(s, ["r1", "r2", "missing"])
        assert sorted(got) == ["r1", "r2"] and got["r2"].artists == [{"id": "A", "name": "A"}, {"id": "B", "name": "B"}]
        assert await catalog.artist_ids_of_releases(s, ["r1", "r2", "missing"]) == {"r1": {"A"}, "r2": {"A", "B"}}
        assert await catalog.release_ids_of_artists(s, ["A", "B", "Z"]) == {"A": {"r1", "r2"}, "B": {"r2"}}
        assert await catalog.releases_by_id(s, []) == {}


async def test_reads_span_more_ids_than_one_query_takes(db, clock):
    ids = [f"r{i:04d}" for i in range(catalog.LABEL_CHUNK + 20)]
    async with db.transaction() as s:
        await catalog.get_or_create_artist(s, "A", "A")
        await catalog.store_checks(
            s,
            releases=[catalog.release_values(album(r), clock()) for r in ids],
            links=[
                {
                    "artist_id": "A",
                    "release_id": r,
                    "album_group": "single",
                    "first_seen_at": clock(),
                    "baseline": True,
                    "run_id": None,
                }
                for r in ids
            ],
        )
    async with db.transaction() as s:
        assert sorted(await catalog.releases_by_id(s, ids)) == ids
        assert await catalog.artist_ids_of_releases(s, ids) == {r: {"A"} for r in ids}


async def test_store_labels_with_and_without_tracks(db, clock):
    await seed(db, clock, {"r1": ("A",), "r2": ("A",)})
    first = [TrackRow("t1", "One", 200_000, "ISRC1"), TrackRow(None, "Two", 100_000, None)]
    async with db.transaction() as s:
        await catalog.store_labels(s, "r1", [{"kind": "back_catalogue"}], tracks=first, upc="0001")
        await catalog.store_labels(s, "r2", [])
    async with db.transaction() as s:
        assert await catalog.release_tracks(s, ["r1", "r2"]) == {"r1": first}  # in position order
        got = await catalog.releases_by_id(s, ["r1", "r2"])
        r1, r2 = got["r1"], got["r2"]
        assert (r1.labels, r1.tracks_fetched, r1.upc) == ([{"kind": "back_catalogue"}], True, "0001")
        assert (r2.labels, r2.tracks_fetched, r2.upc) == ([], False, None)
    # Labelled again: the tracks are replaced, not added to; labels without tracks keep the stored ones.
    async with db.transaction() as s:
        await catalog.store_labels(s, "r1", [], tracks=[TrackRow("t9", "Nine", 1000, None)], upc=None)
        await catalog.store_labels(s, "r2", [{"kind": "remix_of", "release_id": "r1", "name": "Song r1"}])
    async with db.transaction() as s:
        assert await catalog.release_tracks(s, ["r1"]) == {"r1": [TrackRow("t9", "Nine", 1000, None)]}
        got = await catalog.releases_by_id(s, ["r1", "r2"])
        assert got["r1"].labels == [] and got["r1"].upc is None
        assert got["r2"].labels == [{"kind": "remix_of", "release_id": "r1", "name": "Song r1"}]
    async with db.transaction() as s:
        await catalog.store_labels(s, "r1", [], tracks=[], upc="0002")
    async with db.transaction() as s:
        assert await catalog.release_tracks(s, ["r1"]) == {}
        assert (await catalog.releases_by_id(s, ["r1"]))["r1"].upc == "0002"


async def test_store_checks_writes_only_the_keys_given(db, clock):
    async with db.transaction() as s:
        await catalog.store_checks(s, new_artists=[{"id": "A", "name": "A", "group_state": {}, "runs_skipped": 3}])
        await catalog.store_checks(
            s,
            artist_updates=[{"id": "A", "last_checked_at": clock(), "runs_skipped": 0}],
        )
    async with db.transaction() as s:
        row = await s.get(Artist, "A")
        assert row.last_checked_at == clock() and row.runs_skipped == 0
        assert row.baselined_at is None and row.last_error is None
    later = clock() + dt.timedelta(days=7)
    async with db.transaction() as s:
        await catalog.store_checks(s, artist_updates=[{"id": "A", "baselined_at": later}])
    async with db.transaction() as s:
        row = await s.get(Artist, "A")
        assert row.baselined_at == later and row.last_checked_at == clock()


async def test_upsert_release_keeps_first_seen(db, clock):
    async with db.sessions() as s:
        await catalog.get_or_create_artist(s, "A", "Artist")
        assert await catalog.upsert_release(s, song(), now=clock()) is True
        assert await catalog.upsert_release(s, song(name="Renamed"), now=clock() + dt.timedelta(days=1)) is False
        assert await catalog.link_release(s, "A", "r1", album_group="single", now=clock(), baseline=True) is True
        assert await catalog.link_release(s, "A", "r1", album_group="single", now=clock(), baseline=False) is False
        await s.commit()
        release = await s.get(Release, "r1")
        assert release.first_seen_at == clock() and release.name == "Song"
        assert release.artists == [{"id": "A", "name": "Artist"}]
        assert await catalog.known_release_ids(s, "A") == {"r1"}


async def test_linked_artist_ids_are_the_artists_with_a_link(db, clock):
    async with db.sessions() as s:
        for a in ("A", "B", "C"):
            await catalog.get_or_create_artist(s, a, a)
        await catalog.upsert_release(s, song("r1"), now=clock())
        await catalog.upsert_release(s, song("r2"), now=clock())
        await catalog.link_release(s, "A", "r1", album_group="single", now=clock(), baseline=True)
        await catalog.link_release(s, "A", "r2", album_group="single", now=clock(), baseline=True)
        await catalog.link_release(s, "C", "r2", album_group="appears_on", now=clock(), baseline=False)
        await s.commit()
        assert await catalog.linked_artist_ids(s, ["A", "B", "C", "Z", "A"]) == {"A", "C"}
        assert await catalog.linked_artist_ids(s, []) == set()


async def test_save_artists_adds_unknown_ones_and_refreshes_profiles_only_when_asked(db):
    async with db.transaction() as s:
        await catalog.save_artists(s, [catalog.ArtistProfile("A", "Old", "http://img/1")], refresh_profiles=False)
        await catalog.save_artists(s, [catalog.ArtistProfile("A", "Ignored")], refresh_profiles=False)
        assert await catalog.artist_names(s, ["A"]) == {"A": "Old"}
        await catalog.save_artists(s, [catalog.ArtistProfile("A", "New")], refresh_profiles=True)
        assert await catalog.artist_names(s, ["A"]) == {"A": "New"}
        await catalog.save_artists(s, [catalog.ArtistProfile("A", "New", "http://img/2")], refresh_profiles=True)
        images = await s.scalars(select(Artist.image_url))
        assert images.all() == ["http://img/2"]
        assert await catalog.search_artist_names(s, "EW", 5) == [("A", "New")]
        assert await catalog.search_artist_names(s, "%", 5) == []


# --- concurrent writers -------------------------------------------------------------------


async def test_two_sessions_creating_the_same_artist_both_succeed(db):
    first, second = await race(
        db,
        lambda s: catalog.get_or_create_artist(s, "A" * 22, "Nova", "http://img/1"),
        lambda s: catalog.get_or_create_artist(s, "A" * 22, "Nova", "http://img/2"),
    )
    assert first.id == second.id and second.name == "Nova" and second.image_url == "http://img/1"


@postgresql_only
async def test_concurrent_store_checks_with_overlapping_artists_do_not_deadlock(db):
    ids = [f"a{i:04d}" for i in range(400)]
    async with db.sessions() as s:
        await catalog.store_checks(s, new_artists=[{"id": i, "name": i, "group_state": {}} for i in ids])
        await s.commit()

    async def store(order):
        async with db.sessions() as s:
            await catalog.store_checks(s, artist_updates=[{"id": i, "runs_skipped": 1} for i in order])
            await s.execute(text("SELECT pg_sleep(0.05)"))
            await s.commit()

    for _ in range(5):  # in input order, half of these pairs deadlock; in key order, none can
        await asyncio.wait_for(asyncio.gather(store(ids), store(ids[::-1])), 30)
