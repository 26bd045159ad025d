"""Planning a run under a request budget (docs/tracking.md, "Budget and starvation").

Pure functions over per-artist rows; no I/O. Priority: recently active first
(``last_release_at`` newest first, unknown last), then longest unchecked. A reserve
of ``reserve_share`` of each run's budget is spent first on the longest-unchecked
artists (``last_checked_at`` oldest first, never-checked first), so no artist starves:
with N due artists, a run budget B and checks costing at most q requests, every
artist is checked within ``ceil(N / max(1, floor(ceil(r·B) / q)))`` runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class ArtistRow:
    """What planning needs of an ``artists`` row (None fields: unknown / never)."""

    id: str
    baselined_at: dt.datetime | None
    last_checked_at: dt.datetime | None
    last_release_at: dt.datetime | None
    runs_skipped: int
    group_state: dict[str, Any] | None
    exact_checked_at: dt.datetime | None = None
    exists: bool = True


class BudgetExhausted(Exception):
    """Raised by :meth:`Budget.take` when the run's request budget is spent."""


class Budget:
    """Requests this run may still make: ``limit`` None = unlimited. ``spent`` counts every request taken.

    With ``reserve`` (``async (n) -> granted``, e.g. an atomic reservation from the day's
    budget in the store shared by every process), requests are drawn from the store in
    chunks of ``chunk`` as they are needed (:meth:`ensure`), so a process killed mid-run
    leaves at most one chunk counted that it never used; ``granted`` is what was drawn.
    """

    def __init__(
        self, limit: int | None, *, reserve: Callable[[int], Awaitable[int]] | None = None, chunk: int = 50
    ) -> None:
        self.limit = limit
        self.spent = 0
        self.reserved = 0  # artists started whose first request is not made yet
        self.granted = 0
        self._reserve = reserve
        self._chunk = max(1, int(chunk))
        self._lock = asyncio.Lock()
        self._dry = False

    async def ensure(self) -> None:
        """Before a request: draw another chunk from the shared budget when this run's share is used
        up; raises ``BudgetExhausted`` when the store grants nothing more (the day's budget is spent)."""
        if self._reserve is None or self.spent < self.granted:
            return
        async with self._lock:
            if self.spent < self.granted:
                return
            if self._dry:
                raise BudgetExhausted()
            want = self._chunk if self.limit is None else min(self._chunk, max(0, self.limit - self.granted))
            got = await self._reserve(want) if want > 0 else 0
            self.granted += got
            if got < want:
                self._dry = True
            if self.spent >= self.granted:
                raise BudgetExhausted()

    def take(self) -> None:
        """Count one request; raises ``BudgetExhausted`` when the limit (or the share drawn from the store) is spent."""
        if self.limit is not None and self.spent >= self.limit:
            raise BudgetExhausted()
        if self._reserve is not None and self.spent >= self.granted:
            raise BudgetExhausted()
        self.spent += 1

    def left(self) -> float:
        """Requests this run may still make (``inf`` when unlimited)."""
        return math.inf if self.limit is None else self.limit - self.spent


def run_budget(requests_per_run: int, requests_per_day: int, used_today: int) -> int | None:
    """The run's budget: the smaller of the per-run limit and what is left of the UTC day (0 = unlimited)."""
    limits = []
    if requests_per_run > 0:
        limits.append(requests_per_run)
    if requests_per_day > 0:
        limits.append(max(0, requests_per_day - used_today))
    return min(limits) if limits else None


def reserve_requests(budget: int | None, share: float) -> int:
    """Requests of a budgeted run spent first on the longest-unchecked artists: ``max(1, ceil(share·B))`` (0 if B = 0)."""
    if budget is None or budget <= 0 or share <= 0:
        return 0
    return min(budget, max(1, math.ceil(share * budget)))


def starvation_bound(due: int, budget: int, share: float, max_check_cost: int = 1) -> int:
    """Runs within which every one of ``due`` artists is checked (see module docstring)."""
    per_run = max(1, reserve_requests(budget, share) // max(1, max_check_cost))
    return math.ceil(due / per_run)


def priority_key(row: ArtistRow) -> tuple[bool, float, float, str]:
    """Recently active first (unknown activity last), then longest unchecked (never checked first)."""
    active = row.last_release_at
    return (
        active is None,
        -(active.timestamp()) if active else 0.0,
        (row.last_checked_at or EPOCH).timestamp(),
        row.id,
    )


def oldest_key(row: ArtistRow) -> tuple[float, int, str]:
    """Longest unchecked first (never checked first), then most skipped."""
    return ((row.last_checked_at or EPOCH).timestamp(), -row.runs_skipped, row.id)


def economy_skips(row: ArtistRow, now: dt.datetime, inactive_days: int, every: int) -> bool:
    """Economy mode: an artist whose newest release is older than ``inactive_days`` is checked every ``every``-th run.

    Uses ``runs_skipped`` as the counter: skipped while ``runs_skipped < every - 1``. An
    artist never baselined, or whose activity is unknown, is always checked.
    """
    if every <= 1 or row.baselined_at is None or row.last_release_at is None:
        return False
    if row.last_release_at >= now - dt.timedelta(days=inactive_days):
        return False
    return row.runs_skipped < every - 1


def recheck_period_runs(share: float) -> int:
    """Weekly runs within which the rotating exact re-check reads every artist whole: ``ceil(1 / share)``."""
    return math.ceil(1 / share) if share > 0 else 0


def recheck_picks(rows: list[ArtistRow], now: dt.datetime, share: float) -> list[str]:
    """The artists whose listing this run reads whole (the rotating exact re-check, docs/tracking.md).

    ``rows``: the run's baselined artists; ``now``: aware UTC; ``share`` in [0, 1] (0 = off).
    Takes the ``floor(share · len(rows))`` artists read whole longest ago
    (``exact_checked_at``, else ``baselined_at``; ties by id), plus every artist whose last
    whole read is older than ``ceil(1/share)`` weeks less 12 hours — so an artist checked by
    a weekly run is read whole at least once every ``ceil(1/share)`` weekly runs even when
    the set of artists per run changes (guilds with other weekly slots, new follows) or
    ``share · len(rows)`` is below one. The rotation spreads that cost evenly: about
    ``share`` of the artists each run.
    """
    if share <= 0:
        return []
    eligible = [r for r in rows if r.exists and r.baselined_at is not None]
    if not eligible:
        return []

    def last_whole(row: ArtistRow) -> dt.datetime:
        return row.exact_checked_at or row.baselined_at or EPOCH

    ordered = sorted(eligible, key=lambda r: (last_whole(r).timestamp(), r.id))
    count = min(len(ordered), math.floor(share * len(ordered)))
    limit = now - (dt.timedelta(weeks=recheck_period_runs(share)) - dt.timedelta(hours=12))
    return [r.id for r in ordered[:count]] + [r.id for r in ordered[count:] if last_whole(r) <= limit]
