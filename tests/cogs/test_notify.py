"""``cogs.notify``: ``/notify add``, ``remove`` (and their autocomplete), ``list`` and ``mode`` — for any
member, every answer private, always the invoking member's own subscriptions in this server.

Each test calls ``await cog.<command>.callback(cog, interaction, ...)`` with an autospec'd
``discord.Interaction`` and autospec'd command services (``bot.services``: see ``tests/cogs/mocks.py``).
"""

from __future__ import annotations

import datetime as dt

import pytest
from discord import app_commands

from bot.services.errors import UserError
from bot.services.notify import MemberSubscriptions, Subscribed
from cogs.notify import LIST_DESCRIPTION_LIMIT, Notify, list_embed
from tests.cogs.mocks import GUILD_ID, MEMBER_ID, handle_error, make_interaction, sent, text

pytestmark = pytest.mark.timeout(30)

NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
NOVA, GUEST = "1" * 22, "2" * 22


@pytest.fixture
def cog(bot) -> Notify:
    return Notify(bot)


def member():
    """An interaction by a plain member (no Manage Server)."""
    return make_interaction(user_id=MEMBER_ID, manage=False)


def test_every_subcommand_is_for_any_member_in_a_server(cog):
    group = cog.app_command
    assert group.name == "notify" and group.guild_only and group.default_permissions is None
    assert sorted(c.name for c in group.commands) == ["add", "list", "mode", "remove"]
    assert all(c.checks == [] and c.default_permissions is None for c in group.commands)
    mode = next(c for c in group.commands if c.name == "mode")
    assert [(ch.name, ch.value) for ch in mode.parameters[0].choices] == [
        ("mention: in this server's post", "mention"),
        ("dm: a direct message", "dm"),
    ]


async def test_add(cog, bot):
    bot.services.notify.subscribe.return_value = Subscribed(NOVA, "Nova_Lights", False, "mention")
    i = member()
    await cog.add.callback(cog, i, NOVA)
    bot.services.notify.subscribe.assert_awaited_once_with(GUILD_ID, MEMBER_ID, NOVA)
    assert text(i).startswith(r"🔔 You'll be mentioned in this server's post when **Nova\_Lights** releases")
    assert sent(i)["ephemeral"] is True


async def test_add_refused_is_a_private_error(cog, bot):
    bot.services.notify.subscribe.side_effect = UserError("This server doesn't follow “Zed”…")
    i = member()
    with pytest.raises(UserError) as info:
        await cog.add.callback(cog, i, "Zed")
    await handle_error(i, info.value)
    assert text(i) == "This server doesn't follow “Zed”…" and sent(i)["ephemeral"] is True


async def test_autocompletes(cog, bot):
    bot.services.notify.add_choices.return_value = [("Nova Lights", NOVA)]
    bot.services.notify.remove_choices.return_value = [("Guest", GUEST)]
    added = await cog.add_autocomplete(member(), "no")
    assert [(c.name, c.value) for c in added] == [("Nova Lights", NOVA)]
    bot.services.notify.add_choices.assert_awaited_once_with(GUILD_ID, "no")
    removed = await cog.remove_autocomplete(member(), "gu")
    assert [(c.name, c.value) for c in removed] == [("Guest", GUEST)]
    bot.services.notify.remove_choices.assert_awaited_once_with(GUILD_ID, MEMBER_ID, "gu")  # their own only


async def test_remove(cog, bot):
    bot.services.notify.unsubscribe.return_value = "Nova_Lights"
    i = member()
    await cog.remove.callback(cog, i, NOVA)
    bot.services.notify.unsubscribe.assert_awaited_once_with(GUILD_ID, MEMBER_ID, NOVA)
    assert text(i).startswith(r"You won't be notified of **Nova\_Lights** here any more.") and sent(i)["ephemeral"]


async def test_list_empty_and_full(cog, bot):
    bot.services.notify.subscriptions.return_value = MemberSubscriptions([], "mention", None)
    i = member()
    await cog.list_.callback(cog, i)
    bot.services.notify.subscriptions.assert_awaited_once_with(GUILD_ID, MEMBER_ID)
    assert "not notified of any artist" in text(i) and "`/notify mode mode:dm`" in text(i)
    assert sent(i)["ephemeral"] is True

    bot.services.notify.subscriptions.return_value = MemberSubscriptions(
        [(GUEST, "Guest"), (NOVA, "Nova_Lights")], "mention", NOW
    )
    i = member()
    await cog.list_.callback(cog, i)
    embed = sent(i)["embed"]
    assert embed.title == "You're notified of 2 artists in this server" and sent(i)["ephemeral"]
    assert embed.description.splitlines() == [
        f"• [Guest](<https://open.spotify.com/artist/{GUEST}>)",
        rf"• [Nova\_Lights](<https://open.spotify.com/artist/{NOVA}>)",
    ]
    how = embed.fields[0].value
    assert "**mentioned**" in how and f"<t:{int(NOW.timestamp())}:D>" in how and "switched to mentions" in how


def test_a_long_list_fits_one_embed():
    artists = [(f"{i:022d}", f"Artist {i} " + "x" * 280) for i in range(100)]
    embed = list_embed(MemberSubscriptions(artists, "dm", None))
    assert embed.title == "You're notified of 100 artists in this server"
    description = embed.description or ""
    assert len(description) <= LIST_DESCRIPTION_LIMIT
    lines = description.splitlines()
    assert lines[-1] == f"…and {100 - (len(lines) - 1)} more" and len(lines) > 5
    assert "**direct message**" in (embed.fields[0].value or "")
    assert len(embed) <= 6000


async def test_mode(cog, bot):
    bot.services.notify.set_mode.return_value = MemberSubscriptions([], "dm", None)
    i = member()
    await cog.mode.callback(cog, i, app_commands.Choice(name="dm: a direct message", value="dm"))
    bot.services.notify.set_mode.assert_awaited_once_with(GUILD_ID, MEMBER_ID, "dm")
    assert text(i).startswith("You'll get a direct message") and sent(i)["ephemeral"] is True
