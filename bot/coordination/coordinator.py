"""This process among several on one database (issue 8 §2; design in docs/multiprocess.md).

:class:`Coordinator` gives the process an owner id (``host:pid:random``), registers it in
``processes``, and runs a heartbeat task that keeps everything the process holds alive
(guild leases, artist claims, named leases: :mod:`storage.leases`). A process that
dies stops beating; after ``lease_seconds`` another process takes over what it held.
:class:`DatabaseClock` is the clock of every decision shared between processes ("new",
lease expiry): the host clock corrected by its measured offset to the database server's
clock, so processes on hosts with skewed clocks agree. Plain async code, no discord import.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from bot.clock import Clock, utcnow
from storage import leases
from storage.db import Database

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_HEARTBEAT_SECONDS = 10.0


def host_key() -> str:
    """Where this process's pid means something: the host name and the pid namespace.

    Two processes with the same key can see each other's pids (``/proc``), so a process
    row of this key whose pid is gone belongs to a process that died (killed, crashed)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = "?"
    return f"{socket.gethostname()}|{namespace}"[:255]


def pid_alive(pid: int) -> bool:
    """True when process ``pid`` exists on this host and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


class LeaseBusy(Exception):
    """Raised by :meth:`Coordinator.lease` when another live process holds the lease (``holder``)."""

    def __init__(self, name: str, holder: str | None) -> None:
        super().__init__(f"lease {name!r} is held by {holder or 'another process'}")
        self.name = name
        self.holder = holder


class DatabaseClock:
    """A :data:`bot.clock.Clock` returning aware UTC now by the database server's clock.

    ``await sync()`` measures ``server now − host now`` (PostgreSQL ``clock_timestamp()``, taken
    at the midpoint of the round trip: :func:`storage.leases.sample_database_clock`); calls in
    between add that offset to the host clock, so the clock is synchronous and cheap. SQLite has
    no server: the offset stays 0 (a SQLite file is shared by processes of one host only).
    """

    def __init__(self, db: Database, host_clock: Clock = utcnow) -> None:
        self.db = db
        self.host_clock = host_clock
        self.offset = dt.timedelta(0)

    async def sync(self) -> dt.timedelta:
        """Measure the offset to the database clock; returns it. Errors propagate (a store failure)."""
        async with self.db.transaction() as session:
            sample = await leases.sample_database_clock(session, self.host_clock)
        if sample is not None:
            midpoint = sample.host_before + dt.timedelta(seconds=sample.round_trip_seconds / 2)
            self.offset = sample.server - midpoint
        return self.offset

    def __call__(self) -> dt.datetime:
        """Now (aware UTC): the host clock plus the last measured offset."""
        return self.host_clock() + self.offset


class Coordinator:
    """This process's identity, heartbeat and leases.

    ``db``: the store; ``clock``: aware UTC now (default: a :class:`DatabaseClock`; tests
    inject their own); ``lease_seconds``: how long a lease or claim outlives the last
    heartbeat of its owner (a dead process's work is taken over after it); ``heartbeat_seconds``:
    the beat; ``shard_ids``: recorded in ``processes`` for ``/status``-style diagnostics.
    """

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
        shard_ids: Sequence[int] | None = None,
        owner: str | None = None,
    ) -> None:
        if heartbeat_seconds <= 0 or lease_seconds <= heartbeat_seconds:
            raise ValueError("lease_seconds must exceed heartbeat_seconds > 0")
        self.db = db
        self.db_clock: DatabaseClock | None = None
        if clock is None:
            clock = self.db_clock = DatabaseClock(db)
        self.clock: Clock = clock
        self.lease_seconds = float(lease_seconds)
        self.heartbeat_seconds = float(heartbeat_seconds)
        self.shard_ids = list(shard_ids) if shard_ids else None
        host = socket.gethostname()
        self.owner = owner or f"{host[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
        self._host = host_key()
        self._task: asyncio.Task[None] | None = None
        #: async callables awaited after each heartbeat (e.g. sharing the Spotify cooldown and rate limit)
        self.on_beat: list[Callable[[], Awaitable[object]]] = []
        #: called with ``(kind, count)`` when leases of a process that stopped beating are taken over
        #: (``guild``: due guilds' runs, ``lease``: named leases); the metrics count them
        self.on_takeover: list[Callable[[str, int], object]] = []

    async def start(self) -> None:
        """Register this process, reap dead processes of this host, start the heartbeat (idempotent).

        A process of this host (same :func:`host_key`) whose pid is gone died without giving
        its leases up (killed, crashed): they are released now instead of after their expiry,
        so a restarted bot takes its guilds back at once. Processes elsewhere are judged by
        their heartbeat only.
        """
        if self.db_clock is not None:
            await self.db_clock.sync()
        async with self.db.transaction() as session:
            await leases.register_process(
                session, self.owner, host=self._host, pid=os.getpid(), shard_ids=self.shard_ids, now=self.clock()
            )
            await leases.prune_processes(session, now=self.clock(), keep_seconds=7 * 86400)
            for other, pid in await leases.processes_of_host(session, self._host):
                if other != self.owner and pid != os.getpid() and not pid_alive(pid):
                    log.info("process %s (pid %d) of this host is gone: releasing what it held", other, pid)
                    await leases.forget_process(session, other)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._beat_forever(), name="release-bot-heartbeat")

    async def beat(self) -> None:
        """One heartbeat: re-sync the clock, extend this process's row and everything it holds."""
        if self.db_clock is not None:
            await self.db_clock.sync()
        for step in leases.heartbeat_steps(self.owner, now=self.clock(), lease_seconds=self.lease_seconds):
            await self.db.retrying(step)
        for callback in list(self.on_beat):
            try:
                await callback()
            except Exception:  # one follower's failure never stops the heartbeat
                log.warning("heartbeat callback %r failed", callback, exc_info=True)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                await self.beat()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store is down for a moment: leases may lapse, nothing is lost
                log.warning("heartbeat failed; retrying at the next beat", exc_info=True)

    async def stop(self) -> None:
        """Stop beating and give everything up (a clean shutdown: others need not wait for expiry)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        try:
            async with self.db.transaction() as session:
                await leases.forget_process(session, self.owner)
        except Exception:  # shutting down with the store gone: what it held expires by itself
            log.warning("could not unregister process %s", self.owner, exc_info=True)

    async def live_owners(self) -> set[str]:
        """Ids of the live processes (this one included once started)."""
        async with self.db.transaction() as session:
            live = await leases.live_owners(session, now=self.clock(), lease_seconds=self.lease_seconds)
        return live | {self.owner}

    async def try_lease(self, name: str) -> bool:
        """Take (or renew) named lease ``name``; False while another live process holds it. Taking it
        from a process that let it expire is a takeover (:meth:`taken_over`)."""
        now = self.clock()
        async with self.db.transaction() as session:
            dead = await leases.expired_holder(session, name, self.owner, now=now)
            held = await leases.acquire_lease(session, name, self.owner, now=now, lease_seconds=self.lease_seconds)
        if held and dead is not None:
            self.taken_over("lease", 1)
        return held

    def taken_over(self, kind: str, count: int) -> None:
        """``count`` leases of ``kind`` (``guild`` | ``lease``) were taken from processes that stopped
        beating: logged, and told to :attr:`on_takeover` (a callback's failure is only logged)."""
        if count <= 0:
            return
        log.info("took over %d %s lease(s) from a process that stopped beating", count, kind)
        for callback in list(self.on_takeover):
            try:
                callback(kind, count)
            except Exception:
                log.warning("takeover callback %r failed", callback, exc_info=True)

    async def release(self, name: str) -> None:
        """Give named lease ``name`` up."""
        async with self.db.transaction() as session:
            await leases.release_lease(session, name, self.owner)

    async def holder(self, name: str) -> str | None:
        """The owner of named lease ``name`` now, or None."""
        async with self.db.transaction() as session:
            return await leases.lease_holder(session, name, now=self.clock())

    @contextlib.asynccontextmanager
    async def lease(self, name: str, *, wait_seconds: float = 0.0, poll_seconds: float = 0.2) -> AsyncIterator[None]:
        """Hold named lease ``name`` for the block (kept alive by the heartbeat, released after).

        Waits up to ``wait_seconds`` (seconds) for another holder to give it up; raises
        :class:`LeaseBusy` if it is still held then.
        """
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while not await self.try_lease(name):
            if time.monotonic() >= deadline:
                raise LeaseBusy(name, await self.holder(name))
            await asyncio.sleep(poll_seconds)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                await self.release(name)
