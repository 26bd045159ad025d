"""``/notify add``, ``remove``, ``list`` and ``mode``: a member's own notifications of the artists this
server follows (any member; every answer private). The 🔔 buttons under each post do the same
(``bot/discord_app/post_buttons.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.services.notify import (
    MemberSubscriptions,
    NotifyService,
    mode_text,
    subscribed_text,
    unsubscribed_text,
)
from cogs.common import guild_id_of, reply

if TYPE_CHECKING:
    from bot.discord_app.client import ReleaseBot

MODE_CHOICES = [
    app_commands.Choice(name="mention: in this server's post", value="mention"),
    app_commands.Choice(name="dm: a direct message", value="dm"),
]
"""``/notify mode``'s choices (the values are ``storage.members.MODES``)."""

LIST_DESCRIPTION_LIMIT = 4096
"""Discord's limit on an embed's description (characters)."""


def mode_line(subs: MemberSubscriptions) -> str:
    """How the member is notified here, with the command that changes it (and why a member who chose
    DMs is mentioned: Discord refused them a DM)."""
    if subs.mode == "dm":
        return "You get a **direct message** for each release. `/notify mode mode:mention` switches to mentions."
    line = "You're **mentioned** in this server's post. `/notify mode mode:dm` switches to a direct message."
    if subs.dm_closed_at is not None:
        line += (
            f" (Your DMs were closed to me on <t:{int(subs.dm_closed_at.timestamp())}:D>, so you were "
            "switched to mentions: open them before switching back.)"
        )
    return line


def list_embed(subs: MemberSubscriptions) -> discord.Embed:
    """``/notify list``: the member's artists here, by name, linked to Spotify, and their mode. Past
    Discord's 4,096 characters the list ends with "…and N more" (``/notify remove``'s autocomplete
    finds every one)."""
    count = len(subs.artists)
    embed = discord.Embed(title=f"You're notified of {count} artist{'s' * (count != 1)} in this server")
    lines: list[str] = []
    used = 0
    for i, (artist_id, name) in enumerate(subs.artists):
        line = f"• [{discord.utils.escape_markdown(name)}](<https://open.spotify.com/artist/{artist_id}>)"
        rest = count - i
        if used + len(line) + 1 > LIST_DESCRIPTION_LIMIT - len(f"…and {rest} more"):
            lines.append(f"…and {rest} more")
            break
        lines.append(line)
        used += len(line) + 1
    embed.description = "\n".join(lines)
    embed.add_field(name="How", value=mode_line(subs), inline=False)
    return embed


@app_commands.guild_only()
class Notify(
    commands.GroupCog, group_name="notify", group_description="Be told when artists this server follows release"
):
    """A member's own notifications in this server (no permission needed; nobody else sees them)."""

    def __init__(self, bot: ReleaseBot) -> None:
        self.bot = bot
        super().__init__()

    @property
    def notify(self) -> NotifyService:
        """The bot's :class:`NotifyService`."""
        return self.bot.services.notify

    @app_commands.command(name="add", description="Be notified when an artist this server follows releases something.")
    @app_commands.describe(artist="One of the artists this server follows")
    async def add(self, interaction: discord.Interaction, artist: app_commands.Range[str, 1, 200]) -> None:
        outcome = await self.notify.subscribe(guild_id_of(interaction), interaction.user.id, artist)
        await reply(interaction, subscribed_text(outcome))

    @add.autocomplete("artist")
    async def add_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        choices = await self.notify.add_choices(guild_id_of(interaction), current)
        return [app_commands.Choice(name=name, value=artist_id) for name, artist_id in choices]

    @app_commands.command(name="remove", description="Stop being notified of an artist in this server.")
    @app_commands.describe(artist="One of the artists you're notified of here")
    async def remove(self, interaction: discord.Interaction, artist: app_commands.Range[str, 1, 200]) -> None:
        name = await self.notify.unsubscribe(guild_id_of(interaction), interaction.user.id, artist)
        await reply(interaction, unsubscribed_text(name))

    @remove.autocomplete("artist")
    async def remove_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        choices = await self.notify.remove_choices(guild_id_of(interaction), interaction.user.id, current)
        return [app_commands.Choice(name=name, value=artist_id) for name, artist_id in choices]

    @app_commands.command(name="list", description="The artists you're notified of in this server, and how.")
    async def list_(self, interaction: discord.Interaction) -> None:
        subs = await self.notify.subscriptions(guild_id_of(interaction), interaction.user.id)
        if not subs.artists:
            await reply(
                interaction,
                "You're not notified of any artist in this server yet: `/notify add` or the 🔔 button under a "
                f"post subscribes you. {mode_line(subs)}",
            )
            return
        await reply(interaction, embed=list_embed(subs))

    @app_commands.command(name="mode", description="Be notified by a mention in the post or by a direct message.")
    @app_commands.describe(mode="mention: in this server's post; dm: a direct message")
    @app_commands.choices(mode=MODE_CHOICES)
    async def mode(self, interaction: discord.Interaction, mode: app_commands.Choice[str]) -> None:
        subs = await self.notify.set_mode(guild_id_of(interaction), interaction.user.id, mode.value)
        await reply(interaction, mode_text(subs.mode, subs.dm_closed_at))


async def setup(bot: ReleaseBot) -> None:
    """discord.py extension entry point."""
    await bot.add_cog(Notify(bot))
