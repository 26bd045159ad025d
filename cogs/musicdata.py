"""The free second signal's daily job (docs/musicdata.md): its lifetime is this cog's.

``cog_load`` starts a background task that calls ``MusicSignal.run_daily`` at start-up and every
:data:`CHECK_EVERY_SECONDS`, each time followed by ``Announcer.run`` (the announced releases of the guilds
with ``/settings upcoming`` on: new posts, edits, claims to settle; a few reads when there is nothing to
do); ``cog_unload`` cancels it. Every process runs the task, and the job
itself (a named lease and a claim of the UTC day) makes the fetch happen once a day across them.
Nothing starts when ``[musicbrainz] enabled`` is false (``core.musicdata`` is None).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from discord.ext import commands

from bot.delivery.upcoming import Announcer
from bot.musicdata import MusicSignal

if TYPE_CHECKING:
    from bot.discord_app.client import ReleaseBot

log = logging.getLogger(__name__)

CHECK_EVERY_SECONDS = 900.0
"""Seconds between two looks at whether today's job is done (a done day costs one read)."""


class MusicData(commands.Cog):
    """Owns the task that runs the free signal's daily job (none when it is not enabled)."""

    def __init__(self, bot: ReleaseBot) -> None:
        self.bot = bot
        self.task: asyncio.Task[None] | None = None

    async def run_forever(self, signal: MusicSignal, announcer: Announcer | None = None) -> None:
        """Run the daily job now and every :data:`CHECK_EVERY_SECONDS`, then the announcements (when this
        process posts); a failure is logged and retried at the next look (the day was given back)."""
        while True:
            try:
                await signal.run_daily()
            except Exception:
                log.exception("music data: the daily job failed; it is tried again in %.0f s", CHECK_EVERY_SECONDS)
            if announcer is not None:
                try:
                    await announcer.run()
                except Exception:
                    log.exception("announced releases failed; tried again in %.0f s", CHECK_EVERY_SECONDS)
            await asyncio.sleep(CHECK_EVERY_SECONDS)

    async def cog_load(self) -> None:
        """Start the task when the signal is enabled."""
        signal = self.bot.core.musicdata
        if signal is not None:
            self.task = asyncio.create_task(
                self.run_forever(signal, self.bot.core.announcer), name="release-bot-musicdata"
            )

    async def cog_unload(self) -> None:
        """Cancel the task (a job in progress gives its day back: the next start fetches)."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None


async def setup(bot: ReleaseBot) -> None:
    """discord.py extension entry point."""
    await bot.add_cog(MusicData(bot))
