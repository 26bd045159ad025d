"""``bot.coordination.coordinator``: several bot processes on one store (issue 8 §2).

Each guild's weekly run once, each artist fetched once per due time, posts exactly once,
recovery touching only what a dead process left. Each "process" is a full stack (engine,
coordinator, Spotify client, tracker, deliverer, runner) of its own on the same database and
the same Spotify emulator.

One developer account's Spotify quota, however many processes: the QUOTA_EXCEEDED cooldown is
written to the store on the 429 itself and every other process adopts it at its next heartbeat
(search and autocomplete included); the database clock corrects a skewed host clock.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt

import aiohttp
import pytest
from sqlalchemy import select, update

from bot.coordination.coordinator import Coordinator
from bot.delivery import Deliverer
from bot.scheduling.runner import Runner
from bot.settings import DatabaseSettings, Settings, SpotifySettings
from bot.spotify.client import SpotifyClient
from bot.spotify.errors import SpotifyCooldown
from bot.tracking import Tracker
from bot.wiring import build_core
from fakes.spotify_emulator import SpotifyEmulator
from storage import spotify_state
from storage.db import Database, open_database
from storage.models import Delivery, Guild, Run
from tests.bot.helpers import FakeSender, add_guild, follow
from tests.conftest import FakeClock

UTC = dt.UTC


async def no_wait(_seconds: float) -> None:
    return None


class ChannelSender(FakeSender):
    """A FakeSender that can read its channels back (``find_posted``), as the Discord sender does."""

    async def find_posted(self, channel_id: int, album_urls: list[str], *, limit: int = 100) -> dict[str, int]:
        posted = {e["url"]: 1 for ch, embeds, _ in self.messages if ch == channel_id for e in embeds}
        return {u: posted[u] for u in album_urls if u in posted}


class Process:
    """One bot process: its own engine on the shared database, its coordinator and stack."""

    def __init__(
        self,
        db: Database,
        emu: SpotifyEmulator,
        http: aiohttp.ClientSession,
        clock: FakeClock,
        sender: FakeSender,
        name: str,
        **tracker_kwargs,
    ) -> None:
        self.db = db
        self.coordinator = Coordinator(db, clock=clock, lease_seconds=30, heartbeat_seconds=5, owner=name)
        self.spotify = SpotifyClient(
            client_id=emu.client_id,
            client_secret=emu.client_secret,
            api_base_url=emu.api_base_url,
            accounts_base_url=emu.accounts_base_url,
            session=http,
            clock=clock,
            sleep=no_wait,
        )
        self.tracker = Tracker(db, self.spotify, clock=clock, coordinator=self.coordinator, **tracker_kwargs)
        self.tracker.claim_poll_seconds = 0.05
        self.deliverer = Deliverer(db, sender, clock=clock, coordinator=self.coordinator)
        self.runner = Runner(db, self.tracker, self.deliverer, clock=clock, coordinator=self.coordinator)


@pytest.fixture
async def world(db, clock):
    async with SpotifyEmulator() as emu, aiohttp.ClientSession() as http:
        url = db.engine.url.render_as_string(hide_password=False)
        engines = [db] + [await open_database(url, migrate=False) for _ in range(2)]
        sender = ChannelSender()
        procs = [Process(e, emu, http, clock, sender, f"p{i}") for i, e in enumerate(engines)]
        for p in procs:
            await p.coordinator.start()
        try:
            yield emu, procs, sender
        finally:
            for p in procs:
                await p.coordinator.stop()
            for e in engines[1:]:
                await e.close()


async def _setup(emu, procs, clock, *, guilds: int, artists: int) -> list[str]:
    db = procs[0].db
    ids = []
    for i in range(artists):
        a = emu.add_artist(f"Artist {i}")
        emu.add_album([a], f"Old {i}", release_date="2020-01-01")
        ids.append(a)
    for g in range(1, guilds + 1):
        await add_guild(db, g, now=clock(), channel_id=1000 + g)
        for k in range(3):  # overlapping follows: artist i is followed by several guilds
            await follow(db, g, ids[(g * 3 + k) % artists], now=clock())
    for a in ids:
        await procs[0].tracker.baseline(a)
    clock.advance(minutes=1)
    due = clock() + dt.timedelta(minutes=5)
    async with db.sessions() as session:
        await session.execute(update(Guild).values(next_due_at=due))
        await session.commit()
    return ids


async def test_three_processes_run_each_due_guild_once_and_fetch_each_artist_once(world, clock):
    emu, procs, sender = world
    ids = await _setup(emu, procs, clock, guilds=24, artists=20)
    for i, a in enumerate(ids):
        emu.add_album([a], f"New {i}", album_type="single", release_date="2026-11-27")
    emu.clear_log()
    clock.advance(minutes=10)
    for p in procs:  # all three are alive now (the injected clock does not beat by itself)
        await p.coordinator.beat()
    summaries = []
    for _scan in range(6):  # each process leases its share per scan; a later scan takes what is left
        summaries += await asyncio.gather(*(p.runner.run_due() for p in procs))
    fetched = collections.Counter(r.path.split("/")[3] for r in emu.requests_to("/albums") if "/artists/" in r.path)
    assert fetched and max(fetched.values()) == 1 and set(fetched) == set(ids)  # one fetch per artist
    ran = [g for s in summaries if s is not None for g in s.guild_ids]
    assert sorted(ran) == list(range(1, 25))  # every due guild by exactly one process
    assert len({s.run_id for s in summaries[:3] if s is not None}) >= 2  # the first scan split the slot
    posted = collections.Counter((ch, e["url"]) for ch, embeds, _ in sender.messages for e in embeds)
    assert max(posted.values()) == 1 and len(posted) == 24 * 3  # each guild its 3 releases, once
    async with procs[0].db.sessions() as session:
        guilds = (await session.scalars(select(Guild))).all()
        assert all(g.next_due_at > clock() and g.lease_owner is None for g in guilds)
    # A second scan finds nothing due: nothing runs or posts again.
    messages = len(sender.messages)
    assert await asyncio.gather(*(p.runner.run_due() for p in procs)) == [None, None, None]
    assert len(sender.messages) == messages


async def test_a_live_processs_claims_and_runs_are_not_settled_by_another(world, clock):
    emu, procs, _sender = world
    await _setup(emu, procs, clock, guilds=2, artists=3)
    db = procs[0].db
    async with db.sessions() as session:
        from storage.models import Release

        session.add(
            Release(
                id="r" * 22,
                name="In flight",
                album_type="album",
                artists=[],
                release_date="2026",
                release_date_precision="year",
                first_seen_at=clock(),
                labels=[],
            )
        )
        await session.flush()
        session.add(
            Delivery(guild_id=1, release_id="r" * 22, status="claimed", channel_id=1001, claimed_at=clock(), owner="p1")
        )
        session.add(Run(trigger="schedule", status="running", started_at=clock(), owner="p1"))
        await session.commit()
    for p in procs:  # every process beats (the injected clock moved on since they started)
        await p.coordinator.beat()
    # p2 starts up while p1 is alive: it must leave p1's in-flight claim and run alone.
    assert await procs[2].runner.mark_interrupted() == 0
    untouched = await procs[2].deliverer.recover()
    assert (untouched.confirmed, untouched.released, untouched.unresolved) == (0, 0, 0)
    async with db.sessions() as session:
        assert (await session.scalars(select(Delivery))).one().status == "claimed"
    # p1 dies: after its lease time, p2's recovery takes both over.
    await procs[1].coordinator.stop()
    await procs[1].coordinator.start()  # registered again, then silent
    procs[1].coordinator._task.cancel()
    clock.advance(seconds=31)
    await procs[2].coordinator.beat()
    await procs[0].coordinator.beat()
    assert await procs[2].runner.mark_interrupted() == 1
    result = await procs[2].deliverer.recover()
    assert result.released == 1  # not in the channel: released, posted by the next run


async def test_a_refresh_guard_holds_across_processes(world, clock):
    _emu, procs, _sender = world
    assert await procs[0].coordinator.try_lease("refresh:1")
    assert not await procs[1].coordinator.try_lease("refresh:1")
    await procs[0].coordinator.release("refresh:1")
    assert await procs[1].coordinator.try_lease("refresh:1")


# --- one Spotify quota for every process ------------------------------------------------


async def test_a_quota_429_stops_every_process_including_search(db, clock):
    """Two processes built as every process is (``bot.wiring.build_core``): the hooks do it all."""
    url = db.engine.url.render_as_string(hide_password=False)
    async with SpotifyEmulator() as emu, aiohttp.ClientSession() as http:
        artist = emu.add_artist("Quota Queen")

        def settings(rate_limit_per_30s: int) -> Settings:
            return Settings(
                spotify=SpotifySettings(
                    client_id=emu.client_id,
                    client_secret=emu.client_secret,
                    api_base_url=emu.api_base_url,
                    accounts_base_url=emu.accounts_base_url,
                    rate_limit_per_30s=rate_limit_per_30s,
                ),
                database=DatabaseSettings(url=url),
            )

        a = await build_core(settings(0), clock=clock, session=http, sleep=no_wait, owner="a", migrate=False)
        b = await build_core(settings(150), clock=clock, session=http, sleep=no_wait, owner="b", migrate=False)
        async with a, b:
            emu.fail_next(1, status=429, retry_after=86400, reason="QUOTA_EXCEEDED")
            with pytest.raises(SpotifyCooldown):
                await a.spotify.get_artist(artist)
            async with db.sessions() as session:  # written on the 429 itself, not at the end of a run
                until, reason = await spotify_state.get_cooldown(session)
            assert until is not None and until > clock() + dt.timedelta(hours=23) and reason == "QUOTA_EXCEEDED"
            # Process b has not been told by Spotify; its next heartbeat adopts the cooldown.
            assert (await b.spotify.search_artists("Quota")) != []
            await b.coordinator.beat()
            with pytest.raises(SpotifyCooldown):
                await b.spotify.search_artists("Quota")
            # Two live processes: each may send half of the account's rolling-window limit.
            assert b.spotify.rate_share == 2
