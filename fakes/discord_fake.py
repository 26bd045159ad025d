"""A Discord-compatible fake server for driving the real, unmodified discord.py client.

:class:`DiscordFake` is an ``aiohttp.web`` server on loopback that serves the slice of the
Discord HTTP API v10 (``/api/v10``) and of the Gateway (a websocket at ``/gateway``) that a
``commands.Bot`` with application commands uses. Point discord.py at it with::

    discord.http.Route.BASE = fake.api_base_url
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)

It keeps a small world (guilds, roles, members, channels with permission overwrites, forum
posts, DM channels), records what the bot does (synced commands, channel/thread/DM messages,
crossposts, interaction callbacks, follow-ups, edits, every REST request) and lets a test play the
user side (:meth:`DiscordFake.invoke` — with file attachments, :meth:`DiscordFake.autocomplete`,
:meth:`DiscordFake.invoke_component` for a button press or select choice on a message,
:meth:`DiscordFake.add_user_message`, members leaving, DMs closing).

Behaviour follows Discord's developer documentation (sections named in the docstrings):
snowflake ids as strings, JSON answers with ``Content-Type: application/json`` exactly (discord.py
parses nothing else), error bodies ``{"message", "code"[, "errors"]}`` with Discord's JSON error
codes, message and embed limits enforced with ``400``/``50035 Invalid Form Body``, rate limits
(``429`` with a ``Via`` header and a JSON ``retry_after`` — what discord.py needs to retry).

What it serves besides commands and interactions:

- Messages: ``POST/GET /channels/{id}/messages`` (replies: ``message_reference`` to a message of the
  channel, 400/50035 for an unknown one unless ``fail_if_not_exists`` is false; edits by the author:
  ``PATCH /channels/{id}/messages/{mid}``) with content ≤ 2000, embed and component limits,
  ``allowed_mentions`` validated (``parse`` among users/roles/everyone, ≤ 100 ids per list,
  ``parse: ["users"]`` with a ``users`` list refused) and the pings recorded in ``mentions`` /
  ``mention_roles`` / ``mention_everyone`` as Discord computes them; ``enforce_nonce``; uploaded
  files kept and served.
- Forum channels (type 15, ``kind="forum"``) with ``available_tags``: ``PATCH /channels/{id}``
  (Manage Channels), forum posts ``POST /channels/{forum}/threads`` (a type 11 thread whose id is
  its starter message's, THREAD_CREATE to the owning shard), ``GET /guilds/{g}/threads/active``,
  ``GET /channels/{id}/threads/archived/public``; :meth:`DiscordFake.threads`,
  :meth:`DiscordFake.thread_messages`, :meth:`DiscordFake.archive_thread`.
- Announcement channels (type 5): ``POST .../messages/{mid}/crosspost`` with its permission and
  type errors and the publish limit (``publish_limit`` per channel in a rolling ``publish_window``
  of the injectable ``clock``: 10 an hour) answered with a long 429; :meth:`DiscordFake.crossposted`.
- Direct messages: ``POST /users/@me/channels`` then send; 50007 for closed DMs or no shared guild,
  10013 Unknown User, 10007 Unknown Member after :meth:`DiscordFake.remove_member`;
  :meth:`DiscordFake.dms`.
- Slash-command ATTACHMENT options (type 11): the bytes of an :class:`AttachmentFile` are served
  on a CDN-like route of the fake (``/attachments/{channel}/{id}/{filename}``, no token), which is
  where ``discord.Attachment.read()`` downloads them.
- An optional per-channel send limit (:meth:`DiscordFake.set_send_rate_limit`, off by default).

Sharding follows "Gateway" > "Sharding": ``GET /gateway/bot`` recommends
``recommended_shards`` (1 unless set); IDENTIFY's ``shard: [shard_id, num_shards]`` is honoured —
READY carries it and lists only that shard's guilds, GUILD_CREATE is sent only for guilds with
``(guild_id >> 22) % num_shards == shard_id``, and every dispatch concerning a guild (GUILD_CREATE
of a guild added later, CHANNEL_*, THREAD_*, GUILD_MEMBER_*, GUILD_ROLE_CREATE, MESSAGE_CREATE/UPDATE,
INTERACTION_CREATE) goes only to the
session(s) of the shard owning it; DMs go to shard 0. An IDENTIFY without ``shard`` is
``[0, 1]`` (every guild). Several clients (one per shard range) may connect at once; an
IDENTIFY with an invalid shard is closed with 4010 "Invalid shard".

What it deliberately does not do: compression (text JSON frames only; discord.py accepts them),
ETF encoding, close code 4011 "Sharding required", the identify ``max_concurrency`` buckets, voice,
real rate-limit buckets and ``X-RateLimit-*`` headers on successes (inject 429s with
:meth:`DiscordFake.fail_next`; only the publish limit and the optional send limit are modelled),
message history beyond what the bot posted and :meth:`DiscordFake.add_user_message` added,
message deletes over ``/channels`` (edits are served: ``PATCH /channels/{id}/messages/{mid}``), threads in text
channels, private threads, thread members other than the bot, automatic thread archiving (use
:meth:`DiscordFake.archive_thread`), forums that require a tag, media channels, channel following
(crossposts reach no other guild), DM channels in READY/CHANNEL_CREATE, signed/expiring CDN URLs,
and Discord's other limits (e.g. global 50 requests/s).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import math
import re
import secrets
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

__all__ = [
    "MESSAGE_FLAG_EPHEMERAL",
    "MESSAGE_FLAG_LOADING",
    "DiscordFake",
    "InteractionHandle",
    "InteractionRejected",
    "Permission",
    "RequestRecord",
    "shard_of",
]

_log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1420070400000

#: Message flag bits (Discord API docs, "Message Resource" > "Message Flags").
MESSAGE_FLAG_CROSSPOSTED = 1 << 0
MESSAGE_FLAG_SUPPRESS_EMBEDS = 1 << 2
MESSAGE_FLAG_EPHEMERAL = 1 << 6
MESSAGE_FLAG_LOADING = 1 << 7


class Permission:
    """Permission bits used by the fake ("Permissions" > "Bitwise Permission Flags")."""

    CREATE_INSTANT_INVITE = 1 << 0
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    CHANGE_NICKNAME = 1 << 26
    USE_APPLICATION_COMMANDS = 1 << 31
    MANAGE_THREADS = 1 << 34
    CREATE_PUBLIC_THREADS = 1 << 35
    SEND_MESSAGES_IN_THREADS = 1 << 38
    ALL = (1 << 51) - 1

    #: what ``@everyone`` gets in a new guild (roughly Discord's default set)
    EVERYONE_DEFAULT = (
        CREATE_INSTANT_INVITE
        | ADD_REACTIONS
        | VIEW_CHANNEL
        | SEND_MESSAGES
        | EMBED_LINKS
        | ATTACH_FILES
        | READ_MESSAGE_HISTORY
        | USE_EXTERNAL_EMOJIS
        | CONNECT
        | SPEAK
        | CHANGE_NICKNAME
        | USE_APPLICATION_COMMANDS
        | CREATE_PUBLIC_THREADS
        | SEND_MESSAGES_IN_THREADS
    )
    #: what the bot's managed role grants (what an invite with these scopes would ask)
    BOT_ROLE_DEFAULT = VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | READ_MESSAGE_HISTORY | USE_APPLICATION_COMMANDS


#: Channel types ("Channel Resource" > "Channel Types").
CHANNEL_GUILD_TEXT, CHANNEL_DM, CHANNEL_GUILD_VOICE, CHANNEL_GUILD_CATEGORY = 0, 1, 2, 4
CHANNEL_GUILD_ANNOUNCEMENT, CHANNEL_PUBLIC_THREAD, CHANNEL_GUILD_FORUM = 5, 11, 15

_CHANNEL_KINDS = {
    "text": CHANNEL_GUILD_TEXT,
    "voice": CHANNEL_GUILD_VOICE,
    "category": CHANNEL_GUILD_CATEGORY,
    "announcement": CHANNEL_GUILD_ANNOUNCEMENT,
    "news": CHANNEL_GUILD_ANNOUNCEMENT,
    "forum": CHANNEL_GUILD_FORUM,
}

#: Thread ``auto_archive_duration`` values in minutes ("Channel Resource" > "Thread Metadata Object").
THREAD_ARCHIVE_DURATIONS = (60, 1440, 4320, 10080)

# Gateway opcodes ("Opcodes and Status Codes" > "Gateway Opcodes").
OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_PRESENCE, OP_VOICE = 0, 1, 2, 3, 4
OP_RESUME, OP_RECONNECT, OP_REQUEST_MEMBERS, OP_INVALID_SESSION, OP_HELLO, OP_HEARTBEAT_ACK = 6, 7, 8, 9, 10, 11

INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_MESSAGES = 1 << 9

#: a request's decoded JSON body (untyped JSON) and its uploaded files
_JSON_KEY: web.RequestKey[Any] = web.RequestKey("discord_fake_json", object)
_FILES_KEY: web.RequestKey[list[AttachmentFile]] = web.RequestKey("discord_fake_files", list)

#: bytes a user may attach (the ``attachment_size_limit`` sent with interactions: 10 MiB)
_ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024

_NAME_RE = re.compile(r"^[-_'\w]{1,32}$")

#: Application command option types ("Application Command Option Type"): SUB_COMMAND 1 ... ATTACHMENT 11
_OPTION_TYPES = tuple(range(1, 12))


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _sf(value: int | None) -> str | None:
    return None if value is None else str(value)


class _Reject(Exception):
    """Raised inside a handler to answer a Discord-style JSON error."""

    def __init__(self, status: int, code: int, message: str, errors: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def body(self) -> dict:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def _snowflake_param(request: web.Request, key: str) -> int:
    """A snowflake path parameter; 400/50035 ``NUMBER_TYPE_COERCE`` when it is not one."""
    raw = request.match_info[key]
    if not raw.isdigit():
        raise _Reject(
            400,
            50035,
            "Invalid Form Body",
            {key: {"_errors": [{"code": "NUMBER_TYPE_COERCE", "message": f'Value "{raw}" is not snowflake.'}]}},
        )
    return int(raw)


def _window_wait(window: deque[float], now: float, limit: int, per: float) -> float:
    """A rolling-window limit: drop the times in ``window`` older than ``per`` seconds before ``now``;
    0 when fewer than ``limit`` remain (a slot is free), else the seconds until the oldest leaves."""
    while window and now - window[0] >= per:
        window.popleft()
    return 0.0 if len(window) < limit else window[0] + per - now


#: mentions in message content ("Reference" > "Message Formatting")
_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")


def _json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer with ``Content-Type: application/json`` exactly (no charset: discord.py's
    ``json_or_text`` compares the header for equality)."""
    all_headers = {"Content-Type": "application/json"}
    if headers:
        all_headers.update(headers)
    return web.Response(body=json.dumps(data).encode(), status=status, headers=all_headers)


def _add_error(errors: dict, path: tuple, code: str, message: str) -> None:
    node = errors
    for key in path:
        node = node.setdefault(str(key), {})
    node.setdefault("_errors", []).append({"code": code, "message": message})


def _max_len(errors: dict, path: tuple, value: Any, limit: int) -> int:
    text = "" if value is None else str(value)
    if len(text) > limit:
        _add_error(errors, path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
    return len(text)


def validate_message_body(body: dict) -> dict:
    """Check a message create/edit body against Discord's limits; return the ``errors`` tree
    (empty when valid).

    Limits ("Message Resource" > "Create Message"; "Embed Limits"): content ≤ 2000 chars,
    ≤ 10 embeds, embed title ≤ 256, description ≤ 4096, ≤ 25 fields (name ≤ 256, value ≤ 1024),
    footer text ≤ 2048, author name ≤ 256, and all embeds of a message together ≤ 6000 chars
    (title + description + field names/values + footer text + author name). ``nonce`` ≤ 25 chars.
    ``allowed_mentions`` as :func:`validate_allowed_mentions` checks it.
    """
    errors: dict = {}
    if body.get("content") is not None:
        _max_len(errors, ("content",), body["content"], 2000)
    if body.get("allowed_mentions") is not None:
        validate_allowed_mentions(errors, body["allowed_mentions"])
    nonce = body.get("nonce")
    if nonce is not None and len(str(nonce)) > 25:
        _add_error(errors, ("nonce",), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    embeds = body.get("embeds")
    if embeds:
        if len(embeds) > 10:
            _add_error(errors, ("embeds",), "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        total = 0
        for i, embed in enumerate(embeds):
            p = ("embeds", i)
            total += _max_len(errors, p + ("title",), embed.get("title"), 256)
            total += _max_len(errors, p + ("description",), embed.get("description"), 4096)
            fields = embed.get("fields") or []
            if len(fields) > 25:
                _add_error(errors, p + ("fields",), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
            for j, f in enumerate(fields):
                total += _max_len(errors, p + ("fields", j, "name"), f.get("name"), 256)
                total += _max_len(errors, p + ("fields", j, "value"), f.get("value"), 1024)
            footer = embed.get("footer") or {}
            total += _max_len(errors, p + ("footer", "text"), footer.get("text"), 2048)
            author = embed.get("author") or {}
            total += _max_len(errors, p + ("author", "name"), author.get("name"), 256)
        if total > 6000:
            _add_error(errors, ("embeds",), "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
    if body.get("components"):
        validate_components(errors, body["components"])
    return errors


_MENTION_TYPES = ("everyone", "roles", "users")


def validate_allowed_mentions(errors: dict, allowed: Any) -> None:
    """Check an ``allowed_mentions`` object into ``errors`` ("Message Resource" > "Allowed Mentions
    Object"): ``parse`` holds only ``"users"``, ``"roles"``, ``"everyone"`` (each once);
    ``users`` and ``roles`` hold at most 100 ids each (each once); ``parse: ["users"]`` with a
    non-empty ``users`` list (likewise roles) is an error, ``MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE``
    ("Allowed Mentions Object" > "Allowed Mentions Reference": "mutually exclusive")."""
    path = ("allowed_mentions",)
    if not isinstance(allowed, dict):
        _add_error(errors, path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        return
    shape: dict = {}  # value errors; the exclusivity rule is only checked on well-formed lists
    parse = allowed.get("parse") or []
    for i, value in enumerate(parse):
        if value not in _MENTION_TYPES:
            _add_error(shape, path + ("parse", i), "BASE_TYPE_CHOICES", f"Value must be one of {_MENTION_TYPES}.")
        elif value in parse[:i]:
            _add_error(
                shape, path + ("parse", i), "SET_TYPE_ALREADY_CONTAINS_VALUE", "The set already contains this value"
            )
    for key in ("users", "roles"):
        ids = [str(v) for v in allowed.get(key) or []]
        if len(ids) > 100:
            _add_error(shape, path + (key,), "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        for i, value in enumerate(ids):
            if not value.isdigit():
                _add_error(shape, path + (key, i), "NUMBER_TYPE_COERCE", f'Value "{value}" is not snowflake.')
            elif value in ids[:i]:
                _add_error(
                    shape, path + (key, i), "SET_TYPE_ALREADY_CONTAINS_VALUE", "The set already contains this value"
                )
    if shape:
        errors.update(shape)
        return
    for key in ("users", "roles"):
        if key in parse and allowed.get(key):
            _add_error(
                errors,
                path,
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                f'parse:["{key}"] and {key}: [ids...] are mutually exclusive.',
            )


#: Component types ("Message Components" > "Component Types").
COMPONENT_ACTION_ROW, COMPONENT_BUTTON, COMPONENT_STRING_SELECT = 1, 2, 3
_SELECT_TYPES = (3, 5, 6, 7, 8)


def validate_components(errors: dict, rows: list) -> None:
    """Check legacy (non components-v2) message components into ``errors``: ≤ 5 action rows;
    a row holds 1–5 buttons or exactly one select menu; a button has a ``custom_id`` (≤ 100)
    or, for style 5, a ``url``, and a label ≤ 80; a string select has 1–25 options (label,
    value, description ≤ 100), a placeholder ≤ 150 and 0 ≤ min_values ≤ max_values ≤ 25;
    custom ids are unique within the message ("Message Components" > "Action Rows",
    "Buttons", "String Select")."""
    if len(rows) > 5:
        _add_error(errors, ("components",), "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
    seen: set[str] = set()
    for i, row in enumerate(rows):
        p = ("components", i)
        if not isinstance(row, dict) or row.get("type") != COMPONENT_ACTION_ROW:
            _add_error(errors, p + ("type",), "COMPONENT_LAYOUT_INVALID", "Top-level components must be action rows")
            continue
        children = row.get("components") or []
        selects = [c for c in children if c.get("type") in _SELECT_TYPES]
        if not 1 <= len(children) <= 5:
            _add_error(errors, p + ("components",), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
        if selects and len(children) > 1:
            _add_error(
                errors,
                p + ("components",),
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "The specified component exceeds the maximum width",
            )
        for j, comp in enumerate(children):
            q = p + ("components", j)
            custom_id = comp.get("custom_id")
            if custom_id is not None:
                _max_len(errors, q + ("custom_id",), custom_id, 100)
                if custom_id in seen:
                    _add_error(
                        errors,
                        q + ("custom_id",),
                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                        "Component custom id cannot be duplicated",
                    )
                seen.add(custom_id)
            if comp.get("type") == COMPONENT_BUTTON:
                _max_len(errors, q + ("label",), comp.get("label"), 80)
                if comp.get("style") == 5:
                    if not comp.get("url"):
                        _add_error(errors, q + ("url",), "BASE_TYPE_REQUIRED", "This field is required")
                elif not custom_id:
                    _add_error(errors, q + ("custom_id",), "BASE_TYPE_REQUIRED", "This field is required")
            elif comp.get("type") in _SELECT_TYPES:
                if not custom_id:
                    _add_error(errors, q + ("custom_id",), "BASE_TYPE_REQUIRED", "This field is required")
                _max_len(errors, q + ("placeholder",), comp.get("placeholder"), 150)
                low, high = comp.get("min_values", 1), comp.get("max_values", 1)
                if not (0 <= low <= high <= 25):
                    _add_error(errors, q + ("max_values",), "BASE_TYPE_BAD_INT", "Invalid min/max values")
                if comp.get("type") == COMPONENT_STRING_SELECT:
                    options = comp.get("options") or []
                    if not 1 <= len(options) <= 25:
                        _add_error(
                            errors, q + ("options",), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 25 in length."
                        )
                    for k, opt in enumerate(options):
                        for key in ("label", "value", "description"):
                            _max_len(errors, q + ("options", k, key), opt.get(key), 100)
            else:
                _add_error(errors, q + ("type",), "COMPONENT_TYPE_INVALID", "Invalid component type")


def _validate_or_reject(body: dict, *, require_something: bool) -> None:
    errors = validate_message_body(body)
    if errors:
        raise _Reject(400, 50035, "Invalid Form Body", errors)
    if require_something and not (
        body.get("content")
        or body.get("embeds")
        or body.get("components")
        or body.get("sticker_ids")
        or body.get("attachments")
        or body.get("poll")
    ):
        raise _Reject(400, 50006, "Cannot send an empty message")


class InteractionRejected(Exception):
    """The fake answered an interaction's callback with an error (``.error`` is the Discord error body)."""

    def __init__(self, error: dict) -> None:
        super().__init__(f"the fake rejected the interaction response: {error}")
        self.error = error


@dataclass(frozen=True)
class RequestRecord:
    """One REST request the fake answered.

    ``path`` is relative to the API base (``/channels/1/messages``), ``query`` the query
    string as a dict, ``json`` the decoded JSON body (for multipart: the ``payload_json`` part),
    ``status`` the HTTP status answered, ``at`` ``time.monotonic()`` when it arrived.
    """

    method: str
    path: str
    status: int
    json: Any
    query: dict[str, str]
    at: float


@dataclass(frozen=True)
class AttachmentFile:
    """A file a test user attaches to a slash command's ATTACHMENT option (type 11) in
    :meth:`DiscordFake.invoke`: ``filename`` as shown to the bot, ``data`` the bytes the fake then
    serves at the attachment's ``url``, ``content_type`` its media type (``None``: Discord leaves
    ``content_type`` out when it cannot tell)."""

    filename: str
    data: bytes
    content_type: str | None = None


def _rate_limit_response(
    retry_after: float, *, scope: str, is_global: bool = False, code: int | None = None
) -> web.Response:
    """A 429 as Discord answers it ("Rate Limits" > "Exceeding A Rate Limit"): JSON ``{"message",
    "retry_after" (seconds, float), "global"[, "code"]}`` plus ``Via``, ``Retry-After`` (whole seconds,
    rounded up), ``X-RateLimit-Scope`` (``user``, ``global`` or ``shared``) and for a global limit
    ``X-RateLimit-Global``. discord.py retries a 429 only when ``Via`` is present and the body is JSON."""
    body: dict[str, Any] = {
        "message": "You are being rate limited.",
        "retry_after": round(retry_after, 3),
        "global": is_global,
    }
    if code is not None:
        body["code"] = code
    headers = {"Via": "1.1 google", "Retry-After": str(max(1, math.ceil(retry_after))), "X-RateLimit-Scope": scope}
    if is_global:
        headers["X-RateLimit-Global"] = "true"
    return _json_response(body, 429, headers=headers)


@dataclass
class _FailRule:
    count: int
    status: int
    path_contains: str | None
    method: str | None
    retry_after: float
    code: int
    is_global: bool


# --------------------------------------------------------------------------------------------
# Interactions
# --------------------------------------------------------------------------------------------


class InteractionHandle:
    """One interaction sent to the bot by :meth:`DiscordFake.invoke` / :meth:`DiscordFake.autocomplete`.

    Attributes:
        id, token: the interaction's id and token (as the bot sees them).
        payload: the ``INTERACTION_CREATE`` ``d`` object sent over the gateway.
        callback: the initial callback body the bot posted (``{"type", "data"}``) or ``None``.
        response_latency: seconds (``time.monotonic``) from dispatch to the first callback, or ``None``.
        original: the ``@original`` response message as it is now (edits applied), ``None`` if
            none was created or it was deleted.
        followups: every follow-up message (``POST /webhooks/{app}/{token}``), full message objects.
        edits: the ``@original`` message after each ``PATCH`` (full message objects, oldest first).
        errors: Discord error bodies the fake answered to this interaction's requests
            (e.g. an over-long autocomplete list, a second acknowledgement).
        session_id, shard: the gateway session it was dispatched to and its ``[shard_id, num_shards]``.
        guild_id, channel_id, user_id: where and by whom it was invoked (the fake sends guild
            interactions only: the payload always has ``guild_id``, ``channel_id`` and ``member``).
    """

    def __init__(self, payload: dict) -> None:
        self.payload = payload
        self.id = int(payload["id"])
        self.token: str = payload["token"]
        self.type: int = payload["type"]
        self.guild_id = int(payload["guild_id"])
        self.channel_id = int(payload["channel_id"])
        self.user_id = int(payload["member"]["user"]["id"])
        self.created_at = time.monotonic()
        self.callback: dict | None = None
        self.response_latency: float | None = None
        self.original: dict | None = None
        self.followups: list[dict] = []
        self.edits: list[dict] = []
        self.errors: list[dict] = []
        self._messages: dict[int, dict] = {}
        #: the gateway session it was sent to and that session's ``[shard_id, num_shards]``
        self.session_id: str | None = None
        self.shard: list[int] | None = None
        self._responded = asyncio.Event()
        self._done = asyncio.Event()
        self._rejected = asyncio.Event()

    def __repr__(self) -> str:
        return (
            f"<InteractionHandle id={self.id} type={self.type} callback={self.callback and self.callback.get('type')}>"
        )

    @property
    def command_name(self) -> str | None:
        """The top-level command name of this interaction."""
        return (self.payload.get("data") or {}).get("name")

    @property
    def custom_id(self) -> str | None:
        """The ``custom_id`` of a component interaction (type 3)."""
        return (self.payload.get("data") or {}).get("custom_id")

    @property
    def responded_in_time(self) -> bool | None:
        """Whether the first callback came within Discord's 3 s window (``None`` before it came)."""
        return None if self.response_latency is None else self.response_latency <= 3.0

    async def response(self, timeout: float = 10.0) -> dict:
        """Wait for the initial callback and return it: ``{"type": 4|5|6|7|8|9, "data": {...}}``
        ("Receiving and Responding" > "Interaction Callback Type"). Ephemeral responses carry
        ``data.flags & 64``. Raises ``TimeoutError`` (with any rejected requests) on timeout."""
        try:
            await asyncio.wait_for(self._responded.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"interaction {self.id} ({self.command_name}) got no accepted callback within {timeout}s;"
                f" rejected requests: {self.errors}"
            ) from None
        assert self.callback is not None
        return self.callback

    async def wait_done(self, timeout: float = 10.0) -> None:
        """Wait until the user-visible result is present: the immediate response for types
        4/7/8/9, for a deferral (5/6) the first edit of ``@original`` or first follow-up."""
        try:
            await asyncio.wait_for(self._done.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"interaction {self.id} ({self.command_name}) not done within {timeout}s;"
                f" callback={self.callback}, rejected requests: {self.errors}"
            ) from None

    @property
    def final(self) -> dict | None:
        """The message the user finally sees: ``@original`` with its last edit applied (or the
        immediate response), else the last follow-up; ``None`` while nothing is visible. A
        still-loading deferral ("thinking…") does not count."""
        if self.original is not None and not (self.original.get("flags", 0) & MESSAGE_FLAG_LOADING):
            return self.original
        if self.followups:
            return self.followups[-1]
        return None

    @property
    def content(self) -> str | None:
        """``final["content"]`` (``None`` if nothing is visible)."""
        final = self.final
        return None if final is None else final.get("content", "")

    @property
    def embeds(self) -> list[dict]:
        """``final["embeds"]`` (empty if nothing is visible)."""
        final = self.final
        return [] if final is None else list(final.get("embeds") or [])

    @property
    def ephemeral(self) -> bool | None:
        """Whether ``final`` is only visible to the invoking user (message flag 64)."""
        final = self.final
        return None if final is None else bool(final.get("flags", 0) & MESSAGE_FLAG_EPHEMERAL)

    @property
    def choices(self) -> list[dict] | None:
        """Autocomplete choices from a type 8 callback (``None`` otherwise)."""
        if self.callback and self.callback.get("type") == 8:
            return list((self.callback.get("data") or {}).get("choices") or [])
        return None


# --------------------------------------------------------------------------------------------
# Gateway plumbing
# --------------------------------------------------------------------------------------------


class _Connection:
    """One websocket; everything sent goes through an ordered queue drained by a writer task."""

    def __init__(self, fake: DiscordFake, ws: web.WebSocketResponse) -> None:
        self.fake = fake
        self.ws = ws
        self.queue: asyncio.Queue = asyncio.Queue()
        self.session: _Session | None = None
        self.writer = asyncio.create_task(self._write())

    @property
    def open(self) -> bool:
        return not self.ws.closed

    def send(self, payload: dict) -> None:
        self.queue.put_nowait(payload)

    def mark(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once everything queued before it has been written."""
        self.queue.put_nowait(callback)

    async def _write(self) -> None:
        try:
            while True:
                item = await self.queue.get()
                if item is None:
                    return
                if callable(item):
                    item()
                    continue
                if self.ws.closed:
                    continue
                self.fake.gateway_log.append(("send", item.get("op"), item.get("t")))
                try:
                    await self.ws.send_str(json.dumps(item))
                except (ConnectionError, RuntimeError):
                    _log.debug("gateway send failed; connection closed")
        except asyncio.CancelledError:
            pass


def shard_of(guild_id: int, num_shards: int) -> int:
    """The shard owning a guild: ``(guild_id >> 22) % num_shards`` ("Gateway" > "Sharding" > "Sharding Formula")."""
    return (guild_id >> 22) % num_shards


@dataclass
class _Session:
    session_id: str
    intents: int
    seq: int = 0
    connection: _Connection | None = None
    identified_at: float = field(default_factory=time.monotonic)
    shard_id: int = 0
    num_shards: int = 1
    #: whether the IDENTIFY carried ``shard`` (READY then echoes it)
    sharded: bool = False
    #: READY + GUILD_CREATEs (or RESUMED) written on the current connection
    ready: bool = False

    @property
    def live(self) -> bool:
        return self.connection is not None and self.connection.open

    def owns(self, guild_id: int) -> bool:
        """Whether this session's shard receives ``guild_id``'s events ("Gateway" > "Sharding")."""
        return shard_of(guild_id, self.num_shards) == self.shard_id

    def dispatch(self, event: str, data: dict) -> None:
        if self.connection is None:
            return
        self.seq += 1
        self.connection.send({"op": OP_DISPATCH, "t": event, "s": self.seq, "d": data})


# --------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------


class DiscordFake:
    """A Discord-compatible server (HTTP API v10 + Gateway) on loopback.

    Args:
        token: the bot token it accepts (``Authorization: Bot <token>``; IDENTIFY ``token``).
        application_id: the application's snowflake (defaults to a fixed plausible id).
        bot_user_id: the bot user's snowflake (defaults to ``application_id``, as for new apps).
        bot_name: the bot user's ``username``.
        heartbeat_interval_ms: the HELLO ``heartbeat_interval`` in milliseconds.
        nonce_window: seconds during which ``enforce_nonce`` returns the earlier message.
        recommended_shards: the ``shards`` count ``GET /gateway/bot`` recommends (≥ 1; settable later
            as the attribute of that name).
        clock: seconds, the time base of the fake's windows (``nonce_window``, the publish limit, the
            optional send limit); default ``time.monotonic``. Inject one to cross an hour without waiting.
        publish_limit, publish_window: at most ``publish_limit`` crossposts per announcement channel in
            any ``publish_window`` seconds (a rolling window; Discord's is about 10 an hour).

    Use as ``async with DiscordFake() as fake:`` or ``await fake.start()`` / ``await fake.stop()``.
    """

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        application_id: int = 1290000000000000001,
        bot_user_id: int | None = None,
        bot_name: str = "release-bot",
        heartbeat_interval_ms: int = 41250,
        nonce_window: float = 300.0,
        recommended_shards: int = 1,
        clock: Callable[[], float] = time.monotonic,
        publish_limit: int = 10,
        publish_window: float = 3600.0,
    ) -> None:
        if recommended_shards < 1:
            raise ValueError("recommended_shards must be at least 1")
        self.clock = clock
        self.publish_limit = publish_limit
        self.publish_window = publish_window
        self.token = token
        self.application_id = application_id
        self.bot_user_id = bot_user_id if bot_user_id is not None else application_id
        self.bot_name = bot_name
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.nonce_window = nonce_window
        self.recommended_shards = recommended_shards

        self.api_base_url = ""
        self.gateway_url = ""
        self.port: int | None = None

        #: every REST request answered, oldest first
        self.request_log: list[RequestRecord] = []
        #: gateway frames as ``(direction, op, event name)``; direction ``"send"`` or ``"recv"``
        self.gateway_log: list[tuple[str, int | None, str | None]] = []
        #: how many IDENTIFY / RESUME the gateway accepted
        self.identify_count = 0
        self.resume_count = 0

        self._last_snowflake = 0
        self._users: dict[int, dict] = {}
        self._guilds: dict[int, dict] = {}
        self._channels: dict[int, dict] = {}
        self._messages: dict[int, list[dict]] = {}
        self._nonces: dict[tuple[int, str], tuple[float, dict]] = {}
        self._global_commands: list[dict] = []
        self._guild_commands: dict[int, list[dict]] = {}
        self._command_versions: dict[tuple[int | None, str, int], tuple[int, int]] = {}
        self._interactions: dict[int, InteractionHandle] = {}
        self._by_token: dict[str, InteractionHandle] = {}
        self._fail_rules: list[_FailRule] = []
        self._sessions: dict[str, _Session] = {}
        self._connections: set[_Connection] = set()
        self._ready = asyncio.Event()
        self._ready_changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._last_archive = dt.datetime.now(dt.UTC)
        #: crosspost times (``clock()``) per announcement channel, oldest first, within ``publish_window``
        self._publishes: dict[int, deque[float]] = {}
        #: ``(limit, per_seconds)`` of the optional per-channel send limit, and send times per channel
        self._send_limit: tuple[int, float] | None = None
        self._sends: dict[int, deque[float]] = {}
        #: the DM channel id per recipient user id, and the users whose DMs are closed
        self._dm_channels: dict[int, int] = {}
        self._dms_closed: set[int] = set()
        #: files served on the CDN-like route: ``(channel_id, attachment_id) -> (filename, bytes, content type)``
        self._cdn: dict[tuple[int, int], tuple[str, bytes, str | None]] = {}

        self._users[self.bot_user_id] = {
            "id": str(self.bot_user_id),
            "username": bot_name,
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": True,
            "public_flags": 0,
        }

    # ----------------------------------------------------------------- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> DiscordFake:
        """Start serving on ``host:port`` (0 = a free port); sets ``api_base_url`` and ``gateway_url``."""
        # aiohttp refuses bodies over 1 MiB by itself; accept more so the fake answers Discord's 40005
        app = web.Application(middlewares=[self._middleware], client_max_size=4 * _ATTACHMENT_SIZE_LIMIT)
        app.router.add_get("/gateway", self._gateway_handler)
        self._add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._host = host
        self.api_base_url = f"http://{host}:{self.port}{API_PREFIX}"
        self.gateway_url = f"ws://{host}:{self.port}/gateway"
        return self

    async def stop(self) -> None:
        """Close every websocket and stop the server."""
        await self.disconnect_clients(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordFake:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ----------------------------------------------------------------- ids and world

    def snowflake(self) -> int:
        """A fresh, increasing snowflake whose timestamp part is now ("Reference" > "Snowflakes")."""
        candidate = ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (1 << 17)
        self._last_snowflake = max(candidate, self._last_snowflake + 1)
        return self._last_snowflake

    def snowflake_on_shard(self, shard_id: int, num_shards: int) -> int:
        """A fresh snowflake (e.g. for ``add_guild(guild_id=...)``) of a guild that shard ``shard_id`` of
        ``num_shards`` owns ("Gateway" > "Sharding"): its timestamp is moved forward by fewer than
        ``num_shards`` ms; later :meth:`snowflake` s stay larger. Raises ``ValueError`` for a bad shard."""
        if not 0 <= shard_id < num_shards:
            raise ValueError(f"shard {shard_id} is not in 0..{num_shards - 1}")
        fresh = self.snowflake()
        stamp = fresh >> 22
        stamp += (shard_id - stamp) % num_shards
        self._last_snowflake = max(self._last_snowflake, (stamp << 22) | (fresh & 0x3FFFFF))
        return self._last_snowflake

    @property
    def bot_user(self) -> dict:
        """The bot's user object (as in ``GET /users/@me``)."""
        return dict(
            self._users[self.bot_user_id], verified=True, mfa_enabled=False, flags=0, email=None, locale="en-US"
        )

    def add_guild(self, name: str, *, guild_id: int | None = None, owner_id: int | None = None) -> int:
        """Create a guild with an ``@everyone`` role (id = guild id, default permissions), the bot's
        managed role, ``Manager`` (MANAGE_GUILD) and ``Admin`` (ADMINISTRATOR) roles and the bot as a
        member. ``owner_id`` None creates an owner member. Sent as GUILD_CREATE to connected clients.
        Returns the guild id."""
        gid = guild_id if guild_id is not None else self.snowflake()
        if gid in self._guilds:
            raise ValueError(f"guild {gid} exists")
        guild: dict[str, Any] = {
            "id": gid,
            "name": name,
            "owner_id": None,
            "roles": {},
            "members": {},
            "channel_ids": [],
            "joined_at": _now_iso(),
            "manager_role": self.snowflake(),
            "admin_role": self.snowflake(),
            "bot_role": self.snowflake(),
        }
        self._guilds[gid] = guild
        self._add_role(guild, gid, "@everyone", Permission.EVERYONE_DEFAULT, position=0)
        self._add_role(
            guild,
            guild["bot_role"],
            self.bot_name,
            Permission.BOT_ROLE_DEFAULT,
            position=1,
            managed=True,
            tags={"bot_id": str(self.bot_user_id)},
        )
        self._add_role(guild, guild["manager_role"], "Manager", Permission.MANAGE_GUILD, position=2)
        self._add_role(guild, guild["admin_role"], "Admin", Permission.ADMINISTRATOR, position=3)
        guild["members"][self.bot_user_id] = self._member_record(self.bot_user_id, [guild["bot_role"]])
        if owner_id is None:
            owner_id = self.add_member(gid, name="owner", _dispatch=False)
        elif owner_id not in guild["members"]:
            self.add_member(gid, user_id=owner_id, name="owner", _dispatch=False)
        guild["owner_id"] = owner_id
        for session in self._sessions_for(gid):
            session.dispatch("GUILD_CREATE", self._guild_create_payload(gid, session.intents))
        return gid

    def _add_role(
        self,
        guild: dict,
        role_id: int,
        name: str,
        permissions: int,
        *,
        position: int,
        managed: bool = False,
        tags: dict | None = None,
    ) -> None:
        role = {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": managed,
            "mentionable": False,
            "flags": 0,
        }
        if tags:
            role["tags"] = tags
        guild["roles"][role_id] = role

    def _member_record(self, user_id: int, roles: list[int]) -> dict:
        return {"user_id": user_id, "roles": roles, "joined_at": _now_iso()}

    def add_channel(
        self,
        guild_id: int,
        name: str,
        *,
        channel_id: int | None = None,
        bot_can_send: bool = True,
        kind: str = "text",
        tags: list[str | dict] | None = None,
    ) -> int:
        """Create a channel (``kind``: text, voice, category, announcement/news (type 5), forum
        (type 15)). ``bot_can_send=False`` adds a member permission overwrite denying the bot
        VIEW_CHANNEL and SEND_MESSAGES (so discord.py's ``channel.permissions_for(guild.me)`` says so)
        and posting there answers 403 / 50013. ``tags`` (forum only): its ``available_tags``, each a
        name or ``{"name", "moderated", "emoji_id", "emoji_name"}`` ("Channel Resource" > "Forum Tag
        Object": ≤ 20 tags, names ≤ 20 chars and unique; ids are assigned, see :meth:`forum_tags`).
        Sent as CHANNEL_CREATE to connected clients. Returns the channel id. Raises ``ValueError``
        for an unknown kind, an existing id, or tags Discord would refuse."""
        guild = self._guild(guild_id)
        if kind not in _CHANNEL_KINDS:
            raise ValueError(f"unsupported channel kind {kind!r}; one of {sorted(_CHANNEL_KINDS)}")
        ctype = _CHANNEL_KINDS[kind]
        if tags and ctype != CHANNEL_GUILD_FORUM:
            raise ValueError("only a forum channel has tags")
        available: list[dict] = []
        if tags:
            raw = [{"name": t} if isinstance(t, str) else dict(t) for t in tags]
            available, errors, code = self._build_tags(raw, [])
            if errors or code:
                raise ValueError(f"Discord would refuse these tags: {errors or code}")
        cid = channel_id if channel_id is not None else self.snowflake()
        if cid in self._channels:
            raise ValueError(f"channel {cid} exists")
        self._channels[cid] = {
            "id": cid,
            "guild_id": guild_id,
            "name": name,
            "type": ctype,
            "position": len(guild["channel_ids"]),
            "overwrites": {},
            "deleted": False,
            "last_message_id": None,
            "topic": None,
            "available_tags": available,
        }
        guild["channel_ids"].append(cid)
        self._messages[cid] = []
        if not bot_can_send:
            self._set_bot_overwrite(cid, allowed=False)
        for session in self._sessions_for(guild_id):
            session.dispatch("CHANNEL_CREATE", self._channel_payload(cid, with_guild=True))
        return cid

    def _build_tags(self, raw: list[Any], existing: list[dict]) -> tuple[list[dict], dict, int]:
        """New ``available_tags`` from a request's list ("Channel Resource" > "Modify Channel" >
        forum ``available_tags``; "Forum Tag Object"): ``(tags, form errors, JSON error code or 0)``.
        A tag whose ``id`` is one of ``existing`` keeps it, others get a fresh id. More than 20 tags,
        a name over 20 chars or both ``emoji_id`` and ``emoji_name`` are form errors; a repeated name
        is code 40061 "Tag names must be unique"."""
        errors: dict = {}
        if len(raw) > 20:
            _add_error(errors, ("available_tags",), "BASE_TYPE_MAX_LENGTH", "Must be 20 or fewer in length.")
        known = {t["id"] for t in existing}
        tags = []
        for i, tag in enumerate(raw):
            if not isinstance(tag, dict):
                _add_error(errors, ("available_tags", i), "DICT_TYPE_CONVERT", "Only dictionaries may be used")
                continue
            name = str(tag.get("name") or "")
            _max_len(errors, ("available_tags", i, "name"), name, 20)
            emoji_id, emoji_name = tag.get("emoji_id"), tag.get("emoji_name")
            if emoji_id and emoji_name:
                _add_error(
                    errors,
                    ("available_tags", i, "emoji_id"),
                    "TAG_EMOJI_INVALID",
                    "Only one of emoji_id and emoji_name may be set",
                )
            tid = str(tag["id"]) if tag.get("id") is not None and str(tag["id"]) in known else str(self.snowflake())
            tags.append(
                {
                    "id": tid,
                    "name": name,
                    "moderated": bool(tag.get("moderated", False)),
                    "emoji_id": str(emoji_id) if emoji_id else None,
                    "emoji_name": emoji_name or None,
                }
            )
        names = [t["name"] for t in tags]
        code = 40061 if len(set(names)) != len(names) else 0
        return tags, errors, code

    def forum_tags(self, forum_id: int) -> list[dict]:
        """A forum's ``available_tags`` as Discord sends them: ``{"id", "name", "moderated",
        "emoji_id", "emoji_name"}`` (ids as strings), in order."""
        return [dict(t) for t in self._channel(forum_id)["available_tags"]]

    def add_role(self, guild_id: int, name: str, *, permissions: int = 0, mentionable: bool = False) -> int:
        """Create a role ("Permissions" > "Role Object") above the existing ones; ``mentionable``
        lets anyone ping it (otherwise only with MENTION_EVERYONE). Sent as GUILD_ROLE_CREATE.
        Returns the role id."""
        guild = self._guild(guild_id)
        rid = self.snowflake()
        self._add_role(guild, rid, name, permissions, position=len(guild["roles"]))
        guild["roles"][rid]["mentionable"] = mentionable
        for session in self._sessions_for(guild_id):
            session.dispatch("GUILD_ROLE_CREATE", {"guild_id": str(guild_id), "role": dict(guild["roles"][rid])})
        return rid

    def add_member(
        self,
        guild_id: int,
        *,
        user_id: int | None = None,
        name: str = "member",
        manage_guild: bool = False,
        admin: bool = False,
        roles: tuple[int, ...] = (),
        dms_open: bool = True,
        _dispatch: bool = True,
    ) -> int:
        """Add a (human) member; ``manage_guild``/``admin`` give the ``Manager``/``Admin`` role,
        ``roles`` further role ids (:meth:`add_role`); ``dms_open=False`` closes the user's DMs (see
        :meth:`set_dms_open`). Sent as GUILD_MEMBER_ADD to sessions with the GUILD_MEMBERS intent.
        Returns the user id."""
        guild = self._guild(guild_id)
        uid = user_id if user_id is not None else self.snowflake()
        self._users.setdefault(
            uid,
            {
                "id": str(uid),
                "username": name,
                "discriminator": "0",
                "global_name": name,
                "avatar": None,
                "public_flags": 0,
            },
        )
        member_roles = []
        if manage_guild:
            member_roles.append(guild["manager_role"])
        if admin:
            member_roles.append(guild["admin_role"])
        for rid in roles:
            if rid not in guild["roles"]:
                raise ValueError(f"role {rid} is not a role of guild {guild_id}")
            member_roles.append(rid)
        guild["members"][uid] = self._member_record(uid, member_roles)
        if not dms_open:
            self._dms_closed.add(uid)
        if _dispatch:
            for session in self._sessions_for(guild_id):
                if session.intents & INTENT_GUILD_MEMBERS:
                    session.dispatch(
                        "GUILD_MEMBER_ADD", dict(self._member_payload(guild_id, uid), guild_id=str(guild_id))
                    )
        return uid

    def remove_member(self, guild_id: int, user_id: int) -> None:
        """The member leaves the guild: ``GET /guilds/{g}/members/{u}`` then answers 404 / 10007
        Unknown Member (the user stays known: ``GET /users/{u}`` still works). Sent as
        GUILD_MEMBER_REMOVE (``{"guild_id", "user"}``) only to sessions with the privileged
        GUILD_MEMBERS intent ("Gateway Events" > "Guild Member Remove"). Raises ``KeyError`` for a
        non-member, ``ValueError`` for the bot or the owner."""
        guild = self._guild(guild_id)
        if user_id not in guild["members"]:
            raise KeyError(f"user {user_id} is not a member of guild {guild_id}")
        if user_id in (self.bot_user_id, guild["owner_id"]):
            raise ValueError("the bot and the owner cannot leave in this fake")
        del guild["members"][user_id]
        for session in self._sessions_for(guild_id):
            if session.intents & INTENT_GUILD_MEMBERS:
                session.dispatch("GUILD_MEMBER_REMOVE", {"guild_id": str(guild_id), "user": dict(self._users[user_id])})

    def set_dms_open(self, user_id: int, is_open: bool) -> None:
        """Open or close a user's DMs to the bot (their "Allow direct messages" privacy setting):
        while closed, sending to their DM channel answers 403 / 50007 "Cannot send messages to this
        user". Raises ``KeyError`` for an unknown user."""
        if user_id not in self._users:
            raise KeyError(f"unknown user {user_id}")
        if is_open:
            self._dms_closed.discard(user_id)
        else:
            self._dms_closed.add(user_id)

    def set_permission_overwrite(self, channel_id: int, target_id: int, *, allow: int = 0, deny: int = 0) -> None:
        """Set a channel's permission overwrite for a role (the guild id is ``@everyone``) or a member
        ("Channel Resource" > "Overwrite Object"; type 0 role, 1 member); ``allow=deny=0`` removes it.
        Permission bits as :class:`Permission`. Sent as CHANNEL_UPDATE. Raises ``KeyError`` for an
        unknown channel, ``ValueError`` for a target that is neither a role nor a member."""
        channel = self._channel(channel_id)
        if channel["guild_id"] is None or channel["type"] == CHANNEL_PUBLIC_THREAD:
            raise ValueError("only guild channels (not DMs or threads) have permission overwrites")
        guild = self._guilds[channel["guild_id"]]
        if target_id in guild["roles"]:
            kind = 0
        elif target_id in guild["members"]:
            kind = 1
        else:
            raise ValueError(f"{target_id} is neither a role nor a member of guild {guild['id']}")
        if allow == 0 and deny == 0:
            channel["overwrites"].pop(target_id, None)
        else:
            channel["overwrites"][target_id] = {
                "id": str(target_id),
                "type": kind,
                "allow": str(allow),
                "deny": str(deny),
            }
        for session in self._sessions_for(channel["guild_id"]):
            session.dispatch("CHANNEL_UPDATE", self._channel_payload(channel_id, with_guild=True))

    def add_user_message(self, channel_id: int, user_id: int, content: str) -> dict:
        """A message written by a (human) member in a guild channel or thread, e.g. one the bot may
        crosspost only with Manage Messages. Sent as MESSAGE_CREATE (with ``member``) to sessions with
        the GUILD_MESSAGES intent. Returns the stored message. Raises ``KeyError`` for an unknown
        channel, ``ValueError`` for a non-member."""
        channel = self._channel(channel_id)
        gid = channel["guild_id"]
        if gid is None or user_id not in self._guilds[gid]["members"]:
            raise ValueError(f"user {user_id} is not a member of the channel's guild")
        msg = self._create_message(channel, {"content": content}, author_id=user_id)
        event = dict(self._public(msg), member=self._partial_member(gid, user_id))
        for session in self._sessions_for(gid):
            if session.intents & INTENT_GUILD_MESSAGES:
                session.dispatch("MESSAGE_CREATE", event)
        return msg

    def archive_thread(self, thread_id: int, archived: bool = True) -> None:
        """Archive (or unarchive) a thread as Discord does after ``auto_archive_duration`` minutes of
        inactivity (the fake never archives by itself): ``thread_metadata.archived`` and
        ``archive_timestamp`` change, it leaves ``GET /guilds/{g}/threads/active`` for
        ``.../threads/archived/public``. Sent as THREAD_UPDATE. Raises ``KeyError``/``ValueError`` for
        an unknown id or a non-thread."""
        thread = self._channel(thread_id)
        if thread["type"] != CHANNEL_PUBLIC_THREAD:
            raise ValueError(f"channel {thread_id} is not a thread")
        if self._set_archived(thread, archived):
            self._thread_updated(thread)

    def _set_archived(self, thread: dict, archived: bool) -> bool:
        """Set ``archived`` (and ``archive_timestamp`` when it changes); whether it changed."""
        if thread["archived"] == archived:
            return False
        thread["archived"] = archived
        thread["archive_timestamp"] = self._archive_stamp()
        return True

    def _thread_updated(self, thread: dict) -> None:
        """Send THREAD_UPDATE to the owning shard ("Gateway Events" > "Thread Update")."""
        for session in self._sessions_for(thread["guild_id"]):
            session.dispatch("THREAD_UPDATE", self._channel_payload(thread["id"], with_guild=True))

    def _archive_stamp(self) -> str:
        """Now as ISO 8601 UTC, later than every earlier archive timestamp of this fake (by 1 µs if the
        wall clock did not move), so paging archived threads with ``before`` never ties."""
        stamp = max(dt.datetime.now(dt.UTC), self._last_archive + dt.timedelta(microseconds=1))
        self._last_archive = stamp
        return stamp.isoformat()

    def set_send_rate_limit(self, limit: int | None = 5, per: float = 5.0) -> None:
        """Switch on (or with ``limit=None`` off, the default) a per-channel send limit: at most
        ``limit`` ``POST /channels/{id}/messages`` per channel in any ``per`` seconds of ``clock``
        (a rolling window; the "5 messages / 5 s per channel" bots report). Past it the fake answers
        429 (scope ``user``, JSON ``retry_after`` = seconds until a slot frees, ``Via``), which
        discord.py sleeps out and retries by itself."""
        self._send_limit = None if limit is None else (limit, per)
        self._sends.clear()

    def delete_channel(self, channel_id: int) -> None:
        """Delete a channel: later requests to it answer 404 / 10003 Unknown Channel; CHANNEL_DELETE is sent."""
        channel = self._channel(channel_id)
        payload = self._channel_payload(channel_id, with_guild=True)
        channel["deleted"] = True
        guild = self._guilds[channel["guild_id"]]
        if channel_id in guild["channel_ids"]:
            guild["channel_ids"].remove(channel_id)
        for session in self._sessions_for(channel["guild_id"]):
            session.dispatch("CHANNEL_DELETE", payload)

    def set_bot_can_send(self, channel_id: int, allowed: bool) -> None:
        """Add or remove the bot's deny overwrite on a channel; CHANNEL_UPDATE is sent."""
        self._channel(channel_id)
        self._set_bot_overwrite(channel_id, allowed=allowed)
        for session in self._sessions_for(self._channels[channel_id]["guild_id"]):
            session.dispatch("CHANNEL_UPDATE", self._channel_payload(channel_id, with_guild=True))

    def _set_bot_overwrite(self, channel_id: int, *, allowed: bool) -> None:
        overwrites = self._channels[channel_id]["overwrites"]
        if allowed:
            overwrites.pop(self.bot_user_id, None)
        else:
            overwrites[self.bot_user_id] = {
                "id": str(self.bot_user_id),
                "type": 1,
                "allow": "0",
                "deny": str(Permission.VIEW_CHANNEL | Permission.SEND_MESSAGES),
            }

    def _guild(self, guild_id: int) -> dict:
        try:
            return self._guilds[int(guild_id)]
        except KeyError:
            raise KeyError(f"unknown guild {guild_id}") from None

    def _channel(self, channel_id: int) -> dict:
        try:
            return self._channels[int(channel_id)]
        except KeyError:
            raise KeyError(f"unknown channel {channel_id}") from None

    # ----------------------------------------------------------------- permissions

    def base_permissions(self, guild_id: int, user_id: int) -> int:
        """Guild-level permissions of a member ("Permissions" > "Permission Hierarchy")."""
        guild = self._guild(guild_id)
        if user_id == guild["owner_id"]:
            return Permission.ALL
        perms = int(guild["roles"][guild_id]["permissions"])
        for rid in guild["members"][user_id]["roles"]:
            perms |= int(guild["roles"][rid]["permissions"])
        return Permission.ALL if perms & Permission.ADMINISTRATOR else perms

    def channel_permissions(self, channel_id: int, user_id: int) -> int:
        """A member's permissions in a guild channel: base, then @everyone, role and member overwrites
        ("Permissions" > "Permission Overwrites"); a thread has its parent's. 0 without VIEW_CHANNEL."""
        channel = self._channel(channel_id)
        if channel["type"] == CHANNEL_PUBLIC_THREAD:
            channel = self._channel(channel["parent_id"])
        gid = channel["guild_id"]
        perms = self.base_permissions(gid, user_id)
        if perms & Permission.ADMINISTRATOR:
            return Permission.ALL
        ows = channel["overwrites"]
        if gid in ows:
            perms = (perms & ~int(ows[gid]["deny"])) | int(ows[gid]["allow"])
        allow = deny = 0
        for rid in self._guilds[gid]["members"][user_id]["roles"]:
            if rid in ows:
                allow |= int(ows[rid]["allow"])
                deny |= int(ows[rid]["deny"])
        perms = (perms & ~deny) | allow
        if user_id in ows:
            perms = (perms & ~int(ows[user_id]["deny"])) | int(ows[user_id]["allow"])
        if not perms & Permission.VIEW_CHANNEL:
            return 0
        return perms

    def bot_can_send(self, channel_id: int) -> bool:
        """Whether the bot may post in the guild channel: VIEW_CHANNEL and SEND_MESSAGES, in a thread
        SEND_MESSAGES_IN_THREADS instead ("Permissions" > "Bitwise Permission Flags"); in a forum,
        SEND_MESSAGES is "Create Posts"."""
        send = Permission.SEND_MESSAGES
        if self._channel(channel_id)["type"] == CHANNEL_PUBLIC_THREAD:
            send = Permission.SEND_MESSAGES_IN_THREADS
        return self.bot_has(channel_id, Permission.VIEW_CHANNEL | send)

    def bot_has(self, channel_id: int, permissions: int) -> bool:
        """Whether the bot has every bit of ``permissions`` in the guild channel (or thread)."""
        return self.channel_permissions(channel_id, self.bot_user_id) & permissions == permissions

    # ----------------------------------------------------------------- payload builders

    def _channel_payload(self, channel_id: int, *, with_guild: bool = False) -> dict:
        """The channel object ("Channel Resource" > "Channel Object") for its type: text and
        announcement (0, 5), voice (2), category (4), forum (15, with ``available_tags``), public
        thread (11, with ``thread_metadata``, ``applied_tags``, counts), DM (1, with ``recipients``)."""
        c = self._channels[channel_id]
        if c["type"] == CHANNEL_DM:
            return {
                "id": str(c["id"]),
                "type": CHANNEL_DM,
                "last_message_id": _sf(c["last_message_id"]),
                "recipients": [dict(self._users[c["recipient_id"]])],
                "flags": 0,
            }
        if c["type"] == CHANNEL_PUBLIC_THREAD:
            return self._thread_payload(c)
        data: dict[str, Any] = {
            "id": str(c["id"]),
            "type": c["type"],
            "name": c["name"],
            "position": c["position"],
            "permission_overwrites": list(c["overwrites"].values()),
            "parent_id": None,
            "flags": 0,
        }
        if c["type"] in (CHANNEL_GUILD_TEXT, CHANNEL_GUILD_ANNOUNCEMENT, CHANNEL_GUILD_FORUM):
            data.update(
                topic=c["topic"],
                nsfw=False,
                rate_limit_per_user=0,
                last_message_id=_sf(c["last_message_id"]),
                default_auto_archive_duration=1440,
            )
        if c["type"] == CHANNEL_GUILD_FORUM:
            data.update(
                available_tags=[dict(t) for t in c["available_tags"]],
                default_reaction_emoji=None,
                default_thread_rate_limit_per_user=0,
                default_sort_order=None,
                default_forum_layout=0,
            )
        elif c["type"] == CHANNEL_GUILD_VOICE:
            data.update(
                bitrate=64000, user_limit=0, rtc_region=None, nsfw=False, rate_limit_per_user=0, last_message_id=None
            )
        if with_guild:
            data["guild_id"] = str(c["guild_id"])
        return data

    def _thread_payload(self, t: dict) -> dict:
        """A public thread's channel object ("Channel Resource" > "Thread-Specific Channel Fields",
        "Thread Metadata Object"); ``message_count`` leaves out the starter message, as documented."""
        return {
            "id": str(t["id"]),
            "type": CHANNEL_PUBLIC_THREAD,
            "guild_id": str(t["guild_id"]),
            "parent_id": str(t["parent_id"]),
            "owner_id": str(t["owner_id"]),
            "name": t["name"],
            "last_message_id": _sf(t["last_message_id"]),
            "rate_limit_per_user": 0,
            "message_count": t["message_count"],
            "member_count": 1,
            "total_message_sent": t["total_message_sent"],
            "flags": 0,
            "applied_tags": [str(tag) for tag in t["applied_tags"]],
            "thread_metadata": {
                "archived": t["archived"],
                "auto_archive_duration": t["auto_archive_duration"],
                "archive_timestamp": t["archive_timestamp"],
                "locked": False,
                "create_timestamp": t["create_timestamp"],
            },
        }

    def _thread_member(self, thread_id: int) -> dict:
        """The bot's thread member object in a thread it created ("Channel Resource" > "Thread Member Object")."""
        return {
            "id": str(thread_id),
            "user_id": str(self.bot_user_id),
            "join_timestamp": self._channels[thread_id]["create_timestamp"],
            "flags": 0,
        }

    def _interaction_envelope(
        self, itype: int, guild_id: int, channel_id: int, user_id: int, data: dict[str, Any]
    ) -> dict[str, Any]:
        """An INTERACTION_CREATE payload of type ``itype`` with every key discord.py needs
        (Discord API "Interaction Object"): member and channel with the member's
        permissions there, ``app_permissions`` for the bot, a fresh id and token."""
        member = self._member_payload(guild_id, user_id)
        member["permissions"] = str(self.channel_permissions(channel_id, user_id))
        channel = self._channel_payload(channel_id, with_guild=True)
        channel["permissions"] = member["permissions"]
        return {
            "id": str(self.snowflake()),
            "application_id": str(self.application_id),
            "type": itype,
            "token": "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48),
            "version": 1,
            "attachment_size_limit": _ATTACHMENT_SIZE_LIMIT,
            "data": data,
            "guild_id": str(guild_id),
            "guild": {"id": str(guild_id), "locale": "en-US", "features": []},
            "channel": channel,
            "channel_id": str(channel_id),
            "member": member,
            "app_permissions": str(self.channel_permissions(channel_id, self.bot_user_id)),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(guild_id)},
            "context": 0,
        }

    def _member_payload(self, guild_id: int, user_id: int) -> dict:
        m = self._guilds[guild_id]["members"][user_id]
        return {
            "user": dict(self._users[user_id]),
            "nick": None,
            "avatar": None,
            "banner": None,
            "roles": [str(r) for r in m["roles"]],
            "joined_at": m["joined_at"],
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }

    def _partial_member(self, guild_id: int, user_id: int) -> dict:
        """A member object without ``user`` (as in a message's ``member`` or a mention's ``member``)."""
        member = self._member_payload(guild_id, user_id)
        member.pop("user")
        return member

    def _active_threads(self, guild_id: int) -> list[int]:
        """Ids of the guild's unarchived threads whose parent the bot can view, oldest first."""
        return [
            c["id"]
            for c in self._channels.values()
            if c["type"] == CHANNEL_PUBLIC_THREAD
            and c["guild_id"] == guild_id
            and not c["deleted"]
            and not c["archived"]
            and self.bot_has(c["id"], Permission.VIEW_CHANNEL)
        ]

    def _guild_create_payload(self, guild_id: int, intents: int) -> dict:
        g = self._guilds[guild_id]
        member_ids = list(g["members"]) if intents & INTENT_GUILD_MEMBERS else [self.bot_user_id]
        text_ids = [c for c in g["channel_ids"] if self._channels[c]["type"] == 0]
        return {
            "id": str(guild_id),
            "name": g["name"],
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(g["owner_id"]),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "system_channel_id": _sf(text_ids[0]) if text_ids else None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "features": [],
            "roles": list(g["roles"].values()),
            "emojis": [],
            "stickers": [],
            "max_members": 500000,
            "max_video_channel_users": 25,
            "application_id": None,
            "widget_enabled": False,
            "joined_at": g["joined_at"],
            "large": False,
            "unavailable": False,
            "member_count": len(g["members"]),
            "lazy": True,
            "members": [self._member_payload(guild_id, uid) for uid in member_ids],
            "channels": [self._channel_payload(c) for c in g["channel_ids"]],
            "threads": [self._channel_payload(t) for t in self._active_threads(guild_id)],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def _guild_rest_payload(self, guild_id: int) -> dict:
        data = self._guild_create_payload(guild_id, 0)
        for key in (
            "members",
            "channels",
            "threads",
            "presences",
            "voice_states",
            "stage_instances",
            "guild_scheduled_events",
            "soundboard_sounds",
            "joined_at",
            "large",
            "unavailable",
            "member_count",
            "lazy",
        ):
            data.pop(key, None)
        return data

    def _application_payload(self) -> dict:
        return {
            "id": str(self.application_id),
            "name": self.bot_name,
            "icon": None,
            "description": "release-bot (fake)",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 0,
            "hook": True,
            "owner": {
                "id": "1",
                "username": "owner",
                "discriminator": "0",
                "global_name": None,
                "avatar": None,
                "public_flags": 0,
            },
            "team": None,
            "bot": dict(self._users[self.bot_user_id]),
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": len(self._guilds),
            "integration_types_config": {"0": {}},
        }

    # ----------------------------------------------------------------- observation

    @property
    def registered_commands(self) -> list[dict]:
        """Every command synced by bulk overwrite (``PUT``), global first, then per guild
        (guild ones carry ``guild_id``). Copies of the stored objects."""
        out = [dict(c) for c in self._global_commands]
        for cmds in self._guild_commands.values():
            out.extend(dict(c) for c in cmds)
        return out

    def commands_for(self, guild_id: int | None = None) -> list[dict]:
        """The commands registered globally (``None``) or for one guild."""
        cmds = self._global_commands if guild_id is None else self._guild_commands.get(guild_id, [])
        return [dict(c) for c in cmds]

    def channel_messages(self, channel_id: int) -> list[dict]:
        """Messages the bot posted with ``POST /channels/{id}/messages``, oldest first: full message
        objects (``id, content, embeds, nonce, components, ...``) plus the ``allowed_mentions`` it
        sent. Interaction responses are not included (see :class:`InteractionHandle`)."""
        return [dict(m) for m in self._messages.get(int(channel_id), [])]

    def threads(self, forum_id: int) -> list[dict]:
        """The threads (forum posts) created in a forum, oldest first, as thread channel objects
        (``id`` = the starter message's id, ``name``, ``applied_tags``, ``thread_metadata``, ...)."""
        return [
            self._thread_payload(c)
            for c in self._channels.values()
            if c["type"] == CHANNEL_PUBLIC_THREAD and c["parent_id"] == int(forum_id) and not c["deleted"]
        ]

    def thread_messages(self, thread_id: int) -> list[dict]:
        """Messages in a thread, oldest first, the starter message first (same shape as
        :meth:`channel_messages`)."""
        return [dict(m) for m in self._messages.get(int(thread_id), [])]

    def dms(self, user_id: int) -> list[dict]:
        """Messages the bot sent to a user's DM channel, oldest first (same shape as :meth:`channel_messages`)."""
        cid = self._dm_channels.get(int(user_id))
        return [] if cid is None else [dict(m) for m in self._messages[cid]]

    def crossposted(self, channel_id: int) -> list[int]:
        """Ids of the channel's messages that were published (flag CROSSPOSTED), in posting order."""
        return [int(m["id"]) for m in self._messages.get(int(channel_id), []) if m["flags"] & MESSAGE_FLAG_CROSSPOSTED]

    def requests(self, method: str | None = None, path_contains: str | None = None) -> list[RequestRecord]:
        """``request_log`` filtered by method and a path substring."""
        return [
            r
            for r in self.request_log
            if (method is None or r.method == method) and (path_contains is None or path_contains in r.path)
        ]

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 500,
        path_contains: str | None = None,
        retry_after: float = 1.0,
        method: str | None = None,
        code: int = 0,
        is_global: bool = False,
    ) -> None:
        """Answer the next ``count`` REST requests (matching ``path_contains`` — a substring of the
        path relative to the API base, e.g. ``"/channels/1/messages"`` — and ``method`` if given)
        with ``status`` instead of handling them. A 429 carries ``Via``, ``Retry-After``,
        ``X-RateLimit-Scope`` and a JSON ``{"message", "retry_after" (seconds, float), "global",
        "code"}`` ("Rate Limits" > "Exceeding A Rate Limit"), which is what makes discord.py sleep and
        retry; other statuses answer ``{"message": "<status>: ...", "code": code}``. discord.py
        retries 500/502/504 by itself (after 1 s, 3 s, ...)."""
        self._fail_rules.append(_FailRule(count, status, path_contains, method, retry_after, code, is_global))

    def clear_failures(self) -> None:
        """Forget the failures :meth:`fail_next` queued and no request has used yet."""
        self._fail_rules.clear()

    async def wait_for_ready(self, timeout: float = 10.0, *, shards: list[int] | None = None) -> None:
        """Wait until a client identified and READY plus every GUILD_CREATE were written to it
        (or a RESUME was answered with RESUMED).

        ``shards``: wait instead until each of these shard ids has such a session on an open
        websocket (whatever its ``num_shards``). Raises ``TimeoutError`` after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        if shards is None:
            done = self._ready.is_set
        else:

            def done() -> bool:
                ready = {s.shard_id for s in self._live_sessions() if s.ready}
                return set(shards) <= ready

        while not done():
            self._ready_changed.clear()
            left = deadline - time.monotonic()
            if done():
                break
            if left <= 0:
                what = "gateway client" if shards is None else f"session for each of shards {sorted(shards)}"
                raise TimeoutError(f"no {what} became ready within {timeout}s")
            try:
                await asyncio.wait_for(self._ready_changed.wait(), left)
            except TimeoutError:
                pass

    @property
    def sessions(self) -> list[dict]:
        """The gateway sessions on open websockets, oldest IDENTIFY first: ``{"session_id",
        "shard": [shard_id, num_shards], "ready"}`` (``shard`` is ``[0, 1]`` for an unsharded client)."""
        return [
            {"session_id": s.session_id, "shard": [s.shard_id, s.num_shards], "ready": s.ready}
            for s in self._live_sessions()
        ]

    async def disconnect_clients(self, code: int = 4000, *, invalidate_sessions: bool = False) -> None:
        """Close every gateway websocket with ``code`` (4000: discord.py reconnects and RESUMEs; 1000
        too). ``invalidate_sessions=True`` forgets the sessions so a RESUME gets INVALID_SESSION and
        the client identifies afresh."""
        if self._ready is not None:
            self._ready.clear()
        for conn in list(self._connections):
            conn.queue.put_nowait(None)
            try:
                await asyncio.wait_for(conn.ws.close(code=code, message=b"fake disconnect"), 3.0)
            except (TimeoutError, ConnectionError, RuntimeError):
                pass
            conn.writer.cancel()
        self._connections.clear()
        if invalidate_sessions:
            self._sessions.clear()

    def _live_sessions(self) -> list[_Session]:
        return sorted((s for s in self._sessions.values() if s.live), key=lambda s: s.identified_at)

    def _sessions_for(self, guild_id: int | None) -> list[_Session]:
        """Live sessions of the shard owning ``guild_id`` (None, a DM: shard 0), oldest first."""
        return [s for s in self._live_sessions() if (s.owns(guild_id) if guild_id else s.shard_id == 0)]

    # ----------------------------------------------------------------- interactions (user side)

    def _find_command(self, guild_id: int | None, name: str) -> dict:
        for cmd in self._guild_commands.get(guild_id, []) if guild_id else []:
            if cmd["name"] == name and cmd.get("type", 1) == 1:
                return cmd
        for cmd in self._global_commands:
            if cmd["name"] == name and cmd.get("type", 1) == 1:
                return cmd
        known = sorted({c["name"] for c in self.registered_commands})
        raise LookupError(f"command /{name} is not registered (sync the command tree first); registered: {known}")

    def _build_options(
        self,
        guild_id: int,
        channel_id: int,
        user_id: int,
        schema: list[dict],
        options: dict,
        focused: str | None,
        resolved: dict,
    ) -> list[dict]:
        by_name = {o["name"]: o for o in schema}
        out = []
        for name, value in options.items():
            if name not in by_name:
                raise ValueError(f"option {name!r} not in the command's options {sorted(by_name)}")
            otype = by_name[name]["type"]
            opt: dict[str, Any] = {"type": otype, "name": name}
            if name == focused:
                opt["value"] = str(value)
                opt["focused"] = True
            elif otype == 3:
                opt["value"] = str(value)
            elif otype == 4:
                opt["value"] = int(value)
            elif otype == 5:
                opt["value"] = bool(value)
            elif otype == 10:
                opt["value"] = float(value)
            elif otype == 7:
                cid = int(value)
                opt["value"] = str(cid)
                if focused is None:
                    ch = self._channel_payload(cid, with_guild=True)
                    ch["permissions"] = str(self.channel_permissions(cid, user_id))
                    resolved.setdefault("channels", {})[str(cid)] = ch
            elif otype in (6, 9):
                uid = int(value)
                opt["value"] = str(uid)
                if focused is None:
                    resolved.setdefault("users", {})[str(uid)] = dict(self._users[uid])
                    if uid in self._guilds[guild_id]["members"]:
                        member = self._member_payload(guild_id, uid)
                        member.pop("user")
                        member["permissions"] = str(self.base_permissions(guild_id, uid))
                        resolved.setdefault("members", {})[str(uid)] = member
            elif otype == 8:
                rid = int(value)
                opt["value"] = str(rid)
                if focused is None:
                    resolved.setdefault("roles", {})[str(rid)] = dict(self._guilds[guild_id]["roles"][rid])
            elif otype == 11:
                if not isinstance(value, AttachmentFile):
                    raise TypeError(f"option {name!r} is an ATTACHMENT: pass an AttachmentFile, not {type(value)}")
                attachment = self._upload(channel_id, value)
                opt["value"] = attachment["id"]
                resolved.setdefault("attachments", {})[attachment["id"]] = attachment
            else:
                opt["value"] = value
            out.append(opt)
        if focused is not None and focused not in options:
            raise ValueError(f"focused option {focused!r} has no value in options")
        return out

    def _upload(self, channel_id: int, file: AttachmentFile, *, ephemeral: bool = True) -> dict:
        """Store ``file`` for the CDN-like route and return its attachment object ("Message Resource" >
        "Attachment Object": ``id, filename, size, url, proxy_url, content_type``; ``ephemeral`` true
        for a slash command's attachment, false for a posted message's). ``url`` is
        ``http://host:port/attachments/{channel}/{id}/{filename}`` on this fake. Raises ``ValueError``
        over the interaction ``attachment_size_limit`` (10 MiB)."""
        if len(file.data) > _ATTACHMENT_SIZE_LIMIT:
            raise ValueError(
                f"{file.filename} is {len(file.data)} bytes; Discord's limit here is {_ATTACHMENT_SIZE_LIMIT}"
            )
        aid = self.snowflake()
        self._cdn[(channel_id, aid)] = (file.filename, file.data, file.content_type)
        url = f"http://{self._host}:{self.port}/attachments/{channel_id}/{aid}/{urllib.parse.quote(file.filename)}"
        attachment: dict[str, Any] = {
            "id": str(aid),
            "filename": file.filename,
            "size": len(file.data),
            "url": url,
            "proxy_url": url,
            "ephemeral": ephemeral,
        }
        if file.content_type:
            attachment["content_type"] = file.content_type
        return attachment

    def _interaction_payload(
        self,
        itype: int,
        guild_id: int,
        user_id: int,
        command: str,
        options: dict,
        subcommand: str | None,
        channel_id: int | None,
        focused: str | None,
    ) -> dict:
        guild = self._guild(guild_id)
        if user_id not in guild["members"]:
            raise ValueError(f"user {user_id} is not a member of guild {guild_id}")
        if channel_id is None:
            text = [c for c in guild["channel_ids"] if self._channels[c]["type"] == 0]
            if not text:
                raise ValueError(f"guild {guild_id} has no text channel; pass channel_id")
            channel_id = text[0]
        cmd = self._find_command(guild_id, command)
        resolved: dict = {}
        schema = cmd.get("options") or []
        if subcommand:
            parts = subcommand.split()
            wrappers = []
            for part in parts:
                match = next((o for o in schema if o["name"] == part and o["type"] in (1, 2)), None)
                if match is None:
                    raise ValueError(f"/{command} has no subcommand {part!r}")
                wrappers.append({"type": match["type"], "name": part})
                schema = match.get("options") or []
            inner = self._build_options(guild_id, channel_id, user_id, schema, options, focused, resolved)
            node = wrappers[-1]
            node["options"] = inner
            for outer, child in zip(reversed(wrappers[:-1]), reversed(wrappers[1:]), strict=True):
                outer["options"] = [child]
            top_options = [wrappers[0]]
        else:
            top_options = self._build_options(guild_id, channel_id, user_id, schema, options, focused, resolved)
        data: dict[str, Any] = {"id": cmd["id"], "name": cmd["name"], "type": 1, "options": top_options}
        if cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        if resolved:
            data["resolved"] = resolved
        return self._interaction_envelope(itype, guild_id, channel_id, user_id, data)

    def _dispatch_interaction(self, payload: dict) -> InteractionHandle:
        gid = int(payload["guild_id"]) if payload.get("guild_id") else None
        sessions = self._sessions_for(gid)
        if not sessions:
            if self._live_sessions():
                raise RuntimeError(
                    f"no gateway client runs the shard of guild {gid}; connected shards: "
                    f"{[s['shard'] for s in self.sessions]}"
                )
            raise RuntimeError("no gateway client is connected; start the bot and await wait_for_ready()")
        handle = InteractionHandle(payload)
        self._interactions[handle.id] = handle
        self._by_token[handle.token] = handle
        # Discord delivers an interaction to one session of the guild's shard: here the newest.
        target = sessions[-1]
        handle.session_id, handle.shard = target.session_id, [target.shard_id, target.num_shards]
        target.dispatch("INTERACTION_CREATE", payload)
        return handle

    async def invoke(
        self,
        guild_id: int,
        user_id: int,
        command: str,
        options: dict | None = None,
        *,
        subcommand: str | None = None,
        channel_id: int | None = None,
    ) -> InteractionHandle:
        """Send a slash-command interaction (``INTERACTION_CREATE``, type 2) to the bot.

        ``command`` must have been synced (the ``data.id`` is the registered command's id); option
        types come from the registered schema; ``options`` maps option name -> value (str/int/bool/
        float; channel/user/role options take the id and get ``data.resolved`` filled in; an
        ATTACHMENT option (type 11) takes an :class:`AttachmentFile`: the fake stores it, serves it at
        the attachment's ``url`` and puts ``data.resolved.attachments[id]`` in the payload, the
        option's value being that id — "Application Commands" > "Application Command Option Type",
        "Receiving and Responding" > "Resolved Data Structure").
        ``subcommand`` is ``"sub"`` or ``"group sub"``. ``channel_id`` defaults to the guild's
        first text channel. Returns at once; await ``handle.response()`` / ``handle.wait_done()``.
        Shapes follow "Receiving and Responding" > "Interaction Object"."""
        payload = self._interaction_payload(
            2, guild_id, user_id, command, dict(options or {}), subcommand, channel_id, None
        )
        return self._dispatch_interaction(payload)

    async def autocomplete(
        self,
        guild_id: int,
        user_id: int,
        command: str,
        options: dict,
        focused: str,
        *,
        subcommand: str | None = None,
        channel_id: int | None = None,
        timeout: float = 5.0,
    ) -> list[dict]:
        """Send an autocomplete interaction (type 4; the ``focused`` option carries ``focused: true``
        and its partial value as a string) and return the choices ``[{"name", "value"}]`` the bot
        answered with a type 8 callback. Raises :class:`InteractionRejected` when the fake answered
        the callback 400 (e.g. more than 25 choices), ``TimeoutError`` when none came."""
        payload = self._interaction_payload(
            4, guild_id, user_id, command, dict(options), subcommand, channel_id, focused
        )
        handle = self._dispatch_interaction(payload)
        responded = asyncio.ensure_future(handle._responded.wait())
        rejected = asyncio.ensure_future(handle._rejected.wait())
        try:
            await asyncio.wait({responded, rejected}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            responded.cancel()
            rejected.cancel()
        if handle.callback is None and handle.errors:
            raise InteractionRejected(handle.errors[-1])
        if handle.callback is None:
            raise TimeoutError(f"autocomplete for /{command} {focused!r} got no answer within {timeout}s")
        callback = handle.callback
        if callback.get("type") != 8:
            raise AssertionError(f"autocomplete answered with callback type {callback.get('type')}, not 8")
        return list((callback.get("data") or {}).get("choices") or [])

    def _find_message(self, message_id: int) -> dict | None:
        """A message by id: one the bot posted in a channel, or an interaction response/follow-up."""
        for messages in self._messages.values():
            for msg in messages:
                if int(msg["id"]) == message_id:
                    return msg
        for handle in self._interactions.values():
            response = handle._messages.get(message_id)
            if response is not None and not response.get("_deleted"):
                return response
        return None

    async def invoke_component(
        self,
        message: dict,
        custom_id: str,
        user_id: int,
        values: list[str] | None = None,
        *,
        guild_id: int | None = None,
    ) -> InteractionHandle:
        """Press a button (or choose ``values`` in a select menu) of ``message`` as ``user_id``.

        ``message``: a message as :meth:`channel_messages` or an :class:`InteractionHandle` gives
        it (only its ``id`` is used: the message's current state is sent). Sends
        ``INTERACTION_CREATE`` type 3 ("Message Components" > "Component Interaction Object":
        ``data.custom_id``, ``data.component_type``, ``data.values`` for a select; ``message``;
        ``member`` with its channel ``permissions``). The bot may answer 4/5 (a new message),
        6 (deferred update: ``@original`` is then the component's message) or 7 (update the
        component's message now). Raises ``LookupError`` for an unknown message or a
        ``custom_id`` not on it, ``ValueError`` for a disabled component or bad ``values``.
        Returns at once; await ``handle.response()`` / ``handle.wait_done()``."""
        stored = self._find_message(int(message["id"]))
        if stored is None:
            raise LookupError(f"message {message['id']} is unknown to the fake (deleted?)")
        component = next(
            (
                c
                for row in stored.get("components") or []
                for c in row.get("components") or []
                if c.get("custom_id") == custom_id
            ),
            None,
        )
        if component is None:
            present = [
                c.get("custom_id") for row in stored.get("components") or [] for c in row.get("components") or []
            ]
            raise LookupError(f"message {stored['id']} has no component {custom_id!r}; it has {present}")
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled; a user cannot use it")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if component["type"] in _SELECT_TYPES:
            chosen = [str(v) for v in values or []]
            low, high = component.get("min_values", 1), component.get("max_values", 1)
            if not low <= len(chosen) <= high:
                raise ValueError(f"select {custom_id!r} takes {low}..{high} values, got {len(chosen)}")
            if component["type"] == COMPONENT_STRING_SELECT:
                allowed = {o.get("value") for o in component.get("options") or []}
                unknown = [v for v in chosen if v not in allowed]
                if unknown:
                    raise ValueError(f"values {unknown} are not options of select {custom_id!r}")
            data["values"] = chosen
        elif values:
            raise ValueError("only a select menu takes values")
        channel_id = int(stored["channel_id"])
        channel = self._channel(channel_id)
        gid = guild_id if guild_id is not None else channel["guild_id"]
        guild = self._guild(gid)
        if user_id not in guild["members"]:
            raise ValueError(f"user {user_id} is not a member of guild {gid}")
        payload = self._interaction_envelope(3, gid, channel_id, user_id, data)
        payload["message"] = self._public(stored)
        return self._dispatch_interaction(payload)

    # ----------------------------------------------------------------- HTTP

    def _add_routes(self, app: web.Application) -> None:
        p = API_PREFIX
        r = app.router
        r.add_get(p + "/users/@me", self._get_me)
        r.add_get(p + "/users/{user_id}", self._get_user)
        r.add_post(p + "/users/@me/channels", self._post_dm_channel)
        r.add_get(p + "/oauth2/applications/@me", self._get_application)
        r.add_get(p + "/applications/@me", self._get_application)
        r.add_get(p + "/gateway", self._get_gateway)
        r.add_get(p + "/gateway/bot", self._get_gateway_bot)
        r.add_get(p + "/applications/{app_id}/commands", self._get_commands)
        r.add_put(p + "/applications/{app_id}/commands", self._put_commands)
        r.add_get(p + "/applications/{app_id}/guilds/{guild_id}/commands", self._get_commands)
        r.add_put(p + "/applications/{app_id}/guilds/{guild_id}/commands", self._put_commands)
        r.add_post(p + "/interactions/{interaction_id}/{token}/callback", self._post_callback)
        r.add_post(p + "/webhooks/{app_id}/{token}", self._post_followup)
        r.add_get(p + "/webhooks/{app_id}/{token}/messages/{message_id}", self._get_webhook_message)
        r.add_patch(p + "/webhooks/{app_id}/{token}/messages/{message_id}", self._patch_webhook_message)
        r.add_delete(p + "/webhooks/{app_id}/{token}/messages/{message_id}", self._delete_webhook_message)
        r.add_post(p + "/channels/{channel_id}/messages", self._post_channel_message)
        r.add_get(p + "/channels/{channel_id}/messages", self._get_channel_messages)
        r.add_get(p + "/channels/{channel_id}/messages/{message_id}", self._get_channel_message)
        r.add_patch(p + "/channels/{channel_id}/messages/{message_id}", self._patch_channel_message)
        r.add_post(p + "/channels/{channel_id}/messages/{message_id}/crosspost", self._post_crosspost)
        r.add_post(p + "/channels/{channel_id}/threads", self._post_thread)
        r.add_get(p + "/channels/{channel_id}/threads/archived/public", self._get_public_archived_threads)
        r.add_get(p + "/channels/{channel_id}", self._get_channel)
        r.add_patch(p + "/channels/{channel_id}", self._patch_channel)
        r.add_get(p + "/guilds/{guild_id}", self._get_guild)
        r.add_get(p + "/guilds/{guild_id}/channels", self._get_guild_channels)
        r.add_get(p + "/guilds/{guild_id}/threads/active", self._get_active_threads)
        r.add_get(p + "/guilds/{guild_id}/members/{user_id}", self._get_member)
        r.add_get(p + "/guilds/{guild_id}/roles", self._get_roles)

        # the CDN-like route for attachment bytes (outside the API, no Authorization, like Discord's CDN)
        r.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._get_attachment)

    _NO_AUTH = ("/interactions/", "/webhooks/", "/attachments/")

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        if request.path == "/gateway":
            return await handler(request)
        path = request.path[len(API_PREFIX) :] if request.path.startswith(API_PREFIX) else request.path
        body: Any = None
        try:
            body = await self._read_body(request)
            request[_JSON_KEY] = body
            response = self._injected_failure(request.method, path)
            if response is None:
                if not path.startswith(self._NO_AUTH) and request.headers.get("Authorization") != f"Bot {self.token}":
                    raise _Reject(401, 0, "401: Unauthorized")
                response = await handler(request)
        except _Reject as exc:
            response = _json_response(exc.body(), exc.status)
            self._note_interaction_error(path, exc.body())
        except web.HTTPMethodNotAllowed:
            response = _json_response({"message": "405: Method Not Allowed", "code": 0}, 405)
        except web.HTTPNotFound:
            response = _json_response({"message": "404: Not Found", "code": 0}, 404)
        self.request_log.append(
            RequestRecord(request.method, path, response.status, body, dict(request.query), time.monotonic())
        )
        return response

    async def _read_body(self, request: web.Request) -> Any:
        if not request.can_read_body:
            return None
        ctype = request.content_type
        if ctype == "application/json":
            raw = await request.read()
            try:
                return json.loads(raw) if raw else None
            except ValueError:
                raise _Reject(400, 50109, "The request body contains invalid JSON.") from None
        if ctype.startswith("multipart/"):
            form = await request.post()
            payload_json = form.get("payload_json")
            if isinstance(payload_json, web.FileField):  # sent as a file part rather than a plain field
                payload_json = payload_json.file.read()
            payload = json.loads(payload_json) if payload_json is not None else {}
            files = [
                {"field": k, "filename": getattr(v, "filename", None)} for k, v in form.items() if k != "payload_json"
            ]
            if files:
                payload = dict(payload, _files=files)
            request[_FILES_KEY] = [
                AttachmentFile(v.filename, v.file.read(), v.content_type)
                for v in form.values()
                if isinstance(v, web.FileField)
            ]
            return payload
        return (await request.read()).decode(errors="replace") or None

    def _injected_failure(self, method: str, path: str) -> web.Response | None:
        for rule in self._fail_rules:
            if rule.path_contains is not None and rule.path_contains not in path:
                continue
            if rule.method is not None and rule.method.upper() != method:
                continue
            rule.count -= 1
            if rule.count <= 0:
                self._fail_rules.remove(rule)
            if rule.status == 429:
                return _rate_limit_response(
                    rule.retry_after,
                    scope="global" if rule.is_global else "user",
                    is_global=rule.is_global,
                    code=rule.code,
                )
            text = {
                400: "Bad Request",
                401: "Unauthorized",
                403: "Forbidden",
                404: "Not Found",
                500: "Internal Server Error",
                502: "Bad Gateway",
                503: "Service Unavailable",
                504: "Gateway Timeout",
            }.get(rule.status, "Error")
            return _json_response({"message": f"{rule.status}: {text}", "code": rule.code}, rule.status)
        return None

    def _note_interaction_error(self, path: str, body: dict) -> None:
        parts = path.strip("/").split("/")
        handle = None
        if (len(parts) >= 3 and parts[0] == "interactions") or (len(parts) >= 3 and parts[0] == "webhooks"):
            handle = self._by_token.get(parts[2])
        if handle is not None:
            handle.errors.append(body)
            handle._rejected.set()

    # -- users / application / gateway

    async def _get_me(self, request: web.Request) -> web.Response:
        """``GET /users/@me`` ("User Resource" > "Get Current User")."""
        return _json_response(self.bot_user)

    async def _get_user(self, request: web.Request) -> web.Response:
        """``GET /users/{id}`` ("User Resource" > "Get User"): 404/10013 Unknown User for an unknown id."""
        uid = _snowflake_param(request, "user_id")
        if uid not in self._users:
            raise _Reject(404, 10013, "Unknown User")
        return _json_response(self._users[uid])

    async def _get_application(self, request: web.Request) -> web.Response:
        """``GET /oauth2/applications/@me`` ("OAuth2" > "Get Current Bot Application Information")."""
        return _json_response(self._application_payload())

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return _json_response({"url": self.gateway_url})

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        """``GET /gateway/bot`` ("Gateway" > "Get Gateway Bot"): this fake's gateway URL and the
        recommended shard count (``recommended_shards``)."""
        return _json_response(
            {
                "url": self.gateway_url,
                "shards": self.recommended_shards,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1},
            }
        )

    # -- application commands

    def _check_app(self, request: web.Request) -> None:
        if int(request.match_info["app_id"]) != self.application_id:
            raise _Reject(403, 50001, "Missing Access")

    def _scope(self, request: web.Request) -> int | None:
        gid = request.match_info.get("guild_id")
        if gid is None:
            return None
        gid_int = int(gid)
        if gid_int not in self._guilds:
            raise _Reject(403, 50001, "Missing Access")
        return gid_int

    async def _get_commands(self, request: web.Request) -> web.Response:
        """``GET /applications/{app}/commands`` and the guild variant."""
        self._check_app(request)
        gid = self._scope(request)
        return _json_response(self.commands_for(gid))

    async def _put_commands(self, request: web.Request) -> web.Response:
        """Bulk overwrite ("Application Commands" > "Bulk Overwrite Global/Guild Application Commands"):
        validates names/descriptions/option counts, keeps the id of a command with the same name and
        type, assigns ids to new ones, replaces the whole set, answers the stored list."""
        self._check_app(request)
        gid = self._scope(request)
        body = request[_JSON_KEY]
        if not isinstance(body, list):
            raise _Reject(
                400,
                50035,
                "Invalid Form Body",
                {"_errors": [{"code": "LIST_TYPE_CONVERT", "message": "Only iterables may be used in a ListType"}]},
            )
        errors: dict = {}
        if len(body) > 100:
            _add_error(errors, (), "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        seen: set[tuple[str, int]] = set()
        for i, cmd in enumerate(body):
            ctype = cmd.get("type", 1)
            self._validate_command(errors, (i,), cmd, ctype)
            key = (cmd.get("name"), ctype)
            if key in seen:
                _add_error(
                    errors,
                    (i, "name"),
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    "Application command names must be unique",
                )
            seen.add(key)
        if errors:
            raise _Reject(400, 50035, "Invalid Form Body", errors)
        stored = []
        for cmd in body:
            ctype = cmd.get("type", 1)
            version_key = (gid, cmd["name"], ctype)
            previous = self._command_versions.get(version_key)
            cid = previous[0] if previous else self.snowflake()
            version = self.snowflake()
            self._command_versions[version_key] = (cid, version)
            obj = {
                "id": str(cid),
                "application_id": str(self.application_id),
                "version": str(version),
                "type": ctype,
                "name": cmd["name"],
                "name_localizations": cmd.get("name_localizations"),
                "description": cmd.get("description", ""),
                "description_localizations": cmd.get("description_localizations"),
                "default_member_permissions": cmd.get("default_member_permissions"),
                "dm_permission": cmd.get("dm_permission", True),
                "nsfw": cmd.get("nsfw", False),
                "contexts": cmd.get("contexts"),
                "integration_types": cmd.get("integration_types", [0]),
                "options": cmd.get("options") or [],
            }
            if gid is not None:
                obj["guild_id"] = str(gid)
            stored.append(obj)
        if gid is None:
            self._global_commands = stored
        else:
            self._guild_commands[gid] = stored
        return _json_response([dict(c) for c in stored])

    def _validate_command(self, errors: dict, path: tuple, cmd: dict, ctype: int) -> None:
        name = cmd.get("name") or ""
        if ctype == 1:
            if not _NAME_RE.match(name) or name != name.lower():
                _add_error(errors, path + ("name",), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
            desc = cmd.get("description") or ""
            if not 1 <= len(desc) <= 100:
                _add_error(
                    errors, path + ("description",), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                )
        elif not 1 <= len(name) <= 32:
            _add_error(errors, path + ("name",), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
        self._validate_options(errors, path + ("options",), cmd.get("options") or [])

    def _validate_options(self, errors: dict, path: tuple, options: list[dict]) -> None:
        """Options of a command ("Application Commands" > "Application Command Option Structure"):
        ≤ 25, names and descriptions as for commands, ≤ 25 choices, required before optional, and a
        ``type`` among 1–11 (SUB_COMMAND ... NUMBER = 10, ATTACHMENT = 11)."""
        if len(options) > 25:
            _add_error(errors, path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        optional_seen = False
        for i, opt in enumerate(options):
            if opt.get("type") not in _OPTION_TYPES:
                _add_error(errors, path + (i, "type"), "BASE_TYPE_CHOICES", f"Value must be one of {_OPTION_TYPES}.")
            name = opt.get("name") or ""
            if not _NAME_RE.match(name) or name != name.lower():
                _add_error(errors, path + (i, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
            desc = opt.get("description") or ""
            if not 1 <= len(desc) <= 100:
                _add_error(
                    errors, path + (i, "description"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                )
            if len(opt.get("choices") or []) > 25:
                _add_error(errors, path + (i, "choices"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
            if opt.get("type") in (1, 2):
                self._validate_options(errors, path + (i, "options"), opt.get("options") or [])
                continue
            if opt.get("required"):
                if optional_seen:
                    _add_error(
                        errors,
                        path + (i, "required"),
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
            else:
                optional_seen = True

    # -- interactions

    def _handle_for(self, request: web.Request) -> InteractionHandle:
        handle = self._by_token.get(request.match_info["token"])
        if handle is None:
            raise _Reject(404, 10015, "Unknown Webhook")
        if "app_id" in request.match_info and int(request.match_info["app_id"]) != self.application_id:
            raise _Reject(404, 10015, "Unknown Webhook")
        return handle

    def _interaction_message(self, handle: InteractionHandle, body: dict, *, flags: int, mtype: int) -> dict:
        mid = self.snowflake()
        content = body.get("content") or ""
        channel = self._channels[int(handle.payload["channel_id"])]
        mentions, mention_roles, mention_everyone = self._mentions(channel, content, body.get("allowed_mentions"))
        msg = {
            "id": str(mid),
            "type": mtype,
            "channel_id": str(handle.channel_id),
            "author": dict(self._users[self.bot_user_id]),
            "content": content,
            "embeds": [dict(e, type=e.get("type", "rich")) for e in body.get("embeds") or []],
            "components": body.get("components") or [],
            "attachments": [],
            "mentions": mentions,
            "mention_roles": mention_roles,
            "mention_everyone": mention_everyone,
            "pinned": False,
            "tts": bool(body.get("tts", False)),
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "flags": flags,
            "webhook_id": str(self.application_id),
            "application_id": str(self.application_id),
            "interaction_metadata": {
                "id": str(handle.id),
                "type": handle.type,
                "user": dict(self._users[handle.user_id]),
                "authorizing_integration_owners": handle.payload.get("authorizing_integration_owners", {}),
            },
            "allowed_mentions": body.get("allowed_mentions"),
        }
        handle._messages[mid] = msg
        return msg

    @staticmethod
    def _public(msg: dict) -> dict:
        """The message as Discord sends it: the stored one without the recorded ``allowed_mentions``."""
        out = dict(msg)
        out.pop("allowed_mentions", None)
        out.pop("_edits", None)
        return out

    async def _post_callback(self, request: web.Request) -> web.Response:
        """``POST /interactions/{id}/{token}/callback`` ("Receiving and Responding" > "Create
        Interaction Response"). discord.py 2.7 always sends ``?with_response=1`` and reads
        ``{"interaction": {...}, "resource": {"type", "message"}}``; without it: 204.
        A second acknowledgement answers 400 / 40060; an unknown one 404 / 10062."""
        handle = self._interactions.get(int(request.match_info["interaction_id"]))
        if handle is None or handle.token != request.match_info["token"]:
            raise _Reject(404, 10062, "Unknown interaction")
        if handle.callback is not None:
            raise _Reject(400, 40060, "Interaction has already been acknowledged.")
        body = request[_JSON_KEY] or {}
        ctype = body.get("type")
        data = body.get("data") or {}
        if ctype not in (1, 4, 5, 6, 7, 8, 9):
            raise _Reject(
                400,
                50035,
                "Invalid Form Body",
                {
                    "type": {
                        "_errors": [
                            {
                                "code": "BASE_TYPE_CHOICES",
                                "message": "Value must be one of (1, 4, 5, 6, 7, 8, 9, 10, 12).",
                            }
                        ]
                    }
                },
            )
        if ctype == 8:
            if handle.type != 4:
                raise _Reject(
                    400,
                    50035,
                    "Invalid Form Body",
                    {
                        "type": {
                            "_errors": [
                                {
                                    "code": "INTERACTION_RESPONSE_TYPE_INVALID",
                                    "message": "Invalid interaction response type",
                                }
                            ]
                        }
                    },
                )
            errors: dict = {}
            choices = data.get("choices") or []
            if len(choices) > 25:
                _add_error(errors, ("data", "choices"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
            for i, choice in enumerate(choices[:25]):
                if not 1 <= len(str(choice.get("name", ""))) <= 100:
                    _add_error(
                        errors,
                        ("data", "choices", i, "name"),
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 100 in length.",
                    )
                if isinstance(choice.get("value"), str) and len(choice["value"]) > 100:
                    _add_error(
                        errors,
                        ("data", "choices", i, "value"),
                        "BASE_TYPE_MAX_LENGTH",
                        "Must be 100 or fewer in length.",
                    )
            if errors:
                raise _Reject(400, 50035, "Invalid Form Body", errors)
        elif handle.type == 4:
            raise _Reject(
                400,
                50035,
                "Invalid Form Body",
                {
                    "type": {
                        "_errors": [
                            {
                                "code": "INTERACTION_RESPONSE_TYPE_INVALID",
                                "message": "Invalid interaction response type",
                            }
                        ]
                    }
                },
            )
        elif ctype in (6, 7) and handle.type not in (3, 5):
            # UPDATE_MESSAGE / DEFERRED_UPDATE_MESSAGE: only for component (and modal) interactions.
            raise _Reject(
                400,
                50035,
                "Invalid Form Body",
                {
                    "type": {
                        "_errors": [
                            {
                                "code": "INTERACTION_RESPONSE_TYPE_INVALID",
                                "message": "Invalid interaction response type",
                            }
                        ]
                    }
                },
            )
        if ctype in (4, 7):
            errors = validate_message_body(data)
            if errors:
                raise _Reject(400, 50035, "Invalid Form Body", {"data": errors})
            if ctype == 4 and not (
                data.get("content")
                or data.get("embeds")
                or data.get("components")
                or data.get("attachments")
                or data.get("poll")
            ):
                raise _Reject(400, 50006, "Cannot send an empty message")

        handle.callback = {"type": ctype, "data": data}
        handle.response_latency = time.monotonic() - handle.created_at
        flags = int(data.get("flags") or 0) & (MESSAGE_FLAG_EPHEMERAL | MESSAGE_FLAG_SUPPRESS_EMBEDS)
        message = None
        if ctype == 4:
            message = handle.original = self._interaction_message(handle, data, flags=flags, mtype=20)
        elif ctype == 5:
            message = handle.original = self._interaction_message(
                handle, {}, flags=flags | MESSAGE_FLAG_LOADING, mtype=20
            )
        elif ctype in (6, 7):
            # The component's message becomes @original of this interaction; 7 edits it now.
            target = handle.original = self._find_message(int(handle.payload["message"]["id"]))
            if target is None:
                raise _Reject(404, 10008, "Unknown Message")
            if ctype == 7:
                self._apply_edit(target, data)
                target["edited_timestamp"] = _now_iso()
                handle.edits.append(dict(target))
                message = target
        handle._responded.set()
        if ctype in (1, 4, 7, 8, 9):
            handle._done.set()

        if request.query.get("with_response", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        interaction: dict[str, Any] = {"id": str(handle.id), "type": handle.type, "activity_instance_id": None}
        if message is not None:
            interaction.update(
                response_message_id=message["id"],
                response_message_loading=bool(message["flags"] & MESSAGE_FLAG_LOADING),
                response_message_ephemeral=bool(message["flags"] & MESSAGE_FLAG_EPHEMERAL),
            )
        out: dict[str, Any] = {"interaction": interaction}
        if message is not None:
            out["resource"] = {"type": ctype, "message": self._public(message)}
        return _json_response(out)

    async def _post_followup(self, request: web.Request) -> web.Response:
        """``POST /webhooks/{app}/{token}`` ("Create Followup Message"; ``?wait=true|1`` answers the
        message, else 204). The first follow-up after a type 5 deferral fills the loading
        ``@original`` message (same id; ephemerality of the deferral), as Discord does."""
        handle = self._handle_for(request)
        if handle.callback is None:
            raise _Reject(404, 10015, "Unknown Webhook")
        body = request[_JSON_KEY] or {}
        _validate_or_reject(body, require_something=True)
        original = handle.original
        if original is not None and original["flags"] & MESSAGE_FLAG_LOADING:
            self._apply_edit(original, body)
            original["flags"] &= ~MESSAGE_FLAG_LOADING
            original["edited_timestamp"] = None
            message = original
        else:
            flags = int(body.get("flags") or 0) & (MESSAGE_FLAG_EPHEMERAL | MESSAGE_FLAG_SUPPRESS_EMBEDS)
            message = self._interaction_message(handle, body, flags=flags, mtype=0)
        handle.followups.append(dict(message))
        handle._done.set()
        if request.query.get("wait", "").lower() in ("1", "true"):
            return _json_response(self._public(message))
        return web.Response(status=204)

    def _webhook_message(self, handle: InteractionHandle, message_id: str) -> dict:
        if message_id == "@original":
            if handle.original is None:
                raise _Reject(404, 10008, "Unknown Message")
            return handle.original
        msg = handle._messages.get(int(message_id)) if message_id.isdigit() else None
        if msg is None or msg.get("_deleted"):
            raise _Reject(404, 10008, "Unknown Message")
        return msg

    @staticmethod
    def _apply_edit(msg: dict, body: dict) -> None:
        for key in ("content", "components", "allowed_mentions"):
            if key in body:
                msg[key] = body[key] if body[key] is not None else ("" if key == "content" else None)
        if "embeds" in body:
            msg["embeds"] = [dict(e, type=e.get("type", "rich")) for e in body["embeds"] or []]
        if "flags" in body and body["flags"] is not None:
            keep = msg["flags"] & ~MESSAGE_FLAG_SUPPRESS_EMBEDS
            msg["flags"] = keep | (int(body["flags"]) & MESSAGE_FLAG_SUPPRESS_EMBEDS)

    async def _get_webhook_message(self, request: web.Request) -> web.Response:
        handle = self._handle_for(request)
        return _json_response(self._public(self._webhook_message(handle, request.match_info["message_id"])))

    async def _patch_webhook_message(self, request: web.Request) -> web.Response:
        """``PATCH /webhooks/{app}/{token}/messages/@original|{id}`` ("Edit Original Interaction
        Response" / "Edit Followup Message"): validated, applied, recorded in ``handle.edits`` for
        ``@original``."""
        handle = self._handle_for(request)
        message_id = request.match_info["message_id"]
        msg = self._webhook_message(handle, message_id)
        body = request[_JSON_KEY] or {}
        _validate_or_reject(body, require_something=False)
        self._apply_edit(msg, body)
        msg["flags"] &= ~MESSAGE_FLAG_LOADING
        msg["edited_timestamp"] = _now_iso()
        if msg is handle.original:
            handle.edits.append(dict(msg))
        else:
            for i, f in enumerate(handle.followups):
                if f["id"] == msg["id"]:
                    handle.followups[i] = dict(msg)
        handle._done.set()
        return _json_response(self._public(msg))

    async def _delete_webhook_message(self, request: web.Request) -> web.Response:
        handle = self._handle_for(request)
        message_id = request.match_info["message_id"]
        msg = self._webhook_message(handle, message_id)
        if msg is handle.original:
            handle.original = None
        msg["_deleted"] = True
        return web.Response(status=204)

    # -- channels and guilds

    def _live_channel(self, request: web.Request) -> dict:
        try:
            cid = int(request.match_info["channel_id"])
        except ValueError:
            raise _Reject(404, 10003, "Unknown Channel") from None
        channel = self._channels.get(cid)
        if channel is None or channel["deleted"]:
            raise _Reject(404, 10003, "Unknown Channel")
        return channel

    def _shares_guild(self, user_id: int) -> bool:
        return any(user_id in g["members"] for g in self._guilds.values())

    def _mentions(self, channel: dict, content: str, allowed: dict | None) -> tuple[list[dict], list[str], bool]:
        """Who a message pings: ``(mentions, mention_roles, mention_everyone)`` as in the message
        object ("Message Resource" > "Message Object"; "Allowed Mentions Object"). Mentions come from
        ``content`` (``<@id>``, ``<@!id>``, ``<@&id>``, ``@everyone``/``@here``); without
        ``allowed_mentions`` every kind is parsed, with it a user pings only if ``parse`` has
        ``"users"`` or the id is in ``users`` (likewise roles), ``@everyone`` only with
        ``"everyone"``. A role pings only if it is mentionable or the bot has MENTION_EVERYONE there;
        ``@everyone`` needs MENTION_EVERYONE. Users unknown to the fake are not pinged; a guild
        member's entry carries ``member``."""
        if allowed is None:
            parse, users_ok, roles_ok = set(_MENTION_TYPES), set(), set()
        else:
            parse = set(allowed.get("parse") or [])
            users_ok = {str(u) for u in allowed.get("users") or []}
            roles_ok = {str(r) for r in allowed.get("roles") or []}
        gid = channel["guild_id"]
        mentions: list[dict] = []
        for raw in dict.fromkeys(_USER_MENTION.findall(content)):
            uid = int(raw)
            if uid not in self._users or not ("users" in parse or str(uid) in users_ok):
                continue
            user = dict(self._users[uid])
            if gid is not None and uid in self._guilds[gid]["members"]:
                user["member"] = self._partial_member(gid, uid)
            mentions.append(user)
        if gid is None:
            return mentions, [], False
        guild = self._guilds[gid]
        may_all = self.bot_has(channel["id"], Permission.MENTION_EVERYONE)
        roles = []
        for raw in dict.fromkeys(_ROLE_MENTION.findall(content)):
            role = guild["roles"].get(int(raw))
            if role is None or int(raw) == gid or not ("roles" in parse or str(int(raw)) in roles_ok):
                continue
            if role["mentionable"] or may_all:
                roles.append(role["id"])
        everyone = ("@everyone" in content or "@here" in content) and "everyone" in parse and may_all
        return mentions, roles, everyone

    def _create_message(
        self,
        channel: dict,
        body: dict,
        *,
        author_id: int,
        files: list[AttachmentFile] | None = None,
        message_id: int | None = None,
    ) -> dict:
        """Store a new message in ``channel`` (a guild channel, a thread or a DM) and return it: the
        message object plus the ``allowed_mentions`` sent; ``mentions``/``mention_roles`` as
        :meth:`_mentions` computes them; ``files`` become attachments served on the CDN-like route.
        A thread counts it (not its starter) in ``message_count``."""
        cid = channel["id"]
        mid = message_id if message_id is not None else self.snowflake()
        content = body.get("content") or ""
        mentions, mention_roles, mention_everyone = self._mentions(channel, content, body.get("allowed_mentions"))
        msg: dict[str, Any] = {
            "id": str(mid),
            "type": 0,
            "channel_id": str(cid),
            "author": dict(self._users[author_id]),
            "content": content,
            "embeds": [dict(e, type=e.get("type", "rich")) for e in body.get("embeds") or []],
            "components": body.get("components") or [],
            "attachments": [self._upload(cid, f, ephemeral=False) for f in files or []],
            "mentions": mentions,
            "mention_roles": mention_roles,
            "mention_everyone": mention_everyone,
            "pinned": False,
            "tts": bool(body.get("tts", False)),
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "flags": int(body.get("flags") or 0) & MESSAGE_FLAG_SUPPRESS_EMBEDS,
            "allowed_mentions": body.get("allowed_mentions"),
        }
        if channel["guild_id"] is not None:
            msg["guild_id"] = str(channel["guild_id"])
        reference = body.get("message_reference")
        if reference:
            known = any(m["id"] == str(reference.get("message_id")) for m in self._messages[cid])
            if known:
                msg["type"] = 19  # REPLY ("Message Resource" > "Message Types")
                msg["message_reference"] = dict(reference, channel_id=str(cid))
        self._messages[cid].append(msg)
        channel["last_message_id"] = mid
        if channel["type"] == CHANNEL_PUBLIC_THREAD and mid != cid:
            channel["message_count"] += 1
            channel["total_message_sent"] += 1
        return msg

    async def _post_channel_message(self, request: web.Request) -> web.Response:
        """``POST /channels/{id}/messages`` ("Message Resource" > "Create Message"): 404/10003 for an
        unknown or deleted channel; 400/40058 in a forum (posts are threads there); in a DM 403/50007
        "Cannot send messages to this user" when the recipient closed DMs or shares no guild with the
        bot; elsewhere 403/50013 when the bot may not view+send (in a thread: send in threads); a
        429 past the optional send limit (:meth:`set_send_rate_limit`); 400/50035 over a limit or
        for bad ``allowed_mentions``, 400/50006 when empty. Sending in an archived thread unarchives
        it. With ``nonce`` and ``enforce_nonce: true``, a nonce seen in this channel within
        ``nonce_window`` seconds returns the earlier message instead of a new one."""
        channel = self._live_channel(request)
        cid = channel["id"]
        if channel["type"] == CHANNEL_GUILD_FORUM:
            raise _Reject(400, 40058, "Cannot send a message in a forum channel")
        if channel["type"] == CHANNEL_DM:
            uid = channel["recipient_id"]
            if uid in self._dms_closed or not self._shares_guild(uid):
                raise _Reject(403, 50007, "Cannot send messages to this user")
        elif not self.bot_can_send(cid):
            raise _Reject(403, 50013, "Missing Permissions")
        limited = self._send_limited(cid)
        if limited is not None:
            return limited
        body = request[_JSON_KEY] or {}
        _validate_or_reject(body, require_something=True)
        reference = body.get("message_reference") or {}
        if (
            reference.get("message_id") is not None
            and reference.get("fail_if_not_exists", True)
            and not any(m["id"] == str(reference["message_id"]) for m in self._messages[cid])
        ):  # a reply to a message of this channel that does not exist
            raise _Reject(
                400,
                50035,
                "Invalid Form Body",
                {
                    "message_reference": {
                        "_errors": [{"code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "message": "Unknown message"}]
                    }
                },
            )
        files = request.get(_FILES_KEY) or []
        self._check_uploads(files)
        nonce = body.get("nonce")
        now = self.clock()
        if nonce is not None and body.get("enforce_nonce"):
            seen = self._nonces.get((cid, str(nonce)))
            if seen is not None and now - seen[0] <= self.nonce_window:
                return _json_response(self._public(seen[1]))
        if channel["type"] == CHANNEL_PUBLIC_THREAD and self._set_archived(channel, False):
            self._thread_updated(channel)
        msg = self._create_message(channel, body, author_id=self.bot_user_id, files=files)
        if nonce is not None:
            msg["nonce"] = nonce
            self._nonces[(cid, str(nonce))] = (now, msg)
        return _json_response(self._public(msg))

    @staticmethod
    def _check_uploads(files: list[AttachmentFile]) -> None:
        """413/40005 "Request entity too large" for a file over the 10 MiB upload limit ("Message
        Resource" > "Uploading Files")."""
        if any(len(f.data) > _ATTACHMENT_SIZE_LIMIT for f in files):
            raise _Reject(413, 40005, "Request entity too large")

    def _send_limited(self, channel_id: int) -> web.Response | None:
        """The 429 of the optional per-channel send limit, or ``None`` (and the send is counted)."""
        if self._send_limit is None:
            return None
        limit, per = self._send_limit
        now = self.clock()
        window = self._sends.setdefault(channel_id, deque())
        wait = _window_wait(window, now, limit, per)
        if wait > 0:
            return _rate_limit_response(wait, scope="user")
        window.append(now)
        return None

    def _channel_message(self, channel: dict, message_id: str) -> dict:
        for m in self._messages[channel["id"]]:
            if m["id"] == message_id:
                return m
        raise _Reject(404, 10008, "Unknown Message")

    async def _get_channel_messages(self, request: web.Request) -> web.Response:
        """``GET /channels/{id}/messages`` ("Get Channel Messages"): newest first, ``limit`` (50);
        in a thread the starter message too. Only messages the fake knows (the bot's and
        :meth:`add_user_message` ones)."""
        channel = self._live_channel(request)
        limit = int(request.query.get("limit", 50))
        msgs = [self._public(m) for m in reversed(self._messages[channel["id"]])][:limit]
        return _json_response(msgs)

    async def _get_channel_message(self, request: web.Request) -> web.Response:
        channel = self._live_channel(request)
        return _json_response(self._public(self._channel_message(channel, request.match_info["message_id"])))

    async def _patch_channel_message(self, request: web.Request) -> web.Response:
        """``PATCH /channels/{id}/messages/{mid}`` ("Message Resource" > "Edit Message"): the author edits
        ``content``, ``embeds``, ``components``, ``allowed_mentions``, ``flags`` (another user's message:
        403/50005 "Cannot edit a message authored by another user"); 404/10003, 404/10008; 400/50035
        over a limit. Sets ``edited_timestamp``, counts it in ``_edits`` (:meth:`message_edits`) and
        sends MESSAGE_UPDATE."""
        channel = self._live_channel(request)
        msg = self._channel_message(channel, request.match_info["message_id"])
        if int(msg["author"]["id"]) != self.bot_user_id:
            raise _Reject(403, 50005, "Cannot edit a message authored by another user")
        body = request[_JSON_KEY] or {}
        _validate_or_reject(body, require_something=False)
        self._apply_edit(msg, body)
        msg["edited_timestamp"] = _now_iso()
        msg["_edits"] = int(msg.get("_edits", 0)) + 1
        for session in self._sessions_for(channel["guild_id"]):
            if session.intents & INTENT_GUILD_MESSAGES:
                session.dispatch("MESSAGE_UPDATE", self._public(msg))
        return _json_response(self._public(msg))

    async def _post_crosspost(self, request: web.Request) -> web.Response:
        """``POST /channels/{id}/messages/{mid}/crosspost`` ("Message Resource" > "Crosspost Message"):
        publishes a message of an announcement channel (type 5) to its followers, sets flag
        CROSSPOSTED (1 << 0), answers the message and sends MESSAGE_UPDATE. Errors: 404/10003,
        404/10008; 400/50024 "Cannot execute action on this channel type" outside an announcement
        channel (the docs name no code; this is the documented code for the wrong channel type);
        403/50013 without Send Messages (own message) or Manage Messages (another's); 400/40033
        "This message has already been crossposted". Past ``publish_limit`` publishes in the channel
        within ``publish_window`` seconds of ``clock`` (a rolling window: a slot frees
        ``publish_window`` after the oldest counted publish) it answers 429 with ``retry_after`` =
        seconds until then, ``global: false``, ``X-RateLimit-Scope: shared`` (a per-resource limit)
        and ``Via``: discord.py sleeps that long, or raises ``discord.RateLimited`` when the client's
        ``max_ratelimit_timeout`` is lower. Only successful publishes count."""
        channel = self._live_channel(request)
        cid = channel["id"]
        msg = self._channel_message(channel, request.match_info["message_id"])
        if channel["type"] != CHANNEL_GUILD_ANNOUNCEMENT:
            raise _Reject(400, 50024, "Cannot execute action on this channel type")
        need = Permission.VIEW_CHANNEL | Permission.SEND_MESSAGES
        if int(msg["author"]["id"]) != self.bot_user_id:
            need |= Permission.MANAGE_MESSAGES
        if not self.bot_has(cid, need):
            raise _Reject(403, 50013, "Missing Permissions")
        if msg["flags"] & MESSAGE_FLAG_CROSSPOSTED:
            raise _Reject(400, 40033, "This message has already been crossposted")
        now = self.clock()
        window = self._publishes.setdefault(cid, deque())
        wait = _window_wait(window, now, self.publish_limit, self.publish_window)
        if wait > 0:
            return _rate_limit_response(wait, scope="shared")
        window.append(now)
        msg["flags"] |= MESSAGE_FLAG_CROSSPOSTED
        for session in self._sessions_for(channel["guild_id"]):
            if session.intents & INTENT_GUILD_MESSAGES:
                session.dispatch("MESSAGE_UPDATE", self._public(msg))
        return _json_response(self._public(msg))

    def _check_applied_tags(self, errors: dict, forum: dict, tags: Any) -> list[int]:
        """``applied_tags`` of a forum post ("Channel Resource" > "Start Thread in Forum or Media
        Channel"): at most 5, each once, each an id of the forum's ``available_tags`` (the docs name no
        error for an unknown id: a form error here). Returns them as ints."""
        if not isinstance(tags, list):
            _add_error(errors, ("applied_tags",), "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
            return []
        if len(tags) > 5:
            _add_error(errors, ("applied_tags",), "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
        known = {t["id"] for t in forum["available_tags"]}
        for i, tag in enumerate(tags):
            if str(tag) not in known:
                _add_error(
                    errors,
                    ("applied_tags", i),
                    "BASE_TYPE_CHOICES",
                    "Value must be one of the forum's available_tags ids.",
                )
            elif str(tag) in [str(t) for t in tags[:i]]:
                _add_error(
                    errors,
                    ("applied_tags", i),
                    "SET_TYPE_ALREADY_CONTAINS_VALUE",
                    "The set already contains this value",
                )
        return [int(t) for t in tags if str(t).isdigit()]

    def _moderated_tags_allowed(self, forum: dict, tag_ids: list[int]) -> bool:
        """A moderated tag may only be applied with Manage Threads ("Forum Tag Object" > ``moderated``)."""
        moderated = {int(t["id"]) for t in forum["available_tags"] if t["moderated"]}
        return not (moderated & set(tag_ids)) or self.bot_has(forum["id"], Permission.MANAGE_THREADS)

    async def _post_thread(self, request: web.Request) -> web.Response:
        """``POST /channels/{forum}/threads`` ("Channel Resource" > "Start Thread in Forum or Media
        Channel"): a forum post. Body: ``name`` (1–100), ``message`` (content/embeds/components/
        allowed_mentions/flags, validated as a channel message; required, not empty),
        ``applied_tags`` (see :meth:`_check_applied_tags`; a moderated tag needs Manage Threads),
        ``auto_archive_duration`` (60, 1440, 4320 or 10080; default 1440); no ``nonce``. Needs View
        Channel + Send Messages ("Create Posts") in the forum, else 403/50013; a channel that is not a
        forum: 400/50024 (starting threads in text channels is not served). Answers the thread channel
        object (type 11, id = the starter message's id, ``parent_id`` the forum, ``applied_tags``,
        ``message_count`` 0, ``thread_metadata``, the bot's thread ``member``) with the starter
        ``message`` embedded, and sends THREAD_CREATE (``newly_created``) to the guild's shard."""
        forum = self._live_channel(request)
        fid = forum["id"]
        if forum["type"] != CHANNEL_GUILD_FORUM:
            raise _Reject(400, 50024, "Cannot execute action on this channel type")
        if not self.bot_can_send(fid):
            raise _Reject(403, 50013, "Missing Permissions")
        body = request[_JSON_KEY] or {}
        errors: dict = {}
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            _add_error(errors, ("name",), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        duration = body.get("auto_archive_duration") or 1440
        if duration not in THREAD_ARCHIVE_DURATIONS:
            _add_error(
                errors,
                ("auto_archive_duration",),
                "BASE_TYPE_CHOICES",
                f"Value must be one of {THREAD_ARCHIVE_DURATIONS}.",
            )
        message = body.get("message")
        if not isinstance(message, dict):
            _add_error(errors, ("message",), "BASE_TYPE_REQUIRED", "This field is required")
            message = {}
        else:
            message_errors = validate_message_body(message)
            if message_errors:
                errors["message"] = message_errors
        tag_ids = self._check_applied_tags(errors, forum, body.get("applied_tags") or [])
        if errors:
            raise _Reject(400, 50035, "Invalid Form Body", errors)
        files = request.get(_FILES_KEY) or []
        self._check_uploads(files)
        if not (message.get("content") or message.get("embeds") or message.get("components") or files):
            raise _Reject(400, 50006, "Cannot send an empty message")
        if not self._moderated_tags_allowed(forum, tag_ids):
            raise _Reject(403, 50013, "Missing Permissions")
        tid = self.snowflake()
        now = _now_iso()
        thread = {
            "id": tid,
            "guild_id": forum["guild_id"],
            "parent_id": fid,
            "owner_id": self.bot_user_id,
            "name": name,
            "type": CHANNEL_PUBLIC_THREAD,
            "position": 0,
            "overwrites": {},
            "deleted": False,
            "last_message_id": None,
            "applied_tags": tag_ids,
            "message_count": 0,
            "total_message_sent": 0,
            "archived": False,
            "auto_archive_duration": duration,
            "archive_timestamp": now,
            "create_timestamp": now,
        }
        self._channels[tid] = thread
        self._messages[tid] = []
        starter = self._create_message(thread, message, author_id=self.bot_user_id, files=files, message_id=tid)
        forum["last_message_id"] = tid
        payload = dict(self._thread_payload(thread), member=self._thread_member(tid))
        for session in self._sessions_for(forum["guild_id"]):
            session.dispatch("THREAD_CREATE", dict(payload, newly_created=True))
        return _json_response(dict(payload, message=self._public(starter)))

    async def _get_active_threads(self, request: web.Request) -> web.Response:
        """``GET /guilds/{id}/threads/active`` ("Guild Resource" > "List Active Guild Threads"): the
        guild's unarchived threads the bot can see, ``{"threads", "members"}`` where ``members`` holds
        the bot's thread member for each (the bot joined every thread it created)."""
        gid = self._request_guild(request)
        ids = self._active_threads(gid)
        return _json_response(
            {"threads": [self._channel_payload(t) for t in ids], "members": [self._thread_member(t) for t in ids]}
        )

    async def _get_public_archived_threads(self, request: web.Request) -> web.Response:
        """``GET /channels/{id}/threads/archived/public?before=&limit=`` ("Channel Resource" > "List
        Public Archived Threads"): archived threads of the channel, newest ``archive_timestamp``
        first, those archived before ``before`` (ISO8601) if given, at most ``limit`` (2–100, default
        50); ``{"threads", "members", "has_more"}``. Needs Read Message History (403/50013)."""
        channel = self._live_channel(request)
        cid = channel["id"]
        if channel["type"] not in (CHANNEL_GUILD_TEXT, CHANNEL_GUILD_ANNOUNCEMENT, CHANNEL_GUILD_FORUM):
            raise _Reject(400, 50024, "Cannot execute action on this channel type")
        if not self.bot_has(cid, Permission.VIEW_CHANNEL | Permission.READ_MESSAGE_HISTORY):
            raise _Reject(403, 50013, "Missing Permissions")
        errors: dict = {}
        before = request.query.get("before")
        cutoff = None
        if before:
            try:
                cutoff = dt.datetime.fromisoformat(before)
            except ValueError:
                _add_error(errors, ("before",), "DATE_TIME_TYPE_PARSE", f"Could not parse {before}. Should be ISO8601.")
        raw_limit = request.query.get("limit", "50")
        limit = int(raw_limit) if raw_limit.isdigit() else 0
        if not 2 <= limit <= 100:
            _add_error(errors, ("limit",), "NUMBER_TYPE_MIN", "Value must be between 2 and 100.")
        if errors:
            raise _Reject(400, 50035, "Invalid Form Body", errors)
        archived = sorted(
            (
                c
                for c in self._channels.values()
                if c["type"] == CHANNEL_PUBLIC_THREAD
                and c["parent_id"] == cid
                and c["archived"]
                and not c["deleted"]
                and (cutoff is None or dt.datetime.fromisoformat(c["archive_timestamp"]) < cutoff)
            ),
            key=lambda c: (c["archive_timestamp"], c["id"]),
            reverse=True,
        )
        page = archived[:limit]
        return _json_response(
            {
                "threads": [self._thread_payload(c) for c in page],
                "members": [self._thread_member(c["id"]) for c in page],
                "has_more": len(archived) > limit,
            }
        )

    async def _get_channel(self, request: web.Request) -> web.Response:
        """``GET /channels/{id}``: the channel object for its type (with ``guild_id``; forum ones with
        ``available_tags``, all guild channels with ``permission_overwrites``); 403/50001 if the bot
        cannot view it."""
        channel = self._live_channel(request)
        if channel["type"] == CHANNEL_DM:
            return _json_response(self._channel_payload(channel["id"]))
        if not self.bot_has(channel["id"], Permission.VIEW_CHANNEL):
            raise _Reject(403, 50001, "Missing Access")
        return _json_response(self._channel_payload(channel["id"], with_guild=True))

    async def _patch_channel(self, request: web.Request) -> web.Response:
        """``PATCH /channels/{id}`` ("Channel Resource" > "Modify Channel"). A guild channel: ``name``
        (1–100), ``topic`` (≤ 1024, forum ≤ 4096) and for a forum ``available_tags`` (see
        :meth:`_build_tags`: ≤ 20, names ≤ 20, unique else 400/40061; tags keep their ids, new ones
        get one); needs View Channel + Manage Channels (403/50013). A thread (the fake's are the
        bot's own): ``name``, ``archived``, ``applied_tags`` (as for a new post). A DM: 400/50003.
        Sends CHANNEL_UPDATE (THREAD_UPDATE) and answers the channel."""
        channel = self._live_channel(request)
        cid = channel["id"]
        body = request[_JSON_KEY] or {}
        if channel["type"] == CHANNEL_DM:
            raise _Reject(400, 50003, "Cannot execute action on a DM channel")
        errors: dict = {}
        if "name" in body and not (isinstance(body["name"], str) and 1 <= len(body["name"]) <= 100):
            _add_error(errors, ("name",), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        if channel["type"] == CHANNEL_PUBLIC_THREAD:
            forum = self._channels[channel["parent_id"]]
            tag_ids = channel["applied_tags"]
            if "applied_tags" in body:
                tag_ids = self._check_applied_tags(errors, forum, body["applied_tags"] or [])
            if errors:
                raise _Reject(400, 50035, "Invalid Form Body", errors)
            if not self._moderated_tags_allowed(forum, tag_ids):
                raise _Reject(403, 50013, "Missing Permissions")
            channel["name"] = body.get("name", channel["name"])
            channel["applied_tags"] = tag_ids
            self._set_archived(channel, bool(body.get("archived", channel["archived"])))
            self._thread_updated(channel)
            return _json_response(self._channel_payload(cid, with_guild=True))
        if not self.bot_has(cid, Permission.VIEW_CHANNEL | Permission.MANAGE_CHANNELS):
            raise _Reject(403, 50013, "Missing Permissions")
        if body.get("topic") is not None:
            _max_len(errors, ("topic",), body["topic"], 4096 if channel["type"] == CHANNEL_GUILD_FORUM else 1024)
        tags, duplicate = channel["available_tags"], 0
        if channel["type"] == CHANNEL_GUILD_FORUM and "available_tags" in body:
            raw = body["available_tags"] or []
            if isinstance(raw, list):
                tags, tag_errors, duplicate = self._build_tags(raw, channel["available_tags"])
                errors.update(tag_errors)
            else:
                _add_error(errors, ("available_tags",), "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
        if errors:
            raise _Reject(400, 50035, "Invalid Form Body", errors)
        if duplicate:
            raise _Reject(400, 40061, "Tag names must be unique")
        channel["name"] = body.get("name", channel["name"])
        if "topic" in body:
            channel["topic"] = body["topic"]
        channel["available_tags"] = tags
        for session in self._sessions_for(channel["guild_id"]):
            session.dispatch("CHANNEL_UPDATE", self._channel_payload(cid, with_guild=True))
        return _json_response(self._channel_payload(cid, with_guild=True))

    async def _post_dm_channel(self, request: web.Request) -> web.Response:
        """``POST /users/@me/channels {"recipient_id"}`` ("User Resource" > "Create DM"): the DM
        channel (type 1, ``recipients``) with that user, the same one on every call. 404/10013
        Unknown User for an unknown id. Opening works with closed DMs; sending then answers 50007."""
        body = request[_JSON_KEY] or {}
        raw = body.get("recipient_id")
        if raw is None or not str(raw).isdigit():
            raise _Reject(
                400,
                50035,
                "Invalid Form Body",
                {"recipient_id": {"_errors": [{"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]}},
            )
        uid = int(raw)
        if uid not in self._users:
            raise _Reject(404, 10013, "Unknown User")
        cid = self._dm_channels.get(uid)
        if cid is None:
            cid = self.snowflake()
            self._channels[cid] = {
                "id": cid,
                "type": CHANNEL_DM,
                "guild_id": None,
                "recipient_id": uid,
                "name": None,
                "overwrites": {},
                "deleted": False,
                "last_message_id": None,
            }
            self._messages[cid] = []
            self._dm_channels[uid] = cid
        return _json_response(self._channel_payload(cid))

    async def _get_attachment(self, request: web.Request) -> web.Response:
        """The CDN-like route ``GET /attachments/{channel}/{id}/{filename}`` (no API prefix, no
        Authorization, like ``cdn.discordapp.com``): the stored bytes with their content type
        (``application/octet-stream`` when unknown); 404 otherwise."""
        info = request.match_info
        try:
            key = (int(info["channel_id"]), int(info["attachment_id"]))
        except ValueError:
            raise _Reject(404, 0, "404: Not Found") from None
        stored = self._cdn.get(key)
        if stored is None or stored[0] != info["filename"]:
            raise _Reject(404, 0, "404: Not Found")
        return web.Response(body=stored[1], headers={"Content-Type": stored[2] or "application/octet-stream"})

    def _request_guild(self, request: web.Request) -> int:
        try:
            gid = int(request.match_info["guild_id"])
        except ValueError:
            raise _Reject(404, 10004, "Unknown Guild") from None
        if gid not in self._guilds:
            raise _Reject(404, 10004, "Unknown Guild")
        return gid

    async def _get_guild(self, request: web.Request) -> web.Response:
        gid = self._request_guild(request)
        data = self._guild_rest_payload(gid)
        if request.query.get("with_counts", "").lower() in ("1", "true"):
            data.update(approximate_member_count=len(self._guilds[gid]["members"]), approximate_presence_count=0)
        return _json_response(data)

    async def _get_guild_channels(self, request: web.Request) -> web.Response:
        gid = self._request_guild(request)
        return _json_response([self._channel_payload(c, with_guild=True) for c in self._guilds[gid]["channel_ids"]])

    async def _get_member(self, request: web.Request) -> web.Response:
        """``GET /guilds/{g}/members/{u}`` ("Guild Resource" > "Get Guild Member"): 404/10007 Unknown
        Member for a user who is not (or no longer, :meth:`remove_member`) a member."""
        gid = self._request_guild(request)
        uid = _snowflake_param(request, "user_id")
        if uid not in self._guilds[gid]["members"]:
            raise _Reject(404, 10007, "Unknown Member")
        return _json_response(self._member_payload(gid, uid))

    async def _get_roles(self, request: web.Request) -> web.Response:
        gid = self._request_guild(request)
        return _json_response(list(self._guilds[gid]["roles"].values()))

    # ----------------------------------------------------------------- gateway

    async def _gateway_handler(self, request: web.Request) -> web.WebSocketResponse:
        """The Gateway ("Gateway" > "Connections"): HELLO, heartbeats → ACK, IDENTIFY → READY + one
        GUILD_CREATE per guild, RESUME → RESUMED (or INVALID_SESSION ``false``), REQUEST_GUILD_MEMBERS
        → one GUILD_MEMBERS_CHUNK. Text JSON frames only, whatever ``compress`` asks."""
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0, timeout=2.0)
        await ws.prepare(request)
        conn = _Connection(self, ws)
        self._connections.add(conn)
        conn.send({"op": OP_HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}, "s": None, "t": None})
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    if msg.type == WSMsgType.BINARY:
                        await ws.close(code=4002, message=b"Error while decoding payload.")
                    continue
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                op = frame.get("op")
                self.gateway_log.append(("recv", op, None))
                await self._on_gateway_frame(conn, op, frame.get("d"))
        finally:
            conn.queue.put_nowait(None)
            self._connections.discard(conn)
            if self._ready is not None and not self._live_sessions():
                self._ready.clear()
        return ws

    async def _on_gateway_frame(self, conn: _Connection, op: int | None, data: Any) -> None:
        if op == OP_HEARTBEAT:
            conn.send({"op": OP_HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == OP_IDENTIFY:
            if conn.session is not None:
                await conn.ws.close(code=4005, message=b"Already authenticated.")
                return
            if not isinstance(data, dict) or data.get("token") != self.token:
                await conn.ws.close(code=4004, message=b"Authentication failed.")
                return
            if "intents" not in data:
                await conn.ws.close(code=4013, message=b"Invalid intent(s).")
                return
            shard = data.get("shard", [0, 1])
            if (
                not isinstance(shard, list)
                or len(shard) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in shard)
                or not 0 <= shard[0] < shard[1]
            ):
                await conn.ws.close(code=4010, message=b"Invalid shard.")
                return
            session = _Session(
                session_id=secrets.token_hex(16),
                intents=int(data["intents"]),
                connection=conn,
                shard_id=shard[0],
                num_shards=shard[1],
                sharded="shard" in data,
            )
            self._sessions[session.session_id] = session
            conn.session = session
            self.identify_count += 1
            guilds = [g for g in self._guilds if session.owns(g)]
            ready = {
                "v": 10,
                "user": self.bot_user,
                "guilds": [{"id": str(g), "unavailable": True} for g in guilds],
                "session_id": session.session_id,
                "resume_gateway_url": self.gateway_url,
                "session_type": "normal",
                "application": {"id": str(self.application_id), "flags": 0},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "user_settings": {},
                "guild_join_requests": [],
                "geo_ordered_rtc_regions": ["fake"],
                "auth_session_id_hash": "",
                "_trace": ['["fake-gateway",{}]'],
            }
            if session.sharded:
                ready["shard"] = [session.shard_id, session.num_shards]
            session.dispatch("READY", ready)
            for gid in guilds:
                session.dispatch("GUILD_CREATE", self._guild_create_payload(gid, session.intents))
            conn.mark(lambda: self._set_ready(session))
        elif op == OP_RESUME:
            data = data if isinstance(data, dict) else {}
            resumed = self._sessions.get(data.get("session_id", ""))
            if data.get("token") != self.token:
                await conn.ws.close(code=4004, message=b"Authentication failed.")
                return
            if resumed is None:
                conn.send({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
                return
            resumed.connection = conn
            resumed.ready = False
            conn.session = resumed
            self.resume_count += 1
            resumed.dispatch("RESUMED", {"_trace": ['["fake-gateway",{}]']})
            conn.mark(lambda: self._set_ready(resumed))
        elif op == OP_REQUEST_MEMBERS:
            data = data if isinstance(data, dict) else {}
            gid = int(data.get("guild_id", 0))
            if conn.session is not None and gid in self._guilds:
                members = [self._member_payload(gid, uid) for uid in self._guilds[gid]["members"]]
                ids = data.get("user_ids")
                if ids:
                    wanted = {str(i) for i in (ids if isinstance(ids, list) else [ids])}
                    members = [m for m in members if m["user"]["id"] in wanted]
                chunk = {"guild_id": str(gid), "members": members, "chunk_index": 0, "chunk_count": 1, "not_found": []}
                if data.get("nonce"):
                    chunk["nonce"] = data["nonce"]
                conn.session.dispatch("GUILD_MEMBERS_CHUNK", chunk)
        elif op in (OP_PRESENCE, OP_VOICE):
            pass
        else:
            await conn.ws.close(code=4001, message=b"Unknown opcode.")

    def _set_ready(self, session: _Session) -> None:
        session.ready = True
        self._ready.set()
        self._ready_changed.set()
