"""Run history: one ``runs`` row per run (trigger, status, coverage, metrics), written as a run
starts and ends, and read back for ``/history``, ``/status`` and recovery.

Every function takes an open ``AsyncSession`` and never commits: the caller owns the transaction.
Times are timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage._sql import rowcount
from storage.leases import dead_owner
from storage.models import Delivery, Run

# --- the run record ---------------------------------------------------------------------------
#
# Written by the runner (``bot.scheduling.runner``): a ``running`` row as a run starts, its
# outcome as it ends, ``failed`` when it raised, and at start-up ``failed`` for the runs a dead
# process left ``running``.

ERROR_LIMIT = 2000  # characters of ``runs.error`` kept


async def start_run(
    session: AsyncSession,
    *,
    trigger: str,
    guild_id: int | None,
    started_at: dt.datetime,
    artists_due: int,
    owner: str | None,
) -> int:
    """Insert a ``running`` run and return its id.

    ``trigger``: ``schedule`` | ``refresh`` | ``check``; ``guild_id``: the guild of a one-guild
    ``/refresh`` (else None); ``artists_due``: artists the run will track; ``owner``: the
    running process (``processes.id``; None for a process that runs alone).
    """
    run = Run(
        trigger=trigger,
        guild_id=guild_id,
        status="running",
        started_at=started_at,
        artists_due=artists_due,
        failed_artists=[],
        owner=owner,
    )
    session.add(run)
    await session.flush()
    return run.id


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended, as :func:`finish_run` records it.

    ``status``: ``ok`` | ``partial`` | ``failed``; ``failed_artists``: Spotify ids of the artists
    that could not be checked; ``spotify_requests``: API requests the run made; ``error``: the
    problems, ``"; "``-joined (None when none); ``metrics``: the ``runs.metrics`` JSON
    (``bot.scheduling.runner.run_metrics``).
    """

    status: str
    finished_at: dt.datetime
    artists_checked: int
    failed_artists: list[str]
    spotify_requests: int
    releases_found: int
    releases_posted: int
    error: str | None
    metrics: dict[str, Any]


async def finish_run(session: AsyncSession, run_id: int, outcome: RunOutcome, *, if_running: bool = False) -> bool:
    """Record ``outcome`` on run ``run_id`` (``artists_failed`` is the number of ``failed_artists``); with
    ``if_running`` only while it is still ``running``. Returns whether the row was written."""
    cond = [Run.id == run_id] + ([Run.status == "running"] if if_running else [])
    result = await session.execute(
        update(Run)
        .where(*cond)
        .values(
            status=outcome.status,
            finished_at=outcome.finished_at,
            artists_checked=outcome.artists_checked,
            artists_failed=len(outcome.failed_artists),
            failed_artists=list(outcome.failed_artists),
            spotify_requests=outcome.spotify_requests,
            releases_found=outcome.releases_found,
            releases_posted=outcome.releases_posted,
            error=outcome.error,
            metrics=outcome.metrics,
        )
    )
    return bool(rowcount(result))


async def mark_failed(session: AsyncSession, run_id: int, *, error: str, now: dt.datetime) -> bool:
    """Mark run ``run_id`` ``failed`` at ``now`` with ``error`` (cut to :data:`ERROR_LIMIT` characters)
    if it is still ``running``; returns whether it was."""
    result = await session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status == "running")
        .values(status="failed", finished_at=now, error=error[:ERROR_LIMIT])
    )
    return bool(rowcount(result))


async def mark_interrupted(session: AsyncSession, live: Collection[str], *, now: dt.datetime, error: str) -> list[int]:
    """Mark ``failed`` at ``now``, with ``error``, the runs still ``running`` whose owner is none of the
    ``live`` process ids (a run without an owner too; every ``running`` run when ``live`` is empty).

    One conditional ``UPDATE … RETURNING``; returns the ids of the runs marked, sorted.
    """
    result = await session.execute(
        update(Run)
        .where(Run.status == "running", dead_owner(Run.owner, set(live)))
        .values(status="failed", finished_at=now, error=error[:ERROR_LIMIT])
        .returning(Run.id)
    )
    return sorted(result.scalars().all())


async def mark_interrupted_of(session: AsyncSession, owner: str, *, now: dt.datetime, error: str) -> list[int]:
    """Mark ``failed`` at ``now``, with ``error``, the runs of process ``owner`` still ``running`` (the
    caller knows none of them is in progress: a store failure kept them from being closed). Returns
    their ids, sorted."""
    result = await session.execute(
        update(Run)
        .where(Run.status == "running", Run.owner == owner)
        .values(status="failed", finished_at=now, error=error[:ERROR_LIMIT])
        .returning(Run.id)
    )
    return sorted(result.scalars().all())


# --- what ``release-bot demo`` reads back ---------------------------------------------------


async def all_runs(session: AsyncSession) -> list[Run]:
    """Every run, oldest first (by id)."""
    return list((await session.scalars(select(Run).order_by(Run.id))).all())


async def count_finished(session: AsyncSession, trigger: str) -> int:
    """How many runs of ``trigger`` (``schedule`` | ``refresh`` | ``check``) have finished (any status)."""
    query = select(func.count()).select_from(Run).where(Run.trigger == trigger, Run.finished_at.is_not(None))
    return int(await session.scalar(query) or 0)


# --- reads for the slash commands (/history, /status) ---


def _concerns_guild(guild_id: int) -> ColumnElement[bool]:
    """Runs a guild's ``/history`` and ``/status`` show: its own refreshes and the runs of every guild
    (weekly runs, ``guild_id`` NULL); ``check`` runs (``release-bot check``) and release-day probes
    (``release_day``: one artist's check, which most guilds have nothing to do with) are left out."""
    return (or_(Run.guild_id == guild_id, Run.guild_id.is_(None))) & Run.trigger.not_in(("check", "release_day"))


@dataclass(frozen=True)
class RunForGuild:
    """One run as a guild's ``/history`` shows it: the ``Run`` row, and the releases it ``posted`` to
    that guild (announcements: folded twins not counted) and ``skipped`` for it (types not wanted, filters)."""

    run: Run
    posted: int
    skipped: int


async def guild_history(session: AsyncSession, guild_id: int, limit: int) -> list[RunForGuild]:
    """The last ``limit`` (at least 1) runs concerning guild ``guild_id``, newest first (by start, then id),
    each with its posted/skipped counts for that guild from the delivery ledger. Two queries."""
    runs = list(
        (
            await session.scalars(
                select(Run)
                .where(_concerns_guild(guild_id))
                .order_by(Run.started_at.desc(), Run.id.desc())
                .limit(max(1, limit))
            )
        ).all()
    )
    counts: dict[tuple[int | None, str], int] = {}
    if runs:
        rows = await session.execute(
            select(Delivery.run_id, Delivery.status, func.count())
            .where(
                Delivery.guild_id == guild_id,
                Delivery.run_id.in_([r.id for r in runs]),
                Delivery.folded_into.is_(None),
            )
            .group_by(Delivery.run_id, Delivery.status)
        )
        for run_id, status, n in rows:
            key = (run_id, "skipped" if status == "skipped" else "posted")
            counts[key] = counts.get(key, 0) + n
    return [RunForGuild(r, counts.get((r.id, "posted"), 0), counts.get((r.id, "skipped"), 0)) for r in runs]


async def last_run_for_guild(session: AsyncSession, guild_id: int) -> Run | None:
    """The latest run concerning guild ``guild_id`` (as :func:`guild_history`), or None before the first."""
    return await session.scalar(
        select(Run).where(_concerns_guild(guild_id)).order_by(Run.started_at.desc(), Run.id.desc()).limit(1)
    )
