"""User-facing text shared by the command services and the cogs (one wording per message)."""

from __future__ import annotations

import datetime as dt
import re

RELEASE_TYPE_NAMES = {
    "album": "Albums",
    "single": "Singles",
    "ep": "EPs",
    "compilation": "Compilations",
    "appears_on": "Appears on",
}
"""Release type (``bot.delivery.types.RELEASE_TYPES``) → how ``/settings types``, routes and ``/status`` name it."""

RELEASE_TYPE_PLURALS = {
    "album": "Albums",
    "single": "Singles",
    "ep": "EPs",
    "compilation": "Compilations",
    "appears_on": "Releases the artists only appear on",
}
"""Release type → its releases as the subject of a sentence ("EPs won't be posted here any more")."""

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
"""Weekday names, index 0 = Monday (``guilds.schedule_day``)."""

SPOTIFY_DID_NOT_ANSWER = "Spotify did not answer just now; nothing was changed. Try again in a minute."


def cooldown_text(until: dt.datetime) -> str:
    """Spotify paused the bot's requests until ``until`` (aware UTC): a Discord timestamp the user's
    client shows in their own time zone."""
    return (
        f"Spotify has paused this bot's requests until <t:{int(until.timestamp())}:f>. "
        "Nothing was changed; try again after that."
    )


def not_followed_text(text: str) -> str:
    """The server does not follow the artist the user named as ``text``."""
    return f"This server doesn't follow “{text}”. See `/following` for the list."


def escape_markdown(text: str) -> str:
    """``text`` with Discord markdown characters escaped (shown literally in a message)."""
    return re.sub(r"([\\*_~`|>\[\]()])", r"\\\1", text)
