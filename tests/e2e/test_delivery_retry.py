"""Posts Discord failed are retried soon by the due scan, as a real ``release-bot run`` process.

discord.py gives a post up after its own retries (five 500s, about 25 s; a 503, which it does not
retry; a global 429 longer than ``max_ratelimit_timeout``): the releases wait, ``/refresh`` and ``/status`` say so and when the next
try is, and the due scan posts them once Discord answers again — each exactly once, with no Spotify
request for the retry. The back-off is shortened by ``[delivery] retry_backoff_seconds``.
"""

from __future__ import annotations

import datetime as dt
import io
import time

import pytest
from sqlalchemy import select, update

from bot.cli.check import run_check
from bot.discord_app.client import MAX_RATELIMIT_TIMEOUT
from bot.settings import load_settings
from fakes.discord_fake import DiscordFake
from fakes.spotify_emulator import SpotifyEmulator
from storage.db import open_database
from storage.models import Guild
from tests import backend
from tests.e2e.processes import BotProcess, log_alarms, posted_albums, process_config, seed_world, until

pytestmark = pytest.mark.timeout(120)

BACKOFF = [2, 4]  # seconds: the test's back-off (the default is minutes, then hours)


def due_now() -> dt.datetime:
    """A due time for the weekly run now: after the baselines (an artist checked after its guild's due time
    counts as fresh for that run and is not fetched again, so a due time before them would find nothing)."""
    return dt.datetime.now(dt.UTC)


class World:
    """One process, one guild following two artists (baselined), and helpers."""

    def __init__(self, fake: DiscordFake, emu: SpotifyEmulator, tmp_path) -> None:
        self.fake, self.emu, self.tmp_path = fake, emu, tmp_path

    async def __aenter__(self) -> World:
        fake, emu = self.fake, self.emu
        self.artists = [emu.add_artist(f"Artist {i}", followers=1000) for i in range(2)]
        for i, a in enumerate(self.artists):
            emu.add_album([a], f"Old {i}", album_type="album", release_date="2024-01-01")
        self.db_url = backend.database_url(self.tmp_path, "retry")
        config = self.tmp_path / "config.toml"
        config.write_text(
            process_config(
                fake,
                emu,
                self.db_url,
                scan_interval_seconds=1,
                sections={"delivery": {"retry_backoff_seconds": BACKOFF}},
            )
        )
        self.db = await open_database(self.db_url)
        self.channels = await seed_world(
            self.db, fake, {0: self.artists}, {a: a for a in self.artists}, shard_count=1, now=dt.datetime.now(dt.UTC)
        )
        ((self.guild, self.channel),) = self.channels.items()
        self.admin = fake.add_member(self.guild, name="admin", manage_guild=True)
        out, err = io.StringIO(), io.StringIO()
        assert await run_check(load_settings(config, {}), [], out=out, err=err) == 0, err.getvalue()
        self.bot = BotProcess(config, self.tmp_path, "bot")
        await self.bot.start()
        await fake.wait_for_ready(timeout=60)
        self.new = [
            emu.add_album([a], f"New {i}", album_type="single", release_date="2026-11-20")
            for i, a in enumerate(self.artists)
        ]
        return self

    async def __aexit__(self, *exc) -> None:
        try:
            if self.bot.alive:
                code, _ = await self.bot.terminate()
                assert code == 0 or exc[0] is not None, self.bot.log()[-3000:]
        finally:
            if self.bot.alive:
                await self.bot.kill()
            await self.db.close()

    async def command(self, name: str) -> dict:
        handle = await self.fake.invoke(self.guild, self.admin, name, {}, channel_id=self.channel)
        await handle.wait_done(timeout=30)
        await until(lambda: "Checking" not in str(handle.final), 30, f"/{name}'s reply")
        assert handle.final is not None
        return handle.final

    def posted(self):
        return posted_albums(self.fake, self.channel)

    async def retry_state(self) -> tuple:
        async with self.db.sessions() as session:
            row = (
                await session.execute(
                    select(Guild.delivery_retry_at, Guild.delivery_failures, Guild.last_delivery_error).where(
                        Guild.id == self.guild
                    )
                )
            ).one()
        return tuple(row)


async def test_a_503_stretch_is_retried_on_the_backoff_and_each_release_posted_once(tmp_path):
    async with DiscordFake(nonce_window=0.0) as fake, SpotifyEmulator() as emu, World(fake, emu, tmp_path) as w:
        fake.fail_next(3, status=503, path_contains="/messages", method="POST")
        reply = await w.command("refresh")
        spotify_requests = len(emu.request_log)
        text = reply["content"]
        assert "2 releases are waiting to be posted (Discord failed: 503); next try in 2 s" in text, text
        assert "no new releases" not in text and "nothing posted yet" in text, text
        status = await w.command("status")
        waiting = [
            f["value"] for e in status.get("embeds") or [] for f in e.get("fields", []) if f["name"] == "Waiting"
        ]
        assert waiting and "releases are waiting to be posted (Discord failed: 503); next try in" in waiting[0], status
        t0 = time.monotonic()
        await until(lambda: sum(w.posted()[0].values()) >= 2, 40, "the retry to post the releases")
        waited = time.monotonic() - t0
        failed = [r for r in fake.requests("POST", f"/channels/{w.channel}/messages") if r.status == 503]
        assert len(failed) == 3  # the refresh's post and two retries, 2 s then 4 s apart
        posted, other = w.posted()
        assert posted == dict.fromkeys(w.new, 1) and other == 0
        assert len(emu.request_log) == spotify_requests  # the retries asked Spotify nothing
        await until(lambda: _cleared(w), 10, "the retry to be cleared after the post")
        assert not log_alarms(w.bot.log()), w.bot.log()[-3000:]
        print(f"\n503 ×3: posted by the third retry {waited:.1f} s after the /refresh reply")


async def _cleared(w: World) -> bool:
    return await w.retry_state() == (None, 0, None)


async def test_a_global_429_beyond_max_ratelimit_timeout_is_waited_out_then_posted_once(tmp_path):
    retry_after = MAX_RATELIMIT_TIMEOUT + 1  # discord.py raises instead of sleeping it out
    async with DiscordFake(nonce_window=0.0) as fake, SpotifyEmulator() as emu, World(fake, emu, tmp_path) as w:
        fake.fail_next(1, status=429, is_global=True, retry_after=retry_after, path_contains="/messages", method="POST")
        async with w.db.sessions() as session:
            await session.execute(update(Guild).values(next_due_at=due_now()))
            await session.commit()
        limited = await until(
            lambda: [r for r in fake.requests("POST", "/messages") if r.status == 429], 30, "the weekly run's post"
        )
        t_429, at_429 = time.monotonic(), dt.datetime.now(dt.UTC)
        spotify_requests = len(emu.request_log)
        retry_at, failures, error = await until(lambda: _waiting(w), 10, "the retry to be set after the weekly run")
        assert failures == 1 and error == f"Discord rate limit: retry after {retry_after:.0f} s"
        assert limited and retry_at - at_429 >= dt.timedelta(seconds=retry_after - 2)
        await until(lambda: sum(w.posted()[0].values()) >= 2, 60, "the retry after the 429")
        waited = time.monotonic() - t_429
        assert waited >= retry_after - 1, waited  # not before Discord's retry_after (the back-off says 2 s)
        posted, other = w.posted()
        assert posted == dict.fromkeys(w.new, 1) and other == 0
        assert len(emu.request_log) == spotify_requests
        await until(lambda: _cleared(w), 10, "the retry to be cleared after the post")
        assert not log_alarms(w.bot.log()), w.bot.log()[-3000:]
        print(f"\nglobal 429 (retry_after {retry_after:.0f} s): posted by the retry {waited:.1f} s later")


async def _waiting(w: World):
    state = await w.retry_state()
    return state if state[0] is not None else None


async def test_a_500_stretch_longer_than_discord_py_s_retries_is_retried_and_posted_once(tmp_path):
    """discord.py retries a 500 by itself (after 1, 3, 5, 7 and 9 s) with the same nonce, then gives up:
    the weekly run's post fails after about 25 s, and the due scan's retry posts it."""
    async with DiscordFake(nonce_window=0.0) as fake, SpotifyEmulator() as emu, World(fake, emu, tmp_path) as w:
        fake.fail_next(5, status=500, path_contains="/messages", method="POST")
        async with w.db.sessions() as session:
            await session.execute(update(Guild).values(next_due_at=due_now()))
            await session.commit()
        await until(lambda: [r for r in fake.requests("POST", "/messages") if r.status == 500], 30, "the first post")
        spotify_requests = len(emu.request_log)
        t0 = time.monotonic()
        _retry_at, failures, error = await until(lambda: _waiting(w), 40, "discord.py to give the post up")
        gave_up = time.monotonic() - t0
        assert failures == 1 and error == "Discord failed: 500"
        await until(lambda: sum(w.posted()[0].values()) >= 2, 20, "the retry to post the releases")
        posts = fake.requests("POST", f"/channels/{w.channel}/messages")
        assert [r.status for r in posts].count(500) == 5 and len(posts) == 6  # one more: the retry's
        posted, other = w.posted()
        assert posted == dict.fromkeys(w.new, 1) and other == 0
        assert len(emu.request_log) == spotify_requests
        await until(lambda: _cleared(w), 10, "the retry to be cleared after the post")
        assert not log_alarms(w.bot.log()), w.bot.log()[-3000:]
        print(f"\n500 ×5: discord.py gave up after {gave_up:.1f} s; the retry posted {time.monotonic() - t0:.1f} s in")
