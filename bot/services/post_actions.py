"""What the buttons under a release post do, as plain async calls (no discord import).

``cogs/post_buttons.py`` checks Manage Server, then calls one of these with the
interaction's guild id and what the button's custom id carries; the returned text is
the ephemeral answer. Bad or stale input raises :class:`bot.service.UserError`.
Everything goes through :class:`bot.service.ReleaseService` (no storage code here).
"""

from __future__ import annotations

import re

from bot.service import ReleaseService, UserError
from bot.spotify.models import ALBUM_GROUPS

__all__ = ["GROUP_PLURALS", "hide_album_group", "unfollow_artist"]

GROUP_PLURALS = {
    "album": "Albums",
    "single": "Singles",
    "compilation": "Compilations",
    "appears_on": "Releases the artists only appear on",
}
GROUP_OPTION = {"album": "album", "single": "single", "compilation": "compilation", "appears_on": "appears_on"}

_ID_RE = re.compile(r"^[0-9A-Za-z]{22}$")


def _escape(text: str) -> str:
    return re.sub(r"([\\*_~`|>\[\]()])", r"\\\1", text)


async def unfollow_artist(service: ReleaseService, guild_id: int, artist_id: str) -> str:
    """Unfollow ``artist_id`` in ``guild_id``; returns the confirmation text.

    Raises :class:`UserError` for a malformed id or an artist this server does not
    follow (e.g. already unfollowed by another button press).
    """
    if not guild_id:
        raise UserError("This works only inside a server.")
    if not _ID_RE.match(artist_id or ""):
        raise UserError("That button does not name a Spotify artist.")
    follows = {row.artist_id: row.name for row in await service.following(guild_id)}
    if artist_id not in follows:
        raise UserError("This server doesn't follow that artist (any more); nothing was changed.")
    name = await service.unfollow(guild_id, artist_id)
    return (
        f"Unfollowed **{_escape(name)}**: its new releases won't be posted here. "
        "`/follow` brings it back (what comes out in between is not posted)."
    )


async def hide_album_group(service: ReleaseService, guild_id: int, group: str) -> str:
    """Stop posting ``group`` (album, single, compilation, appears_on) in ``guild_id``.

    Returns the confirmation text (also when the group was already hidden: nothing
    changes then). Raises :class:`UserError` for an unknown group, or when it is the
    only group posted (the server would get nothing).
    """
    if not guild_id:
        raise UserError("This works only inside a server.")
    group = (group or "").strip().lower()
    if group not in ALBUM_GROUPS:
        raise UserError("That button does not name a release type.")
    current = tuple(await service.album_groups(guild_id))
    plural = GROUP_PLURALS[group]
    if group not in current:
        return f"{plural} are already not posted here; nothing was changed. `/settings types` shows what is."
    remaining = [g for g in current if g != group]
    if not remaining:
        raise UserError(
            f"{plural} are the only releases posted here, so hiding them would post nothing. "
            "Choose the types with `/settings types`; nothing was changed."
        )
    await service.set_album_groups(guild_id, remaining)
    return (
        f"{plural} won't be posted here any more. Turn them back on with `/settings types {GROUP_OPTION[group]}:True`."
    )
