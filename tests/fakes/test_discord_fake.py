"""The Discord fake, driven by the real discord.py client (a ``commands.Bot`` with app commands)."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import discord
import pytest
import pytest_asyncio
import yarl
from discord import app_commands
from discord.ext import commands

from fakes.discord_fake import MESSAGE_FLAG_EPHEMERAL, DiscordFake, InteractionRejected

pytestmark = pytest.mark.asyncio(loop_scope="module")

ARTISTS = ["Pitbull", "Pink Floyd", "Prince", "Portishead", "Radiohead"]
TIMEOUT = 5.0


class ProbeCog(commands.Cog):
    """A tiny cog: an immediate reply (optionally ephemeral), an autocomplete, a deferral + follow-up,
    and a group subcommand that defers and then edits the original response."""

    settings = app_commands.Group(name="settings", description="Guild settings")

    @app_commands.command(name="echo", description="Echo some text")
    @app_commands.describe(text="what to echo", secret="reply only to you")
    async def echo(self, interaction: discord.Interaction, text: str, secret: bool = False) -> None:
        await interaction.response.send_message(f"echo: {text}", ephemeral=secret)

    @app_commands.command(name="pick", description="Pick an artist")
    async def pick(self, interaction: discord.Interaction, artist: str) -> None:
        await interaction.response.send_message(embed=discord.Embed(title=artist, description="picked"))

    @pick.autocomplete("artist")
    async def pick_artist(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        if current == "many":
            return [app_commands.Choice(name=f"n{i}", value=f"v{i}") for i in range(30)]
        return [app_commands.Choice(name=a, value=a) for a in ARTISTS if current.lower() in a.lower()]

    @app_commands.command(name="post", description="Deferred: post into a channel")
    async def post(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await asyncio.sleep(0.05)
        await interaction.followup.send(f"posting to {channel.name} ({channel.id})")

    @settings.command(name="show", description="Show the settings")
    async def settings_show(self, interaction: discord.Interaction, day: int = 4) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.edit_original_response(content=f"day={day}")


class ProbeBot(commands.Bot):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py sleeps 5 s before every non-initial IDENTIFY (Discord's identify rate limit);
        against the fake that only slows the re-identify test down."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world():
    """The fake, a guild with channels and members, and a connected bot whose commands are synced."""
    old_base, old_gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    fake = DiscordFake()
    await fake.start()
    guild_id = fake.add_guild("Test Guild")
    general = fake.add_channel(guild_id, "general")
    releases = fake.add_channel(guild_id, "releases")
    locked = fake.add_channel(guild_id, "locked", bot_can_send=False)
    member = fake.add_member(guild_id, name="alice")
    manager = fake.add_member(guild_id, name="bob", manage_guild=True)
    discord.http.Route.BASE = fake.api_base_url
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)

    bot = ProbeBot(
        command_prefix="!", intents=discord.Intents.default(), chunk_guilds_at_startup=False, guild_ready_timeout=0.1
    )
    await bot.add_cog(ProbeCog())
    task = asyncio.create_task(bot.start(fake.token))
    try:
        await fake.wait_for_ready(TIMEOUT)
        await asyncio.wait_for(bot.wait_until_ready(), TIMEOUT)
        synced = await asyncio.wait_for(bot.tree.sync(), TIMEOUT)
        yield {
            "fake": fake,
            "bot": bot,
            "guild": guild_id,
            "general": general,
            "releases": releases,
            "locked": locked,
            "member": member,
            "manager": manager,
            "synced": synced,
        }
    finally:
        await bot.close()
        task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 2)
        await fake.stop()
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


async def test_wrong_token_login_fails(world):
    client = discord.Client(intents=discord.Intents.default())
    try:
        with pytest.raises(discord.LoginFailure):
            await asyncio.wait_for(client.login("not-the-token"), TIMEOUT)
    finally:
        await client.close()
    assert world["fake"].requests("GET", "/users/@me")[-1].status == 401


async def test_bot_sees_guild_channels_and_permissions(world):
    bot, fake = world["bot"], world["fake"]
    guild = bot.get_guild(world["guild"])
    assert guild is not None and guild.name == "Test Guild"
    assert bot.user.id == fake.bot_user_id and bot.application_id == fake.application_id
    assert {c.name for c in guild.text_channels} == {"general", "releases", "locked"}
    assert guild.me is not None and guild.member_count == 4  # bot, owner, alice, bob
    assert guild.get_channel(world["releases"]).permissions_for(guild.me).send_messages
    locked = guild.get_channel(world["locked"])
    perms = locked.permissions_for(guild.me)
    assert not perms.send_messages and not perms.view_channel


async def test_sync_registers_commands(world):
    fake = world["fake"]
    names = sorted(c["name"] for c in fake.registered_commands)
    assert names == ["echo", "pick", "post", "settings"]
    assert {c.name for c in world["synced"]} == set(names)
    by_name = {c["name"]: c for c in fake.registered_commands}
    assert by_name["pick"]["options"][0]["autocomplete"] is True
    assert by_name["settings"]["options"][0]["type"] == 1  # subcommand
    # a re-sync keeps ids (bulk overwrite semantics)
    again = await asyncio.wait_for(world["bot"].tree.sync(), TIMEOUT)
    assert {c.name: c.id for c in again} == {c.name: c.id for c in world["synced"]}


async def test_invoke_reply_public_and_ephemeral(world):
    fake = world["fake"]
    handle = await fake.invoke(world["guild"], world["member"], "echo", {"text": "hi"})
    response = await handle.response(TIMEOUT)
    assert response["type"] == 4
    await handle.wait_done(TIMEOUT)
    assert handle.content == "echo: hi" and handle.ephemeral is False
    assert handle.response_latency is not None and handle.responded_in_time

    secret = await fake.invoke(world["guild"], world["member"], "echo", {"text": "psst", "secret": True})
    response = await secret.response(TIMEOUT)
    assert response["data"]["flags"] & MESSAGE_FLAG_EPHEMERAL
    assert secret.content == "echo: psst" and secret.ephemeral is True
    # interaction replies are not channel posts
    assert all(m["content"] != "echo: hi" for m in fake.channel_messages(world["general"]))


async def test_deferred_followup_and_edit(world):
    fake = world["fake"]
    handle = await fake.invoke(world["guild"], world["member"], "post", {"channel": world["releases"]})
    assert (await handle.response(TIMEOUT))["type"] == 5
    await handle.wait_done(TIMEOUT)
    assert handle.content == f"posting to releases ({world['releases']})"  # resolved channel reached the bot
    assert handle.ephemeral is True and len(handle.followups) == 1

    edited = await fake.invoke(world["guild"], world["manager"], "settings", {"day": 2}, subcommand="show")
    await edited.wait_done(TIMEOUT)
    assert edited.callback["type"] == 5 and edited.edits[-1]["content"] == "day=2"
    assert edited.content == "day=2" and edited.ephemeral is False


async def test_autocomplete_choices_and_limit(world):
    fake = world["fake"]
    choices = await fake.autocomplete(
        world["guild"], world["member"], "pick", {"artist": "pi"}, "artist", timeout=TIMEOUT
    )
    assert choices == [{"name": "Pitbull", "value": "Pitbull"}, {"name": "Pink Floyd", "value": "Pink Floyd"}]
    with pytest.raises(InteractionRejected, match="25 or fewer"):
        await fake.autocomplete(world["guild"], world["member"], "pick", {"artist": "many"}, "artist", timeout=TIMEOUT)
    picked = await fake.invoke(world["guild"], world["member"], "pick", {"artist": "Prince"})
    await picked.wait_done(TIMEOUT)
    assert picked.embeds[0]["title"] == "Prince"


async def test_channel_send_embed_and_limits(world):
    fake, bot = world["fake"], world["bot"]
    channel = bot.get_channel(world["releases"])
    sent = await channel.send(
        "new release",
        embed=discord.Embed(title="Album", description="out now"),
        allowed_mentions=discord.AllowedMentions.none(),
    )
    stored = fake.channel_messages(world["releases"])[-1]
    assert stored["id"] == str(sent.id) and stored["content"] == "new release"
    assert stored["embeds"][0]["title"] == "Album" and stored["allowed_mentions"]["parse"] == []
    assert sent.author.id == fake.bot_user_id and sent.embeds[0].description == "out now"

    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send(embed=discord.Embed(title="x", description="d" * 4097))
    assert too_long.value.status == 400 and too_long.value.code == 50035
    with pytest.raises(discord.HTTPException) as too_big:
        await channel.send(embeds=[discord.Embed(description="d" * 4000), discord.Embed(description="d" * 4000)])
    assert too_big.value.code == 50035 and "6000" in str(too_big.value)
    with pytest.raises(discord.HTTPException):
        await channel.send("c" * 2001)


async def test_forbidden_and_deleted_channels(world):
    fake, bot = world["fake"], world["bot"]
    with pytest.raises(discord.Forbidden) as forbidden:
        await bot.get_channel(world["locked"]).send("nope")
    assert forbidden.value.code == 50013
    assert fake.channel_messages(world["locked"]) == []

    temp = fake.add_channel(world["guild"], "temp")
    for _ in range(50):
        if bot.get_channel(temp) is not None:
            break
        await asyncio.sleep(0.02)
    channel = bot.get_channel(temp)
    fake.set_bot_can_send(temp, False)
    for _ in range(50):
        if not channel.permissions_for(channel.guild.me).send_messages:
            break
        await asyncio.sleep(0.02)
    assert not channel.permissions_for(channel.guild.me).send_messages
    fake.set_bot_can_send(temp, True)
    fake.delete_channel(temp)
    with pytest.raises(discord.NotFound) as gone:
        await channel.send("hello?")
    assert gone.value.code == 10003


async def test_429_with_via_is_retried(world):
    fake, bot = world["fake"], world["bot"]
    path = f"/channels/{world['general']}/messages"
    fake.fail_next(1, status=429, path_contains=path, retry_after=0.2)
    message = await asyncio.wait_for(bot.get_channel(world["general"]).send("after a 429"), TIMEOUT)
    statuses = [r.status for r in fake.requests("POST", path)][-2:]
    assert statuses == [429, 200]
    assert fake.channel_messages(world["general"])[-1]["id"] == str(message.id)


async def test_nonce_enforced_dedupes(world):
    fake, bot = world["fake"], world["bot"]
    channel = bot.get_channel(world["general"])
    before = len(fake.channel_messages(world["general"]))
    first = await channel.send("once", nonce="release-42")
    second = await channel.send("once", nonce="release-42")
    assert first.id == second.id
    assert len(fake.channel_messages(world["general"])) == before + 1
    assert fake.requests("POST", f"/channels/{world['general']}/messages")[-1].json["enforce_nonce"] is True


async def test_raw_http_contract(world):
    fake = world["fake"]
    async with aiohttp.ClientSession() as session:
        auth = {"Authorization": f"Bot {fake.token}"}
        async with session.get(f"{fake.api_base_url}/nowhere", headers=auth) as resp:
            assert resp.status == 404 and resp.headers["Content-Type"] == "application/json"
            assert await resp.json() == {"message": "404: Not Found", "code": 0}
        async with session.get(f"{fake.api_base_url}/channels/{world['general']}", headers=auth) as resp:
            assert resp.headers["Content-Type"] == "application/json"
            assert (await resp.json())["guild_id"] == str(world["guild"])
        async with session.get(f"{fake.api_base_url}/channels/{world['general']}") as resp:
            assert resp.status == 401


async def test_gateway_resume_after_disconnect(world):
    fake = world["fake"]
    resumes = fake.resume_count
    await fake.disconnect_clients()
    await fake.wait_for_ready(TIMEOUT)
    assert fake.resume_count == resumes + 1
    handle = await fake.invoke(world["guild"], world["member"], "echo", {"text": "still here"})
    await handle.wait_done(TIMEOUT)
    assert handle.content == "echo: still here"

    # a forgotten session: RESUME gets INVALID_SESSION and the client identifies afresh
    identifies = fake.identify_count
    await fake.disconnect_clients(invalidate_sessions=True)
    await fake.wait_for_ready(TIMEOUT)
    assert fake.identify_count == identifies + 1
    await asyncio.wait_for(world["bot"].wait_until_ready(), TIMEOUT)
    handle = await fake.invoke(world["guild"], world["member"], "echo", {"text": "again"})
    await handle.wait_done(TIMEOUT)
    assert handle.content == "echo: again"


async def test_world_changes_reach_the_bot(world):
    fake, bot = world["fake"], world["bot"]
    new_guild = fake.add_guild("Late Guild")
    fake.add_channel(new_guild, "news", kind="announcement")
    for _ in range(100):
        guild = bot.get_guild(new_guild)
        if guild is not None and guild.text_channels:
            break
        await asyncio.sleep(0.02)
    assert guild is not None and [c.name for c in guild.text_channels] == ["news"]
    assert guild.text_channels[0].is_news()
