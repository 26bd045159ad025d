"""SQLite's disk full, under a real ``release-bot run`` process.

The database lives on a small tmpfs the test mounts (``mount -t tmpfs -o size=…``: root or
CAP_SYS_ADMIN), so the disk really fills: the test fills the rest of it with a file while new
releases wait and the guild's weekly run falls due. The bot meets SQLite's "database or disk is
full" at its first write — a member's ``/refresh`` and the due scan. The process must stay up, say
plainly what is wrong (one log line each, and the member's reply), keep answering reads
(``/status``), and once the file is deleted (space returns) the next due scan runs the weekly run
and posts every release, once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import os
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from fakes.discord_fake import DiscordFake
from fakes.spotify_emulator import SpotifyEmulator
from fakes.stack import config_toml
from storage.db import open_database
from storage.models import Guild
from tests import backend
from tests.e2e.processes import BotProcess, posted_albums, until

pytestmark = [
    pytest.mark.skipif(backend.backend() != "sqlite", reason="SQLite only: the database file's own disk"),
    pytest.mark.timeout(120),
]

ARTISTS = 6
DISK = "24m"
#: the log lines an operator sees (``cogs/notices.py``, ``bot/scheduling/scanner.py``)
REFRESH_LINE = "command refresh failed: the database cannot be written: its disk is full"
SCAN_LINE = "due scan failed: the database cannot be written: its disk is full"


def mount_tmpfs(where: Path, size: str) -> None:
    """Mount a tmpfs of ``size`` at ``where``. Where mounting is impossible (not root, no CAP_SYS_ADMIN)
    the test is skipped naming why: the same handling of a database that cannot be written is still
    tested there by simulation (``test_faults_sqlite_readonly.py``, and ``storage.db.unwritable_reason``'s
    unit test for the disk-full message)."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a tmpfs of :data:`DISK` of its own, unmounted after the test."""
    where = tmp_path / "disk"
    mount_tmpfs(where, DISK)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(folder: Path) -> Path:
    """Write a file into ``folder`` until its disk is full (ENOSPC); returns the file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9):  # big chunks, then what is left, byte-exactly
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    assert os.statvfs(folder).f_bavail == 0
    return filler


async def refresh_reply(fake: DiscordFake, guild: int, admin: int, channel: int) -> str:
    """Run ``/refresh`` and return its last word: the summary or the error (bounded: 30 s)."""
    handle = await fake.invoke(guild, admin, "refresh", {}, channel_id=channel)

    def final() -> str | None:
        text = handle.content or ""
        return text if text and not text.startswith("Checking") else None

    await until(final, 30, "the /refresh reply")
    await asyncio.sleep(0.5)  # a last edit in flight
    return handle.content or ""


async def test_sqlite_disk_full_told_clearly_process_stays_up_and_recovers(tmp_path, small_disk):
    t0 = time.monotonic()
    async with DiscordFake(nonce_window=0.0) as fake, SpotifyEmulator() as emu:
        guild = fake.add_guild("Full Disk Club")
        channel = fake.add_channel(guild, "new-music")
        admin = fake.add_member(guild, name="admin", manage_guild=True)
        artists = [emu.add_artist(f"Artist {i}", followers=100 * (i + 1)) for i in range(ARTISTS)]
        for i, a in enumerate(artists):
            emu.add_album([a], f"Old {i}", album_type="album", release_date="2024-02-02")
        config = tmp_path / "config.toml"
        db_url = f"sqlite+aiosqlite:///{small_disk / 'release-bot.db'}"
        config.write_text(config_toml(fake, emu, db_url, scan_interval_seconds=1))
        bot = BotProcess(config, tmp_path, "bot")  # its log on the test's own disk, not the full one
        await bot.start()
        try:
            await fake.wait_for_ready(timeout=60)
            await until(lambda: any(c["name"] == "refresh" for c in fake.registered_commands), 30, "command sync")
            h = await fake.invoke(
                guild, admin, "settings", {"channel": channel}, subcommand="channel", channel_id=channel
            )
            await h.wait_done(20)
            for a in artists:
                h = await fake.invoke(guild, admin, "follow", {"artist": a}, channel_id=channel)
                await h.wait_done(20)
                assert "Now following" in (h.content or ""), h.final

            today = dt.date.today().isoformat()
            new = [
                emu.add_album([a], f"New {i}", album_type="single", release_date=today) for i, a in enumerate(artists)
            ]
            # The weekly run falls due in a moment; by then the disk is full.
            db = await open_database(db_url, migrate=False)
            try:
                async with db.sessions() as session:
                    due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
                    await session.execute(update(Guild).values(next_due_at=due))
                    await session.commit()
            finally:
                await db.close()
            filler = fill(small_disk)

            # A member's /refresh: told plainly; the process stays up and keeps answering.
            text = await refresh_reply(fake, guild, admin, channel)
            assert "my database cannot be written (its disk is full)" in text and "nothing is lost" in text, text
            await until(lambda: SCAN_LINE in bot.log(), 20, "the due scan's log line")
            assert REFRESH_LINE in bot.log(), bot.log()[-3000:]
            h = await fake.invoke(guild, admin, "status", {}, channel_id=channel)
            await h.wait_done(20)
            assert "Last run" in str(h.final), h.final
            assert bot.alive and posted_albums(fake, channel)[0] == Counter()
            full_for = time.monotonic()

            # Space returns: the next due scan runs the weekly run and posts every release, once.
            filler.unlink()
            await until(
                lambda: sum(posted_albums(fake, channel)[0].values()) >= len(new),
                30,
                "the weekly run after space returned",
            )
            recovered_after = time.monotonic() - full_for
            text = await refresh_reply(fake, guild, admin, channel)
            assert "no new releases" in text, text
            posted, other = posted_albums(fake, channel)
            assert posted == Counter(dict.fromkeys(new, 1)), posted
            assert other == 0
            assert bot.alive
            assert await bot.stop() == 0, bot.log()[-3000:]
            scan_lines = bot.log().count(SCAN_LINE)
        finally:
            if bot.alive:
                await bot.kill()
    print(
        f"\nSQLite disk full: {scan_lines} due scans told so in the log, /refresh told the member, posted "
        f"{len(new)} releases once {recovered_after:.1f} s after space returned; {time.monotonic() - t0:.1f} s"
    )
