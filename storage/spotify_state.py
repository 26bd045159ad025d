"""Spotify state shared by every process: the quota cooldown and the day's request budget
(the single ``spotify_state`` row, write-locked for each read-modify-write).

Every function takes an open ``AsyncSession`` and never commits.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from storage._sql import insert_ignore
from storage.models import (
    SpotifyState,
)

SPOTIFY_STATE_ID = 1


async def get_cooldown(session: AsyncSession) -> tuple[dt.datetime | None, str | None]:
    """The persisted Spotify cooldown: ``(cooldown_until UTC or None, reason or None)``."""
    state = await session.get(SpotifyState, SPOTIFY_STATE_ID)
    if state is None:
        return None, None
    return state.cooldown_until, state.cooldown_reason


async def set_cooldown(session: AsyncSession, until: dt.datetime | None, reason: str | None) -> SpotifyState:
    """Persist the Spotify cooldown (``until`` UTC; None clears it) in the single ``spotify_state`` row.

    A later ``until`` is never replaced by an earlier one (two concurrent failures keep the longest).
    """
    state = await _lock_spotify_state(session)  # atomic across processes
    if until is None or state.cooldown_until is None or until >= state.cooldown_until:
        state.cooldown_until = until
        state.cooldown_reason = reason
    await session.flush()
    return state


async def budget_used_today(session: AsyncSession, day: str) -> int:
    """Requests recorded for UTC day ``day`` ("YYYY-MM-DD"); 0 when the stored day is another one."""
    state = await session.get(SpotifyState, SPOTIFY_STATE_ID)
    if state is None or state.budget_day != day:
        return 0
    return state.budget_day_requests or 0


async def _lock_spotify_state(session: AsyncSession) -> SpotifyState:
    """The ``spotify_state`` row, created if absent and write-locked for the rest of the transaction.

    The first statement is a write (``UPDATE … SET id = id``): on PostgreSQL it takes the row
    lock, on SQLite the database write lock, before anything is read — so a read-modify-write
    that follows is atomic across processes on both backends.
    """
    await session.execute(insert_ignore(session, SpotifyState, {"id": SPOTIFY_STATE_ID, "budget_day_requests": 0}))
    await session.execute(update(SpotifyState).where(SpotifyState.id == SPOTIFY_STATE_ID).values(id=SpotifyState.id))
    state = await session.get(SpotifyState, SPOTIFY_STATE_ID, populate_existing=True)
    assert state is not None
    return state


async def reserve_budget(session: AsyncSession, day: str, want: int, day_limit: int) -> int:
    """Reserve up to ``want`` requests of UTC day ``day``'s budget ``day_limit``; returns how many were granted.

    Atomic across processes (:func:`_lock_spotify_state`): N processes together never reserve
    more than the day's limit. The reservation counts as spent until :func:`settle_budget`
    gives back what was not used. Not committed: commit at once, the lock is held until then.
    """
    state = await _lock_spotify_state(session)
    used = (state.budget_day_requests or 0) if state.budget_day == day else 0
    grant = max(0, min(int(want), int(day_limit) - used))
    state.budget_day = day
    state.budget_day_requests = used + grant
    await session.flush()
    return grant


async def settle_budget(session: AsyncSession, day: str, delta: int) -> None:
    """Add ``delta`` (negative: give back an unused reservation) to day ``day``'s count, never below 0.

    Nothing happens when the stored day is another one (a new UTC day started meanwhile). Not committed.
    """
    state = await _lock_spotify_state(session)
    if state.budget_day == day:
        state.budget_day_requests = max(0, (state.budget_day_requests or 0) + int(delta))
    elif state.budget_day is None or state.budget_day < day:
        state.budget_day = day
        state.budget_day_requests = max(0, int(delta))
    await session.flush()
