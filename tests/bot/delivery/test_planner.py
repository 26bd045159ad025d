"""What is new for a guild, and clean/explicit twin folding."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from bot.delivery import fold_twins, pending_announcements
from bot.spotify.models import Album
from bot.tracking.editions import are_twins, edition_marker
from storage import catalog
from storage.models import Delivery, Release
from tests.bot.helpers import add_guild, follow

T0 = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


def rel(rid: str, name: str, date: str = "2026-11-20", artists=("A",), precision: str = "day") -> Release:
    return Release(
        id=rid,
        name=name,
        album_type="single",
        artists=[{"id": a, "name": a} for a in artists],
        release_date=date,
        release_date_precision=precision,
        total_tracks=1,
        first_seen_at=T0,
    )


def album(rid: str, name: str, artists=("A",), date: str = "2026-11-20") -> Album:
    return Album.from_api(
        {
            "id": rid,
            "name": name,
            "album_type": "single",
            "release_date": date,
            "release_date_precision": "day",
            "total_tracks": 1,
            "artists": [{"id": a, "name": a} for a in artists],
        }
    )


async def store_link(db, artist_id, alb, *, at, baseline=False):
    async with db.sessions() as s:
        await catalog.upsert_release(s, alb, now=at)
        await catalog.link_release(s, artist_id, alb.id, album_group="single", now=at, baseline=baseline)
        await s.commit()


@pytest.mark.parametrize(
    "name,base,marker",
    [
        ("Yeehaw (Clean)", "Yeehaw", "clean"),
        ("The Boatlift - Clean", "The Boatlift", "clean"),
        ("Song [CLEAN]", "Song", "clean"),
        ("Song (Explicit)", "Song", "explicit"),
        ("Song (Clean Version)", "Song", "clean"),
        ("Song - explicit", "Song", "explicit"),
        ("Cleaner", "Cleaner", None),
        ("Clean", "Clean", None),
        ("Now Or Never (TropKillaz Remix)", "Now Or Never (TropKillaz Remix)", None),
    ],
)
def test_edition_marker(name, base, marker):
    assert edition_marker(name) == (base, marker)


def test_twin_rules():
    assert are_twins(rel("1", "Yeehaw", "2025-12-26"), rel("2", "Yeehaw (Clean)", "2025-12-25"))
    assert are_twins(rel("1", "Song (Explicit)"), rel("2", "song [clean]"))
    assert not are_twins(rel("1", "Song"), rel("2", "Song"))  # a re-release, not a twin
    assert not are_twins(rel("1", "Song"), rel("2", "Song (Clean)", "2026-11-23"))  # 3 days apart
    assert not are_twins(rel("1", "Song"), rel("2", "Song (Clean)", artists=("A", "B")))
    assert not are_twins(rel("1", "Song"), rel("2", "Other (Clean)"))
    assert are_twins(rel("1", "Song", "2026", precision="year"), rel("2", "Song (Clean)", "2026", precision="year"))


def test_fold_prefers_explicit_or_plain_title_and_keeps_order():
    releases = [rel("c", "Yeehaw (Clean)"), rel("x", "Other"), rel("e", "Yeehaw")]
    [first, second] = fold_twins(releases)
    assert first.release.id == "e" and [t.id for t in first.twins] == ["c"]
    assert second.release.id == "x" and second.twins == []
    [one] = fold_twins([rel("c", "Song (Clean)"), rel("e", "Song (Explicit)")])
    assert one.release.id == "e"


def test_fold_real_pitbull_listing(shared_spotify):
    data = json.loads((shared_spotify / "fixtures" / "artist_albums.json").read_text())
    releases = []
    for item in data["items"]:
        a = Album.from_api(item)
        releases.append(rel(a.id, a.name, a.release_date, tuple(x.id for x in a.artists), a.release_date_precision))
    folded = fold_twins(releases)
    twins = {a.release.name: [t.name for t in a.twins] for a in folded if a.twins}
    assert twins == {
        "Yeehaw": ["Yeehaw (Clean)"],
        "The Boatlift": ["The Boatlift - Clean"],
        "El Mariel": ["El Mariel - Clean"],
    }
    assert len(folded) == len(releases) - 3
    # Same title twice ("2 The Moon (The Remixes)") has no marker: both stay.
    assert sum(a.release.name == "2 The Moon (The Remixes)" for a in folded) == 2


async def test_new_for_a_guild(db):
    await add_guild(db, 1, now=T0)
    await follow(db, 1, "A", now=T0)
    await store_link(db, "A", album("old", "Old"), at=T0, baseline=True)
    await store_link(db, "A", album("new1", "New 1"), at=T0 + dt.timedelta(days=1))
    await store_link(db, "A", album("new2", "New 2"), at=T0 + dt.timedelta(days=2))
    # A release of an artist nobody here follows.
    async with db.sessions() as s:
        await catalog.get_or_create_artist(s, "B", "B")
        await s.commit()
    await store_link(db, "B", album("other", "Other", artists=("B",)), at=T0 + dt.timedelta(days=1))
    async with db.sessions() as s:
        pending = await pending_announcements(s, 1)
        assert [a.release.id for a in pending] == ["new1", "new2"]  # oldest first seen first
        s.add(Delivery(guild_id=1, release_id="new1", status="sent", claimed_at=T0))
        await s.commit()
        assert [a.release.id for a in await pending_announcements(s, 1)] == ["new2"]


async def test_second_guild_does_not_get_the_past(db):
    await add_guild(db, 1, now=T0)
    await follow(db, 1, "A", now=T0)
    await store_link(db, "A", album("before", "Before"), at=T0 + dt.timedelta(days=1))
    later = T0 + dt.timedelta(days=3)
    await add_guild(db, 2, now=later)
    await follow(db, 2, "A", now=later)
    await store_link(db, "A", album("after", "After"), at=later + dt.timedelta(days=1))
    async with db.sessions() as s:
        assert [a.release.id for a in await pending_announcements(s, 1)] == ["before", "after"]
        assert [a.release.id for a in await pending_announcements(s, 2)] == ["after"]


async def test_collaboration_followed_twice_is_one_announcement(db):
    await add_guild(db, 1, now=T0)
    await follow(db, 1, "A", now=T0)
    await follow(db, 1, "B", now=T0)
    collab = album("both", "Both", artists=("A", "B"))
    await store_link(db, "A", collab, at=T0 + dt.timedelta(days=1))
    await store_link(db, "B", collab, at=T0 + dt.timedelta(days=1))
    async with db.sessions() as s:
        assert [a.release.id for a in await pending_announcements(s, 1)] == ["both"]
