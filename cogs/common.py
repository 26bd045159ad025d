"""What every cog shares: the Manage Server check, turning errors into clear ephemeral replies,
and telling a server once that its release channel cannot be posted to."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

import discord
from discord import app_commands

from bot.services.errors import UserError

if TYPE_CHECKING:
    from bot.discord_app.client import ReleaseBot
    from bot.services import Services

log = logging.getLogger(__name__)

MANAGE_GUILD_TEXT = "You need the **Manage Server** permission to use this command."


class MissingManageGuild(app_commands.CheckFailure):
    """The member lacks Manage Server (checked in code; ``default_permissions`` is only a hint)."""


def guild_id_of(interaction: discord.Interaction) -> int:
    """The id of the guild ``interaction`` comes from. The commands are ``guild_only`` (Discord sends
    them from guilds only); raises ``app_commands.NoPrivateMessage`` otherwise."""
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()
    return interaction.guild_id


def member_can_manage(interaction: discord.Interaction) -> bool:
    """True when the invoking member has Manage Server (or Administrator) in this guild."""
    perms = interaction.permissions
    return bool(interaction.guild_id) and (perms.manage_guild or perms.administrator)


def require_manage_guild():
    """An ``app_commands.check`` that refuses members without Manage Server."""

    async def predicate(interaction: discord.Interaction) -> bool:
        if not member_can_manage(interaction):
            raise MissingManageGuild(MANAGE_GUILD_TEXT)
        return True

    return app_commands.check(predicate)


async def reply(
    interaction: discord.Interaction,
    content: str | None = None,
    *,
    embed: discord.Embed | None = None,
    ephemeral: bool = True,
) -> None:
    """Answer the interaction whether or not it was already deferred or answered."""
    kwargs = {"content": content, "ephemeral": ephemeral, "allowed_mentions": discord.AllowedMentions.none()}
    if embed is not None:
        kwargs["embed"] = embed
    if interaction.response.is_done():
        await interaction.followup.send(**kwargs)
    else:
        await interaction.response.send_message(**kwargs)


async def on_app_command_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
    """Tree-wide error handler: user errors and failed checks become ephemeral replies; the rest is logged."""
    original = getattr(error, "original", error)
    if isinstance(original, UserError):
        message = str(original)
    elif isinstance(error, app_commands.NoPrivateMessage):
        message = "This command works only inside a server."
    elif isinstance(error, app_commands.CheckFailure):
        message = str(error) or MANAGE_GUILD_TEXT
    else:
        log.error("command %s failed", interaction.command and interaction.command.qualified_name, exc_info=original)
        message = "Something went wrong on my side; nothing was changed. Please try again."
    try:
        await reply(interaction, message)
    except discord.HTTPException:
        log.warning("could not deliver the error reply", exc_info=True)


#: commands whose own reply already shows a channel problem (no extra notice; it counts as told)
SHOWS_CHANNEL_PROBLEM = frozenset({"status", "refresh"})


def channel_problem_text(channel_id: int | None, problem: str) -> str:
    """The one-time notice about a channel the bot cannot post to, with the fix."""
    where = f"<#{channel_id}>" if channel_id else "the release channel"
    return (
        f"⚠ New releases could not be posted in {where}: {problem}. Nothing is lost: they stay pending and "
        f"are posted once this is fixed — give me View Channel, Send Messages and Embed Links there, or pick "
        f"another channel with `/settings channel`. (`/status` shows this too.)"
    )


def services_of(interaction: discord.Interaction) -> Services:
    """The command services of the bot that received ``interaction`` (``ReleaseBot.services``)."""
    return cast("ReleaseBot", interaction.client).services


async def channel_problem_notice(
    interaction: discord.Interaction, command: app_commands.Command[Any, ..., Any] | app_commands.ContextMenu
) -> None:
    """``on_app_command_completion`` listener: the first command used in a server after its channel
    started failing (403/404) gets an ephemeral follow-up saying so, once.

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
