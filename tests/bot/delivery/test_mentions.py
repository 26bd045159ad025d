"""Mentions: exactly the subscribed members of a post's artists (and the role), within 2,000 characters
and 100 ids per message; the rest in follow-up messages, each posted once across failures and crashes."""

from __future__ import annotations

import pytest

from bot.delivery import Deliverer
from bot.delivery.mentions import CONTENT_LIMIT, IDS_PER_LIST, dm_users, mention_users, plan_mentions
from storage.members import Subscriber
from storage.models import MentionPost
from tests.bot.delivery.fake_discord import FakeDiscord
from tests.bot.delivery.world import DEFAULT, GUILD, guild_following, release, route, set_guild, subscribe, url

BIG = 10**18  # snowflake-sized user ids: "<@1000000000000000001>" is 22 characters


class Killed(BaseException):
    """The process dies here (no ``except Exception`` catches it)."""


# --- the split, pure ------------------------------------------------------------------------------


def test_nobody_to_mention():
    assert plan_mentions([], None).content is None and plan_mentions([], None).allowed_mentions is None


def test_users_and_the_role_in_one_message():
    m = plan_mentions([5, 7], 99)
    assert m.content == "<@&99> <@5> <@7>" and m.parts == ()
    assert m.allowed_mentions == {"parse": [], "users": ["5", "7"], "roles": ["99"], "replied_user": False}


def test_2000_characters_split_into_parts_in_order():
    users = [BIG + i for i in range(200)]
    m = plan_mentions(users, 42)
    texts = [m.content, *(p.content for p in m.parts)]
    assert all(t is not None and len(t) <= CONTENT_LIMIT for t in texts)
    assert len(texts) == 3  # 23 characters a mention: 86 fit in 2,000
    assert m.user_ids == users  # every user once, in order
    assert m.content is not None and m.content.startswith("<@&42> ") and all("<@&" not in p.content for p in m.parts)
    assert [p.part for p in m.parts] == [1, 2]
    for p in m.parts:
        assert p.content == " ".join(f"<@{u}>" for u in p.user_ids)


def test_100_ids_split_into_parts():
    users = list(range(1, 251))  # short ids: the id limit binds before the character limit
    m = plan_mentions(users, None)
    assert m.allowed_mentions is not None
    sizes = [len(m.allowed_mentions["users"]), *(len(p.user_ids) for p in m.parts)]
    assert sizes == [IDS_PER_LIST, IDS_PER_LIST, 50] and m.user_ids == users


def test_subscribers_deduplicated_in_artist_order_by_mode():
    subs = {
        "A": [Subscriber(3, "mention"), Subscriber(4, "dm"), Subscriber(9, "mention")],
        "B": [Subscriber(1, "mention"), Subscriber(3, "mention"), Subscriber(8, "dm")],
    }
    assert mention_users(["B", "A"], subs) == [1, 3, 9]
    assert mention_users(["A", "B"], subs) == [3, 9, 1]
    assert dm_users(["A", "B", "C"], subs) == [4, 8]


# --- posts ----------------------------------------------------------------------------------------


@pytest.fixture
def discord(clock) -> FakeDiscord:
    return FakeDiscord(clock=clock)


async def test_a_post_mentions_exactly_the_subscribers_of_its_artists(db, clock, discord):
    await guild_following(db, clock, ["A", "B", "C"])
    await subscribe(db, clock, [11, 12], "A")
    await subscribe(db, clock, [12, 13], "B")
    await subscribe(db, clock, [14], "C")  # C has no release here
    await subscribe(db, clock, [15], "A", mode="dm")
    await set_guild(db, mention_role_id=77)
    await release(db, clock, "a1", artists=["A"])
    await release(db, clock, "b1", artists=["B", "A"], links=[("B", "single")])
    result = await Deliverer(db, discord, clock=clock).deliver(GUILD)
    [post] = discord.posts(DEFAULT)
    assert post.content == "<@&77> <@11> <@12> <@13>"
    assert post.allowed_mentions == {"parse": [], "users": ["11", "12", "13"], "roles": ["77"], "replied_user": False}
    assert sorted(post.pinged) == [11, 12, 13]
    assert result.dms == 2  # the DM-mode subscriber gets a DM per release (both credit A), not a mention


async def test_the_role_is_on_the_first_post_of_each_channel_only(db, clock, discord):
    await guild_following(db, clock, ["A"])
    await set_guild(db, mention_role_id=77)
    await route(db, "type", "album", 200)
    for i in range(12):
        await release(db, clock, f"s{i:02d}")
    await release(db, clock, "alb", album_type="album", total_tracks=9)
    await Deliverer(db, discord, clock=clock).deliver(GUILD)
    assert [m.content for m in discord.posts(DEFAULT)] == ["<@&77>", None]
    assert [m.content for m in discord.posts(200)] == ["<@&77>"]


async def test_past_the_limits_the_rest_goes_into_follow_ups_once(db, clock, discord):
    await guild_following(db, clock, ["A"])
    users = [BIG + i for i in range(250)]
    await subscribe(db, clock, users, "A")
    await release(db, clock, "a1")
    result = await Deliverer(db, discord, clock=clock).deliver(GUILD)
    posts = discord.posts(DEFAULT)
    assert len(posts) == 3 and posts[0].urls == [url("a1")] and not posts[1].embeds and not posts[2].embeds
    assert result.mention_parts == 2 and result.messages == 1
    pings = discord.all_pings()
    assert set(pings) == set(users) and set(pings.values()) == {1}  # everyone once
    async with db.sessions() as s:
        rows = (await s.execute(MentionPost.__table__.select().order_by(MentionPost.id))).all()
    assert [(r.post_key, r.part, r.status) for r in rows] == [("a1", 1, "sent"), ("a1", 2, "sent")]
    assert (await Deliverer(db, discord, clock=clock).deliver(GUILD)).mention_parts == 0


async def test_a_follow_up_whose_answer_was_lost_is_not_sent_twice(db, clock, discord):
    await guild_following(db, clock, ["A"])
    users = [BIG + i for i in range(200)]
    await subscribe(db, clock, users, "A")
    await release(db, clock, "a1")
    deliverer = Deliverer(db, discord, clock=clock)
    original = discord.send
    calls = 0

    async def lose_second_answer(channel_id, embeds, **kwargs):
        nonlocal calls
        calls += 1
        mid = await original(channel_id, embeds, **kwargs)
        if calls == 2:  # the first follow-up reached Discord, its answer did not reach us
            raise TimeoutError()
        return mid

    discord.send = lose_second_answer
    result = await deliverer.deliver(GUILD)
    assert result.posted == 1
    # settled from the channel (the exact content is there): confirmed, and the next part sent next time
    await deliverer.deliver(GUILD)
    pings = discord.all_pings()
    assert set(pings) == set(users) and set(pings.values()) == {1}
    async with db.sessions() as s:
        statuses = [r.status for r in (await s.execute(MentionPost.__table__.select())).all()]
    assert statuses == ["sent", "sent"]


async def test_a_follow_up_left_claimed_by_a_crash_is_settled_by_its_content(db, clock, discord):
    await guild_following(db, clock, ["A"])
    users = [BIG + i for i in range(300)]
    await subscribe(db, clock, users, "A")
    await release(db, clock, "a1")
    first = Deliverer(db, discord, clock=clock)
    original = discord.send
    sends = 0

    async def die_after_first_part(channel_id, embeds, **kwargs):
        nonlocal sends
        sends += 1
        if sends == 3:  # the second follow-up: the process dies before it reaches Discord
            raise Killed  # stands for the SIGKILL: nothing after it runs
        return await original(channel_id, embeds, **kwargs)

    discord.send = die_after_first_part
    with pytest.raises(Killed):
        await first.deliver(GUILD)
    discord.send = original
    async with db.sessions() as s:
        rows = (await s.execute(MentionPost.__table__.select().order_by(MentionPost.part))).all()
    assert [r.status for r in rows] == ["sent", "claimed", "pending"]

    clock.advance(minutes=1)
    second = Deliverer(db, discord, clock=clock)  # the restarted process
    await second.recover()  # the claimed part is not in the channel: pending again, sent by the delivery
    await second.deliver(GUILD)
    pings = discord.all_pings()
    assert set(pings) == set(users) and set(pings.values()) == {1}


async def test_a_forum_posts_follow_ups_go_into_its_thread(db, clock, discord):
    await guild_following(db, clock, ["A"])
    discord.add_channel(600, "forum")
    await route(db, "type", "single", 600)
    users = [BIG + i for i in range(120)]
    await subscribe(db, clock, users, "A")
    await release(db, clock, "a1")
    await Deliverer(db, discord, clock=clock).deliver(GUILD)
    [thread] = discord.forum_posts(600)
    starter, follow_up = discord.posts(thread.id)
    assert starter.urls == [url("a1")] and starter.content and not follow_up.embeds
    assert sorted(starter.pinged + follow_up.pinged) == users


async def test_a_follow_up_left_claimed_is_not_taken_for_an_earlier_posts_identical_one(db, clock, discord):
    """Two posts about one artist have word-for-word the same follow-up (the same members past the
    limit): a crash before the second follow-up reached Discord must not settle it as the first one."""
    await guild_following(db, clock, ["A"])
    users = [BIG + i for i in range(100)]
    await subscribe(db, clock, users, "A")
    await release(db, clock, "a1")
    await Deliverer(db, discord, clock=clock).deliver(GUILD)  # a1: its post and its follow-up
    clock.advance(minutes=1)
    await release(db, clock, "a2")
    first = Deliverer(db, discord, clock=clock)
    original = discord.send
    sends = 0

    async def die_at_the_follow_up(channel_id, embeds, **kwargs):
        nonlocal sends
        sends += 1
        if sends == 2:  # a2's follow-up: the process dies before it reaches Discord
            raise Killed
        return await original(channel_id, embeds, **kwargs)

    discord.send = die_at_the_follow_up
    with pytest.raises(Killed):
        await first.deliver(GUILD)
    discord.send = original

    clock.advance(minutes=1)
    second = Deliverer(db, discord, clock=clock)  # the restarted process
    await second.recover()
    await second.deliver(GUILD)
    posts = discord.posts(DEFAULT)
    assert [len(p.urls) for p in posts] == [1, 0, 1, 0]  # a1 + its follow-up, a2 + its follow-up
    pings = discord.all_pings()
    assert set(pings) == set(users) and set(pings.values()) == {2}  # everyone once per post
