"""Crossposts in announcement channels: published at once, the 11th in an hour deferred by Discord's
limit and published later, "already crossposted" (40033) counted as done, never published twice."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from bot.delivery import ChannelUnavailable, Deliverer
from bot.delivery.publisher import Publisher
from storage.db import open_database
from tests.bot.delivery.fake_discord import FakeDiscord
from tests.bot.delivery.world import DEFAULT, GUILD, guild_following, release, set_guild
from tests.bot.helpers import ledger


@pytest.fixture
def discord(clock) -> FakeDiscord:
    fake = FakeDiscord(clock=clock)
    fake.add_channel(DEFAULT, "announcement")
    return fake


async def publishing_guild(db, clock) -> None:
    await guild_following(db, clock, ["A"])
    await set_guild(db, publish=True)


async def states(db) -> dict[str, tuple[str | None, dt.datetime | None]]:
    return {r.release_id: (r.publish_state, r.publish_after) for r in await ledger(db, GUILD)}


async def test_the_eleventh_publish_in_an_hour_waits_and_is_published_later(db, clock, discord):
    await publishing_guild(db, clock)
    publisher = Publisher(db, discord, clock=clock)
    deliverer = Deliverer(db, discord, clock=clock, publisher=publisher)
    for i in range(11):  # eleven weekly posts within the hour, one message each
        await release(db, clock, f"s{i:02d}")
        await deliverer.deliver(GUILD)
        clock.advance(minutes=1)
    messages = discord.embedded(DEFAULT)
    assert len(messages) == 11 and discord.crossposts == [m.id for m in messages[:10]]
    state, after = (await states(db))["s10"]
    first_publish = discord.publish_times[DEFAULT][0]
    assert state == "pending" and after == first_publish + dt.timedelta(hours=1)  # when a slot frees
    assert discord.requests["crosspost"] == 11

    assert (await publisher.run_due()).published == 0  # not due yet: nothing asked of Discord
    assert discord.requests["crosspost"] == 11
    clock.advance(seconds=(after - clock()).total_seconds())
    counts = await publisher.run_due()
    assert counts.published == 1 and discord.crossposts[-1] == messages[10].id
    assert {s for s, _ in (await states(db)).values()} == {"done"}
    assert (await publisher.run_due()).published == 0 and len(discord.crossposts) == len(set(discord.crossposts)) == 11


async def test_a_crosspost_published_before_a_crash_is_done_not_published_again(db, clock, discord):
    await publishing_guild(db, clock)
    await release(db, clock, "s1")
    discord.fail["crosspost"] = RuntimeError("killed after the publish, before the ledger heard of it")
    discord.create_then_fail.add("crosspost")
    deliverer = Deliverer(db, discord, clock=clock)
    await deliverer.deliver(GUILD)
    [message] = discord.embedded(DEFAULT)
    assert discord.crossposts == [message.id]  # published; the answer was lost
    assert (await states(db))["s1"][0] == "pending"
    clock.advance(minutes=2)  # the retry falls due
    counts = await Publisher(db, discord, clock=clock).run_due()
    assert (counts.published, counts.already) == (0, 1)  # Discord: 40033 "already crossposted"
    assert (await states(db))["s1"] == ("done", None) and discord.crossposts == [message.id]


async def test_a_transient_failure_is_retried_and_a_refusal_ends_it(db, clock, discord):
    await publishing_guild(db, clock)
    await release(db, clock, "s1")
    discord.fail["crosspost"] = RuntimeError("502 Bad Gateway")
    await Deliverer(db, discord, clock=clock).deliver(GUILD)
    state, after = (await states(db))["s1"]
    assert state == "pending" and after == clock() + dt.timedelta(seconds=Publisher.retry_seconds)
    clock.advance(seconds=Publisher.retry_seconds)
    assert (await Publisher(db, discord, clock=clock).run_due()).published == 1

    await release(db, clock, "s2")
    discord.fail["crosspost"] = ChannelUnavailable("the message or its channel no longer exists", status=404)
    await Deliverer(db, discord, clock=clock).deliver(GUILD)
    assert (await states(db))["s2"] == ("failed", None)


async def second_engine(db):
    """Another process's engine on the same database."""
    return await open_database(db.engine.url.render_as_string(hide_password=False), migrate=False)


async def test_two_publishers_on_two_engines_publish_a_message_once(db, clock, discord):
    await publishing_guild(db, clock)
    await release(db, clock, "s1")
    discord.fail["crosspost"] = RuntimeError("502 Bad Gateway")  # the immediate attempt fails: retried later
    await Deliverer(db, discord, clock=clock).deliver(GUILD)
    clock.advance(seconds=Publisher.retry_seconds)
    other = await second_engine(db)
    try:
        one, two = Publisher(db, discord, clock=clock), Publisher(other, discord, clock=clock)
        counts = await asyncio.gather(one.run_due(), two.run_due())
    finally:
        await other.close()
    assert sum(c.published for c in counts) == 1 and discord.crossposts == [discord.embedded(DEFAULT)[0].id]
    assert discord.requests["crosspost"] == 2  # the failed immediate one, then one of the two publishers
