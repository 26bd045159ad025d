"""``/upcoming``: what MusicBrainz announces for this server's followed artists (any member, a private
answer like the other lists)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.services.upcoming import UpcomingEntry, UpcomingListing
from cogs.common import guild_id_of, reply

if TYPE_CHECKING:
    from bot.discord_app.client import ReleaseBot

RELEASE_GROUP_URL = "https://musicbrainz.org/release-group/{}"
DESCRIPTION_LIMIT = 4096


def spoken(day: dt.date, today: dt.date) -> str:
    """``day`` as "Fri 12 Dec" (with the year when it is not ``today``'s)."""
    text = f"{day:%a} {day.day} {day:%b}"
    return text if day.year == today.year else f"{text} {day.year}"


def entry_line(entry: UpcomingEntry, today: dt.date) -> str:
    """One release group: "Fri 12 Dec · [*Title*](url) — Artist", marked "(postponed)" or struck and "(gone)"."""
    title = discord.utils.escape_markdown(entry.title[:150])
    artist = discord.utils.escape_markdown(entry.artist[:100])
    line = f"{spoken(entry.release_date, today)} · [*{title}*](<{RELEASE_GROUP_URL.format(entry.mbid)}>) — {artist}"
    if entry.gone:
        return f"~~{line}~~ (gone: no longer listed)"
    return f"{line} (postponed)" if entry.postponed else line


def listing_embed(listing: UpcomingListing) -> discord.Embed:
    """``/upcoming`` as one embed: a line per release group by date, the rest counted, within 4,096 characters."""
    lines: list[str] = []
    for entry in listing.entries:
        line = entry_line(entry, listing.today)
        if sum(len(x) + 1 for x in lines) + len(line) > DESCRIPTION_LIMIT - 100:
            break
        lines.append(line)
    more = listing.more + len(listing.entries) - len(lines)
    if more:
        lines.append(f"…and {more} more")
    embed = discord.Embed(title="Announced releases of followed artists", description="\n".join(lines))
    embed.set_footer(
        text=(
            "Posted here as they are announced."
            if listing.enabled
            else "Not posted here: a server manager can turn it on with /settings upcoming enabled:True."
        )
        + " From MusicBrainz, dates in UTC."
    )
    return embed


@app_commands.guild_only()
class Upcoming(commands.Cog):
    """``/upcoming`` (any member)."""

    def __init__(self, bot: ReleaseBot) -> None:
        self.bot = bot

    @app_commands.command(name="upcoming", description="List the releases announced for followed artists.")
    async def upcoming(self, interaction: discord.Interaction) -> None:
        listing = await self.bot.services.upcoming.listing(guild_id_of(interaction))
        if not listing.entries:
            await reply(
                interaction,
                "Nothing is announced for this server's followed artists right now (MusicBrainz lists releases "
                "ahead of their date; the bot looks once a day).",
            )
            return
        await reply(interaction, embed=listing_embed(listing))


async def setup(bot: ReleaseBot) -> None:
    """discord.py extension entry point."""
    await bot.add_cog(Upcoming(bot))
