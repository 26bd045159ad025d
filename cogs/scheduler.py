"""The weekly poster: starts the due scan in ``cog_load`` and stops it in ``cog_unload``.

As in Red-DiscordBot's streams cog, the poller's lifetime is the cog's; each
guild's failure is isolated inside the run (see ``bot.scheduling.runner``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from discord.ext import commands

from bot.scheduling.scanner import RELEASE_DAY_JOB_ID, DueScanner

if TYPE_CHECKING:
    from bot.discord_app.client import ReleaseBot

log = logging.getLogger(__name__)

UNLOAD_GRACE = 1.0  # seconds a scan still running at unload gets before it is cancelled


class Scheduler(commands.Cog):
    """Owns the :class:`DueScanner` that runs the guilds whose weekly post is due."""

    def __init__(self, bot: ReleaseBot) -> None:
        self.bot = bot
        self.scanner = DueScanner(self.scan, bot.settings.due_scan.interval_seconds)
        # Release-day probes (docs/musicdata.md): their own interval job, so a long weekly run's scan
        # never delays the look (the probe itself waits for the run: runs never overlap).
        self.release_day_scanner = DueScanner(
            self.scan_release_day, bot.settings.release_day.interval_seconds, job_id=RELEASE_DAY_JOB_ID
        )

    async def scan(self) -> None:
        """Wait for the gateway, then run every guild that is due (none: no Spotify request)."""
        await self.bot.wait_until_ready()
        summary = await self.bot.core.runner.run_due()
        if summary is not None:
            log.info("scheduled run %s: %s, %d posted", summary.run_id, summary.status, summary.releases_posted)

    async def scan_release_day(self) -> None:
        """Wait for the gateway, then make the release-day probes that are due (none: no Spotify request)."""
        await self.bot.wait_until_ready()
        prober = self.bot.core.release_day
        if prober is None:
            return
        for probe in await prober.scan():
            if probe.found is not None:
                log.info("release-day probe found %s for %s", probe.found, probe.mbid)

    async def cog_load(self) -> None:
        """Start the due scan, and the release-day scan when the prober is built ([musicbrainz] enabled)."""
        self.scanner.start()
        if self.bot.core.release_day is not None:
            self.release_day_scanner.start()

    async def cog_unload(self) -> None:
        """Stop both scans at once. At shutdown the bot has stopped its runner first (``Runner.stop``:
        the run in progress had its grace), so a scan still running ends within ``UNLOAD_GRACE`` seconds
        or is cancelled (``DueScanner.shutdown``)."""
        await asyncio.gather(self.release_day_scanner.shutdown(UNLOAD_GRACE), self.scanner.shutdown(UNLOAD_GRACE))


async def setup(bot: ReleaseBot) -> None:
    """discord.py extension entry point."""
    await bot.add_cog(Scheduler(bot))
