"""SIGTERM (``docker stop``) and SIGINT (Ctrl-C) stop ``release-bot run`` gracefully, as real processes.

Two processes (shards [0] and [1] of 2) on one store share a weekly run of six guilds, two messages
each. The one whose first post is in flight (Discord answers it 500, discord.py retries it after 1 s)
gets the signal: it exits 0 within 10 s, says so in its log, its post in flight is sent and confirmed,
its run is recorded ``partial`` ("stopped"), and its process row, guild leases and named leases are
gone, so the other process takes its remaining work over at once — the half-delivered guild's second
message too (the lease lasts 30 s: a take-over after expiry would come far too late for the test).
At the end every release is in every guild's channel exactly once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import re
import time

import pytest
from sqlalchemy import select, update

from bot.cli.check import run_check
from bot.settings import load_settings
from fakes.discord_fake import DiscordFake
from fakes.spotify_emulator import SpotifyEmulator
from storage.db import open_database
from storage.models import Delivery, Guild, Lease, Process, Run
from tests import backend
from tests.e2e.processes import (
    BotProcess,
    log_alarms,
    owner_pid,
    posted_albums,
    process_config,
    seed_world,
    shard_configs,
    until,
)

pytestmark = pytest.mark.timeout(120)

LEASE_SECONDS = 30  # far longer than the take-over the test waits for: only a released lease explains it
GUILDS = 6
CHANNEL_RE = re.compile(r"/channels/(\d+)/messages")


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT"])
async def test_a_signal_stops_a_process_mid_run_gracefully_and_the_other_takes_over_at_once(tmp_path, how):
    async with DiscordFake(nonce_window=0.0) as fake, SpotifyEmulator() as emu:
        artists = [emu.add_artist(f"Artist {i}", followers=1000 * (i + 1)) for i in range(3)]
        for i, a in enumerate(artists):
            emu.add_album([a], f"Old {i}", album_type="album", release_date="2024-01-01")
        db_url = backend.database_url(tmp_path, "stop")
        configs = shard_configs(tmp_path, fake, emu, db_url, lease_seconds=LEASE_SECONDS)
        db = await open_database(db_url)
        procs = [BotProcess(configs[s], tmp_path, f"shard-{s}") for s in (0, 1)]
        try:
            channels = await seed_world(
                db,
                fake,
                dict.fromkeys(range(GUILDS), artists),
                {a: f"Artist {i}" for i, a in enumerate(artists)},
                shard_count=2,
                now=dt.datetime.now(dt.UTC),
            )
            guild_of = {c: g for g, c in channels.items()}
            out, err = io.StringIO(), io.StringIO()
            assert await run_check(load_settings(configs[0], {}), [], out=out, err=err) == 0, err.getvalue()
            for s in (0, 1):
                await procs[s].start()
            await until(lambda: {x["shard"][0] for x in fake.sessions if x["ready"]} == {0, 1}, 60, "both shards")
            # 12 new singles: two messages per guild (at most 10 embeds each), so the guild whose post is in
            # flight is left half-delivered by the stop.
            new = [
                emu.add_album([a], f"New {i}.{j}", album_type="single", release_date="2026-11-20")
                for i, a in enumerate(artists)
                for j in range(4)
            ]
            # The first post of the run is answered 500 twice: discord.py retries it after 1 s and 3 s.
            fake.fail_next(2, status=500, path_contains="/messages", method="POST")
            due = dt.datetime.now(dt.UTC)  # after the baselines: a due time before them would make the artists fresh
            async with db.sessions() as session:
                await session.execute(update(Guild).values(next_due_at=due))
                await session.commit()
            first = await until(
                lambda: [r for r in fake.requests("POST", "/messages") if r.status == 500], 30, "the first post"
            )
            match = CHANNEL_RE.search(first[0].path)
            assert match is not None, first[0].path
            channel = int(match.group(1))
            async with db.sessions() as session:
                holder = await session.scalar(select(Guild.lease_owner).where(Guild.id == guild_of[channel]))
            victim = next(p for p in procs if p.pid == owner_pid(holder))
            survivor = next(p for p in procs if p is not victim)
            victim_owner = holder
            async with db.sessions() as session:
                held = (await session.scalars(select(Guild.id).where(Guild.lease_owner == victim_owner))).all()
            code, seconds = await (victim.terminate() if how == "SIGTERM" else victim.interrupt())
            t_exit = time.monotonic()
            assert code == 0, victim.log()[-3000:]
            assert seconds < 10, seconds
            text = victim.log()
            assert f"received {how}: stopping gracefully" in text and "stopped gracefully in" in text, text[-3000:]
            # Everything it held was given up as it stopped.
            async with db.sessions() as session:
                assert await session.get(Process, victim_owner) is None
                assert (await session.scalars(select(Guild.id).where(Guild.lease_owner == victim_owner))).all() == []
                assert (await session.scalars(select(Lease.name).where(Lease.owner == victim_owner))).all() == []
                # Its post in flight was sent and confirmed, not left claimed.
                claimed = (
                    await session.scalars(
                        select(Delivery.release_id).where(Delivery.status == "claimed", Delivery.owner == victim_owner)
                    )
                ).all()
            assert claimed == []
            async with db.sessions() as session:
                run = (await session.scalars(select(Run).where(Run.owner == victim_owner).order_by(Run.id))).all()[-1]
            assert run.status == "partial" and "stopped: the bot shut down" in (run.error or ""), run.error

            async def all_ran() -> bool:
                async with db.sessions() as session:
                    rows = (await session.execute(select(Guild.next_due_at))).scalars().all()
                return all(r > due for r in rows)

            await until(all_ran, 20, "the survivor to run the stopped process's guilds")
            takeover = time.monotonic() - t_exit
            # The guild whose first message was in flight got its second one from the other process.
            async with db.sessions() as session:
                owners = set(
                    (await session.scalars(select(Delivery.owner).where(Delivery.guild_id == guild_of[channel]))).all()
                )
            assert victim_owner in owners and len(owners) == 2, owners
            assert takeover < LEASE_SECONDS / 2, takeover  # at once: not after the lease's expiry
            code, _ = await survivor.terminate()
            assert code == 0, survivor.log()[-3000:]
        finally:
            for p in procs:
                if p.alive:
                    await p.kill()
            await db.close()
        for g, c in channels.items():
            posted, other = posted_albums(fake, c)
            assert posted == dict.fromkeys(new, 1) and other == 0, (g, posted)
        assert not log_alarms(victim.log()) and not log_alarms(survivor.log())
        print(
            f"\n{how}: exit 0 after {seconds:.1f} s, holding {len(held)} guilds, one half-delivered; "
            f"the other process finished the run {takeover:.1f} s later"
        )


@pytest.mark.parametrize("delay", [1.0, 2.5])
async def test_a_signal_during_start_up_exits_0_and_leaves_no_process_row(tmp_path, delay):
    """``docker stop`` right after ``docker start``: whatever start-up was doing (loading, migrating,
    settling, syncing commands, connecting), the process exits 0 within 10 s and leaves nothing held.
    (In the interpreter's first few tenths of a second, before the command line runs, the default
    action still applies: exit -15, with nothing held yet.)"""
    async with DiscordFake() as fake, SpotifyEmulator() as emu:
        guild = fake.add_guild("Boot Club")
        fake.add_channel(guild, "new-music")
        db_url = backend.database_url(tmp_path, "boot")
        config = tmp_path / "config.toml"
        config.write_text(process_config(fake, emu, db_url))
        bot = BotProcess(config, tmp_path, "bot")
        await bot.start()
        try:
            await asyncio.sleep(delay)
            code, seconds = await bot.terminate()
        finally:
            if bot.alive:
                await bot.kill()
        assert code == 0 and seconds < 10, (code, seconds, bot.log()[-3000:])
        db = await open_database(db_url)
        try:
            async with db.sessions() as session:
                assert (await session.scalars(select(Process.id))).all() == []
        finally:
            await db.close()
