"""``storage.guilds``: guild rows, their settings, follows and the channel notice — and two sessions
making the same guild or follow at once (both succeed, the first one's row wins, no error).

The race tests run on the run's backend (``tests/backend.py``): on PostgreSQL the second session
really waits for the first one's row.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from storage import catalog, guilds, routes
from storage.models import DEFAULT_RELEASE_TYPES, Follow, Guild
from tests.storage.helpers import race

UTC = dt.UTC


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


async def test_due_guilds(db, clock):
    async with db.sessions() as s:
        await guilds.get_or_create_guild(s, 1, now=clock(), next_due_at=clock() - dt.timedelta(days=2))
        await guilds.get_or_create_guild(s, 2, now=clock(), next_due_at=clock())
        await guilds.get_or_create_guild(s, 3, now=clock(), next_due_at=clock() + dt.timedelta(seconds=1))
        await s.commit()
        assert [g.id for g in await guilds.due_guilds(s, clock())] == [1, 2]
        assert [g.id for g in await guilds.guilds_by_ids(s, [3, 1, 9])] == [1, 3]
        assert [g.id for g in await guilds.guilds_by_ids(s, None)] == [1, 2, 3]


async def test_settings_writes_need_the_guild_row(db, clock):
    async with db.transaction() as s:
        for write in (
            guilds.lock_guild(s, 1),
            guilds.set_channel(s, 1, 5),
            guilds.set_schedule(s, 1, day=0, time="08:00", timezone="UTC", next_due_at=clock()),
            guilds.set_album_groups(s, 1, ["album"]),
            guilds.set_filters(s, 1, {}),
            guilds.set_mention_role(s, 1, None),
            guilds.set_publish(s, 1, True),
        ):
            with pytest.raises(LookupError, match="guild 1 has no row"):
                await write
        with pytest.raises(LookupError):
            await guilds.follow_artists(
                s, 1, [catalog.ArtistProfile("A", "A")], now=clock(), limit=5, refresh_profiles=False
            )


async def test_a_new_guild_posts_the_default_types_eps_included(db, clock):
    async with db.transaction() as s:
        guild = await guilds.get_or_create_guild(s, 1, now=clock(), next_due_at=clock())
    assert guild.album_groups == ["album", "single", "ep", "compilation"] == list(DEFAULT_RELEASE_TYPES)
    assert guild.publish is False


async def test_delivery_settings_carry_publish_and_the_guilds_own_routes(db, clock):
    async with db.transaction() as s:
        for g in (1, 2):
            await guilds.get_or_create_guild(s, g, now=clock(), next_due_at=clock())
        await guilds.set_channel(s, 1, 100)
        await guilds.set_publish(s, 1, True)
        await guilds.set_album_groups(s, 2, [])
        await routes.set_route(s, 1, "type", "ep", 101)
        await routes.set_route(s, 2, "artist", "A" * 22, 201)
    async with db.transaction() as s:
        one = await guilds.delivery_settings(s, 1)
        two = await guilds.delivery_settings(s, 2)
        assert await guilds.delivery_settings(s, 3) is None
    assert one is not None and two is not None
    assert (one.channel_id, one.publish, one.album_groups) == (100, True, DEFAULT_RELEASE_TYPES)
    assert one.routes.by_type == {"ep": 101} and one.routes.by_artist == {}
    assert (two.publish, two.album_groups) == (False, DEFAULT_RELEASE_TYPES)  # empty: the default
    assert two.routes.by_artist == {"A" * 22: 201} and two.routes.by_type == {}


async def test_tracked_types_union_the_following_guilds_types(db, clock):
    async with db.transaction() as s:
        for g in (1, 2, 3):
            await guilds.get_or_create_guild(s, g, now=clock(), next_due_at=clock())
        for a in ("A", "B"):
            await catalog.get_or_create_artist(s, a, a)
        await guilds.set_album_groups(s, 1, ["album", "ep"])
        await guilds.set_album_groups(s, 2, ["appears_on"])
        await guilds.set_album_groups(s, 3, [])
        await guilds.follow_artist(s, 1, "A", now=clock())
        await guilds.follow_artist(s, 2, "A", now=clock())
        await guilds.follow_artist(s, 3, "B", now=clock())
    async with db.transaction() as s:
        assert await guilds.tracked_types(s, ["A", "B", "C", "A"]) == {
            "A": frozenset({"album", "ep", "appears_on"}),
            "B": frozenset(DEFAULT_RELEASE_TYPES),  # stored empty: the default
            "C": frozenset(),  # followed by no guild
        }


async def test_follow_artists_reports_followed_already_and_over_the_limit_in_order(db, clock):
    profiles = [catalog.ArtistProfile(a, f"Name {a}") for a in ("C", "A", "B", "D")]
    async with db.transaction() as s:
        await guilds.get_or_create_guild(s, 1, now=clock(), next_due_at=clock())
        await guilds.get_or_create_guild(s, 2, now=clock(), next_due_at=clock())
        first = await guilds.follow_artists(s, 1, profiles[:1], now=clock(), limit=3, refresh_profiles=False)
        assert first == guilds.FollowResult(("C",), (), (), 1)
        result = await guilds.follow_artists(s, 1, profiles, now=clock(), limit=3, refresh_profiles=False)
        assert result == guilds.FollowResult(("A", "B"), ("C",), ("D",), 3)
        assert await guilds.follow_count(s, 1) == 3 and await guilds.follow_count(s, 2) == 0
        assert await catalog.artist_names(s, ["A", "B", "C", "D"]) == {a: f"Name {a}" for a in "ABC"}
        assert await guilds.find_followed(s, 1, artist_id="A", name="") == ("A", "Name A")
        assert await guilds.find_followed(s, 1, artist_id=None, name="name b") == ("B", "Name B")
        assert await guilds.find_followed(s, 2, artist_id="A", name="") is None
        assert await guilds.followed_choices(s, 1, "name", 2) == [("Name A", "A"), ("Name B", "B")]
        assert await guilds.unfollow(s, 1, "A") is True
        assert await guilds.unfollow(s, 1, "A") is False
        assert await guilds.followed_artist_ids(s, [1]) == ["B", "C"]


async def test_the_channel_notice_mark_is_taken_once(db, clock):
    async with db.transaction() as s:
        await guilds.get_or_create_guild(s, 1, now=clock(), next_due_at=clock())
        await guilds.set_channel(s, 1, 55)
        assert await guilds.take_channel_notice(s, 1) is None
        await s.execute(update(Guild).where(Guild.id == 1).values(channel_problem="Missing Permissions"))
        assert await guilds.take_channel_notice(s, 1) == (55, "Missing Permissions")
        assert await guilds.take_channel_notice(s, 1) is None
        assert await guilds.take_channel_notice(s, 2) is None  # a guild the bot has not seen


# --- concurrent writers -------------------------------------------------------------------


async def test_two_sessions_creating_the_same_guild_both_succeed(db, clock):
    first, second = await race(
        db,
        lambda s: guilds.get_or_create_guild(
            s, 10**18, now=clock(), next_due_at=clock(), schedule_day=4, schedule_time="12:00"
        ),
        lambda s: guilds.get_or_create_guild(
            s, 10**18, now=clock(), next_due_at=clock(), schedule_day=0, schedule_time="08:00"
        ),
    )
    assert first.id == second.id == 10**18
    assert (second.schedule_day, second.schedule_time) == (4, "12:00")  # the winner's row, not an error
    async with db.sessions() as s:
        assert len((await s.scalars(select(Guild))).all()) == 1


async def test_two_sessions_following_the_same_artist_both_succeed_and_keep_the_first_time(db, clock):
    async with db.sessions() as s:
        await guilds.get_or_create_guild(s, 7, now=clock(), next_due_at=clock())
        await catalog.get_or_create_artist(s, "A" * 22, "Nova")
        await s.commit()
    later = clock() + dt.timedelta(hours=1)
    first, second = await race(
        db,
        lambda s: guilds.follow_artist(s, 7, "A" * 22, now=clock()),
        lambda s: guilds.follow_artist(s, 7, "A" * 22, now=later),
    )
    assert first.followed_at == second.followed_at == clock()
    async with db.sessions() as s:
        assert len((await s.scalars(select(Follow))).all()) == 1


async def test_follow_of_an_unknown_artist_is_still_refused(db, clock):
    async with db.sessions() as s:
        await guilds.get_or_create_guild(s, 7, now=clock(), next_due_at=clock())
        with pytest.raises(IntegrityError):
            await guilds.follow_artist(s, 7, "missing", now=clock())
