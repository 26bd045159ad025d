"""The Discord fake's message components: a real discord.py bot posts buttons and a select,
a test presses them with ``invoke_component`` (INTERACTION_CREATE type 3), and the bot answers
with callbacks 4 (new message), 6 (deferred update, then an edit of the component's message)
and 7 (update the message now); the fake enforces Discord's component limits."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import discord
import pytest
import pytest_asyncio
import yarl
from discord.ext import commands

from fakes.discord_fake import DiscordFake, validate_message_body

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60)]
TIMEOUT = 5.0


class Pressable(discord.ui.DynamicItem[discord.ui.Button], template=r"probe:(?P<mode>new|defer|update)"):
    def __init__(self, mode: str) -> None:
        super().__init__(discord.ui.Button(label=mode, custom_id=f"probe:{mode}"))
        self.mode = mode

    @classmethod
    async def from_custom_id(cls, interaction, item, match):
        return cls(match["mode"])

    async def callback(self, interaction: discord.Interaction) -> None:
        perms = interaction.permissions
        who = f"{interaction.user.id} manage={perms.manage_guild}"
        if self.mode == "new":
            await interaction.response.send_message(f"pressed by {who}", ephemeral=True)
        elif self.mode == "defer":
            await interaction.response.defer()
            await interaction.edit_original_response(content=f"edited by {who}")
        else:
            await interaction.response.edit_message(content=f"updated by {who}", view=None)


class Choose(discord.ui.DynamicItem[discord.ui.Select], template=r"probe:choose"):
    def __init__(self, item=None) -> None:
        super().__init__(item or discord.ui.Select(custom_id="probe:choose", options=[discord.SelectOption(label="x")]))

    @classmethod
    async def from_custom_id(cls, interaction, item, match):
        return cls(item)

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"chose {self.item.values}", ephemeral=True)


def probe_view() -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for mode in ("new", "defer", "update"):
        view.add_item(Pressable(mode))
    view.add_item(
        Choose(
            discord.ui.Select(
                custom_id="probe:choose",
                row=1,
                options=[discord.SelectOption(label="Alpha", value="a"), discord.SelectOption(label="Beta", value="b")],
            )
        )
    )
    return view


class Bot(commands.Bot):
    async def setup_hook(self) -> None:
        self.add_dynamic_items(Pressable, Choose)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world():
    old_base, old_gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    fake = DiscordFake()
    await fake.start()
    guild_id = fake.add_guild("Guild")
    channel = fake.add_channel(guild_id, "posts")
    member = fake.add_member(guild_id, name="alice")
    manager = fake.add_member(guild_id, name="bob", manage_guild=True)
    discord.http.Route.BASE = fake.api_base_url
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    bot = Bot(command_prefix="!", intents=discord.Intents.none(), chunk_guilds_at_startup=False)
    task = asyncio.create_task(bot.start(fake.token))
    try:
        await fake.wait_for_ready(TIMEOUT)
        await asyncio.wait_for(bot.wait_until_ready(), TIMEOUT)
        yield {"fake": fake, "bot": bot, "channel": channel, "member": member, "manager": manager}
    finally:
        await bot.close()
        task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 2)
        await fake.stop()
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway


async def post(world) -> dict:
    channel = world["bot"].get_channel(world["channel"])
    sent = await channel.send("pick one", view=probe_view())
    return next(m for m in world["fake"].channel_messages(world["channel"]) if int(m["id"]) == sent.id)


async def test_button_answers_new_message_with_member_permissions(world):
    fake, message = world["fake"], await post(world)
    assert [c["custom_id"] for c in message["components"][0]["components"]] == [
        "probe:new",
        "probe:defer",
        "probe:update",
    ]
    handle = await fake.invoke_component(message, "probe:new", world["member"])
    await handle.wait_done(TIMEOUT)
    assert handle.type == 3 and handle.custom_id == "probe:new" and handle.callback["type"] == 4
    assert handle.content == f"pressed by {world['member']} manage=False" and handle.ephemeral
    handle = await fake.invoke_component(message, "probe:new", world["manager"])
    await handle.wait_done(TIMEOUT)
    assert handle.content.endswith("manage=True")


async def test_deferred_update_then_edit_changes_the_message(world):
    fake, message = world["fake"], await post(world)
    handle = await fake.invoke_component(message, "probe:defer", world["manager"])
    await handle.wait_done(TIMEOUT)
    assert handle.callback["type"] == 6
    stored = next(m for m in fake.channel_messages(world["channel"]) if m["id"] == message["id"])
    assert stored["content"].startswith("edited by") and handle.final["id"] == message["id"]


async def test_update_message_now(world):
    fake, message = world["fake"], await post(world)
    handle = await fake.invoke_component(message, "probe:update", world["member"])
    await handle.wait_done(TIMEOUT)
    assert handle.callback["type"] == 7
    stored = next(m for m in fake.channel_messages(world["channel"]) if m["id"] == message["id"])
    assert stored["content"].startswith("updated by") and stored["components"] == []
    with pytest.raises(LookupError):  # the buttons are gone
        await fake.invoke_component(stored, "probe:new", world["member"])


async def test_select_values(world):
    fake, message = world["fake"], await post(world)
    handle = await fake.invoke_component(message, "probe:choose", world["member"], ["b"])
    await handle.wait_done(TIMEOUT)
    assert handle.content == "chose ['b']"
    with pytest.raises(ValueError):
        await fake.invoke_component(message, "probe:choose", world["member"], ["zzz"])
    with pytest.raises(ValueError):
        await fake.invoke_component(message, "probe:choose", world["member"], [])


async def test_component_interaction_on_an_ephemeral_response(world):
    """A button on an interaction's own (ephemeral) response: 7 edits that response."""
    fake = world["fake"]
    message = await post(world)
    first = await fake.invoke_component(message, "probe:new", world["member"])
    await first.wait_done(TIMEOUT)
    assert first.original["components"] == []
    # Put buttons on that response (as a bot would with a view), then press "update" on it.
    first.original["components"] = message["components"]
    handle = await fake.invoke_component(first.original, "probe:update", world["member"])
    await handle.wait_done(TIMEOUT)
    assert first.original["content"].startswith("updated by") and first.original["components"] == []


async def test_component_limits():
    button = {"type": 2, "style": 2, "custom_id": "a", "label": "A"}
    assert validate_message_body({"content": "x", "components": [{"type": 1, "components": [button]}]}) == {}
    too_many_rows = [{"type": 1, "components": [dict(button, custom_id=f"r{i}")]} for i in range(6)]
    assert validate_message_body({"components": too_many_rows})
    six = [dict(button, custom_id=f"b{i}") for i in range(6)]
    assert validate_message_body({"components": [{"type": 1, "components": six}]})
    dup = [button, dict(button)]
    assert "COMPONENT_CUSTOM_ID_DUPLICATED" in str(
        validate_message_body({"components": [{"type": 1, "components": dup}]})
    )
    options = [{"label": str(i), "value": str(i)} for i in range(26)]
    select: dict[str, Any] = {"type": 3, "custom_id": "s", "options": options}
    assert validate_message_body({"components": [{"type": 1, "components": [select]}]})
    mixed = [dict(select, options=select["options"][:3]), dict(button, custom_id="z")]
    assert "WIDTH" in str(validate_message_body({"components": [{"type": 1, "components": mixed}]}))
    assert validate_message_body({"components": [{"type": 1, "components": [dict(button, label="x" * 81)]}]})
    assert validate_message_body({"components": [{"type": 1, "components": [dict(button, custom_id="c" * 101)]}]})
