"""The discord.py side: the ``ReleaseBot`` client and the ``DiscordSender`` edge.

In the style of Rapptz/RoboDanny's ``bot.py``: explicit intents (only ``guilds``, no
privileged intent), ``AllowedMentions.none()`` set once on the bot, and
``setup_hook`` opening the store and the HTTP session and loading each cog. The bot is
discord.py's ``AutoShardedBot``: one process runs the shards of ``[discord] shard_ids``
(docs/multiprocess.md, "Shards"), or the single shard ``[0, 1]`` when sharding is not configured.
The REST base URL and gateway URL come from config, so the same unmodified client
talks to Discord or to a Discord-compatible server (the test fake).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import discord
import yarl
from discord.ext import commands

from bot.clock import utcnow
from bot.coordination.coordinator import coordinator_from_settings
from bot.delivery import ChannelUnavailable, Deliverer
from bot.scheduling.runner import Runner
from bot.services import DefaultSchedule, Services
from bot.settings import Settings
from bot.spotify.client import SpotifyClient
from bot.tracking import tracker_from_settings
from bot.tracking.labels import Labeler
from cogs.common import channel_problem_notice, on_app_command_error
from storage import spotify_state
from storage.db import Database, open_database
from storage.models import BotState

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.follows", "cogs.runs", "cogs.settings", "cogs.scheduler", "cogs.imports", "cogs.post_buttons")
RECOVERY_TIMEOUT = 60.0  # seconds start-up may spend settling unconfirmed deliveries (the rest: before the next post)


def point_discord_at(api_base_url: str, gateway_url: str) -> None:
    """Send every discord.py REST call to ``api_base_url`` and connect the gateway to ``gateway_url``.

    discord.py builds every route from ``discord.http.Route.BASE``; a plain ``Client``, and an
    ``AutoShardedClient`` given a ``shard_count`` (as ``ReleaseBot`` always is), connect to
    ``DiscordWebSocket.DEFAULT_GATEWAY`` without asking ``GET /gateway/bot``. Both are class
    attributes, so this is process-wide.
    """
    discord.http.Route.BASE = api_base_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


class DiscordSender:
    """Posts rendered embeds to a channel as the bot's own message (the ``Sender`` of ``bot.delivery``).

    Raises :class:`ChannelUnavailable` when the channel is gone (404) or the bot may
    not post there (403); other ``discord.HTTPException`` s propagate as transient.
    Mentions are never allowed (``AllowedMentions.none()``).
    """

    GONE = "the chosen channel no longer exists"
    FORBIDDEN = (
        "the bot is not allowed to post in the chosen channel (it needs View Channel, Send Messages and Embed Links)"
    )

    def __init__(self, client: discord.Client) -> None:
        self.client = client

    async def send(
        self,
        channel_id: int,
        embeds: list[dict],
        *,
        nonce: str,
        components: list[dict] | None = None,
        content: str | None = None,
        allowed_mentions: dict | None = None,
    ) -> int:
        """Send one message with ``embeds`` (≤ 10, ≤ 6,000 characters); returns its message id.

        ``nonce`` makes discord.py send ``enforce_nonce: true``. ``components`` (Discord
        component dicts: action rows of buttons / selects) are sent as a ``discord.ui.View``
        (:func:`view_from_components`); their interactions are handled elsewhere by ``custom_id``.
        ``content`` with ``allowed_mentions`` (a Discord Allowed Mentions dict): only the
        roles listed there may be pinged; without it nobody is.
        """
        channel = self.client.get_channel(channel_id)
        kwargs: dict = {"allowed_mentions": discord.AllowedMentions.none()}
        if components:
            kwargs["view"] = view_from_components(components)
        if content:
            kwargs["content"] = content
            roles = (allowed_mentions or {}).get("roles") or []
            kwargs["allowed_mentions"] = discord.AllowedMentions(
                everyone=False,
                users=False,
                replied_user=False,
                roles=[discord.Object(int(r)) for r in roles] if roles else False,
            )
        try:
            if channel is None:
                channel = await self.client.fetch_channel(channel_id)
            if not isinstance(channel, discord.abc.Messageable):
                raise ChannelUnavailable("the chosen channel is not a text channel")
            message = await channel.send(
                embeds=[discord.Embed.from_dict(e) for e in embeds],
                nonce=nonce,
                **kwargs,
            )
        except discord.NotFound:
            raise ChannelUnavailable(self.GONE, status=404) from None
        except discord.Forbidden:
            raise ChannelUnavailable(self.FORBIDDEN, status=403) from None
        return message.id

    async def find_posted(self, channel_id: int, album_urls: list[str], *, limit: int = 100) -> dict[str, int]:
        """Among the bot's own ``limit`` latest messages in the channel (``GET /channels/{id}/messages``),
        the id of the (newest) message with an embed whose ``url`` is each of ``album_urls``.

        Raises :class:`ChannelUnavailable` (404 gone, 403 not readable); other errors propagate.
        """
        wanted = set(album_urls)
        found: dict[str, int] = {}
        me = self.client.user.id if self.client.user is not None else None
        channel = self.client.get_partial_messageable(channel_id)
        try:
            async for message in channel.history(limit=limit):
                if me is not None and message.author.id != me:
                    continue
                for embed in message.embeds:
                    if embed.url in wanted and embed.url not in found:
                        found[embed.url] = message.id
                if len(found) == len(wanted):
                    break
        except discord.NotFound:
            raise ChannelUnavailable(self.GONE, status=404) from None
        except discord.Forbidden:
            raise ChannelUnavailable("the bot cannot read the chosen channel's messages", status=403) from None
        return found


_SELECTS = {
    3: discord.ui.Select,
    5: discord.ui.UserSelect,
    6: discord.ui.RoleSelect,
    7: discord.ui.MentionableSelect,
    8: discord.ui.ChannelSelect,
}


def view_from_components(components: list[dict]) -> discord.ui.View:
    """A ``discord.ui.View`` (no timeout, already stopped) carrying Discord component dicts as they are.

    ``components``: action rows (``{"type": 1, "components": [...]}``) of buttons (type 2:
    ``style``, ``label``, ``emoji``, ``custom_id`` or ``url``, ``disabled``) and selects
    (type 3 string select with ``options``; 5–8 user/role/mentionable/channel selects:
    ``custom_id``, ``placeholder``, ``min_values``, ``max_values``, ``disabled``); a bare
    button/select is put in a row of its own. The items have no callbacks: interactions on
    them are dispatched by ``custom_id`` (e.g. ``DynamicItem`` s registered by a cog). The
    view is stopped so discord.py keeps no per-message state for it. Unknown types are skipped.
    """
    view = discord.ui.View(timeout=None)
    rows = [c if c.get("type") == 1 else {"type": 1, "components": [c]} for c in components]
    for r, row in enumerate(rows[:5]):
        for c in row.get("components") or []:
            kind = c.get("type")
            emoji = c.get("emoji")
            if isinstance(emoji, dict):
                emoji = discord.PartialEmoji.from_dict(emoji)
            if kind == 2:
                item: discord.ui.Item = discord.ui.Button(
                    style=discord.ButtonStyle(int(c.get("style", 2))),
                    label=c.get("label"),
                    custom_id=None if c.get("url") else c.get("custom_id"),
                    url=c.get("url"),
                    emoji=emoji,
                    disabled=bool(c.get("disabled", False)),
                    row=r,
                    sku_id=int(c["sku_id"]) if c.get("sku_id") else None,
                )
            elif kind in _SELECTS:
                kwargs: dict = dict(
                    custom_id=c["custom_id"],
                    placeholder=c.get("placeholder"),
                    min_values=int(c.get("min_values", 1)),
                    max_values=int(c.get("max_values", 1)),
                    disabled=bool(c.get("disabled", False)),
                    row=r,
                )
                if kind == 3:
                    kwargs["options"] = [
                        discord.SelectOption(
                            label=o["label"],
                            value=o.get("value", o["label"]),
                            description=o.get("description"),
                            default=bool(o.get("default")),
                            emoji=discord.PartialEmoji.from_dict(o["emoji"])
                            if isinstance(o.get("emoji"), dict)
                            else o.get("emoji"),
                        )
                        for o in c.get("options") or []
                    ]
                elif kind == 8 and c.get("channel_types"):
                    kwargs["channel_types"] = [discord.ChannelType(t) for t in c["channel_types"]]
                item = _SELECTS[kind](**kwargs)
            else:
                log.warning("component type %r is not supported; left out of the post", kind)
                continue
            view.add_item(item)
    view.stop()
    return view


class ReleaseBot(commands.AutoShardedBot):
    """The bot process: store, Spotify client, tracker, delivery, runner, command services and cogs.

    ``clock`` returns aware UTC now (tests inject one); ``settings`` is the loaded config.
    Attributes set in :meth:`setup_hook`: ``db``, ``spotify``, ``deliverer``, ``runner``, ``services``.

    Shards ("Gateway" > "Sharding"): with ``[discord] shard_count`` set the process runs the
    shards ``shard_ids`` of ``shard_count`` and answers the interactions of their guilds only;
    without it, the one shard ``[0, 1]`` (every guild — what an unsharded connection gets), so
    an unconfigured bot behaves as before and one code path serves both. The shard count is
    always given, so discord.py never asks ``GET /gateway/bot`` for a recommendation.
    """

    db: Database
    spotify: SpotifyClient
    deliverer: Deliverer
    runner: Runner
    services: Services

    def __init__(self, settings: Settings, *, clock: Callable[[], dt.datetime] = utcnow) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),
            chunk_guilds_at_startup=False,
            help_command=None,
            shard_count=settings.discord.shard_count or 1,
            shard_ids=list(settings.discord.shard_ids) if settings.discord.shard_ids is not None else None,
        )
        self.settings = settings
        self.clock = clock
        self.http_session: aiohttp.ClientSession | None = None
        point_discord_at(settings.discord.api_base_url, settings.discord.gateway_url)

    async def setup_hook(self) -> None:
        """Open the store (migrating it), create the HTTP session and services, load cogs, sync commands."""
        s = self.settings
        self.db = await open_database(s.database_url, **s.database.engine_options())
        # Several processes may share the store (docs/multiprocess.md): this process's owner id,
        # heartbeat and the database clock every shared decision uses (an injected clock in tests).
        self.coordinator = coordinator_from_settings(self.db, s, clock=None if self.clock is utcnow else self.clock)
        await self.coordinator.start()
        self.clock = self.coordinator.clock
        self.http_session = aiohttp.ClientSession()
        self.spotify = SpotifyClient(
            client_id=s.spotify.client_id.get_secret_value(),
            client_secret=s.spotify.client_secret.get_secret_value(),
            api_base_url=s.spotify.api_base_url,
            accounts_base_url=s.spotify.accounts_base_url,
            market=s.spotify.market,
            session=self.http_session,
            clock=self.clock,
            rate_limit_per_30s=s.spotify.rate_limit_per_30s,
        )
        self.spotify.on_cooldown = self._persist_cooldown
        self.coordinator.on_beat.append(self.share_spotify_state)
        tracker = tracker_from_settings(self.db, self.spotify, s, clock=self.clock, coordinator=self.coordinator)
        self.deliverer = deliverer = Deliverer(
            self.db, DiscordSender(self), clock=self.clock, coordinator=self.coordinator
        )
        labeler = Labeler(self.db, self.spotify, clock=self.clock)
        self.runner = Runner(
            self.db, tracker, deliverer, clock=self.clock, labeler=labeler, coordinator=self.coordinator
        )
        self.services = Services.create(
            db=self.db,
            spotify=self.spotify,
            tracker=tracker,
            runner=self.runner,
            coordinator=self.coordinator,
            clock=self.clock,
            default_schedule=DefaultSchedule(
                s.default_schedule.day, s.default_schedule.time, s.default_schedule.timezone
            ),
        )
        await self.recover()
        self.tree.error(on_app_command_error)
        self.add_listener(channel_problem_notice, "on_app_command_completion")
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.sync_commands_if_changed()

    async def _persist_cooldown(self, cooldown: Any) -> None:
        """The client's ``on_cooldown``: write a quota cooldown to the store as the 429 arrives."""
        async with self.db.sessions() as session:
            await spotify_state.set_cooldown(session, cooldown.until, cooldown.reason)
            await session.commit()

    async def share_spotify_state(self) -> None:
        """At each heartbeat: adopt a cooldown another process stored, and split the rate limit
        between the live processes (one developer account's quota, however many processes)."""
        async with self.db.sessions() as session:
            until, _reason = await spotify_state.get_cooldown(session)
        if (
            until is not None
            and until > self.clock()
            and (self.spotify.cooldown_until is None or self.spotify.cooldown_until < until)
        ):
            self.spotify.cooldown_until = until
        self.spotify.share_rate_limit(len(await self.coordinator.live_owners()))

    async def recover(self) -> None:
        """After a crash: mark runs left ``running`` as failed and settle unconfirmed deliveries.

        Runs in ``setup_hook``, before the gateway connects and before the scheduler starts, so
        nothing is posted before it. Settling reads the channels' recent messages over REST and
        is bounded by ``RECOVERY_TIMEOUT``; what it cannot settle is settled before the next
        delivery to that guild (``Deliverer.deliver``).
        """
        await self.runner.mark_interrupted()
        try:
            await asyncio.wait_for(self.deliverer.recover(), RECOVERY_TIMEOUT)
        except TimeoutError:
            log.warning(
                "settling unconfirmed deliveries took over %.0f s; the rest is settled before the next post",
                RECOVERY_TIMEOUT,
            )

    async def sync_commands_if_changed(self) -> bool:
        """Sync the slash commands only when their definition changed since the last sync.

        Discord limits command creations per day, so syncing on every start (or in
        ``on_ready``, which can fire again) is avoided. Returns True when it synced.
        """
        payload = [c.to_dict(self.tree) for c in self.tree.get_commands()]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        key = f"commands_hash:{self.application_id}"
        # One process syncs, under a lease; the others wait for it and then find the hash stored.
        async with self.coordinator.lease("command-sync", wait_seconds=120), self.db.sessions() as session:
            row = await session.get(BotState, key)
            if row is not None and row.value == digest:
                return False
            await self.tree.sync()
            if row is None:
                session.add(BotState(key=key, value=digest))
            else:
                row.value = digest
            await session.commit()
        log.info("slash commands synced (%d commands)", len(payload))
        return True

    async def close(self) -> None:
        """Unload cogs (stopping the scheduler), close Discord, then Spotify, HTTP and the store."""
        for extension in list(self.extensions):
            try:
                await self.unload_extension(extension)
            except Exception:  # pragma: no cover - best effort on shutdown
                log.exception("unloading %s failed", extension)
        await super().close()
        if self.http_session is not None:
            await self.http_session.close()
        if getattr(self, "coordinator", None) is not None:
            await self.coordinator.stop()
        if getattr(self, "db", None) is not None:
            await self.db.close()
