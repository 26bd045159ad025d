"""What the buttons under a release post do, as plain async calls (no discord import, no SQL).

``bot/discord_app/post_buttons.py`` calls one of these with the service it needs, the interaction's
guild id (and, for the 🔔 buttons, the member's user id) and what the button's custom id carries;
the returned text is the ephemeral answer. Unfollow and Hide need Manage Server (checked there
first); Notify me and Stop are any member's own business. Bad or stale input raises :class:`UserError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.delivery.types import RELEASE_TYPES
from bot.services.errors import NotFollowed, UserError
from bot.services.follows import FollowService
from bot.services.guild_settings import GuildSettingsService
from bot.services.notify import MODE_NAMES, NotifyService, subscribed_text, unsubscribed_text
from bot.services.text import RELEASE_TYPE_PLURALS, escape_markdown
from bot.spotify.links import parse_spotify_id

__all__ = ["NotifyAnswer", "hide_album_group", "notify_me", "stop_notifying", "unfollow_artist"]


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


@dataclass(frozen=True)
class NotifyAnswer:
    """The answer to 🔔 Notify me: ``text``, and ``offer_stop`` — the member was subscribed already,
    so the answer carries a "Stop notifying me" button for ``artist_id``."""

    text: str
    artist_id: str
    offer_stop: bool


def _checked_artist(guild_id: int | None, artist_id: str) -> int:
    if not guild_id:
        raise UserError("This works only inside a server.")
    if not artist_id or parse_spotify_id(artist_id, "artist") != artist_id:
        raise UserError("That button does not name a Spotify artist.")
    return guild_id


async def notify_me(notify: NotifyService, guild_id: int | None, user_id: int, artist_id: str) -> NotifyAnswer:
    """🔔 Notify me: subscribe member ``user_id`` of ``guild_id`` to ``artist_id`` (any member may).

    Pressed again (or twice at once), nothing changes: the answer says they are notified already
    and offers to stop (``offer_stop``) rather than unsubscribing on a second press, so a double
    click never undoes the first. Raises :class:`UserError` outside a server, for a malformed id,
    an artist the server does not follow (any more) or the member's subscription limit.
    """
    guild = _checked_artist(guild_id, artist_id)
    outcome = await notify.subscribe(guild, user_id, artist_id)
    if not outcome.already:
        return NotifyAnswer(subscribed_text(outcome), artist_id, offer_stop=False)
    text = (
        f"You're already notified of **{escape_markdown(outcome.artist_name)}** here: you'll be "
        f"{MODE_NAMES[outcome.mode]} when it releases something. Press **Stop notifying me** below "
        "(or use `/notify remove`) to stop."
    )
    return NotifyAnswer(text, artist_id, offer_stop=True)


async def stop_notifying(notify: NotifyService, guild_id: int | None, user_id: int, artist_id: str) -> str:
    """Stop notifying member ``user_id`` of ``guild_id`` of ``artist_id`` (the button offered by
    :func:`notify_me`); returns the confirmation. Raises :class:`UserError` as :func:`notify_me`, or
    when they are not notified of it (any more)."""
    guild = _checked_artist(guild_id, artist_id)
    try:
        name = await notify.unsubscribe(guild, user_id, artist_id)
    except UserError:
        raise UserError("You're not notified of that artist here (any more); nothing was changed.") from None
    return unsubscribed_text(name)
