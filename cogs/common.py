"""What every cog shares: the Manage Server check, the guild of an interaction and the ephemeral reply.

(The tree-wide error handler and the channel-problem notice are ``cogs/notices.py``.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import discord
from discord import app_commands

from bot.discord_app.interactions import member_can_manage

__all__ = [
    "MANAGE_GUILD_TEXT",
    "MissingManageGuild",
    "guild_id_of",
    "member_can_manage",
    "reply",
    "require_manage_guild",
]

T = TypeVar("T")

MANAGE_GUILD_TEXT = "You need the **Manage Server** permission to use this command."


class MissingManageGuild(app_commands.CheckFailure):
    """The member lacks Manage Server (checked in code; ``default_permissions`` is only a hint)."""


def guild_id_of(interaction: discord.Interaction) -> int:
    """The id of the guild ``interaction`` comes from. The commands are ``guild_only`` (Discord sends
    them from guilds only); raises ``app_commands.NoPrivateMessage`` otherwise."""
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()
    return interaction.guild_id


def require_manage_guild() -> Callable[[T], T]:
    """An ``app_commands.check`` that refuses members without Manage Server (:class:`MissingManageGuild`)."""

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
    """Answer the interaction whether or not it was already deferred or answered; nobody is mentioned."""
    kwargs: dict[str, Any] = {
        "content": content,
        "ephemeral": ephemeral,
        "allowed_mentions": discord.AllowedMentions.none(),
    }
    if embed is not None:
        kwargs["embed"] = embed
    if interaction.response.is_done():
        await interaction.followup.send(**kwargs)
    else:
        await interaction.response.send_message(**kwargs)
