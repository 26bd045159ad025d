"""The buttons under each release post, as Discord component dicts (no discord import).

Every post (one message of one or more release embeds) gets at most two action rows:

1. **Unfollow** — one "Unfollow <artist>" button per artist of the message's releases when
   there are at most :data:`MAX_ARTIST_BUTTONS` of them; otherwise one select menu
   "Unfollow an artist…" listing them (≤ 25 options, in order of appearance).
2. **Hide** — one "Hide <type>s" button per album group present in the message (album,
   single, compilation, appears_on: at most four).

So a message never comes near Discord's limits (5 action rows; 5 buttons or one select
per row; ≤ 25 select options; custom_id ≤ 100 characters; label ≤ 80; option label and
value ≤ 100). The custom ids carry everything the handler needs, so the buttons keep
working after a restart (``cogs/post_buttons.py`` registers ``discord.ui.DynamicItem``
classes whose ``template`` is the regex below):

* ``rb:unfollow:<artist id>`` — :data:`UNFOLLOW_TEMPLATE`
* ``rb:unfollow-select`` (the chosen artist id is the select's value) — :data:`UNFOLLOW_SELECT_TEMPLATE`
* ``rb:hide:<album group>`` — :data:`HIDE_TEMPLATE`

Which group a release is posted under: ``groups[release id]`` when the caller knows it
(the deliverer can pass the link's album group), else an ``album_group`` attribute of
the announcement, else the release's ``album_type`` (album, single or compilation).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "HIDE_LABELS",
    "HIDE_TEMPLATE",
    "MAX_ARTIST_BUTTONS",
    "MAX_SELECT_OPTIONS",
    "UNFOLLOW_SELECT_ID",
    "UNFOLLOW_SELECT_TEMPLATE",
    "UNFOLLOW_TEMPLATE",
    "hide_custom_id",
    "render_components",
    "unfollow_custom_id",
]

GROUPS = ("album", "single", "compilation", "appears_on")
MAX_ARTIST_BUTTONS = 3
MAX_SELECT_OPTIONS = 25
BUTTON_LABEL_LIMIT = 80
OPTION_LABEL_LIMIT = 100

UNFOLLOW_TEMPLATE = r"rb:unfollow:(?P<artist_id>[0-9A-Za-z]{22})"
UNFOLLOW_SELECT_ID = "rb:unfollow-select"
UNFOLLOW_SELECT_TEMPLATE = r"rb:unfollow-select"
HIDE_TEMPLATE = r"rb:hide:(?P<group>album|single|compilation|appears_on)"

HIDE_LABELS = {
    "album": "Hide albums",
    "single": "Hide singles",
    "compilation": "Hide compilations",
    "appears_on": "Hide appearances",
}

_ID_RE = re.compile(r"^[0-9A-Za-z]{22}$")

# Discord component types / button styles ("Message Components").
_ACTION_ROW, _BUTTON, _STRING_SELECT = 1, 2, 3
_SECONDARY = 2


def unfollow_custom_id(artist_id: str) -> str:
    """``rb:unfollow:<artist id>``."""
    return f"rb:unfollow:{artist_id}"


def hide_custom_id(group: str) -> str:
    """``rb:hide:<album group>``."""
    return f"rb:hide:{group}"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _artists_of(release: Any) -> Iterable[tuple[str, str]]:
    for artist in getattr(release, "artists", None) or ():
        if isinstance(artist, dict):
            yield artist.get("id") or "", artist.get("name") or ""
        else:
            yield getattr(artist, "id", "") or "", getattr(artist, "name", "") or ""


def _group_of(announcement: Any, groups: Mapping[str, str] | None) -> str | None:
    release = getattr(announcement, "release", announcement)
    release_id = getattr(release, "id", None)
    group = (
        (groups or {}).get(release_id or "")
        or getattr(announcement, "album_group", None)
        or getattr(release, "album_type", None)
    )
    group = (group or "").lower()
    return group if group in GROUPS else None


def render_components(
    announcements: Sequence[Any],
    *,
    followed_artist_ids: Collection[str] | None = None,
    groups: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The action rows for one message carrying ``announcements`` (see the module docstring).

    ``announcements``: :class:`bot.delivery.planner.Announcement` (or anything with a
    ``release`` — or itself — having ``id``, ``artists`` ``[{"id", "name"}]`` and
    ``album_type``). ``followed_artist_ids``: when given, only those artists get an
    unfollow control (e.g. the guild's follows); ``groups``: release id → album group.
    Returns ``[]`` for no announcements.
    """
    artists: dict[str, str] = {}
    present: set[str] = set()
    for announcement in announcements:
        release = getattr(announcement, "release", announcement)
        for artist_id, name in _artists_of(release):
            if not _ID_RE.match(artist_id or ""):
                continue
            if followed_artist_ids is not None and artist_id not in followed_artist_ids:
                continue
            artists.setdefault(artist_id, name or artist_id)
        group = _group_of(announcement, groups)
        if group:
            present.add(group)

    rows: list[dict[str, Any]] = []
    if artists and len(artists) <= MAX_ARTIST_BUTTONS:
        rows.append(
            {
                "type": _ACTION_ROW,
                "components": [
                    {
                        "type": _BUTTON,
                        "style": _SECONDARY,
                        "custom_id": unfollow_custom_id(artist_id),
                        "label": _truncate(f"Unfollow {name}", BUTTON_LABEL_LIMIT),
                    }
                    for artist_id, name in artists.items()
                ],
            }
        )
    elif artists:
        options = [
            {"label": _truncate(name, OPTION_LABEL_LIMIT), "value": artist_id}
            for artist_id, name in list(artists.items())[:MAX_SELECT_OPTIONS]
        ]
        rows.append(
            {
                "type": _ACTION_ROW,
                "components": [
                    {
                        "type": _STRING_SELECT,
                        "custom_id": UNFOLLOW_SELECT_ID,
                        "placeholder": "Unfollow an artist…",
                        "min_values": 1,
                        "max_values": 1,
                        "options": options,
                    }
                ],
            }
        )
    hide = [g for g in GROUPS if g in present]
    if hide:
        rows.append(
            {
                "type": _ACTION_ROW,
                "components": [
                    {"type": _BUTTON, "style": _SECONDARY, "custom_id": hide_custom_id(g), "label": HIDE_LABELS[g]}
                    for g in hide
                ],
            }
        )
    return rows
