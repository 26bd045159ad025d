"""User-facing text shared by the command services and the cogs (one wording per message)."""

from __future__ import annotations

import datetime as dt
import re

ALBUM_GROUP_NAMES = {"album": "Albums", "single": "Singles", "compilation": "Compilations", "appears_on": "Appears on"}
"""Spotify ``album_group`` → how ``/settings types`` and ``/status`` name it."""

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
