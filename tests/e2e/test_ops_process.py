"""``release-bot run`` as a real process with ``[http] port`` in its config file: /livez answers,
/readyz turns 200 once its shard is ready, /metrics is Prometheus text, and after a clean stop nothing
listens any more. (A test stopping a real PostgreSQL server can point at the same ``[http] port``.)"""

from __future__ import annotations

import socket

import aiohttp
import pytest

from fakes.discord_fake import DiscordFake
from fakes.spotify_emulator import SpotifyEmulator
from tests import backend
from tests.e2e.ops import get, parse
from tests.e2e.processes import BotProcess, process_config, until

pytestmark = pytest.mark.timeout(120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def answers(url: str) -> tuple[int, str] | None:
    try:
        return await get(url)
    except aiohttp.ClientConnectionError:
        return None


async def test_a_bot_process_serves_its_endpoints_on_the_configured_port(tmp_path):
    port = free_port()
    async with DiscordFake() as fake, SpotifyEmulator() as emu:
        guild = fake.add_guild("Ops Club")
        fake.add_channel(guild, "new-music")
        config = tmp_path / "bot.toml"
        config.write_text(
            process_config(fake, emu, backend.database_url(tmp_path, "ops"), sections={"http": {"port": port}})
        )
        bot = BotProcess(config, tmp_path, "bot")
        await bot.start()
        try:
            base = f"http://127.0.0.1:{port}"
            assert await until(lambda: answers(base + "/livez"), 60, "/livez") == (200, "ok\n")

            async def ready() -> str | None:
                answer = await answers(base + "/readyz")
                return answer[1] if answer is not None and answer[0] == 200 else None

            body = await until(ready, 60, "/readyz 200")
            assert "shards: ok 1 ready" in body and "database: ok" in body and "migrations: ok" in body
            status, text = await get(base + "/metrics")
            samples = parse(text)
            assert status == 200 and samples[("release_bot_shards_ready", frozenset())] == 1
            assert samples[("process_resident_memory_bytes", frozenset())] > 0
        finally:
            assert await bot.stop() == 0, bot.log()[-3000:]
        assert await answers(base + "/livez") is None  # stopped with the bot
