"""storage.catalog: the artist rows a check reads and writes, and the labeler's reads and writes."""

from __future__ import annotations

import datetime as dt

from bot.spotify.models import Album, ArtistRef
from storage import catalog
from storage.catalog import TrackRow
from storage.models import Artist


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
