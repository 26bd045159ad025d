"""Issue 8 §2: leases, claims and the shared day budget hold with several processes on one store.

Each "process" is its own engine on the same database (its own connection pool), as two
``release-bot`` processes would be; the statements race for real.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import text, update

from storage import guilds, leases, spotify_state
from storage.db import Database, open_database
from storage.models import Artist, Guild
from tests.bot.helpers import add_guild

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture
async def other(db: Database):
    """A second engine on the same database: another process."""
    second = await open_database(db.engine.url.render_as_string(hide_password=False), migrate=False)
    try:
        yield second
    finally:
        await second.close()


async def _lease(db: Database, name: str, owner: str, now: dt.datetime = NOW) -> bool:
    async with db.sessions() as session:
        held = await leases.acquire_lease(session, name, owner, now=now, lease_seconds=30)
        await session.commit()
    return held


async def test_a_named_lease_has_one_holder_until_it_expires(db, other):
    results = await asyncio.gather(*(_lease(db if i % 2 else other, "refresh:1", f"p{i}") for i in range(8)))
    assert sum(results) == 1
    winner = f"p{results.index(True)}"
    assert await _lease(db, "refresh:1", winner)  # the holder renews
    assert not await _lease(other, "refresh:1", "late", NOW + dt.timedelta(seconds=29))
    assert await _lease(other, "refresh:1", "late", NOW + dt.timedelta(seconds=31))  # expired: taken over
    async with db.sessions() as session:
        assert await leases.lease_holder(session, "refresh:1", now=NOW + dt.timedelta(seconds=32)) == "late"


async def _claim_guilds(db: Database, owner: str, now: dt.datetime = NOW, limit: int | None = None) -> list[int]:
    async with db.sessions() as session:
        got = await leases.claim_due_guilds(session, owner, now=now, lease_seconds=60, limit=limit)
        await session.commit()
    return [g for g, _due in got]


async def test_each_due_guild_is_leased_by_one_process(db, other):
    for gid in range(1, 41):
        await add_guild(db, gid, now=NOW - dt.timedelta(days=8))
    async with db.sessions() as session:
        for guild in await guilds.guilds_by_ids(session, None):
            guild.next_due_at = NOW - dt.timedelta(minutes=guild.id % 5)
        (await session.get(Guild, 40)).next_due_at = NOW + dt.timedelta(days=1)  # not due
        await session.commit()
    got = await asyncio.gather(*(_claim_guilds(db if i % 2 else other, f"p{i}") for i in range(6)))
    flat = [g for part in got for g in part]
    assert sorted(flat) == list(range(1, 40))  # every due guild once, none twice, the future one not
    assert await _claim_guilds(db, "late") == []  # all leased
    # A process that died: its leases expire and another takes the guilds over.
    owner = next(f"p{i}" for i, part in enumerate(got) if part)
    mine = got[int(owner[1:])]
    later = await _claim_guilds(other, "survivor", NOW + dt.timedelta(seconds=61))
    assert sorted(later) == list(range(1, 40)) and set(mine) <= set(later)


async def test_a_due_claim_leases_at_most_its_limit_whatever_the_plan(db):
    # With the statistics of a table of many guilds not due, PostgreSQL runs the pick as the inner
    # side of a nested-loop semi join, once per candidate row: it must still lease ``limit`` guilds.
    async with db.transaction() as session:
        for gid in range(100, 200):
            await guilds.get_or_create_guild(session, gid, now=NOW, next_due_at=NOW + dt.timedelta(days=7))
    async with db.transaction() as session:
        await session.execute(text("ANALYZE guilds"))  # statistics: hardly any guild is due
    async with db.transaction() as session:
        for gid in (1, 2):
            await guilds.get_or_create_guild(session, gid, now=NOW - dt.timedelta(days=8), next_due_at=NOW)
    assert await _claim_guilds(db, "a", limit=1) == [1]
    assert await _claim_guilds(db, "b", limit=1) == [2]
    assert await _claim_guilds(db, "c", limit=1) == []


async def test_finishing_a_lease_needs_to_hold_it(db):
    await add_guild(db, 7, now=NOW - dt.timedelta(days=8))
    async with db.sessions() as session:
        (await session.get(Guild, 7)).next_due_at = NOW
        await session.commit()
    assert await _claim_guilds(db, "a") == [7]
    nxt = NOW + dt.timedelta(days=7)
    async with db.sessions() as session:
        assert not await leases.finish_guild_lease(session, "b", 7, next_due_at=nxt, last_run_at=NOW)
        assert await leases.finish_guild_lease(session, "a", 7, next_due_at=nxt, last_run_at=NOW)
        await session.commit()
    async with db.sessions() as session:
        guild = await session.get(Guild, 7)
        assert guild.next_due_at == nxt and guild.lease_owner is None


async def test_artist_claims_fetch_each_artist_once_and_share_fresh_ones(db, other):
    async with db.sessions() as session:
        for i in range(30):
            session.add(
                Artist(
                    id=f"a{i:02d}",
                    name=f"A{i}",
                    group_state={},
                    baselined_at=NOW - dt.timedelta(days=30),
                    last_checked_at=NOW - dt.timedelta(days=7),
                    runs_skipped=0,
                )
            )
        await session.commit()
    ids = [f"a{i:02d}" for i in range(30)]

    async def claim(database, owner):
        async with database.sessions() as session:
            out = await leases.claim_artists(session, owner, ids, now=NOW, lease_seconds=60, fresh_after=NOW)
            await session.commit()
        return out

    (c1, f1, b1), (c2, f2, b2) = await asyncio.gather(claim(db, "p1"), claim(other, "p2"))
    assert c1.isdisjoint(c2) and c1 | c2 == set(ids)
    assert b1 == c2 and b2 == c1 and not f1 and not f2
    # p1 checks its artists and gives the claims back: for p2 they are now fresh, not to fetch again.
    async with db.sessions() as session:
        await session.execute(
            update(Artist).where(Artist.id.in_(c1)).values(last_checked_at=NOW + dt.timedelta(seconds=1))
        )
        await leases.release_artists(session, "p1", c1)
        await session.commit()
    async with other.sessions() as session:
        c3, f3, b3 = await leases.claim_artists(session, "p2", sorted(b2), now=NOW, lease_seconds=60, fresh_after=NOW)
    assert f3 == c1 and not c3 and not b3


async def test_the_day_budget_is_never_overspent_by_concurrent_processes(db, other):
    async def reserve(database):
        async with database.sessions() as session:
            got = await spotify_state.reserve_budget(session, "2026-11-20", 300, 1000)
            await session.commit()
        return got

    grants = await asyncio.gather(*(reserve(db if i % 2 else other) for i in range(6)))
    assert sum(grants) == 1000 and sorted(grants) == [0, 0, 100, 300, 300, 300]
    async with db.sessions() as session:
        await spotify_state.settle_budget(session, "2026-11-20", -250)  # a run used 50 of its 300
        await session.commit()
        assert await spotify_state.budget_used_today(session, "2026-11-20") == 750
        assert await spotify_state.reserve_budget(session, "2026-11-21", 300, 1000) == 300  # a new UTC day
        await session.commit()


async def test_a_heartbeat_extends_what_its_process_holds_and_nothing_else(db):
    await add_guild(db, 1, now=NOW - dt.timedelta(days=8))
    await add_guild(db, 2, now=NOW - dt.timedelta(days=8))
    async with db.transaction() as session:
        for gid in (1, 2):
            (await session.get(Guild, gid)).next_due_at = NOW
    async with db.transaction() as session:
        await leases.register_process(session, "a", host="h", pid=1, shard_ids=None, now=NOW)
        await leases.register_process(session, "b", host="h", pid=2, shard_ids=None, now=NOW)
        assert await leases.claim_due_guilds(session, "a", now=NOW, lease_seconds=30, limit=1) == [(1, NOW)]
        assert await leases.claim_due_guilds(session, "b", now=NOW, lease_seconds=30) == [(2, NOW)]
        assert await leases.acquire_lease(session, "deliver:1", "a", now=NOW, lease_seconds=30)
    later = NOW + dt.timedelta(seconds=20)
    for step in leases.heartbeat_steps("a", now=later, lease_seconds=30):
        await db.retrying(step)
    expired = NOW + dt.timedelta(seconds=40)  # b's lease has expired, a's was extended to later + 30 s
    async with db.transaction() as session:
        assert await leases.live_owners(session, now=expired, lease_seconds=30) == {"a"}
        assert await leases.lease_holder(session, "deliver:1", now=expired) == "a"
        assert await leases.claim_due_guilds(session, "c", now=expired, lease_seconds=30) == [(2, NOW)]
    async with db.transaction() as session:
        await leases.release_guild_leases(session, "a", [1, 2])  # 2 is c's now: left alone
        assert (await session.get(Guild, 1)).lease_owner is None
        assert (await session.get(Guild, 2)).lease_owner == "c"


async def test_the_database_clock_is_read_on_postgresql_only(db):
    async with db.transaction() as session:
        sample = await leases.sample_database_clock(session, lambda: NOW)
    if db.engine.dialect.name != "postgresql":
        assert sample is None
        return
    assert sample is not None
    assert sample.host_before == NOW and sample.round_trip_seconds >= 0
    assert abs(sample.server - dt.datetime.now(UTC)) < dt.timedelta(seconds=5)
