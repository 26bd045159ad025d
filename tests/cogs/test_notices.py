"""``cogs.notices``: the cog installs the tree's error handler and the notice listener while it is
loaded, and puts the tree's previous handler back when unloaded; the closed-DMs notice is told once,
privately, and owed again when it cannot be sent. (What they answer end to end:
``tests/e2e/test_channel_problems.py``, ``tests/e2e/test_notify.py``.)"""

from __future__ import annotations

from unittest.mock import MagicMock

import discord
from discord import app_commands
from discord.ext import commands

from bot.services.notify import dm_closed_text
from cogs.notices import Notices, dm_closed_notice, on_app_command_error
from tests.cogs.mocks import GUILD_ID, MEMBER_ID, http_response, make_interaction, sent, text


async def test_the_cog_installs_the_error_handler_and_puts_the_previous_one_back():
    client = discord.Client(intents=discord.Intents.none())
    tree: app_commands.CommandTree = app_commands.CommandTree(client)
    bot = MagicMock(spec=commands.Bot)
    bot.tree = tree
    before = tree.on_error
    cog = Notices(bot)
    await cog.cog_load()
    assert tree.on_error is on_app_command_error
    await cog.cog_unload()
    assert tree.on_error == before and tree.on_error is not on_app_command_error
    await client.close()


def test_the_cog_listens_for_completed_commands():
    assert [name for name, _method in Notices(MagicMock(spec=commands.Bot)).get_listeners()] == [
        "on_app_command_completion"
    ]


async def test_the_closed_dms_notice_is_told_privately_after_a_command():
    i = make_interaction(user_id=MEMBER_ID, manage=False)
    i.client.services.guild_settings.take_channel_notice.return_value = None
    i.client.services.notify.take_dm_notice.return_value = True
    command = MagicMock(spec=app_commands.Command)
    command.qualified_name = "following"
    await Notices(i.client).on_app_command_completion(i, command)
    i.client.services.notify.take_dm_notice.assert_awaited_once_with(GUILD_ID, MEMBER_ID)
    assert text(i) == dm_closed_text() and sent(i)["ephemeral"] is True
    assert "`/notify mode mode:dm`" in text(i)


async def test_no_notice_when_none_is_owed_or_outside_a_server():
    i = make_interaction(user_id=MEMBER_ID, manage=False)  # take_dm_notice → False (tests/cogs/mocks.py)
    await dm_closed_notice(i)
    i.response.send_message.assert_not_awaited()
    i.followup.send.assert_not_awaited()
    dm = make_interaction(guild_id=None)
    await dm_closed_notice(dm)
    dm.client.services.notify.take_dm_notice.assert_not_awaited()


async def test_a_notice_that_cannot_be_sent_is_owed_again():
    i = make_interaction(user_id=MEMBER_ID, manage=False)
    notify = i.client.services.notify
    notify.take_dm_notice.return_value = True
    i.response.send_message.side_effect = discord.HTTPException(http_response(500), "boom")
    await dm_closed_notice(i)
    notify.restore_dm_notice.assert_awaited_once_with(GUILD_ID, MEMBER_ID)
    failing = make_interaction(user_id=MEMBER_ID, manage=False)
    failing.client.services.notify.take_dm_notice.side_effect = RuntimeError("database down")
    await dm_closed_notice(failing)  # logged; the command's own reply is untouched
    failing.response.send_message.assert_not_awaited()
