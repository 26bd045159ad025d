"""The DM outbox: one DM per (member, release) even across guilds, paced without holding up channel
posts, 50007 → closed and switched to mentions, 10013/10007 → forgotten, transient failures retried
with back-off, crashes settled from the DM channel, two outboxes never sending one row twice."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import select

from bot.delivery import Deliverer
from bot.delivery.dm_outbox import DM_CONTENT, DmOutbox
from storage.db import open_database
from storage.models import DmDelivery, Member, Subscription
from tests.bot.delivery.fake_discord import FakeDiscord
from tests.bot.delivery.world import GUILD, guild_following, release, subscribe, url


class Sleeper:
    """The outbox's ``sleep``: moves the test's clock instead of waiting (and lets other tasks run)."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(seconds=seconds)
        await asyncio.sleep(0)


@pytest.fixture
def discord(clock) -> FakeDiscord:
    return FakeDiscord(clock=clock)


def outbox(db, discord, clock, **kwargs) -> DmOutbox:
    return DmOutbox(db, discord, clock=clock, sleep=Sleeper(clock), **kwargs)


async def dm_rows(db) -> list[DmDelivery]:
    async with db.sessions() as s:
        return list((await s.scalars(select(DmDelivery).order_by(DmDelivery.id))).all())


async def posted_with_dm_subscribers(db, clock, discord, users, releases=("r1",)) -> None:
    await guild_following(db, clock, ["A"])
    await subscribe(db, clock, users, "A", mode="dm")
    for rid in releases:
        await release(db, clock, rid)
    await Deliverer(db, discord, clock=clock).deliver(GUILD)


async def test_a_dm_per_member_and_release_once_even_across_guilds(db, clock, discord):
    await guild_following(db, clock, ["A"], guild_id=1, channel_id=100)
    await guild_following(db, clock, ["A"], guild_id=2, channel_id=200)
    await subscribe(db, clock, [7], "A", mode="dm", guild_id=1)
    await subscribe(db, clock, [7], "A", mode="dm", guild_id=2)
    await release(db, clock, "r1")
    deliverer = Deliverer(db, discord, clock=clock)
    assert (await deliverer.deliver(1)).dms == 1 and (await deliverer.deliver(2)).dms == 1  # asked twice
    assert [(r.user_id, r.release_id, r.guild_id, r.status) for r in await dm_rows(db)] == [(7, "r1", 1, "pending")]
    assert discord.posts(100)[0].content is None  # a DM-mode subscriber is not mentioned
    counts = await outbox(db, discord, clock).drain()
    assert counts.sent == 1
    [dm] = discord.dms(7)
    assert dm.urls == [url("r1")] and dm.content == DM_CONTENT and dm.nonce and len(dm.nonce) <= 25
    [row] = await dm_rows(db)
    assert row.status == "sent" and row.message_id == dm.id and row.sent_at == clock()
    assert (await outbox(db, discord, clock).drain()).sent == 0


async def test_closed_dms_switch_the_member_to_mentions(db, clock, discord):
    discord.dms_closed.add(8)
    await posted_with_dm_subscribers(db, clock, discord, [7, 8], releases=("r1", "r2"))
    start = clock()
    counts = await outbox(db, discord, clock).drain()
    assert counts.sent == 2 and counts.closed == 2  # 8's second DM is not even tried
    assert discord.requests["send_dm"] == 3
    assert {(r.user_id, r.release_id): r.status for r in await dm_rows(db)} == {
        (7, "r1"): "sent",
        (7, "r2"): "sent",
        (8, "r1"): "closed",
        (8, "r2"): "closed",
    }
    async with db.sessions() as s:
        member = await s.get(Member, (GUILD, 8))
    assert member.mode == "mention" and member.dm_notice_pending
    refused_at = discord.dm_refused_at[8]
    assert start < refused_at < clock()  # the second paced DM, not the pass's start or end
    assert member.dm_closed_at == refused_at  # when Discord answered 50007
    await release(db, clock, "r3")  # from now on 8 is mentioned
    await Deliverer(db, discord, clock=clock).deliver(GUILD)
    assert discord.posts(100)[-1].pinged == [8]


async def test_a_member_who_left_gets_50007_and_is_forgotten_there_not_switched(db, clock, discord):
    """Discord answers 50007 to a DM of someone who shares no server with the bot any more; Get Guild
    Member then says 10007: their subscriptions in that guild go, nobody is switched to mentions."""
    discord.dms_closed.update({8, 9})
    discord.departed.add((GUILD, 8))  # 8 left; 9 is still a member whose DMs are closed
    await posted_with_dm_subscribers(db, clock, discord, [7, 8, 9])
    counts = await outbox(db, discord, clock).drain()
    assert (counts.sent, counts.gone, counts.closed) == (1, 1, 1)
    assert {r.user_id: r.status for r in await dm_rows(db)} == {7: "sent", 8: "gone", 9: "closed"}
    async with db.sessions() as s:
        subs = (await s.execute(select(Subscription.user_id))).scalars().all()
        assert sorted(subs) == [7, 9]
        assert await s.get(Member, (GUILD, 8)) is None
        still = await s.get(Member, (GUILD, 9))
        assert still is not None and still.mode == "mention" and still.dm_notice_pending


async def test_unknown_users_and_members_who_left_are_forgotten(db, clock, discord):
    await guild_following(db, clock, ["A"])
    await guild_following(db, clock, ["A"], guild_id=2, channel_id=200)
    await subscribe(db, clock, [7, 8, 9], "A", mode="dm")
    await subscribe(db, clock, [8], "B", mode="dm")
    await subscribe(db, clock, [7, 8], "A", guild_id=2)  # 8 left guild 1 only; 7 is gone everywhere
    discord.unknown_users.add(7)
    discord.left_members.add(8)
    await release(db, clock, "r1")
    await Deliverer(db, discord, clock=clock).deliver(GUILD)
    counts = await outbox(db, discord, clock).drain()
    assert (counts.sent, counts.gone) == (1, 2)
    assert {r.user_id: r.status for r in await dm_rows(db)} == {7: "gone", 8: "gone", 9: "sent"}
    async with db.sessions() as s:
        subs = (await s.execute(select(Subscription.guild_id, Subscription.user_id, Subscription.artist_id))).all()
    assert sorted(subs) == [(GUILD, 9, "A"), (2, 8, "A")]


async def test_a_transient_failure_is_retried_with_back_off(db, clock, discord):
    await posted_with_dm_subscribers(db, clock, discord, [7])
    discord.fail["send_dm"] = RuntimeError("503")
    box = outbox(db, discord, clock)
    counts = await box.drain()
    assert counts.retried == 1 and discord.dms(7) == []
    [row] = await dm_rows(db)
    assert row.status == "pending" and row.attempts == 1
    assert row.next_attempt_at == clock() + dt.timedelta(seconds=30)
    assert (await box.drain()).sent == 0  # not due yet
    clock.advance(seconds=30)
    assert (await box.drain()).sent == 1 and len(discord.dms(7)) == 1
    assert [DmOutbox.backoff(n) for n in (1, 2, 3, 20)] == [30, 60, 120, 6 * 3600]


async def test_a_dm_left_claimed_by_a_crash_is_settled_from_the_dm_channel(db, clock, discord):
    await posted_with_dm_subscribers(db, clock, discord, [7, 8])
    dead = outbox(db, discord, clock)
    original = discord.send_dm
    sends = 0

    async def die_after_first(channel_id, embeds, **kwargs):
        nonlocal sends
        sends += 1
        mid = await original(channel_id, embeds, **kwargs)
        if sends == 1:
            raise Killed  # sent, then the process dies before confirming
        return mid

    discord.send_dm = die_after_first
    with pytest.raises(Killed):
        await dead.drain()
    discord.send_dm = original
    assert [r.status for r in await dm_rows(db)] == ["claimed", "claimed"]  # one sent, one never tried

    clock.advance(minutes=1)
    restarted = outbox(db, discord, clock)
    counts = await restarted.drain()
    assert (counts.settled_sent, counts.settled_pending, counts.sent) == (1, 1, 1)
    assert len(discord.dms(7)) == 1 and len(discord.dms(8)) == 1
    assert {r.status for r in await dm_rows(db)} == {"sent"}


class Killed(BaseException):
    """The process dies here (no ``except Exception`` catches it)."""


async def test_dms_are_paced_and_never_hold_up_channel_posts(db, clock, discord):
    await guild_following(db, clock, ["A"], guild_id=1, channel_id=100)
    await guild_following(db, clock, ["B"], guild_id=2, channel_id=200)
    await subscribe(db, clock, range(1000, 2000), "A", mode="dm", guild_id=1)
    await release(db, clock, "a1", artists=["A"])
    deliverer = Deliverer(db, discord, clock=clock)
    assert (await deliverer.deliver(1)).dms == 1000  # the post is out; its DMs are only enqueued
    assert discord.requests["send_dm"] == 0

    start = clock()
    box = outbox(db, discord, clock, per_second=2.0)
    drain = asyncio.create_task(box.drain())
    await asyncio.sleep(0)
    await release(db, clock, "b1", artists=["B"])
    posted = await deliverer.deliver(2)  # meanwhile, another guild's weekly post
    sent_when_posted = discord.requests["send_dm"]
    assert posted.posted == 1 and discord.urls(200) == [url("b1")]
    assert sent_when_posted < 100  # the post did not wait for the fan-out
    counts = await drain
    assert counts.sent == 1000 and len({m.id for u in range(1000, 2000) for m in discord.dms(u)}) == 1000
    elapsed = (clock() - start).total_seconds()
    assert 499 <= elapsed <= 501  # 1,000 DMs at 2 a second: the first at once, then one every 0.5 s
    assert max(box.sleep.slept) <= 0.5 + 1e-9  # type: ignore[attr-defined]


async def test_pacing_waits_one_interval_at_most_when_the_clock_stands_still(db, clock, discord):
    """A clock that does not move while the outbox sleeps (a simulated clock, as the demo's; a wall
    clock stepped back) does not make each wait longer than the last: 60 DMs at 2 a second wait
    59 × 0.5 s, not 0.5 + 1 + 1.5 + … s."""
    await posted_with_dm_subscribers(db, clock, discord, range(100, 160))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # real time passes; the clock stays where it is
        slept.append(seconds)
        await asyncio.sleep(0)

    counts = await DmOutbox(db, discord, clock=clock, sleep=sleep, per_second=2.0).drain()
    assert counts.sent == 60
    assert len(slept) == 59 and max(slept) <= 0.5 + 1e-9


async def test_two_outboxes_on_two_engines_never_send_one_row_twice(db, clock, discord):
    await posted_with_dm_subscribers(db, clock, discord, range(100, 160), releases=("r1", "r2"))
    other = await open_database(db.engine.url.render_as_string(hide_password=False), migrate=False)
    try:
        one = outbox(db, discord, clock, per_second=20.0)
        two = outbox(other, discord, clock, per_second=20.0)
        one.batch = two.batch = 3
        counts = await asyncio.gather(one.drain(), two.drain())
    finally:
        await other.close()
    assert sum(c.sent for c in counts) == 120 and all(c.sent for c in counts)  # both took part
    assert discord.requests["send_dm"] == 120  # no row sent twice
    for user in range(100, 160):
        assert sorted(u for m in discord.dms(user) for u in m.urls) == [url("r1"), url("r2")]
