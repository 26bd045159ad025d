"""``cogs.scheduler``: the cog owns the two APScheduler jobs — the due scan, always, and the release-day scan
(docs/musicdata.md, "Release day"), only when the prober is built; the release-day job waits for the
gateway, makes the due probes at its first tick, and both jobs stop on unload."""

from __future__ import annotations

import asyncio
import datetime as dt
from unittest.mock import AsyncMock, MagicMock, create_autospec

from bot.discord_app.client import ReleaseBot
from bot.scheduling.release_day import ProbeOutcome, ReleaseDayProber
from bot.scheduling.runner import Runner
from bot.scheduling.scanner import JOB_ID, RELEASE_DAY_JOB_ID, DueScanner
from bot.settings import Settings
from bot.wiring import Core
from cogs.scheduler import Scheduler
from fakes.stack import wait_for


async def stopped(*scanners: DueScanner) -> None:
    """Wait (bounded) until the scanners' schedulers have stopped (APScheduler's asyncio scheduler
    stops on the next turn of the loop after ``shutdown``)."""
    await wait_for(lambda: not any(s.scheduler.running for s in scanners), timeout=5, what="schedulers stopped")


def bot_with(prober: ReleaseDayProber | None) -> MagicMock:
    bot = MagicMock(spec=ReleaseBot)
    bot.settings = Settings()
    bot.wait_until_ready = AsyncMock()
    bot.core = create_autospec(Core, instance=True)
    bot.core.runner = create_autospec(Runner, instance=True)
    bot.core.runner.run_due.return_value = None  # nothing due
    bot.core.release_day = prober
    return bot


async def test_the_release_day_job_makes_the_due_probes_and_stops_on_unload():
    scanned = asyncio.Event()

    async def scan() -> list[ProbeOutcome]:
        scanned.set()
        return [ProbeOutcome("mbid", dt.date(2026, 11, 20), 1, found="spotify-album")]

    prober = create_autospec(ReleaseDayProber, instance=True)
    prober.scan.side_effect = scan
    bot = bot_with(prober)
    cog = Scheduler(bot)
    await cog.cog_load()
    try:
        assert cog.release_day_scanner.scheduler.running and cog.scanner.scheduler.running
        assert cog.release_day_scanner.scheduler.get_job(RELEASE_DAY_JOB_ID) is not None
        await asyncio.wait_for(scanned.wait(), 5)  # the first tick at once (start-up catch-up)
        bot.wait_until_ready.assert_awaited()
        assert cog.release_day_scanner.interval_seconds == bot.settings.release_day.interval_seconds
    finally:
        await cog.cog_unload()
    await stopped(cog.release_day_scanner, cog.scanner)


async def test_without_the_prober_only_the_due_scan_runs():
    bot = bot_with(None)
    cog = Scheduler(bot)
    await cog.cog_load()
    try:
        assert cog.scanner.scheduler.running and cog.scanner.scheduler.get_job(JOB_ID) is not None
        assert not cog.release_day_scanner.scheduler.running
        await cog.scan_release_day()  # a tick reaching it anyway does nothing
    finally:
        await cog.cog_unload()
    await stopped(cog.scanner)


async def test_unload_lets_a_probe_in_progress_finish():
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[bool] = []

    async def scan() -> list[ProbeOutcome]:
        started.set()
        await release.wait()
        finished.append(True)
        return []

    prober = create_autospec(ReleaseDayProber, instance=True)
    prober.scan.side_effect = scan
    cog = Scheduler(bot_with(prober))
    await cog.cog_load()
    await asyncio.wait_for(started.wait(), 5)
    unloading = asyncio.create_task(cog.cog_unload())
    await asyncio.sleep(0)  # the unload has paused the scheduler and waits for the probe
    assert not unloading.done()
    release.set()
    await asyncio.wait_for(unloading, 5)
    assert finished == [True]
    await stopped(cog.release_day_scanner)
