"""What every interaction handler needs: who may change things, the bot's command services, and the
command tree that puts the interaction's guild and shard in the log context."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import discord
from discord import app_commands

from bot.ops.logs import bind_log_context

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


def shard_of(interaction: discord.Interaction) -> int | None:
    """The shard that received ``interaction`` (Discord's ``(guild_id >> 22) % shard_count``); None
    for an interaction outside a guild."""
    if interaction.guild_id is None:
        return None
    count = getattr(interaction.client, "shard_count", None)  # None: an unsharded client, one shard
    return (interaction.guild_id >> 22) % count if isinstance(count, int) and count > 0 else 0


class ContextCommandTree(app_commands.CommandTree[discord.Client]):
    """discord.py's command tree; before each interaction it handles (in a task of its own), the log
    context gets the interaction's ``guild_id`` and ``shard`` (:mod:`bot.ops.logs`), so every record
    of the command, its autocomplete and its error handler carries them."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        bind_log_context(guild_id=interaction.guild_id, shard=shard_of(interaction))
        return True
