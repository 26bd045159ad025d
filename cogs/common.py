"""What every cog shares: the Manage Server check and turning errors into clear ephemeral replies."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.service import UserError

log = logging.getLogger(__name__)

MANAGE_GUILD_TEXT = "You need the **Manage Server** permission to use this command."


class MissingManageGuild(app_commands.CheckFailure):
    """The member lacks Manage Server (checked in code; ``default_permissions`` is only a hint)."""


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


async def reply(interaction: discord.Interaction, content: str | None = None, *, embed: discord.Embed | None = None,
                ephemeral: bool = True) -> None:
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
