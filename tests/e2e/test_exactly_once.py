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
import os
import random
import re
import signal
import sys
import time
from collections import Counter

import pytest

from fakes.discord_fake import DiscordFake
from fakes.spotify_emulator import SpotifyEmulator
from fakes.stack import config_toml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
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

    async def start(self) -> None:
        self._log = open(self.log_path, "wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--config", str(self.config), cwd=self.workdir,
            stdout=self._log, stderr=self._log, env=dict(os.environ, PYTHONUNBUFFERED="1"))

    async def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        self._log.close()

    async def stop(self) -> int:
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
            if wait:
                await until(lambda: fake.identify_count > before or bp.proc.returncode is not None, 60,
                            f"bot {bp.n} to identify")
                assert bp.proc.returncode is None, bp.log()[-3000:]
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
                injected.append(emu.add_album([a], f"New {n_release}", album_type=rng.choice(["single", "album"]),
                                              release_date=dt.date.today().isoformat()))
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
                    while (len([r for r in fake.requests("POST", "/messages") if r.at >= t_inv]) < target
                           and handle.final is None and time.monotonic() < deadline):
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

        urls = [ALBUM_RE.fullmatch(e.get("url", "")) for m in fake.channel_messages(channel)
                for e in m.get("embeds") or []]
        posted = Counter(m.group(1) for m in urls if m)
        duplicates = {k: v for k, v in posted.items() if v > 1}
        lost = [r for r in injected if r not in posted]
        extra = [r for r in posted if r not in injected]
        logs = "".join(p.log() for p in procs)
        recovered = [tuple(map(int, m)) for m in re.findall(
            r"recovered unconfirmed deliveries: (\d+) confirmed, (\d+) released, (\d+) unresolved", logs)]
        interrupted = len(re.findall(r"marked \d+ interrupted run", logs))
        elapsed = time.monotonic() - t0
        print(f"\nkill test: {kills} SIGKILLs ({start_up_kills} during start-up), {len(injected)} releases injected, "
              f"{sum(posted.values())} posted, {len(duplicates)} duplicates, {len(lost)} lost; "
              f"{left_claimed} kills left unconfirmed claims; recovery confirmed "
              f"{sum(r[0] for r in recovered)}, released {sum(r[1] for r in recovered)}; "
              f"{interrupted} starts marked interrupted runs; {elapsed:.1f} s")
        assert kills >= 20
        assert not duplicates, duplicates
        assert not lost, (lost, reply.final)
        assert not extra, extra
        assert (await ledger_states(db_url))["claimed"] == 0
