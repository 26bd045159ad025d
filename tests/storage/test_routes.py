"""``storage.routes``: a guild's routes by release type and by artist, set (the last writer wins)
and cleared, never another guild's."""

from __future__ import annotations

import pytest

from storage import routes
from tests.bot.helpers import add_guild

ARTIST = "4" * 22


async def test_set_replace_and_clear_routes_per_guild(db, clock):
    await add_guild(db, 1, now=clock())
    await add_guild(db, 2, now=clock())
    async with db.transaction() as s:
        assert not await routes.guild_routes(s, 1)
        await routes.set_route(s, 1, "type", "single", 500)
        await routes.set_route(s, 1, "artist", ARTIST, 600)
        await routes.set_route(s, 1, "type", "single", 501)  # replaces, no second row
        await routes.set_route(s, 2, "type", "album", 700)
    async with db.transaction() as s:
        mine = await routes.guild_routes(s, 1)
        assert mine.by_type == {"single": 501} and mine.by_artist == {ARTIST: 600}
        assert mine.channel_ids() == {501, 600}
        assert (await routes.guild_routes(s, 2)).by_type == {"album": 700}
        assert await routes.clear_route(s, 1, "type", "single")
        assert not await routes.clear_route(s, 1, "type", "single")  # nothing left to clear
        assert not await routes.clear_route(s, 2, "artist", ARTIST)  # guild 2 never had it
    async with db.transaction() as s:
        assert (await routes.guild_routes(s, 1)).by_type == {}
        assert (await routes.guild_routes(s, 2)).by_type == {"album": 700}


async def test_an_unknown_kind_is_refused(db, clock):
    await add_guild(db, 1, now=clock())
    async with db.transaction() as s:
        with pytest.raises(ValueError, match="unknown route kind"):
            await routes.set_route(s, 1, "label", "x", 1)
