"""Mocks spec'd on real discord.py objects for calling command callbacks directly.

In the style of python-discord/bot's test helpers: every mock is ``create_autospec`` of the real
class (``spec_set``: setting an attribute the class does not have fails too), so a cog using an
attribute or method that discord.py does not have, or calling one with arguments it does not take,
fails the test. The bot is ``MagicMock(spec=ReleaseBot)`` (an autospec of a whole ``commands.Bot``
costs ~45 ms, too much per interaction) holding real :class:`~bot.services.Services` whose five
services are autospecs. ``InteractionResponse`` keeps a real ``is_done`` state (flipped by
``defer`` / ``send_message`` / ``edit_message``), which ``cogs.common.reply`` relies on.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import MagicMock, create_autospec

import aiohttp
import discord
from discord import app_commands

from bot.discord_app.client import ReleaseBot
from bot.services import Services
from bot.services.follows import FollowService
from bot.services.guild_settings import GuildSettingsService
from bot.services.imports import Importer
from bot.services.notify import NotifyService
from bot.services.runs import RunService
from bot.services.upcoming import UpcomingService
from cogs.follows import Follows
from cogs.notices import on_app_command_error

GUILD_ID = 111
ADMIN_ID = 222
MEMBER_ID = 333
CHANNEL_ID = 444


def make_response() -> MagicMock:
    response = create_autospec(discord.InteractionResponse, instance=True, spec_set=True)
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
    interaction = create_autospec(discord.Interaction, instance=True, spec_set=True)
    interaction.guild_id = guild_id
    interaction.user = spec_mock(discord.Member)
    interaction.user.id = user_id
    interaction.permissions = discord.Permissions(manage_guild=manage)
    interaction.app_permissions = app_permissions or discord.Permissions(
        view_channel=True, send_messages=True, embed_links=True
    )
    interaction.response = make_response()
    interaction.followup = create_autospec(discord.Webhook, instance=True, spec_set=True)
    interaction.command = None
    interaction.data = data or {}
    interaction.client = make_bot()
    return interaction


def spec_mock(cls: type) -> Any:
    """An autospec of an instance of ``cls`` (``spec_set``): e.g. a ``discord.Member``, ``discord.Role``."""
    return create_autospec(cls, instance=True, spec_set=True)


def http_response(status: int, reason: str = "") -> MagicMock:
    """The ``aiohttp`` response a ``discord.HTTPException`` is built from."""
    return MagicMock(spec=aiohttp.ClientResponse, status=status, reason=reason)


def make_services() -> Services:
    """Real command services whose six services are autospecs of the real classes (async methods are
    AsyncMocks); no refresh running; no closed-DMs notice owed."""
    runs = spec_mock(RunService)
    runs.refresh_running.return_value = False
    runs.run_in_progress = False
    notify = spec_mock(NotifyService)
    notify.take_dm_notice.return_value = False
    return Services(
        guild_settings=spec_mock(GuildSettingsService),
        follows=spec_mock(FollowService),
        runs=runs,
        imports=spec_mock(Importer),
        notify=notify,
        upcoming=spec_mock(UpcomingService),
    )


def make_bot(services: Services | None = None) -> MagicMock:
    """A ``ReleaseBot`` whose ``services`` are :func:`make_services` (or ``services``)."""
    bot = MagicMock(spec=ReleaseBot)
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
