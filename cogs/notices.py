"""What the bot tells a member besides a command's own reply: errors as clear ephemeral replies (the
app command tree's error handler) and, once each, that the server's release channel cannot be posted
to and that Discord refused the member a direct message so they were switched to mentions (an
``on_app_command_completion`` listener).

The :class:`Notices` cog installs both while loaded — the tree's handler in ``cog_load`` and the
one before put back in ``cog_unload`` (as Rapptz/RoboDanny does), the listener with the cog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_app.interactions import services_of
from bot.services.errors import UserError, store_unwritable_text, unwritable_reason
from bot.services.notify import dm_closed_text
from cogs.common import MANAGE_GUILD_TEXT, reply

if TYPE_CHECKING:
    from bot.discord_app.client import ReleaseBot

log = logging.getLogger(__name__)

FAILED_TEXT = "Something went wrong on my side; nothing was changed. Please try again."

#: commands whose own reply already shows a channel problem (no extra notice; it counts as told)
SHOWS_CHANNEL_PROBLEM = frozenset({"status", "refresh"})

TreeErrorHandler = Callable[..., Coroutine[Any, Any, None]]
"""A command tree's ``on_error``: ``await handler(interaction, error)``."""


async def on_app_command_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
    """Tree-wide error handler: user errors and failed checks become ephemeral replies; a database that
    cannot be written (disk full, read-only) is logged as such in one line and told to the member
    (:func:`bot.services.errors.store_unwritable_text`); the rest is logged and answered with
    :data:`FAILED_TEXT` (nothing was changed)."""
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(original, UserError):
        message = str(original)
    elif isinstance(error, app_commands.NoPrivateMessage):
        message = "This command works only inside a server."
    elif isinstance(error, app_commands.CheckFailure):
        message = str(error) or MANAGE_GUILD_TEXT
    elif (unwritable := store_unwritable_text(original)) is not None:
        log.error(
            "command %s failed: the database cannot be written: %s; nothing was changed — free space on its "
            "disk or make it writable again, and the bot goes on by itself",
            interaction.command and interaction.command.qualified_name,
            unwritable_reason(original),
        )
        message = unwritable
    else:
        log.error("command %s failed", interaction.command and interaction.command.qualified_name, exc_info=original)
        message = FAILED_TEXT
    try:
        await reply(interaction, message)
    except discord.HTTPException:
        log.warning("could not deliver the error reply", exc_info=True)


def channel_problem_text(channel_id: int | None, problem: str) -> str:
    """The one-time notice about a channel the bot cannot post to, with the fix."""
    where = f"<#{channel_id}>" if channel_id else "the release channel"
    return (
        f"⚠ New releases could not be posted in {where}: {problem}. Nothing is lost: they stay pending and "
        f"are posted once this is fixed — give me View Channel, Send Messages and Embed Links there, or pick "
        f"another channel with `/settings channel`. (`/status` shows this too.)"
    )


async def channel_problem_notice(
    interaction: discord.Interaction, command: app_commands.Command[Any, ..., Any] | app_commands.ContextMenu
) -> None:
    """After a command: the first command used in a server after its channel started failing (403/404)
    gets an ephemeral follow-up saying so, once.

    "Told" is stored (``GuildSettingsService.take_channel_notice``), so a restart or another
    bot process does not repeat it; a new problem (after a successful post or a channel change)
    is told again. ``/status`` and ``/refresh`` show the problem in their own reply and only
    mark it told.
    """
    if interaction.guild_id is None:
        return
    settings = services_of(interaction).guild_settings
    try:
        notice = await settings.take_channel_notice(interaction.guild_id)
    except Exception:
        log.warning("could not check the channel notice of guild %s", interaction.guild_id, exc_info=True)
        return
    if notice is None or command.qualified_name.split(" ")[0] in SHOWS_CHANNEL_PROBLEM:
        return
    channel_id, problem = notice
    try:
        await reply(interaction, channel_problem_text(channel_id, problem))
    except discord.HTTPException:
        log.warning("could not send the channel notice to guild %s", interaction.guild_id, exc_info=True)
        await settings.forget_channel_notice(interaction.guild_id)  # not told after all: the next command tries again


async def dm_closed_notice(interaction: discord.Interaction) -> None:
    """After a command: a member whom Discord refused a direct message (50007; the delivery side switched
    them from ``dm`` to ``mention`` mode) is told so privately, once, at their first command in the
    server afterwards — with how to switch back (:func:`bot.services.notify.dm_closed_text`).

    "Owed" is stored per member and guild (``members.dm_notice_pending``) and taken by one
    conditional write (``NotifyService.take_dm_notice``), so two commands at the same instant, in
    two processes, tell it once; when the message cannot be sent it is owed again.
    """
    if interaction.guild_id is None:
        return
    notify = services_of(interaction).notify
    user_id = interaction.user.id
    try:
        owed = await notify.take_dm_notice(interaction.guild_id, user_id)
    except Exception:
        log.warning("could not check the DM notice of user %s", user_id, exc_info=True)
        return
    if not owed:
        return
    try:
        await reply(interaction, dm_closed_text())
    except discord.HTTPException:
        log.warning("could not tell user %s that their DMs are closed", user_id, exc_info=True)
        await notify.restore_dm_notice(interaction.guild_id, user_id)  # not told after all: the next command tries


class Notices(commands.Cog):
    """Installs :func:`on_app_command_error` on the bot's command tree and listens for completed commands."""

    def __init__(self, bot: ReleaseBot) -> None:
        self.bot = bot
        self._previous_error_handler: TreeErrorHandler | None = None

    async def cog_load(self) -> None:
        """Make :func:`on_app_command_error` the tree's error handler (the one before is kept)."""
        tree = self.bot.tree
        self._previous_error_handler = tree.on_error
        tree.error(on_app_command_error)

    async def cog_unload(self) -> None:
        """Put the tree's error handler from before :meth:`cog_load` back."""
        if self._previous_error_handler is not None:
            self.bot.tree.error(self._previous_error_handler)

    @commands.Cog.listener()
    async def on_app_command_completion(
        self,
        interaction: discord.Interaction,
        command: app_commands.Command[Any, ..., Any] | app_commands.ContextMenu,
    ) -> None:
        """Tell the channel problem once (:func:`channel_problem_notice`), then a member's closed DMs once
        (:func:`dm_closed_notice`)."""
        await channel_problem_notice(interaction, command)
        await dm_closed_notice(interaction)


async def setup(bot: ReleaseBot) -> None:
    """discord.py extension entry point."""
    await bot.add_cog(Notices(bot))
