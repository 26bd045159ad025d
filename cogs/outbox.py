"""The background work after a post: the DM outbox and the crosspost publisher, started in
``cog_load`` and stopped in ``cog_unload``.

As in Red-DiscordBot's streams cog, each loop's lifetime is the cog's: ``DmOutbox.run`` sends the
paced direct messages (``bot.delivery.dm_outbox``) and ``Publisher.run`` retries the crossposts
Discord's publish limit held back (``bot.delivery.publisher``). Both wait for the gateway first, so
nothing is sent before the bot is ready (and start-up's settling of unconfirmed posts is done).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from discord.ext import commands

if TYPE_CHECKING:
    from bot.discord_app.client import ReleaseBot

log = logging.getLogger(__name__)


class Outbox(commands.Cog):
    """Owns the tasks of the DM outbox and of the crosspost publisher (none in a process that posts nothing)."""

    def __init__(self, bot: ReleaseBot) -> None:
        self.bot = bot
        self.tasks: list[asyncio.Task[None]] = []

    async def _after_ready(self, loop: Callable[[], Awaitable[None]]) -> None:
        await self.bot.wait_until_ready()
        await loop()

    async def cog_load(self) -> None:
        """Start the DM outbox and the publisher."""
        core = self.bot.core
        if core.dm_outbox is not None:
            self.tasks.append(asyncio.create_task(self._after_ready(core.dm_outbox.run), name="dm-outbox"))
        if core.publisher is not None:
            self.tasks.append(asyncio.create_task(self._after_ready(core.publisher.run), name="crosspost-publisher"))

    async def cog_unload(self) -> None:
        """Stop both loops (a DM or crosspost in flight is settled after a restart: see their modules)."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()


async def setup(bot: ReleaseBot) -> None:
    """discord.py extension entry point."""
    await bot.add_cog(Outbox(bot))
