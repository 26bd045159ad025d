"""``storage.bot_state``: key/value facts kept between starts (the slash commands' hash)."""

from __future__ import annotations

import asyncio

from storage import bot_state
from storage.db import open_database


async def test_read_write_and_replace(db):
    key = bot_state.commands_hash_key(1234)
    assert key == "commands_hash:1234"
    async with db.transaction() as session:
        assert await bot_state.read(session, key) is None
        await bot_state.write(session, key, "aaa")
    async with db.transaction() as session:
        assert await bot_state.read(session, key) == "aaa"
        await bot_state.write(session, key, "bbb")
    async with db.transaction() as session:
        assert await bot_state.read(session, key) == "bbb"
        assert await bot_state.read(session, bot_state.commands_hash_key(99)) is None


async def test_two_processes_writing_the_same_key_both_succeed(db):
    other = await open_database(db.engine.url.render_as_string(hide_password=False), migrate=False)
    try:

        async def write(database, value: str) -> None:
            async with database.transaction() as session:
                await bot_state.write(session, "commands_hash:7", value)

        await asyncio.gather(write(db, "x"), write(other, "y"))
        async with db.transaction() as session:
            assert await bot_state.read(session, "commands_hash:7") in {"x", "y"}
    finally:
        await other.close()
