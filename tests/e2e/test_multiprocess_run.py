"""Three ``release-bot run`` processes on one PostgreSQL database (issue 8 §3, docs/multiprocess.md "Proof").

Shards 0, 1 and 2 of one Discord fake, one Spotify emulator, 300 guilds following 1,000
artists with overlap (most artists are followed from guilds on different shards), four
weekly runs. The world is seeded straight into the store and the silent baselines are
taken by one in-process ``release-bot check`` pass before the processes start; each week
new releases appear in the emulator and every guild is made due (in three waves 0.4 s
apart, all at the same due time; Spotify answers in 10 ms, so the idle processes' scans
lease guilds while the first one is still checking artists, and the artist claims decide).
After each week: every new release is in the channel of every guild that follows one of
its artists exactly once, and nothing else; each followed artist's listing was read once
that week across the three processes; every guild's due time moved on. At the end: the
requests are all in the store's day count and within the day budget; more than one
process ran guilds; no process log shows an IntegrityError, a deadlock or a traceback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import random
import re
import time
from collections import Counter, defaultdict

import pytest
from sqlalchemy import select, update

from bot.cli.check import run_check
from bot.settings import load_settings
from fakes.discord_fake import DiscordFake, shard_of
from fakes.spotify_emulator import SpotifyEmulator
from storage.db import open_database
from storage.models import Guild, Run, SpotifyState
from tests import backend
from tests.e2e.processes import BotProcess, log_alarms, owner_pid, posted_albums, process_config, seed_world, until

pytestmark = [
    backend.postgresql_only("several processes on one PostgreSQL database (row locks, SKIP LOCKED)"),
    pytest.mark.timeout(300),
]

SEED = 20261203
SHARDS = 3
GUILDS = 300
ARTISTS = 1000
FOLLOWS_PER_GUILD = 10
WEEKS = 4
NEW_PER_WEEK = 40
#: the day budget every process shares (one developer account): the test's whole use fits, with room
BUDGET = 9000
ALBUMS_PATH = re.compile(r"^/v1/artists/([0-9A-Za-z]{22})/albums$")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def test_three_processes_run_four_weeks_for_300_guilds_once_each(tmp_path):
    rng = random.Random(SEED)
    t0 = time.monotonic()
    # Spotify answers in 10 ms (not at once): a week's checks take a while, and overlap between processes.
    async with DiscordFake() as fake, SpotifyEmulator(latency=0.01) as emu:
        artists = [emu.add_artist(f"Artist {i}", followers=10 * i) for i in range(ARTISTS)]
        names = {a: f"Artist {i}" for i, a in enumerate(artists)}
        for i, a in enumerate(artists):
            emu.add_album([a], f"Old album {i}", album_type="album", release_date="2024-01-05")
            emu.add_album([a], f"Old single {i}", album_type="single", release_date="2024-06-07")
        follows = {i: rng.sample(artists, FOLLOWS_PER_GUILD) for i in range(GUILDS)}

        db_url = backend.database_url(tmp_path, "multi")
        configs = []
        for shard in range(SHARDS):
            path = tmp_path / f"config-{shard}.toml"
            # recheck_share = 0: the rotating exact re-check would read a few artists' listings whole
            # (one request per group) in some weeks; off, an artist without news costs exactly one
            # request per check, so "fetched once per week" is counted exactly.
            path.write_text(
                process_config(
                    fake,
                    emu,
                    db_url,
                    shard_count=SHARDS,
                    shard_ids=[shard],
                    scan_interval_seconds=1,
                    sections={
                        "spotify": {"requests_per_day": BUDGET},
                        "tracking": {"recheck_share": 0},
                        "coordination": {"heartbeat_seconds": 2, "lease_seconds": 10},
                    },
                )
            )
            configs.append(path)

        db = await open_database(db_url)
        try:
            channels = await seed_world(db, fake, follows, names, shard_count=SHARDS, now=utcnow())
            guild_ids = list(channels)
            followers: dict[str, set[int]] = defaultdict(set)
            for i, gid in enumerate(guild_ids):
                for a in follows[i]:
                    followers[a].add(gid)
            shards_of = {a: {shard_of(g, SHARDS) for g in gs} for a, gs in followers.items()}
            across = [a for a in followers if len(shards_of[a]) > 1]
            assert len(followers) > 900 and len(across) > 0.6 * len(followers)

            # Silent baselines: one `release-bot check` pass, in this process, before the bots start.
            out, err = io.StringIO(), io.StringIO()
            assert await run_check(load_settings(configs[0], {}), [], out=out, err=err) == 0, err.getvalue()
            assert out.getvalue() == "", out.getvalue()
            baseline_requests = len([r for r in emu.request_log if r.path.startswith("/v1/")])
            t_seeded = time.monotonic()

            procs = [BotProcess(configs[s], tmp_path, f"shard-{s}") for s in range(SHARDS)]
            for p in procs:
                await p.start()
            await fake.wait_for_ready(timeout=60, shards=list(range(SHARDS)))
            for p in procs:
                assert p.alive, p.log()[-3000:]
            t_started = time.monotonic()

            expected: dict[int, Counter] = {gid: Counter() for gid in guild_ids}
            owners_by_week: list[set[str]] = []
            waits: list[float] = []
            for week in range(WEEKS):
                today = dt.date.today().isoformat()
                news: dict[str, list[str]] = {}
                for k in range(NEW_PER_WEEK):
                    first = rng.choice(across) if rng.random() < 0.75 else rng.choice(list(followers))
                    credited = [first] + ([rng.choice(list(followers))] if rng.random() < 0.2 else [])
                    credited = list(dict.fromkeys(credited))
                    album = emu.add_album(
                        credited,
                        f"Week {week} release {k}",
                        album_type=rng.choice(["album", "single"]),
                        release_date=today,
                    )
                    news[album] = credited
                    for gid in set().union(*(followers[a] for a in credited)):
                        expected[gid][album] += 1

                # The week's due time: every guild due at the same moment, made due in three waves.
                week_start = time.monotonic()
                # Not in the past: an artist checked after a guild's due time is fresh for that due
                # time (another process fetched it for this slot) and rightly not fetched again, so a
                # due time before the previous week's last checks would hide them from this week.
                due = utcnow()
                for wave in range(3):
                    async with db.sessions() as session:
                        await session.execute(
                            update(Guild).where(Guild.id.in_(guild_ids[wave::3])).values(next_due_at=due)
                        )
                        await session.commit()
                    if wave < 2:
                        # A process busy with a run skips its scans, so an idle one leases the next wave
                        # while the first process is still checking artists: the artist claims decide.
                        await asyncio.sleep(0.4)

                async def week_done(due: dt.datetime = due) -> bool:
                    async with db.sessions() as session:
                        rows = (await session.execute(select(Guild.next_due_at, Guild.lease_owner))).all()
                    return all(n > due and o is None for n, o in rows)

                await until(week_done, 60, f"week {week}'s runs of every guild", interval=0.2)
                waits.append(time.monotonic() - week_start)
                for p in procs:
                    assert p.alive, p.log()[-3000:]

                # Exactly once per guild following one of its artists, nothing else.
                for gid, channel in channels.items():
                    posted, other = posted_albums(fake, channel)
                    assert posted == expected[gid], (week, gid, posted - expected[gid], expected[gid] - posted)
                    assert other == 0, (gid, fake.channel_messages(channel))

                # Each followed artist's listing read once this week, across the processes: no page
                # (groups, offset) twice, and an artist with nothing new in exactly one request.
                pages: dict[str, Counter] = defaultdict(Counter)
                for r in emu.request_log:
                    m = ALBUMS_PATH.match(r.path)
                    if m and r.at >= week_start:
                        pages[m.group(1)][(r.query.get("include_groups"), r.query.get("offset", "0"))] += 1
                changed = {a for credited in news.values() for a in credited}
                assert set(pages) == set(followers), (set(followers) - set(pages), set(pages) - set(followers))
                twice = {a: c for a, c in pages.items() if max(c.values()) > 1}
                assert not twice, twice
                more = {a: c for a, c in pages.items() if a not in changed and sum(c.values()) != 1}
                assert not more, more

                async with db.sessions() as session:
                    runs = (
                        await session.execute(
                            select(Run.owner, Run.status).where(
                                Run.trigger == "schedule", Run.finished_at.is_not(None), Run.started_at >= due
                            )
                        )
                    ).all()
                assert runs and all(status == "ok" for _o, status in runs), runs
                assert all(o is not None for o, _s in runs), runs
                owners_by_week.append({o for o, _s in runs if o is not None})

            # The day budget, shared by the three processes (and the check pass), was kept.
            spotify_requests = len([r for r in emu.request_log if r.path.startswith("/v1/")])
            async with db.sessions() as session:
                state = await session.get(SpotifyState, 1)
                assert state is not None
                counted = state.budget_day_requests
                guilds = (await session.execute(select(Guild.next_due_at))).scalars().all()
            # Every request was a check's or a run's (the labeler's album requests included): all counted.
            assert counted == spotify_requests <= BUDGET, (spotify_requests, counted)
            assert all(n > utcnow() for n in guilds)
            owners = set().union(*owners_by_week)
            assert len(owners) > 1, owners_by_week
            assert {owner_pid(o) for o in owners} <= {p.pid for p in procs}

            codes = [await p.stop() for p in procs]
            assert codes == [0] * SHARDS, [p.log()[-3000:] for p in procs]
            for p in procs:
                alarms = log_alarms(p.log())
                assert not alarms, (p.name, alarms[:20])
        finally:
            for p in locals().get("procs", []):
                if p.alive:
                    await p.kill()
            await db.close()

        posted_total = sum(sum(posted_albums(fake, c)[0].values()) for c in channels.values())
        print(
            f"\nmultiprocess run: {SHARDS} processes, {GUILDS} guilds, {len(followers)} followed artists "
            f"({len(across)} followed from several shards), {WEEKS} weeks × {NEW_PER_WEEK} releases, "
            f"{posted_total} posts (0 duplicates, 0 lost); weekly runs took "
            f"{', '.join(f'{w:.1f}' for w in waits)} s; run owners per week "
            f"{[len(o) for o in owners_by_week]}; Spotify requests {spotify_requests} "
            f"(baseline {baseline_requests}; store counted {counted}) of a day budget of {BUDGET}; "
            f"seeding {t_seeded - t0:.1f} s, start-up {t_started - t_seeded:.1f} s, "
            f"total {time.monotonic() - t0:.1f} s"
        )
