"""Callbacks of the post buttons (``cogs.post_buttons``), called directly with mocks spec'd on the
real discord.py objects (python-discord/bot style: ``create_autospec(discord.Interaction)``,
``create_autospec(discord.Member)``; ``tests/cogs/mocks.py``), error paths included."""

from __future__ import annotations

import re
from unittest.mock import create_autospec

import discord
import pytest

from bot.delivery.components import HIDE_TEMPLATE, UNFOLLOW_SELECT_TEMPLATE, UNFOLLOW_TEMPLATE
from bot.services import post_actions
from bot.services.errors import UserError
from cogs.post_buttons import (
    BUTTON_MANAGE_GUILD_TEXT,
    DYNAMIC_ITEMS,
    FAILED_TEXT,
    HideButton,
    PostButtons,
    UnfollowButton,
    UnfollowSelect,
)
from tests.cogs.mocks import GUILD_ID, MEMBER_ID, make_bot, make_interaction

ARTIST = "4" * 22


# --- post buttons ------------------------------------------------------------------------


@pytest.fixture
def actions(monkeypatch):
    unfollow = create_autospec(post_actions.unfollow_artist, return_value="Unfollowed **Nova**.")
    hide = create_autospec(post_actions.hide_album_group, return_value="Singles won't be posted here any more.")
    monkeypatch.setattr(post_actions, "unfollow_artist", unfollow)
    monkeypatch.setattr(post_actions, "hide_album_group", hide)
    return unfollow, hide


async def test_dynamic_items_parse_their_custom_ids():
    button = await UnfollowButton.from_custom_id(
        make_interaction(),
        discord.ui.Button(label="Unfollow Nova"),
        re.fullmatch(UNFOLLOW_TEMPLATE, f"rb:unfollow:{ARTIST}"),
    )
    assert button.artist_id == ARTIST and button.custom_id == f"rb:unfollow:{ARTIST}"
    assert button.item.label == "Unfollow Nova"
    hide = await HideButton.from_custom_id(
        make_interaction(), discord.ui.Button(label="x"), re.fullmatch(HIDE_TEMPLATE, "rb:hide:appears_on")
    )
    assert hide.group == "appears_on" and hide.item.label == "Hide appearances"
    select = await UnfollowSelect.from_custom_id(
        make_interaction(),
        discord.ui.Select(custom_id="rb:unfollow-select", options=[discord.SelectOption(label="a")]),
        re.fullmatch(UNFOLLOW_SELECT_TEMPLATE, "rb:unfollow-select"),
    )
    assert select.custom_id == "rb:unfollow-select"
    assert re.fullmatch(UNFOLLOW_TEMPLATE, "rb:unfollow:short") is None
    assert re.fullmatch(HIDE_TEMPLATE, "rb:hide:ep") is None


async def test_unfollow_button(actions):
    unfollow, _ = actions
    interaction = make_interaction()
    await UnfollowButton(ARTIST).callback(interaction)
    unfollow.assert_awaited_once_with(interaction.client.services.follows, GUILD_ID, ARTIST)
    interaction.response.defer.assert_awaited_once_with(ephemeral=True, thinking=True)
    assert interaction.followup.send.await_args.args[0] == "Unfollowed **Nova**."
    assert interaction.followup.send.await_args.kwargs["ephemeral"] is True


async def test_member_without_manage_server_is_refused(actions):
    unfollow, hide = actions
    for item in (UnfollowButton(ARTIST), HideButton("single")):
        interaction = make_interaction(user_id=MEMBER_ID, manage=False)
        await item.callback(interaction)
        interaction.response.send_message.assert_awaited_once()
        assert interaction.response.send_message.await_args.args[0] == BUTTON_MANAGE_GUILD_TEXT
        assert interaction.response.send_message.await_args.kwargs["ephemeral"] is True
    unfollow.assert_not_awaited()
    hide.assert_not_awaited()


async def test_hide_button(actions):
    _, hide = actions
    interaction = make_interaction()
    await HideButton("single").callback(interaction)
    hide.assert_awaited_once_with(interaction.client.services.guild_settings, GUILD_ID, "single")
    assert interaction.followup.send.await_args.args[0] == "Singles won't be posted here any more."


async def test_select_unfollows_the_chosen_artist(actions):
    unfollow, _ = actions
    interaction = make_interaction(data={"custom_id": "rb:unfollow-select", "values": [ARTIST]})
    await UnfollowSelect().callback(interaction)
    unfollow.assert_awaited_once_with(interaction.client.services.follows, GUILD_ID, ARTIST)
    empty = make_interaction(data={"custom_id": "rb:unfollow-select", "values": []})
    await UnfollowSelect().callback(empty)
    assert "Choose an artist" in empty.response.send_message.await_args.args[0]


@pytest.mark.parametrize(
    "failure, expected",
    [
        (UserError("This server doesn't follow that artist (any more); nothing was changed."), "doesn't follow"),
        (RuntimeError("database locked"), FAILED_TEXT),
    ],
)
async def test_button_errors_answer_ephemerally(actions, failure, expected):
    unfollow, _ = actions
    unfollow.side_effect = failure
    interaction = make_interaction()
    await UnfollowButton(ARTIST).callback(interaction)
    assert expected in interaction.followup.send.await_args.args[0]
    assert interaction.followup.send.await_args.kwargs["ephemeral"] is True


async def test_cog_registers_and_removes_the_dynamic_items():
    bot = make_bot()
    cog = PostButtons(bot)
    await cog.cog_load()
    bot.add_dynamic_items.assert_called_once_with(*DYNAMIC_ITEMS)
    await cog.cog_unload()
    bot.remove_dynamic_items.assert_called_once_with(*DYNAMIC_ITEMS)
