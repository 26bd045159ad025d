"""``storage.db``: the deadlock retry helper (``retry_transaction``, ``is_retryable``), on a faked
deadlock and on a real one (PostgreSQL's row locks)."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import OperationalError

from storage.db import is_retryable, open_database, retry_transaction, store_failed, unwritable_reason
from storage.models import Artist
from tests import backend

postgresql_only = backend.postgresql_only("row-lock deadlocks")


class Retryable(Exception):
    sqlstate = "40P01"


def dbapi_error(code: str | None) -> OperationalError:
    orig = Retryable("deadlock detected") if code == "40P01" else Exception("boom")
    return OperationalError("UPDATE artists …", {}, orig)


async def test_retry_transaction_runs_again_after_a_deadlock_and_commits(db):
    calls = []

    async def work(session):
        calls.append(1)
        session.add(Artist(id=f"r{len(calls)}", name="x", group_state={}))
        if len(calls) < 3:
            raise dbapi_error("40P01")
        return "done"

    assert await retry_transaction(db.sessions, work, max_backoff=0.01) == "done"
    assert len(calls) == 3
    async with db.sessions() as s:  # the failed attempts were rolled back, the last one committed
        assert (await s.scalars(select(Artist.id))).all() == ["r3"]


async def test_retry_transaction_gives_up_after_its_attempts_and_never_retries_other_errors(db):
    calls = []

    async def deadlocking(session):
        calls.append(1)
        raise dbapi_error("40P01")

    with pytest.raises(OperationalError):
        await retry_transaction(db.sessions, deadlocking, attempts=2, max_backoff=0.01)
    assert len(calls) == 2
    calls.clear()

    async def failing(session):
        calls.append(1)
        raise dbapi_error(None)

    with pytest.raises(OperationalError):
        await retry_transaction(db.sessions, failing, max_backoff=0.01)
    assert len(calls) == 1
    assert not is_retryable(dbapi_error(None)) and is_retryable(dbapi_error("40P01"))


async def _two_artists(db, *ids):
    async with db.sessions() as s:
        for artist_id in ids:
            s.add(Artist(id=artist_id, name=artist_id, group_state={}))
        await s.commit()


@postgresql_only
async def test_a_real_deadlock_is_retried_and_both_transactions_succeed(db):
    await _two_artists(db, "x", "y")
    both_locked_first = asyncio.Barrier(2)
    attempts = {"xy": 0, "yx": 0}

    def work(order):
        async def run(session):
            attempts[order] += 1
            first, second = order
            await session.execute(update(Artist).where(Artist.id == first).values(runs_skipped=Artist.runs_skipped + 1))
            if attempts[order] == 1:
                await asyncio.wait_for(both_locked_first.wait(), 10)
            await session.execute(
                update(Artist).where(Artist.id == second).values(runs_skipped=Artist.runs_skipped + 1)
            )

        return run

    async with asyncio.timeout(30):
        await asyncio.gather(retry_transaction(db.sessions, work("xy")), retry_transaction(db.sessions, work("yx")))
    assert sorted(attempts.values()) == [1, 2]  # PostgreSQL killed one of them once
    async with db.sessions() as s:
        assert dict((await s.execute(select(Artist.id, Artist.runs_skipped))).all()) == {"x": 2, "y": 2}


class DiskFull(Exception):
    sqlstate = "53100"


@pytest.mark.parametrize(
    "orig, reason",
    [
        (sqlite3.OperationalError("database or disk is full"), "its disk is full"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "it is read-only"),
        (DiskFull('could not extend file "base/16384/16385": No space left on device'), "its disk is full"),
        (sqlite3.OperationalError("database is locked"), None),
        (Exception("boom"), None),
    ],
)
def test_unwritable_reason_names_a_full_disk_or_a_read_only_database_and_nothing_else(orig, reason):
    wrapped = OperationalError("INSERT INTO runs …", {}, orig)
    assert unwritable_reason(wrapped) == reason
    chained = RuntimeError("the run could not start")
    chained.__cause__ = wrapped
    assert unwritable_reason(chained) == reason


async def test_a_write_to_a_read_only_sqlite_database_is_named_as_such(tmp_path):
    if backend.backend() != "sqlite":
        pytest.skip("SQLite only: PRAGMA query_only")
    database = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'ro.db'}")
    try:
        with pytest.raises(OperationalError) as caught:
            async with database.transaction() as session:
                await session.execute(text("PRAGMA query_only = 1"))
                session.add(Artist(id="ro", name="x", group_state={}))
        assert unwritable_reason(caught.value) == "it is read-only"
    finally:
        await database.close()


class ShuttingDown(Exception):
    sqlstate = "57P01"


class Dropped(Exception):
    sqlstate = "08006"


@pytest.mark.parametrize(
    "orig, failed",
    [
        (ConnectionRefusedError(111, "Connect call failed"), True),
        (ShuttingDown("terminating connection due to administrator command"), True),
        (Dropped("connection failure"), True),
        (sqlite3.OperationalError("database or disk is full"), True),
        (Retryable("deadlock detected"), False),
        (sqlite3.IntegrityError("UNIQUE constraint failed: deliveries.guild_id"), False),
        (ValueError("a bug"), False),
    ],
)
def test_store_failed_tells_the_database_failing_from_the_statement_failing(orig, failed):
    assert store_failed(OperationalError("SELECT …", {}, orig)) is failed
    assert store_failed(orig) is failed
