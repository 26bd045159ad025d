"""``bot.discord_app.post_buttons``: the post buttons as ``discord.ui.DynamicItem`` s — the view a post is
sent with, and the callbacks, called directly with mocks spec'd on the real discord.py objects
(python-discord/bot style), error paths included.

(Pressing them on a real post through the Discord fake, before and after a restart:
``tests/e2e/test_import_and_buttons.py``; the 🔔 buttons: ``tests/e2e/test_notify.py``.)
"""

from __future__ import annotations

import datetime as dt
import re
from unittest.mock import AsyncMock, MagicMock, create_autospec

import discord
import pytest
from discord.ext import commands

from bot.delivery.components import (
    HIDE_TEMPLATE,
    NOTIFY_SELECT_TEMPLATE,
    NOTIFY_STOP_TEMPLATE,
    NOTIFY_TEMPLATE,
    UNFOLLOW_SELECT_TEMPLATE,
    UNFOLLOW_TEMPLATE,
    ArtistOption,
    HideTypeButton,
    NotifyArtistButton,
    NotifyArtistSelect,
    PostButtons,
    UnfollowArtistButton,
    UnfollowArtistSelect,
    post_buttons,
)
from bot.delivery.planner import Announcement
from bot.discord_app.post_buttons import (
    BUTTON_MANAGE_GUILD_TEXT,
    FAILED_TEXT,
    POST_BUTTON_ITEMS,
    HideButton,
    NotifyButton,
    NotifySelect,
    StopNotifyItem,
    UnfollowButton,
    UnfollowSelect,
    post_view,
    stop_view,
)
from bot.services import post_actions
from bot.services.errors import UserError
from bot.services.post_actions import NotifyAnswer
from fakes.discord_fake import validate_message_body
from storage.models import Release
from tests.cogs.mocks import make_services

GUILD_ID, ADMIN_ID, MEMBER_ID = 111, 222, 333
ARTIST = "4" * 22
OTHER = "5" * 22


def make_interaction(*, user_id: int = ADMIN_ID, manage: bool = True, data: dict | None = None) -> MagicMock:
    interaction = create_autospec(discord.Interaction, instance=True)
    interaction.guild_id = GUILD_ID
    interaction.user = MagicMock(spec=discord.Member)
    interaction.user.id = user_id
    interaction.permissions = discord.Permissions(manage_guild=manage)
    interaction.data = data or {}
    response = create_autospec(discord.InteractionResponse, instance=True)
    state = {"done": False}
    response.is_done.side_effect = lambda: state["done"]
    for name in ("defer", "send_message", "edit_message"):
        getattr(response, name).side_effect = lambda *a, **k: state.update(done=True)
    interaction.response = response
    interaction.followup = create_autospec(discord.Webhook, instance=True)
    interaction.client = MagicMock(spec=commands.Bot)
    interaction.client.services = make_services()
    return interaction


# --- the view a post is sent with -------------------------------------------------------------


async def test_post_view_carries_the_buttons_in_their_rows_with_the_same_custom_ids():
    buttons = PostButtons(
        unfollow=(UnfollowArtistButton(ARTIST, "Unfollow Nova"), UnfollowArtistButton(OTHER, "Unfollow Guest")),
        hide=(HideTypeButton("single"), HideTypeButton("appears_on")),
    )
    view = post_view(buttons)
    assert view.is_finished() and view.timeout is None  # discord.py keeps no state for it
    rows = view.to_components()
    assert [[c["custom_id"] for c in row["components"]] for row in rows] == [
        [f"rb:unfollow:{ARTIST}", f"rb:unfollow:{OTHER}"],
        ["rb:hide:single", "rb:hide:appears_on"],
    ]
    assert [[c["label"] for c in row["components"]] for row in rows] == [
        ["Unfollow Nova", "Unfollow Guest"],
        ["Hide singles", "Hide appearances"],
    ]
    assert all(c["type"] == 2 and c["style"] == 2 for row in rows for c in row["components"])  # secondary buttons
    assert validate_message_body({"content": "x", "components": rows}) == {}


async def test_post_view_of_a_select():
    options = (ArtistOption(ARTIST, "Nova"), ArtistOption(OTHER, "Guest"))
    rows = post_view(
        PostButtons(unfollow=UnfollowArtistSelect(options), hide=(HideTypeButton("album"),))
    ).to_components()
    [select] = rows[0]["components"]
    assert select["type"] == 3 and select["custom_id"] == "rb:unfollow-select"
    assert select["placeholder"] == "Unfollow an artist…" and (select["min_values"], select["max_values"]) == (1, 1)
    assert [(o["label"], o["value"]) for o in select["options"]] == [("Nova", ARTIST), ("Guest", OTHER)]
    assert [c["custom_id"] for c in rows[1]["components"]] == ["rb:hide:album"]
    assert validate_message_body({"components": rows}) == {}


async def test_hide_row_alone_is_the_first_row():
    rows = post_view(PostButtons(hide=(HideTypeButton("compilation"),))).to_components()
    assert [[c["custom_id"] for c in row["components"]] for row in rows] == [["rb:hide:compilation"]]


def releases(count: int, *, types: tuple[str, ...] = ("album", "single", "compilation")) -> list[Announcement]:
    """``count`` announcements, each of its own artist with a 130-character name, of the ``types`` in turn."""
    first_seen = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    return [
        Announcement(
            Release(
                id=f"r{i}",
                name=f"r{i}",
                album_type=types[i % len(types)],
                artists=[{"id": f"{i:022d}", "name": f"Artist {i} 🔔" + "x" * 120}],
                release_date="2026-11-20",
                release_date_precision="day",
                first_seen_at=first_seen,
            )
        )
        for i in range(count)
    ]


async def test_a_digest_post_stays_within_discords_limits():
    rows = post_view(post_buttons(releases(30))).to_components()
    assert len(rows) == 3 and len(rows[0]["components"][0]["options"]) == 25
    [notify] = rows[2]["components"]
    assert notify["custom_id"] == "rb:notify-select" and notify["placeholder"] == "🔔 Notify me about…"
    assert [o["value"] for o in notify["options"]] == [o["value"] for o in rows[0]["components"][0]["options"]]
    assert validate_message_body({"components": rows}) == {}


@pytest.mark.parametrize("artists", [1, 2, 3, 4])
async def test_every_post_stays_within_discords_limits(artists):
    """The fullest post of each shape: up to three artists as buttons (three rows of ≤ 4 buttons),
    more as two selects; every album group present; long names with an emoji cut to 80 UTF-16 units."""
    anns = releases(artists * 4, types=("album", "single", "compilation"))
    for i, ann in enumerate(anns):  # 4 releases per artist
        ann.release.artists = [{"id": f"{i % artists:022d}", "name": f"Artist {i % artists} 🔔" + "x" * 120}]
    buttons = post_buttons(anns, groups={anns[0].release.id: "appears_on"})
    rows = post_view(buttons).to_components()
    assert len(rows) == 3 <= 5
    assert all(len(row["components"]) <= 5 for row in rows)
    labels = [c["label"] for row in rows for c in row["components"] if "label" in c]
    assert all(len(label.encode("utf-16-le")) // 2 <= 80 for label in labels)
    assert len(rows[1]["components"]) == 4  # Hide albums, singles, compilations, appearances
    if artists <= 3:
        assert [c["custom_id"] for c in rows[2]["components"]] == [f"rb:notify:{i:022d}" for i in range(artists)]
        assert all(c["style"] == 1 for c in rows[2]["components"])  # primary: the members' button stands out
    else:
        assert [c["custom_id"] for c in rows[2]["components"]] == ["rb:notify-select"]
    assert validate_message_body({"content": "x", "embeds": [], "components": rows}) == {}


async def test_every_posted_item_is_answered_by_a_registered_class_after_a_restart():
    """What a post carries is matched by the template of one registered class, which rebuilds the
    item from the custom id alone (as discord.py does for a post from before a restart)."""
    buttons = PostButtons(
        unfollow=(UnfollowArtistButton(ARTIST, "Unfollow Nova"),), hide=(HideTypeButton("compilation"),)
    )
    select = PostButtons(unfollow=UnfollowArtistSelect((ArtistOption(ARTIST, "Nova"),)))
    notify = PostButtons(notify=(NotifyArtistButton(ARTIST, "🔔 Notify me: Nova"),))
    notify_select = PostButtons(notify=NotifyArtistSelect((ArtistOption(ARTIST, "Nova"), ArtistOption(OTHER, "G"))))
    for view in (post_view(buttons), post_view(select), post_view(notify), post_view(notify_select), stop_view(ARTIST)):
        for item in view.children:
            assert isinstance(item, discord.ui.DynamicItem)
            [cls] = [c for c in POST_BUTTON_ITEMS if c.__discord_ui_compiled_template__.fullmatch(item.custom_id)]
            match = cls.__discord_ui_compiled_template__.fullmatch(item.custom_id)
            assert match is not None
            rebuilt = await cls.from_custom_id(make_interaction(), item.item, match)
            assert type(rebuilt) is type(item) and rebuilt.custom_id == item.custom_id


# --- the callbacks -------------------------------------------------------------------------------


@pytest.fixture
def actions(monkeypatch):
    unfollow = AsyncMock(return_value="Unfollowed **Nova**.")
    hide = AsyncMock(return_value="Singles won't be posted here any more.")
    monkeypatch.setattr(post_actions, "unfollow_artist", unfollow)
    monkeypatch.setattr(post_actions, "hide_album_group", hide)
    return unfollow, hide


def matched(template: str, custom_id: str) -> re.Match[str]:
    match = re.fullmatch(template, custom_id)
    assert match is not None, custom_id
    return match


async def test_dynamic_items_parse_their_custom_ids():
    button = await UnfollowButton.from_custom_id(
        make_interaction(),
        discord.ui.Button(label="Unfollow Nova"),
        matched(UNFOLLOW_TEMPLATE, f"rb:unfollow:{ARTIST}"),
    )
    assert button.artist_id == ARTIST and button.custom_id == f"rb:unfollow:{ARTIST}"
    assert button.item.label == "Unfollow Nova"
    hide = await HideButton.from_custom_id(
        make_interaction(), discord.ui.Button(label="x"), matched(HIDE_TEMPLATE, "rb:hide:appears_on")
    )
    assert hide.group == "appears_on" and hide.item.label == "Hide appearances"
    select = await UnfollowSelect.from_custom_id(
        make_interaction(),
        discord.ui.Select(custom_id="rb:unfollow-select", options=[discord.SelectOption(label="a")]),
        matched(UNFOLLOW_SELECT_TEMPLATE, "rb:unfollow-select"),
    )
    assert select.custom_id == "rb:unfollow-select"
    assert re.fullmatch(UNFOLLOW_TEMPLATE, "rb:unfollow:short") is None
    assert re.fullmatch(HIDE_TEMPLATE, "rb:hide:podcast") is None
    ep = await HideButton.from_custom_id(
        make_interaction(), discord.ui.Button(label="x"), matched(HIDE_TEMPLATE, "rb:hide:ep")
    )
    assert ep.group == "ep" and ep.item.label == "Hide EPs"


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


# --- the 🔔 buttons: any member, their own subscriptions ---------------------------------------


@pytest.fixture
def notify_actions(monkeypatch):
    notify_me = AsyncMock(return_value=NotifyAnswer("🔔 You'll be mentioned…", ARTIST, offer_stop=False))
    stop = AsyncMock(return_value="You won't be notified of **Nova** here any more.")
    monkeypatch.setattr(post_actions, "notify_me", notify_me)
    monkeypatch.setattr(post_actions, "stop_notifying", stop)
    return notify_me, stop


async def test_notify_button_subscribes_a_member_without_manage_server(notify_actions):
    notify_me, _ = notify_actions
    interaction = make_interaction(user_id=MEMBER_ID, manage=False)
    await NotifyButton(ARTIST, "🔔 Notify me: Nova").callback(interaction)
    notify_me.assert_awaited_once_with(interaction.client.services.notify, GUILD_ID, MEMBER_ID, ARTIST)
    interaction.response.defer.assert_awaited_once_with(ephemeral=True, thinking=True)
    interaction.followup.send.assert_awaited_once_with("🔔 You'll be mentioned…", ephemeral=True)


async def test_notify_button_pressed_again_offers_a_stop_button(notify_actions):
    notify_me, _ = notify_actions
    notify_me.return_value = NotifyAnswer("You're already notified of **Nova** here…", ARTIST, offer_stop=True)
    interaction = make_interaction(user_id=MEMBER_ID, manage=False)
    await NotifyButton(ARTIST).callback(interaction)
    args, kwargs = interaction.followup.send.await_args
    assert args == ("You're already notified of **Nova** here…",) and kwargs["ephemeral"] is True
    [[stop]] = [row["components"] for row in kwargs["view"].to_components()]
    assert (stop["custom_id"], stop["label"]) == (f"rb:notify-stop:{ARTIST}", "Stop notifying me")
    assert kwargs["view"].is_finished()  # answered by the registered StopNotifyItem, no view state kept


async def test_notify_select_subscribes_to_the_chosen_artist(notify_actions):
    notify_me, _ = notify_actions
    interaction = make_interaction(
        user_id=MEMBER_ID, manage=False, data={"custom_id": "rb:notify-select", "values": [OTHER]}
    )
    await NotifySelect().callback(interaction)
    notify_me.assert_awaited_once_with(interaction.client.services.notify, GUILD_ID, MEMBER_ID, OTHER)
    empty = make_interaction(data={"custom_id": "rb:notify-select", "values": []})
    await NotifySelect().callback(empty)
    assert "Choose an artist" in empty.response.send_message.await_args.args[0]


async def test_stop_button_edits_the_private_answer_without_its_button(notify_actions):
    _, stop = notify_actions
    interaction = make_interaction(user_id=MEMBER_ID, manage=False)
    await StopNotifyItem(ARTIST).callback(interaction)
    stop.assert_awaited_once_with(interaction.client.services.notify, GUILD_ID, MEMBER_ID, ARTIST)
    interaction.response.defer.assert_awaited_once_with()  # a deferred update of the answer's message
    interaction.edit_original_response.assert_awaited_once_with(
        content="You won't be notified of **Nova** here any more.", view=None
    )
    interaction.followup.send.assert_not_awaited()


@pytest.mark.parametrize(
    "failure, expected",
    [(UserError("This server doesn't follow “Nova”…"), "doesn't follow"), (RuntimeError("db down"), FAILED_TEXT)],
)
async def test_notify_errors_answer_ephemerally(notify_actions, failure, expected):
    notify_me, stop = notify_actions
    notify_me.side_effect = stop.side_effect = failure
    pressed = make_interaction(user_id=MEMBER_ID, manage=False)
    await NotifyButton(ARTIST).callback(pressed)
    assert expected in pressed.followup.send.await_args.args[0]
    assert pressed.followup.send.await_args.kwargs == {"ephemeral": True}
    stopped = make_interaction(user_id=MEMBER_ID, manage=False)
    await StopNotifyItem(ARTIST).callback(stopped)
    assert expected in stopped.edit_original_response.await_args.kwargs["content"]


async def test_notify_items_parse_their_custom_ids():
    button = await NotifyButton.from_custom_id(
        make_interaction(),
        discord.ui.Button(label="🔔 Notify me: Nova"),
        matched(NOTIFY_TEMPLATE, f"rb:notify:{ARTIST}"),
    )
    assert button.artist_id == ARTIST and button.item.label == "🔔 Notify me: Nova"
    select = await NotifySelect.from_custom_id(
        make_interaction(),
        discord.ui.Select(custom_id="rb:notify-select", options=[discord.SelectOption(label="a")]),
        matched(NOTIFY_SELECT_TEMPLATE, "rb:notify-select"),
    )
    assert select.custom_id == "rb:notify-select"
    stop = await StopNotifyItem.from_custom_id(
        make_interaction(), discord.ui.Button(label="x"), matched(NOTIFY_STOP_TEMPLATE, f"rb:notify-stop:{ARTIST}")
    )
    assert stop.artist_id == ARTIST and stop.item.label == "Stop notifying me"
