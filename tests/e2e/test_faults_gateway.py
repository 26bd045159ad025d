"""The Discord gateway connection dropped under a real ``release-bot run`` process.

The Discord fake closes the websocket with 4000 (discord.py reconnects and RESUMEs the session)
and then forgets the session as well (the RESUME gets INVALID_SESSION and discord.py IDENTIFYs
afresh). After each drop, slash commands are answered again. The first drop happens while a
``/refresh`` is posting: its REST work goes on, its reply arrives, and every release is posted
exactly once (the fake's nonce window is 0, so no duplicate is hidden).
"""

from __future__ import annotations

import datetime as dt
import time

import pytest

from fakes.discord_fake import DiscordFake
from fakes.spotify_emulator import SpotifyEmulator
from fakes.stack import config_toml
from tests import backend
from tests.e2e.processes import BotProcess, log_alarms, posted_albums, until

pytestmark = pytest.mark.timeout(120)

ARTISTS = 8


async def answered(
    fake: DiscordFake, guild: int, user: int, where: int, name: str, options: dict | None = None, **kwargs
) -> dict:
    """Invoke ``/name`` in channel ``where`` and return the reply the member sees (bounded: 20 s)."""
    handle = await fake.invoke(guild, user, name, options or {}, channel_id=where, **kwargs)
    await handle.wait_done(timeout=20)
    assert handle.final is not None, handle
    return handle.final


async def test_gateway_dropped_resumed_and_reidentified_commands_answered(tmp_path):
    t0 = time.monotonic()
    async with DiscordFake(nonce_window=0.0) as fake, SpotifyEmulator() as emu:
        guild = fake.add_guild("Gateway Club")
        channel = fake.add_channel(guild, "new-music")
        admin = fake.add_member(guild, name="admin", manage_guild=True)
        artists = [emu.add_artist(f"Artist {i}", followers=100 * (i + 1)) for i in range(ARTISTS)]
        for i, a in enumerate(artists):
            emu.add_album([a], f"Old {i}", album_type="album", release_date="2024-02-02")
        config = tmp_path / "config.toml"
        config.write_text(config_toml(fake, emu, backend.database_url(tmp_path, "gateway"), scan_interval_seconds=3600))
        bot = BotProcess(config, tmp_path, "bot")
        await bot.start()
        try:
            await fake.wait_for_ready(timeout=60)
            await until(lambda: any(c["name"] == "refresh" for c in fake.registered_commands), 30, "command sync")
            await answered(fake, guild, admin, channel, "settings", {"channel": channel}, subcommand="channel")
            for a in artists:
                reply = await answered(fake, guild, admin, channel, "follow", {"artist": a})
                assert "ollowing" in reply.get("content", ""), reply

            # New releases; a /refresh posts them while the gateway drops (code 4000: resume).
            today = dt.date.today().isoformat()
            new = [
                emu.add_album([a], f"New {i}", album_type="single", release_date=today) for i, a in enumerate(artists)
            ]
            emu.latency = 0.1  # the refresh spends about a second at Spotify
            identifies, resumes = fake.identify_count, fake.resume_count
            asked = len(emu.requests_to("/albums"))
            refresh = await fake.invoke(guild, admin, "refresh", {}, channel_id=channel)
            await until(lambda: len(emu.requests_to("/albums")) >= asked + ARTISTS // 2, 20, "the refresh under way")
            assert "new release" not in (refresh.content or ""), refresh.final  # not done yet
            t_drop = time.monotonic()
            await fake.disconnect_clients(code=4000)
            await fake.wait_for_ready(timeout=30)
            resumed_after = time.monotonic() - t_drop
            assert fake.resume_count == resumes + 1 and fake.identify_count == identifies
            await until(lambda: "new release" in (refresh.content or ""), 30, "the /refresh summary")
            assert f"{len(new)} new releases" in (refresh.content or ""), refresh.final
            status = await answered(fake, guild, admin, channel, "status")
            assert "Last run" in str(status.get("embeds")), status

            # The session forgotten too: INVALID_SESSION, then a fresh IDENTIFY; commands answered again.
            emu.latency = 0.0
            t_drop = time.monotonic()
            await fake.disconnect_clients(code=4000, invalidate_sessions=True)
            await fake.wait_for_ready(timeout=30)
            reidentified_after = time.monotonic() - t_drop
            assert fake.identify_count == identifies + 1
            status = await answered(fake, guild, admin, channel, "status")
            assert "Last run" in str(status.get("embeds")), status
            again = await fake.invoke(guild, admin, "refresh", {}, channel_id=channel)
            await until(lambda: "new release" in (again.content or ""), 30, "the second /refresh summary")
            assert "no new releases" in (again.content or ""), again.final
            posted, other = posted_albums(fake, channel)
            assert posted == dict.fromkeys(new, 1), posted
            assert other == 0
            assert bot.alive
            assert await bot.stop() == 0, bot.log()[-3000:]
            assert not log_alarms(bot.log()), log_alarms(bot.log())
        finally:
            if bot.alive:
                await bot.kill()
    print(
        f"\ngateway drops: resumed and answering {resumed_after:.2f} s after a 4000 close, re-identified "
        f"{reidentified_after:.2f} s after the session was forgotten; {len(new)} releases posted once; "
        f"{time.monotonic() - t0:.1f} s"
    )
