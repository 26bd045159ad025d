"""The discord.py client: :class:`ReleaseBot`.

In the style of Rapptz/RoboDanny's ``bot.py``: explicit intents (only ``guilds``, no
privileged intent), ``AllowedMentions.none()`` set once on the bot, ``max_ratelimit_timeout`` so a long
429 is raised instead of slept out inside discord.py (:data:`MAX_RATELIMIT_TIMEOUT`), and ``setup_hook``
building the process's :class:`bot.wiring.Core` (store, coordinator, HTTP session, Spotify,
runner, command services), registering the post buttons and loading each extension by name.
The bot is discord.py's ``AutoShardedBot``: one process runs the shards of ``[discord] shard_ids``
(docs/multiprocess.md, "Shards"), or the single shard ``[0, 1]`` when sharding is not configured.
The REST base URL and gateway URL come from config, so the same unmodified client
talks to Discord or to a Discord-compatible server (the test fake).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging

import discord
from discord.ext import commands

from bot.clock import Clock
from bot.discord_app.interactions import ContextCommandTree
from bot.discord_app.post_buttons import POST_BUTTON_ITEMS
from bot.discord_app.sender import DiscordSender, point_discord_at
from bot.ops.http import OpsServer, ops_server
from bot.ops.metrics import Metrics
from bot.services import Services
from bot.settings import Settings
from bot.wiring import Core, Sleep, build_core
from storage import bot_state

log = logging.getLogger(__name__)

EXTENSIONS = (
    "cogs.notices",
    "cogs.follows",
    "cogs.runs",
    "cogs.settings",
    "cogs.scheduler",
    "cogs.outbox",
    "cogs.imports",
    "cogs.notify",
    "cogs.musicdata",
    "cogs.upcoming",
)
RECOVERY_TIMEOUT = 60.0  # seconds start-up may spend settling unconfirmed deliveries (the rest: before the next post)
COMMAND_SYNC_WAIT = 120.0  # seconds a process waits for another one's command sync
#: seconds of a 429 discord.py may sleep out by itself; a longer one (Discord's crosspost limit answers
#: up to an hour) raises ``discord.RateLimited`` at once, and the crosspost waits in the ledger instead
#: (discord.py's minimum is 30)
MAX_RATELIMIT_TIMEOUT = 30.0
#: seconds a run in progress gets at shutdown to stop at its next step (a post being sent finishes and
#: is confirmed) before it is cancelled; the rest of the stop fits in the remaining 3 s of the 10 s
#: that ``docker stop`` allows (docs/operations.md, "Stopping")
SHUTDOWN_GRACE = 7.0


class ReleaseBot(commands.AutoShardedBot):
    """The bot process: its :class:`Core` (built in :meth:`setup_hook`), the post buttons and the cogs.

    ``settings``: the loaded config; ``clock``: aware UTC now for every shared decision (tests
    inject one; None: the database's clock); ``sleep``: the Spotify and music-data clients' waits
    between retries (tests inject one; None: ``asyncio.sleep``). ``core`` exists once :meth:`setup_hook` ran;
    ``services`` (the cogs' entry point) is ``core.services``.

    Shards ("Gateway" > "Sharding"): with ``[discord] shard_count`` set the process runs the
    shards ``shard_ids`` of ``shard_count`` and answers the interactions of their guilds only;
    without it, the one shard ``[0, 1]`` (every guild — what an unsharded connection gets), so
    an unconfigured bot behaves as before and one code path serves both. The shard count is
    always given, so discord.py never asks ``GET /gateway/bot`` for a recommendation.
    """

    def __init__(self, settings: Settings, *, clock: Clock | None = None, sleep: Sleep | None = None) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),
            max_ratelimit_timeout=MAX_RATELIMIT_TIMEOUT,
            chunk_guilds_at_startup=False,
            help_command=None,
            tree_cls=ContextCommandTree,  # interactions log with their guild_id and shard
            shard_count=settings.discord.shard_count or 1,
            shard_ids=list(settings.discord.shard_ids or (0,)),  # unsharded: the one shard [0, 1]
        )
        self.settings = settings
        self._clock = clock
        self._sleep = sleep
        self._core: Core | None = None
        self._ops: OpsServer | None = None  # /metrics, /livez, /readyz when [http] port is set
        self._ready_shards: set[int] = set()
        self._closing: asyncio.Task[None] | None = None
        point_discord_at(settings.discord.api_base_url, settings.discord.gateway_url)

    @property
    def core(self) -> Core:
        """This process's object graph. Raises ``RuntimeError`` before :meth:`setup_hook` built it."""
        if self._core is None:
            raise RuntimeError("ReleaseBot.core is built by setup_hook (the bot has not started)")
        return self._core

    @property
    def services(self) -> Services:
        """The command services the cogs and post buttons call (``core.services``)."""
        return self.core.services

    async def setup_hook(self) -> None:
        """Build the core (store migrated, coordinator started, HTTP session opened), settle what a
        crash left, register the post buttons, load the extensions and sync the commands if changed.
        With ``[http] port`` set, the operations endpoints listen from here on (docs/operations.md)."""
        metrics = Metrics() if self.settings.http.port is not None else None
        if metrics is not None:
            metrics.shards = self.shard_states
        self._core = await build_core(
            self.settings,
            sender=DiscordSender(self),
            clock=self._clock,
            sleep=self._sleep or asyncio.sleep,
            metrics=metrics,
        )
        self._ops = await ops_server(self.settings.http, self._core, self.shard_states)
        if self.is_stopping():  # stopped during start-up: nothing more to start (finish_close ends it)
            return
        await self.recover()
        if self.is_stopping():
            return
        # Registered with the bot, not by a cog: this process posts these buttons (DiscordSender),
        # so it answers them for as long as it runs, whatever extension is loaded.
        self.add_dynamic_items(*POST_BUTTON_ITEMS)
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.sync_commands_if_changed()

    @property
    def ops(self) -> OpsServer | None:
        """The operations endpoints (``/metrics``, ``/livez``, ``/readyz``), None while ``[http]`` is off or before start."""
        return self._ops

    def shard_states(self) -> dict[int, tuple[bool, float | None]]:
        """``{shard id: (ready, gateway latency in seconds or None)}`` of this process's shards, for
        ``/readyz`` and the metrics: ready from ``on_shard_ready``/``on_shard_resumed`` until
        ``on_shard_disconnect``; the latency is discord.py's heartbeat round trip."""
        states: dict[int, tuple[bool, float | None]] = {}
        for shard_id in self.shard_ids or [0]:
            info = self.shards.get(shard_id)
            ready = info is not None and not info.is_closed() and shard_id in self._ready_shards
            states[shard_id] = (ready, None if info is None else info.latency)
        return states

    async def on_shard_ready(self, shard_id: int) -> None:
        self._ready_shards.add(shard_id)

    async def on_shard_resumed(self, shard_id: int) -> None:
        self._ready_shards.add(shard_id)

    async def on_shard_disconnect(self, shard_id: int) -> None:
        self._ready_shards.discard(shard_id)

    async def recover(self) -> None:
        """After a crash: mark runs left ``running`` as failed and settle unconfirmed deliveries.

        Runs in ``setup_hook``, before the gateway connects and before the scheduler starts, so
        nothing is posted before it. Settling reads the channels' recent messages over REST and
        is bounded by ``RECOVERY_TIMEOUT``; what it cannot settle is settled before the next
        delivery to that guild (``Deliverer.deliver``).
        """
        core = self.core
        await core.runner.mark_interrupted()
        if core.deliverer is None:
            return
        try:
            await asyncio.wait_for(core.deliverer.recover(), RECOVERY_TIMEOUT)
        except TimeoutError:
            log.warning(
                "settling unconfirmed deliveries took over %.0f s; the rest is settled before the next post",
                RECOVERY_TIMEOUT,
            )

    async def sync_commands_if_changed(self) -> bool:
        """Sync the slash commands only when their definition changed since the last sync.

        Discord limits command creations per day, so syncing on every start (or in
        ``on_ready``, which can fire again) is avoided. The definition's hash is kept in
        ``bot_state`` per application. One process syncs, under the named lease ``command-sync``;
        the others wait for it (up to ``COMMAND_SYNC_WAIT`` seconds) and then find the hash
        stored. Returns True when it synced.
        """
        core = self.core
        payload = [c.to_dict(self.tree) for c in self.tree.get_commands()]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        key = bot_state.commands_hash_key(self.application_id)
        async with core.coordinator.lease("command-sync", wait_seconds=COMMAND_SYNC_WAIT):
            async with core.db.transaction() as session:
                if await bot_state.read(session, key) == digest:
                    return False
            await self.tree.sync()
            async with core.db.transaction() as session:
                await bot_state.write(session, key, digest)
        log.info("slash commands synced (%d commands)", len(payload))
        return True

    async def close(self) -> None:
        """Stop gracefully: the runner (a run in progress gets :data:`SHUTDOWN_GRACE` seconds to stop at its
        next step, then is cancelled), the extensions (the scans, the DM and crosspost loops), Discord, then
        the core (Spotify, HTTP, the coordinator giving up this process's leases and row, the store).

        Idempotent: a second call (a second signal, ``async with``) waits for the first one's stop.
        """
        if self._closing is None:
            self._closing = asyncio.create_task(self._close(), name="release-bot-close")
        await asyncio.shield(self._closing)

    def is_stopping(self) -> bool:
        """True once :meth:`close` began (a stop signal, or the end of ``async with``)."""
        return self._closing is not None

    async def finish_close(self) -> None:
        """After ``start`` returned from a stop that began during start-up: stop what start-up went on to
        build or start after it (the core, the extensions), as :meth:`close` does. Idempotent."""
        await self._close()

    async def _close(self) -> None:
        if self._core is not None:
            try:
                if not await self._core.runner.stop(SHUTDOWN_GRACE):
                    log.warning("a run was cancelled at shutdown; recovery settles what it left claimed")
            except Exception:  # stopping must go on: the leases are given up below whatever happens
                log.exception("stopping the runner failed")
        for extension in list(self.extensions):
            try:
                await self.unload_extension(extension)
            except Exception:  # shutting down: one extension's failure must not keep the rest open
                log.exception("unloading %s failed", extension)
        await super().close()
        if self._ops is not None:
            ops, self._ops = self._ops, None
            await ops.stop()
        if self._core is not None:
            await self._core.close()
