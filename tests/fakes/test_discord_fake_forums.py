"""Forum channels (type 15) on the Discord fake, driven by the real discord.py client: the forum and
its ``available_tags`` reach the bot, ``ForumChannel.create_thread`` makes a post (a type 11 thread
whose id is its starter message's), tags are edited with Manage Channels, and a restarted client
finds its posts again through the active and archived thread listings."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from typing import Any

import aiohttp
import discord
import pytest
import pytest_asyncio
import yarl

from fakes.discord_fake import DiscordFake, Permission

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60)]
TIMEOUT = 5.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world():
    """A guild with a forum (tags Album, Single and the moderated Staff), a text channel and a bot."""
    old_base, old_gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    fake = DiscordFake()
    await fake.start()
    guild = fake.add_guild("Forum Guild")
    general = fake.add_channel(guild, "general")
    forum = fake.add_channel(
        guild,
        "releases",
        kind="forum",
        tags=["Album", {"name": "Single", "emoji_name": "🎵"}, {"name": "Staff", "moderated": True}],
    )
    discord.http.Route.BASE = fake.api_base_url
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    bot = discord.Client(intents=discord.Intents.default(), chunk_guilds_at_startup=False, guild_ready_timeout=0.1)
    task = asyncio.create_task(bot.start(fake.token))
    try:
        await fake.wait_for_ready(TIMEOUT)
        await asyncio.wait_for(bot.wait_until_ready(), TIMEOUT)
        yield {"fake": fake, "bot": bot, "guild": guild, "general": general, "forum": forum}
    finally:
        await bot.close()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 2)
        await fake.stop()
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway


def tag(world, name: str) -> discord.ForumTag:
    forum = world["bot"].get_channel(world["forum"])
    return next(t for t in forum.available_tags if t.name == name)


async def api(fake: DiscordFake, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A raw authorised request to the fake's API; ``(status, decoded JSON)``."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, fake.api_base_url + path, json=body, headers={"Authorization": f"Bot {fake.token}"}
        ) as resp,
    ):
        return resp.status, await resp.json()


def channel_updated(world):
    """Start waiting (bounded) for the CHANNEL_UPDATE of the forum; await it after the change."""
    return world["bot"].wait_for(
        "guild_channel_update", check=lambda before, after: after.id == world["forum"], timeout=TIMEOUT
    )


async def test_forum_and_its_tags_reach_the_bot(world):
    bot, fake = world["bot"], world["fake"]
    forum = bot.get_channel(world["forum"])
    assert isinstance(forum, discord.ForumChannel)
    assert [t.name for t in forum.available_tags] == ["Album", "Single", "Staff"]
    assert [t.moderated for t in forum.available_tags] == [False, False, True]
    assert str(tag(world, "Single").emoji) == "🎵"
    assert {str(t.id) for t in forum.available_tags} == {t["id"] for t in fake.forum_tags(world["forum"])}

    fetched = await bot.fetch_channel(world["forum"])  # GET /channels/{id}
    assert isinstance(fetched, discord.ForumChannel) and list(fetched.available_tags) == list(forum.available_tags)
    status, raw = await api(fake, "GET", f"/channels/{world['forum']}")
    assert status == 200 and raw["type"] == 15 and raw["permission_overwrites"] == []
    assert raw["available_tags"][0] == {
        "id": str(tag(world, "Album").id),
        "name": "Album",
        "moderated": False,
        "emoji_id": None,
        "emoji_name": None,
    }


async def test_create_post_with_the_real_client(world):
    bot, fake = world["bot"], world["fake"]
    forum = bot.get_channel(world["forum"])
    announced = bot.wait_for("thread_create", check=lambda t: t.name == "Nova — First Light", timeout=TIMEOUT)
    created = await forum.create_thread(
        name="Nova — First Light",
        content="New album out now",
        embed=discord.Embed(title="First Light", description="10 tracks"),
        applied_tags=[tag(world, "Album")],
    )
    thread, message = created.thread, created.message
    assert (
        thread.id == message.id
        and thread.parent_id == world["forum"]
        and thread.type is discord.ChannelType.public_thread
    )
    assert thread.applied_tags == [tag(world, "Album")] and thread.message_count == 0 and not thread.archived
    assert thread.owner_id == fake.bot_user_id and thread.auto_archive_duration == 1440
    assert message.content == "New album out now" and message.embeds[0].title == "First Light"

    [recorded] = [t for t in fake.threads(world["forum"]) if t["id"] == str(thread.id)]
    assert recorded["name"] == "Nova — First Light" and recorded["applied_tags"] == [str(tag(world, "Album").id)]
    starter = fake.thread_messages(thread.id)[0]
    assert starter["id"] == str(thread.id) and starter["channel_id"] == str(thread.id)
    request = fake.requests("POST", f"/channels/{world['forum']}/threads")[-1]
    assert "nonce" not in request.json and "nonce" not in request.json["message"]

    assert (await announced).id == thread.id  # THREAD_CREATE reached the bot
    assert thread.id in {t.id for t in forum.threads} and forum.last_message_id == thread.id

    history = [m async for m in thread.history()]  # GET /channels/{thread}/messages
    assert [m.id for m in history] == [thread.id]
    reply = await thread.send("tracklist follows")
    assert fake.thread_messages(thread.id)[-1]["id"] == str(reply.id)
    assert next(t for t in fake.threads(world["forum"]) if t["id"] == str(thread.id))["message_count"] == 1


async def test_post_validation(world):
    bot, fake = world["bot"], world["fake"]
    forum = bot.get_channel(world["forum"])
    with pytest.raises(discord.HTTPException) as long_name:
        await forum.create_thread(name="n" * 101, content="x")
    assert long_name.value.status == 400 and long_name.value.code == 50035 and "name" in long_name.value.text
    with pytest.raises(discord.HTTPException) as long_content:
        await forum.create_thread(name="ok", content="c" * 2001)
    assert long_content.value.code == 50035 and "message.content" in long_content.value.text
    with pytest.raises(discord.HTTPException) as empty:
        await forum.create_thread(name="ok")
    assert empty.value.code == 50006
    with pytest.raises(discord.HTTPException) as unknown_tag:
        await forum.create_thread(name="ok", content="x", applied_tags=[discord.Object(id=fake.snowflake())])
    assert unknown_tag.value.code == 50035 and "applied_tags.0" in unknown_tag.value.text
    six = [{"name": f"t{i}"} for i in range(6)]
    many = fake.add_channel(world["guild"], "many-tags", kind="forum", tags=six)
    status, body = await api(
        fake,
        "POST",
        f"/channels/{many}/threads",
        {"name": "six", "message": {"content": "x"}, "applied_tags": [t["id"] for t in fake.forum_tags(many)]},
    )
    assert status == 400 and "5 or fewer" in str(body["errors"]["applied_tags"])
    status, body = await api(fake, "POST", f"/channels/{many}/threads", {"name": "no message"})
    assert status == 400 and body["errors"]["message"]["_errors"][0]["code"] == "BASE_TYPE_REQUIRED"
    status, body = await api(
        fake,
        "POST",
        f"/channels/{many}/threads",
        {"name": "x", "message": {"content": "x"}, "auto_archive_duration": 7},
    )
    assert status == 400 and "auto_archive_duration" in body["errors"]
    with pytest.raises(discord.Forbidden) as moderated:  # the moderated tag needs Manage Threads
        await forum.create_thread(name="staff pick", content="x", applied_tags=[tag(world, "Staff")])
    assert moderated.value.code == 50013
    assert all(t["name"] not in ("ok", "staff pick") for t in fake.threads(world["forum"]))


async def test_create_post_needs_send_messages_and_a_forum(world):
    bot, fake = world["bot"], world["fake"]
    forum = bot.get_channel(world["forum"])
    updated = channel_updated(world)
    fake.set_permission_overwrite(world["forum"], fake.bot_user_id, deny=Permission.SEND_MESSAGES)
    try:
        await updated
        assert not forum.permissions_for(forum.guild.me).send_messages
        with pytest.raises(discord.Forbidden) as forbidden:
            await forum.create_thread(name="nope", content="x")
        assert forbidden.value.code == 50013
    finally:
        fake.set_permission_overwrite(world["forum"], fake.bot_user_id)
    status, body = await api(fake, "POST", f"/channels/{world['forum']}/messages", {"content": "not here"})
    assert status == 400 and body["code"] == 40058  # a forum takes posts, not messages
    status, body = await api(
        fake, "POST", f"/channels/{world['general']}/threads", {"name": "x", "message": {"content": "x"}}
    )
    assert status == 400 and body["code"] == 50024


async def test_editing_tags_needs_manage_channels(world):
    bot, fake = world["bot"], world["fake"]
    forum = bot.get_channel(world["forum"])
    original = list(forum.available_tags)
    with pytest.raises(discord.Forbidden) as forbidden:
        await forum.create_tag(name="EP")
    assert forbidden.value.code == 50013 and [t.name for t in forum.available_tags] == ["Album", "Single", "Staff"]

    updated = channel_updated(world)
    fake.set_permission_overwrite(world["forum"], fake.bot_user_id, allow=Permission.MANAGE_CHANNELS)
    try:
        await updated
        assert forum.permissions_for(forum.guild.me).manage_channels
        ep = await forum.create_tag(name="EP", emoji="💿")
        assert ep.id and [t["name"] for t in fake.forum_tags(world["forum"])] == ["Album", "Single", "Staff", "EP"]
        album = tag(world, "Album")
        updated = channel_updated(world)
        edited = await forum.edit(name="new-releases", available_tags=[album, ep])
        assert edited.name == "new-releases" and [t.id for t in edited.available_tags] == [album.id, ep.id]
        await updated
        assert forum.name == "new-releases" and [t.name for t in forum.available_tags] == ["Album", "EP"]

        with pytest.raises(discord.HTTPException) as too_many:
            await forum.edit(available_tags=[discord.ForumTag(name=f"tag{i}") for i in range(21)])
        assert too_many.value.code == 50035 and "20 or fewer" in too_many.value.text
        with pytest.raises(discord.HTTPException) as long_name:
            await forum.edit(available_tags=[discord.ForumTag(name="x" * 21)])
        assert long_name.value.code == 50035
        with pytest.raises(discord.HTTPException) as duplicate:
            await forum.edit(available_tags=[discord.ForumTag(name="Same"), discord.ForumTag(name="Same")])
        assert duplicate.value.code == 40061
        assert [t["id"] for t in fake.forum_tags(world["forum"])] == [str(album.id), str(ep.id)]
        await forum.edit(name="releases", available_tags=original)  # as the other tests expect it
    finally:
        fake.set_permission_overwrite(world["forum"], fake.bot_user_id)
    status, _ = await api(fake, "PATCH", f"/channels/{world['forum']}", {"name": "renamed"})
    assert status == 403  # the overwrite is gone again
    assert [t["name"] for t in fake.forum_tags(world["forum"])] == ["Album", "Single", "Staff"]


async def test_a_restarted_client_finds_its_posts(world):
    """After a crash the bot lists active threads of the guild and archived posts of the forum."""
    bot, fake = world["bot"], world["fake"]
    forum = bot.get_channel(world["forum"])
    posts = [(await forum.create_thread(name=f"post {i}", content=f"#{i}")).thread for i in range(3)]
    active = await forum.guild.active_threads()  # GET /guilds/{id}/threads/active
    assert {p.id for p in posts} <= {t.id for t in active}
    mine = [t for t in active if t.id in {p.id for p in posts}]
    assert all([m.id for m in t.members] == [fake.bot_user_id] for t in mine)  # the bot's thread members

    for post in posts:
        fake.archive_thread(post.id)
    active_ids = {t.id for t in await forum.guild.active_threads()}
    assert not active_ids & {p.id for p in posts}
    archived = [t async for t in forum.archived_threads(limit=None)]  # .../threads/archived/public
    assert [t.id for t in archived[:3]] == [p.id for p in reversed(posts)] and all(t.archived for t in archived)

    status, page = await api(fake, "GET", f"/channels/{world['forum']}/threads/archived/public?limit=2")
    assert status == 200 and page["has_more"] is True and len(page["threads"]) == 2 and page["members"]
    before = urllib.parse.quote(page["threads"][-1]["thread_metadata"]["archive_timestamp"])
    status, rest = await api(fake, "GET", f"/channels/{world['forum']}/threads/archived/public?limit=2&before={before}")
    assert [t["id"] for t in rest["threads"]] == [str(posts[0].id)] and rest["has_more"] is False
    status, _ = await api(fake, "GET", f"/channels/{world['forum']}/threads/archived/public?limit=1")
    assert status == 400

    # sending in an archived post unarchives it; Thread.edit archives it again
    await posts[0].send("still here")
    assert posts[0].id in {t.id for t in await forum.guild.active_threads()}
    edited = await posts[0].edit(archived=True, applied_tags=[tag(world, "Single")])
    assert edited.archived and edited.applied_tags == [tag(world, "Single")]


async def test_the_forum_is_in_guild_create_with_its_threads(world):
    """A client that connects later gets the forum and the active posts in GUILD_CREATE."""
    fake = world["fake"]
    forum = world["bot"].get_channel(world["forum"])
    live = (await forum.create_thread(name="live post", content="x")).thread
    late = discord.Client(intents=discord.Intents.default(), chunk_guilds_at_startup=False, guild_ready_timeout=0.1)
    task = asyncio.create_task(late.start(fake.token))
    try:
        await asyncio.wait_for(late.wait_until_ready(), TIMEOUT)
        guild = late.get_guild(world["guild"])
        assert guild is not None
        assert isinstance(guild.get_channel(world["forum"]), discord.ForumChannel)
        thread = guild.get_thread(live.id)
        assert thread is not None and thread.parent_id == world["forum"]
    finally:
        await late.close()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 2)
