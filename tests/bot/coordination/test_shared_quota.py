"""Issue 8 §2: one developer account's Spotify quota, however many bot processes.

The QUOTA_EXCEEDED cooldown is written to the store on the 429 itself and every other process
adopts it at its next heartbeat (search and autocomplete included); the rolling-window rate
limit is split between the live processes; the database clock corrects a skewed host clock.
"""

from __future__ import annotations

import datetime as dt

import aiohttp
import pytest

from bot.coordination.coordinator import DatabaseClock
from bot.settings import DatabaseSettings, Settings, SpotifySettings
from bot.spotify.client import SpotifyClient
from bot.spotify.errors import SpotifyCooldown
from bot.wiring import build_core
from fakes.spotify_emulator import SpotifyEmulator
from storage import spotify_state
from tests import backend

UTC = dt.UTC


async def no_wait(_seconds: float) -> None:
    return None


async def test_a_quota_429_stops_every_process_including_search(db, clock):
    """Two processes built as every process is (``bot.wiring.build_core``): the hooks do it all."""
    url = db.engine.url.render_as_string(hide_password=False)
    async with SpotifyEmulator() as emu, aiohttp.ClientSession() as http:
        artist = emu.add_artist("Quota Queen")

        def settings(rate_limit_per_30s: int) -> Settings:
            return Settings(
                spotify=SpotifySettings(
                    client_id=emu.client_id,
                    client_secret=emu.client_secret,
                    api_base_url=emu.api_base_url,
                    accounts_base_url=emu.accounts_base_url,
                    rate_limit_per_30s=rate_limit_per_30s,
                ),
                database=DatabaseSettings(url=url),
            )

        a = await build_core(settings(0), clock=clock, session=http, sleep=no_wait, owner="a", migrate=False)
        b = await build_core(settings(150), clock=clock, session=http, sleep=no_wait, owner="b", migrate=False)
        async with a, b:
            emu.fail_next(1, status=429, retry_after=86400, reason="QUOTA_EXCEEDED")
            with pytest.raises(SpotifyCooldown):
                await a.spotify.get_artist(artist)
            async with db.sessions() as session:  # written on the 429 itself, not at the end of a run
                until, reason = await spotify_state.get_cooldown(session)
            assert until is not None and until > clock() + dt.timedelta(hours=23) and reason == "QUOTA_EXCEEDED"
            # Process b has not been told by Spotify; its next heartbeat adopts the cooldown.
            assert (await b.spotify.search_artists("Quota")) != []
            await b.coordinator.beat()
            with pytest.raises(SpotifyCooldown):
                await b.spotify.search_artists("Quota")
            # Two live processes: each may send half of the account's rolling-window limit.
            assert b.spotify.rate_share == 2


def test_the_rate_limit_is_split_between_live_processes():
    client = SpotifyClient(client_id="x", client_secret="y", rate_limit_per_30s=150)
    assert client.limiter is not None and client.rate_share == 1
    whole = client.limiter.max_rate
    client.share_rate_limit(3)
    assert client.rate_share == 3 and client.limiter.max_rate < whole
    client.share_rate_limit(1)
    assert client.limiter.max_rate == whole


@backend.postgresql_only("the database clock is PostgreSQL's; SQLite has no server")
async def test_the_database_clock_corrects_a_skewed_host_clock(db):
    skewed = lambda: dt.datetime.now(UTC) + dt.timedelta(hours=1)  # noqa: E731 - a host an hour fast
    db_clock = DatabaseClock(db, host_clock=skewed)
    offset = await db_clock.sync()
    assert abs(offset + dt.timedelta(hours=1)) < dt.timedelta(seconds=2)
    assert abs(db_clock() - dt.datetime.now(UTC)) < dt.timedelta(seconds=2)
