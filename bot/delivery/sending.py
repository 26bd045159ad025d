"""What delivery asks of Discord: the :class:`Sender` protocol, the destinations it reports and the
errors it raises (no discord import: ``bot.discord_app.sender.DiscordSender`` implements it with
discord.py, tests with fakes).

Discord's errors, as the sender maps them (API reference, "Opcodes and Status Codes" > "JSON Error
Codes"): 403/404 on a channel → :class:`ChannelUnavailable`; a 429 whose ``retry_after`` is longer
than the client waits by itself (``max_ratelimit_timeout``) → :class:`RateLimited`; on a DM 50007
"Cannot send messages to this user" → :class:`DmClosed`, 10013 "Unknown User" → :class:`UnknownUser`,
10007 "Unknown Member" → :class:`UnknownMember`. Anything else is transient (retried later).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from bot.delivery.components import PostButtons
from bot.delivery.render import AllowedMentions

ChannelKind = Literal["text", "announcement", "forum"]
"""Where a release is posted: a ``text`` channel (or any channel that takes messages, a thread
included), an ``announcement`` channel (Discord type 5: its messages can be crossposted) or a
``forum`` (type 15: each release is a post of its own)."""

HISTORY_LIMIT = 100  # recent channel messages read to settle an unconfirmed claim (one request)


class ChannelUnavailable(Exception):
    """The channel cannot be posted to (HTTP 403 Missing Access/Permissions or 404 Unknown Channel).

    ``reason`` is a short text fit to show an admin; ``status`` the HTTP status if known.
    """

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class RateLimited(Exception):
    """Discord answered 429 with a ``retry_after`` (seconds) too long to wait for in place (e.g. the
    crosspost limit of about 10 per channel per hour): try again after it."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited for {retry_after:.0f} s")
        self.retry_after = retry_after


class DmClosed(Exception):
    """Discord refused a direct message (403, JSON code 50007 "Cannot send messages to this user"):
    the user closed their DMs, blocked the bot or shares no server with it any more."""


class UnknownUser(Exception):
    """Discord does not know the user (404, JSON code 10013): the account is gone."""


class UnknownMember(Exception):
    """The user is not a member of the guild any more (404, JSON code 10007)."""


@dataclass(frozen=True)
class Destination:
    """A channel a release may be posted to, as Discord describes it now.

    ``kind``: :data:`ChannelKind`; ``tags`` (forum only): the forum's ``available_tags`` as
    ``{name: tag id}``; ``tag_count``: how many tags it has (Discord allows 20);
    ``may_manage``: the bot has Manage Channels there (it may add tags).
    """

    channel_id: int
    kind: ChannelKind
    tags: Mapping[str, int] = field(default_factory=dict)
    tag_count: int = 0
    may_manage: bool = False


class Sender(Protocol):
    """The Discord side of delivery (``bot.discord_app.sender.DiscordSender``; tests pass fakes).

    Every method raises :class:`ChannelUnavailable` for a channel that is gone (404) or closed to the
    bot (403), :class:`RateLimited` for a long 429, and any other exception for a transient failure,
    unless it says otherwise.
    """

    async def destination(self, channel_id: int) -> Destination:
        """What channel ``channel_id`` is (:class:`Destination`; from the client's cache, else one
        ``GET /channels/{id}``). A channel that takes no posts raises :class:`ChannelUnavailable`."""
        ...

    async def send(
        self,
        channel_id: int,
        embeds: list[dict[str, Any]],
        *,
        nonce: str,
        buttons: PostButtons | None = None,
        content: str | None = None,
        allowed_mentions: AllowedMentions | None = None,
        reply_to: int | None = None,
    ) -> int:
        """Post one message to ``channel_id`` (a text or announcement channel, a thread or a DM
        channel); return its message id.

        ``embeds``: ≤ 10 embed dicts (may be empty when ``content`` is given); ``nonce`` (≤ 25 chars)
        is sent with ``enforce_nonce``. ``buttons``: the post's buttons
        (:mod:`bot.delivery.components`), None when there are none. ``content`` +
        ``allowed_mentions`` (Discord's Allowed Mentions object): exactly the users and roles listed
        there may be pinged; without them nobody is. ``reply_to``: a message of the same channel this
        one replies to (Discord's ``message_reference``; the author is not pinged; a reply to a message
        that is gone is sent as a plain message).
        """
        ...

    async def edit_message(
        self, channel_id: int, message_id: int, *, content: str, embeds: list[dict[str, Any]]
    ) -> None:
        """Replace the bot's message ``message_id`` in channel (or thread) ``channel_id`` with ``content``
        and ``embeds`` (``PATCH /channels/{id}/messages/{mid}``). A message or channel that is gone
        raises :class:`ChannelUnavailable` (404)."""
        ...

    async def find_posted(
        self, channel_id: int, album_urls: list[str], *, limit: int = HISTORY_LIMIT
    ) -> dict[str, int]:
        """Among the bot's own ``limit`` most recent messages in the channel, the id of the message
        whose embed ``url`` is each of ``album_urls`` (absent keys: not found)."""
        ...

    async def find_content(
        self, channel_id: int, content: str, *, limit: int = HISTORY_LIMIT, exclude: Collection[int] = ()
    ) -> int | None:
        """Among the bot's own ``limit`` most recent messages in the channel (or thread), the id of the
        newest whose content is exactly ``content`` and whose id is not in ``exclude``; None when there
        is none."""
        ...

    async def create_forum_post(
        self,
        forum_id: int,
        *,
        name: str,
        embeds: list[dict[str, Any]],
        tag_ids: list[int],
        buttons: PostButtons | None = None,
        content: str | None = None,
        allowed_mentions: AllowedMentions | None = None,
    ) -> int:
        """Create a forum post (``POST /channels/{forum}/threads``) titled ``name`` (1–100 chars) whose
        starter message carries ``embeds``, ``buttons``, ``content`` and ``allowed_mentions`` (as
        :meth:`send`), with the forum tags ``tag_ids`` applied (≤ 5); return the post's thread id (=
        its starter message's id). Discord takes no nonce here."""
        ...

    async def create_forum_tags(self, forum_id: int, names: list[str]) -> dict[str, int]:
        """Add the tags ``names`` that the forum lacks (``PATCH /channels/{forum}``: Manage Channels);
        return every tag of the forum afterwards as ``{name: tag id}``. A tag another process added
        meanwhile is not added twice."""
        ...

    async def find_forum_posts(self, forum_id: int, wanted: Mapping[str, str]) -> dict[str, int]:
        """The bot's posts in the forum whose starter message's embed ``url`` is one of ``wanted``
        (``{album url: the post's expected title}``), among the active and the most recently archived
        public threads: ``{album url: thread id}`` (absent keys: not found)."""
        ...

    async def crosspost(self, channel_id: int, message_id: int) -> bool:
        """Publish message ``message_id`` of announcement channel ``channel_id`` to the servers that
        follow it (``POST /channels/{id}/messages/{mid}/crosspost``). True when it was published now,
        False when Discord says it already was (400, code 40033). A message that is gone raises
        :class:`ChannelUnavailable` too."""
        ...

    async def open_dm(self, user_id: int) -> int:
        """The id of the DM channel with user ``user_id`` (``POST /users/@me/channels``, once per user:
        the answer is cached). Raises :class:`UnknownUser`."""
        ...

    async def send_dm(self, dm_channel_id: int, embeds: list[dict[str, Any]], *, nonce: str, content: str) -> int:
        """Send a direct message in DM channel ``dm_channel_id`` (from :meth:`open_dm`); return its message
        id. Raises :class:`DmClosed` (50007), :class:`UnknownUser`, :class:`UnknownMember`."""
        ...

    async def is_member(self, guild_id: int, user_id: int) -> bool:
        """Whether user ``user_id`` is still a member of guild ``guild_id`` (``GET /guilds/{g}/members/{u}``,
        "Get Guild Member": no privileged intent needed). False on 404 / 10007 Unknown Member; other
        failures raise."""
        ...

    async def find_dm(self, dm_channel_id: int, album_url: str, *, limit: int = HISTORY_LIMIT) -> int | None:
        """Among the bot's ``limit`` latest messages in the DM channel, the id of the one whose embed
        ``url`` is ``album_url``; None when there is none."""
        ...
