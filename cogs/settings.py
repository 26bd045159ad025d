"""``/settings channel``, ``/settings schedule`` and ``/settings types`` (Manage Server)."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.service import ALBUM_GROUP_NAMES, DAY_NAMES, UserError
from cogs.common import reply, require_manage_guild

REQUIRED_PERMISSIONS = ("view_channel", "send_messages", "embed_links")


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Settings(commands.GroupCog, group_name="settings", group_description="Where and when releases are posted"):
    """Server settings; every subcommand needs Manage Server."""

    def __init__(self, bot) -> None:
        self.bot = bot
        super().__init__()

    @app_commands.command(name="channel", description="Choose the channel new releases are posted in.")
    @app_commands.describe(channel="A text channel the bot can post in")
    @require_manage_guild()
    async def channel(self, interaction: discord.Interaction,
                      channel: discord.TextChannel) -> None:
        guild = interaction.guild
        target = guild.get_channel(channel.id) if guild else None
        if target is None or guild.me is None:
            raise UserError("I can't see that channel. Give me View Channel there, or pick another.")
        perms = target.permissions_for(guild.me)
        missing = [p for p in REQUIRED_PERMISSIONS if not getattr(perms, p)]
        if missing:
            names = ", ".join(p.replace("_", " ").title() for p in missing)
            raise UserError(f"I can't post in {target.mention}: I'm missing {names} there. Nothing was changed.")
        await self.bot.service.set_channel(interaction.guild_id, target.id)
        await reply(interaction, f"New releases will be posted in {target.mention}.")

    @app_commands.command(name="schedule", description="Choose the weekly day and time of the automatic post.")
    @app_commands.describe(day="Day of the week", time="24-hour time, HH:MM", timezone="IANA time zone, e.g. Europe/Berlin")
    @app_commands.choices(day=[app_commands.Choice(name=d, value=d.lower()) for d in DAY_NAMES])
    @require_manage_guild()
    async def schedule(self, interaction: discord.Interaction, day: app_commands.Choice[str],
                       time: app_commands.Range[str, 1, 10], timezone: app_commands.Range[str, 1, 64] = "UTC") -> None:
        due = await self.bot.service.set_schedule(interaction.guild_id, day.value, time, timezone)
        await reply(interaction, f"New releases will be posted every {day.name} at {time.strip()} ({timezone.strip()}). "
                                 f"Next: <t:{int(due.timestamp())}:F>.")

    @app_commands.command(name="types", description="Choose which kinds of releases are posted.")
    @app_commands.describe(album="Post albums", single="Post singles and EPs", compilation="Post compilations",
                           appears_on="Post releases the artists only appear on")
    @require_manage_guild()
    async def types(self, interaction: discord.Interaction, album: bool | None = None, single: bool | None = None,
                    compilation: bool | None = None, appears_on: bool | None = None) -> None:
        service = self.bot.service
        current = set(await service.album_groups(interaction.guild_id))
        asked = {"album": album, "single": single, "compilation": compilation, "appears_on": appears_on}
        if all(v is None for v in asked.values()):
            await reply(interaction, f"Posting: {_groups_text(current)}. Nothing was changed.")
            return
        chosen = {g for g in current if asked.get(g) is not False} | {g for g, v in asked.items() if v}
        if not chosen:
            raise UserError("That would post nothing: keep at least one release type. Nothing was changed.")
        stored = await service.set_album_groups(interaction.guild_id, chosen)
        await reply(interaction, f"Posting: {_groups_text(stored)}.")


def _groups_text(groups) -> str:
    return ", ".join(name for g, name in ALBUM_GROUP_NAMES.items() if g in set(groups)) or "nothing"


async def setup(bot) -> None:
    """discord.py extension entry point."""
    await bot.add_cog(Settings(bot))
