"""The kill test (issue 4 §1): ``release-bot run`` as a real process, SIGKILLed at random points
of ``/refresh`` runs (and of its own start-up) at least 20 times, restarted each time; at the end
every release injected into the Spotify emulator is in the channel exactly once.

Discord's nonce window is set to 0 in the fake, so no duplicate is hidden by ``enforce_nonce``:
only the ledger and the start-up settling of unconfirmed claims (``Deliverer.recover``) count.
Deterministic: one seeded RNG picks the releases, the kill delays and the kill kinds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import os
import random
import re
import signal
import sys
import time
from collections import Counter
from typing import BinaryIO

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from fakes.discord_fake import DiscordFake
from fakes.spotify_emulator import SpotifyEmulator
from fakes.stack import config_toml
from tests import backend

SEED = 20261122
KILLS = 24
ALBUM_RE = re.compile(r"https://open\.spotify\.com/album/([0-9A-Za-z]{22})")


def write_config(path, fake, emu, db_path) -> None:
    path.write_text(config_toml(fake, emu, db_path, scan_interval_seconds=3600))


class BotProcess:
    """``python -m bot run`` with its log in a file (no pipe to fill)."""

    def __init__(self, config, workdir, n: int) -> None:
        self.config, self.workdir, self.n = config, workdir, n
        self.log_path = workdir / f"bot-{n:02d}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self._log: BinaryIO | None = None

    async def start(self) -> None:
        # Open while the process runs (closed by kill/stop); a blocking open of a local file is brief.
        self._log = open(self.log_path, "wb")  # noqa: SIM115, ASYNC230
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--config",
            str(self.config),
            cwd=self.workdir,
            stdout=self._log,
            stderr=self._log,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )

    async def kill(self) -> None:
        assert self.proc is not None and self._log is not None, "not started"
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        self._log.close()

    async def stop(self) -> int:
        assert self.proc is not None and self._log is not None, "not started"
        self.proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(self.proc.wait(), 30)
        self._log.close()
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


async def until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def ledger_states(db_url: str) -> Counter:
    """``Counter`` of the ledger's statuses, read on a connection of its own (the bot may be dead or alive)."""
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            return Counter((await conn.execute(text("select status from deliveries"))).scalars())
    finally:
        await engine.dispose()


@pytest.mark.timeout(240)
async def test_sigkill_at_random_points_posts_every_release_exactly_once(tmp_path):
    rng = random.Random(SEED)
    t0 = time.monotonic()
    async with DiscordFake(nonce_window=0.0) as fake, SpotifyEmulator() as emu:
        guild = fake.add_guild("Kill Club")
        channel = fake.add_channel(guild, "new-music")
        admin = fake.add_member(guild, name="admin", manage_guild=True)
        artists = [emu.add_artist(f"Artist {i}", followers=1000 * (i + 1)) for i in range(4)]
        for i, a in enumerate(artists):
            for j in range(3):
                emu.add_album([a], f"Old {i}.{j}", album_type="album", release_date=f"2024-0{j + 1}-01")
        db_url = backend.database_url(tmp_path, "kill")
        config = tmp_path / "config.toml"
        write_config(config, fake, emu, db_url)

        procs: list[BotProcess] = []

        async def start_bot(wait: bool = True) -> BotProcess:
            before = fake.identify_count
            bp = BotProcess(config, tmp_path, len(procs))
            procs.append(bp)
            await bp.start()
            proc = bp.proc
            assert proc is not None
            if wait:
                await until(
                    lambda: fake.identify_count > before or proc.returncode is not None,
                    60,
                    f"bot {bp.n} to identify",
                )
                assert proc.returncode is None, bp.log()[-3000:]
                await fake.wait_for_ready(timeout=30)
            return bp

        async def command(name, options=None, subcommand=None, timeout=30.0):
            handle = await fake.invoke(guild, admin, name, options or {}, subcommand=subcommand, channel_id=channel)
            await handle.wait_done(timeout=timeout)
            return handle

        # Set-up, not killed: channel and follows (silent baselines).
        bot = await start_bot()
        await until(lambda: any(c["name"] == "refresh" for c in fake.registered_commands), 30, "command sync")
        await command("settings", {"channel": channel}, subcommand="channel")
        for a in artists:
            reply = await command("follow", {"artist": a})
            assert "ollowing" in (reply.content or ""), reply.final
        assert fake.channel_messages(channel) == []

        injected: list[str] = []
        kills = start_up_kills = left_claimed = 0
        delays: list[float] = []
        n_release = 0
        while kills < KILLS:
            # The emulator gains 1–7 new releases (sometimes none: a run with only leftovers).
            for _ in range(rng.choice([0, 1, 3, 5, 7, 12])):
                n_release += 1
                a = rng.choice(artists)
                injected.append(
                    emu.add_album(
                        [a],
                        f"New {n_release}",
                        album_type=rng.choice(["single", "album"]),
                        release_date=dt.date.today().isoformat(),
                    )
                )
            if kills % 6 == 5:
                # Kill during start-up (settling unconfirmed claims happens there).
                await bot.kill()
                kills += 1
                start_up_kills += 1
                bot = await start_bot(wait=False)
                delay = rng.uniform(0.3, 1.6)
                await asyncio.sleep(delay)
                delays.append(delay)
            else:
                await command("status")  # the process is up and answering
                t_inv = time.monotonic()
                handle = await fake.invoke(guild, admin, "refresh", channel_id=channel)
                if rng.random() < 0.5:
                    # Anywhere in the run: tracking, labelling, delivery or after it.
                    delay = rng.uniform(0.0, 0.3)
                    await asyncio.sleep(delay)
                else:
                    # Mid-delivery: a few ms after the n-th message was answered by Discord, i.e.
                    # between its send and its confirm, or at the next message's claim or send.
                    target = rng.randint(1, 2)
                    deadline = time.monotonic() + 5
                    while (  # noqa: ASYNC110 - polls the fake for a process\'s requests: no event to wait on
                        len([r for r in fake.requests("POST", "/messages") if r.at >= t_inv]) < target
                        and handle.final is None
                        and time.monotonic() < deadline
                    ):
                        await asyncio.sleep(0.0002)
                    await asyncio.sleep(rng.uniform(0.0, 0.006))
                    delay = time.monotonic() - t_inv
                delays.append(delay)
            await bot.kill()
            kills += 1
            if (await ledger_states(db_url))["claimed"]:
                left_claimed += 1
            bot = await start_bot()

        # A clean, complete run at the end.
        reply = await command("refresh", timeout=60)
        code = await bot.stop()
        assert code == 0, bot.log()[-3000:]

        urls = [
            ALBUM_RE.fullmatch(e.get("url", "")) for m in fake.channel_messages(channel) for e in m.get("embeds") or []
        ]
        posted = Counter(m.group(1) for m in urls if m)
        duplicates = {k: v for k, v in posted.items() if v > 1}
        lost = [r for r in injected if r not in posted]
        extra = [r for r in posted if r not in injected]
        logs = "".join(p.log() for p in procs)
        recovered = [
            tuple(map(int, m))
            for m in re.findall(
                r"recovered unconfirmed deliveries: (\d+) confirmed, (\d+) released, (\d+) unresolved", logs
            )
        ]
        interrupted = len(re.findall(r"marked \d+ interrupted run", logs))
        elapsed = time.monotonic() - t0
        print(
            f"\nkill test: {kills} SIGKILLs ({start_up_kills} during start-up), {len(injected)} releases injected, "
            f"{sum(posted.values())} posted, {len(duplicates)} duplicates, {len(lost)} lost; "
            f"{left_claimed} kills left unconfirmed claims; recovery confirmed "
            f"{sum(r[0] for r in recovered)}, released {sum(r[1] for r in recovered)}; "
            f"{interrupted} starts marked interrupted runs; {elapsed:.1f} s"
        )
        assert kills >= 20
        assert not duplicates, duplicates
        assert not lost, (lost, reply.final)
        assert not extra, extra
        assert (await ledger_states(db_url))["claimed"] == 0


# --- two processes on one PostgreSQL database (issue 8 §3) ---------------------------------------

TWO_KILLS = 20
LEASE_SECONDS = 3  # short, so that a survivor takes a dead process's guilds over within seconds
#: guild i (on shard i % 2) follows these artists: every artist is followed from both shards
TWO_FOLLOWS = {0: [0, 1, 2, 3], 1: [2, 3, 4], 2: [0, 4, 5], 3: [1, 3, 5]}


@backend.postgresql_only("two processes on one PostgreSQL database: leases, claims, owner-aware recovery")
@pytest.mark.timeout(300)
async def test_sigkill_either_of_two_processes_posts_every_release_exactly_once(tmp_path):
    """Two ``release-bot run`` processes (shards [0] and [1] of 2, each answering its two guilds'
    commands; the weekly runs of all four guilds go to whichever process leases them), 20 SIGKILLs
    of either process during weekly runs, ``/refresh`` runs (sometimes mid-delivery) and start-up,
    each restarted — sometimes only after the survivor took the dead one's leased guilds over (lease
    3 s, heartbeat 1 s). At the end every release is in every following guild's channel once."""
    from sqlalchemy import select, update

    from bot.cli.check import run_check
    from bot.settings import load_settings
    from fakes.discord_fake import shard_of
    from storage.db import open_database
    from storage.models import Guild
    from tests.e2e.processes import BotProcess as Proc
    from tests.e2e.processes import owner_pid, posted_albums, seed_world, shard_configs
    from tests.e2e.processes import until as wait_until

    rng = random.Random(SEED + 2)
    t0 = time.monotonic()
    async with DiscordFake(nonce_window=0.0) as fake, SpotifyEmulator() as emu:
        artists = [emu.add_artist(f"Artist {i}", followers=1000 * (i + 1)) for i in range(6)]
        for i, a in enumerate(artists):
            for j in range(3):
                emu.add_album([a], f"Old {i}.{j}", album_type="album", release_date=f"2024-0{j + 1}-01")
        db_url = backend.database_url(tmp_path, "kill2")
        configs = shard_configs(tmp_path, fake, emu, db_url, lease_seconds=LEASE_SECONDS)
        db = await open_database(db_url)
        procs: list[Proc] = []
        try:
            follows = {i: [artists[k] for k in ks] for i, ks in TWO_FOLLOWS.items()}
            channels = await seed_world(
                db,
                fake,
                follows,
                {a: f"Artist {i}" for i, a in enumerate(artists)},
                shard_count=2,
                now=dt.datetime.now(dt.UTC),
            )
            guilds = list(channels)
            admins = {g: fake.add_member(g, name="admin", manage_guild=True) for g in guilds}
            followers = {a: {g for i, g in enumerate(guilds) if a in follows[i]} for a in artists}
            out, err = io.StringIO(), io.StringIO()
            assert await run_check(load_settings(configs[0], {}), [], out=out, err=err) == 0, err.getvalue()

            procs = [Proc(configs[s], tmp_path, f"shard-{s}") for s in (0, 1)]

            async def start(s: int, wait: bool = True) -> None:
                old = {x["session_id"] for x in fake.sessions}
                await procs[s].start()
                if wait:
                    await wait_until(
                        lambda: (
                            any(x["shard"][0] == s and x["ready"] and x["session_id"] not in old for x in fake.sessions)
                            or not procs[s].alive
                        ),
                        60,
                        f"shard {s} to be ready",
                    )
                    assert procs[s].alive, procs[s].log()[-3000:]

            async def command(g: int, name: str, timeout: float = 30.0):
                handle = await fake.invoke(g, admins[g], name, {}, channel_id=channels[g])
                await handle.wait_done(timeout=timeout)
                return handle

            async def lease_owners() -> dict[int, str | None]:
                async with db.sessions() as session:
                    return dict((await session.execute(select(Guild.id, Guild.lease_owner))).all())

            async def make_due() -> dt.datetime:
                due = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
                async with db.sessions() as session:
                    await session.execute(update(Guild).values(next_due_at=due))
                    await session.commit()
                return due

            async def ran_since(due: dt.datetime, gids) -> bool:
                async with db.sessions() as session:
                    rows = dict((await session.execute(select(Guild.id, Guild.next_due_at))).all())
                return all(rows[g] > due for g in gids)

            await asyncio.gather(start(0), start(1))
            injected: dict[str, set[int]] = {}
            kills = start_up_kills = weekly_kills = refresh_kills = takeovers = mid_delivery = left_claimed = (
                slow_sends
            ) = 0
            n_release = 0
            while kills < TWO_KILLS:
                injected_now = rng.choice([0, 1, 3, 5, 7])
                for _ in range(injected_now):
                    n_release += 1
                    credited = list(dict.fromkeys(rng.sample(artists, rng.choice([1, 1, 1, 2]))))
                    album = emu.add_album(
                        credited,
                        f"New {n_release}",
                        album_type=rng.choice(["single", "album"]),
                        release_date=dt.date.today().isoformat(),
                    )
                    injected[album] = set().union(*(followers[a] for a in credited))
                kind = "start-up" if kills % 7 == 6 else rng.choice(["weekly", "weekly", "refresh"])
                t_act = time.monotonic()
                due = None
                if kind == "start-up":
                    victim = rng.randrange(2)
                    await procs[victim].kill()
                    kills += 1
                    start_up_kills += 1
                    await start(victim, wait=False)
                    await asyncio.sleep(rng.uniform(0.3, 1.6))
                elif kind == "weekly":
                    due = await make_due()
                    # Whichever process's scan leases the guilds runs them; usually kill that one.
                    held = await wait_until(
                        lambda due=due: _held(lease_owners, ran_since, due),
                        10,
                        "a due scan to lease the guilds",
                        interval=0.005,
                    )
                    pids = {owner_pid(o) for o in held.values() if o}
                    holder = next((s for s in (0, 1) if procs[s].pid in pids), rng.randrange(2))
                    victim = holder if rng.random() < 0.75 else 1 - holder
                    weekly_kills += 1
                else:
                    g = rng.choice(guilds)
                    home = shard_of(g, 2)
                    await command(g, "status")  # its process is up and answering
                    await fake.invoke(g, admins[g], "refresh", {}, channel_id=channels[g])
                    victim = home if rng.random() < 0.75 else 1 - home
                    refresh_kills += 1
                if kind != "start-up":
                    mode = rng.choice(["anywhere", "after a message", "slow send" if injected_now else "anywhere"])
                    if mode == "anywhere":
                        await asyncio.sleep(rng.uniform(0.0, 0.4 if kind == "refresh" else 0.1))
                    elif mode == "slow send":
                        # Mid-delivery, in a send that takes a while: the first message is answered 500,
                        # which discord.py retries after 1 s; the kill falls in that second, between the
                        # ledger claim and the message (recovery must find it absent and post it again).
                        fake.fail_next(1, status=500, path_contains="/messages", method="POST")
                        deadline = time.monotonic() + 5
                        while (  # noqa: ASYNC110 - polls the fake for a process\'s requests: no event to wait on
                            not [r for r in fake.requests("POST", "/messages") if r.at >= t_act and r.status == 500]
                            and time.monotonic() < deadline
                        ):
                            await asyncio.sleep(0.001)
                        fake.clear_failures()
                        await asyncio.sleep(rng.uniform(0.0, 0.8))
                        slow_sends += 1
                    else:
                        # Mid-delivery: just after the n-th message since the action was answered.
                        target = rng.choice([1, 1, 2])
                        deadline = time.monotonic() + 5
                        while (  # noqa: ASYNC110 - polls the fake for a process\'s requests: no event to wait on
                            len([r for r in fake.requests("POST", "/messages") if r.at >= t_act]) < target
                            and time.monotonic() < deadline
                        ):
                            await asyncio.sleep(0.0002)
                        await asyncio.sleep(rng.uniform(0.0, 0.003))
                        mid_delivery += 1
                held_by_victim = [
                    g for g, o in (await lease_owners()).items() if o is not None and owner_pid(o) == procs[victim].pid
                ]
                await procs[victim].kill()
                kills += 1
                if (await ledger_states(db_url))["claimed"]:
                    left_claimed += 1
                if due is not None and held_by_victim and rng.random() < 0.6:
                    # Restarted only later: the survivor takes the dead process's guilds over once
                    # their leases expire (the dead process's heartbeat stopped).
                    await wait_until(
                        lambda due=due, held=held_by_victim: ran_since(due, held),
                        LEASE_SECONDS + 30,
                        "the survivor to take the dead process's guilds over",
                        interval=0.1,
                    )
                    takeovers += 1
                elif rng.random() < 0.2:
                    await asyncio.sleep(rng.uniform(0.5, LEASE_SECONDS + 1))
                await start(victim)
                if not procs[1 - victim].alive:  # killed during its start-up above
                    await start(1 - victim)

            # A clean, complete run at the end: both up, every guild due, each run to its end.
            for s in (0, 1):
                if not procs[s].alive:
                    await start(s)
            due = await make_due()
            await wait_until(lambda: ran_since(due, guilds), 60, "the final weekly run of every guild", interval=0.1)
            codes = [await procs[s].stop() for s in (0, 1)]
            assert codes == [0, 0], [p.log()[-3000:] for p in procs]
        finally:
            for p in procs:
                if p.alive:
                    await p.kill()
            await db.close()

        posted = {g: posted_albums(fake, channels[g])[0] for g in guilds}
        duplicates = {(g, r): n for g in guilds for r, n in posted[g].items() if n > 1}
        lost = [(g, r) for r, gs in injected.items() for g in gs if posted[g][r] == 0]
        extra = [(g, r) for g in guilds for r in posted[g] if g not in injected.get(r, set())]
        elapsed = time.monotonic() - t0
        print(
            f"\nkill test, 2 processes: {kills} SIGKILLs ({weekly_kills} in weekly runs, {refresh_kills} in "
            f"/refresh, {start_up_kills} during start-up; {mid_delivery} aimed mid-delivery, {slow_sends} in a send retried after a 500), {takeovers} take-overs "
            f"by the survivor after lease expiry, {len(injected)} releases injected, "
            f"{sum(sum(p.values()) for p in posted.values())} posted, {len(duplicates)} duplicates, {len(lost)} lost; "
            f"{left_claimed} kills left unconfirmed claims; "
            f"{elapsed:.1f} s"
        )
        assert kills >= 20 and takeovers >= 1 and left_claimed >= 1  # the hard cases happened
        assert not duplicates, duplicates
        assert not lost, lost
        assert not extra, extra
        assert (await ledger_states(db_url))["claimed"] == 0


async def _held(lease_owners, ran_since, due) -> dict[int, str | None] | None:
    """A ``wait_until`` predicate: the guilds' lease owners once some guild is leased, or ``{}`` once
    every guild's run due at ``due`` ended already (no lease seen: it was quick); else None."""
    owners = await lease_owners()
    if any(owners.values()):
        return owners
    return {0: None} if await ran_since(due, list(owners)) else None
