"""The buttons under each release post: "Unfollow <artist>", the "Unfollow an artist…" select
and "Hide <type>s" (see ``bot/delivery/components.py`` for the layout and custom ids).

They are ``discord.ui.DynamicItem`` s: the custom id carries the artist id or album group
and a ``template`` regex matches it, so a button on a post from before a restart still
works. Manage Server is checked in code (a member without it gets an ephemeral refusal);
what a button does lives in ``bot/services/post_actions.py``; this cog only translates.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.delivery.components import (
    HIDE_LABELS,
    HIDE_TEMPLATE,
    UNFOLLOW_SELECT_ID,
    UNFOLLOW_SELECT_TEMPLATE,
    UNFOLLOW_TEMPLATE,
    hide_custom_id,
    unfollow_custom_id,
)
from bot.services import Services, post_actions
from bot.services.errors import UserError
from cogs.common import member_can_manage, services_of

if TYPE_CHECKING:
    from bot.discord_app.client import ReleaseBot

log = logging.getLogger(__name__)

BUTTON_MANAGE_GUILD_TEXT = "You need the **Manage Server** permission to use these buttons."
FAILED_TEXT = "Something went wrong on my side; nothing was changed. Please try again."

Action = Callable[[Services, int | None], Awaitable[str]]


async def run_action(interaction: discord.Interaction, action: Action) -> None:
    """Check Manage Server, run ``action(services, guild_id)`` and answer its text ephemerally."""
    if not member_can_manage(interaction):
        await interaction.response.send_message(
            BUTTON_MANAGE_GUILD_TEXT, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )
        return
    await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        text = await action(services_of(interaction), interaction.guild_id)
    except UserError as exc:
        text = str(exc)
    except Exception:
        log.exception("post button %s failed", (interaction.data or {}).get("custom_id"))
        text = FAILED_TEXT
    await interaction.followup.send(text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())


class UnfollowButton(discord.ui.DynamicItem[discord.ui.Button], template=UNFOLLOW_TEMPLATE):
    """``rb:unfollow:<artist id>``: unfollow that artist in this server."""

    def __init__(self, artist_id: str, label: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or "Unfollow", style=discord.ButtonStyle.secondary, custom_id=unfollow_custom_id(artist_id)
            )
        )
        self.artist_id = artist_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match):
        return cls(match["artist_id"], item.label)

    async def callback(self, interaction: discord.Interaction) -> None:
        await run_action(
            interaction,
            lambda services, guild_id: post_actions.unfollow_artist(services.follows, guild_id, self.artist_id),
        )


class UnfollowSelect(discord.ui.DynamicItem[discord.ui.Select], template=UNFOLLOW_SELECT_TEMPLATE):
    """``rb:unfollow-select``: unfollow the artist chosen in the menu (its value is the artist id)."""

    def __init__(self, item: discord.ui.Select | None = None) -> None:
        super().__init__(
            item
            or discord.ui.Select(
                custom_id=UNFOLLOW_SELECT_ID,
                placeholder="Unfollow an artist…",
                options=[discord.SelectOption(label="-", value="-")],
            )
        )

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Select, match):
        return cls(item)

    async def callback(self, interaction: discord.Interaction) -> None:
        values = list((interaction.data or {}).get("values") or [])
        if not values:
            await interaction.response.send_message("Choose an artist in the menu.", ephemeral=True)
            return
        await run_action(
            interaction,
            lambda services, guild_id: post_actions.unfollow_artist(services.follows, guild_id, values[0]),
        )


class HideButton(discord.ui.DynamicItem[discord.ui.Button], template=HIDE_TEMPLATE):
    """``rb:hide:<album group>``: stop posting that release type in this server."""

    def __init__(self, group: str) -> None:
        super().__init__(
            discord.ui.Button(
                label=HIDE_LABELS.get(group, "Hide"),
                style=discord.ButtonStyle.secondary,
                custom_id=hide_custom_id(group),
            )
        )
        self.group = group

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match):
        return cls(match["group"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await run_action(
            interaction,
            lambda services, guild_id: post_actions.hide_album_group(services.guild_settings, guild_id, self.group),
        )


DYNAMIC_ITEMS = (UnfollowButton, UnfollowSelect, HideButton)


class PostButtons(commands.Cog):
    """Registers the post buttons' dynamic items while loaded."""

    def __init__(self, bot: ReleaseBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(*DYNAMIC_ITEMS)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(*DYNAMIC_ITEMS)


async def setup(bot: ReleaseBot) -> None:
    """discord.py extension entry point."""
    await bot.add_cog(PostButtons(bot))
