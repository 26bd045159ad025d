"""Helpers of the storage tests: forcing two sessions to write the same key at once."""

from __future__ import annotations

import asyncio


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
