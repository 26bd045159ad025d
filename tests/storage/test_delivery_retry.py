"""The retry of a guild's failed posts in the store: the failure count and retry time, the reset, and the
lease that lets one process only retry a guild."""

from __future__ import annotations

import asyncio
import datetime as dt

from storage import guilds, leases

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=7)


async def add(db, guild_id: int, *, next_due_at: dt.datetime = LATER) -> None:
    async with db.transaction() as session:
        await guilds.get_or_create_guild(session, guild_id, now=NOW, next_due_at=next_due_at)


async def fail(db, guild_id: int, retry_at: dt.datetime, error: str = "Discord failed: 503") -> int:
    async with db.transaction() as session:
        failures = await guilds.record_delivery_failure(session, guild_id, error=error)
        await guilds.set_delivery_retry(session, guild_id, retry_at)
    return failures


async def test_failures_count_up_and_a_success_resets_them(db):
    await add(db, 1)
    assert [await fail(db, 1, NOW + dt.timedelta(minutes=n)) for n in (2, 10, 30)] == [1, 2, 3]
    async with db.transaction() as session:
        assert await guilds.delivery_retry(session, 1) == guilds.DeliveryRetry(
            NOW + dt.timedelta(minutes=30), 3, "Discord failed: 503"
        )
        assert await guilds.clear_delivery_retry(session, 1) is True
        assert await guilds.clear_delivery_retry(session, 1) is False  # nothing waits any more
        assert await guilds.delivery_retry(session, 1) == guilds.DeliveryRetry(None, 0, None)
        assert await guilds.delivery_retry(session, 2) is None
        assert await guilds.record_delivery_failure(session, 2, error="x") == 0  # unknown guild


async def test_only_due_retries_of_guilds_not_due_weekly_and_not_leased_are_claimed(db):
    await add(db, 1)
    await add(db, 2)
    await add(db, 3, next_due_at=NOW)  # due weekly: that run delivers it
    await add(db, 4)
    await fail(db, 1, NOW)
    await fail(db, 2, NOW + dt.timedelta(minutes=1))  # not yet
    await fail(db, 3, NOW)
    await fail(db, 4, NOW - dt.timedelta(minutes=1))
    async with db.transaction() as session:
        assert await guilds.retry_due_guilds(session, NOW) == [4, 1]
        assert await leases.any_retry_due(session, NOW) is True
        assert await leases.claim_retry_guilds(session, "a", now=NOW, lease_seconds=30, limit=1) == [4]
        assert await leases.claim_retry_guilds(session, "b", now=NOW, lease_seconds=30) == [1]
        assert await leases.claim_retry_guilds(session, "c", now=NOW, lease_seconds=30) == []
        assert await leases.any_retry_due(session, NOW) is False
        # An expired lease (a dead process's) is taken over.
        later = NOW + dt.timedelta(seconds=31)
        assert await leases.claim_retry_guilds(session, "c", now=later, lease_seconds=30) == [1, 4]


async def test_two_processes_claiming_at_once_get_disjoint_guilds(db):
    for g in range(1, 11):
        await add(db, g)
        await fail(db, g, NOW)

    async def claim(owner: str) -> list[int]:
        async with db.transaction() as session:
            return await leases.claim_retry_guilds(session, owner, now=NOW, lease_seconds=30)

    a, b = await asyncio.gather(claim("a"), claim("b"))
    assert sorted(a + b) == list(range(1, 11)) and not set(a) & set(b)
