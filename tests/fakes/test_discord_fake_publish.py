"""Announcement channels (type 5) and crossposting on the Discord fake, driven by the real discord.py
client: ``Message.publish()`` sets the CROSSPOSTED flag, the permission and channel-type errors, and
the limit of 10 publishes per channel per hour — on an injected clock, so no test waits an hour.

discord.py and the long 429: with ``max_ratelimit_timeout`` set (at least 30 s) on the client, a
``retry_after`` above it raises ``discord.RateLimited`` at once; without it the client sleeps the
whole ``retry_after`` and retries (up to 5 tries), i.e. ``publish()`` hangs for most of an hour.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import discord
import pytest
import pytest_asyncio
import yarl

from fakes.discord_fake import MESSAGE_FLAG_CROSSPOSTED, DiscordFake, Permission

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60)]
TIMEOUT = 5.0


class ManualClock:
    """The fake's injected ``clock``: seconds that only move when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world():
    """Two announcement channels, a text channel, a member and a bot with ``max_ratelimit_timeout=30``."""
    old_base, old_gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    clock = ManualClock()
    fake = DiscordFake(clock=clock)
    await fake.start()
    guild = fake.add_guild("News Guild")
    news = fake.add_channel(guild, "news", kind="announcement")
    other_news = fake.add_channel(guild, "more-news", kind="announcement")
    general = fake.add_channel(guild, "general")
    member = fake.add_member(guild, name="alice")
    discord.http.Route.BASE = fake.api_base_url
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    bot = discord.Client(
        intents=discord.Intents.default(),
        chunk_guilds_at_startup=False,
        guild_ready_timeout=0.1,
        max_ratelimit_timeout=30.0,
    )
    task = asyncio.create_task(bot.start(fake.token))
    try:
        await fake.wait_for_ready(TIMEOUT)
        await asyncio.wait_for(bot.wait_until_ready(), TIMEOUT)
        yield {
            "fake": fake,
            "clock": clock,
            "bot": bot,
            "guild": guild,
            "news": news,
            "other_news": other_news,
            "general": general,
            "member": member,
        }
    finally:
        await bot.close()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 2)
        await fake.stop()
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway


@pytest.fixture
def fresh_hour(world):
    """Start each test with every publish window expired."""
    world["clock"].advance(7200)


async def test_announcement_channel_reaches_the_bot(world):
    channel = world["bot"].get_channel(world["news"])
    assert isinstance(channel, discord.TextChannel) and channel.is_news()
    fetched = await world["bot"].fetch_channel(world["news"])  # GET /channels/{id}
    assert fetched.type is discord.ChannelType.news and fetched.overwrites == {}


async def test_publish_sets_the_crossposted_flag(world, fresh_hour):
    bot, fake = world["bot"], world["fake"]
    channel = bot.get_channel(world["news"])
    message = await channel.send("New single: Signal")
    async with asyncio.timeout(TIMEOUT):
        async with asyncio.TaskGroup() as group:
            edited = group.create_task(bot.wait_for("raw_message_edit", check=lambda e: e.message_id == message.id))
            await message.publish()  # POST .../crosspost
    assert edited.result().data["flags"] & MESSAGE_FLAG_CROSSPOSTED  # MESSAGE_UPDATE reached the bot
    fetched = await channel.fetch_message(message.id)
    assert fetched.flags.crossposted
    assert fake.crossposted(world["news"])[-1] == message.id
    response = fake.requests("POST", f"/messages/{message.id}/crosspost")[-1]
    assert response.status == 200

    with pytest.raises(discord.HTTPException) as twice:
        await message.publish()
    assert twice.value.status == 400 and twice.value.code == 40033
    assert "already been crossposted" in twice.value.text


async def test_only_announcement_messages_can_be_published(world, fresh_hour):
    message = await world["bot"].get_channel(world["general"]).send("not news")
    with pytest.raises(discord.HTTPException) as wrong_type:
        await message.publish()
    assert wrong_type.value.status == 400 and wrong_type.value.code == 50024
    assert world["fake"].crossposted(world["general"]) == []


async def test_publish_permissions(world, fresh_hour):
    """Own messages need Send Messages, another member's Manage Messages."""
    bot, fake = world["bot"], world["fake"]
    channel = bot.get_channel(world["news"])
    theirs = fake.add_user_message(world["news"], world["member"], "their announcement")
    their_message = await channel.fetch_message(int(theirs["id"]))
    assert their_message.author.id == world["member"]
    with pytest.raises(discord.Forbidden) as forbidden:
        await their_message.publish()
    assert forbidden.value.code == 50013

    fake.set_permission_overwrite(world["news"], fake.bot_user_id, allow=Permission.MANAGE_MESSAGES)
    try:
        fetched = await bot.fetch_channel(world["news"])  # GET /channels/{id} carries the overwrite
        assert fetched.overwrites_for(discord.Object(id=fake.bot_user_id)).manage_messages is True
        await their_message.publish()
    finally:
        fake.set_permission_overwrite(world["news"], fake.bot_user_id)
    assert their_message.id in fake.crossposted(world["news"])

    own = await channel.send("ours")
    fake.set_permission_overwrite(world["news"], fake.bot_user_id, deny=Permission.SEND_MESSAGES)
    try:
        with pytest.raises(discord.Forbidden):
            await own.publish()
    finally:
        fake.set_permission_overwrite(world["news"], fake.bot_user_id)
    assert own.id not in fake.crossposted(world["news"])


async def test_the_eleventh_publish_in_an_hour_raises_rate_limited(world, fresh_hour):
    bot, fake, clock = world["bot"], world["fake"], world["clock"]
    news, other = bot.get_channel(world["news"]), bot.get_channel(world["other_news"])
    messages = [await news.send(f"release {i}") for i in range(12)]
    for message in messages[:10]:
        await message.publish()
        clock.advance(60)  # ten publishes at minutes 0..9
    with pytest.raises(discord.RateLimited) as limited:
        await messages[10].publish()
    # rolling window: a slot frees an hour after the first publish, 50 minutes from now
    assert limited.value.retry_after == pytest.approx(3000.0)
    rejected = fake.requests("POST", f"/messages/{messages[10].id}/crosspost")[-1]
    assert rejected.status == 429
    assert messages[10].id not in fake.crossposted(world["news"])

    # the limit is per channel
    elsewhere = await other.send("elsewhere")
    await elsewhere.publish()
    assert fake.crossposted(world["other_news"]) == [elsewhere.id]

    clock.advance(2000)
    with pytest.raises(discord.RateLimited) as still:
        await messages[10].publish()
    assert still.value.retry_after == pytest.approx(1000.0)
    clock.advance(1000)
    await messages[10].publish()  # the first publish left the window
    with pytest.raises(discord.RateLimited) as next_slot:
        await messages[11].publish()
    assert next_slot.value.retry_after == pytest.approx(60.0)  # the second one leaves a minute later
    assert fake.crossposted(world["news"])[-1] == messages[10].id


async def test_the_429_is_what_discord_py_needs(world, fresh_hour):
    """The raw 429: ``Via``, JSON ``retry_after`` and ``global: false``, scope ``shared``."""
    bot, fake = world["bot"], world["fake"]
    news = bot.get_channel(world["news"])
    for i in range(10):
        await (await news.send(f"burst {i}")).publish()
    extra = await news.send("one too many")
    with pytest.raises(discord.RateLimited):
        await extra.publish()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{fake.api_base_url}/channels/{world['news']}/messages/{extra.id}/crosspost",
            headers={"Authorization": f"Bot {fake.token}"},
        ) as resp,
    ):
        body = await resp.json()
        assert resp.status == 429 and resp.headers["Content-Type"] == "application/json"
        assert resp.headers["Via"] and resp.headers["X-RateLimit-Scope"] == "shared"
        assert int(resp.headers["Retry-After"]) == 3600
        assert body == {"message": "You are being rate limited.", "retry_after": 3600.0, "global": False}


async def test_without_max_ratelimit_timeout_discord_py_sleeps_it_out(world, fresh_hour):
    """A client without ``max_ratelimit_timeout`` sleeps ``retry_after`` (here an hour) before retrying."""
    fake = world["fake"]
    news = world["bot"].get_channel(world["news"])
    for i in range(10):
        await (await news.send(f"fill {i}")).publish()
    waiting = await news.send("waits")
    client = discord.Client(intents=discord.Intents.none())
    await client.login(fake.token)
    try:
        channel = await client.fetch_channel(world["news"])
        assert isinstance(channel, discord.TextChannel)
        message = await channel.fetch_message(waiting.id)
        publish = asyncio.create_task(message.publish())
        done, _ = await asyncio.wait({publish}, timeout=0.5)
        assert not done  # asleep for retry_after (an hour), neither failed nor retried
        assert [r.status for r in fake.requests("POST", f"/messages/{waiting.id}/crosspost")] == [429]
        publish.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publish
    finally:
        await client.close()
