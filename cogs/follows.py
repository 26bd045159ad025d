"""``/follow``, ``/unfollow`` and ``/following``: which artists this server follows."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from cogs.common import member_can_manage, reply, require_manage_guild


class Follows(commands.Cog):
    """Manage the server's followed artists (changes need Manage Server)."""

    def __init__(self, bot) -> None:
        self.bot = bot

    @property
    def service(self):
        return self.bot.service

    @app_commands.command(name="follow", description="Follow a Spotify artist: its new releases will be posted here.")
    @app_commands.describe(artist="Artist name, Spotify artist link, spotify:artist: URI or id")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @require_manage_guild()
    async def follow(self, interaction: discord.Interaction, artist: app_commands.Range[str, 1, 200]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        outcome = await self.service.follow(interaction.guild_id, artist)
        url = f"https://open.spotify.com/artist/{outcome.artist_id}"
        if outcome.already_following:
            text = f"This server already follows [{outcome.artist_name}](<{url}>)."
        elif outcome.baseline_releases is None:
            text = (f"Now following [{outcome.artist_name}](<{url}>). Spotify is busy, so the releases already out "
                    "will be noted (not posted) at the next check.")
        else:
            text = (f"Now following [{outcome.artist_name}](<{url}>). What it has already released won't be posted; "
                    "its new releases will be.")
        await reply(interaction, text)

    @follow.autocomplete("artist")
    async def follow_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        if not member_can_manage(interaction):
            return []
        choices = await self.service.artist_choices(current)
        return [app_commands.Choice(name=label, value=artist_id) for label, artist_id in choices]

    @app_commands.command(name="unfollow", description="Stop following an artist in this server.")
    @app_commands.describe(artist="One of the artists this server follows")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @require_manage_guild()
    async def unfollow(self, interaction: discord.Interaction, artist: app_commands.Range[str, 1, 200]) -> None:
        name = await self.service.unfollow(interaction.guild_id, artist)
        await reply(interaction, f"Unfollowed **{discord.utils.escape_markdown(name)}**.")

    @unfollow.autocomplete("artist")
    async def unfollow_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        choices = await self.service.followed_choices(interaction.guild_id, current)
        return [app_commands.Choice(name=name, value=artist_id) for name, artist_id in choices]

    @app_commands.command(name="following", description="List the artists this server follows.")
    @app_commands.guild_only()
    async def following(self, interaction: discord.Interaction) -> None:
        rows = await self.service.following(interaction.guild_id)
        if not rows:
            await reply(interaction, "This server follows no artists yet. Add one with `/follow`.")
            return
        lines = []
        for row in rows:
            checked = f"checked <t:{int(row.last_checked_at.timestamp())}:R>" if row.last_checked_at else "not checked yet"
            problem = " ⚠ last check failed" if row.last_error else ""
            lines.append(f"• [{discord.utils.escape_markdown(row.name)}](<https://open.spotify.com/artist/{row.artist_id}>)"
                         f" — {checked}{problem}")
        body, shown = [], 0
        for line in lines:
            if sum(len(x) + 1 for x in body) + len(line) > 3800:
                break
            body.append(line)
            shown += 1
        embed = discord.Embed(title=f"Following {len(rows)} artist{'s' * (len(rows) != 1)}", description="\n".join(body))
        if shown < len(rows):
            embed.set_footer(text=f"…and {len(rows) - shown} more")
        await reply(interaction, embed=embed)


async def setup(bot) -> None:
    """discord.py extension entry point."""
    await bot.add_cog(Follows(bot))
