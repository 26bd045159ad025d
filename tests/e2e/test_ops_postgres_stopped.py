"""``/readyz`` of a real ``release-bot run`` process while its PostgreSQL server is stopped.

The process's database is a server of the test's own (:mod:`tests.e2e.pg_server`): with the server
stopped, ``/readyz`` answers 503 naming the database (``/livez`` still answers: the process is alive
and must not be restarted for an outage of its database); once the server is back it answers 200 by
itself, with no restart of the bot. ``/metrics`` keeps answering throughout.
"""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from fakes.discord_fake import DiscordFake
from fakes.spotify_emulator import SpotifyEmulator
from tests.e2e.ops import get
from tests.e2e.pg_server import PgServer, pg_server  # noqa: F401 - the fixture
from tests.e2e.processes import BotProcess, process_config, until

pytestmark = pytest.mark.timeout(120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def readyz(base: str) -> tuple[int, str] | None:
    try:
        return await get(base + "/readyz")
    except aiohttp.ClientConnectionError:
        return None


async def test_readyz_is_503_while_the_database_is_stopped_and_200_once_it_is_back(tmp_path, pg_server: PgServer):  # noqa: F811
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with DiscordFake() as fake, SpotifyEmulator() as emu:
        guild = fake.add_guild("Ops Club")
        fake.add_channel(guild, "new-music")
        config = tmp_path / "bot.toml"
        config.write_text(process_config(fake, emu, pg_server.url, sections={"http": {"port": port}}))
        bot = BotProcess(config, tmp_path, "bot")
        await bot.start()
        try:

            async def answer(status: int) -> str | None:
                got = await readyz(base)
                return got[1] if got is not None and got[0] == status else None

            body = await until(lambda: answer(200), 60, "/readyz 200 with the database up")
            assert "database: ok" in body

            await asyncio.to_thread(pg_server.stop)
            body = await until(lambda: answer(503), 30, "/readyz 503 with the database stopped", interval=0.2)
            assert "database: FAIL" in body, body
            assert "shards: ok" in body  # only the database is named
            assert await get(base + "/livez") == (200, "ok\n")  # alive: nothing to restart
            status, metrics = await get(base + "/metrics")
            assert status == 200 and "release_bot_shards_ready 1.0" in metrics
            assert bot.alive

            await asyncio.to_thread(pg_server.start)
            body = await until(lambda: answer(200), 30, "/readyz 200 again once the database is back", interval=0.2)
            assert "database: ok" in body and "migrations: ok" in body
        finally:
            code = await bot.stop() if bot.alive else None
        assert code == 0, bot.log()[-3000:]
