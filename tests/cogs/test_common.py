"""``cogs.common``: the Manage Server check on every command that changes something, none on the
read-only ones, and the tree's error handler (``on_app_command_error``) turning errors into private replies.

Each test calls ``await cog.<command>.callback(cog, interaction, ...)`` with an autospec'd
``discord.Interaction`` and autospec'd command services (``bot.services``: see ``tests/cogs/mocks.py``);
the cogs come from the fixtures of ``tests/cogs/conftest.py``.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

import discord
import pytest
from discord import app_commands

from bot.services.errors import UserError
from cogs.common import MissingManageGuild
from tests.cogs.mocks import MEMBER_ID, handle_error, make_interaction, sent, text

pytestmark = pytest.mark.timeout(30)

NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
ARTIST = "4Z8W4fKeB5YxbusRsdQVPb"


async def run_checks(command, interaction) -> None:
    for check in command.checks:
        await discord.utils.maybe_coroutine(check, interaction)


# --- Manage Server checks -------------------------------------------------------------------


@pytest.mark.parametrize(
    "cog_name, command",
    [
        ("follows", "follow"),
        ("follows", "unfollow"),
        ("runs", "refresh"),
        ("settings", "channel"),
        ("settings", "schedule"),
        ("settings", "types"),
        ("settings", "filters"),
        ("settings", "mention"),
        ("settings", "upcoming"),
    ],
)
async def test_manage_server_is_required(request, cog_name, command):
    cog = request.getfixturevalue(cog_name)
    member = make_interaction(user_id=MEMBER_ID, manage=False)
    with pytest.raises(MissingManageGuild) as info:
        await run_checks(getattr(cog, command), member)
    await handle_error(member, info.value)
    assert "Manage Server" in text(member) and sent(member)["ephemeral"] is True
    await run_checks(getattr(cog, command), make_interaction())  # an admin passes


@pytest.mark.parametrize(
    "cog_name, command",
    [
        ("follows", "following"),
        ("runs", "status"),
        ("runs", "history"),
        ("runs", "preview"),
    ],
)
async def test_read_only_commands_need_no_permission(request, cog_name, command):
    cog = request.getfixturevalue(cog_name)
    await run_checks(getattr(cog, command), make_interaction(user_id=MEMBER_ID, manage=False))


async def test_error_handler_paths():
    i = make_interaction()
    await handle_error(i, UserError("Bad input."))
    assert text(i) == "Bad input." and sent(i)["ephemeral"]
    i = make_interaction()
    await handle_error(i, app_commands.NoPrivateMessage())
    assert "only inside a server" in text(i)
    i = make_interaction()
    await handle_error(i, RuntimeError("boom"))
    assert "Something went wrong" in text(i) and "boom" not in text(i)
    i = make_interaction()
    i.response.defer.side_effect(None)  # already deferred: the error goes as a follow-up
    await handle_error(i, UserError("Late."))
    assert i.followup.send.await_args.kwargs["content"] == "Late."


@pytest.mark.parametrize(
    "message, reason",
    [("database or disk is full", "its disk is full"), ("attempt to write a readonly database", "it is read-only")],
)
async def test_a_database_that_cannot_be_written_is_told_plainly_and_logged_in_one_line(message, reason, caplog):
    i = make_interaction()
    error = RuntimeError("the transaction failed")
    error.__cause__ = sqlite3.OperationalError(message)
    await handle_error(i, error)
    assert f"my database cannot be written ({reason})" in text(i) and "nothing is lost" in text(i)
    assert sent(i)["ephemeral"]
    lines = [r for r in caplog.records if r.name == "cogs.notices"]
    assert [r.levelname for r in lines] == ["ERROR"] and lines[0].exc_info is None
    assert f"the database cannot be written: {reason}" in lines[0].getMessage()
