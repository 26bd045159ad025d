"""The direct-message ledger (``dm_deliveries``): one DM per (member, release), across guilds and crashes.

* ``pending`` — enqueued when the release's post in a guild was confirmed (:func:`enqueue`:
  ``INSERT … ON CONFLICT DO NOTHING`` on the unique (user, release), so a member subscribed in two
  guilds gets it once); due from ``next_attempt_at`` (NULL: at once).
* ``claimed`` — taken by ``owner`` to send (:func:`claim_due`: one ``UPDATE … WHERE status='pending'
  … RETURNING``, the pick ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two outboxes take disjoint rows).
* ``sent`` (``message_id``), ``closed`` (Discord refused: the user's DMs are closed, 50007) or
  ``gone`` (Unknown User/Member): final.

A transient failure puts the row back to ``pending`` with ``attempts`` + 1 and a later
``next_attempt_at`` (:func:`retry_later`). A ``claimed`` row whose owner died is settled by the
outbox from the DM channel (found → :func:`confirm`, absent → :func:`retry_later` at once).

Every function takes an open ``AsyncSession`` and never commits: the caller owns the transaction.
Times are timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage._sql import chunks, insert_many_ignore, rowcount
from storage.leases import dead_owner
from storage.models import DmDelivery


@dataclass(frozen=True)
class DmTask:
    """A DM to send: row ``id``, Discord user ``user_id``, Spotify ``release_id``, the guild that asked
    (``guild_id``) and how many attempts failed so far (``attempts``)."""

    id: int
    user_id: int
    release_id: str
    guild_id: int
    attempts: int


async def enqueue(
    session: AsyncSession, guild_id: int, user_ids_by_release: dict[str, Iterable[int]], *, now: dt.datetime
) -> int:
    """Enqueue a ``pending`` DM for each (user, release) of ``user_ids_by_release`` (``{release id:
    [user id, …]}``) on behalf of guild ``guild_id``; one that exists (any status, any guild) is left
    as it is. Returns how many rows were asked for (inserted or not)."""
    rows = [
        {
            "user_id": user_id,
            "release_id": release_id,
            "guild_id": guild_id,
            "status": "pending",
            "created_at": now,
            "attempts": 0,
        }
        for release_id, user_ids in user_ids_by_release.items()
        for user_id in dict.fromkeys(user_ids)
    ]
    for chunk in chunks(rows, 500):
        await insert_many_ignore(session, DmDelivery, list(chunk))
    return len(rows)


async def claim_due(session: AsyncSession, owner: str, *, now: dt.datetime, limit: int) -> list[DmTask]:
    """Claim up to ``limit`` due ``pending`` DMs (``next_attempt_at`` NULL or ``<= now``) for ``owner``,
    oldest first: ``claimed`` with ``owner`` and ``claimed_at = now``. One ``UPDATE … RETURNING``
    whose pick is ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (a materialized CTE, evaluated once) and
    runs under the write lock on SQLite: concurrent claimers get disjoint rows."""
    due = (DmDelivery.status == "pending") & (
        DmDelivery.next_attempt_at.is_(None) | (DmDelivery.next_attempt_at <= now)
    )
    pick = select(DmDelivery.id).where(due).order_by(DmDelivery.id).limit(limit)
    claim = (
        update(DmDelivery)
        .where(due)
        .values(status="claimed", owner=owner, claimed_at=now)
        .returning(DmDelivery.id, DmDelivery.user_id, DmDelivery.release_id, DmDelivery.guild_id, DmDelivery.attempts)
    )
    if session.get_bind().dialect.name == "postgresql":
        picked = pick.with_for_update(skip_locked=True).cte("dm_pick").prefix_with("MATERIALIZED")
        claim = claim.where(DmDelivery.id == picked.c.id)
    else:
        claim = claim.where(DmDelivery.id.in_(pick.scalar_subquery()))
    rows = (await session.execute(claim)).all()
    return sorted((DmTask(*row) for row in rows), key=lambda t: t.id)


async def confirm(session: AsyncSession, dm_id: int, *, message_id: int, now: dt.datetime) -> bool:
    """DM ``dm_id`` is Discord message ``message_id``: ``claimed`` → ``sent`` at ``now``. False when it
    was not claimed any more."""
    result = await session.execute(
        update(DmDelivery)
        .where(DmDelivery.id == dm_id, DmDelivery.status == "claimed")
        .values(status="sent", message_id=message_id, sent_at=now)
    )
    return rowcount(result) > 0


async def retry_later(session: AsyncSession, dm_id: int, *, at: dt.datetime | None, failed: bool) -> bool:
    """DM ``dm_id`` was not sent: ``claimed`` → ``pending``, due at ``at`` (None: at once); ``failed``
    counts the attempt (``attempts`` + 1). False when it was not claimed any more."""
    values: dict[str, object] = {"status": "pending", "owner": None, "next_attempt_at": at}
    if failed:
        values["attempts"] = DmDelivery.attempts + 1
    result = await session.execute(
        update(DmDelivery).where(DmDelivery.id == dm_id, DmDelivery.status == "claimed").values(**values)
    )
    return rowcount(result) > 0


async def finish_user(session: AsyncSession, user_id: int, status: str, *, dm_id: int) -> int:
    """Discord refused DMs to ``user_id`` for good (``status``: ``closed`` after 50007, ``gone`` for an
    unknown user): the claimed row ``dm_id`` and every ``pending`` DM of that user get ``status``
    (there is no point in trying them). Returns how many rows changed."""
    if status not in ("closed", "gone"):
        raise ValueError(f"a refused DM is closed or gone, not {status!r}")
    result = await session.execute(
        update(DmDelivery)
        .where(
            DmDelivery.user_id == user_id,
            (DmDelivery.status == "pending") | ((DmDelivery.id == dm_id) & (DmDelivery.status == "claimed")),
        )
        .values(status=status, owner=None)
    )
    return rowcount(result)


async def finish_member(session: AsyncSession, guild_id: int, user_id: int, *, dm_id: int) -> int:
    """The user left guild ``guild_id`` (Unknown Member): the claimed row ``dm_id`` and the user's
    ``pending`` DMs asked for by that guild get ``gone``. Returns how many rows changed."""
    result = await session.execute(
        update(DmDelivery)
        .where(
            DmDelivery.user_id == user_id,
            DmDelivery.guild_id == guild_id,
            (DmDelivery.status == "pending") | ((DmDelivery.id == dm_id) & (DmDelivery.status == "claimed")),
        )
        .values(status="gone", owner=None)
    )
    return rowcount(result)


async def stale_claims(
    session: AsyncSession, *, live: Collection[str] | None, claimed_before: dt.datetime | None, limit: int
) -> list[DmTask]:
    """``claimed`` DMs that may or may not have been sent, oldest first, at most ``limit``: with ``live``
    (the live processes' owner ids) those whose owner is none of them; with ``claimed_before`` those
    claimed before it (a process alone: claims older than its start). Reads only."""
    query = select(
        DmDelivery.id, DmDelivery.user_id, DmDelivery.release_id, DmDelivery.guild_id, DmDelivery.attempts
    ).where(DmDelivery.status == "claimed")
    if live is not None:
        query = query.where(dead_owner(DmDelivery.owner, set(live)))
    if claimed_before is not None:
        query = query.where(DmDelivery.claimed_at < claimed_before)
    rows = await session.execute(query.order_by(DmDelivery.id).limit(limit))
    return [DmTask(*row) for row in rows.all()]


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    """``{status: rows}`` over the whole DM ledger."""
    rows = await session.execute(select(DmDelivery.status, func.count()).group_by(DmDelivery.status))
    return {status: int(n) for status, n in rows.all()}
