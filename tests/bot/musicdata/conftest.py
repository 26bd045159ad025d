"""Fixtures of the music-data tests: the MusicBrainz and ListenBrainz emulators on the test's clock, an HTTP
session, and simulated sleeping that moves that clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from fakes.listenbrainz_emulator import ListenBrainzEmulator
from fakes.musicbrainz_emulator import MusicBrainzEmulator
from tests.conftest import FakeClock


class SimulatedSleep:
    """``await sleep(seconds)`` that moves the test's clock instead of waiting; ``calls`` lists the waits."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.clock.advance(seconds=seconds)


@pytest.fixture
def sleep(clock: FakeClock) -> SimulatedSleep:
    return SimulatedSleep(clock)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def mb(clock: FakeClock) -> AsyncIterator[MusicBrainzEmulator]:
    """MusicBrainz ws/2 on loopback, one request a second per client (503 above), on the test's clock."""
    async with MusicBrainzEmulator(clock=clock) as emulator:
        yield emulator


@pytest.fixture
async def lb(clock: FakeClock) -> AsyncIterator[ListenBrainzEmulator]:
    """ListenBrainz on loopback (30 requests per 10 s), on the test's clock."""
    async with ListenBrainzEmulator(clock=clock) as emulator:
        yield emulator
