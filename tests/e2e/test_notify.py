"""End to end through the fakes, with the real discord.py client: a plain member (no Manage Server)
uses ``/notify add`` · ``remove`` · ``list`` · ``mode`` (with their autocompletes), the 🔔 Notify me
buttons and the "🔔 Notify me about…" select on real posts (also after a restart, and the Stop
button offered when pressed again); the closed-DMs notice after ``mark_dms_closed`` is told once per
server at the member's next command there; and two servers never see each other's subscriptions."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from fakes.discord_fake import DiscordFake
from fakes.stack import Stack
from storage import members
from storage.models import Subscription
from tests import backend

pytestmark = pytest.mark.timeout(120)

DM_NOTICE = "your DMs are closed to me"


def component(message: dict, *, label: str | None = None, custom_id: str | None = None) -> dict:
    for row in message.get("components") or []:
        for c in row.get("components") or []:
            if (label is not None and c.get("label") == label) or (
                custom_id is not None and c.get("custom_id") == custom_id
            ):
                return c
    raise AssertionError(f"no component {label or custom_id!r} in {message.get('components')}")


async def press(stack: Stack, message: dict, custom_id: str, user_id: int, values=None):
    handle = await stack.discord.invoke_component(message, custom_id, user_id, values)
    await handle.wait_done(timeout=15)
    return handle


async def notify(stack: Stack, sub: str, options: dict | None = None, *, user_id: int, guild_id: int | None = None):
    """``/notify <sub>`` as ``user_id`` in ``guild_id`` (default: the stack's guild), its final reply."""
    guild_id = guild_id or stack.guild_id
    channel_id = stack.channel_id if guild_id == stack.guild_id else None
    handle = await stack.discord.invoke(
        guild_id, user_id, "notify", options or {}, subcommand=sub, channel_id=channel_id
    )
    await handle.wait_done(timeout=15)
    return handle


async def autocomplete(stack: Stack, sub: str, text: str, *, user_id: int, guild_id: int | None = None) -> list:
    choices = await stack.discord.autocomplete(
        guild_id or stack.guild_id, user_id, "notify", {"artist": text}, "artist", subcommand=sub
    )
    return [(c["name"], c["value"]) for c in choices]


async def subscriptions(stack: Stack) -> set[tuple[int, int, str]]:
    async with backend.running_bot(stack).core.db.sessions() as session:
        rows = await session.execute(select(Subscription.guild_id, Subscription.user_id, Subscription.artist_id))
        return {(g, u, a) for g, u, a in rows}


def add_second_guild(fake: DiscordFake, member_id: int) -> tuple[int, int]:
    """Another server with the same plain member and an admin of its own: ``(guild id, admin id)``."""
    guild_id = fake.add_guild("Other Club")
    fake.add_channel(guild_id, "releases")
    admin_id = fake.add_member(guild_id, name="other-admin", manage_guild=True)
    fake.add_member(guild_id, user_id=member_id, name="listener")
    return guild_id, admin_id


async def test_a_member_uses_every_command_and_two_servers_never_see_each_others(tmp_path):
    stack = await backend.create_stack(tmp_path)
    sp = stack.spotify
    try:
        nova, guest, harbour = (sp.add_artist(n) for n in ("Nova Lights", "Guest Star", "The Quiet Harbour"))
        other_guild, other_admin = add_second_guild(stack.discord, stack.member_id)
        await stack.start_bot()
        for artist in (nova, guest, harbour):
            await stack.command("follow", {"artist": artist})
        followed = await stack.discord.invoke(other_guild, other_admin, "follow", {"artist": harbour})
        await followed.wait_done(timeout=15)
        m = stack.member_id

        # Synced for everyone: no default member permissions, servers only.
        [command] = [c for c in stack.discord.registered_commands if c["name"] == "notify"]
        assert command.get("default_member_permissions") is None
        assert sorted(o["name"] for o in command["options"]) == ["add", "list", "mode", "remove"]

        # /notify add: the autocomplete lists this server's follows; the member needs no permission.
        assert await autocomplete(stack, "add", "", user_id=m) == [
            ("Guest Star", guest),
            ("Nova Lights", nova),
            ("The Quiet Harbour", harbour),
        ]
        added = await notify(stack, "add", {"artist": nova}, user_id=m)
        assert added.ephemeral and "You'll be mentioned in this server's post when **Nova Lights**" in added.content
        by_name = await notify(stack, "add", {"artist": "the quiet harbour"}, user_id=m)
        assert "**The Quiet Harbour**" in by_name.content
        again = await notify(stack, "add", {"artist": nova}, user_id=m)
        assert "already notified of **Nova Lights**" in again.content
        refused = await notify(stack, "add", {"artist": "Nobody Known"}, user_id=m)
        assert refused.ephemeral and "doesn't follow “Nobody Known”" in refused.content

        # /notify mode and /notify list (an embed, private).
        mode = await notify(stack, "mode", {"mode": "dm"}, user_id=m)
        assert mode.ephemeral and mode.content.startswith("You'll get a direct message")
        listed = await notify(stack, "list", user_id=m)
        [embed] = listed.embeds
        assert listed.ephemeral and embed["title"] == "You're notified of 2 artists in this server"
        assert [line.split("](")[0] for line in embed["description"].splitlines()] == [
            "• [Nova Lights",
            "• [The Quiet Harbour",
        ]
        assert "**direct message**" in embed["fields"][0]["value"]

        # Another member sees none of it; the admin's list is their own.
        admins = await notify(stack, "list", user_id=stack.admin_id)
        assert "not notified of any artist" in admins.content and admins.embeds == []
        assert await autocomplete(stack, "remove", "", user_id=stack.admin_id) == []

        # The other server: same member, nothing of the first server's subscriptions or mode.
        assert await autocomplete(stack, "add", "", user_id=m, guild_id=other_guild) == [("The Quiet Harbour", harbour)]
        there = await notify(stack, "list", user_id=m, guild_id=other_guild)
        assert "not notified of any artist" in there.content and "You're **mentioned**" in there.content
        assert await autocomplete(stack, "remove", "", user_id=m, guild_id=other_guild) == []
        not_here = await notify(stack, "add", {"artist": nova}, user_id=m, guild_id=other_guild)
        assert "doesn't follow “Nova Lights”" in not_here.content
        await notify(stack, "add", {"artist": harbour}, user_id=m, guild_id=other_guild)
        assert await subscriptions(stack) == {
            (stack.guild_id, m, nova),
            (stack.guild_id, m, harbour),
            (other_guild, m, harbour),
        }

        # /notify remove: the autocomplete lists the member's own subscriptions here only.
        assert await autocomplete(stack, "remove", "", user_id=m) == [
            ("Nova Lights", nova),
            ("The Quiet Harbour", harbour),
        ]
        removed = await notify(stack, "remove", {"artist": harbour}, user_id=m)
        assert removed.ephemeral and "won't be notified of **The Quiet Harbour** here" in removed.content
        gone = await notify(stack, "remove", {"artist": harbour}, user_id=m)
        assert "not notified of “" in gone.content
        assert await subscriptions(stack) == {(stack.guild_id, m, nova), (other_guild, m, harbour)}

        # The first server unfollows Nova: its subscriptions to Nova go; the other server's stay.
        await stack.command("unfollow", {"artist": nova})
        assert await subscriptions(stack) == {(other_guild, m, harbour)}
    finally:
        await stack.close()


async def test_notify_buttons_and_select_on_real_posts(tmp_path):
    stack = await backend.create_stack(tmp_path)
    sp = stack.spotify
    try:
        names = ["Nova Lights", "Guest Star", "Cy", "Dee", "Eve"]
        ids = [sp.add_artist(n) for n in names]
        nova, guest = ids[0], ids[1]
        await stack.start_bot()
        await stack.command("settings", {"channel": stack.channel_id}, subcommand="channel")
        for artist in ids:
            await stack.command("follow", {"artist": artist})
        m = stack.member_id

        # A post of one release by two artists: one 🔔 button per artist, for any member.
        stack.clock.advance(hours=20)
        sp.add_album([nova, guest], "Duet", album_type="single", release_date="2026-11-17")
        await stack.command("refresh")
        post = stack.posted()[-1]
        bell = component(post, label="🔔 Notify me: Nova Lights")
        assert bell["custom_id"] == f"rb:notify:{nova}"
        assert component(post, label="🔔 Notify me: Guest Star")["custom_id"] == f"rb:notify:{guest}"
        assert [c["custom_id"] for c in post["components"][0]["components"]] == [
            f"rb:unfollow:{nova}",
            f"rb:unfollow:{guest}",
        ]  # the admins' row stays first

        pressed = await press(stack, post, bell["custom_id"], m)
        assert pressed.ephemeral
        assert pressed.content.startswith("🔔 You'll be mentioned in this server's post when **Nova Lights**")
        assert "`/notify mode`" in pressed.content and "`/notify remove`" in pressed.content
        assert await subscriptions(stack) == {(stack.guild_id, m, nova)}

        # Pressed again: nothing changes; the private answer offers to stop.
        again = await press(stack, post, bell["custom_id"], m)
        assert again.ephemeral and "already notified of **Nova Lights**" in again.content
        stop = component(again.final, label="Stop notifying me")
        assert stop["custom_id"] == f"rb:notify-stop:{nova}"
        stopped = await press(stack, again.final, stop["custom_id"], m)
        assert stopped.callback["type"] == 6  # the private answer is edited in place…
        assert "won't be notified of **Nova Lights** here" in stopped.final["content"]
        assert stopped.final["components"] == []  # …without its button
        assert await subscriptions(stack) == set()

        # After a restart the buttons of the old post still work (persistent dynamic items).
        await stack.restart_bot()
        after = await press(stack, post, component(post, label="🔔 Notify me: Guest Star")["custom_id"], m)
        assert "**Guest Star**" in after.content and after.ephemeral
        admin = await press(stack, post, bell["custom_id"], stack.admin_id)  # an admin is a member too
        assert "**Nova Lights**" in admin.content
        assert await subscriptions(stack) == {(stack.guild_id, m, guest), (stack.guild_id, stack.admin_id, nova)}

        # A digest of five artists: the "🔔 Notify me about…" select instead of buttons.
        # (Every album exists before the clock moves: a weekly run the move makes due sees all five.)
        for artist, name in zip(ids, names, strict=True):
            sp.add_album([artist], f"{name} New", album_type="single", release_date="2026-11-18")
        stack.clock.advance(hours=20)
        await stack.command("refresh")
        digest = stack.posted()[-1]
        assert len(digest["embeds"]) == 5 and len(digest["components"]) == 3
        select = component(digest, custom_id="rb:notify-select")
        assert select["placeholder"] == "🔔 Notify me about…"
        assert sorted(o["label"] for o in select["options"]) == sorted(names)
        chosen = await press(stack, digest, "rb:notify-select", m, [ids[3]])
        assert chosen.ephemeral and "**Dee**" in chosen.content
        assert (stack.guild_id, m, ids[3]) in await subscriptions(stack)

        # The server unfollows Dee: the old post's button now says so, nothing is subscribed.
        await stack.command("unfollow", {"artist": ids[3]})
        late = await press(stack, digest, "rb:notify-select", m, [ids[3]])
        assert "doesn't follow “Dee”" in late.content
        assert (stack.guild_id, m, ids[3]) not in await subscriptions(stack)
    finally:
        await stack.close()


def dm_notices(handle) -> list[dict]:
    return [f for f in handle.followups if DM_NOTICE in (f.get("content") or "")]


async def test_closed_dms_are_told_once_per_server_at_the_next_command(tmp_path):
    stack = await backend.create_stack(tmp_path)
    try:
        other_guild, _admin = add_second_guild(stack.discord, stack.member_id)
        await stack.start_bot()
        m = stack.member_id
        # The member chose DMs in both servers earlier (as `/notify mode mode:dm` stores it: the command
        # itself is in the first test; here its notice listener must not race the 50007 below) …
        bot = backend.running_bot(stack)
        for guild_id in (stack.guild_id, other_guild):
            await bot.services.guild_settings.ensure_guild(guild_id)
            async with bot.core.db.transaction() as session:
                await members.set_mode(session, guild_id, m, "dm")
        # … and the delivery side met Discord's 50007 for this user.
        async with bot.core.db.transaction() as session:
            assert await members.mark_dms_closed(session, m, now=stack.clock()) == 2

        first = await stack.command("following", user_id=m)  # any command
        [told] = await stack.until(lambda: dm_notices(first), timeout=5, what="the closed-DMs notice")
        assert told["flags"] & 64  # private
        assert "now mentioned in this server's posts" in told["content"]
        assert "`/notify mode mode:dm`" in told["content"]
        second = await stack.command("history", user_id=m)
        third = await notify(stack, "list", user_id=m)  # by now the second command's listener has run
        assert dm_notices(second) == [] and dm_notices(third) == []
        assert "switched to mentions" in third.content  # /notify list says why it is mentions now
        others = await stack.command("following", user_id=stack.admin_id)
        assert dm_notices(others) == []  # only the member concerned is told

        # The other server tells it once too, at the member's first command there.
        there = await notify(stack, "list", user_id=m, guild_id=other_guild)
        await stack.until(lambda: dm_notices(there), timeout=5, what="the notice in the other server")

        # A restart does not tell it again; switching back to DMs answers with the warning.
        await stack.restart_bot()
        back = await notify(stack, "mode", {"mode": "dm"}, user_id=m)
        assert "open them first" in back.content
        after = await notify(stack, "list", user_id=m)
        assert dm_notices(back) == [] and dm_notices(after) == []
    finally:
        await stack.close()
