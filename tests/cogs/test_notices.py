"""``cogs.notices``: the cog installs the tree's error handler and the channel-notice listener while
it is loaded, and puts the tree's previous handler back when unloaded. (What they answer:
``tests/cogs/test_callbacks.py`` and ``tests/e2e/test_channel_problems.py``.)"""

from __future__ import annotations

from unittest.mock import MagicMock

import discord
from discord import app_commands
from discord.ext import commands

from cogs.notices import Notices, on_app_command_error


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
