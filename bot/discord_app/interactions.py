"""What every interaction handler needs: who may change things, and the bot's command services."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import discord

if TYPE_CHECKING:
    from bot.discord_app.client import ReleaseBot
    from bot.services import Services


def member_can_manage(interaction: discord.Interaction) -> bool:
    """True when the invoking member has Manage Server (or Administrator) in the interaction's guild
    (checked in code: a command's ``default_permissions`` is only a hint an admin may override)."""
    perms = interaction.permissions
    return bool(interaction.guild_id) and (perms.manage_guild or perms.administrator)


def services_of(interaction: discord.Interaction) -> Services:
    """The command services of the bot that received ``interaction`` (``ReleaseBot.services``)."""
    return cast("ReleaseBot", interaction.client).services
