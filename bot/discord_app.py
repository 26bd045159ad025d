"""The discord.py side: the ``ReleaseBot`` client and the ``DiscordSender`` edge.

In the style of Rapptz/RoboDanny's ``bot.py``: explicit intents (only ``guilds``, no
privileged intent), ``AllowedMentions.none()`` set once on the bot, and
``setup_hook`` opening the store and the HTTP session and loading each cog.
The REST base URL and gateway URL come from config, so the same unmodified client
talks to Discord or to a Discord-compatible server (the test fake).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from typing import Callable

import aiohttp
import discord
import yarl
from discord.ext import commands

from bot.config import Settings
from bot.delivery import ChannelUnavailable, Deliverer
from bot.runner import Runner
from bot.service import ReleaseService
from bot.spotify.client import SpotifyClient
from bot.tracking import tracker_from_settings
from bot.tracking.labels import Labeler
from cogs.common import on_app_command_error
from storage.db import Database, open_database
from storage.models import BotState

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.follows", "cogs.runs", "cogs.settings", "cogs.scheduler")


def utcnow() -> dt.datetime:
    """Aware UTC now."""
    return dt.datetime.now(dt.timezone.utc)


def point_discord_at(api_base_url: str, gateway_url: str) -> None:
    """Send every discord.py REST call to ``api_base_url`` and connect the gateway to ``gateway_url``.

    discord.py builds every route from ``discord.http.Route.BASE`` and a plain
    ``Client`` connects to ``DiscordWebSocket.DEFAULT_GATEWAY`` (it never asks
    ``GET /gateway/bot``). Both are class attributes, so this is process-wide.
    """
    discord.http.Route.BASE = api_base_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


class DiscordSender:
    """Posts rendered embeds to a channel as the bot's own message (the ``Sender`` of ``bot.delivery``).

    Raises :class:`ChannelUnavailable` when the channel is gone (404) or the bot may
    not post there (403); other ``discord.HTTPException`` s propagate as transient.
    Mentions are never allowed (``AllowedMentions.none()``).
    """

    def __init__(self, client: discord.Client) -> None:
        self.client = client

    async def send(self, channel_id: int, embeds: list[dict], *, nonce: str) -> int:
        """Send one message with ``embeds`` (≤ 10, ≤ 6,000 characters); returns its message id."""
        channel = self.client.get_channel(channel_id)
        try:
            if channel is None:
                channel = await self.client.fetch_channel(channel_id)
            if not isinstance(channel, discord.abc.Messageable):
                raise ChannelUnavailable("the chosen channel is not a text channel")
            message = await channel.send(
                embeds=[discord.Embed.from_dict(e) for e in embeds],
                nonce=nonce,
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.NotFound:
            raise ChannelUnavailable("the chosen channel no longer exists") from None
        except discord.Forbidden:
            raise ChannelUnavailable("the bot is not allowed to post in the chosen channel "
                                     "(it needs View Channel, Send Messages and Embed Links)") from None
        return message.id


class ReleaseBot(commands.Bot):
    """The bot process: store, Spotify client, tracker, delivery, runner, service and cogs.

    ``clock`` returns aware UTC now (tests inject one); ``settings`` is the loaded config.
    Attributes set in :meth:`setup_hook`: ``db``, ``spotify``, ``runner``, ``service``.
    """

    db: Database
    spotify: SpotifyClient
    runner: Runner
    service: ReleaseService

    def __init__(self, settings: Settings, *, clock: Callable[[], dt.datetime] = utcnow) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),
            chunk_guilds_at_startup=False,
            help_command=None,
        )
        self.settings = settings
        self.clock = clock
        self.http_session: aiohttp.ClientSession | None = None
        point_discord_at(settings.discord.api_base_url, settings.discord.gateway_url)

    async def setup_hook(self) -> None:
        """Open the store (migrating it), create the HTTP session and services, load cogs, sync commands."""
        s = self.settings
        self.db = await open_database(s.database_url)
        self.http_session = aiohttp.ClientSession()
        self.spotify = SpotifyClient(
            client_id=s.spotify.client_id,
            client_secret=s.spotify.client_secret,
            api_base_url=s.spotify.api_base_url,
            accounts_base_url=s.spotify.accounts_base_url,
            market=s.spotify.market,
            session=self.http_session,
            clock=self.clock,
            rate_limit_per_30s=s.spotify.rate_limit_per_30s,
        )
        tracker = tracker_from_settings(self.db, self.spotify, s, clock=self.clock)
        deliverer = Deliverer(self.db, DiscordSender(self), clock=self.clock)
        labeler = Labeler(self.db, self.spotify, clock=self.clock)
        self.runner = Runner(self.db, tracker, deliverer, clock=self.clock, labeler=labeler)
        self.service = ReleaseService(
            self.db, self.spotify, tracker, self.runner, clock=self.clock, default_schedule=s.schedule
        )
        self.tree.error(on_app_command_error)
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.sync_commands_if_changed()

    async def sync_commands_if_changed(self) -> bool:
        """Sync the slash commands only when their definition changed since the last sync.

        Discord limits command creations per day, so syncing on every start (or in
        ``on_ready``, which can fire again) is avoided. Returns True when it synced.
        """
        payload = [c.to_dict(self.tree) for c in self.tree.get_commands()]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        key = f"commands_hash:{self.application_id}"
        async with self.db.sessions() as session:
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
        if getattr(self, "db", None) is not None:
            await self.db.close()
