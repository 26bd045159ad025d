"""Run history: one ``runs`` row per run (trigger, status, coverage, metrics), written as a run
starts and ends, and read back for ``/history``, ``/status`` and recovery.

Every function takes an open ``AsyncSession`` and never commits: the caller owns the transaction.
Times are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Delivery, Run

# --- reads for the slash commands (/history, /status) ---


def _concerns_guild(guild_id: int) -> ColumnElement[bool]:
    """Runs a guild's ``/history`` and ``/status`` show: its own refreshes and the runs of every guild
    (weekly runs, ``guild_id`` NULL); ``check`` runs (``release-bot check``) are left out."""
    return (or_(Run.guild_id == guild_id, Run.guild_id.is_(None))) & (Run.trigger != "check")


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
