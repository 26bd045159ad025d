"""``bot.musicdata.pacing``: one request a second to MusicBrainz across processes.

Two "processes" — each its own ``Database`` engine on one store, its own :class:`SharedRateLimit` and
:class:`MusicBrainzClient` — send lookups at the same time to one emulator that answers 503 to a request
less than a second after the one before (a token bucket of one). Time is simulated: a sleeper wakes only
when every process is asleep, at the earliest wake-up time, so requests reach the emulator exactly when
the pacing lets them go. Shared, the processes never exceed the limit; each with its own store (a pacing
that is not shared), they do, and the emulator answers 503 — so the check can fail.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.musicdata import MusicBrainzClient, SharedRateLimit, user_agent
from fakes.musicbrainz_emulator import MusicBrainzEmulator
from storage.db import Database, open_database
from tests import backend
from tests.conftest import FakeClock

LOOKUPS_EACH = 6


class VirtualTime:
    """Simulated time for ``workers`` concurrent tasks: ``await sleep(s)`` parks the caller until the clock
    reaches now + ``s``; the clock moves to the earliest wake-up only once every live worker is parked."""

    def __init__(self, clock: FakeClock, workers: int) -> None:
        self.clock = clock
        self.workers = workers
        self._order = itertools.count()
        self._parked: list[tuple[float, int, asyncio.Future[None]]] = []

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._parked, (self.clock().timestamp() + seconds, next(self._order), future))
        self._advance()
        await future

    def done(self) -> None:
        """A worker finished: the others no longer wait for it."""
        self.workers -= 1
        self._advance()

    def _advance(self) -> None:
        if self._parked and len(self._parked) >= self.workers:
            at, _, future = heapq.heappop(self._parked)
            self.clock.advance(seconds=max(0.0, at - self.clock().timestamp()))
            future.set_result(None)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def mbid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


async def lookups_at_once(
    urls: list[str], clock: FakeClock, http: aiohttp.ClientSession, *, migrate: bool = False
) -> MusicBrainzEmulator:
    """Two processes (one engine on each of ``urls``, migrated first when ``migrate``) each make
    :data:`LOOKUPS_EACH` lookups, concurrently."""
    async with MusicBrainzEmulator(clock=clock) as mb:
        for n in range(2 * LOOKUPS_EACH):
            mb.add_artist(mbid(f"a{n}"), f"A{n}", spotify_id=f"artist{n:02d}")
        time = VirtualTime(clock, workers=2)
        engines: list[Database] = [await open_database(url, migrate=migrate) for url in urls]
        try:
            clients = [
                MusicBrainzClient(
                    base_url=mb.base_url,
                    user_agent=user_agent("ops@example.org"),
                    http=http,
                    rate_limit=SharedRateLimit(engine, "musicbrainz", clock=clock, sleep=time.sleep),
                )
                for engine in engines
            ]

            async def process(index: int) -> None:
                try:
                    for n in range(index, 2 * LOOKUPS_EACH, 2):
                        found = await clients[index].artist_mbids([f"artist{n:02d}"])
                        assert found == {f"artist{n:02d}": (mbid(f"a{n}"),)}
                finally:
                    time.done()

            await asyncio.wait_for(asyncio.gather(process(0), process(1)), 60)
        finally:
            for engine in engines:
                await engine.close()
        return mb


async def test_two_processes_on_one_store_never_exceed_one_request_a_second(db, clock, http):
    url = db.engine.url.render_as_string(hide_password=False)
    mb = await lookups_at_once([url, url], clock, http)
    assert [r.status for r in mb.request_log] == [200] * (2 * LOOKUPS_EACH)  # no 503: never above the limit
    times = [r.at for r in mb.request_log]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert gaps == [1.0] * (2 * LOOKUPS_EACH - 1)  # one a second, and no slower
    assert len({r.query["resource"][0] for r in mb.request_log}) == 2 * LOOKUPS_EACH  # each lookup once


async def test_two_processes_each_pacing_alone_go_above_the_limit(tmp_path, clock, http):
    """The control: each process with its own store paces only itself; together they are refused."""
    urls = [backend.database_url(tmp_path, "alone0"), backend.database_url(tmp_path, "alone1")]
    mb = await lookups_at_once(urls, clock, http, migrate=True)
    statuses = [r.status for r in mb.request_log]
    assert statuses.count(503) > 0 and statuses.count(200) == 2 * LOOKUPS_EACH  # retried after holding off


async def test_an_idle_limit_lets_a_request_go_at_once_and_holding_off_delays_the_next(db, clock):
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds=seconds)

    pacing = SharedRateLimit(db, "musicbrainz", clock=clock, sleep=sleep)
    await pacing.wait_turn()
    assert waits == []
    clock.advance(seconds=5)
    await pacing.wait_turn()
    await pacing.wait_turn()
    assert waits == [1.0]
    await pacing.hold_off(10)
    await pacing.wait_turn()
    assert waits == [1.0, 10.0] and pacing.waited_seconds == 11.0
    with pytest.raises(ValueError):
        SharedRateLimit(db, "x", interval_seconds=0)
