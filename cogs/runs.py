"""``/refresh`` (check now and post what is new) and ``/status`` (how things stand)."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from cogs.common import reply, require_manage_guild


def summary_text(summary) -> str:
    """One short paragraph about a finished run, for ``/refresh``."""
    posted = summary.releases_posted
    lines = [
        f"Checked {summary.artists_checked}/{summary.artists_due} artists "
        f"(coverage {summary.coverage:.0%}) · "
        + (f"**{posted} new release{'s' * (posted != 1)}** posted." if posted else "no new releases.")
    ]
    if summary.failed_artists:
        names = ", ".join(name for _id, name, _reason in summary.failed_artists[:10])
        more = len(summary.failed_artists) - 10
        lines.append(f"Could not check {names}{f' and {more} more' if more > 0 else ''}; "
                     "they will be checked again next run, so nothing is missed.")
    if summary.cooldown_until is not None:
        lines.append(f"Spotify paused this bot's requests until <t:{int(summary.cooldown_until.timestamp())}:f>.")
    for problem in _guild_problems(summary):
        lines.append(f"⚠ {problem}")
    return "\n".join(lines)


def _guild_problems(summary) -> list[str]:
    problems = []
    for result in (getattr(summary, "deliveries", None) or {}).values():
        problem = getattr(result, "problem", None) or getattr(result, "error", None)
        if problem:
            problems.append(f"Posting failed: {problem}. The releases stay pending and will be posted once fixed.")
    return problems


class Runs(commands.Cog):
    """Run on demand and show the bot's state for this server."""

    def __init__(self, bot) -> None:
        self.bot = bot

    @app_commands.command(name="refresh", description="Check this server's artists now and post new releases.")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @require_manage_guild()
    async def refresh(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        summary = await self.bot.service.refresh(interaction.guild_id)
        await reply(interaction, summary_text(summary))

    @app_commands.command(name="status", description="Show the channel, schedule, last run and any Spotify pause.")
    @app_commands.guild_only()
    async def status(self, interaction: discord.Interaction) -> None:
        st = await self.bot.service.status(interaction.guild_id)
        embed = discord.Embed(title="release-bot status")
        channel = f"<#{st.channel_id}>" if st.channel_id else "not set — use `/settings channel`"
        if st.channel_problem:
            channel += f"\n⚠ {st.channel_problem}. Fix the channel's permissions or pick another with `/settings channel`; pending releases will then be posted."
        embed.add_field(name="Channel", value=channel, inline=False)
        embed.add_field(name="Following", value=f"{st.follows} artist{'s' * (st.follows != 1)}")
        embed.add_field(name="Schedule", value=f"{st.schedule_text}\nnext <t:{int(st.next_due_at.timestamp())}:F>")
        embed.add_field(name="Posting", value=st.album_groups_text)
        if st.last_run is not None:
            run = st.last_run
            due = run.artists_due or 0
            coverage = (run.artists_checked / due) if due else 1.0
            when = run.finished_at or run.started_at
            embed.add_field(
                name="Last run",
                value=(f"{run.trigger}, <t:{int(when.timestamp())}:R>: {run.status}; "
                       f"checked {run.artists_checked}/{due} ({coverage:.0%}), "
                       f"{run.releases_posted} posted, {run.spotify_requests} Spotify requests"),
                inline=False,
            )
        else:
            embed.add_field(name="Last run", value="none yet", inline=False)
        if st.cooldown_until is not None:
            embed.add_field(name="Spotify", value=f"paused until <t:{int(st.cooldown_until.timestamp())}:f>"
                            f" ({st.cooldown_reason or 'rate limit'})", inline=False)
        await reply(interaction, embed=embed)


async def setup(bot) -> None:
    """discord.py extension entry point."""
    await bot.add_cog(Runs(bot))
