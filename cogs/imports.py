"""``/import`` — follow many artists at once, after a confirmation: ``playlist:`` (a public Spotify
playlist), ``links:`` (artist links, ``spotify:artist:`` URIs, ids or names, pasted), ``file:`` (a
text file of the same, or an Exportify CSV), ``lastfm:`` or ``listenbrainz:`` (a user's top artists;
``period:`` for Last.fm, ``range:`` for ListenBrainz, ``min_plays:`` for both).

The command (Manage Server, checked in code) takes exactly one of the five sources and answers
ephemerally with what the import would do (``bot.services.imports.preview_text``: counts, first
names, the cap, the cost in Spotify requests, what it leaves out) and Confirm / Cancel buttons
that only the invoker may press, for :data:`CONFIRM_TIMEOUT` seconds. Confirm follows them with
the silent baseline and edits the message with progress and then the summary; Cancel or the
timeout changes nothing.

``links:`` is a string option of at most :data:`MAX_LINKS_CHARS` characters, Discord's limit for
one (its client does not send a longer one): a longer list goes in a text file through ``file:``
(up to 1 MB). A modal's paragraph input would hold less (4,000 characters), so there is none.
The attachment's size is checked before it is downloaded. The logic is in
``bot/services/imports.py``; this cog only translates.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.services.errors import UserError
from bot.services.imports import Download, Importer, ImportPreview, preview_text, result_text
from cogs.common import MANAGE_GUILD_TEXT, guild_id_of, member_can_manage, require_manage_guild

if TYPE_CHECKING:
    from bot.discord_app.client import ReleaseBot

log = logging.getLogger(__name__)

CONFIRM_TIMEOUT = 180.0
PROGRESS_EVERY_SECONDS = 2.0
CONFIRM_ID = "rb:import:confirm"
CANCEL_ID = "rb:import:cancel"
MAX_LINKS_CHARS = 6000
ONE_SOURCE_TEXT = (
    "Give one of `playlist:` (a public Spotify playlist link), `links:` (artist links, `spotify:artist:` "
    "URIs, ids or names, separated by commas), `file:` (a text file of those, or an Exportify CSV), "
    "`lastfm:` or `listenbrainz:` (a user name: their top artists)."
)
LASTFM_PERIODS = [
    app_commands.Choice(name=label, value=value)
    for label, value in (
        ("all time", "overall"),
        ("last 7 days", "7day"),
        ("last month", "1month"),
        ("last 3 months", "3month"),
        ("last 6 months", "6month"),
        ("last 12 months", "12month"),
    )
]
LISTENBRAINZ_RANGES = [
    app_commands.Choice(name=label, value=value)
    for label, value in (
        ("all time", "all_time"),
        ("this week", "this_week"),
        ("this month", "this_month"),
        ("this year", "this_year"),
        ("last week", "week"),
        ("last month", "month"),
        ("last quarter", "quarter"),
        ("last half-year", "half_yearly"),
        ("last year", "year"),
    )
]


class ImportConfirmView(discord.ui.View):
    """Confirm / Cancel for one previewed import; only ``invoker_id`` may press them."""

    def __init__(
        self,
        importer: Importer,
        preview: ImportPreview,
        invoker_id: int,
        origin: discord.Interaction | None = None,
        *,
        timeout: float = CONFIRM_TIMEOUT,
    ) -> None:
        super().__init__(timeout=timeout)
        self.importer = importer
        self.preview = preview
        self.invoker_id = invoker_id
        self.origin = origin
        self.done = False

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.invoker_id:
            await interaction.response.send_message(
                "Only the person who ran `/import` can answer this.", ephemeral=True
            )
            return False
        if not member_can_manage(interaction):
            await interaction.response.send_message(MANAGE_GUILD_TEXT, ephemeral=True)
            return False
        return True

    @discord.ui.button(label="Confirm", style=discord.ButtonStyle.success, custom_id=CONFIRM_ID)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.done = True
        self.stop()
        n = len(self.preview.to_follow)
        await interaction.response.edit_message(content=f"Importing {n} artist{'s' * (n != 1)}…", view=None)
        last = time.monotonic()

        async def progress(done: int, total: int) -> None:
            nonlocal last
            if done < total and time.monotonic() - last >= PROGRESS_EVERY_SECONDS:
                last = time.monotonic()
                await interaction.edit_original_response(content=f"Importing… {done}/{total} artists ready.")

        try:
            result = await self.importer.confirm(self.preview, progress=progress)
            text = result_text(result)
        except UserError as exc:
            text = str(exc)
        except Exception:
            log.exception("import (%s %s) failed", self.preview.source, self.preview.playlist_id or self.preview.title)
            text = "Something went wrong on my side during the import. `/following` shows what was followed."
        await interaction.edit_original_response(content=text, allowed_mentions=discord.AllowedMentions.none())

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary, custom_id=CANCEL_ID)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.done = True
        self.stop()
        await interaction.response.edit_message(content="Import cancelled; nothing was changed.", view=None)

    async def on_timeout(self) -> None:
        if self.done or self.origin is None:
            return
        try:
            await self.origin.edit_original_response(
                content="This import was not confirmed in time; nothing was changed. Run `/import` again.", view=None
            )
        except discord.HTTPException:
            log.debug("could not mark the import prompt as timed out", exc_info=True)


def attachment_download(attachment: discord.Attachment) -> Download:
    """``attachment.read`` for the importer: a failed download from Discord's CDN becomes a :class:`UserError`."""

    async def download() -> bytes:
        try:
            return await attachment.read()
        except discord.HTTPException:
            log.warning("could not download attachment %s", attachment.filename, exc_info=True)
            raise UserError(
                "I could not download the file from Discord; upload it again. Nothing was changed."
            ) from None

    return download


class Imports(commands.Cog):
    """``/import``: follow the artists of a playlist, a pasted list or a file."""

    def __init__(self, bot: ReleaseBot, importer: Importer | None = None) -> None:
        self.bot = bot
        self.importer = importer if importer is not None else bot.services.imports

    @app_commands.command(
        name="import",
        description="Follow many artists: a playlist, links or names, a file, or a Last.fm or ListenBrainz history.",
    )
    @app_commands.describe(
        playlist="A public Spotify playlist link",
        links="Artist links, spotify:artist: URIs, ids or names, separated by commas",
        file="A text file of artist links or names, or an Exportify CSV (at most 1 MB)",
        lastfm="A Last.fm user name: their top artists",
        listenbrainz="A ListenBrainz user name: their top artists",
        period="With lastfm: the period of the top artists (default: all time)",
        stats_range="With listenbrainz: the range of the top artists (default: all time)",
        min_plays="With lastfm or listenbrainz: only artists played at least this often (default 1)",
    )
    @app_commands.rename(stats_range="range")
    @app_commands.choices(period=LASTFM_PERIODS, stats_range=LISTENBRAINZ_RANGES)
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @require_manage_guild()
    async def import_artists(
        self,
        interaction: discord.Interaction,
        playlist: app_commands.Range[str, 1, 300] | None = None,
        links: app_commands.Range[str, 1, MAX_LINKS_CHARS] | None = None,
        file: discord.Attachment | None = None,
        lastfm: app_commands.Range[str, 1, 100] | None = None,
        listenbrainz: app_commands.Range[str, 1, 100] | None = None,
        period: app_commands.Choice[str] | None = None,
        stats_range: app_commands.Choice[str] | None = None,
        min_plays: app_commands.Range[int, 1, 1_000_000] = 1,
    ) -> None:
        sources = (
            ("playlist", playlist),
            ("links", links),
            ("file", file),
            ("lastfm", lastfm),
            ("listenbrainz", listenbrainz),
        )
        given = [name for name, value in sources if value is not None]
        if len(given) > 1:
            raise UserError(f"Give one source at a time (you gave {' and '.join(given)}). {ONE_SOURCE_TEXT}")
        if period is not None and lastfm is None:
            raise UserError("`period:` goes with `lastfm:` (ListenBrainz has `range:`).")
        if stats_range is not None and listenbrainz is None:
            raise UserError("`range:` goes with `listenbrainz:` (Last.fm has `period:`).")
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id = guild_id_of(interaction)
        if playlist is not None:
            preview = await self.importer.preview_playlist(guild_id, playlist)
        elif links is not None:
            preview = await self.importer.preview_links(guild_id, links)
        elif file is not None:
            preview = await self.importer.preview_file(
                guild_id, file.filename, file.size, attachment_download(file), file.content_type
            )
        elif lastfm is not None:
            preview = await self.importer.preview_history(
                guild_id, "lastfm", lastfm, period=period.value if period else None, min_plays=min_plays
            )
        elif listenbrainz is not None:
            preview = await self.importer.preview_history(
                guild_id,
                "listenbrainz",
                listenbrainz,
                period=stats_range.value if stats_range else None,
                min_plays=min_plays,
            )
        else:
            raise UserError(ONE_SOURCE_TEXT)
        view = ImportConfirmView(self.importer, preview, interaction.user.id, origin=interaction)
        await interaction.followup.send(
            preview_text(preview), view=view, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )


async def setup(bot: ReleaseBot) -> None:
    """discord.py extension entry point."""
    await bot.add_cog(Imports(bot))
