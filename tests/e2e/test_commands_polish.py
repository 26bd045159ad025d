"""End to end through the Discord fake: /following pages, /settings filters, /preview, /history,
/refresh progress and its one-per-server guard, /settings mention.

Pages are turned by pressing the buttons through the fake (``invoke_component``).
"""

from __future__ import annotations

import pytest
import pytest_asyncio
from sqlalchemy import select

from bot.services.runs import REFRESH_RUNNING_TEXT
from fakes.stack import Stack
from storage.models import Delivery
from tests import backend

pytestmark = [pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="module")]

OTHERS = [f"Artist {chr(65 + k)}" for k in range(11)]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory):
    st = await backend.create_stack(tmp_path_factory.mktemp("polish"))
    sp = st.spotify
    st.nova = sp.add_artist("Nova Lights")
    st.guest = sp.add_artist("Guest Star")
    sp.add_album([st.nova], "Old Album", album_type="album", release_date="2023-05-05")
    st.others = [sp.add_artist(name) for name in OTHERS]
    sp.add_album(
        [st.others[0]], "Early Days", album_type="album", release_date="2021-03", release_date_precision="month"
    )
    await st.start_bot()
    try:
        await st.command("settings", {"channel": st.channel_id}, subcommand="channel")
        reply = await st.command("settings", {"appears_on": True}, subcommand="types")
        assert "Appears on" in reply.content
        for artist_id in [st.nova, st.guest, *st.others]:
            reply = await st.command("follow", {"artist": artist_id})
            assert "Now following" in reply.content
        yield st
    finally:
        await st.close()


async def final_reply(stack: Stack, handle, prefix: str, timeout: float = 20.0) -> str:
    """The deferred reply once its content starts with ``prefix`` (progress edits come first)."""
    await stack.until(lambda: (handle.content or "").startswith(prefix), timeout=timeout, what=f"reply {prefix!r}")
    return handle.content


async def test_following_is_paginated_with_buttons(stack):
    reply = await stack.command("following", user_id=stack.member_id)
    assert reply.ephemeral
    embed = reply.embeds[0]
    assert embed["title"] == "Following 13 artists" and embed["footer"]["text"] == "Page 1/2"
    assert "Artist A" in embed["description"] and "last release *Early Days* (Mar 2021)" in embed["description"]
    assert "Nova Lights" not in embed["description"]  # page 2
    assert "checked <t:" in embed["description"]
    buttons = [c for row in reply.final["components"] for c in row["components"]]
    assert [b["label"] for b in buttons] == ["Previous", "Next"]
    assert buttons[0].get("disabled") is True and not buttons[1].get("disabled")

    # Someone else pressing Next is told privately; the page does not change.
    other = await stack.discord.invoke_component(
        reply.final, buttons[1]["custom_id"], stack.admin_id, guild_id=stack.guild_id
    )
    await other.wait_done()
    assert "Only the person who ran `/following`" in other.content and other.ephemeral
    # The invoker turns to page 2.
    click = await stack.discord.invoke_component(
        reply.final, buttons[1]["custom_id"], stack.member_id, guild_id=stack.guild_id
    )
    await click.wait_done()
    await stack.until(lambda: reply.final["embeds"][0]["footer"]["text"] == "Page 2/2", what="page 2")
    page = reply.final["embeds"][0]
    assert "Nova Lights" in page["description"] and "last release *Old Album* (5 May 2023)" in page["description"]
    buttons = [c for row in reply.final["components"] for c in row["components"]]
    assert not buttons[0].get("disabled") and buttons[1].get("disabled") is True


async def test_filters_preview_then_refresh_posts_only_what_passes(stack):
    sp = stack.spotify
    reply = await stack.command(
        "settings", {"remixes": True, "live": True, "mute_appearances": stack.guest}, subcommand="filters"
    )
    assert reply.content.startswith("Skipping remixes, live versions. Appearances muted: Guest Star.")
    choices = await stack.discord.autocomplete(
        stack.guild_id,
        stack.admin_id,
        "settings",
        {"unmute_appearances": "gue"},
        "unmute_appearances",
        subcommand="filters",
    )
    assert [c["value"] for c in choices] == [stack.guest]

    stack.clock.advance(hours=2)
    sp.add_album([stack.nova], "Glow", album_type="single", release_date="2026-11-16")
    sp.add_album([stack.nova], "Glow (Remixes)", album_type="single", release_date="2026-11-16")
    sp.add_album([stack.nova], "Glow (Live at Wembley)", album_type="album", release_date="2026-11-16")
    sp.add_album([stack.nova], "Duet", album_type="single", release_date="2026-11-16", appears_on=[stack.guest])
    stranger = sp.add_artist("Stranger")  # not followed: "Feature" reaches the server only as Guest's appearance
    sp.add_album([stranger], "Feature", album_type="single", release_date="2026-11-16", appears_on=[stack.guest])
    # Found by a check (posts nothing), so /preview has something to show.
    await stack.bot.core.runner.run("check", artist_ids=[stack.nova, stack.guest])

    before = len(stack.posted())
    preview = await stack.command("preview", user_id=stack.member_id)
    assert preview.ephemeral, preview.final
    assert sorted(e["title"] for e in preview.embeds) == ["Duet", "Glow"]
    assert "**2 releases** in 1 message" in preview.content
    assert "Not posted, ever: 1 live versions, 1 muted appearances, 1 remixes." in preview.content
    assert len(stack.posted()) == before, "/preview posts nothing"
    async with stack.bot.core.db.sessions() as s:
        assert (await s.scalars(select(Delivery).where(Delivery.status == "skipped"))).all() == []

    reply = await final_reply(stack, await stack.command("refresh"), "Checked")
    assert "2 new releases" in reply
    assert sorted(stack.posted_titles()[-2:]) == ["Duet", "Glow"]
    assert not {"Glow (Remixes)", "Glow (Live at Wembley)", "Feature"} & set(stack.posted_titles())

    # Turning the filters off does not post the past.
    await stack.command(
        "settings", {"remixes": False, "live": False, "unmute_appearances": stack.guest}, subcommand="filters"
    )
    reply = await final_reply(stack, await stack.command("refresh"), "Checked")
    assert "no new releases" in reply
    assert "Glow (Remixes)" not in stack.posted_titles()


async def test_history_lists_runs_with_posts(stack):
    reply = await stack.command("history", user_id=stack.member_id)
    lines = reply.embeds[0]["description"].splitlines()
    assert reply.ephemeral and len(lines) <= 10
    assert "/refresh · ok" in lines[0] and "0 posted" in lines[0]
    assert "/refresh · ok" in lines[1] and "2 posted, 3 skipped" in lines[1] and "requests" in lines[1]
    assert "checked 13/13 (100%)" in lines[1]


async def test_refresh_shows_progress_and_a_second_refresh_is_refused(stack):
    stack.bot.get_cog("Runs").progress_interval = 0.0
    stack.spotify.latency = 0.05
    try:
        first = await stack.discord.invoke(stack.guild_id, stack.admin_id, "refresh", {}, channel_id=stack.channel_id)
        await stack.until(lambda: first.edits, what="a progress edit")
        second = await stack.command("refresh")
        assert second.content == REFRESH_RUNNING_TEXT and second.ephemeral
        summary = await final_reply(stack, first, "Checked")
    finally:
        stack.spotify.latency = 0.0
        stack.bot.get_cog("Runs").progress_interval = 1.5
    progress = [e["content"] for e in first.edits[:-1]]
    assert progress and all(p.startswith("Checking… checked ") and p.endswith(" / 13 artists.") for p in progress)
    assert "Checked 13/13 artists" in summary and first.ephemeral


async def test_mention_role(stack):
    guild = stack.bot.get_guild(stack.guild_id)
    role = next(r for r in guild.roles if r.name == "Manager")
    reply = await stack.command("settings", {"role": role.id}, subcommand="mention")
    assert reply.content.startswith(f"Posts will mention <@&{role.id}> (and only that role).")
    status = await stack.command("status")
    assert {f["name"]: f["value"] for f in status.embeds[0]["fields"]}["Mention"] == f"<@&{role.id}>"
    reply = await stack.command("settings", {"role": guild.default_role.id}, subcommand="mention")
    assert "can't mention @everyone" in reply.content

    stack.clock.advance(hours=1)
    stack.spotify.add_album([stack.nova], "Ping Me", album_type="single", release_date="2026-11-17")
    await stack.bot.core.runner.run("check", artist_ids=[stack.nova])
    preview = await stack.command("preview")
    assert f"mentioning <@&{role.id}>" in preview.content

    await final_reply(stack, await stack.command("refresh"), "Checked")
    post = stack.posted()[-1]
    assert post["content"] == f"<@&{role.id}>"
    allowed = post["allowed_mentions"]
    assert [str(r) for r in allowed.get("roles")] == [str(role.id)] and not allowed.get("parse")

    reply = await stack.command("settings", {"clear": True}, subcommand="mention")
    assert reply.content == "Posts will mention nobody."
    reply = await stack.command("settings", {}, subcommand="mention", user_id=stack.member_id)
    assert "Manage Server" in reply.content
