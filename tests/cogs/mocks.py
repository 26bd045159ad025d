"""Mocks spec'd on real discord.py objects for calling command callbacks directly.

In the style of python-discord/bot's test helpers: every mock is ``create_autospec`` /
``MagicMock(spec=...)`` of the real class, so a cog using an attribute or method that
discord.py does not have fails the test. ``InteractionResponse`` keeps a real
``is_done`` state (flipped by ``defer`` / ``send_message`` / ``edit_message``), which
``cogs.common.reply`` relies on.
"""

from __future__ import annotations

from unittest.mock import MagicMock, create_autospec

import discord
from discord import app_commands
from discord.ext import commands

from bot.services import Services
from bot.services.follows import FollowService
from bot.services.guild_settings import GuildSettingsService
from bot.services.imports import PlaylistImporter
from bot.services.runs import RunService
from cogs.common import on_app_command_error
from cogs.follows import Follows

GUILD_ID = 111
ADMIN_ID = 222
MEMBER_ID = 333
CHANNEL_ID = 444


def make_response() -> MagicMock:
    response = create_autospec(discord.InteractionResponse, instance=True)
    state = {"done": False}

    def done(*_args, **_kwargs) -> None:
        state["done"] = True

    response.is_done.side_effect = lambda: state["done"]
    for name in ("defer", "send_message", "edit_message"):
        getattr(response, name).side_effect = done
    return response


def make_interaction(
    *,
    user_id: int = ADMIN_ID,
    manage: bool = True,
    guild_id: int | None = GUILD_ID,
    app_permissions: discord.Permissions | None = None,
    data: dict | None = None,
) -> MagicMock:
    """A ``discord.Interaction`` in guild ``guild_id`` by ``user_id`` (Manage Server when ``manage``), carrying
    the component payload ``data`` (``{"custom_id": …, "values": […]}``), received by a :func:`make_bot` client."""
    interaction = create_autospec(discord.Interaction, instance=True)
    interaction.guild_id = guild_id
    interaction.user = MagicMock(spec=discord.Member)
    interaction.user.id = user_id
    interaction.permissions = discord.Permissions(manage_guild=manage)
    interaction.app_permissions = app_permissions or discord.Permissions(
        view_channel=True, send_messages=True, embed_links=True
    )
    interaction.response = make_response()
    interaction.followup = create_autospec(discord.Webhook, instance=True)
    interaction.command = None
    interaction.data = data or {}
    interaction.client = make_bot()
    return interaction


def make_services() -> MagicMock:
    """Command services whose four services are autospecs of the real classes (async methods are AsyncMocks)."""
    services = MagicMock(spec=Services)
    services.guild_settings = create_autospec(GuildSettingsService, instance=True)
    services.follows = create_autospec(FollowService, instance=True)
    services.runs = create_autospec(RunService, instance=True)
    services.imports = create_autospec(PlaylistImporter, instance=True)
    services.runs.refresh_running.return_value = False
    services.runs.run_in_progress = False
    return services


def make_bot(services: MagicMock | None = None) -> MagicMock:
    """A bot whose ``services`` are :func:`make_services` (or ``services``)."""
    bot = MagicMock(spec=commands.Bot)
    bot.services = services or make_services()
    return bot


def sent(interaction: MagicMock) -> dict:
    """The kwargs of the one visible reply: ``response.send_message``, ``followup.send`` or the last edit."""
    for mock in (
        interaction.response.send_message,
        interaction.followup.send,
        interaction.edit_original_response,
        interaction.response.edit_message,
    ):
        if mock.await_count:
            args, kwargs = mock.await_args
            return {"content": args[0], **kwargs} if args else dict(kwargs)
    raise AssertionError("the command sent no reply")


def text(interaction: MagicMock) -> str:
    """Content of the reply (see :func:`sent`)."""
    return sent(interaction).get("content") or ""


async def handle_error(interaction, exc: Exception) -> None:
    """What the tree does with an exception raised by a callback."""
    error = (
        exc if isinstance(exc, app_commands.AppCommandError) else app_commands.CommandInvokeError(Follows.follow, exc)
    )
    await on_app_command_error(interaction, error)
