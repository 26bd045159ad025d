"""Posts Discord failed are retried by the due scan on a back-off (minutes, then hours), delivery only;
a stopping runner stops at its next post; a run the store failed is closed once it answers.

Runner over a real store (SQLite and PostgreSQL), the Spotify emulator and a fake sender; an injected
clock, so the back-off is checked without waiting."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from bot.coordination.coordinator import Coordinator
from bot.delivery import Deliverer
from bot.delivery.sending import RateLimited
from bot.scheduling.runner import STOPPED, STORE_FAILED, Runner
from bot.tracking import Tracker
from fakes.spotify_emulator import SpotifyEmulator
from storage import guilds
from storage.db import open_database
from storage.models import Guild, Run
from tests.bot.helpers import ledger
from tests.bot.scheduling.test_runner import World

MIN = 60.0


class DiscordDown(Exception):
    """What discord.py raises for a 5xx after its retries (``DiscordServerError``: ``status``)."""

    def __init__(self, status: int = 503) -> None:
        super().__init__(f"{status} Service Unavailable")
        self.status = status


@pytest.fixture
async def world(db, clock):
    async with SpotifyEmulator() as emu:
        world = World(db, clock, emu)
        try:
            yield world
        finally:
            for client in world.clients:
                await client.close()


async def retry_of(db, guild_id: int) -> guilds.DeliveryRetry:
    async with db.transaction() as session:
        retry = await guilds.delivery_retry(session, guild_id)
    assert retry is not None
    return retry


async def three_new_releases(world: World, clock) -> None:
    artist = await world.artist("Pitbull")
    await world.follow(1, artist)
    for i in range(3):
        world.release(artist, f"New {i}", "2026-11-21")


async def test_failed_posts_are_retried_on_the_backoff_without_spotify_and_reset_on_success(world, clock):
    await three_new_releases(world, clock)
    world.sender.fail_with = DiscordDown(503)
    summary = await world.runner.run("schedule")
    result = summary.deliveries[1]
    assert summary.status == "partial" and result.pending == 3 and result.failure == "Discord failed: 503"
    assert result.retry_at == clock() + dt.timedelta(minutes=2)
    retry = await retry_of(world.db, 1)
    assert (retry.retry_at, retry.failures, retry.error) == (result.retry_at, 1, "Discord failed: 503")
    requests = len(world.emu.request_log)
    # Not before it is due; then 2 min, 10 min, 30 min, 1 h … while Discord keeps failing.
    clock.advance(seconds=119)
    assert await world.runner.run_due() is None
    waits = []
    for _ in range(5):
        retry = await retry_of(world.db, 1)
        clock.now = retry.retry_at
        summary = await world.runner.run_due()
        assert summary is not None and summary.trigger == "retry" and summary.releases_posted == 0
        waits.append((await retry_of(world.db, 1)).retry_at - clock())
    assert waits == [dt.timedelta(seconds=s) for s in (600, 1800, 3600, 7200, 14400)]
    assert (await retry_of(world.db, 1)).failures == 6
    # Discord answers again: the retry posts each release once, and the back-off is reset.
    world.sender.fail_with = None
    clock.now = (await retry_of(world.db, 1)).retry_at
    summary = await world.runner.run_due()
    assert summary is not None and summary.trigger == "retry" and summary.status == "ok"
    assert summary.releases_posted == 3 and summary.spotify_requests == 0
    assert sorted(world.posted()) == ["New 0", "New 1", "New 2"]
    assert await retry_of(world.db, 1) == guilds.DeliveryRetry(None, 0, None)
    assert len(world.emu.request_log) == requests  # a retry asks Spotify nothing
    clock.advance(hours=7)
    assert await world.runner.run_due() is None and len(world.posted()) == 3
    async with world.db.transaction() as session:
        retries = (await session.scalars(select(Run).where(Run.trigger == "retry"))).all()
    assert len(retries) == 6 and {r.guild_id for r in retries} == {1}


async def test_the_backoff_is_capped_at_six_hours(world, clock):
    await three_new_releases(world, clock)
    world.sender.fail_with = DiscordDown(502)
    await world.runner.run("schedule")
    for _ in range(9):
        clock.now = (await retry_of(world.db, 1)).retry_at
        await world.runner.run_due()
    retry = await retry_of(world.db, 1)
    assert retry.failures == 10 and retry.retry_at - clock() == dt.timedelta(hours=6)


async def test_a_long_429_is_waited_out_before_the_retry(world, clock):
    await three_new_releases(world, clock)
    world.sender.fail_with = RateLimited(900.0)  # a global 429 beyond max_ratelimit_timeout
    summary = await world.runner.run("schedule")
    assert summary.deliveries[1].failure == "Discord rate limit: retry after 900 s"
    assert summary.deliveries[1].retry_at == clock() + dt.timedelta(seconds=900)  # not after 2 min
    world.sender.fail_with = None
    clock.advance(seconds=600)
    assert await world.runner.run_due() is None
    clock.advance(seconds=300)
    assert (await world.runner.run_due()).releases_posted == 3


async def test_a_weekly_run_that_posts_clears_a_waiting_retry(world, clock):
    await three_new_releases(world, clock)
    world.sender.fail_with, world.sender.fail_times = ConnectionResetError("reset"), 1
    summary = await world.runner.run("schedule")
    assert summary.deliveries[1].failure == "network error: ConnectionResetError"
    summary = await world.runner.run("refresh", [1])
    assert summary.releases_posted == 3 and summary.deliveries[1].retry_at is None
    assert await retry_of(world.db, 1) == guilds.DeliveryRetry(None, 0, None)
    clock.advance(minutes=5)
    assert await world.runner.run_due() is None


async def test_a_retry_runs_once_across_two_processes(db, clock):
    """Two processes (coordinators on one store, two engines) scan at the same moment: one leases the
    guild's retry and posts each release once."""
    async with SpotifyEmulator() as emu, aiohttp.ClientSession():
        url = db.engine.url.render_as_string(hide_password=False)
        other = await open_database(url, migrate=False)
        world = World(db, clock, emu)
        try:
            await three_new_releases(world, clock)
            procs = []
            for i, store in enumerate((db, other)):
                co = Coordinator(store, clock=clock, lease_seconds=30, heartbeat_seconds=5, owner=f"p{i}")
                await co.start()
                tracker = Tracker(store, world.spotify, clock=clock, coordinator=co)
                deliverer = Deliverer(store, world.sender, clock=clock, coordinator=co)
                procs.append((co, Runner(store, tracker, deliverer, clock=clock, coordinator=co)))
            world.sender.fail_with = DiscordDown(500)
            await procs[0][1].run("refresh", [1])
            world.sender.fail_with = None
            clock.now = (await retry_of(db, 1)).retry_at
            summaries = await asyncio.gather(*(runner.run_due() for _co, runner in procs))
            assert sorted(s is not None for s in summaries) == [False, True]
            assert sorted(world.posted()) == ["New 0", "New 1", "New 2"]
            assert {r.status for r in await ledger(db, 1)} == {"sent"}
            async with db.transaction() as session:
                assert (await session.get(Guild, 1)).lease_owner is None
            for co, _runner in procs:
                await co.stop()
        finally:
            for client in world.clients:
                await client.close()
            await other.close()


class SlowSender:
    """Wraps a sender: each send waits until ``release`` is set (a post in flight)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def send(self, *args, **kwargs):
        self.started.set()
        await self.release.wait()
        return await self.inner.send(*args, **kwargs)


async def test_a_stopping_runner_finishes_the_post_in_flight_and_leaves_the_rest_due(world, db, clock):
    artist = await world.artist("Pitbull")
    for g in (1, 2, 3):
        await world.follow(g, artist, channel_id=100 * g)
    world.release(artist, "New", "2026-11-21")
    slow = SlowSender(world.sender)
    world.deliverer.sender = slow
    async with db.transaction() as session:
        due_before = {g.id: g.next_due_at for g in await guilds.guilds_by_ids(session, None)}
    clock.now = max(due_before.values())
    run = asyncio.create_task(world.runner.run_due())
    await asyncio.wait_for(slow.started.wait(), 10)
    stop = asyncio.create_task(world.runner.stop(7.0))
    await asyncio.sleep(0.05)
    slow.release.set()  # the post in flight is answered within the grace
    assert await stop is True
    summary = await run
    assert summary.status == "partial" and STOPPED in summary.error
    assert world.posted() == ["New"]  # the post in flight: sent and confirmed; no new one claimed
    assert {r.status for r in await ledger(db, 1)} == {"sent"}
    assert await ledger(db, 2) == [] and await ledger(db, 3) == []
    async with db.transaction() as session:
        due_after = {g.id: g.next_due_at for g in await guilds.guilds_by_ids(session, None)}
        run_row = await session.get(Run, summary.run_id)
    assert due_after[1] > clock()  # delivered in full: its week moves on
    assert (due_after[2], due_after[3]) == (due_before[2], due_before[3])  # stay due: the next process runs them
    assert run_row.status == "partial"
    with pytest.raises(Exception, match="shutting down"):
        await world.runner.run("refresh", [2])
    # A new process (not stopping) posts the rest, each once.
    world.restart()
    assert (await world.runner.run_due()).releases_posted == 2
    assert world.posted(100) == world.posted(200) == world.posted(300) == ["New"]


class FlakyDatabase:
    """A store whose transactions raise ``OperationalError`` while ``failing`` (the server went away)."""

    def __init__(self, db) -> None:
        self.db = db
        self.failing = False

    def __getattr__(self, name):
        return getattr(self.db, name)

    def _check(self) -> None:
        if self.failing:
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("the database server is gone"))

    @contextlib.asynccontextmanager
    async def transaction(self):
        self._check()
        async with self.db.transaction() as session:
            yield session

    async def retrying(self, work, **kwargs):
        self._check()
        return await self.db.retrying(work, **kwargs)


class StoreFailsAfterTracking:
    """A tracker whose first run is followed by a store outage (``store.failing`` set once it tracked)."""

    def __init__(self, tracker, store: FlakyDatabase) -> None:
        self.tracker, self.store, self.outages = tracker, store, 1

    def __getattr__(self, name):
        return getattr(self.tracker, name)

    async def track(self, *args, **kwargs):
        result = await self.tracker.track(*args, **kwargs)
        if self.outages:
            self.outages -= 1
            self.store.failing = True
        return result


@pytest.mark.parametrize("with_coordinator", [False, True])
async def test_a_run_cut_off_by_a_store_failure_is_closed_once_the_store_answers(world, db, clock, with_coordinator):
    artist = await world.artist("Pitbull")
    await world.follow(1, artist)
    world.release(artist, "New", "2026-11-21")
    flaky = FlakyDatabase(db)
    co = None
    if with_coordinator:
        co = Coordinator(db, clock=clock, lease_seconds=30, heartbeat_seconds=5, owner="me")
        await co.start()
    runner = Runner(
        flaky,  # type: ignore[arg-type]  # a Database as the runner uses it
        StoreFailsAfterTracking(world.tracker, flaky),
        world.deliverer,
        clock=clock,
        coordinator=co,
    )
    with pytest.raises(OperationalError):
        await runner.run("refresh", [1])
    async with db.transaction() as session:
        (row,) = (await session.scalars(select(Run))).all()
    assert row.status == "running"  # the store could not be told
    # Still down: the scan fails and keeps the run to close.
    with pytest.raises(OperationalError):
        await runner.run_due()
    flaky.failing = False
    clock.advance(minutes=1)
    await runner.run_due()  # the store answers: the scan closes it
    async with db.transaction() as session:
        row = await session.get(Run, row.id)
    # Its work was done (the release posted); only its record was lost: closed partial, with its counts.
    assert row.status == "partial" and STORE_FAILED in row.error and "OperationalError" in row.error
    assert row.releases_posted == 1 and row.artists_checked == 1 and row.finished_at is not None
    assert runner.unclosed == {}
    # A later run is unaffected; the release (delivered before the outage) is not posted again.
    summary = await runner.run("refresh", [1])
    assert summary.status == "ok" and world.posted() == ["New"]
    async with db.transaction() as session:
        assert (await session.get(Run, summary.run_id)).status == "ok"
    if co is not None:
        await co.stop()


async def test_the_scan_closes_this_process_s_own_runs_left_running(world, db, clock):
    co = Coordinator(db, clock=clock, lease_seconds=30, heartbeat_seconds=5, owner="me")
    await co.start()
    runner = Runner(db, world.tracker, world.deliverer, clock=clock, coordinator=co)
    from storage import runs

    async with db.transaction() as session:
        mine = await runs.start_run(
            session, trigger="schedule", guild_id=None, started_at=clock(), artists_due=0, owner="me"
        )
        theirs = await runs.start_run(
            session, trigger="schedule", guild_id=None, started_at=clock(), artists_due=0, owner="other"
        )
    assert await runner.close_unclosed() == 1
    async with db.transaction() as session:
        assert (await session.get(Run, mine)).status == "failed"
        assert (await session.get(Run, theirs)).status == "running"  # another process's: never touched
    await co.stop()


async def test_a_run_cancelled_during_a_store_outage_is_closed_failed_once_it_answers(world, db, clock):
    artist = await world.artist("Pitbull")
    await world.follow(1, artist)
    flaky = FlakyDatabase(db)

    class CancelledInOutage(StoreFailsAfterTracking):
        async def track(self, *args, **kwargs):
            self.store.failing = True
            raise asyncio.CancelledError()  # e.g. cancelled by a stop while the store is down

    runner = Runner(flaky, CancelledInOutage(world.tracker, flaky), world.deliverer, clock=clock)  # type: ignore[arg-type]
    with pytest.raises(asyncio.CancelledError):
        await runner.run("refresh", [1])
    flaky.failing = False
    assert await runner.close_unclosed() == 1
    async with db.transaction() as session:
        (row,) = (await session.scalars(select(Run))).all()
    assert row.status == "failed" and "CancelledError" in row.error and STORE_FAILED in row.error
