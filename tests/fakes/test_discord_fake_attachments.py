"""Attachments on the Discord fake, driven by the real discord.py client: a slash command with a
``discord.Attachment`` parameter (option type 11) gets the file a test attaches with
:class:`AttachmentFile`, and ``Attachment.read()`` downloads it from the fake's CDN-like route;
files the bot uploads itself are served the same way."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io

import aiohttp
import discord
import pytest
import pytest_asyncio
import yarl
from discord import app_commands

from fakes.discord_fake import AttachmentFile, DiscordFake

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60)]
TIMEOUT = 5.0

CSV = b"artist,spotify\nNova,https://open.spotify.com/artist/1\n"


class Bot(discord.Client):
    """A client with ``/import file:<attachment> [note]`` that downloads the file and describes it."""

    def __init__(self) -> None:
        super().__init__(intents=discord.Intents.default(), chunk_guilds_at_startup=False, guild_ready_timeout=0.1)
        self.tree = app_commands.CommandTree(self)

        @self.tree.command(name="import", description="Import followed artists from a file")
        @app_commands.describe(file="a CSV export", note="a note")
        async def import_(interaction: discord.Interaction, file: discord.Attachment, note: str = "") -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            data = await file.read()  # GET the attachment's url
            digest = hashlib.sha256(data).hexdigest()[:12]
            await interaction.followup.send(
                f"{file.filename} {file.size} {file.content_type} {len(data)} {digest} {file.ephemeral} {note}"
            )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world():
    old_base, old_gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    fake = DiscordFake()
    await fake.start()
    guild = fake.add_guild("Import Guild")
    channel = fake.add_channel(guild, "general")
    member = fake.add_member(guild, name="alice", manage_guild=True)
    discord.http.Route.BASE = fake.api_base_url
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    bot = Bot()
    task = asyncio.create_task(bot.start(fake.token))
    try:
        await fake.wait_for_ready(TIMEOUT)
        await asyncio.wait_for(bot.wait_until_ready(), TIMEOUT)
        await asyncio.wait_for(bot.tree.sync(), TIMEOUT)
        yield {"fake": fake, "bot": bot, "guild": guild, "channel": channel, "member": member}
    finally:
        await bot.close()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 2)
        await fake.stop()
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway


async def test_registration_accepts_an_attachment_option(world):
    fake = world["fake"]
    [command] = fake.commands_for()
    assert [(o["name"], o["type"], o["required"]) for o in command["options"]] == [
        ("file", 11, True),
        ("note", 3, False),
    ]
    body = [{"name": "bad", "description": "bad option", "options": [{"name": "x", "description": "x", "type": 12}]}]
    async with (
        aiohttp.ClientSession() as session,
        session.put(
            f"{fake.api_base_url}/applications/{fake.application_id}/commands",
            json=body,
            headers={"Authorization": f"Bot {fake.token}"},
        ) as resp,
    ):
        error = await resp.json()
    assert (
        resp.status == 400 and error["errors"]["0"]["options"]["0"]["type"]["_errors"][0]["code"] == "BASE_TYPE_CHOICES"
    )
    assert [c["name"] for c in fake.commands_for()] == ["import"]  # the bad set was not stored


async def test_the_command_reads_the_attached_file(world):
    fake = world["fake"]
    upload = AttachmentFile("artists.csv", CSV, "text/csv; charset=utf-8")
    handle = await fake.invoke(world["guild"], world["member"], "import", {"file": upload, "note": "weekly"})
    await handle.wait_done(TIMEOUT)
    digest = hashlib.sha256(CSV).hexdigest()[:12]
    assert handle.content == f"artists.csv {len(CSV)} text/csv; charset=utf-8 {len(CSV)} {digest} True weekly"

    option = handle.payload["data"]["options"][0]
    attachment = handle.payload["data"]["resolved"]["attachments"][option["value"]]
    assert option["type"] == 11 and attachment["id"] == option["value"]
    assert {k: attachment[k] for k in ("filename", "size", "content_type")} == {
        "filename": "artists.csv",
        "size": len(CSV),
        "content_type": "text/csv; charset=utf-8",
    }
    assert attachment["url"].startswith(f"http://127.0.0.1:{fake.port}/attachments/{world['channel']}/")
    [download] = fake.requests("GET", f"/attachments/{world['channel']}/{attachment['id']}/")
    assert download.status == 200

    # the CDN-like route needs no token, and a wrong file name is a 404
    async with aiohttp.ClientSession() as session:
        async with session.get(attachment["url"]) as resp:
            assert resp.status == 200 and await resp.read() == CSV
            assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
        async with session.get(attachment["url"].rsplit("/", 1)[0] + "/other.csv") as resp:
            assert resp.status == 404


async def test_a_file_without_content_type_and_with_an_odd_name(world):
    fake = world["fake"]
    data = bytes(range(256)) * 8
    handle = await fake.invoke(
        world["guild"], world["member"], "import", {"file": AttachmentFile("my list (1).bin", data)}
    )
    await handle.wait_done(TIMEOUT)
    digest = hashlib.sha256(data).hexdigest()[:12]
    assert handle.content == f"my list (1).bin {len(data)} None {len(data)} {digest} True "


async def test_attachment_option_values_are_checked(world):
    fake = world["fake"]
    with pytest.raises(TypeError, match="AttachmentFile"):
        await fake.invoke(world["guild"], world["member"], "import", {"file": "artists.csv"})
    with pytest.raises(ValueError, match="limit"):
        await fake.invoke(
            world["guild"],
            world["member"],
            "import",
            {"file": AttachmentFile("big.bin", b"0" * (10 * 1024 * 1024 + 1))},
        )


async def test_files_the_bot_uploads_are_served_too(world):
    bot, fake = world["bot"], world["fake"]
    channel = bot.get_channel(world["channel"])
    sent = await channel.send("export", file=discord.File(io.BytesIO(CSV), filename="export.csv"))
    [attachment] = sent.attachments
    assert attachment.filename == "export.csv" and attachment.size == len(CSV)
    assert await attachment.read() == CSV
    stored = fake.channel_messages(world["channel"])[-1]
    assert stored["attachments"][0]["url"] == attachment.url and stored["attachments"][0]["ephemeral"] is False
    with pytest.raises(discord.HTTPException) as too_big:
        await channel.send(file=discord.File(io.BytesIO(b"0" * (10 * 1024 * 1024 + 1)), filename="big.bin"))
    assert too_big.value.status == 413 and too_big.value.code == 40005
    assert fake.channel_messages(world["channel"])[-1]["id"] == str(sent.id)
