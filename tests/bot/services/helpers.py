"""The command services over a real store, the Spotify emulator (a real HTTP server on loopback) and a
fake Discord sender, with an injected clock: what the ``bot/services`` tests build on."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from bot.coordination.coordinator import Coordinator
from bot.delivery import Deliverer
from bot.scheduling.runner import Runner
from bot.services import DefaultSchedule, Services
from bot.spotify.client import SpotifyClient
from bot.tracking import Tracker
from fakes.spotify_emulator import SpotifyEmulator
from storage.db import Database
from tests.bot.helpers import FakeSender
from tests.conftest import FakeClock

SCHEDULE = DefaultSchedule(day=4, time="12:00", timezone="UTC")


@dataclass
class World:
    """The services and what they talk to: ``emu`` (Spotify), ``spotify`` (the real client), ``sender``
    (what was posted to Discord), ``db`` and ``clock``."""

    db: Database
    clock: FakeClock
    emu: SpotifyEmulator
    spotify: SpotifyClient
    tracker: Tracker
    sender: FakeSender
    runner: Runner
    coordinator: Coordinator
    services: Services


@contextlib.asynccontextmanager
async def services_world(
    db: Database,
    clock: FakeClock,
    *,
    requests_per_day: int = 0,
    max_follows: int = 500,
    emu: SpotifyEmulator | None = None,
) -> AsyncIterator[World]:
    """A :class:`World` on ``db`` (a second one on the same database gives a second bot process)."""
    async with contextlib.AsyncExitStack() as stack:
        if emu is None:
            emu = await stack.enter_async_context(SpotifyEmulator())
        spotify = SpotifyClient(
            client_id=emu.client_id,
            client_secret=emu.client_secret,
            api_base_url=emu.api_base_url,
            accounts_base_url=emu.accounts_base_url,
            clock=clock,
            max_retries=0,
        )
        stack.push_async_callback(spotify.close)
        coordinator = Coordinator(db, clock=clock)
        tracker = Tracker(db, spotify, clock=clock, requests_per_day=requests_per_day)
        sender = FakeSender()
        runner = Runner(db, tracker, Deliverer(db, sender, clock=clock), clock=clock)
        services = Services.create(
            db=db,
            spotify=spotify,
            tracker=tracker,
            runner=runner,
            coordinator=coordinator,
            clock=clock,
            default_schedule=SCHEDULE,
            max_follows_per_guild=max_follows,
        )
        yield World(db, clock, emu, spotify, tracker, sender, runner, coordinator, services)
