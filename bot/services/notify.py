"""``/notify`` and the 🔔 Notify me buttons: which followed artists a member wants to hear of, and how
(no discord import, no SQL).

A member of a guild subscribes to artists the guild follows; each new release of one of them then
mentions them in the guild's post (mode ``mention``, the default) or reaches them by direct message
(mode ``dm``) — the delivery side reads ``storage.members.subscribers``. Everything is per guild
and per member: every call takes the guild id and the member's user id, and reads or changes only
that member's subscriptions in that guild, so no guild and no other member ever sees them. Any
member may use it (no Manage Server). Bad input raises :class:`UserError` and changes nothing.

Writes go through ``storage.members``' race-free statements (the member's row write-locked before
their subscriptions are counted), in transactions rerun after a PostgreSQL deadlock: two clicks at
the same instant, in two bot processes, give one subscription and no error, and the limit of
:data:`DEFAULT_MAX_SUBSCRIPTIONS_PER_MEMBER` per member and guild holds exactly. An unfollow removes
the guild's subscriptions to that artist in its own transaction (``storage.guilds.unfollow``).

When Discord refuses a member a DM (50007) the delivery side switches them to ``mention``
(``storage.members.mark_dms_closed``) and owes them a notice: :meth:`NotifyService.take_dm_notice`
hands it out once, at their next command in the guild (``cogs/notices.py``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bot.clock import Clock
from bot.services.errors import UserError
from bot.services.guild_settings import GuildSettingsService
from bot.services.text import escape_markdown
from bot.spotify.links import parse_spotify_id
from storage import catalog, guilds, members
from storage.db import Database, Session
from storage.members import MODES

__all__ = [
    "DEFAULT_MAX_SUBSCRIPTIONS_PER_MEMBER",
    "MODES",
    "MODE_NAMES",
    "MemberSubscriptions",
    "NotifyService",
    "Subscribed",
    "dm_closed_text",
    "mode_text",
    "subscribed_text",
    "unsubscribed_text",
]

DEFAULT_MAX_SUBSCRIPTIONS_PER_MEMBER = 100
"""The most artists one member may subscribe to in one guild."""

MODE_NAMES = {"mention": "mentioned in this server's post", "dm": "sent a direct message"}
"""How each mode reaches the member, as the answers say it ("You'll be …")."""


@dataclass(frozen=True)
class Subscribed:
    """A member's subscription to ``artist_id`` (named ``artist_name``) after :meth:`NotifyService.subscribe`:
    ``already`` when it existed before; ``mode`` how they are notified in the guild (``mention``/``dm``)."""

    artist_id: str
    artist_name: str
    already: bool
    mode: str


@dataclass(frozen=True)
class MemberSubscriptions:
    """``/notify list``: the member's ``artists`` in the guild as ``(artist id, name)`` by name, their
    ``mode`` there, and ``dm_closed_at`` (aware UTC; when Discord last refused them a DM, None if never)."""

    artists: list[tuple[str, str]]
    mode: str
    dm_closed_at: dt.datetime | None


def limit_text(limit: int) -> str:
    """The member already has ``limit`` subscriptions in the guild, the most allowed."""
    return (
        f"You're already notified of {limit} artists in this server, the most allowed. "
        "Remove some with `/notify remove` first; nothing was changed."
    )


def not_followed_text(name: str) -> str:
    """The guild does not follow the artist the member named (``name``: as they typed it, or the artist's name)."""
    return (
        f"This server doesn't follow “{escape_markdown(name)}”, so there is nothing to notify you of; "
        "nothing was changed. "
        "`/following` lists the artists it follows (a member with Manage Server can `/follow` more)."
    )


def subscribed_text(outcome: Subscribed) -> str:
    """The answer to a subscription (``/notify add``, the 🔔 button): what will happen and how to change it."""
    name = f"**{escape_markdown(outcome.artist_name)}**"
    if outcome.already:
        return (
            f"You're already notified of {name} here: you'll be {MODE_NAMES[outcome.mode]} when it releases "
            "something. `/notify remove` stops it."
        )
    switch = (
        "`/notify mode` switches to a direct message"
        if outcome.mode == "mention"
        else "`/notify mode` switches to a mention in the post"
    )
    return (
        f"🔔 You'll be {MODE_NAMES[outcome.mode]} when {name} releases something here — {switch}; "
        "`/notify remove` (or the 🔔 button again) stops it."
    )


def unsubscribed_text(name: str) -> str:
    """The answer to removing a subscription to the artist ``name``."""
    return (
        f"You won't be notified of **{escape_markdown(name)}** here any more. "
        "`/notify add` or a post's 🔔 button brings it back."
    )


def mode_text(mode: str, dm_closed_at: dt.datetime | None) -> str:
    """The answer to ``/notify mode``: how the member is notified now in this server; switching to DMs
    after Discord refused them one says to open their DMs first."""
    if mode == "mention":
        return "You'll be mentioned in this server's post when an artist you subscribed to releases something."
    text = (
        "You'll get a direct message when an artist you subscribed to in this server releases something. "
        "Keep direct messages from this server's members open (Privacy Settings); if I can't reach you, "
        "I'll switch you back to mentions and tell you."
    )
    if dm_closed_at is not None:
        text += (
            f" Your DMs were closed to me on <t:{int(dm_closed_at.timestamp())}:D>: open them first, or you'll be "
            "switched back."
        )
    return text


def dm_closed_text() -> str:
    """The one-time notice after Discord refused the member a DM: what happened and how to switch back."""
    return (
        "📭 I couldn't send you a direct message about a new release: your DMs are closed to me. "
        "So you're now mentioned in this server's posts instead. To get DMs again, allow direct messages "
        "from this server's members (Server menu → Privacy Settings), then run `/notify mode mode:dm`."
    )


class NotifyService:
    """A member's subscriptions in a guild.

    ``db``: the opened store; ``guild_settings``: creates the guild row on first use (a mode may be
    chosen before the guild followed anything); ``clock``: aware UTC now (``created_at``);
    ``max_subscriptions``: the most artists one member may subscribe to in one guild.
    """

    def __init__(
        self,
        db: Database,
        guild_settings: GuildSettingsService,
        *,
        clock: Clock,
        max_subscriptions: int = DEFAULT_MAX_SUBSCRIPTIONS_PER_MEMBER,
    ) -> None:
        self.db = db
        self.guild_settings = guild_settings
        self.clock = clock
        self.max_subscriptions = max_subscriptions

    async def subscribe(self, guild_id: int, user_id: int, text: str) -> Subscribed:
        """Subscribe member ``user_id`` to a followed artist named by ``text``: its Spotify id (what the
        autocomplete and the buttons send), link, URI, or exact name (case-insensitive).

        Returns the subscription (``already`` when it existed: nothing changes then). Raises
        :class:`UserError` when the guild does not follow that artist (also when it was unfollowed a
        moment before, in any process) or the member has :attr:`max_subscriptions` already; then
        nothing is written.
        """
        text = (text or "").strip()
        if not text:
            raise UserError("Name an artist this server follows (the autocomplete lists them).")
        now = self.clock()

        async def work(session: Session) -> Subscribed:
            given_id = parse_spotify_id(text, "artist")
            found = await guilds.find_followed(session, guild_id, artist_id=given_id, name=text)
            if found is None:
                shown = text  # an id (a button, a stale choice) is named when the artist is known
                if given_id is not None:
                    shown = (await catalog.artist_names(session, [given_id])).get(given_id, text)
                raise UserError(not_followed_text(shown))
            artist_id, name = found
            result = await members.subscribe(
                session, guild_id, user_id, artist_id, now=now, limit=self.max_subscriptions
            )
            if result.status == "not_followed":  # unfollowed between the two reads
                raise UserError(not_followed_text(name))
            if result.status == "limit":
                raise UserError(limit_text(self.max_subscriptions))
            return Subscribed(artist_id, name, result.status == "already", result.mode)

        return await self.db.retrying(work)

    async def unsubscribe(self, guild_id: int, user_id: int, text: str) -> str:
        """Remove member ``user_id``'s subscription to the artist named by ``text`` (id, link, URI or exact
        name) in this guild; returns the artist's name. Raises :class:`UserError` when they have no such
        subscription here (also when another click removed it a moment before)."""
        text = (text or "").strip()

        async def work(session: Session) -> str | None:
            found = await members.find_subscription(
                session, guild_id, user_id, artist_id=parse_spotify_id(text, "artist"), name=text
            )
            if found is None or not await members.unsubscribe(session, guild_id, user_id, found[0]):
                return None
            return found[1]

        name = await self.db.retrying(work)
        if name is None:
            raise UserError(
                f"You're not notified of “{escape_markdown(text)}” in this server; nothing was changed. "
                "`/notify list` shows what you are notified of."
            )
        return name

    async def subscriptions(self, guild_id: int, user_id: int) -> MemberSubscriptions:
        """Member ``user_id``'s subscriptions in this guild (by name) and how they are notified here."""
        async with self.db.transaction() as session:
            artists = await members.member_subscriptions(session, guild_id, user_id)
            settings = await members.member_settings(session, guild_id, user_id)
        return MemberSubscriptions(artists, settings.mode, settings.dm_closed_at)

    async def set_mode(self, guild_id: int, user_id: int, mode: str) -> MemberSubscriptions:
        """Notify member ``user_id`` in this guild by ``mode`` (``mention`` or ``dm``) from now on; a
        closed-DMs notice still owed to them here is dropped (they chose). Returns their subscriptions
        and mode afterwards. Raises :class:`UserError` for another mode."""
        mode = (mode or "").strip().lower()
        if mode not in MODES:
            raise UserError(f"Choose a mode: {' or '.join(MODES)}.")
        await self.guild_settings.ensure_guild(guild_id)

        async def work(session: Session) -> None:
            await members.set_mode(session, guild_id, user_id, mode)

        await self.db.retrying(work)
        return await self.subscriptions(guild_id, user_id)

    async def add_choices(self, guild_id: int, text: str, limit: int = 25) -> list[tuple[str, str]]:
        """Autocomplete for ``/notify add``: ``(name, artist id)`` of the artists this guild follows whose
        name contains ``text`` (all of them, up to ``limit``, when it is empty), by name."""
        async with self.db.transaction() as session:
            rows = await guilds.followed_choices(session, guild_id, (text or "").strip(), limit)
        return [(name[:100], artist_id) for name, artist_id in rows]

    async def remove_choices(self, guild_id: int, user_id: int, text: str, limit: int = 25) -> list[tuple[str, str]]:
        """Autocomplete for ``/notify remove``: ``(name, artist id)`` of member ``user_id``'s own
        subscriptions in this guild whose name contains ``text`` (up to ``limit``), by name."""
        async with self.db.transaction() as session:
            rows = await members.subscription_choices(session, guild_id, user_id, (text or "").strip(), limit)
        return [(name[:100], artist_id) for name, artist_id in rows]

    async def take_dm_notice(self, guild_id: int, user_id: int) -> bool:
        """True once after Discord refused member ``user_id`` a DM (they were switched to ``mention``):
        the caller tells them (:func:`dm_closed_text`). Reads first and writes only when a notice is
        owed; the write is one conditional ``UPDATE``, so of two commands at the same instant (two
        processes) one gets True."""
        async with self.db.transaction() as session:
            if not await members.dm_notice_pending(session, guild_id, user_id):
                return False
        async with self.db.transaction() as session:
            return await members.take_dm_notice(session, guild_id, user_id)

    async def restore_dm_notice(self, guild_id: int, user_id: int) -> None:
        """The notice :meth:`take_dm_notice` handed out could not be delivered: owe it again (the next
        command tells it), unless the member is back in ``dm`` mode."""
        async with self.db.transaction() as session:
            await members.restore_dm_notice(session, guild_id, user_id)
