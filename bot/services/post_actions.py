"""What the buttons under a release post do, as plain async calls (no discord import, no SQL).

``bot/discord_app/post_buttons.py`` checks Manage Server, then calls one of these with the service it
needs, the interaction's guild id and what the button's custom id carries; the returned text
is the ephemeral answer. Bad or stale input raises :class:`UserError`.
"""

from __future__ import annotations

from bot.delivery.types import RELEASE_TYPES
from bot.services.errors import NotFollowed, UserError
from bot.services.follows import FollowService
from bot.services.guild_settings import GuildSettingsService
from bot.services.text import RELEASE_TYPE_PLURALS, escape_markdown
from bot.spotify.links import parse_spotify_id

__all__ = ["hide_album_group", "unfollow_artist"]


async def unfollow_artist(follows: FollowService, guild_id: int | None, artist_id: str) -> str:
    """Unfollow ``artist_id`` in ``guild_id`` (None: the button was pressed outside a server); returns the
    confirmation text.

    Raises :class:`UserError` for a malformed id or an artist this server does not
    follow (e.g. already unfollowed by another button press, in any bot process).
    """
    if not guild_id:
        raise UserError("This works only inside a server.")
    if not artist_id or parse_spotify_id(artist_id, "artist") != artist_id:
        raise UserError("That button does not name a Spotify artist.")
    try:
        name = await follows.unfollow(guild_id, artist_id)
    except NotFollowed:
        raise UserError("This server doesn't follow that artist (any more); nothing was changed.") from None
    return (
        f"Unfollowed **{escape_markdown(name)}**: its new releases won't be posted here. "
        "`/follow` brings it back (what comes out in between is not posted)."
    )


async def hide_album_group(guild_settings: GuildSettingsService, guild_id: int | None, group: str) -> str:
    """Stop posting release type ``group`` (album, single, ep, compilation, appears_on) in ``guild_id``.

    Returns the confirmation text (also when the group was already hidden: nothing
    changes then). Raises :class:`UserError` for an unknown group, or when it is the
    only group posted (the server would get nothing). Atomic: two hide buttons pressed at
    the same instant both take effect.
    """
    if not guild_id:
        raise UserError("This works only inside a server.")
    group = (group or "").strip().lower()
    if group not in RELEASE_TYPES:
        raise UserError("That button does not name a release type.")
    plural = RELEASE_TYPE_PLURALS[group]

    def without_group(current: tuple[str, ...]) -> tuple[str, ...]:
        remaining = tuple(g for g in current if g != group)
        if not remaining:
            raise UserError(
                f"{plural} are the only releases posted here, so hiding them would post nothing. "
                "Choose the types with `/settings types`; nothing was changed."
            )
        return remaining

    before, _after = await guild_settings.update_album_groups(guild_id, without_group)
    if group not in before:
        return f"{plural} are already not posted here; nothing was changed. `/settings types` shows what is."
    return f"{plural} won't be posted here any more. Turn them back on with `/settings types {group}:True`."
