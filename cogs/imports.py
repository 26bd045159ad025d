"""``/import`` — follow many artists at once, after a confirmation: ``playlist:`` (a public Spotify
playlist), ``links:`` (artist links, ``spotify:artist:`` URIs, ids or names, pasted) or ``file:`` (a
text file of the same, or an Exportify CSV).

The command (Manage Server, checked in code) takes exactly one of the three options and answers
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
    "URIs, ids or names, separated by commas) or `file:` (a text file of those, or an Exportify CSV)."
)


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
        name="import", description="Follow many artists: a playlist, pasted links or names, or a file."
    )
    @app_commands.describe(
        playlist="A public Spotify playlist link",
        links="Artist links, spotify:artist: URIs, ids or names, separated by commas",
        file="A text file of artist links or names, or an Exportify CSV (at most 1 MB)",
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @require_manage_guild()
    async def import_artists(
        self,
        interaction: discord.Interaction,
        playlist: app_commands.Range[str, 1, 300] | None = None,
        links: app_commands.Range[str, 1, MAX_LINKS_CHARS] | None = None,
        file: discord.Attachment | None = None,
    ) -> None:
        given = [
            name for name, value in (("playlist", playlist), ("links", links), ("file", file)) if value is not None
        ]
        if len(given) > 1:
            raise UserError(f"Give one source at a time (you gave {' and '.join(given)}). {ONE_SOURCE_TEXT}")
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
        else:
            raise UserError(ONE_SOURCE_TEXT)
        view = ImportConfirmView(self.importer, preview, interaction.user.id, origin=interaction)
        await interaction.followup.send(
            preview_text(preview), view=view, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )


async def setup(bot: ReleaseBot) -> None:
    """discord.py extension entry point."""
    await bot.add_cog(Imports(bot))
