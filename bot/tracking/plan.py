"""Planning a run under a request budget (docs/tracking.md, "Budget and starvation", "Recall").

Pure functions over per-artist rows; no I/O. Priority: artists with an announced release
first (a release group dated ahead, from the MusicBrainz/ListenBrainz signal), then recently
active (``last_release_at`` newest first, unknown last), then longest unchecked. A reserve
of ``reserve_share`` of each run's budget is spent first on the longest-unchecked
artists (``last_checked_at`` oldest first, never-checked first), so no artist starves:
with N due artists, a run budget B and checks costing at most q requests, every
artist is checked within ``ceil(N / max(1, floor(ceil(r·B) / q)))`` runs.

The rotating exact re-check (:func:`recheck_plan`) spreads its cost by pages: each run reads
whole the listings whose pages beyond the probe add up to the run's even share of the cycle,
while every artist is still read whole within ``ceil(1/share)`` weekly runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from bot.tracking.detect import PAGE

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


def priority_key(row: ArtistRow, announced: bool = False) -> tuple[bool, bool, float, float, str]:
    """Announced first (``announced``: a release of the artist is announced ahead, docs/tracking.md), then
    recently active (unknown activity last), then longest unchecked (never checked first)."""
    active = row.last_release_at
    return (
        not announced,
        active is None,
        -(active.timestamp()) if active else 0.0,
        (row.last_checked_at or EPOCH).timestamp(),
        row.id,
    )


def priority_order(rows: Iterable[ArtistRow], announced: Collection[str] = ()) -> list[str]:
    """The ids of ``rows`` in the order a budgeted run checks them after its reserve (docs/tracking.md,
    "Budget and starvation"): first the artists in ``announced`` (ids with a release announced ahead,
    e.g. a MusicBrainz/ListenBrainz release group dated today or later — a signal from outside the store),
    then by our own data: the newest ``last_release_at`` first (never known last), then the longest
    unchecked (never checked first), then by id (:func:`priority_key`)."""
    chosen = frozenset(announced)
    return [r.id for r in sorted(rows, key=lambda r: priority_key(r, r.id in chosen))]


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


WEEK = dt.timedelta(weeks=1)
SLACK = dt.timedelta(hours=12)
"""How much earlier than ``ceil(1/share)`` whole weeks an artist is due for its re-check: runs on the
same weekday and time drift by seconds to minutes, never by half a day."""


def recheck_pages(state: dict[str, Any] | None) -> int:
    """Requests beyond the probe that reading the tracked listing whole costs (:func:`bot.tracking.detect.recheck`).

    From the stored ``group_state`` (``groups`` and ``counts``): the album, single and
    compilation groups are paged as one listing (``max(1, ceil(T/10))`` requests) and
    ``appears_on``, when tracked, on its own (``max(1, ceil(count/10))``); the re-check
    replaces the probe, so one request is not extra. 0 for a listing that fits one page
    (its re-check *is* its probe) and for an unknown state.
    """
    if not state:
        return 0
    groups = list(state.get("groups") or ())
    counts = state.get("counts") or {}
    own = sum(int(counts.get(g, 0)) for g in groups if g != "appears_on")
    pages = 0
    if any(g != "appears_on" for g in groups):
        pages += max(1, math.ceil(own / PAGE))
    if "appears_on" in groups:
        pages += max(1, math.ceil(int(counts.get("appears_on", 0)) / PAGE))
    return max(0, pages - 1)


@dataclass(frozen=True)
class RecheckPlan:
    """The run's rotating exact re-check (:func:`recheck_plan`); pages are requests beyond the probe.

    ``picks``: artist ids whose listing this run reads whole; ``period_runs``: ``ceil(1/share)``;
    ``cycle_pages`` W: the pages of reading every eligible artist of the run whole once;
    ``even_share`` S: the run's even share of the cycle (``share`` × each artist's pages ×
    the weeks since it was last checked, at most the period: W/P in weekly runs); ``target``:
    the pages the run aims at (S, or more when the artists' deadlines need more to be kept at
    an even rate); ``planned_pages``: the picks' pages; ``forced_pages``: pages of the picks due
    now (last whole read ``period_runs`` weeks ago, less 12 h); ``overdue_pages``: of those, the
    ones already due a week ago (absent from the runs since, or left by a budget);
    ``largest_pages``: the largest listing picked.
    """

    picks: list[str]
    period_runs: int = 0
    cycle_pages: int = 0
    even_share: float = 0.0
    target: float = 0.0
    planned_pages: int = 0
    forced_pages: int = 0
    overdue_pages: int = 0
    largest_pages: int = 0

    @property
    def fair_share(self) -> float:
        """The re-check's term of the run's lower bound L_B (docs/tracking.md, "Lower bound L_B"): the even
        share S, or more only when no schedule could do with S — the largest listing the run reads whole
        (one listing is never split between runs) or the overdue listings the run must read whole now."""
        return max(self.even_share, float(self.largest_pages), float(self.overdue_pages))

    def metrics(self) -> dict[str, float | int]:
        """The plan's figures for ``runs.metrics["recheck_plan"]`` (pages; shares rounded to 0.1)."""
        return {
            "period_runs": self.period_runs,
            "cycle": self.cycle_pages,
            "even_share": round(self.even_share, 1),
            "fair_share": round(self.fair_share, 1),
            "target": round(self.target, 1),
            "planned": self.planned_pages,
            "forced": self.forced_pages,
            "overdue": self.overdue_pages,
            "largest": self.largest_pages,
        }


def _last_whole(row: ArtistRow) -> dt.datetime:
    """When the artist's listing was last read whole (re-check, resync, baseline)."""
    return row.exact_checked_at or row.baselined_at or EPOCH


def _rotate_by_count(rows: list[ArtistRow], limit: dt.datetime, share: float) -> list[str]:
    """``floor(share · len(rows))`` of ``rows`` read whole longest ago (ties by id), plus every one read
    whole at or before ``limit``."""
    ordered = sorted(rows, key=lambda r: (_last_whole(r).timestamp(), r.id))
    count = min(len(ordered), math.floor(share * len(ordered)))
    return [r.id for r in ordered[:count]] + [r.id for r in ordered[count:] if _last_whole(r) <= limit]


def recheck_plan(rows: list[ArtistRow], now: dt.datetime, share: float) -> RecheckPlan:
    """The artists whose listing this run reads whole: the rotating exact re-check (docs/tracking.md, "Recall").

    ``rows``: the run's artists (those baselined, with a current state, are eligible); ``now``:
    aware UTC; ``share`` in [0, 1] (0 = off); P = ``ceil(1/share)``. Every artist whose last
    whole read (``exact_checked_at``, else ``baselined_at``) is older than P weeks less 12 hours
    is picked (the bound: an artist in a weekly run is read whole at least once every P weekly
    runs, whatever the runs' artist sets). The rest is spread **by pages**
    (:func:`recheck_pages`, from the stored ``group_state``):

    * listings that cost nothing beyond the probe (one page) rotate by count:
      ``floor(share · n)`` of those n, read whole longest ago (ties by id);
    * the others are taken earliest deadline first (read whole longest ago, relative to how
      often the artist is in a run: the weeks since ``last_checked_at``), skipping a listing
      that would overshoot, until their pages reach the target: the even share
      S = share × Σ pages × min(P, weeks since last checked) — W/P in weekly runs — or, if more,
      the smallest even rate that still reads each artist by its deadline
      (max over k of the pages due within the next k runs ÷ k).

    So each run's re-check pages stay at the run's even share, a catalogue of a few huge and
    many small artists included, and big listings no longer bunch up in the same runs.
    """
    if share <= 0:
        return RecheckPlan([])
    eligible = [r for r in rows if r.exists and r.baselined_at is not None]
    period = recheck_period_runs(share)
    limit = now - (period * WEEK - SLACK)
    overdue_limit = limit - WEEK
    cost = {r.id: recheck_pages(r.group_state) for r in eligible}
    free = [r for r in eligible if cost[r.id] == 0]
    paged = [r for r in eligible if cost[r.id] > 0]
    picks = _rotate_by_count(free, limit, share)

    def cadence(row: ArtistRow) -> float:
        """Weeks between the artist's runs, judged by its last check (at most the period)."""
        checked = row.last_checked_at or row.baselined_at or now
        return min(float(period), max(0.0, (now - checked) / WEEK))

    def deadline(row: ArtistRow) -> float:
        """The artist's runs from now until its whole read is due (0: due now; inf: no run expected)."""
        left = (_last_whole(row) + period * WEEK - SLACK - now) / WEEK
        if left <= 0:
            return 0.0
        step = cadence(row)
        return float(math.ceil(left / step)) if step > 0 else math.inf

    due_in = {r.id: deadline(r) for r in paged}
    even = share * sum(cost[r.id] * cadence(r) for r in paged)
    rate = 0.0
    cumulative = 0
    by_deadline = sorted(paged, key=lambda r: (due_in[r.id], _last_whole(r).timestamp(), r.id))
    for i, row in enumerate(by_deadline):
        cumulative += cost[row.id]
        k = due_in[row.id]
        last = i + 1 == len(by_deadline) or due_in[by_deadline[i + 1].id] != k
        if last and k != math.inf:
            rate = max(rate, cumulative / (k + 1))
    target = max(even, rate)
    forced = [r for r in by_deadline if _last_whole(r) <= limit]
    spent = sum(cost[r.id] for r in forced)
    chosen = list(forced)
    taken = {r.id for r in forced}
    for row in by_deadline:
        if target - spent < 1:
            break
        if row.id not in taken and spent + cost[row.id] <= target:
            chosen.append(row)
            spent += cost[row.id]
    picks += [r.id for r in chosen]
    return RecheckPlan(
        picks,
        period_runs=period,
        cycle_pages=sum(cost.values()),
        even_share=even,
        target=target,
        planned_pages=spent,
        forced_pages=sum(cost[r.id] for r in forced),
        overdue_pages=sum(cost[r.id] for r in forced if _last_whole(r) <= overdue_limit),
        largest_pages=max((cost[r.id] for r in chosen), default=0),
    )
