"""Members on the Discord fake, driven by the real discord.py client: direct messages
(``User.send``/``Member.send``; closed DMs 50007, Unknown User 10013, Unknown Member 10007 after a
member left), who a message pings (``mentions``/``mention_roles`` under ``allowed_mentions``),
the ``allowed_mentions`` rules, and the optional per-channel send limit that discord.py retries."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
import discord
import pytest
import pytest_asyncio
import yarl

from fakes.discord_fake import DiscordFake, Permission, validate_message_body

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60)]
TIMEOUT = 5.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world():
    """A guild with a channel, members alice (DMs open), bob (DMs closed), carol and dave, a
    mentionable role "Listeners" and a plain role "Staff"; a bot with the members intent."""
    old_base, old_gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    fake = DiscordFake()
    await fake.start()
    guild = fake.add_guild("Members Guild")
    channel = fake.add_channel(guild, "general")
    listeners = fake.add_role(guild, "Listeners", mentionable=True)
    staff = fake.add_role(guild, "Staff")
    alice = fake.add_member(guild, name="alice", roles=(listeners,))
    bob = fake.add_member(guild, name="bob", dms_open=False)
    carol = fake.add_member(guild, name="carol")
    dave = fake.add_member(guild, name="dave")
    discord.http.Route.BASE = fake.api_base_url
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    intents = discord.Intents.default()
    intents.members = True
    bot = discord.Client(intents=intents, chunk_guilds_at_startup=False, guild_ready_timeout=0.1)
    task = asyncio.create_task(bot.start(fake.token))
    try:
        await fake.wait_for_ready(TIMEOUT)
        await asyncio.wait_for(bot.wait_until_ready(), TIMEOUT)
        yield {
            "fake": fake,
            "bot": bot,
            "guild": guild,
            "channel": channel,
            "listeners": listeners,
            "staff": staff,
            "alice": alice,
            "bob": bob,
            "carol": carol,
            "dave": dave,
        }
    finally:
        await bot.close()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 2)
        await fake.stop()
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway


async def api(fake: DiscordFake, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A raw authorised request to the fake's API; ``(status, decoded JSON)``."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, fake.api_base_url + path, json=body, headers={"Authorization": f"Bot {fake.token}"}
        ) as resp,
    ):
        return resp.status, await resp.json()


async def test_user_and_member_send_open_a_dm(world):
    bot, fake = world["bot"], world["fake"]
    user = await bot.fetch_user(world["alice"])  # GET /users/{id}
    first = await user.send("Your artist Nova released an album")
    assert isinstance(first.channel, discord.DMChannel) and first.channel.recipient is not None
    assert first.channel.recipient.id == world["alice"]
    member = await bot.get_guild(world["guild"]).fetch_member(world["alice"])
    second = await member.send(embed=discord.Embed(title="First Light"))
    assert second.channel.id == first.channel.id
    assert [m["content"] for m in fake.dms(world["alice"])] == ["Your artist Nova released an album", ""]
    assert fake.dms(world["alice"])[1]["embeds"][0]["title"] == "First Light"
    assert "guild_id" not in fake.dms(world["alice"])[0]

    # the same DM channel for the same recipient, whoever asks
    status, channel = await api(fake, "POST", "/users/@me/channels", {"recipient_id": str(world["alice"])})
    assert status == 200 and channel["id"] == str(first.channel.id) and channel["type"] == 1
    assert channel["recipients"][0]["id"] == str(world["alice"])
    with pytest.raises(discord.HTTPException) as too_long:
        await user.send("x" * 2001)
    assert too_long.value.code == 50035


async def test_closed_dms_answer_50007(world):
    bot, fake = world["bot"], world["fake"]
    member = await bot.get_guild(world["guild"]).fetch_member(world["bob"])
    with pytest.raises(discord.Forbidden) as closed:
        await member.send("hello?")
    assert closed.value.status == 403 and closed.value.code == 50007
    assert closed.value.text == "Cannot send messages to this user"
    assert fake.dms(world["bob"]) == []
    fake.set_dms_open(world["bob"], True)
    try:
        await member.send("now it works")
    finally:
        fake.set_dms_open(world["bob"], False)
    assert [m["content"] for m in fake.dms(world["bob"])] == ["now it works"]


async def test_unknown_user_answers_10013(world):
    bot, fake = world["bot"], world["fake"]
    nobody = fake.snowflake()
    with pytest.raises(discord.NotFound) as unknown:
        await bot.fetch_user(nobody)
    assert unknown.value.code == 10013
    status, body = await api(fake, "POST", "/users/@me/channels", {"recipient_id": str(nobody)})
    assert status == 404 and body == {"message": "Unknown User", "code": 10013}
    status, body = await api(fake, "GET", "/users/not-a-snowflake")
    assert status == 400 and body["code"] == 50035


async def test_a_member_who_left(world):
    """GET member answers 10007; the user stays known; a DM to someone sharing no guild is refused."""
    bot, fake = world["bot"], world["fake"]
    guild = bot.get_guild(world["guild"])
    assert guild.get_member(world["carol"]) is not None  # members intent: GUILD_CREATE listed her
    user = await bot.fetch_user(world["carol"])
    await user.send("before leaving")
    removed = bot.wait_for("raw_member_remove", timeout=TIMEOUT)
    fake.remove_member(world["guild"], world["carol"])
    assert (await removed).user.id == world["carol"]  # GUILD_MEMBER_REMOVE reached the bot
    assert guild.get_member(world["carol"]) is None
    with pytest.raises(discord.NotFound) as gone:
        await guild.fetch_member(world["carol"])
    assert gone.value.code == 10007
    assert (await bot.fetch_user(world["carol"])).name == "carol"
    with pytest.raises(discord.Forbidden) as no_shared_guild:
        await user.send("after leaving")
    assert no_shared_guild.value.code == 50007
    assert [m["content"] for m in fake.dms(world["carol"])] == ["before leaving"]
    with pytest.raises(KeyError):
        fake.remove_member(world["guild"], world["carol"])


async def test_mentions_follow_allowed_mentions(world):
    bot, fake = world["bot"], world["fake"]
    channel = bot.get_channel(world["channel"])
    alice, dave = world["alice"], world["dave"]
    content = f"<@{alice}> <@!{dave}> <@&{world['listeners']}> <@&{world['staff']}> @everyone"

    # no allowed_mentions: every kind is parsed; a non-mentionable role and @everyone need MENTION_EVERYONE
    sent = await channel.send(content)
    stored = fake.channel_messages(world["channel"])[-1]
    assert [int(u["id"]) for u in stored["mentions"]] == [alice, dave]
    assert stored["mentions"][0]["member"]["roles"] == [str(world["listeners"])]
    assert stored["mention_roles"] == [str(world["listeners"])] and stored["mention_everyone"] is False
    assert {m.id for m in sent.mentions} == {alice, dave} and [r.id for r in sent.role_mentions] == [world["listeners"]]

    # only the listed user and roles
    only = discord.AllowedMentions(
        everyone=True, users=[discord.Object(id=dave)], roles=[discord.Object(id=world["staff"])]
    )
    await channel.send(content, allowed_mentions=only)
    stored = fake.channel_messages(world["channel"])[-1]
    assert [int(u["id"]) for u in stored["mentions"]] == [dave]
    assert stored["mention_roles"] == [] and stored["mention_everyone"] is False  # Staff is not mentionable

    fake.set_permission_overwrite(world["channel"], fake.bot_user_id, allow=Permission.MENTION_EVERYONE)
    try:
        await channel.send(content, allowed_mentions=only)
        stored = fake.channel_messages(world["channel"])[-1]
        assert stored["mention_roles"] == [str(world["staff"])] and stored["mention_everyone"] is True
        await channel.send(content, allowed_mentions=discord.AllowedMentions.none())
        stored = fake.channel_messages(world["channel"])[-1]
        assert stored["mentions"] == [] and stored["mention_roles"] == [] and stored["mention_everyone"] is False
    finally:
        fake.set_permission_overwrite(world["channel"], fake.bot_user_id)

    # a DM parses mentions too (users only: a DM has no roles)
    user = await bot.fetch_user(alice)
    await user.send(f"<@{alice}> your DM")
    assert [u["id"] for u in fake.dms(alice)[-1]["mentions"]] == [str(alice)]


async def test_allowed_mentions_rules(world):
    fake = world["fake"]
    path = f"/channels/{world['channel']}/messages"
    alice = str(world["alice"])
    status, body = await api(
        fake, "POST", path, {"content": "x", "allowed_mentions": {"parse": ["users"], "users": [alice]}}
    )
    assert status == 400 and body["code"] == 50035
    assert body["errors"]["allowed_mentions"]["_errors"][0]["code"] == "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE"
    status, body = await api(
        fake, "POST", path, {"content": "x", "allowed_mentions": {"parse": [], "users": [str(i) for i in range(101)]}}
    )
    assert status == 400 and "100 or fewer" in str(body["errors"]["allowed_mentions"]["users"])
    status, body = await api(fake, "POST", path, {"content": "x", "allowed_mentions": {"parse": ["channels"]}})
    assert (
        status == 400 and body["errors"]["allowed_mentions"]["parse"]["0"]["_errors"][0]["code"] == "BASE_TYPE_CHOICES"
    )
    # parse users with an empty users list, and a roles list beside parse users, are fine
    ok = {"parse": ["users", "everyone"], "users": [], "roles": [str(world["listeners"])]}
    status, message = await api(fake, "POST", path, {"content": f"<@{alice}>", "allowed_mentions": ok})
    assert status == 200 and [u["id"] for u in message["mentions"]] == [alice]
    assert validate_message_body({"content": "x", "allowed_mentions": {"roles": ["1", "1"]}})
    assert validate_message_body({"content": "x", "allowed_mentions": {"parse": ["roles"], "roles": ["1"]}})
    assert validate_message_body({"content": "x", "allowed_mentions": {"parse": ["roles"], "users": ["1"]}}) == {}


async def test_send_rate_limit_is_retried_by_discord_py(world):
    """Switched on, 5 messages per window per channel: the sixth gets a 429 (scope ``user``) that
    discord.py sleeps out (``retry_after`` < 1 s here) and sends again; another channel has its
    own window."""
    bot, fake = world["bot"], world["fake"]
    channel = bot.get_channel(world["channel"])
    user = await bot.fetch_user(world["alice"])
    await user.send("open the DM channel first")
    path = f"/channels/{world['channel']}/messages"
    fake.set_send_rate_limit(5, per=1.0)
    try:
        before = len(fake.requests("POST", path))
        sent = [await channel.send(f"burst {i}") for i in range(5)]
        dm = await user.send("another channel has its own window")
        assert [r.status for r in fake.requests("POST", f"/channels/{dm.channel.id}/messages")][-1] == 200
        sent.append(await channel.send("the sixth"))
        statuses = [r.status for r in fake.requests("POST", path)[before:]]
        assert statuses[:5] == [200] * 5 and statuses[5] == 429 and statuses[-1] == 200
        assert [m["id"] for m in fake.channel_messages(world["channel"])[-6:]] == [str(m.id) for m in sent]
        fake.set_send_rate_limit(1, per=30.0)  # the raw answer, on a window nothing leaves during the test
        assert (await api(fake, "POST", path, {"content": "x"}))[0] == 200
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                fake.api_base_url + path, json={"content": "x"}, headers={"Authorization": f"Bot {fake.token}"}
            ) as resp,
        ):
            body = await resp.json()
            assert resp.status == 429 and resp.headers["Via"] and resp.headers["X-RateLimit-Scope"] == "user"
            assert 29 < body["retry_after"] <= 30 and body["global"] is False
    finally:
        fake.set_send_rate_limit(None)
    status, _ = await api(fake, "POST", path, {"content": "x"})
    assert status == 200  # switched off again
