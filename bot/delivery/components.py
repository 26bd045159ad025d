"""The buttons under each release post, as small typed values (no discord import).

Every post (one message of one or more release embeds) gets at most three action rows:

1. **Unfollow** — one "Unfollow <artist>" button (:class:`UnfollowArtistButton`) per artist of
   the message's releases when there are at most :data:`MAX_ARTIST_BUTTONS` of them; otherwise
   one select menu "Unfollow an artist…" (:class:`UnfollowArtistSelect`) listing them (≤ 25
   options, in order of appearance).
2. **Hide** — one "Hide <type>s" button (:class:`HideTypeButton`) per release type present in the
   message (album, single, ep, compilation, appears_on: at most five).
3. **Notify me** — for any member: one "🔔 Notify me: <artist>" button (:class:`NotifyArtistButton`)
   per artist when there are at most :data:`MAX_ARTIST_BUTTONS`, otherwise one select menu
   "🔔 Notify me about…" (:class:`NotifyArtistSelect`, ≤ 25 options) — the same artists as row 1.

So a message never comes near Discord's limits (5 action rows; 5 buttons or one select
per row; ≤ 25 select options; custom_id ≤ 100 characters; label ≤ 80; option label and
value ≤ 100). The custom ids carry everything the handler needs, so the buttons keep
working after a restart: the Discord layer (``bot/discord_app/post_buttons.py``) turns these
values into ``discord.ui.DynamicItem`` s whose ``template`` is the regex below, and registers
the same classes to answer them. The custom ids are built here and only here:

* ``rb:unfollow:<artist id>`` — :func:`unfollow_custom_id`, matched by :data:`UNFOLLOW_TEMPLATE`
* ``rb:unfollow-select`` (the chosen artist id is the select's value) — :data:`UNFOLLOW_SELECT_ID`
* ``rb:hide:<release type>`` — :func:`hide_custom_id`, matched by :data:`HIDE_TEMPLATE`
* ``rb:notify:<artist id>`` — :func:`notify_custom_id`, matched by :data:`NOTIFY_TEMPLATE`
* ``rb:notify-select`` (the chosen artist id is the select's value) — :data:`NOTIFY_SELECT_ID`
* ``rb:notify-stop:<artist id>`` — :func:`notify_stop_custom_id`, matched by
  :data:`NOTIFY_STOP_TEMPLATE`: the "Stop notifying me" button (:class:`StopNotifyButton`) of the
  private answer to a member who pressed Notify me while already notified (not on posts).

Which type a release is posted as: ``groups[release id]`` when the caller knows it (the planner's
``PendingPlan.types``, which knows appearances), else :func:`bot.delivery.types.release_type` of its
``album_type`` and ``total_tracks`` (album, single, ep or compilation).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from bot.delivery.planner import Announcement
from bot.delivery.types import RELEASE_TYPES, release_type

__all__ = [
    "HIDE_LABELS",
    "HIDE_TEMPLATE",
    "MAX_ARTIST_BUTTONS",
    "MAX_SELECT_OPTIONS",
    "NOTIFY_SELECT_ID",
    "NOTIFY_SELECT_PLACEHOLDER",
    "NOTIFY_SELECT_TEMPLATE",
    "NOTIFY_STOP_LABEL",
    "NOTIFY_STOP_TEMPLATE",
    "NOTIFY_TEMPLATE",
    "UNFOLLOW_SELECT_ID",
    "UNFOLLOW_SELECT_TEMPLATE",
    "UNFOLLOW_TEMPLATE",
    "ArtistOption",
    "HideTypeButton",
    "NotifyArtistButton",
    "NotifyArtistSelect",
    "PostButtons",
    "PostItem",
    "StopNotifyButton",
    "UnfollowArtistButton",
    "UnfollowArtistSelect",
    "hide_custom_id",
    "notify_custom_id",
    "notify_stop_custom_id",
    "post_buttons",
    "unfollow_custom_id",
]

GROUPS = RELEASE_TYPES
MAX_ARTIST_BUTTONS = 3
MAX_SELECT_OPTIONS = 25
BUTTON_LABEL_LIMIT = 80
OPTION_LABEL_LIMIT = 100

UNFOLLOW_TEMPLATE = r"rb:unfollow:(?P<artist_id>[0-9A-Za-z]{22})"
UNFOLLOW_SELECT_ID = "rb:unfollow-select"
UNFOLLOW_SELECT_TEMPLATE = r"rb:unfollow-select"
UNFOLLOW_SELECT_PLACEHOLDER = "Unfollow an artist…"
HIDE_TEMPLATE = r"rb:hide:(?P<group>album|single|ep|compilation|appears_on)"
NOTIFY_TEMPLATE = r"rb:notify:(?P<artist_id>[0-9A-Za-z]{22})"
NOTIFY_SELECT_ID = "rb:notify-select"
NOTIFY_SELECT_TEMPLATE = r"rb:notify-select"
NOTIFY_SELECT_PLACEHOLDER = "🔔 Notify me about…"
NOTIFY_STOP_TEMPLATE = r"rb:notify-stop:(?P<artist_id>[0-9A-Za-z]{22})"
NOTIFY_STOP_LABEL = "Stop notifying me"

HIDE_LABELS = {
    "album": "Hide albums",
    "single": "Hide singles",
    "ep": "Hide EPs",
    "compilation": "Hide compilations",
    "appears_on": "Hide appearances",
}

_ID_RE = re.compile(r"^[0-9A-Za-z]{22}$")


def unfollow_custom_id(artist_id: str) -> str:
    """``rb:unfollow:<artist id>`` (a 22-character Spotify artist id)."""
    return f"rb:unfollow:{artist_id}"


def hide_custom_id(group: str) -> str:
    """``rb:hide:<release type>`` (album, single, ep, compilation or appears_on)."""
    return f"rb:hide:{group}"


def notify_custom_id(artist_id: str) -> str:
    """``rb:notify:<artist id>`` (a 22-character Spotify artist id)."""
    return f"rb:notify:{artist_id}"


def notify_stop_custom_id(artist_id: str) -> str:
    """``rb:notify-stop:<artist id>`` (a 22-character Spotify artist id)."""
    return f"rb:notify-stop:{artist_id}"


def _length(text: str) -> int:
    """``text``'s length in UTF-16 code units: never fewer than its code points, so a label within a
    limit by this count is within it however Discord counts (an emoji such as 🔔 is 2 units)."""
    return len(text.encode("utf-16-le")) // 2


def _truncate(text: str, limit: int) -> str:
    """``text``, or its start and "…" in at most ``limit`` UTF-16 code units (:func:`_length`)."""
    if _length(text) <= limit:
        return text
    cut = text[: limit - 1]
    while _length(cut) > limit - 1:
        cut = cut[:-1]
    return cut + "…"


@dataclass(frozen=True)
class UnfollowArtistButton:
    """ "Unfollow <artist>": unfollows ``artist_id`` in the post's server. ``label`` ≤ 80 characters."""

    artist_id: str
    label: str

    @property
    def custom_id(self) -> str:
        """``rb:unfollow:<artist id>``."""
        return unfollow_custom_id(self.artist_id)


@dataclass(frozen=True)
class ArtistOption:
    """One artist in a post's select menu ("Unfollow an artist…", "🔔 Notify me about…"): the option's
    value is ``artist_id``; ``label`` (the artist's name) ≤ 100 characters."""

    artist_id: str
    label: str


@dataclass(frozen=True)
class UnfollowArtistSelect:
    """ "Unfollow an artist…": a string select of ``options`` (1 to 25); choosing one unfollows it."""

    options: tuple[ArtistOption, ...]
    custom_id: ClassVar[str] = UNFOLLOW_SELECT_ID
    placeholder: ClassVar[str] = UNFOLLOW_SELECT_PLACEHOLDER


@dataclass(frozen=True)
class HideTypeButton:
    """ "Hide <type>s": stops posting release type ``album_group`` (one of :data:`GROUPS`) in the post's server."""

    album_group: str

    def __post_init__(self) -> None:
        if self.album_group not in HIDE_LABELS:
            raise ValueError(f"not an album group: {self.album_group!r}")

    @property
    def label(self) -> str:
        """ "Hide albums", "Hide singles", "Hide EPs", "Hide compilations" or "Hide appearances"."""
        return HIDE_LABELS[self.album_group]

    @property
    def custom_id(self) -> str:
        """``rb:hide:<release type>``."""
        return hide_custom_id(self.album_group)


@dataclass(frozen=True)
class NotifyArtistButton:
    """ "🔔 Notify me: <artist>": subscribes the member who presses it to ``artist_id`` in the post's
    server (any member). ``label`` ≤ 80 characters."""

    artist_id: str
    label: str

    @property
    def custom_id(self) -> str:
        """``rb:notify:<artist id>``."""
        return notify_custom_id(self.artist_id)


@dataclass(frozen=True)
class NotifyArtistSelect:
    """ "🔔 Notify me about…": a string select of ``options`` (1 to 25); choosing one subscribes the member."""

    options: tuple[ArtistOption, ...]
    custom_id: ClassVar[str] = NOTIFY_SELECT_ID
    placeholder: ClassVar[str] = NOTIFY_SELECT_PLACEHOLDER


@dataclass(frozen=True)
class StopNotifyButton:
    """ "Stop notifying me": unsubscribes the member who presses it from ``artist_id`` in the server.
    Carried by the private answer to Notify me when the member was notified already, not by posts."""

    artist_id: str
    label: ClassVar[str] = NOTIFY_STOP_LABEL

    @property
    def custom_id(self) -> str:
        """``rb:notify-stop:<artist id>``."""
        return notify_stop_custom_id(self.artist_id)


@dataclass(frozen=True)
class PostButtons:
    """The buttons of one post: the unfollow row (buttons, a select, or nothing), the hide row, then the
    notify row (buttons, a select, or nothing).

    Falsy when it has no button at all (the post then goes out without components).
    """

    unfollow: tuple[UnfollowArtistButton, ...] | UnfollowArtistSelect = ()
    hide: tuple[HideTypeButton, ...] = ()
    notify: tuple[NotifyArtistButton, ...] | NotifyArtistSelect = ()

    def __bool__(self) -> bool:
        return bool(self.unfollow) or bool(self.hide) or bool(self.notify)

    def rows(self) -> list[tuple[PostItem, ...]]:
        """The non-empty action rows, top to bottom: each the row's buttons, or its one select."""
        unfollow = (self.unfollow,) if isinstance(self.unfollow, UnfollowArtistSelect) else self.unfollow
        notify = (self.notify,) if isinstance(self.notify, NotifyArtistSelect) else self.notify
        return [row for row in (unfollow, self.hide, notify) if row]


PostItem = UnfollowArtistButton | UnfollowArtistSelect | HideTypeButton | NotifyArtistButton | NotifyArtistSelect
"""One component of a post: a button or a select."""


def _group_of(announcement: Announcement, groups: Mapping[str, str] | None) -> str | None:
    release = announcement.release
    group = ((groups or {}).get(release.id) or release_type(release.album_type, release.total_tracks)).lower()
    return group if group in GROUPS else None


def post_buttons(
    announcements: Sequence[Announcement],
    *,
    followed_artist_ids: Collection[str] | None = None,
    groups: Mapping[str, str] | None = None,
) -> PostButtons:
    """The buttons of one message carrying ``announcements`` (see the module docstring).

    Artists are the main releases' ``artists`` (``[{"id", "name"}]``), in order of appearance,
    each once; ids that are not 22-character Spotify ids are left out. ``followed_artist_ids``:
    when given, only those artists get an unfollow and a notify control (e.g. the guild's follows:
    a member can be notified only of an artist the server follows);
    ``groups``: release id → release type. Empty (falsy) for no announcements.
    """
    artists: dict[str, str] = {}
    present: set[str] = set()
    for announcement in announcements:
        for artist in announcement.release.artists or ():
            artist_id, name = artist.get("id") or "", artist.get("name") or ""
            if not _ID_RE.match(artist_id):
                continue
            if followed_artist_ids is not None and artist_id not in followed_artist_ids:
                continue
            artists.setdefault(artist_id, name or artist_id)
        group = _group_of(announcement, groups)
        if group:
            present.add(group)
    unfollow: tuple[UnfollowArtistButton, ...] | UnfollowArtistSelect
    notify: tuple[NotifyArtistButton, ...] | NotifyArtistSelect
    if len(artists) <= MAX_ARTIST_BUTTONS:
        unfollow = tuple(
            UnfollowArtistButton(artist_id, _truncate(f"Unfollow {name}", BUTTON_LABEL_LIMIT))
            for artist_id, name in artists.items()
        )
        notify = tuple(
            NotifyArtistButton(artist_id, _truncate(f"🔔 Notify me: {name}", BUTTON_LABEL_LIMIT))
            for artist_id, name in artists.items()
        )
    else:
        listed = list(artists.items())[:MAX_SELECT_OPTIONS]
        options = tuple(ArtistOption(artist_id, _truncate(name, OPTION_LABEL_LIMIT)) for artist_id, name in listed)
        unfollow = UnfollowArtistSelect(options)
        notify = NotifyArtistSelect(options)
    return PostButtons(unfollow=unfollow, hide=tuple(HideTypeButton(g) for g in GROUPS if g in present), notify=notify)
