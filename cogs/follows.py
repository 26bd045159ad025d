"""``/follow``, ``/unfollow`` and ``/following``: which artists this server follows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.delivery.render import format_release_date
from bot.services.follows import FollowedArtist, FollowService
from cogs.common import guild_id_of, member_can_manage, reply, require_manage_guild

if TYPE_CHECKING:
    from bot.discord_app.client import ReleaseBot


class Follows(commands.Cog):
    """Manage the server's followed artists (changes need Manage Server)."""

    def __init__(self, bot: ReleaseBot) -> None:
        self.bot = bot

    @property
    def follows(self) -> FollowService:
        """The bot's :class:`FollowService`."""
        return self.bot.services.follows

    @app_commands.command(name="follow", description="Follow a Spotify artist: its new releases will be posted here.")
    @app_commands.describe(artist="Artist name, Spotify artist link, spotify:artist: URI or id")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @require_manage_guild()
    async def follow(self, interaction: discord.Interaction, artist: app_commands.Range[str, 1, 200]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        outcome = await self.follows.follow(guild_id_of(interaction), artist)
        url = f"https://open.spotify.com/artist/{outcome.artist_id}"
        if outcome.already_following:
            text = f"This server already follows [{outcome.artist_name}](<{url}>)."
        elif outcome.baseline_releases is None:
            text = (
                f"Now following [{outcome.artist_name}](<{url}>). Spotify is busy, so the releases already out "
                "will be noted (not posted) at the next check."
            )
        else:
            text = (
                f"Now following [{outcome.artist_name}](<{url}>). What it has already released won't be posted; "
                "its new releases will be."
            )
        await reply(interaction, text)

    @follow.autocomplete("artist")
    async def follow_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        if not member_can_manage(interaction):
            return []
        choices = await self.follows.artist_choices(current)
        return [app_commands.Choice(name=label, value=artist_id) for label, artist_id in choices]

    @app_commands.command(name="unfollow", description="Stop following an artist in this server.")
    @app_commands.describe(artist="One of the artists this server follows")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @require_manage_guild()
    async def unfollow(self, interaction: discord.Interaction, artist: app_commands.Range[str, 1, 200]) -> None:
        name = await self.follows.unfollow(guild_id_of(interaction), artist)
        await reply(interaction, f"Unfollowed **{discord.utils.escape_markdown(name)}**.")

    @unfollow.autocomplete("artist")
    async def unfollow_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        choices = await self.follows.followed_choices(guild_id_of(interaction), current)
        return [app_commands.Choice(name=name, value=artist_id) for name, artist_id in choices]

    @app_commands.command(name="following", description="List the artists this server follows.")
    @app_commands.guild_only()
    async def following(self, interaction: discord.Interaction) -> None:
        rows = await self.follows.following(guild_id_of(interaction))
        if not rows:
            await reply(interaction, "This server follows no artists yet. Add one with `/follow`.")
            return
        pages = following_pages(rows)
        if len(pages) == 1:
            await reply(interaction, embed=pages[0])
            return
        view = Paginator(pages, owner_id=interaction.user.id)
        await interaction.response.send_message(
            embed=pages[0], view=view, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )
        view.interaction = interaction


PAGE_SIZE = 10
PAGINATOR_TIMEOUT = 180.0


def following_line(row: FollowedArtist) -> str:
    """One artist of ``/following``: link, last release (name and date from the store) and last check."""
    name = discord.utils.escape_markdown(row.name)
    line = f"• [{name}](<https://open.spotify.com/artist/{row.artist_id}>)"
    if row.last_release_name:
        title = discord.utils.escape_markdown(_cut(row.last_release_name, 80))
        date = format_release_date(row.last_release_date or "", row.last_release_precision)
        line += f" — last release *{title}*" + (f" ({date})" if date else "")
    else:
        line += " — no release known yet"
    checked = f"checked <t:{int(row.last_checked_at.timestamp())}:R>" if row.last_checked_at else "not checked yet"
    problem = " ⚠ last check failed" if row.last_error else ""
    return f"{line} · {checked}{problem}"


def following_pages(rows: Sequence[FollowedArtist], page_size: int = PAGE_SIZE) -> list[discord.Embed]:
    """``/following`` as embeds of ``page_size`` artists each (footer "Page i/n" when several)."""
    chunks = [rows[i : i + page_size] for i in range(0, len(rows), page_size)] or [[]]
    title = f"Following {len(rows)} artist{'s' * (len(rows) != 1)}"
    pages = []
    for i, chunk in enumerate(chunks):
        embed = discord.Embed(title=title, description="\n".join(following_line(r) for r in chunk)[:4096])
        if len(chunks) > 1:
            embed.set_footer(text=f"Page {i + 1}/{len(chunks)}")
        pages.append(embed)
    return pages


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Paginator(discord.ui.View):
    """Previous / Next buttons over ``pages``; only ``owner_id`` may turn them; disabled after ``timeout``."""

    def __init__(self, pages: list[discord.Embed], *, owner_id: int, timeout: float = PAGINATOR_TIMEOUT) -> None:
        super().__init__(timeout=timeout)
        self.pages = pages
        self.owner_id = owner_id
        self.index = 0
        self.interaction: discord.Interaction | None = None  # the command's, to edit the reply on timeout
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        self.previous.disabled = self.index == 0
        self.next.disabled = self.index >= len(self.pages) - 1

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(
                "Only the person who ran `/following` can turn these pages; run it yourself to browse.", ephemeral=True
            )
            return False
        return True

    async def _show(self, interaction: discord.Interaction, index: int) -> None:
        self.index = max(0, min(index, len(self.pages) - 1))
        self._sync_buttons()
        await interaction.response.edit_message(embed=self.pages[self.index], view=self)

    @discord.ui.button(label="Previous", emoji="◀️", style=discord.ButtonStyle.secondary)
    async def previous(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._show(interaction, self.index - 1)

    @discord.ui.button(label="Next", emoji="▶️", style=discord.ButtonStyle.secondary)
    async def next(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._show(interaction, self.index + 1)

    async def on_timeout(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        if self.interaction is not None:
            try:
                await self.interaction.edit_original_response(view=self)
            except discord.HTTPException:
                pass


async def setup(bot: ReleaseBot) -> None:
    """discord.py extension entry point."""
    await bot.add_cog(Follows(bot))
