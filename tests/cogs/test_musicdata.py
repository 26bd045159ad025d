"""``cogs.musicdata``: the cog owns the task that runs the free signal's daily job — started on load when the
signal is enabled, never when it is not, looking again after a failure, cancelled on unload."""

from __future__ import annotations

import asyncio
from unittest.mock import MagicMock, create_autospec

from bot.discord_app.client import ReleaseBot
from bot.musicdata import MusicDataError, MusicSignal
from bot.wiring import Core
from cogs import musicdata
from cogs.musicdata import MusicData


def bot_with(signal: MusicSignal | None) -> MagicMock:
    bot = MagicMock(spec=ReleaseBot)
    bot.core = create_autospec(Core, instance=True)
    bot.core.musicdata = signal
    return bot


async def test_loading_starts_the_daily_job_and_unloading_stops_it(monkeypatch):
    monkeypatch.setattr(musicdata, "CHECK_EVERY_SECONDS", 0.0)
    third_look = asyncio.Event()
    looks: list[int] = []

    async def run_daily() -> None:
        looks.append(1)
        if len(looks) == 1:
            raise MusicDataError("ListenBrainz", "down")
        if len(looks) == 3:
            third_look.set()

    signal = create_autospec(MusicSignal, instance=True)
    signal.run_daily.side_effect = run_daily
    cog = MusicData(bot_with(signal))
    await cog.cog_load()
    await asyncio.wait_for(third_look.wait(), 5)  # a failure is logged, and the next look comes
    task = cog.task
    assert task is not None
    await cog.cog_unload()
    assert task.cancelled() and cog.task is None


async def test_nothing_runs_when_the_signal_is_not_enabled():
    cog = MusicData(bot_with(None))
    await cog.cog_load()
    assert cog.task is None
    await cog.cog_unload()
