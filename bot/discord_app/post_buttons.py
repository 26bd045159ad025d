"""The buttons under each release post, on Discord: "Unfollow <artist>", the "Unfollow an artist…"
select, "Hide <type>s", "🔔 Notify me: <artist>" and the "🔔 Notify me about…" select (layout and
custom ids: ``bot/delivery/components.py``), and the "Stop notifying me" button of the private
answer to a member who pressed Notify me while notified already.

Each is a ``discord.ui.DynamicItem``: the custom id carries the artist id or album group and the
class's ``template`` regex matches it, so a button on a post from before a restart (or an upgrade)
still works with no stored view state. The same classes serve both ways: :func:`post_view` builds
a post's ``discord.ui.View`` from them (:class:`bot.discord_app.sender.DiscordSender`), and
``ReleaseBot.setup_hook`` registers :data:`POST_BUTTON_ITEMS` so that discord.py answers them.
Unfollow and Hide need Manage Server, checked in code (a member without it gets an ephemeral
refusal); Notify me and Stop are for any member and act on the presser's own subscriptions only.
What a button does lives in ``bot/services/post_actions.py``; every answer is ephemeral.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import discord

from bot.delivery.components import (
    HIDE_LABELS,
    HIDE_TEMPLATE,
    NOTIFY_SELECT_ID,
    NOTIFY_SELECT_PLACEHOLDER,
    NOTIFY_SELECT_TEMPLATE,
    NOTIFY_STOP_LABEL,
    NOTIFY_STOP_TEMPLATE,
    NOTIFY_TEMPLATE,
    UNFOLLOW_SELECT_ID,
    UNFOLLOW_SELECT_PLACEHOLDER,
    UNFOLLOW_SELECT_TEMPLATE,
    UNFOLLOW_TEMPLATE,
    ArtistOption,
    HideTypeButton,
    NotifyArtistButton,
    NotifyArtistSelect,
    PostButtons,
    PostItem,
    UnfollowArtistButton,
    UnfollowArtistSelect,
    hide_custom_id,
    notify_custom_id,
    notify_stop_custom_id,
    unfollow_custom_id,
)
from bot.discord_app.interactions import member_can_manage, services_of, shard_of
from bot.ops.logs import bind_log_context
from bot.services import Services, post_actions
from bot.services.errors import UserError

if TYPE_CHECKING:
    from discord.types.interactions import SelectMessageComponentInteractionData

log = logging.getLogger(__name__)

BUTTON_MANAGE_GUILD_TEXT = "You need the **Manage Server** permission to use these buttons."
FAILED_TEXT = "Something went wrong on my side; nothing was changed. Please try again."

Answer = str | tuple[str, discord.ui.View]
"""What a button answers: a text, or a text with the view of buttons it carries."""

Action = Callable[[Services, int | None], Awaitable[Answer]]
"""What a button does: ``await action(services, guild_id)`` → the answer to the member."""


async def run_action(
    interaction: discord.Interaction, action: Action, *, manage_server: bool = True, edit: bool = False
) -> None:
    """Check Manage Server (unless ``manage_server`` is False: any member), run ``action(services,
    guild_id)`` and answer ephemerally: a new private message, or with ``edit`` the (private) message
    the pressed button is on, its buttons removed.

    A :class:`UserError` is answered as it is; any other failure is logged and answered with
    :data:`FAILED_TEXT`. Nobody is mentioned (the bot's ``AllowedMentions.none()``).
    """
    bind_log_context(guild_id=interaction.guild_id, shard=shard_of(interaction))  # discord.py: a task per press
    if manage_server and not member_can_manage(interaction):
        await interaction.response.send_message(BUTTON_MANAGE_GUILD_TEXT, ephemeral=True)
        return
    if edit:
        await interaction.response.defer()  # a deferred update of the button's message
    else:
        await interaction.response.defer(ephemeral=True, thinking=True)
    view: discord.ui.View | None = None
    try:
        answer = await action(services_of(interaction), interaction.guild_id)
        text, view = (answer, None) if isinstance(answer, str) else answer
    except UserError as exc:
        text = str(exc)
    except Exception:
        log.exception("post button %s failed", interaction.data and interaction.data.get("custom_id"))
        text = FAILED_TEXT
    if edit:
        await interaction.edit_original_response(content=text, view=None)
    elif view is not None:
        await interaction.followup.send(text, ephemeral=True, view=view)
    else:
        await interaction.followup.send(text, ephemeral=True)


class UnfollowButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=UNFOLLOW_TEMPLATE):
    """``rb:unfollow:<artist id>``: unfollow that artist in this server. ``label``: as posted."""

    def __init__(self, artist_id: str, label: str | None = None, *, row: int | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or "Unfollow",
                style=discord.ButtonStyle.secondary,
                custom_id=unfollow_custom_id(artist_id),
            ),
            row=row,
        )
        self.artist_id = artist_id

    @classmethod
    def of(cls, button: UnfollowArtistButton, *, row: int | None = None) -> UnfollowButton:
        """The item posting ``button``."""
        return cls(button.artist_id, button.label, row=row)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> UnfollowButton:
        """The pressed button (its label kept from the message)."""
        label = item.label if isinstance(item, discord.ui.Button) else None
        return cls(match["artist_id"], label)

    async def callback(self, interaction: discord.Interaction) -> None:
        """Unfollow the artist (``post_actions.unfollow_artist``) for a member with Manage Server."""
        artist_id = self.artist_id
        await run_action(
            interaction,
            lambda services, guild_id: post_actions.unfollow_artist(services.follows, guild_id, artist_id),
        )


def artist_select(
    custom_id: str, placeholder: str, options: tuple[ArtistOption, ...]
) -> discord.ui.Select[discord.ui.View]:
    """A one-choice select menu of artists (``options``: label and Spotify artist id as the value)."""
    return discord.ui.Select(
        custom_id=custom_id,
        placeholder=placeholder,
        min_values=1,
        max_values=1,
        options=[discord.SelectOption(label=o.label, value=o.artist_id) for o in options],
    )


async def chosen_artist(interaction: discord.Interaction) -> str | None:
    """The artist id chosen in an :func:`artist_select` menu; None (after asking the member to choose
    one, privately) when the interaction carries no value."""
    data = cast("SelectMessageComponentInteractionData | None", interaction.data)
    values = list(data.get("values", [])) if data is not None else []
    if not values:
        await interaction.response.send_message("Choose an artist in the menu.", ephemeral=True)
        return None
    return str(values[0])


class UnfollowSelect(discord.ui.DynamicItem[discord.ui.Select[discord.ui.View]], template=UNFOLLOW_SELECT_TEMPLATE):
    """``rb:unfollow-select``: unfollow the artist chosen in the menu (its value is the artist id)."""

    def __init__(self, options: tuple[ArtistOption, ...] = (), *, row: int | None = None) -> None:
        super().__init__(artist_select(UNFOLLOW_SELECT_ID, UNFOLLOW_SELECT_PLACEHOLDER, options), row=row)

    @classmethod
    def of(cls, select: UnfollowArtistSelect, *, row: int | None = None) -> UnfollowSelect:
        """The item posting ``select``."""
        return cls(select.options, row=row)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> UnfollowSelect:
        """The used select (its options are not needed: the chosen value is the artist id)."""
        return cls()

    async def callback(self, interaction: discord.Interaction) -> None:
        """Unfollow the chosen artist (``post_actions.unfollow_artist``); none chosen: ask for one."""
        artist_id = await chosen_artist(interaction)
        if artist_id is None:
            return
        await run_action(
            interaction,
            lambda services, guild_id: post_actions.unfollow_artist(services.follows, guild_id, artist_id),
        )


class HideButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=HIDE_TEMPLATE):
    """``rb:hide:<album group>``: stop posting that release type in this server."""

    def __init__(self, group: str, *, row: int | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=HIDE_LABELS.get(group, "Hide"),
                style=discord.ButtonStyle.secondary,
                custom_id=hide_custom_id(group),
            ),
            row=row,
        )
        self.group = group

    @classmethod
    def of(cls, button: HideTypeButton, *, row: int | None = None) -> HideButton:
        """The item posting ``button``."""
        return cls(button.album_group, row=row)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> HideButton:
        """The pressed button."""
        return cls(match["group"])

    async def callback(self, interaction: discord.Interaction) -> None:
        """Stop posting the group (``post_actions.hide_album_group``) for a member with Manage Server."""
        group = self.group
        await run_action(
            interaction,
            lambda services, guild_id: post_actions.hide_album_group(services.guild_settings, guild_id, group),
        )


async def notify_answer(services: Services, guild_id: int | None, user_id: int, artist_id: str) -> Answer:
    """🔔 Notify me (``post_actions.notify_me``): the answer, with a "Stop notifying me" button when the
    member was notified of the artist already."""
    answer = await post_actions.notify_me(services.notify, guild_id, user_id, artist_id)
    return (answer.text, stop_view(answer.artist_id)) if answer.offer_stop else answer.text


class NotifyButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=NOTIFY_TEMPLATE):
    """``rb:notify:<artist id>``: notify the member who presses it of that artist's releases in this
    server (any member). ``label``: as posted."""

    def __init__(self, artist_id: str, label: str | None = None, *, row: int | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or "🔔 Notify me",
                style=discord.ButtonStyle.primary,
                custom_id=notify_custom_id(artist_id),
            ),
            row=row,
        )
        self.artist_id = artist_id

    @classmethod
    def of(cls, button: NotifyArtistButton, *, row: int | None = None) -> NotifyButton:
        """The item posting ``button``."""
        return cls(button.artist_id, button.label, row=row)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> NotifyButton:
        """The pressed button (its label kept from the message)."""
        label = item.label if isinstance(item, discord.ui.Button) else None
        return cls(match["artist_id"], label)

    async def callback(self, interaction: discord.Interaction) -> None:
        """Subscribe the member (:func:`notify_answer`); no Manage Server needed."""
        artist_id, user_id = self.artist_id, interaction.user.id
        await run_action(
            interaction,
            lambda services, guild_id: notify_answer(services, guild_id, user_id, artist_id),
            manage_server=False,
        )


class NotifySelect(discord.ui.DynamicItem[discord.ui.Select[discord.ui.View]], template=NOTIFY_SELECT_TEMPLATE):
    """``rb:notify-select``: notify the member of the artist chosen in the menu (its value is the artist id)."""

    def __init__(self, options: tuple[ArtistOption, ...] = (), *, row: int | None = None) -> None:
        super().__init__(artist_select(NOTIFY_SELECT_ID, NOTIFY_SELECT_PLACEHOLDER, options), row=row)

    @classmethod
    def of(cls, select: NotifyArtistSelect, *, row: int | None = None) -> NotifySelect:
        """The item posting ``select``."""
        return cls(select.options, row=row)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> NotifySelect:
        """The used select (its options are not needed: the chosen value is the artist id)."""
        return cls()

    async def callback(self, interaction: discord.Interaction) -> None:
        """Subscribe the member to the chosen artist (:func:`notify_answer`); none chosen: ask for one."""
        artist_id = await chosen_artist(interaction)
        if artist_id is None:
            return
        user_id = interaction.user.id
        await run_action(
            interaction,
            lambda services, guild_id: notify_answer(services, guild_id, user_id, artist_id),
            manage_server=False,
        )


class StopNotifyItem(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=NOTIFY_STOP_TEMPLATE):
    """``rb:notify-stop:<artist id>``: stop notifying the member who presses it of that artist here; the
    private message it is on is edited to say so, without the button."""

    def __init__(self, artist_id: str, *, row: int | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=NOTIFY_STOP_LABEL,
                style=discord.ButtonStyle.secondary,
                custom_id=notify_stop_custom_id(artist_id),
            ),
            row=row,
        )
        self.artist_id = artist_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> StopNotifyItem:
        """The pressed button."""
        return cls(match["artist_id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        """Unsubscribe the member (``post_actions.stop_notifying``); no Manage Server needed."""
        artist_id, user_id = self.artist_id, interaction.user.id
        await run_action(
            interaction,
            lambda services, guild_id: post_actions.stop_notifying(services.notify, guild_id, user_id, artist_id),
            manage_server=False,
            edit=True,
        )


def stop_view(artist_id: str) -> discord.ui.View:
    """The stopped view (see :func:`post_view`) of the "Stop notifying me" button for ``artist_id``."""
    view = discord.ui.View(timeout=None)
    view.add_item(StopNotifyItem(artist_id))
    view.stop()
    return view


POST_BUTTON_ITEMS = (UnfollowButton, UnfollowSelect, HideButton, NotifyButton, NotifySelect, StopNotifyItem)
"""The dynamic item classes the bot registers (``Client.add_dynamic_items``) to answer post buttons."""

PostButtonItem = UnfollowButton | UnfollowSelect | HideButton | NotifyButton | NotifySelect


def item_of(value: PostItem, *, row: int) -> PostButtonItem:
    """The dynamic item posting ``value`` in action row ``row`` (0-based)."""
    if isinstance(value, UnfollowArtistButton):
        return UnfollowButton.of(value, row=row)
    if isinstance(value, UnfollowArtistSelect):
        return UnfollowSelect.of(value, row=row)
    if isinstance(value, NotifyArtistButton):
        return NotifyButton.of(value, row=row)
    if isinstance(value, NotifyArtistSelect):
        return NotifySelect.of(value, row=row)
    return HideButton.of(value, row=row)


def post_view(buttons: PostButtons) -> discord.ui.View:
    """A ``discord.ui.View`` (no timeout, already stopped) carrying ``buttons`` in their rows.

    The view is stopped so discord.py keeps no per-message state for it: interactions on its
    items are dispatched by ``custom_id`` to the registered :data:`POST_BUTTON_ITEMS`.
    """
    view = discord.ui.View(timeout=None)
    for row, values in enumerate(buttons.rows()):
        for value in values:
            view.add_item(item_of(value, row=row))
    view.stop()
    return view
