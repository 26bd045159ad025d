"""Client-side rate limiter (aiolimiter) and the 429 counter."""

from __future__ import annotations

from bot.spotify.client import SpotifyClient
from fakes.spotify_emulator import SpotifyEmulator


async def no_wait(_seconds: float) -> None:
    return None


async def test_429s_are_counted_and_the_limiter_is_shared():
    async with SpotifyEmulator(seed="limits") as emu:
        artist = emu.add_artist("Limited")
        client = SpotifyClient(
            client_id=emu.client_id,
            client_secret=emu.client_secret,
            api_base_url=emu.api_base_url,
            accounts_base_url=emu.accounts_base_url,
            sleep=no_wait,
            rate_limit_per_30s=62,
        )
        try:
            emu.fail_next(status=429, retry_after=1)
            await client.get_artist(artist)  # 429, then the retry succeeds
            assert client.rate_limited == 1 and client.request_count == 2
            # 62 per rolling 30 s: a bucket of 2, refilled at 60 per 30.5 s (see rolling_window_limiter).
            assert client.limiter is not None and client.limiter.max_rate == 2
            assert abs(client.limiter.time_period - 2 / (60 / 30.5)) < 1e-9
            await client.artist_albums(artist, include_groups=["single"])
            assert client.request_count == 3  # the third request waited for a token, then went through
        finally:
            await client.close()
    unlimited = SpotifyClient(client_id="x", client_secret="y")
    assert unlimited.limiter is None and unlimited.rate_limited == 0
