"""Callbacks of ``/import`` (and its Confirm / Cancel view), called directly with mocks spec'd on the
real discord.py objects (python-discord/bot style: ``create_autospec(discord.Interaction)``,
``create_autospec(discord.Member)``; ``tests/cogs/mocks.py``), error paths included: one source of
``playlist:``, ``links:``, ``file:``, ``lastfm:`` or ``listenbrainz:`` (with ``period:`` / ``range:`` only
beside their own service), the attachment's size and file name passed before any download,
a failed download."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from unittest.mock import AsyncMock, MagicMock, create_autospec

import discord
import pytest
from discord import app_commands

from bot.services.errors import UserError
from bot.services.imports import Importer, ImportItem, ImportPreview, ImportResult
from bot.spotify.models import ArtistRef
from cogs.common import MissingManageGuild
from cogs.imports import CANCEL_ID, CONFIRM_ID, MAX_LINKS_CHARS, ONE_SOURCE_TEXT, ImportConfirmView, Imports
from cogs.notices import on_app_command_error
from tests.cogs.mocks import ADMIN_ID, GUILD_ID, MEMBER_ID, http_response, make_bot, make_interaction, spec_mock


async def run_import(cog: Imports, interaction: MagicMock, **options) -> None:
    """``/import``'s callback, as discord.py calls it once the checks passed."""
    callback: Callable[..., Awaitable[None]] = cog.import_artists.callback
    await callback(cog, interaction, **options)


def preview(n: int = 3, *, source: str = "playlist") -> ImportPreview:
    artists = tuple(ImportItem(f"{i:022d}", f"Artist {i}") for i in range(n))
    return ImportPreview(
        guild_id=GUILD_ID,
        source=source,
        title="Road Trip" if source != "links" else "",
        playlist_id="5" * 22 if source == "playlist" else None,
        to_follow=artists,
        new_artists=n,
        already_followed=1,
        distinct_artists=n + 1,
        cap=50,
        cap_reason="import",
        entries_read=10,
        entries_total=10,
    )


def attachment(filename: str = "Road Trip.csv", size: int = 120, content_type: str | None = "text/csv") -> MagicMock:
    file = spec_mock(discord.Attachment)
    file.filename, file.size, file.content_type = filename, size, content_type
    file.read = AsyncMock(return_value=b"Daft Punk\n")
    return file


# --- /import ---------------------------------------------------------------------------


async def test_import_shows_preview_with_confirm_view():
    importer = create_autospec(Importer, instance=True)
    importer.preview_playlist.return_value = preview()
    cog = Imports(make_bot(), importer=importer)
    interaction = make_interaction()
    await run_import(cog, interaction, playlist="https://open.spotify.com/playlist/" + "5" * 22)
    interaction.response.defer.assert_awaited_once_with(ephemeral=True, thinking=True)
    importer.preview_playlist.assert_awaited_once_with(GUILD_ID, "https://open.spotify.com/playlist/" + "5" * 22)
    kwargs = interaction.followup.send.await_args.kwargs
    content = interaction.followup.send.await_args.args[0]
    assert "**Road Trip** has 4 artists (1 already followed here)" in content and kwargs["ephemeral"] is True
    view = kwargs["view"]
    assert isinstance(view, ImportConfirmView) and view.invoker_id == ADMIN_ID and view.origin is interaction
    buttons = [c for c in view.children if isinstance(c, discord.ui.Button)]
    assert buttons == view.children and [b.custom_id for b in buttons] == [CONFIRM_ID, CANCEL_ID]
    assert view.timeout == 180.0


async def test_import_user_error_becomes_ephemeral_reply():
    importer = create_autospec(Importer, instance=True)
    importer.preview_playlist.side_effect = UserError("That playlist doesn't exist or is private.")
    cog = Imports(make_bot(), importer=importer)
    interaction = make_interaction()
    with pytest.raises(UserError) as err:
        await run_import(cog, interaction, playlist="x")
    interaction.followup.send.assert_not_awaited()
    error = discord.app_commands.CommandInvokeError(cog.import_artists, err.value)
    await on_app_command_error(interaction, error)
    kwargs = interaction.followup.send.await_args.kwargs
    assert kwargs["content"] == "That playlist doesn't exist or is private." and kwargs["ephemeral"] is True


async def test_links_go_to_the_links_preview():
    importer = create_autospec(Importer, instance=True)
    importer.preview_links.return_value = preview(source="links")
    cog = Imports(make_bot(), importer=importer)
    interaction = make_interaction()
    await run_import(cog, interaction, links="Daft Punk, spotify:artist:" + "4" * 22)
    importer.preview_links.assert_awaited_once_with(GUILD_ID, "Daft Punk, spotify:artist:" + "4" * 22)
    importer.preview_playlist.assert_not_awaited()
    content = interaction.followup.send.await_args.args[0]
    assert content.startswith("Your list names 4 artists (1 already followed here).")
    assert isinstance(interaction.followup.send.await_args.kwargs["view"], ImportConfirmView)


async def test_listening_histories_go_to_the_history_preview_with_their_period_and_minimum():
    importer = create_autospec(Importer, instance=True)
    importer.preview_history.return_value = preview(source="links")
    cog = Imports(make_bot(), importer=importer)
    interaction = make_interaction()
    week = app_commands.Choice(name="last 7 days", value="7day")
    await run_import(cog, interaction, lastfm="alice", period=week, min_plays=5)
    importer.preview_history.assert_awaited_once_with(GUILD_ID, "lastfm", "alice", period="7day", min_plays=5)
    assert isinstance(interaction.followup.send.await_args.kwargs["view"], ImportConfirmView)
    importer.preview_history.reset_mock()
    await run_import(cog, make_interaction(), listenbrainz="bob")
    importer.preview_history.assert_awaited_once_with(GUILD_ID, "listenbrainz", "bob", period=None, min_plays=1)
    importer.preview_links.assert_not_awaited()


async def test_a_file_is_previewed_by_its_size_and_name_then_downloaded():
    importer = create_autospec(Importer, instance=True)
    importer.preview_file.return_value = preview(source="file")
    cog = Imports(make_bot(), importer=importer)
    interaction = make_interaction()
    file = attachment()
    await run_import(cog, interaction, file=file)
    args = importer.preview_file.await_args.args
    assert args[:3] == (GUILD_ID, "Road Trip.csv", 120) and args[4] == "text/csv"
    file.read.assert_not_awaited()  # the service checks the size first, then downloads
    assert await args[3]() == b"Daft Punk\n"
    file.read.assert_awaited_once()
    assert interaction.followup.send.await_args.args[0].startswith("`Road Trip` names 4 artists")


async def test_a_failed_download_is_a_user_error():
    file = attachment()
    file.read.side_effect = discord.NotFound(http_response(404, "Not Found"), "gone")
    importer = create_autospec(Importer, instance=True)
    importer.preview_file.return_value = preview(source="file")
    cog = Imports(make_bot(), importer=importer)
    await run_import(cog, make_interaction(), file=file)
    download = importer.preview_file.await_args.args[3]
    with pytest.raises(UserError, match="could not download the file from Discord"):
        await download()


@pytest.mark.parametrize(
    "options, expected",
    [
        ({}, ONE_SOURCE_TEXT),
        ({"playlist": "x", "links": "Air"}, "Give one source at a time (you gave playlist and links)."),
        ({"links": "Air", "file": "FILE"}, "Give one source at a time (you gave links and file)."),
        ({"lastfm": "alice", "listenbrainz": "alice"}, "(you gave lastfm and listenbrainz)"),
        ({"listenbrainz": "alice", "period": "PERIOD"}, "`period:` goes with `lastfm:`"),
        ({"lastfm": "alice", "stats_range": "RANGE"}, "`range:` goes with `listenbrainz:`"),
    ],
)
async def test_exactly_one_source(options, expected):
    importer = create_autospec(Importer, instance=True)
    cog = Imports(make_bot(), importer=importer)
    interaction = make_interaction()
    choices = {
        "PERIOD": app_commands.Choice(name="last 7 days", value="7day"),
        "RANGE": app_commands.Choice(name="this week", value="this_week"),
    }
    options = {k: attachment() if v == "FILE" else choices.get(v, v) for k, v in options.items()}
    with pytest.raises(UserError) as err:
        await run_import(cog, interaction, **options)
    assert expected in str(err.value)
    assert importer.method_calls == []


def test_the_options_discord_gets():
    cog = Imports(make_bot(), importer=create_autospec(Importer, instance=True))
    tree = app_commands.CommandTree(discord.Client(intents=discord.Intents.none()))
    payload = cog.import_artists.to_dict(tree)
    assert payload["name"] == "import" and len(payload["description"]) <= 100
    options = {o["name"]: o for o in payload["options"]}
    assert [(o["name"], o["type"], o["required"]) for o in payload["options"]] == [
        ("playlist", 3, False),
        ("links", 3, False),
        ("file", 11, False),
        ("lastfm", 3, False),
        ("listenbrainz", 3, False),
        ("period", 3, False),
        ("range", 3, False),
        ("min_plays", 4, False),
    ]
    assert [c["value"] for c in options["period"]["choices"]] == [
        "overall",
        "7day",
        "1month",
        "3month",
        "6month",
        "12month",
    ]  # Last.fm's user.getTopArtists periods
    assert {c["value"] for c in options["range"]["choices"]} == {
        "this_week",
        "this_month",
        "this_year",
        "week",
        "month",
        "quarter",
        "year",
        "half_yearly",
        "all_time",
    }  # ListenBrainz's statistics ranges
    assert options["min_plays"]["min_value"] == 1
    assert options["links"]["max_length"] == MAX_LINKS_CHARS == 6000  # Discord's limit for a string option
    assert all(len(o["description"]) <= 100 for o in payload["options"])


async def test_import_requires_manage_server_in_code():
    cog = Imports(make_bot(), importer=create_autospec(Importer, instance=True))
    checks = cog.import_artists.checks
    assert checks
    with pytest.raises(MissingManageGuild):
        for check in checks:
            await discord.utils.maybe_coroutine(check, make_interaction(user_id=MEMBER_ID, manage=False))
    assert all([await discord.utils.maybe_coroutine(check, make_interaction()) for check in checks])
    permissions = cog.import_artists.default_permissions
    assert permissions is not None and permissions.manage_guild


async def test_only_the_invoker_with_manage_server_may_answer():
    view = ImportConfirmView(create_autospec(Importer, instance=True), preview(), ADMIN_ID)
    other = make_interaction(user_id=MEMBER_ID)
    assert await view.interaction_check(other) is False
    assert "Only the person who ran" in other.response.send_message.await_args.args[0]
    assert other.response.send_message.await_args.kwargs["ephemeral"] is True
    demoted = make_interaction(manage=False)
    assert await view.interaction_check(demoted) is False
    assert "Manage Server" in demoted.response.send_message.await_args.args[0]
    assert await view.interaction_check(make_interaction()) is True


async def test_confirm_imports_and_reports():
    importer = create_autospec(Importer, instance=True)
    artists = tuple(ArtistRef(i.artist_id or "", i.name) for i in preview().to_follow)
    importer.confirm.return_value = ImportResult(
        followed=artists, baselined=2, pending_baseline=artists[2:], stopped="budget"
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
    importer = create_autospec(Importer, instance=True)
    importer.confirm.side_effect = failure
    view = ImportConfirmView(importer, preview(), ADMIN_ID)
    interaction = make_interaction()
    await view.confirm.callback(interaction)
    assert expected in interaction.edit_original_response.await_args.kwargs["content"]


async def test_cancel_and_timeout():
    importer = create_autospec(Importer, instance=True)
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
