"""An in-memory Discord behind the ``Sender`` protocol, for the delivery unit tests: text, announcement
and forum channels, forum posts (threads) with tags, mention follow-ups, crossposts with the publish
limit, DMs (and when each 50007 was answered); failures injected per method; every call counted in
``requests``.

It keeps what Discord would: messages per channel (a forum post's starter message is its thread's
first message, with the thread's id), who each message may ping (``allowed_mentions``), which
messages were crossposted. The end-to-end tests drive the real discord.py client against
``fakes/discord_fake.py`` instead.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.delivery.components import PostButtons
from bot.delivery.render import AllowedMentions
from bot.delivery.sending import (
    ChannelKind,
    ChannelUnavailable,
    Destination,
    DmClosed,
    RateLimited,
    UnknownMember,
    UnknownUser,
)

DESTINATION_KINDS: dict[str, ChannelKind] = {
    "text": "text",
    "thread": "text",
    "announcement": "announcement",
    "forum": "forum",
}


@dataclass
class Message:
    """A message the bot posted: ``embeds``, ``content``, ``allowed_mentions``, ``nonce``, ``buttons``."""

    id: int
    channel_id: int
    embeds: list[dict]
    content: str | None = None
    allowed_mentions: AllowedMentions | None = None
    nonce: str | None = None
    buttons: PostButtons | None = None
    reply_to: int | None = None
    edits: int = 0

    @property
    def urls(self) -> list[str]:
        return [e["url"] for e in self.embeds]

    @property
    def pinged(self) -> list[int]:
        """The users this message pings: mentioned in the content and allowed."""
        allowed = {int(u) for u in (self.allowed_mentions or {}).get("users", [])}
        return [u for u in allowed if f"<@{u}>" in (self.content or "")]


@dataclass
class Thread:
    """A forum post: ``id`` (= its starter message's), ``name``, ``tag_ids``, ``archived``."""

    id: int
    forum_id: int
    name: str
    tag_ids: list[int]
    archived: bool = False


@dataclass
class Channel:
    id: int
    kind: str = "text"  # text | announcement | forum | thread | dm
    tags: dict[str, int] = field(default_factory=dict)
    may_manage: bool = False
    gone: bool = False
    forbidden: bool = False


class FakeDiscord:
    """A ``Sender`` (see the module docstring). Channels are made text channels on first use unless
    :meth:`add_channel` said otherwise.

    ``fail``: ``{method name: exception}`` raised by the next call of that method (once), or
    ``{method: (exception, times)}``; ``create_then_fail``: the named methods create the message or
    post and then raise (the answer was lost). ``clock``: seconds for the publish limit
    (``publish_limit`` per channel in ``publish_window`` s).
    """

    def __init__(self, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, list[Message]] = {}
        self.threads: dict[int, Thread] = {}
        self.crossposts: list[int] = []
        self.publish_times: dict[int, list[dt.datetime]] = {}
        self.publish_limit = 10
        self.publish_window = 3600.0
        self.clock = clock
        self.dm_channels: dict[int, int] = {}
        self.dms_closed: set[int] = set()
        self.dm_refused_at: dict[int, dt.datetime] = {}  # user → when the last 50007 was answered
        self.unknown_users: set[int] = set()
        self.left_members: set[int] = set()
        self.departed: set[tuple[int, int]] = set()  # (guild, user): no longer a member (Get Guild Member: 10007)
        self.requests: Counter[str] = Counter()
        self.fail: dict[str, Any] = {}
        self.create_then_fail: set[str] = set()
        self._pending_failure: BaseException | None = None
        self._next = 10_000

    # --- the world ------------------------------------------------------------------------------

    def add_channel(self, channel_id: int, kind: str = "text", *, tags=(), may_manage: bool = False) -> int:
        self.channels[channel_id] = Channel(channel_id, kind, {n: self._id() for n in tags}, may_manage)
        self.messages.setdefault(channel_id, [])
        return channel_id

    def _id(self) -> int:
        self._next += 1
        return self._next

    def _channel(self, channel_id: int) -> Channel:
        channel = self.channels.get(channel_id)
        if channel is None:
            channel = self.channels[channel_id] = Channel(channel_id)
            self.messages.setdefault(channel_id, [])
        if channel.gone:
            raise ChannelUnavailable("the chosen channel no longer exists", status=404)
        if channel.forbidden:
            raise ChannelUnavailable("the bot is not allowed to post in the chosen channel", status=403)
        return channel

    def _call(self, name: str) -> None:
        self.requests[name] += 1
        rule = self.fail.get(name)
        if rule is None:
            return
        exc, times = rule if isinstance(rule, tuple) else (rule, 1)
        if times <= 1:
            del self.fail[name]
        else:
            self.fail[name] = (exc, times - 1)
        if name not in self.create_then_fail:
            raise exc
        self._pending_failure = exc

    def _lost_answer(self, name: str) -> None:
        """For a ``create_then_fail`` method: after creating, raise the failure that was due."""
        exc = self._pending_failure
        if exc is not None:
            self._pending_failure = None
            raise exc

    def posts(self, channel_id: int) -> list[Message]:
        """Messages in a channel or thread, oldest first."""
        return list(self.messages.get(channel_id, []))

    def embedded(self, channel_id: int) -> list[Message]:
        """Messages with embeds (release posts) in a channel."""
        return [m for m in self.posts(channel_id) if m.embeds]

    def urls(self, channel_id: int) -> list[str]:
        return [u for m in self.posts(channel_id) for u in m.urls]

    def forum_posts(self, forum_id: int) -> list[Thread]:
        return [t for t in self.threads.values() if t.forum_id == forum_id]

    def starter(self, thread_id: int) -> Message:
        return self.messages[thread_id][0]

    def dms(self, user_id: int) -> list[Message]:
        cid = self.dm_channels.get(user_id)
        return [] if cid is None else self.posts(cid)

    def all_pings(self) -> Counter[int]:
        """How many messages ping each user, everywhere (channels, threads)."""
        out: Counter[int] = Counter()
        for cid, msgs in self.messages.items():
            if self.channels.get(cid, Channel(cid)).kind == "dm":
                continue
            for m in msgs:
                out.update(m.pinged)
        return out

    # --- Sender ---------------------------------------------------------------------------------

    async def destination(self, channel_id: int) -> Destination:
        self._call("destination")
        channel = self._channel(channel_id)
        kind = DESTINATION_KINDS[channel.kind]  # a thread takes posts as a text channel does; a DM is no destination
        return Destination(
            channel_id, kind, tags=dict(channel.tags), tag_count=len(channel.tags), may_manage=channel.may_manage
        )

    def _post(self, channel_id: int, embeds, **extra: Any) -> Message:
        message = Message(self._id(), channel_id, list(embeds), **extra)
        self.messages.setdefault(channel_id, []).append(message)
        return message

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
        self._call("send")
        channel = self._channel(channel_id)
        assert channel.kind in ("text", "announcement", "thread"), channel.kind
        assert (embeds or content) and len(embeds) <= 10 and len(nonce) <= 25
        assert content is None or len(content) <= 2000
        assert len((allowed_mentions or {}).get("users", [])) <= 100
        assert reply_to is None or any(m.id == reply_to for m in self.posts(channel_id)), "a reply in another channel"
        message = self._post(
            channel_id,
            embeds,
            content=content,
            allowed_mentions=allowed_mentions,
            nonce=nonce,
            buttons=buttons,
            reply_to=reply_to,
        )
        self._lost_answer("send")
        return message.id

    async def edit_message(
        self, channel_id: int, message_id: int, *, content: str, embeds: list[dict[str, Any]]
    ) -> None:
        self._call("edit_message")
        self._channel(channel_id)
        message = next((m for m in self.posts(channel_id) if m.id == message_id), None)
        if message is None:
            raise ChannelUnavailable("the message or its channel no longer exists", status=404)
        message.content, message.embeds = content, list(embeds)
        message.edits += 1

    async def find_posted(self, channel_id: int, album_urls: list[str], *, limit: int = 100) -> dict[str, int]:
        self._call("find_posted")
        self._channel(channel_id)
        found: dict[str, int] = {}
        for m in reversed(self.posts(channel_id)[-limit:]):
            for url in m.urls:
                if url in album_urls:
                    found.setdefault(url, m.id)
        return found

    async def find_content(
        self, channel_id: int, content: str, *, limit: int = 100, exclude: Collection[int] = ()
    ) -> int | None:
        self._call("find_content")
        self._channel(channel_id)
        recent = reversed(self.posts(channel_id)[-limit:])
        return next((m.id for m in recent if m.content == content and m.id not in exclude), None)

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
        self._call("create_forum_post")
        forum = self._channel(forum_id)
        assert forum.kind == "forum" and 1 <= len(name) <= 100 and len(tag_ids) <= 5
        assert set(tag_ids) <= set(forum.tags.values())
        thread_id = self._id()
        self.threads[thread_id] = Thread(thread_id, forum_id, name, list(tag_ids))
        self.channels[thread_id] = Channel(thread_id, "thread")
        starter = Message(
            thread_id, thread_id, list(embeds), content=content, allowed_mentions=allowed_mentions, buttons=buttons
        )
        self.messages[thread_id] = [starter]
        self._lost_answer("create_forum_post")
        return thread_id

    async def create_forum_tags(self, forum_id: int, names: list[str]) -> dict[str, int]:
        self._call("create_forum_tags")
        forum = self._channel(forum_id)
        assert forum.may_manage, "Manage Channels"
        for name in names:
            forum.tags.setdefault(name, self._id())
        assert len(forum.tags) <= 20
        return dict(forum.tags)

    async def find_forum_posts(self, forum_id: int, wanted: Mapping[str, str]) -> dict[str, int]:
        self._call("find_forum_posts")
        self._channel(forum_id)
        found: dict[str, int] = {}
        for thread in self.forum_posts(forum_id):
            for url in self.starter(thread.id).urls:
                if url in wanted:
                    found.setdefault(url, thread.id)
        return found

    async def crosspost(self, channel_id: int, message_id: int) -> bool:
        self._call("crosspost")
        channel = self._channel(channel_id)
        assert channel.kind == "announcement"
        assert any(m.id == message_id for m in self.posts(channel_id)), "unknown message"
        if message_id in self.crossposts:
            return False  # Discord: 400 / 40033 "This message has already been crossposted"
        assert self.clock is not None, "pass a clock to count publishes"
        now = self.clock()
        recent = [t for t in self.publish_times.get(channel_id, []) if (now - t).total_seconds() < self.publish_window]
        if len(recent) >= self.publish_limit:
            raise RateLimited(self.publish_window - (now - recent[0]).total_seconds())
        self.publish_times[channel_id] = [*recent, now]
        self.crossposts.append(message_id)
        self._lost_answer("crosspost")
        return True

    async def open_dm(self, user_id: int) -> int:
        self._call("open_dm")
        if user_id in self.unknown_users:
            raise UnknownUser("Unknown User")
        if user_id not in self.dm_channels:
            cid = self.dm_channels[user_id] = self._id()
            self.channels[cid] = Channel(cid, "dm")
            self.messages[cid] = []
        return self.dm_channels[user_id]

    async def is_member(self, guild_id: int, user_id: int) -> bool:
        self._call("is_member")
        return (guild_id, user_id) not in self.departed

    async def send_dm(self, dm_channel_id: int, embeds: list[dict[str, Any]], *, nonce: str, content: str) -> int:
        self._call("send_dm")
        user = next(u for u, c in self.dm_channels.items() if c == dm_channel_id)
        if user in self.dms_closed:
            if self.clock is not None:
                self.dm_refused_at[user] = self.clock()
            raise DmClosed("Cannot send messages to this user")
        if user in self.left_members:
            raise UnknownMember("Unknown Member")
        message = self._post(dm_channel_id, embeds, content=content, nonce=nonce)
        self._lost_answer("send_dm")
        return message.id

    async def find_dm(self, dm_channel_id: int, album_url: str, *, limit: int = 100) -> int | None:
        self._call("find_dm")
        return next((m.id for m in reversed(self.posts(dm_channel_id)[-limit:]) if album_url in m.urls), None)
