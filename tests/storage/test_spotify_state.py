"""``storage.spotify_state``: the Spotify cooldown shared by every process."""

from __future__ import annotations

import datetime as dt

from storage import spotify_state


async def test_cooldown_roundtrip_keeps_the_longest(db, clock):
    async with db.sessions() as s:
        assert await spotify_state.get_cooldown(s) == (None, None)
        later = clock() + dt.timedelta(hours=24)
        await spotify_state.set_cooldown(s, later, "QUOTA_EXCEEDED")
        await spotify_state.set_cooldown(s, clock() + dt.timedelta(minutes=5), "rate limit")
        await s.commit()
    async with db.sessions() as s:
        assert await spotify_state.get_cooldown(s) == (later, "QUOTA_EXCEEDED")
        await spotify_state.set_cooldown(s, None, None)
        assert await spotify_state.get_cooldown(s) == (None, None)
