"""The Alembic migrations applied at start-up build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from storage.db import open_database
from storage.models import Base


async def test_migrated_database_matches_the_models(tmp_path):
    db = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        async with db.engine.connect() as conn:
            def diff(sync_conn):
                ctx = MigrationContext.configure(sync_conn, opts={"compare_type": False})
                return compare_metadata(ctx, Base.metadata)

            assert await conn.run_sync(diff) == []
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert {"guilds", "artists", "follows", "releases", "artist_releases", "deliveries", "runs",
                "spotify_state", "bot_state"} <= tables
    finally:
        await db.close()


async def test_opening_twice_is_idempotent_and_keeps_data(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'bot.db'}"
    db = await open_database(url)
    from storage.models import BotState
    async with db.sessions() as s:
        s.add(BotState(key="k", value="v"))
        await s.commit()
    await db.close()
    db = await open_database(url)
    try:
        async with db.sessions() as s:
            assert (await s.get(BotState, "k")).value == "v"
    finally:
        await db.close()
