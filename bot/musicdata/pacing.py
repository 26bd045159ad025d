"""A request rate shared by every process on one database: MusicBrainz allows about one request a
second per IP (``../shared/musicdata/README.md`` 3(d)), and the bot's processes share one.

:class:`SharedRateLimit` hands out request slots ``interval`` seconds apart from one row of the
store (``rate_slots``, :func:`storage.musicdata.take_rate_slot`: one race-free ``UPDATE … SET
next_at = max(next_at, now) + interval RETURNING``) and waits until the slot it got. Whatever
the number of processes, two requests never start less than ``interval`` apart by the shared
clock. After a 503 :meth:`SharedRateLimit.hold_off` pushes every process's next slot back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bot.clock import Clock, utcnow
from storage import musicdata
from storage.db import Database

Sleep = Callable[[float], Awaitable[object]]
"""``await sleep(seconds)``: how the limiter waits (``asyncio.sleep``; tests inject simulated time)."""


class SharedRateLimit:
    """One request per ``interval_seconds`` (seconds) under ``name``, across every process on ``db``.

    ``clock``: aware UTC now — with several processes the coordinator's database-corrected clock,
    so hosts with skewed clocks agree on the slots; ``sleep``: the waits. ``waited_seconds`` adds up
    the time spent waiting for slots.
    """

    def __init__(
        self,
        db: Database,
        name: str,
        *,
        interval_seconds: float = 1.0,
        clock: Clock = utcnow,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self.db = db
        self.name = name
        self.interval_seconds = float(interval_seconds)
        self.clock = clock
        self.sleep = sleep
        self.waited_seconds = 0.0

    async def wait_turn(self) -> None:
        """Take the next free slot and wait until it starts (at once when the limit is idle)."""
        async with self.db.transaction() as session:
            slot = await musicdata.take_rate_slot(
                session, self.name, now=self.clock().timestamp(), interval=self.interval_seconds
            )
        wait = slot - self.clock().timestamp()
        if wait > 0:
            self.waited_seconds += wait
            await self.sleep(wait)

    async def hold_off(self, seconds: float) -> None:
        """No process's next slot starts before ``seconds`` (seconds) from now (a later one is kept)."""
        async with self.db.transaction() as session:
            await musicdata.hold_off_rate_slot(session, self.name, until=self.clock().timestamp() + seconds)
