"""The weekly poster: starts the due scan in ``cog_load`` and stops it in ``cog_unload``.

As in Red-DiscordBot's streams cog, the poller's lifetime is the cog's; each
guild's failure is isolated inside the run (see ``bot.scheduling.runner``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from discord.ext import commands

from bot.scheduling.scanner import DueScanner

if TYPE_CHECKING:
    from bot.discord_app.client import ReleaseBot

log = logging.getLogger(__name__)


class Scheduler(commands.Cog):
    """Owns the :class:`DueScanner` that runs the guilds whose weekly post is due."""

    def __init__(self, bot: ReleaseBot) -> None:
        self.bot = bot
        self.scanner = DueScanner(self.scan, bot.settings.due_scan.interval_seconds)

    async def scan(self) -> None:
        """Wait for the gateway, then run every guild that is due (none: no Spotify request)."""
        await self.bot.wait_until_ready()
        summary = await self.bot.core.runner.run_due()
        if summary is not None:
            log.info("scheduled run %s: %s, %d posted", summary.run_id, summary.status, summary.releases_posted)

    async def cog_load(self) -> None:
        """Start the due scan."""
        self.scanner.start()

    async def cog_unload(self) -> None:
        """Stop the due scan (a run in progress gets its grace period: ``DueScanner.shutdown``)."""
        await self.scanner.shutdown()


async def setup(bot: ReleaseBot) -> None:
    """discord.py extension entry point."""
    await bot.add_cog(Scheduler(bot))
