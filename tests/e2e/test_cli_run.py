"""``release-bot run`` as a process: the Discord URLs come from the config file, the real
client connects to the fake, answers a command, and stops cleanly on SIGINT; a bad token
is one clear line."""

from __future__ import annotations

import asyncio
import signal
import sys

import pytest

from fakes.discord_fake import DiscordFake
from fakes.spotify_emulator import SpotifyEmulator
from fakes.stack import config_toml
from tests import backend

pytestmark = pytest.mark.timeout(120)


def write_config(path, fake, emu, tmp_path, token):
    path.write_text(config_toml(fake, emu, backend.database_url(tmp_path, "run"), token=token, scan_interval_seconds=5))


async def start(config, tmp_path):
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--config",
        str(config),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_run_connects_through_the_configured_urls_and_stops_on_sigint(tmp_path):
    async with DiscordFake() as fake, SpotifyEmulator() as emu:
        guild = fake.add_guild("CLI Club")
        fake.add_channel(guild, "new-music")
        admin = fake.add_member(guild, name="admin", manage_guild=True)
        config = tmp_path / "config.toml"
        write_config(config, fake, emu, tmp_path, fake.token)
        proc = await start(config, tmp_path)
        try:
            await fake.wait_for_ready(timeout=30)
            for _ in range(200):  # commands are synced in setup_hook, before the gateway connects
                if any(c["name"] == "status" for c in fake.registered_commands):
                    break
                await asyncio.sleep(0.05)
            handle = await fake.invoke(guild, admin, "status")
            await handle.wait_done(timeout=10)
            assert "Schedule" in str(handle.final)
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()[-2000:]
        assert fake.token not in err.decode() + out.decode() and emu.client_secret not in err.decode()


async def test_a_refused_token_is_one_clear_line(tmp_path):
    async with DiscordFake() as fake, SpotifyEmulator() as emu:
        config = tmp_path / "config.toml"
        write_config(config, fake, emu, tmp_path, "not-the-token")
        proc = await start(config, tmp_path)
        _out, err = await asyncio.wait_for(proc.communicate(), 60)
        text = err.decode().strip()
        assert proc.returncode == 2
        assert text == "config error: discord.token: Discord refused the token (check DISCORD_TOKEN)"
