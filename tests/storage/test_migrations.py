"""The Alembic migrations applied at start-up build exactly the schema the models describe,
on the run's backend (SQLite or PostgreSQL, ``tests/backend.py``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.pool import QueuePool

from storage.db import MIGRATION_LOCK_KEY, MIGRATIONS_DIR, open_database
from storage.models import Base, BotState, Guild
from tests import backend

postgresql_only = backend.postgresql_only("advisory locks, server settings, asyncpg URLs")


async def test_migrated_database_matches_the_models(tmp_path):
    db = await open_database(backend.database_url(tmp_path, "m", migrated=False))
    try:
        async with db.engine.connect() as conn:

            def diff(sync_conn):
                # Column types are compared on PostgreSQL, where they matter (a 32-bit INTEGER cannot hold a
                # Discord id); SQLite's type affinity makes every integer the same.
                compare_type = sync_conn.dialect.name == "postgresql"
                ctx = MigrationContext.configure(sync_conn, opts={"compare_type": compare_type})
                return compare_metadata(ctx, Base.metadata)

            assert await conn.run_sync(diff) == []
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert {
            "guilds",
            "artists",
            "follows",
            "releases",
            "artist_releases",
            "deliveries",
            "runs",
            "spotify_state",
            "bot_state",
        } <= tables
    finally:
        await db.close()


async def test_opening_twice_is_idempotent_and_keeps_data(tmp_path):
    url = backend.database_url(tmp_path / "data", "bot", migrated=False)  # SQLite: the folder is created
    db = await open_database(url)
    async with db.sessions() as s:
        s.add(BotState(key="k", value="v"))
        await s.commit()
    await db.close()
    db = await open_database(url)
    try:
        async with db.sessions() as s:
            state = await s.get(BotState, "k")
            assert state is not None and state.value == "v"
    finally:
        await db.close()


@postgresql_only
async def test_two_processes_migrating_a_fresh_database_at_once_both_succeed(tmp_path):
    url = backend.database_url(tmp_path, "race", migrated=False)
    first, second = await asyncio.wait_for(asyncio.gather(open_database(url), open_database(url)), 60)
    try:
        for db in (first, second):
            async with db.sessions() as s:
                s.add(BotState(key=f"k{id(db)}", value="v"))
                await s.commit()
        async with first.engine.connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
        assert len(versions) == 1
    finally:
        await first.close()
        await second.close()


@postgresql_only
async def test_migration_waits_for_the_advisory_lock(tmp_path):
    url = backend.database_url(tmp_path, "lock", migrated=False)
    holder = await open_database(url, migrate=False)
    try:
        async with holder.engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            await conn.commit()
            opening = asyncio.create_task(open_database(url))
            await asyncio.sleep(0.5)
            assert not opening.done()  # another migrator holds the lock: this one waits
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            await conn.commit()
            db = await asyncio.wait_for(opening, 30)
        try:
            async with db.engine.connect() as conn:
                held = (
                    await conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"))
                ).scalar_one()
            assert held == 0  # released after migrating
            async with db.sessions() as s:
                assert await s.get(BotState, "missing") is None  # the schema is there
        finally:
            await db.close()
    finally:
        await holder.close()


@postgresql_only
async def test_postgresql_engine_gets_the_configured_pool_and_application_name(tmp_path):
    db = await open_database(backend.database_url(tmp_path, "opts"), pool_size=3, application_name="rb-test")
    try:
        pool = db.engine.pool
        assert isinstance(pool, QueuePool) and pool.size() == 3
        async with db.engine.connect() as conn:
            name = (await conn.execute(text("SELECT current_setting('application_name')"))).scalar_one()
        assert name == "rb-test"
    finally:
        await db.close()


async def test_the_test_database_is_on_the_backend_this_run_asked_for(db):
    # The PostgreSQL pass of scripts/test.sh must really run on PostgreSQL, not fall back to SQLite.
    assert db.engine.dialect.name == backend.backend()
    assert bool(os.environ.get(backend.ENV)) == (db.engine.dialect.name == "postgresql")


@postgresql_only
async def test_a_plain_postgresql_url_uses_the_installed_async_driver(tmp_path):
    url = backend.database_url(tmp_path, "plain").replace("postgresql+asyncpg://", "postgres://")
    db = await open_database(url)
    try:
        assert db.engine.dialect.driver == "asyncpg"
        async with db.sessions() as s:
            assert await s.get(BotState, "none") is None
    finally:
        await db.close()


async def test_a_database_handed_out_again_is_as_fresh_as_a_new_one(tmp_path, clock):
    # tests/backend.py recycles PostgreSQL test databases: nothing of a test may leak into the next one.
    from storage import guilds
    from storage.models import Guild, Run

    mark = backend.created_count()
    url = backend.database_url(tmp_path, "first")
    db = await open_database(url)
    async with db.sessions() as s:
        await guilds.get_or_create_guild(s, 1, now=clock(), next_due_at=clock())
        s.add_all([Run(trigger="check", started_at=clock()), BotState(key="k", value="v")])
        await s.commit()
    await db.close()
    backend.drop_test_databases(mark)

    db = await open_database(backend.database_url(tmp_path, "second"))
    try:
        async with db.sessions() as s:
            assert await s.get(Guild, 1) is None and await s.get(BotState, "k") is None
            run = Run(trigger="check", started_at=clock())
            s.add(run)
            await s.commit()
            assert run.id == 1  # sequences restart too
    finally:
        await db.close()


async def test_0006_adds_ep_to_the_guilds_posting_singles(tmp_path):
    """A database at revision 0005: guilds posting singles keep getting EPs (which Spotify labels
    ``single``) once 0006 makes ``ep`` a type of its own; the others' types are left as they were."""
    db = await open_database(backend.database_url(tmp_path, "m0005", migrated=False), migrate=False)

    def upgrade_to(revision: str):
        def run(sync_conn) -> None:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS_DIR))
            config.attributes["connection"] = sync_conn
            command.upgrade(config, revision)

        return run

    stored = {
        1: '["album", "single", "compilation"]',  # the old default
        2: '["single"]',
        3: '["album", "appears_on"]',  # no singles: no EPs either
        4: '["single", "ep"]',  # already has it (not added twice)
    }
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(upgrade_to("0005"))
            for guild_id, types in stored.items():
                await conn.execute(
                    text(
                        "INSERT INTO guilds (id, schedule_day, schedule_time, timezone, next_due_at, created_at, "
                        "album_groups, filters) VALUES (:id, 4, '09:00', 'UTC', :at, :at, :types, '{}')"
                    ),
                    {"id": guild_id, "at": dt.datetime(2026, 11, 20), "types": types},
                )
        async with db.engine.begin() as conn:
            await conn.run_sync(upgrade_to("head"))  # through 0006 (the models read the latest columns)
        async with db.sessions() as s:
            after = {g.id: g.album_groups for g in (await s.scalars(select(Guild).order_by(Guild.id))).all()}
            assert {g.id: g.publish for g in (await s.scalars(select(Guild))).all()} == dict.fromkeys(stored, False)
    finally:
        await db.close()
    assert after == {
        1: ["album", "single", "compilation", "ep"],
        2: ["single", "ep"],
        3: ["album", "appears_on"],
        4: ["single", "ep"],
    }
