"""``storage.health``: the database answers, its migrations are at head, and every statement is timed by kind."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from storage import health
from storage.db import open_database
from tests import backend


async def test_ping_answers_and_a_migrated_database_is_at_head(db):
    await health.ping(db)
    state = await health.migration_state(db)
    assert state.is_current and state.current == state.head == health.head_revision()


async def test_an_older_revision_and_a_never_migrated_database_are_not_current(db, tmp_path):
    async with db.transaction() as session:
        await session.execute(text("UPDATE alembic_version SET version_num = '0007'"))
    try:
        state = await health.migration_state(db)
        assert state.current == "0007" and not state.is_current
    finally:  # a PostgreSQL test database is recycled for later tests
        async with db.transaction() as session:
            await session.execute(
                text("UPDATE alembic_version SET version_num = :head"), {"head": health.head_revision()}
            )

    fresh = await open_database(backend.database_url(tmp_path, "never-migrated", migrated=False), migrate=False)
    try:
        await health.ping(fresh)
        state = await health.migration_state(fresh)
        assert state.current is None and not state.is_current
    finally:
        await fresh.close()


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("SELECT 1", "select"),
        ("  select * from x", "select"),
        ("INSERT INTO t VALUES (1)", "insert"),
        ("UPDATE t SET a = 1", "update"),
        ("DELETE FROM t", "delete"),
        ("WITH pick AS (SELECT 1) UPDATE t SET a = 1", "other"),
        ("PRAGMA busy_timeout=1", "other"),
        ("", "other"),
    ],
)
def test_statement_kind_is_one_of_five(statement, kind):
    assert health.statement_kind(statement) == kind


async def test_time_statements_reports_each_statement_until_removed(db):
    seen: list[tuple[str, float]] = []
    remove = health.time_statements(db, lambda kind, seconds: seen.append((kind, seconds)))
    async with db.transaction() as session:
        await session.execute(text("SELECT 1"))
        await session.execute(text("DELETE FROM leases WHERE name = 'nothing'"))
    kinds = [k for k, _ in seen]
    assert "select" in kinds and "delete" in kinds
    assert all(seconds >= 0 for _, seconds in seen)
    with pytest.raises(Exception):  # noqa: B017 - the driver's error, whatever its class
        async with db.transaction() as session:
            await session.execute(text("SELECT * FROM no_such_table"))
    remove()
    count = len(seen)
    async with db.transaction() as session:
        await session.execute(text("SELECT 1"))
    assert len(seen) == count
