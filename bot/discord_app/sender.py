"""The Discord edge of delivery: :class:`DiscordSender` (the ``Sender`` of ``bot.delivery``) posts
messages, forum posts, crossposts and DMs and finds them again after a crash;
:func:`point_discord_at` sends discord.py to a Discord-compatible server (the test fake).

Discord's answers are mapped to ``bot.delivery.sending``'s exceptions (API reference, "Opcodes and
Status Codes" > "JSON Error Codes"): 403/404 on a channel → ``ChannelUnavailable``; a 429 longer than
the client's ``max_ratelimit_timeout`` (``discord.RateLimited``) → ``RateLimited``; on a DM 50007 →
``DmClosed``, 10013 → ``UnknownUser``, 10007 → ``UnknownMember``; crossposting a message twice (400,
40033) → ``crosspost`` answers False. Other ``discord.HTTPException`` s propagate (transient).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Mapping
from typing import Any

import discord
import yarl

from bot.delivery.components import PostButtons
from bot.delivery.render import AllowedMentions
from bot.delivery.sending import (
    HISTORY_LIMIT,
    ChannelUnavailable,
    Destination,
    DmClosed,
    RateLimited,
    UnknownMember,
    UnknownUser,
)
from bot.discord_app.post_buttons import post_view

#: Discord JSON error codes met here ("Opcodes and Status Codes" > "JSON Error Codes")
UNKNOWN_MEMBER, UNKNOWN_USER = 10007, 10013
CANNOT_MESSAGE_USER = 50007
ALREADY_CROSSPOSTED = 40033
#: DM channel ids remembered (one per user; an old one is opened again when needed)
DM_CACHE_SIZE = 10_000
#: starter messages of the bot's older forum posts read when a post is not found by its title
FORUM_FALLBACK_READS = 10


def point_discord_at(api_base_url: str, gateway_url: str) -> None:
    """Send every discord.py REST call to ``api_base_url`` and connect the gateway to ``gateway_url``.

    discord.py builds every route from ``discord.http.Route.BASE``; a plain ``Client``, and an
    ``AutoShardedClient`` given a ``shard_count`` (as ``ReleaseBot`` always is), connect to
    ``DiscordWebSocket.DEFAULT_GATEWAY`` without asking ``GET /gateway/bot``. Both are class
    attributes, so this is process-wide.
    """
    discord.http.Route.BASE = api_base_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def allowed_mentions_of(spec: AllowedMentions | None) -> discord.AllowedMentions:
    """discord.py's ``AllowedMentions`` for Discord's Allowed Mentions object ``spec``: exactly the users
    and roles it lists may be pinged (never everyone or the replied user); None or none listed: nobody."""
    users = (spec or {}).get("users") or []
    roles = (spec or {}).get("roles") or []
    if not users and not roles:
        return discord.AllowedMentions.none()
    return discord.AllowedMentions(
        everyone=False,
        users=[discord.Object(int(u)) for u in users] if users else False,
        roles=[discord.Object(int(r)) for r in roles] if roles else False,
        replied_user=False,
    )


class DiscordSender:
    """Delivery's ``Sender`` on a discord.py client (see the module docstring).

    Nobody is mentioned (the client's ``allowed_mentions``, ``none()`` on ``ReleaseBot``) unless a
    post's ``allowed_mentions`` lists users or roles. DM channel ids are cached per user (at most
    :data:`DM_CACHE_SIZE`), so a user's DMs open their channel once.
    """

    GONE = "the chosen channel no longer exists"
    FORBIDDEN = (
        "the bot is not allowed to post in the chosen channel (it needs View Channel, Send Messages and Embed Links)"
    )
    NOT_POSTABLE = "the chosen channel takes no posts (pick a text, announcement or forum channel)"

    def __init__(self, client: discord.Client) -> None:
        self.client = client
        self._dm_channels: OrderedDict[int, int] = OrderedDict()

    @property
    def _me(self) -> int | None:
        return self.client.user.id if self.client.user is not None else None

    async def _channel(self, channel_id: int) -> Any:
        """The channel from the client's cache, else ``GET /channels/{id}`` (404/403 → ``ChannelUnavailable``)."""
        channel = self.client.get_channel(channel_id)
        if channel is not None:
            return channel
        try:
            return await self.client.fetch_channel(channel_id)
        except discord.NotFound:
            raise ChannelUnavailable(self.GONE, status=404) from None
        except discord.Forbidden:
            raise ChannelUnavailable(self.FORBIDDEN, status=403) from None

    async def destination(self, channel_id: int) -> Destination:
        """What the channel is: a forum (with its tags and whether the bot may add some: Manage
        Channels), an announcement channel, or another channel that takes messages (text, a thread)."""
        channel = await self._channel(channel_id)
        if isinstance(channel, discord.ForumChannel):
            me = channel.guild.me
            return Destination(
                channel_id,
                "forum",
                tags={t.name: t.id for t in channel.available_tags},
                tag_count=len(channel.available_tags),
                may_manage=me is not None and channel.permissions_for(me).manage_channels,
            )
        if isinstance(channel, discord.TextChannel) and channel.is_news():
            return Destination(channel_id, "announcement")
        if isinstance(channel, discord.abc.Messageable):
            return Destination(channel_id, "text")
        raise ChannelUnavailable(self.NOT_POSTABLE)

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
        """Send one message with ``embeds`` (≤ 10 embed dicts, ≤ 6,000 characters; none for a mention
        follow-up) to a channel or thread; returns its message id.

        ``nonce`` makes discord.py send ``enforce_nonce: true``. ``buttons`` are sent as a stopped
        ``discord.ui.View`` of the post-button dynamic items (:func:`post_view`); their interactions
        are answered by ``custom_id``. ``content`` with ``allowed_mentions``: only the users and roles
        listed there may be pinged; without it nobody is. ``reply_to``: the message (same channel) this one
        replies to, as a ``message_reference`` with ``fail_if_not_exists: false`` (a deleted message makes
        it a plain message), the replied-to author not pinged.
        """
        kwargs: dict[str, Any] = {}  # mentions: the bot's own AllowedMentions.none() unless some are given
        if reply_to is not None:
            kwargs["reference"] = discord.MessageReference(
                message_id=reply_to, channel_id=channel_id, fail_if_not_exists=False
            )
            kwargs["mention_author"] = False
        if buttons:
            kwargs["view"] = post_view(buttons)
        if content:
            kwargs["content"] = content
            kwargs["allowed_mentions"] = allowed_mentions_of(allowed_mentions)
        if embeds:
            kwargs["embeds"] = [discord.Embed.from_dict(e) for e in embeds]
        channel = self.client.get_channel(channel_id)
        try:
            if channel is None:
                channel = await self.client.fetch_channel(channel_id)
            if not isinstance(channel, discord.abc.Messageable):
                raise ChannelUnavailable(self.NOT_POSTABLE)
            message = await channel.send(nonce=nonce, **kwargs)
        except discord.NotFound:
            raise ChannelUnavailable(self.GONE, status=404) from None
        except discord.Forbidden:
            raise ChannelUnavailable(self.FORBIDDEN, status=403) from None
        except discord.RateLimited as exc:
            raise RateLimited(exc.retry_after) from None
        return message.id

    async def edit_message(
        self, channel_id: int, message_id: int, *, content: str, embeds: list[dict[str, Any]]
    ) -> None:
        """Edit the bot's message (``PATCH /channels/{id}/messages/{mid}``: content and embeds replaced;
        nobody is pinged). 404 → ``ChannelUnavailable`` (the message or channel is gone), 403 → the
        same (not allowed); a long 429 → ``RateLimited``."""
        message = self.client.get_partial_messageable(channel_id).get_partial_message(message_id)
        try:
            await message.edit(
                content=content,
                embeds=[discord.Embed.from_dict(e) for e in embeds],
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.NotFound:
            raise ChannelUnavailable("the message or its channel no longer exists", status=404) from None
        except discord.Forbidden:
            raise ChannelUnavailable("the bot may not edit its message there", status=403) from None
        except discord.RateLimited as exc:
            raise RateLimited(exc.retry_after) from None

    async def _history(self, channel_id: int, limit: int) -> list[discord.Message]:
        """The bot's own messages among the channel's ``limit`` latest (``GET /channels/{id}/messages``),
        newest first. 404 → ``ChannelUnavailable`` (gone), 403 → ``ChannelUnavailable`` (unreadable)."""
        me = self._me
        channel = self.client.get_partial_messageable(channel_id)
        try:
            return [m async for m in channel.history(limit=limit) if me is None or m.author.id == me]
        except discord.NotFound:
            raise ChannelUnavailable(self.GONE, status=404) from None
        except discord.Forbidden:
            raise ChannelUnavailable("the bot cannot read the chosen channel's messages", status=403) from None

    async def find_posted(
        self, channel_id: int, album_urls: list[str], *, limit: int = HISTORY_LIMIT
    ) -> dict[str, int]:
        """Among the bot's own ``limit`` latest messages in the channel, the id of the (newest) message
        with an embed whose ``url`` is each of ``album_urls``."""
        wanted = set(album_urls)
        found: dict[str, int] = {}
        for message in await self._history(channel_id, limit):
            for embed in message.embeds:
                if embed.url in wanted and embed.url not in found:
                    found[embed.url] = message.id
        return found

    async def find_content(
        self, channel_id: int, content: str, *, limit: int = HISTORY_LIMIT, exclude: Collection[int] = ()
    ) -> int | None:
        """The newest of the bot's own ``limit`` latest messages in the channel whose content is exactly
        ``content`` (a mention follow-up) and whose id is not in ``exclude``, or None."""
        history = await self._history(channel_id, limit)
        return next((m.id for m in history if m.content == content and m.id not in exclude), None)

    # --- forums ---------------------------------------------------------------------------------

    async def _forum(self, forum_id: int) -> discord.ForumChannel:
        channel = await self._channel(forum_id)
        if not isinstance(channel, discord.ForumChannel):
            raise ChannelUnavailable("the chosen channel is not a forum any more")
        return channel

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
        """A forum post (``ForumChannel.create_thread``: ``POST /channels/{forum}/threads``) titled
        ``name`` with the tags ``tag_ids``; its starter message carries the embeds, buttons and
        mentions (as :meth:`send`). Returns the thread id (= the starter message's id)."""
        forum = await self._forum(forum_id)
        tags = []
        for tag_id in tag_ids:
            tag = forum.get_tag(tag_id)
            if tag is None:  # created a moment ago: the gateway's CHANNEL_UPDATE may not be here yet
                tag = discord.ForumTag(name=str(tag_id))
                tag.id = tag_id
            tags.append(tag)
        kwargs: dict[str, Any] = {"embeds": [discord.Embed.from_dict(e) for e in embeds], "applied_tags": tags}
        if buttons:
            kwargs["view"] = post_view(buttons)
        if content:
            kwargs["content"] = content
            kwargs["allowed_mentions"] = allowed_mentions_of(allowed_mentions)
        try:
            created = await forum.create_thread(name=name, **kwargs)
        except discord.NotFound:
            raise ChannelUnavailable(self.GONE, status=404) from None
        except discord.Forbidden:
            raise ChannelUnavailable(self.FORBIDDEN, status=403) from None
        except discord.RateLimited as exc:
            raise RateLimited(exc.retry_after) from None
        return created.thread.id

    async def create_forum_tags(self, forum_id: int, names: list[str]) -> dict[str, int]:
        """Add the tags ``names`` the forum lacks, in one ``PATCH /channels/{forum}`` made on the forum as
        Discord has it now (read first with ``GET /channels/{id}``: the edit replaces the whole list, so
        a tag another process just added is kept); returns ``{name: tag id}`` of every tag after. A
        duplicate name (another process added it meanwhile: 400, 40061) is read back instead."""
        try:
            forum = await self.client.fetch_channel(forum_id)
            if not isinstance(forum, discord.ForumChannel):
                raise ChannelUnavailable("the chosen channel is not a forum any more")
            have = {t.name for t in forum.available_tags}
            new = [discord.ForumTag(name=n) for n in dict.fromkeys(names) if n not in have]
            if new:
                try:
                    forum = await forum.edit(available_tags=[*forum.available_tags, *new])
                except discord.HTTPException as exc:
                    if exc.code != 40061:
                        raise
                    forum = await self.client.fetch_channel(forum_id)
        except discord.NotFound:
            raise ChannelUnavailable(self.GONE, status=404) from None
        except discord.Forbidden:
            raise ChannelUnavailable("the bot may not edit the forum's tags (Manage Channels)", status=403) from None
        if not isinstance(forum, discord.ForumChannel):
            raise ChannelUnavailable("the chosen channel is not a forum any more")
        return {t.name: t.id for t in forum.available_tags}

    async def find_forum_posts(self, forum_id: int, wanted: Mapping[str, str]) -> dict[str, int]:
        """The bot's posts in the forum announcing ``wanted`` (``{album url: expected title}``): the
        forum's active threads (``GET /guilds/{g}/threads/active``) and its 100 most recently archived
        public ones (``GET /channels/{id}/threads/archived/public``), the bot's own only; the starter
        message (``GET /channels/{thread}/messages/{thread}``) of each whose title is expected is read
        and its embed ``url`` must match, then, for what is still missing, those of the bot's
        :data:`FORUM_FALLBACK_READS` newest other posts (a title changed meanwhile).
        ``{album url: thread id}``."""
        forum = await self._forum(forum_id)
        me = self._me
        try:
            active = [t for t in await forum.guild.active_threads() if t.parent_id == forum_id]
            archived = [t async for t in forum.archived_threads(limit=100)]
        except discord.NotFound:
            raise ChannelUnavailable(self.GONE, status=404) from None
        except discord.Forbidden:
            raise ChannelUnavailable("the bot cannot read the forum's posts", status=403) from None
        mine = {t.id: t for t in [*active, *archived] if me is None or t.owner_id == me}
        titles = set(wanted.values())
        by_title = [t for t in mine.values() if t.name in titles]
        others = sorted((t for t in mine.values() if t.name not in titles), key=lambda t: t.id, reverse=True)
        found: dict[str, int] = {}
        for thread in [*by_title, *others[:FORUM_FALLBACK_READS]]:
            if len(found) == len(wanted):
                break
            try:
                starter = await thread.fetch_message(thread.id)
            except discord.NotFound:  # the starter message was deleted: not ours to find
                continue
            for embed in starter.embeds:
                if embed.url is not None and embed.url in wanted and embed.url not in found:
                    found[embed.url] = thread.id
        return found

    # --- crossposts -----------------------------------------------------------------------------

    async def crosspost(self, channel_id: int, message_id: int) -> bool:
        """Publish message ``message_id`` of announcement channel ``channel_id`` (``POST
        /channels/{id}/messages/{mid}/crosspost``). True when published now, False when it already was
        (40033). The publish limit (a 429 longer than ``max_ratelimit_timeout``) → ``RateLimited``; the
        message or channel gone, or not allowed → ``ChannelUnavailable``."""
        message = self.client.get_partial_messageable(channel_id).get_partial_message(message_id)
        try:
            await message.publish()
        except discord.RateLimited as exc:
            raise RateLimited(exc.retry_after) from None
        except discord.NotFound:
            raise ChannelUnavailable("the message or its channel no longer exists", status=404) from None
        except discord.Forbidden:
            raise ChannelUnavailable("the bot may not publish in the chosen channel", status=403) from None
        except discord.HTTPException as exc:
            if exc.code == ALREADY_CROSSPOSTED:
                return False
            if exc.status == 400:  # not an announcement channel any more, or another refusal for good
                raise ChannelUnavailable(f"Discord refused to publish: {exc.text}", status=400) from None
            raise
        return True

    # --- direct messages ------------------------------------------------------------------------

    async def open_dm(self, user_id: int) -> int:
        """The DM channel id with ``user_id`` (``POST /users/@me/channels`` the first time, then cached).
        10013 → ``UnknownUser``."""
        cached = self._dm_channels.get(user_id)
        if cached is not None:
            self._dm_channels.move_to_end(user_id)
            return cached
        try:
            channel = await self.client.create_dm(discord.Object(id=user_id))
        except discord.HTTPException as exc:
            raise _dm_error(exc) from None
        except discord.RateLimited as exc:
            raise RateLimited(exc.retry_after) from None
        self._dm_channels[user_id] = channel.id
        if len(self._dm_channels) > DM_CACHE_SIZE:
            self._dm_channels.popitem(last=False)
        return channel.id

    async def is_member(self, guild_id: int, user_id: int) -> bool:
        """Whether ``user_id`` is still in guild ``guild_id`` (``GET /guilds/{g}/members/{u}``; 10007 → False)."""
        try:
            await self.client.http.get_member(guild_id, user_id)
        except discord.HTTPException as exc:
            if _is_unknown_member(exc):
                return False
            raise
        return True

    async def send_dm(self, dm_channel_id: int, embeds: list[dict[str, Any]], *, nonce: str, content: str) -> int:
        """Send ``content`` and ``embeds`` in the DM channel (with ``nonce``); returns the message id.
        50007 → ``DmClosed``, 10013 → ``UnknownUser``, 10007 → ``UnknownMember``."""
        channel = self.client.get_partial_messageable(dm_channel_id, type=discord.ChannelType.private)
        try:
            message = await channel.send(
                content=content,
                embeds=[discord.Embed.from_dict(e) for e in embeds],
                nonce=nonce,
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as exc:
            raise _dm_error(exc) from None
        except discord.RateLimited as exc:
            raise RateLimited(exc.retry_after) from None
        return message.id

    async def find_dm(self, dm_channel_id: int, album_url: str, *, limit: int = HISTORY_LIMIT) -> int | None:
        """The bot's DM (among its ``limit`` latest in the channel) whose embed ``url`` is ``album_url``."""
        channel = self.client.get_partial_messageable(dm_channel_id, type=discord.ChannelType.private)
        me = self._me
        try:
            async for message in channel.history(limit=limit):
                if (me is None or message.author.id == me) and any(e.url == album_url for e in message.embeds):
                    return message.id
        except discord.HTTPException as exc:
            raise _dm_error(exc) from None
        return None


def _is_unknown_member(exc: discord.HTTPException) -> bool:
    return exc.status == 404 and exc.code == UNKNOWN_MEMBER


def _dm_error(exc: discord.HTTPException) -> Exception:
    """Our exception for Discord's answer to a DM request: 50007 → ``DmClosed``, 10013 → ``UnknownUser``,
    10007 → ``UnknownMember``; anything else is returned as it is (transient)."""
    if exc.code == CANNOT_MESSAGE_USER:
        return DmClosed(exc.text)
    if exc.code == UNKNOWN_USER:
        return UnknownUser(exc.text)
    if exc.code == UNKNOWN_MEMBER:
        return UnknownMember(exc.text)
    return exc
