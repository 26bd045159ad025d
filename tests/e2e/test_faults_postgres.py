"""PostgreSQL taken away in the middle of a weekly run of a real ``release-bot run`` process.

A server of the test's own (:mod:`tests.e2e.pg_server`), so it can be stopped and started:
restarted (stop, start at once) while the run checks artists at Spotify, restarted while the run
posts, and stopped for an outage of :data:`OUTAGE_SECONDS` while the run posts (the issue asks
for about 20 s; 5 s cuts the same connections, scans and heartbeats and keeps the test short).
Four guilds follow 24 artists; each artist has a new release the run is to post. The process runs
with the default ``[coordination]`` (60 s leases), must stay up, and in the end every release is in
every following guild's channel exactly once (the Discord fake's nonce window is 0, so no
duplicate is hidden), every guild's weekly due time moved on, and no run is left ``running``: the
run finishes, or is cut off and the next scans catch up within seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import time
from collections import Counter

import pytest
from sqlalchemy import select, update

from bot.cli.check import run_check
from bot.settings import load_settings
from fakes.discord_fake import DiscordFake
from fakes.spotify_emulator import SpotifyEmulator
from storage.db import open_database
from storage.models import Guild, Run
from tests.e2e.pg_server import PgServer, pg_server  # noqa: F401 - the fixture
from tests.e2e.processes import BotProcess, posted_albums, process_config, seed_world, until

pytestmark = pytest.mark.timeout(120)

ARTISTS = 24
GUILDS = 4
#: seconds the database is away in the outage test (the issue's "about 20 s" outage, shortened: what
#: matters is that connections fail for several scans, heartbeats and posts, not its length)
OUTAGE_SECONDS = 5.0


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _none_running(runs) -> bool:
    return all(r.status != "running" for r in await runs)


async def run_through_fault(tmp_path, server: PgServer, *, during: str, outage: float | None) -> dict:
    """Seed, baseline, start the bot, make every guild due, take the database away ``during``
    ``"tracking"`` (after a third of the artists' listings were asked for) or ``"delivery"`` (after the
    first post): a restart when ``outage`` is None, else stopped for ``outage`` seconds. Returns figures."""
    t0 = time.monotonic()
    async with DiscordFake(nonce_window=0.0) as fake, SpotifyEmulator() as emu:
        artists = [emu.add_artist(f"Artist {i}", followers=100 * (i + 1)) for i in range(ARTISTS)]
        for i, a in enumerate(artists):
            emu.add_album([a], f"Old {i}", album_type="album", release_date="2024-03-01")
        # Each guild follows 12 of the 24 artists (overlapping): every artist is followed at least once.
        follows = {g: [artists[(g * 6 + k) % ARTISTS] for k in range(12)] for g in range(GUILDS)}
        db_url = server.url
        config = tmp_path / "config.toml"
        config.write_text(
            # The default [coordination] (a 60 s lease renewed by a 10 s heartbeat): the guilds of the run
            # the fault cut off are run again at once, not after their leases expired.
            process_config(fake, emu, db_url, scan_interval_seconds=1)
        )
        db = await open_database(db_url)
        bot = BotProcess(config, tmp_path, "bot")
        try:
            channels = await seed_world(
                db, fake, follows, {a: f"Artist {i}" for i, a in enumerate(artists)}, shard_count=1, now=utcnow()
            )
            out, err = io.StringIO(), io.StringIO()
            assert await run_check(load_settings(config, {}), [], out=out, err=err) == 0, err.getvalue()

            today = dt.date.today().isoformat()
            new = {
                a: emu.add_album([a], f"New {i}", album_type="single", release_date=today)
                for i, a in enumerate(artists)
            }
            expected = {gid: Counter(new[a] for a in follows[g]) for g, gid in enumerate(channels)}

            await bot.start()
            await fake.wait_for_ready(timeout=60)
            # Spotify answers slowly from now on, so the run spends seconds checking; Discord posts fast.
            emu.latency = 0.15
            t_due = utcnow()
            async with db.sessions() as session:
                await session.execute(update(Guild).values(next_due_at=t_due))
                await session.commit()
            await db.close()  # the test's own pool would only see the fault too

            if during == "tracking":
                await until(
                    lambda: len([r for r in emu.request_log if "/albums" in r.path and r.at >= t0]) >= ARTISTS // 3,
                    30,
                    "a third of the artists asked for",
                    interval=0.01,
                )
            else:
                await until(
                    lambda: any(fake.channel_messages(c) for c in channels.values()),
                    30,
                    "the first post",
                    interval=0.01,
                )
            posted_before = sum(sum(posted_albums(fake, c)[0].values()) for c in channels.values())
            t_fault = time.monotonic()
            if outage is None:
                await asyncio.to_thread(server.restart)
            else:
                await asyncio.to_thread(server.stop)
                await asyncio.sleep(outage)
                await asyncio.to_thread(server.start)
            t_back = time.monotonic()
            assert bot.alive, bot.log()[-3000:]

            db = await open_database(db_url, migrate=False)

            async def caught_up() -> bool:
                async with db.sessions() as session:
                    dues = (await session.execute(select(Guild.next_due_at, Guild.lease_owner))).all()
                moved_on = all(n > t_due and o is None for n, o in dues)
                return moved_on and all(posted_albums(fake, c)[0] == expected[gid] for gid, c in channels.items())

            async def runs_now() -> list:
                async with db.sessions() as session:
                    return list((await session.execute(select(Run.id, Run.trigger, Run.status, Run.error))).all())

            try:
                await until(caught_up, 45, "every release posted and every guild's due time moved on", interval=0.25)
            except TimeoutError:
                for gid, c in channels.items():
                    posted, _ = posted_albums(fake, c)
                    print(gid, "posted", dict(posted), "expected", dict(expected[gid]))
                print("runs:", await runs_now(), "\n", bot.log()[-5000:])
                raise
            t_caught_up = time.monotonic()
            assert bot.alive, bot.log()[-3000:]
            for gid, channel in channels.items():
                posted, other = posted_albums(fake, channel)
                assert posted == expected[gid], (gid, posted - expected[gid], expected[gid] - posted)
                assert other == 0
            # Posted while the fault lasted or after: still exactly once (no second run posts again).
            await asyncio.sleep(2)
            assert all(posted_albums(fake, c)[0] == expected[gid] for gid, c in channels.items())
            try:
                await until(lambda: _none_running(runs_now()), 10, "no run left 'running'", interval=0.25)
                stuck: list = []
            except TimeoutError:
                stuck = [r for r in await runs_now() if r.status == "running"]
            runs = await runs_now()
            assert await bot.stop() == 0, bot.log()[-3000:]
            assert "IntegrityError" not in bot.log()
            return {
                "posted_before": posted_before,
                "posted": sum(sum(posted_albums(fake, c)[0].values()) for c in channels.values()),
                "fault_seconds": t_back - t_fault,
                "recovery_seconds": t_caught_up - t_back,
                "stuck": stuck,
                "runs": [(r.id, r.trigger, r.status, (r.error or "")[:120]) for r in runs],
                "total": time.monotonic() - t0,
            }
        finally:
            if bot.alive:
                await bot.kill()
            await db.close()


#: why a run cut off by the database can stay ``running`` while the process lives (it is closed as
#: interrupted at the next start): the run's own "mark failed" needs the database that just went away


async def test_postgres_restarted_while_a_run_checks_artists(tmp_path, pg_server: PgServer):  # noqa: F811
    """A restart between two of the run's statements: the pool's pre-ping reconnects and the run finishes ok."""
    figures = await run_through_fault(tmp_path, pg_server, during="tracking", outage=None)
    print(f"\nPostgreSQL restarted mid-tracking: {figures}")
    assert figures["posted_before"] == 0, figures  # the fault came before any post
    schedule_runs = [r for r in figures["runs"] if r[1] == "schedule"]
    assert [r[2] for r in schedule_runs] == ["ok"], figures["runs"]


async def test_postgres_restarted_while_a_run_posts(tmp_path, pg_server: PgServer):  # noqa: F811
    """A restart while posting ends the run's connections: a post sent but not confirmed, the guilds'
    deliveries failed. The process gives up its guild leases at the next scan (its heartbeat would renew
    them forever) and runs those guilds again: the rest posted once, the unconfirmed one not again."""
    figures = await run_through_fault(tmp_path, pg_server, during="delivery", outage=None)
    print(f"\nPostgreSQL restarted mid-delivery: {figures}")
    assert 0 < figures["posted_before"] < figures["posted"], figures  # the fault came between posts
    assert figures["recovery_seconds"] < 15, figures
    assert any(r[1] == "schedule" and r[2] == "ok" for r in figures["runs"]), figures["runs"]
    assert figures["stuck"] == [], "a run the fault cut off is left 'running'"


async def test_postgres_away_for_seconds_while_a_run_posts(tmp_path, pg_server: PgServer):  # noqa: F811
    """An outage while posting: the guilds' deliveries fail, the process stays up (every scan and heartbeat
    fails until the database is back), and then the next scan runs the guilds again and posts the rest once."""
    figures = await run_through_fault(tmp_path, pg_server, during="delivery", outage=OUTAGE_SECONDS)
    print(f"\nPostgreSQL away {OUTAGE_SECONDS:g} s mid-delivery: {figures}")
    assert 0 < figures["posted_before"] < figures["posted"], figures  # the fault came between posts
    assert figures["recovery_seconds"] < 15, figures
    assert any(r[1] == "schedule" and r[2] == "ok" for r in figures["runs"]), figures["runs"]
    assert figures["stuck"] == [], "a run the fault cut off is left 'running'"
