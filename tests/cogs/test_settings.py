"""``cogs.settings``: ``/settings channel``, ``schedule``, ``types``, ``filters`` and ``mention``.

Each test calls ``await cog.<command>.callback(cog, interaction, ...)`` with an autospec'd
``discord.Interaction`` and autospec'd command services (``bot.services``: see ``tests/cogs/mocks.py``);
the cogs come from the fixtures of ``tests/cogs/conftest.py``.
"""

from __future__ import annotations

import datetime as dt
from unittest.mock import MagicMock

import discord
import pytest
from discord import app_commands

from bot.delivery.planner import GuildFilters
from bot.services.errors import UserError
from tests.cogs.mocks import CHANNEL_ID, GUILD_ID, make_interaction, sent, spec_mock, text

pytestmark = pytest.mark.timeout(30)

NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
ARTIST = "4Z8W4fKeB5YxbusRsdQVPb"


# --- /settings channel / schedule / types ---------------------------------------------------------


def guild_with_channel(perms: discord.Permissions | None, *, visible: bool = True) -> MagicMock:
    guild = spec_mock(discord.Guild)
    guild.me = spec_mock(discord.Member)
    channel = spec_mock(discord.TextChannel)
    channel.id = CHANNEL_ID
    channel.mention = f"<#{CHANNEL_ID}>"
    channel.permissions_for.return_value = perms
    guild.get_channel.return_value = channel if visible else None
    return guild


async def test_settings_channel(settings, bot):
    i = make_interaction()
    i.guild = guild_with_channel(discord.Permissions(view_channel=True, send_messages=True, embed_links=True))
    channel = spec_mock(discord.TextChannel)
    channel.id = CHANNEL_ID
    await settings.channel.callback(settings, i, channel)
    bot.services.guild_settings.set_channel.assert_awaited_once_with(GUILD_ID, CHANNEL_ID)
    assert text(i) == f"New releases will be posted in <#{CHANNEL_ID}>."


@pytest.mark.parametrize(
    "perms, visible, expected",
    [
        (discord.Permissions(view_channel=True), True, "missing Send Messages, Embed Links"),
        (None, False, "I can't see that channel"),
    ],
)
async def test_settings_channel_refused(settings, bot, perms, visible, expected):
    i = make_interaction()
    i.guild = guild_with_channel(perms, visible=visible)
    channel = spec_mock(discord.TextChannel)
    channel.id = CHANNEL_ID
    with pytest.raises(UserError, match=expected):
        await settings.channel.callback(settings, i, channel)
    bot.services.guild_settings.set_channel.assert_not_awaited()


async def test_settings_schedule(settings, bot):
    bot.services.guild_settings.set_schedule.return_value = NOW
    i = make_interaction()
    await settings.schedule.callback(
        settings, i, app_commands.Choice(name="Friday", value="friday"), " 18:30 ", "Europe/Berlin"
    )
    bot.services.guild_settings.set_schedule.assert_awaited_once_with(GUILD_ID, "friday", " 18:30 ", "Europe/Berlin")
    assert text(i).startswith("New releases will be posted every Friday at 18:30 (Europe/Berlin).")
    bot.services.guild_settings.set_schedule.side_effect = UserError("Unknown time zone 'Mars/Base'.")
    with pytest.raises(UserError):
        await settings.schedule.callback(
            settings, make_interaction(), app_commands.Choice(name="Monday", value="monday"), "10:00", "Mars/Base"
        )


async def test_settings_types(settings, bot):
    bot.services.guild_settings.album_groups.return_value = ("album", "single", "compilation")
    i = make_interaction()
    await settings.types.callback(settings, i)
    assert text(i) == "Posting: Albums, Singles, Compilations. Nothing was changed."
    bot.services.guild_settings.switch_album_groups.return_value = ("album", "appears_on")
    i = make_interaction()
    await settings.types.callback(settings, i, single=False, compilation=False, appears_on=True)
    # The service turns the groups on and off atomically (tests/bot/services/test_guild_settings.py).
    assert bot.services.guild_settings.switch_album_groups.await_args.args == (
        GUILD_ID,
        {"album": None, "single": False, "compilation": False, "appears_on": True},
    )
    assert text(i) == "Posting: Albums, Appears on."
    bot.services.guild_settings.switch_album_groups.side_effect = UserError(
        "That would post nothing: keep at least one release type. Nothing was changed."
    )
    with pytest.raises(UserError, match="at least one"):
        await settings.types.callback(settings, make_interaction(), album=False, single=False, compilation=False)


# --- /settings filters --------------------------------------------------------------------------


async def test_settings_filters_show(settings, bot):
    bot.services.guild_settings.filters.return_value = GuildFilters()
    i = make_interaction()
    await settings.filters.callback(settings, i)
    assert text(i) == "No title filter: every version is posted. Nothing was changed."
    bot.services.guild_settings.set_filters.assert_not_awaited()


async def test_settings_filters_set(settings, bot):
    bot.services.guild_settings.set_filters.return_value = GuildFilters(
        frozenset({"remix", "sped_up"}), frozenset({ARTIST})
    )
    bot.services.follows.artist_names.return_value = {ARTIST: "Nova_Lights"}
    i = make_interaction()
    await settings.filters.callback(settings, i, remixes=True, live=False, sped_up=True, mute_appearances=ARTIST)
    bot.services.guild_settings.set_filters.assert_awaited_once_with(
        GUILD_ID, skip={"remix": True, "live": False, "sped_up": True, "instrumental": None}, mute=ARTIST, unmute=None
    )
    assert text(i).startswith(r"Skipping remixes, sped-up / slowed versions. Appearances muted: Nova\_Lights.")
    assert "never posted" in text(i)


async def test_settings_filters_unmute_and_errors(settings, bot):
    bot.services.guild_settings.set_filters.return_value = GuildFilters()
    i = make_interaction()
    await settings.filters.callback(settings, i, unmute_appearances=ARTIST)
    assert bot.services.guild_settings.set_filters.await_args.kwargs["unmute"] == ARTIST
    bot.services.guild_settings.set_filters.side_effect = UserError("This server doesn't follow “x”.")
    with pytest.raises(UserError):
        await settings.filters.callback(settings, make_interaction(), mute_appearances="x")


async def test_settings_filters_autocomplete(settings, bot):
    bot.services.follows.followed_choices.return_value = [("Nova Lights", ARTIST)]
    choices = await settings.mute_autocomplete(make_interaction(), "no")
    assert [(c.name, c.value) for c in choices] == [("Nova Lights", ARTIST)]
    bot.services.guild_settings.filters.return_value = GuildFilters(mute_appearances=frozenset({ARTIST, "B" * 22}))
    bot.services.follows.artist_names.return_value = {ARTIST: "Nova Lights", "B" * 22: "Bright Harbour"}
    choices = await settings.unmute_autocomplete(make_interaction(), "")
    assert [c.name for c in choices] == ["Bright Harbour", "Nova Lights"]
    choices = await settings.unmute_autocomplete(make_interaction(), "nov")
    assert [(c.name, c.value) for c in choices] == [("Nova Lights", ARTIST)]


# --- /settings mention --------------------------------------------------------------------------


def role(role_id: int = 999, *, default: bool = False, mentionable: bool = True) -> MagicMock:
    r = spec_mock(discord.Role)
    r.id = role_id
    r.mention = f"<@&{role_id}>"
    r.mentionable = mentionable
    r.is_default.return_value = default
    return r


async def test_settings_mention_set(settings, bot):
    i = make_interaction()
    await settings.mention.callback(settings, i, role=role())
    bot.services.guild_settings.set_mention_role.assert_awaited_once_with(GUILD_ID, 999)
    assert text(i) == "Posts will mention <@&999> (and only that role)."
    assert sent(i)["allowed_mentions"].roles is False  # the confirmation itself pings nobody


async def test_settings_mention_unmentionable_role_warns(settings, bot):
    i = make_interaction()
    await settings.mention.callback(settings, i, role=role(mentionable=False))
    assert "not mentionable" in text(i)
    i = make_interaction(app_permissions=discord.Permissions(mention_everyone=True))
    await settings.mention.callback(settings, i, role=role(mentionable=False))
    assert "not mentionable" not in text(i)


async def test_settings_mention_show_and_clear(settings, bot):
    bot.services.guild_settings.mention_role.return_value = 999
    i = make_interaction()
    await settings.mention.callback(settings, i)
    assert text(i).startswith("Posts mention <@&999>.") and "Nothing was changed" in text(i)
    bot.services.guild_settings.set_mention_role.assert_not_awaited()
    bot.services.guild_settings.mention_role.return_value = None
    i = make_interaction()
    await settings.mention.callback(settings, i)
    assert text(i).startswith("Posts mention nobody.")
    i = make_interaction()
    await settings.mention.callback(settings, i, clear=True)
    bot.services.guild_settings.set_mention_role.assert_awaited_once_with(GUILD_ID, None)
    assert text(i) == "Posts will mention nobody."


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"role": role(default=True)}, "can't mention @everyone"),
        ({"role": role(), "clear": True}, "not both"),
    ],
)
async def test_settings_mention_refused(settings, bot, kwargs, expected):
    with pytest.raises(UserError, match=expected):
        await settings.mention.callback(settings, make_interaction(), **kwargs)
    bot.services.guild_settings.set_mention_role.assert_not_awaited()
