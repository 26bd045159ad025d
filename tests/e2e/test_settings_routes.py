"""``/settings route``, ``/settings publish``, ``/settings types ep:``, ``/settings channel`` with a forum, and
``/status`` / ``/preview`` showing the routes — the real discord.py client against the Discord fake.

A route or channel naming another server's channel (the admin of both servers passing its id by hand),
one the bot cannot post in, or a forum where it may not post is refused with the reason and nothing
changes; one server never sees or changes another's routes.
"""

from __future__ import annotations

import pytest
import pytest_asyncio

from fakes.discord_fake import Permission
from fakes.stack import Stack
from storage import routes
from storage.models import Guild
from tests import backend

pytestmark = [pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory):
    st = await backend.create_stack(tmp_path_factory.mktemp("routes"))
    fake, sp = st.discord, st.spotify
    st.eps = fake.add_channel(st.guild_id, "eps")
    st.news = fake.add_channel(st.guild_id, "announcements", kind="announcement")
    st.forum = fake.add_channel(st.guild_id, "releases-forum", kind="forum")
    st.closed_forum = fake.add_channel(st.guild_id, "no-posts-forum", kind="forum")
    fake.set_permission_overwrite(st.closed_forum, fake.bot_user_id, deny=Permission.SEND_MESSAGES_IN_THREADS)
    st.muted = fake.add_channel(st.guild_id, "read-only", bot_can_send=False)
    st.other_guild = fake.add_guild("Other Club")
    st.other_channel = fake.add_channel(st.other_guild, "elsewhere")
    fake.add_member(st.other_guild, user_id=st.admin_id, manage_guild=True)  # admin of both servers
    st.nova = sp.add_artist("Nova Lights")
    sp.add_album([st.nova], "Old Album", release_date="2023-05-05")
    await st.start_bot()
    try:
        await st.command("settings", {"channel": st.channel_id}, subcommand="channel")
        assert "Now following" in (await st.command("follow", {"artist": st.nova})).content
        yield st
    finally:
        await st.close()


async def stored_routes(stack: Stack, guild_id: int | None = None) -> routes.GuildRoutes:
    assert stack.bot is not None
    async with stack.bot.core.db.transaction() as s:
        return await routes.guild_routes(s, guild_id or stack.guild_id)


async def in_other_guild(stack, name: str, options: dict, subcommand: str | None):
    """Run a command as the admin in the second server (``stack`` carries its ids)."""
    handle = await stack.discord.invoke(
        stack.other_guild, stack.admin_id, name, options, subcommand=subcommand, channel_id=stack.other_channel
    )
    await handle.wait_done(timeout=15)
    return handle


async def test_route_a_type_and_see_it_in_status(stack):
    reply = await stack.command("settings", {"type": "ep", "channel": stack.eps}, subcommand="route")
    assert reply.ephemeral
    assert reply.content == f"EPs will be posted in <#{stack.eps}>; an artist's route still wins over it."
    assert (await stored_routes(stack)).by_type == {"ep": stack.eps}
    status = await stack.command("status", user_id=stack.member_id)
    fields = {f["name"]: f["value"] for f in status.embeds[0]["fields"]}
    assert fields["Routes"] == f"EPs → <#{stack.eps}>"
    assert fields["Posting"] == "Albums, Singles, EPs, Compilations"
    shown = await stack.command("settings", {}, subcommand="route")
    assert shown.content == f"Default: <#{stack.channel_id}>. Routes: EPs → <#{stack.eps}>. Nothing was changed."


@pytest.mark.parametrize(
    "channel, reason",
    [
        ("other_channel", "I can't see that channel in this server"),  # another server's, id passed by hand
        ("muted", "I'm missing View Channel, Send Messages, Embed Links there"),
        ("closed_forum", "I'm missing Send Messages in Threads there"),
    ],
)
async def test_a_route_to_a_channel_the_bot_cannot_use_here_is_refused(stack, channel, reason):
    before = await stored_routes(stack)
    reply = await stack.command("settings", {"type": "single", "channel": getattr(stack, channel)}, subcommand="route")
    assert reason in reply.content and "Nothing was changed" in reply.content and reply.ephemeral
    reply = await stack.command("settings", {"channel": getattr(stack, channel)}, subcommand="channel")
    assert reason in reply.content
    assert await stored_routes(stack) == before
    async with stack.bot.core.db.sessions() as s:
        assert (await s.get(Guild, stack.guild_id)).channel_id == stack.channel_id


async def test_a_channel_the_bot_sees_but_cannot_post_in_is_refused(stack):
    stack.discord.set_permission_overwrite(stack.eps, stack.discord.bot_user_id, deny=Permission.EMBED_LINKS)
    try:
        await stack.until(
            lambda: (
                not stack.bot.get_channel(stack.eps).permissions_for(stack.bot.get_guild(stack.guild_id).me).embed_links
            ),
            what="the overwrite reached the bot",
        )
        reply = await stack.command("settings", {"type": "album", "channel": stack.eps}, subcommand="route")
        assert f"I can't post in <#{stack.eps}>: I'm missing Embed Links there." in reply.content
        assert "album" not in (await stored_routes(stack)).by_type
    finally:
        stack.discord.set_permission_overwrite(stack.eps, stack.discord.bot_user_id)


async def test_a_forum_the_bot_may_post_in_is_accepted(stack):
    reply = await stack.command("settings", {"type": "compilation", "channel": stack.forum}, subcommand="route")
    assert reply.content.startswith(f"Compilations will be posted in <#{stack.forum}>")
    reply = await stack.command("settings", {"type": "compilation", "clear": True}, subcommand="route")
    assert reply.content == "Compilations will be posted in the default channel again."
    assert "compilation" not in (await stored_routes(stack)).by_type


async def test_route_an_artist_with_autocomplete_then_clear_it(stack):
    choices = await stack.discord.autocomplete(
        stack.guild_id, stack.admin_id, "settings", {"artist": "nov"}, "artist", subcommand="route"
    )
    assert choices == [{"name": "Nova Lights", "value": stack.nova}]
    reply = await stack.command("settings", {"artist": stack.nova, "channel": stack.forum}, subcommand="route")
    assert reply.content == f"New releases of **Nova Lights** will be posted in <#{stack.forum}> (whatever their type)."
    reply = await stack.command("settings", {"artist": "Somebody Else", "channel": stack.eps}, subcommand="route")
    assert "This server doesn't follow “Somebody Else”" in reply.content
    status = await stack.command("status")
    fields = {f["name"]: f["value"] for f in status.embeds[0]["fields"]}
    assert f"Nova Lights → <#{stack.forum}>" in fields["Routes"].splitlines()
    reply = await stack.command("settings", {"artist": "Nova Lights", "clear": True}, subcommand="route")
    assert reply.content.startswith("New releases of **Nova Lights** will go where their type goes again")
    assert (await stored_routes(stack)).by_artist == {}


async def test_another_server_never_sees_or_changes_these_routes(stack):
    await stack.command("settings", {"type": "ep", "channel": stack.eps}, subcommand="route")
    reply = await in_other_guild(stack, "settings", {"type": "ep", "clear": True}, "route")
    assert reply.content == "EPs had no route; nothing was changed."
    reply = await in_other_guild(stack, "settings", {"type": "ep", "channel": stack.eps}, "route")
    assert "I can't see that channel in this server" in reply.content  # the first server's channel
    status = await in_other_guild(stack, "status", {}, None)
    assert "Routes" not in {f["name"] for f in status.embeds[0]["fields"]}
    assert (await stored_routes(stack)).by_type == {"ep": stack.eps}
    assert not await stored_routes(stack, stack.other_guild)


async def test_publish_on_names_the_announcement_channels_and_off(stack):
    await stack.command("settings", {"type": "single", "channel": stack.news}, subcommand="route")
    reply = await stack.command("settings", {"enabled": True}, subcommand="publish")
    assert reply.content.startswith(f"Posts in <#{stack.news}> are published (crossposted)")
    assert f"<#{stack.channel_id}>, <#{stack.eps}> are not announcement channels" in reply.content
    status = await stack.command("status")
    fields = {f["name"]: f["value"] for f in status.embeds[0]["fields"]}
    assert fields["Publish"].startswith(f"Posts in <#{stack.news}> are published")
    member = await stack.command("settings", {"enabled": False}, subcommand="publish", user_id=stack.member_id)
    assert "Manage Server" in member.content
    reply = await stack.command("settings", {"enabled": False}, subcommand="publish")
    assert reply.content == "Posts are not published (crossposted)."
    async with stack.bot.core.db.sessions() as s:
        assert (await s.get(Guild, stack.guild_id)).publish is False
    status = await stack.command("status")
    assert {f["name"]: f["value"] for f in status.embeds[0]["fields"]}["Publish"] == "off"
    await stack.command("settings", {"type": "single", "clear": True}, subcommand="route")


async def test_preview_says_where_each_release_goes(stack):
    stack.clock.advance(hours=1)
    sp = stack.spotify
    sp.add_album([stack.nova], "Five Songs", album_type="single", total_tracks=5, release_date="2026-11-16")
    sp.add_album([stack.nova], "One Song", album_type="single", release_date="2026-11-16")
    await stack.bot.core.runner.run("check", artist_ids=[stack.nova])
    preview = await stack.command("preview", user_id=stack.member_id)
    assert preview.ephemeral
    assert f"**2 releases** in 2 messages: 1 to <#{stack.eps}> · 1 to <#{stack.channel_id}>." in preview.content
    assert f"• Nova Lights — Five Songs → <#{stack.eps}>" in preview.content
    assert f"• Nova Lights — One Song → <#{stack.channel_id}>" in preview.content


async def test_types_ep_switches_eps_off_alone(stack):
    reply = await stack.command("settings", {"ep": False}, subcommand="types")
    assert reply.content == "Posting: Albums, Singles, Compilations."
    async with stack.bot.core.db.sessions() as s:
        assert (await s.get(Guild, stack.guild_id)).album_groups == ["album", "single", "compilation"]
    preview = await stack.command("preview")
    assert "• Nova Lights — Five Songs" not in preview.content and "1 of a type not posted" in preview.content
    reply = await stack.command("settings", {"ep": True}, subcommand="types")
    assert reply.content == "Posting: Albums, Singles, EPs, Compilations."
