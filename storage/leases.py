"""Several bot processes on one database (issue 8 §2): process registry, heartbeat, the database
clock, named leases, due-guild leases and artist claims.

Every helper takes an open ``AsyncSession`` and **never commits** (the caller owns the
transaction, as in the other aggregate modules). Times are aware UTC datetimes taken from the
database clock by the caller (``bot.coordination.coordinator.DatabaseClock``), so hosts with skewed
clocks agree on what has expired. Each take-over is one conditional statement — an
``UPDATE … WHERE expired or mine … RETURNING`` or an ``INSERT … ON CONFLICT DO UPDATE
… WHERE expired or mine`` — so two processes never both win, on SQLite (writers are
serialised) and on PostgreSQL (a row lock; the loser re-reads the row and its ``WHERE`` no
longer matches). Due guilds are picked on PostgreSQL with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.dml import Update

from storage._sql import rowcount
from storage.models import Artist, Guild, Lease, Process


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _upsert(session: AsyncSession, model: type[Process] | type[Lease]) -> sqlite.Insert | postgresql.Insert:
    """The dialect's ``INSERT`` (with ``on_conflict_do_update``) into ``model``'s table."""
    if _dialect(session) == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


# --- processes ---------------------------------------------------------------------------


async def register_process(
    session: AsyncSession, owner: str, *, host: str, pid: int, shard_ids: Sequence[int] | None, now: dt.datetime
) -> None:
    """Insert (or refresh) process ``owner``'s row with heartbeat ``now``.

    ``host``: where its ``pid`` means something (``bot.coordination.coordinator.host_key``, cut to
    255 characters); ``shard_ids``: the Discord shards it runs (None: unsharded). A row that
    exists keeps its ``started_at`` and gets the new ``pid`` and heartbeat.
    """
    values = {
        "id": owner,
        "host": host[:255],
        "pid": pid,
        "shard_ids": list(shard_ids) if shard_ids else None,
        "started_at": now,
        "heartbeat_at": now,
    }
    stmt = _upsert(session, Process).values(**values)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[Process.id], set_={"heartbeat_at": now, "pid": pid})
    )


HeartbeatStep = Callable[[AsyncSession], Awaitable[None]]
"""One unit of work of a heartbeat: ``await step(session)`` in a transaction of its own."""


def heartbeat_steps(owner: str, *, now: dt.datetime, lease_seconds: float) -> list[HeartbeatStep]:
    """The units of work of process ``owner``'s heartbeat at ``now``: its row's ``heartbeat_at``, then
    everything it holds extended to ``now + lease_seconds`` seconds (guild leases, artist claims,
    named leases). Run each in a transaction of its own (``bot.coordination.coordinator.Coordinator.beat``):
    a heartbeat then never holds row locks of two tables at once, so it can close no lock cycle
    with another process."""
    until = now + dt.timedelta(seconds=lease_seconds)
    statements = [
        update(Process).where(Process.id == owner).values(heartbeat_at=now),
        update(Guild).where(Guild.lease_owner == owner).values(lease_until=until),
        update(Artist).where(Artist.claim_owner == owner).values(claim_until=until),
        update(Lease).where(Lease.owner == owner).values(expires_at=until),
    ]

    def step(statement: Update) -> HeartbeatStep:
        async def run(session: AsyncSession) -> None:
            await session.execute(statement)

        return run

    return [step(statement) for statement in statements]


async def live_owners(session: AsyncSession, *, now: dt.datetime, lease_seconds: float) -> set[str]:
    """Ids of the processes whose heartbeat is newer than ``now - lease_seconds`` (seconds)."""
    since = now - dt.timedelta(seconds=lease_seconds)
    return set((await session.scalars(select(Process.id).where(Process.heartbeat_at > since))).all())


async def forget_process(session: AsyncSession, owner: str) -> None:
    """A clean shutdown: drop ``owner``'s row, its named leases, guild leases and artist claims."""
    await session.execute(update(Guild).where(Guild.lease_owner == owner).values(lease_owner=None, lease_until=None))
    await session.execute(update(Artist).where(Artist.claim_owner == owner).values(claim_owner=None, claim_until=None))
    await session.execute(delete(Lease).where(Lease.owner == owner))
    await session.execute(delete(Process).where(Process.id == owner))


async def processes_of_host(session: AsyncSession, host: str) -> list[tuple[str, int]]:
    """``[(owner id, pid)]`` of the registered processes of ``host`` (a ``bot.coordination.coordinator.host_key``)."""
    rows = await session.execute(select(Process.id, Process.pid).where(Process.host == host))
    return [(owner, pid) for owner, pid in rows.all()]


async def prune_processes(session: AsyncSession, *, now: dt.datetime, keep_seconds: float) -> int:
    """Delete rows of processes silent for ``keep_seconds`` seconds (long dead); returns how many."""
    since = now - dt.timedelta(seconds=keep_seconds)
    return rowcount(await session.execute(delete(Process).where(Process.heartbeat_at < since)))


# --- the database clock --------------------------------------------------------------------


@dataclass(frozen=True)
class ClockSample:
    """One reading of the database server's clock: ``server`` (aware UTC, PostgreSQL
    ``clock_timestamp()``), ``host_before`` (the host clock just before the query was sent) and
    ``round_trip_seconds`` (the query's round trip, seconds)."""

    server: dt.datetime
    host_before: dt.datetime
    round_trip_seconds: float


async def sample_database_clock(session: AsyncSession, host_clock: Callable[[], dt.datetime]) -> ClockSample | None:
    """Read the server's clock (``SELECT clock_timestamp()``), timing the round trip; None on SQLite.

    SQLite has no server: a SQLite file is shared by processes of one host only, whose clock
    is the clock. The session's connection is checked out before the timing starts, so only
    the query's round trip is measured.
    """
    if _dialect(session) != "postgresql":
        return None
    await session.connection()
    t0 = time.monotonic()
    host_before = host_clock()
    server: dt.datetime = (await session.execute(select(func.clock_timestamp()))).scalar_one()
    round_trip = time.monotonic() - t0
    if server.tzinfo is None:
        server = server.replace(tzinfo=dt.UTC)
    return ClockSample(server=server, host_before=host_before, round_trip_seconds=round_trip)


# --- named leases --------------------------------------------------------------------------


async def acquire_lease(
    session: AsyncSession, name: str, owner: str, *, now: dt.datetime, lease_seconds: float
) -> bool:
    """Take (or renew) lease ``name`` for ``owner`` until ``now + lease_seconds`` (seconds); True when held.

    Fails (False) while another owner holds it unexpired. One statement: an ``INSERT … ON
    CONFLICT (name) DO UPDATE … WHERE expires_at <= now OR owner = me RETURNING name``.
    """
    until = now + dt.timedelta(seconds=lease_seconds)
    stmt = _upsert(session, Lease).values(name=name, owner=owner, expires_at=until)
    upsert = stmt.on_conflict_do_update(
        index_elements=[Lease.name],
        set_={"owner": owner, "expires_at": until},
        where=or_(Lease.expires_at <= now, Lease.owner == owner),
    ).returning(Lease.name)
    return (await session.execute(upsert)).first() is not None


async def expired_holder(session: AsyncSession, name: str, owner: str, *, now: dt.datetime) -> str | None:
    """The other owner whose lease ``name`` expired at ``now`` without being given up (a process that
    stopped beating), or None. Read before :func:`acquire_lease` to tell a takeover from a fresh take."""
    holder: str | None = await session.scalar(
        select(Lease.owner).where(Lease.name == name, Lease.owner != owner, Lease.expires_at <= now)
    )
    return holder


async def release_lease(session: AsyncSession, name: str, owner: str) -> None:
    """Give lease ``name`` up if ``owner`` holds it."""
    await session.execute(delete(Lease).where(Lease.name == name, Lease.owner == owner))


async def lease_holder(session: AsyncSession, name: str, *, now: dt.datetime) -> str | None:
    """The owner holding lease ``name`` unexpired at ``now``, or None."""
    holder: str | None = await session.scalar(select(Lease.owner).where(Lease.name == name, Lease.expires_at > now))
    return holder


# --- due guilds ----------------------------------------------------------------------------


async def anything_due(session: AsyncSession, now: dt.datetime) -> bool:
    """True when some guild's weekly run is due at ``now`` and no live lease holds it (one cheap read)."""
    free = or_(Guild.lease_until.is_(None), Guild.lease_until <= now)
    return (await session.scalar(select(Guild.id).where(Guild.next_due_at <= now, free).limit(1))) is not None


async def count_due(session: AsyncSession, now: dt.datetime) -> int:
    """How many guilds are due at ``now`` and not held by a live lease."""
    free = or_(Guild.lease_until.is_(None), Guild.lease_until <= now)
    return int(await session.scalar(select(func.count()).select_from(Guild).where(Guild.next_due_at <= now, free)) or 0)


async def claim_due_guilds(
    session: AsyncSession, owner: str, *, now: dt.datetime, lease_seconds: float, limit: int | None = None
) -> list[tuple[int, dt.datetime]]:
    """Lease the guilds whose weekly run is due (``next_due_at <= now``) and that no live lease holds.

    Returns ``[(guild id, its next_due_at)]``, earliest first, at most ``limit``. One ``UPDATE
    … WHERE id IN (pick) AND due AND free … RETURNING``: on PostgreSQL the pick is ``FOR UPDATE
    SKIP LOCKED`` (a guild another process is leasing right now is skipped, not waited for), on
    SQLite the statement runs under the database write lock; either way concurrent claimers
    get disjoint batches and a guild is leased by one process only.
    """
    free = or_(Guild.lease_until.is_(None), Guild.lease_until <= now, Guild.lease_owner == owner)
    pick = select(Guild.id).where(Guild.next_due_at <= now, free).order_by(Guild.next_due_at, Guild.id)
    if limit is not None:
        pick = pick.limit(limit)
    until = now + dt.timedelta(seconds=lease_seconds)
    claim = (
        update(Guild)
        .where(Guild.next_due_at <= now, free)
        .values(lease_owner=owner, lease_until=until)
        .returning(Guild.id, Guild.next_due_at)
    )
    # One statement: the pick is evaluated under the write (SQLite) or row (PostgreSQL) locks of the
    # UPDATE itself, so concurrent claimers get disjoint batches instead of colliding on one.
    if _dialect(session) == "postgresql":
        # The pick runs once, as a materialized CTE: inside ``IN (…)`` PostgreSQL may rescan it for
        # every candidate row (a nested-loop semi join), each rescan skipping the rows the last one
        # locked, and so lease more than ``limit`` guilds.
        picked = pick.with_for_update(skip_locked=True).cte("pick").prefix_with("MATERIALIZED")
        claim = claim.where(Guild.id == picked.c.id)
    else:
        claim = claim.where(Guild.id.in_(pick.scalar_subquery()))
    rows = await session.execute(claim)
    return sorted(((gid, due) for gid, due in rows.all()), key=lambda r: (r[1], r[0]))


async def expired_guild_leases(session: AsyncSession, owner: str, *, now: dt.datetime) -> set[int]:
    """Due guilds whose lease another owner held and let expire without finishing it (that process
    stopped beating): what :func:`claim_due_guilds` now takes over. Read before it, in its transaction."""
    rows = await session.scalars(
        select(Guild.id).where(
            Guild.next_due_at <= now,
            Guild.lease_owner.is_not(None),
            Guild.lease_owner != owner,
            Guild.lease_until <= now,
        )
    )
    return set(rows.all())


async def any_retry_due(session: AsyncSession, now: dt.datetime) -> bool:
    """True when some guild's failed posts are due for a retry at ``now`` (``delivery_retry_at <= now``),
    its weekly run is not due and no live lease holds it (one cheap read)."""
    free = or_(Guild.lease_until.is_(None), Guild.lease_until <= now)
    query = select(Guild.id).where(Guild.delivery_retry_at <= now, Guild.next_due_at > now, free).limit(1)
    return (await session.scalar(query)) is not None


async def claim_retry_guilds(
    session: AsyncSession, owner: str, *, now: dt.datetime, lease_seconds: float, limit: int | None = None
) -> list[int]:
    """Lease the guilds whose failed posts are due for a retry (``delivery_retry_at <= now``), whose
    weekly run is not due (that run delivers them) and that no live lease holds; returns their ids,
    earliest retry first, at most ``limit``. The same one-statement take-over as
    :func:`claim_due_guilds` (the guild lease: the heartbeat keeps it, a clean stop gives it up), so
    two processes never retry one guild at once."""
    free = or_(Guild.lease_until.is_(None), Guild.lease_until <= now, Guild.lease_owner == owner)
    cond = (Guild.delivery_retry_at <= now, Guild.next_due_at > now, free)
    pick = select(Guild.id).where(*cond).order_by(Guild.delivery_retry_at, Guild.id)
    if limit is not None:
        pick = pick.limit(limit)
    until = now + dt.timedelta(seconds=lease_seconds)
    claim = update(Guild).where(*cond).values(lease_owner=owner, lease_until=until).returning(Guild.id)
    if _dialect(session) == "postgresql":
        picked = pick.with_for_update(skip_locked=True).cte("pick").prefix_with("MATERIALIZED")
        claim = claim.where(Guild.id == picked.c.id)
    else:
        claim = claim.where(Guild.id.in_(pick.scalar_subquery()))
    return sorted((await session.execute(claim)).scalars().all())


async def finish_guild_lease(
    session: AsyncSession,
    owner: str,
    guild_id: int,
    *,
    next_due_at: dt.datetime | None,
    last_run_at: dt.datetime | None,
) -> bool:
    """End ``owner``'s lease of a guild, moving its due time on (when given); False if not held."""
    values: dict[str, object] = {"lease_owner": None, "lease_until": None}
    if next_due_at is not None:
        values["next_due_at"] = next_due_at
    if last_run_at is not None:
        values["last_run_at"] = last_run_at
    result = await session.execute(
        update(Guild).where(Guild.id == guild_id, Guild.lease_owner == owner).values(**values)
    )
    return bool(rowcount(result))


async def release_guild_leases(session: AsyncSession, owner: str, guild_ids: Iterable[int]) -> None:
    """Give up ``owner``'s leases of ``guild_ids``, leaving their due times (a guild whose run did not
    finish stays due); a guild ``owner`` no longer holds is left alone."""
    for guild_id in guild_ids:
        await finish_guild_lease(session, owner, guild_id, next_due_at=None, last_run_at=None)


# --- artist claims -------------------------------------------------------------------------


async def claim_artists(
    session: AsyncSession,
    owner: str,
    artist_ids: Iterable[str],
    *,
    now: dt.datetime,
    lease_seconds: float,
    fresh_after: dt.datetime | None,
) -> tuple[set[str], set[str], set[str]]:
    """Claim artists for a check: ``(claimed, fresh, busy)``.

    ``claimed``: now held by ``owner`` (unclaimed, expired or already ours) — check them;
    ``fresh``: checked (or baselined) successfully after ``fresh_after`` (by any process:
    another run already fetched them for this due time) and not claimed — do not fetch again;
    ``busy``: held by another live claim — wait for it, then they are fresh (or take them
    over when the claim expires). Ids without an ``artists`` row are ``claimed`` (the caller
    creates the row).
    """
    ids = list(dict.fromkeys(artist_ids))
    claimed: set[str] = set()
    fresh: set[str] = set()
    until = now + dt.timedelta(seconds=lease_seconds)
    free = or_(Artist.claim_until.is_(None), Artist.claim_until <= now, Artist.claim_owner == owner)
    postgres = _dialect(session) == "postgresql"
    for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
        cond = [Artist.id.in_(chunk), free]
        if fresh_after is not None:
            stale = or_(
                Artist.last_checked_at.is_(None), Artist.last_checked_at <= fresh_after, Artist.baselined_at.is_(None)
            )
            cond.append(stale)
            fresh.update((await session.scalars(select(Artist.id).where(Artist.id.in_(chunk), free, ~stale))).all())
        # Rows another process is writing right now are skipped, not waited for (they come back
        # as busy): a claim never waits on a lock, so it can take part in no deadlock.
        pick = select(Artist.id).where(and_(*cond)).order_by(Artist.id)
        if postgres:
            pick = pick.with_for_update(skip_locked=True)
        rows = await session.execute(
            update(Artist)
            .where(Artist.id.in_(pick.scalar_subquery()), *cond)
            .values(claim_owner=owner, claim_until=until)
            .returning(Artist.id)
        )
        claimed.update(rows.scalars().all())
        existing = set((await session.scalars(select(Artist.id).where(Artist.id.in_(chunk)))).all())
        claimed.update(a for a in chunk if a not in existing)
    busy = {a for a in ids if a not in claimed and a not in fresh}
    return claimed, fresh, busy


async def release_artists(session: AsyncSession, owner: str, artist_ids: Iterable[str]) -> None:
    """Drop ``owner``'s claims on the given artists."""
    ids = list(artist_ids)
    for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
        await session.execute(
            update(Artist)
            .where(Artist.id.in_(chunk), Artist.claim_owner == owner)
            .values(claim_owner=None, claim_until=None)
        )


# --- recovery ------------------------------------------------------------------------------


def dead_owner(column: InstrumentedAttribute[str | None], live: set[str]) -> ColumnElement[bool]:
    """SQL condition: ``column`` (an owner column) names no live process (NULL = a pre-issue-8 row)."""
    return or_(column.is_(None), column.not_in(live)) if live else true()
