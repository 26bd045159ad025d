"""Callbacks of ``/import`` (and its Confirm / Cancel view), called directly with mocks spec'd on the
real discord.py objects (python-discord/bot style: ``create_autospec(discord.Interaction)``,
``create_autospec(discord.Member)``; ``tests/cogs/mocks.py``), error paths included."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from unittest.mock import MagicMock, create_autospec

import discord
import pytest

from bot.services.errors import UserError
from bot.services.imports import ImportPreview, ImportResult, PlaylistImporter
from bot.spotify.models import ArtistRef
from cogs.common import MissingManageGuild
from cogs.imports import CANCEL_ID, CONFIRM_ID, ImportConfirmView, Imports
from cogs.notices import on_app_command_error
from tests.cogs.mocks import ADMIN_ID, GUILD_ID, MEMBER_ID, http_response, make_bot, make_interaction

ARTIST = "4" * 22


async def import_playlist(cog: Imports, interaction: MagicMock, link: str) -> None:
    """``/import``'s callback, as discord.py calls it once the checks passed."""
    callback: Callable[..., Awaitable[None]] = cog.import_playlist.callback
    await callback(cog, interaction, link)


def preview(n: int = 3) -> ImportPreview:
    artists = tuple(ArtistRef(f"{i:022d}", f"Artist {i}") for i in range(n))
    return ImportPreview(
        guild_id=GUILD_ID,
        playlist_id="5" * 22,
        playlist_name="Road Trip",
        to_follow=artists,
        new_artists=n,
        already_followed=1,
        distinct_artists=n + 1,
        cap=50,
        cap_reason="import",
        entries_read=10,
        entries_total=10,
        skipped_entries=0,
        truncated=False,
    )


# --- /import ---------------------------------------------------------------------------


async def test_import_shows_preview_with_confirm_view():
    importer = create_autospec(PlaylistImporter, instance=True)
    importer.preview.return_value = preview()
    cog = Imports(make_bot(), importer=importer)
    interaction = make_interaction()
    await import_playlist(cog, interaction, "https://open.spotify.com/playlist/" + "5" * 22)
    interaction.response.defer.assert_awaited_once_with(ephemeral=True, thinking=True)
    importer.preview.assert_awaited_once_with(GUILD_ID, "https://open.spotify.com/playlist/" + "5" * 22)
    kwargs = interaction.followup.send.await_args.kwargs
    content = interaction.followup.send.await_args.args[0]
    assert "**Road Trip** has 4 artists (1 already followed here)" in content and kwargs["ephemeral"] is True
    view = kwargs["view"]
    assert isinstance(view, ImportConfirmView) and view.invoker_id == ADMIN_ID and view.origin is interaction
    buttons = [c for c in view.children if isinstance(c, discord.ui.Button)]
    assert buttons == view.children and [b.custom_id for b in buttons] == [CONFIRM_ID, CANCEL_ID]
    assert view.timeout == 180.0


async def test_import_user_error_becomes_ephemeral_reply():
    importer = create_autospec(PlaylistImporter, instance=True)
    importer.preview.side_effect = UserError("That playlist doesn't exist or is private.")
    cog = Imports(make_bot(), importer=importer)
    interaction = make_interaction()
    with pytest.raises(UserError) as err:
        await import_playlist(cog, interaction, "x")
    interaction.followup.send.assert_not_awaited()
    error = discord.app_commands.CommandInvokeError(cog.import_playlist, err.value)
    await on_app_command_error(interaction, error)
    kwargs = interaction.followup.send.await_args.kwargs
    assert kwargs["content"] == "That playlist doesn't exist or is private." and kwargs["ephemeral"] is True


async def test_import_requires_manage_server_in_code():
    cog = Imports(make_bot(), importer=create_autospec(PlaylistImporter, instance=True))
    checks = cog.import_playlist.checks
    assert checks
    with pytest.raises(MissingManageGuild):
        for check in checks:
            await discord.utils.maybe_coroutine(check, make_interaction(user_id=MEMBER_ID, manage=False))
    assert all([await discord.utils.maybe_coroutine(check, make_interaction()) for check in checks])
    permissions = cog.import_playlist.default_permissions
    assert permissions is not None and permissions.manage_guild


async def test_only_the_invoker_with_manage_server_may_answer():
    view = ImportConfirmView(create_autospec(PlaylistImporter, instance=True), preview(), ADMIN_ID)
    other = make_interaction(user_id=MEMBER_ID)
    assert await view.interaction_check(other) is False
    assert "Only the person who ran" in other.response.send_message.await_args.args[0]
    assert other.response.send_message.await_args.kwargs["ephemeral"] is True
    demoted = make_interaction(manage=False)
    assert await view.interaction_check(demoted) is False
    assert "Manage Server" in demoted.response.send_message.await_args.args[0]
    assert await view.interaction_check(make_interaction()) is True


async def test_confirm_imports_and_reports():
    importer = create_autospec(PlaylistImporter, instance=True)
    importer.confirm.return_value = ImportResult(
        followed=preview().to_follow, baselined=2, pending_baseline=preview().to_follow[2:], stopped="budget"
    )
    view = ImportConfirmView(importer, preview(), ADMIN_ID)
    interaction = make_interaction()
    await view.confirm.callback(interaction)
    interaction.response.edit_message.assert_awaited_once_with(content="Importing 3 artists…", view=None)
    assert importer.confirm.await_args.args[0] == view.preview and view.is_finished()
    final = interaction.edit_original_response.await_args.kwargs["content"]
    assert "Now following **3** artists" in final and "1 pending" in final and "budget" in final


@pytest.mark.parametrize(
    "failure, expected",
    [
        (UserError("An import is already running in this server; wait for it to finish."), "already running"),
        (RuntimeError("boom"), "Something went wrong on my side during the import"),
    ],
)
async def test_confirm_failures(failure, expected):
    importer = create_autospec(PlaylistImporter, instance=True)
    importer.confirm.side_effect = failure
    view = ImportConfirmView(importer, preview(), ADMIN_ID)
    interaction = make_interaction()
    await view.confirm.callback(interaction)
    assert expected in interaction.edit_original_response.await_args.kwargs["content"]


async def test_cancel_and_timeout():
    importer = create_autospec(PlaylistImporter, instance=True)
    origin = make_interaction()
    view = ImportConfirmView(importer, preview(), ADMIN_ID, origin=origin)
    interaction = make_interaction()
    await view.cancel.callback(interaction)
    interaction.response.edit_message.assert_awaited_once_with(
        content="Import cancelled; nothing was changed.", view=None
    )
    importer.confirm.assert_not_awaited()
    await view.on_timeout()
    origin.edit_original_response.assert_not_awaited()  # already answered

    timed_out = ImportConfirmView(importer, preview(), ADMIN_ID, origin=origin)
    await timed_out.on_timeout()
    assert "not confirmed in time" in origin.edit_original_response.await_args.kwargs["content"]
    assert origin.edit_original_response.await_args.kwargs["view"] is None
    origin.edit_original_response.side_effect = discord.NotFound(http_response(404, "Not Found"), "gone")
    await ImportConfirmView(importer, preview(), ADMIN_ID, origin=origin).on_timeout()  # swallowed
