"""storage.guilds, storage.catalog and storage.spotify_state helpers."""

from __future__ import annotations

import datetime as dt

from bot.spotify.models import Album, ArtistRef
from storage import catalog, guilds, spotify_state
from storage.models import Release

UTC = dt.UTC


def album(rid: str = "r1", name: str = "Song") -> Album:
    return Album(
        id=rid,
        name=name,
        album_type="single",
        release_date="2026-11-20",
        release_date_precision="day",
        total_tracks=1,
        artists=(ArtistRef("A", "Artist"),),
    )


async def test_get_or_create_guild_stores_the_given_schedule_once(db, clock):
    due = dt.datetime(2026, 11, 27, 12, tzinfo=UTC)
    async with db.sessions() as s:
        guild = await guilds.get_or_create_guild(
            s, 1, now=clock(), next_due_at=due, schedule_day=4, schedule_time="12:00", timezone="Europe/Berlin"
        )
        assert (guild.next_due_at, guild.schedule_day, guild.schedule_time) == (due, 4, "12:00")
        assert guild.timezone == "Europe/Berlin" and guild.created_at == clock()
        same = await guilds.get_or_create_guild(s, 1, now=clock(), next_due_at=clock(), schedule_day=0)
        assert same is guild and same.schedule_day == 4 and same.next_due_at == due
        await s.commit()


async def test_followed_artist_ids_union_and_follow_is_idempotent(db, clock):
    async with db.sessions() as s:
        for g in (1, 2, 3):
            await guilds.get_or_create_guild(s, g, now=clock(), next_due_at=clock())
        for a in ("B", "A", "C"):
            await catalog.get_or_create_artist(s, a, a)
        await guilds.follow_artist(s, 1, "A", now=clock())
        await guilds.follow_artist(s, 2, "A", now=clock())
        await guilds.follow_artist(s, 2, "B", now=clock())
        await guilds.follow_artist(s, 3, "C", now=clock())
        first = await guilds.follow_artist(s, 1, "A", now=clock() + dt.timedelta(days=1))
        assert first.followed_at == clock()
        await s.commit()
        assert await guilds.followed_artist_ids(s, [1, 2]) == ["A", "B"]
        assert await guilds.followed_artist_ids(s) == ["A", "B", "C"]
        assert await guilds.followed_artist_ids(s, []) == []
        assert await catalog.artist_names(s, ["A", "Z"]) == {"A": "A"}


async def test_upsert_release_keeps_first_seen(db, clock):
    async with db.sessions() as s:
        await catalog.get_or_create_artist(s, "A", "Artist")
        assert await catalog.upsert_release(s, album(), now=clock()) is True
        assert await catalog.upsert_release(s, album(name="Renamed"), now=clock() + dt.timedelta(days=1)) is False
        assert await catalog.link_release(s, "A", "r1", album_group="single", now=clock(), baseline=True) is True
        assert await catalog.link_release(s, "A", "r1", album_group="single", now=clock(), baseline=False) is False
        await s.commit()
        release = await s.get(Release, "r1")
        assert release.first_seen_at == clock() and release.name == "Song"
        assert release.artists == [{"id": "A", "name": "Artist"}]
        assert await catalog.known_release_ids(s, "A") == {"r1"}


async def test_cooldown_roundtrip_keeps_the_longest(db, clock):
    async with db.sessions() as s:
        assert await spotify_state.get_cooldown(s) == (None, None)
        later = clock() + dt.timedelta(hours=24)
        await spotify_state.set_cooldown(s, later, "QUOTA_EXCEEDED")
        await spotify_state.set_cooldown(s, clock() + dt.timedelta(minutes=5), "rate limit")
        await s.commit()
    async with db.sessions() as s:
        assert await spotify_state.get_cooldown(s) == (later, "QUOTA_EXCEEDED")
        await spotify_state.set_cooldown(s, None, None)
        assert await spotify_state.get_cooldown(s) == (None, None)


async def test_due_guilds(db, clock):
    async with db.sessions() as s:
        await guilds.get_or_create_guild(s, 1, now=clock(), next_due_at=clock() - dt.timedelta(days=2))
        await guilds.get_or_create_guild(s, 2, now=clock(), next_due_at=clock())
        await guilds.get_or_create_guild(s, 3, now=clock(), next_due_at=clock() + dt.timedelta(seconds=1))
        await s.commit()
        assert [g.id for g in await guilds.due_guilds(s, clock())] == [1, 2]
        assert [g.id for g in await guilds.guilds_by_ids(s, [3, 1, 9])] == [1, 3]
        assert [g.id for g in await guilds.guilds_by_ids(s, None)] == [1, 2, 3]


async def test_linked_artist_ids_are_the_artists_with_a_link(db, clock):
    async with db.sessions() as s:
        for a in ("A", "B", "C"):
            await catalog.get_or_create_artist(s, a, a)
        await catalog.upsert_release(s, album("r1"), now=clock())
        await catalog.upsert_release(s, album("r2"), now=clock())
        await catalog.link_release(s, "A", "r1", album_group="single", now=clock(), baseline=True)
        await catalog.link_release(s, "A", "r2", album_group="single", now=clock(), baseline=True)
        await catalog.link_release(s, "C", "r2", album_group="appears_on", now=clock(), baseline=False)
        await s.commit()
        assert await catalog.linked_artist_ids(s, ["A", "B", "C", "Z", "A"]) == {"A", "C"}
        assert await catalog.linked_artist_ids(s, []) == set()
