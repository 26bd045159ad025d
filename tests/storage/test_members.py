"""``storage.members``: who to notify of an artist in a guild and how; closed DMs switch a member
to mentions in every guild; a member or user Discord no longer knows is forgotten; a member's own
subscriptions (only to followed artists, bounded, per guild), their mode, the closed-DMs notice
taken once, and an unfollow taking the guild's subscriptions to that artist with it."""

from __future__ import annotations

import pytest

from storage import catalog, guilds, members
from storage.members import MemberSettings, Subscriber, SubscribeResult
from storage.models import Member, Subscription
from tests.bot.helpers import add_guild

A, B = "A" * 22, "B" * 22


async def _seed(db, clock) -> None:
    for g in (1, 2):
        await add_guild(db, g, now=clock())
    async with db.sessions() as s:
        s.add_all(
            [
                Subscription(guild_id=1, user_id=20, artist_id=A, created_at=clock()),
                Subscription(guild_id=1, user_id=10, artist_id=A, created_at=clock()),
                Subscription(guild_id=1, user_id=10, artist_id=B, created_at=clock()),
                Subscription(guild_id=2, user_id=10, artist_id=A, created_at=clock()),
                Member(guild_id=1, user_id=10, mode="dm"),
                Member(guild_id=2, user_id=10, mode="dm"),
            ]
        )
        await s.commit()


async def test_subscribers_by_artist_with_their_mode_in_one_guild(db, clock):
    await _seed(db, clock)
    async with db.transaction() as s:
        got = await members.subscribers(s, 1, [A, B, "C" * 22])
    assert got == {A: [Subscriber(10, "dm"), Subscriber(20, "mention")], B: [Subscriber(10, "dm")]}


async def test_closed_dms_switch_every_membership_to_mention_once(db, clock):
    await _seed(db, clock)
    async with db.transaction() as s:
        assert await members.mark_dms_closed(s, 10, now=clock()) == 2
        assert await members.mark_dms_closed(s, 10, now=clock()) == 0
    async with db.transaction() as s:
        assert (await members.subscribers(s, 2, [A]))[A] == [Subscriber(10, "mention")]
        row = await s.get(Member, (1, 10))
        assert row is not None and row.dm_notice_pending and row.dm_closed_at == clock()


async def test_forget_member_is_per_guild_and_forget_user_everywhere(db, clock):
    await _seed(db, clock)
    async with db.transaction() as s:
        assert await members.forget_member(s, 1, 10) == 2
    async with db.transaction() as s:
        assert await members.subscribers(s, 1, [A, B]) == {A: [Subscriber(20, "mention")]}
        assert (await members.subscribers(s, 2, [A]))[A] == [Subscriber(10, "dm")]
        assert await members.forget_user(s, 10) == 1
    async with db.transaction() as s:
        assert await members.subscribers(s, 2, [A]) == {}


async def _follow(db, clock, guild_id: int, *artists: tuple[str, str]) -> None:
    async with db.transaction() as s:
        for artist_id, name in artists:
            await catalog.get_or_create_artist(s, artist_id, name)
            await guilds.follow_artist(s, guild_id, artist_id, now=clock())


C, D = "C" * 22, "D" * 22


async def test_subscribe_only_to_followed_artists_and_never_past_the_limit(db, clock):
    for g in (1, 2):
        await add_guild(db, g, now=clock())
    await _follow(db, clock, 1, (A, "Ada"), (B, "bea"), (C, "Cy"))
    async with db.transaction() as s:
        assert await members.subscribe(s, 1, 10, A, now=clock(), limit=2) == SubscribeResult("added", 1, "mention")
        assert await members.subscribe(s, 1, 10, A, now=clock(), limit=2) == SubscribeResult("already", 1, "mention")
        assert await members.subscribe(s, 1, 10, B, now=clock(), limit=2) == SubscribeResult("added", 2, "mention")
        assert await members.subscribe(s, 1, 10, C, now=clock(), limit=2) == SubscribeResult("limit", 2, "mention")
        assert await members.subscribe(s, 1, 10, A, now=clock(), limit=2) == SubscribeResult("already", 2, "mention")
        assert await members.subscribe(s, 1, 10, D, now=clock(), limit=5) == SubscribeResult(
            "not_followed", 2, "mention"
        )
        # guild 2 follows nothing: the same user can subscribe to nothing there
        assert (await members.subscribe(s, 2, 10, A, now=clock(), limit=5)).status == "not_followed"
        assert await members.subscribe(s, 1, 20, C, now=clock(), limit=2) == SubscribeResult("added", 1, "mention")
    async with db.transaction() as s:
        assert await members.member_subscriptions(s, 1, 10) == [(A, "Ada"), (B, "bea")]  # by name, any case
        assert await members.member_subscriptions(s, 2, 10) == []
        assert await members.subscription_count(s, 1, 10) == 2
        row = await s.get(Subscription, (1, 10, A))
        assert row is not None and row.created_at == clock()
        assert await members.subscribers(s, 1, [A, B, C]) == {
            A: [Subscriber(10, "mention")],
            B: [Subscriber(10, "mention")],
            C: [Subscriber(20, "mention")],
        }


async def test_find_remove_and_autocomplete_see_only_the_members_own_subscriptions(db, clock):
    for g in (1, 2):
        await add_guild(db, g, now=clock())
    await _follow(db, clock, 1, (A, "Ada 100%"), (B, "Bea"))
    await _follow(db, clock, 2, (A, "Ada 100%"))
    async with db.transaction() as s:
        for guild_id, user_id, artist_id in ((1, 10, A), (1, 10, B), (1, 20, A), (2, 30, A)):
            await members.subscribe(s, guild_id, user_id, artist_id, now=clock(), limit=5)
    async with db.transaction() as s:
        assert await members.find_subscription(s, 1, 10, artist_id=B, name="") == (B, "Bea")
        assert await members.find_subscription(s, 1, 10, artist_id=None, name="ada 100%") == (A, "Ada 100%")
        assert await members.find_subscription(s, 2, 10, artist_id=A, name="") is None  # another guild
        assert await members.find_subscription(s, 1, 30, artist_id=A, name="") is None  # another member
        assert await members.subscription_choices(s, 1, 10, "", 25) == [("Ada 100%", A), ("Bea", B)]
        assert await members.subscription_choices(s, 1, 10, "0%", 25) == [("Ada 100%", A)]
        assert await members.subscription_choices(s, 1, 10, "%", 1) == [("Ada 100%", A)]  # % is literal
        assert await members.subscription_choices(s, 1, 10, "e", 1) == [("Bea", B)]
        assert await members.subscription_choices(s, 1, 30, "", 25) == []
        assert await members.unsubscribe(s, 1, 10, A) is True
        assert await members.unsubscribe(s, 1, 10, A) is False
    async with db.transaction() as s:
        assert await members.member_subscriptions(s, 1, 10) == [(B, "Bea")]
        assert await members.member_subscriptions(s, 1, 20) == [(A, "Ada 100%")]
        assert await members.member_subscriptions(s, 2, 30) == [(A, "Ada 100%")]


async def test_mode_per_guild_and_the_closed_dms_notice_taken_once(db, clock):
    for g in (1, 2):
        await add_guild(db, g, now=clock())
    async with db.transaction() as s:
        assert await members.member_settings(s, 1, 10) == MemberSettings("mention", None)
        await members.set_mode(s, 1, 10, "dm")
        await members.set_mode(s, 2, 10, "dm")
        assert await members.member_settings(s, 1, 10) == MemberSettings("dm", None)
        assert not await members.dm_notice_pending(s, 1, 10)
        with pytest.raises(ValueError, match="unknown notification mode"):
            await members.set_mode(s, 1, 10, "pigeon")
    async with db.transaction() as s:
        assert await members.mark_dms_closed(s, 10, now=clock()) == 2
    async with db.transaction() as s:
        assert await members.member_settings(s, 1, 10) == MemberSettings("mention", clock())
        assert await members.dm_notice_pending(s, 1, 10) and await members.dm_notice_pending(s, 2, 10)
        assert await members.take_dm_notice(s, 1, 10) is True
        assert await members.take_dm_notice(s, 1, 10) is False  # told once
        assert not await members.dm_notice_pending(s, 1, 10)
        assert await members.dm_notice_pending(s, 2, 10)  # the other guild tells it at its own next command
        await members.restore_dm_notice(s, 1, 10)  # the notice could not be sent: owed again
        assert await members.take_dm_notice(s, 1, 10) is True
        await members.set_mode(s, 2, 10, "dm")  # choosing a mode drops the notice owed there
        assert await members.take_dm_notice(s, 2, 10) is False
        await members.restore_dm_notice(s, 2, 10)  # back in dm mode: nothing is owed again
        assert not await members.dm_notice_pending(s, 2, 10)
        assert await members.take_dm_notice(s, 3, 10) is False  # no row at all


async def test_an_unfollow_removes_the_guilds_subscriptions_to_that_artist(db, clock):
    for g in (1, 2):
        await add_guild(db, g, now=clock())
    await _follow(db, clock, 1, (A, "Ada"), (B, "Bea"))
    await _follow(db, clock, 2, (A, "Ada"))
    async with db.transaction() as s:
        for guild_id, user_id, artist_id in ((1, 10, A), (1, 20, A), (1, 10, B), (2, 10, A)):
            await members.subscribe(s, guild_id, user_id, artist_id, now=clock(), limit=5)
    async with db.transaction() as s:
        assert await guilds.unfollow(s, 1, A) is True
    async with db.transaction() as s:
        assert await members.subscribers(s, 1, [A, B]) == {B: [Subscriber(10, "mention")]}
        assert await members.subscribers(s, 2, [A]) == {A: [Subscriber(10, "mention")]}  # the other guild's stay
        assert await members.forget_artist(s, 1, A) == 0
    await _follow(db, clock, 1, (A, "Ada"))  # following again starts with nobody subscribed
    async with db.transaction() as s:
        assert await members.subscribers(s, 1, [A]) == {}
