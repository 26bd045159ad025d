"""Concurrent writers: get-or-create races, the deadlock retry helper, lock order of batched updates.

Runs on the run's backend (``tests/backend.py``); the deadlock tests need PostgreSQL's row locks.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from storage import catalog, guilds
from storage.db import is_retryable, retry_transaction
from storage.models import Artist, Follow, Guild
from tests import backend

postgresql_only = backend.postgresql_only("row-lock deadlocks")


async def race(db, first_work, second_work):
    """Run ``first_work`` in session A (not committed), start ``second_work`` in session B while A is open,
    then commit A, then B. Returns both results. B's insert of the same key has to wait for A."""
    async with db.sessions() as a, db.sessions() as b:
        first = await first_work(a)

        async def second():
            result = await second_work(b)
            await b.commit()
            return result

        task = asyncio.create_task(second())
        await asyncio.sleep(0.3)  # B reaches its insert and waits for A's row (or lock)
        await a.commit()
        return first, await asyncio.wait_for(task, 30)


async def test_two_sessions_creating_the_same_guild_both_succeed(db, clock):
    first, second = await race(
        db,
        lambda s: guilds.get_or_create_guild(
            s, 10**18, now=clock(), next_due_at=clock(), schedule_day=4, schedule_time="12:00"
        ),
        lambda s: guilds.get_or_create_guild(
            s, 10**18, now=clock(), next_due_at=clock(), schedule_day=0, schedule_time="08:00"
        ),
    )
    assert first.id == second.id == 10**18
    assert (second.schedule_day, second.schedule_time) == (4, "12:00")  # the winner's row, not an error
    async with db.sessions() as s:
        assert len((await s.scalars(select(Guild))).all()) == 1


async def test_two_sessions_creating_the_same_artist_both_succeed(db):
    first, second = await race(
        db,
        lambda s: catalog.get_or_create_artist(s, "A" * 22, "Nova", "http://img/1"),
        lambda s: catalog.get_or_create_artist(s, "A" * 22, "Nova", "http://img/2"),
    )
    assert first.id == second.id and second.name == "Nova" and second.image_url == "http://img/1"


async def test_two_sessions_following_the_same_artist_both_succeed_and_keep_the_first_time(db, clock):
    async with db.sessions() as s:
        await guilds.get_or_create_guild(s, 7, now=clock(), next_due_at=clock())
        await catalog.get_or_create_artist(s, "A" * 22, "Nova")
        await s.commit()
    later = clock() + dt.timedelta(hours=1)
    first, second = await race(
        db,
        lambda s: guilds.follow_artist(s, 7, "A" * 22, now=clock()),
        lambda s: guilds.follow_artist(s, 7, "A" * 22, now=later),
    )
    assert first.followed_at == second.followed_at == clock()
    async with db.sessions() as s:
        assert len((await s.scalars(select(Follow))).all()) == 1


async def test_follow_of_an_unknown_artist_is_still_refused(db, clock):
    async with db.sessions() as s:
        await guilds.get_or_create_guild(s, 7, now=clock(), next_due_at=clock())
        with pytest.raises(IntegrityError):
            await guilds.follow_artist(s, 7, "missing", now=clock())


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


@postgresql_only
async def test_concurrent_store_checks_with_overlapping_artists_do_not_deadlock(db):
    ids = [f"a{i:04d}" for i in range(400)]
    async with db.sessions() as s:
        await catalog.store_checks(s, new_artists=[{"id": i, "name": i, "group_state": {}} for i in ids])
        await s.commit()

    async def store(order):
        async with db.sessions() as s:
            await catalog.store_checks(s, artist_updates=[{"id": i, "runs_skipped": 1} for i in order])
            await s.execute(text("SELECT pg_sleep(0.05)"))
            await s.commit()

    for _ in range(5):  # in input order, half of these pairs deadlock; in key order, none can
        await asyncio.wait_for(asyncio.gather(store(ids), store(ids[::-1])), 30)
