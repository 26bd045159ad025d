"""A run, end to end: the one path both triggers take (weekly schedule and ``/refresh``).

``Runner.run(trigger, guild_ids)`` goes through its phases: **plan** (the guilds and the union
of their followed artists; a ``running`` run record), **track** (each artist once), **label**
(the new releases), **deliver** (to each guild; one guild's failure never stops the others)
and **record** (the run's outcome and, for the schedule, the guilds' next due times). Runs
never overlap (one ``asyncio.Lock`` per runner). The run record's statements are in
:mod:`storage.runs`, the due scans and guild leases in :mod:`storage.leases`. No discord import.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, Protocol

from bot.clock import Clock, utcnow
from bot.coordination.coordinator import Coordinator
from bot.delivery.deliverer import Deliverer, DeliveryResult
from bot.ops.logs import log_context
from bot.scheduling.due import next_due
from bot.tracking.tracker import TrackResult, failure_reason
from storage import catalog, guilds, leases, musicdata, runs
from storage.db import Database, Session
from storage.db import store_failed as store_failed_error
from storage.models import Guild
from storage.runs import ERROR_LIMIT, RunOutcome

log = logging.getLogger(__name__)

TRIGGERS = ("schedule", "refresh", "check", "release_day", "retry")
# A release group dated this far back and still not on Spotify keeps its artists first in budgeted runs.
ANNOUNCED_RECENT = dt.timedelta(days=7)

INTERRUPTED = "interrupted: the bot stopped during this run (nothing is lost; the next run goes on)"
STOPPED = "stopped: the bot shut down during this run; what it did not post stays pending, and its guilds stay due"
STORE_FAILED = "the store failed during this run and it could not be closed then; closed once the store answered"


class RunnerStopping(Exception):
    """Raised by :meth:`Runner.run` once the runner is stopping (the bot is shutting down): no new run starts."""

    def __init__(self) -> None:
        super().__init__("the bot is shutting down; no new run starts")


Progress = Callable[[int, int], object]
"""``progress(checked, total)``: called synchronously as artists are checked (``Tracker.track``)."""


class RequestCounter(Protocol):
    """The Spotify client as the runner sees it (``bot.spotify.client.SpotifyClient``)."""

    @property
    def request_count(self) -> int:
        """API requests sent so far (retries included)."""
        ...


class RunTracker(Protocol):
    """What the runner needs of the tracker (``bot.tracking.tracker.Tracker``)."""

    @property
    def spotify(self) -> RequestCounter:
        """The Spotify client the tracker (and the labeler) fetch through."""
        ...

    async def track(
        self,
        artist_ids: Iterable[str],
        *,
        run_id: int | None = None,
        economy: bool | None = None,
        progress: Progress | None = None,
        fresh_after: dt.datetime | None = None,
        announced: Collection[str] = (),
    ) -> TrackResult:
        """Check each artist once and store what is new (``Tracker.track``; ``announced`` first in a
        budgeted run)."""
        ...

    async def count_day_requests(self, requests: int) -> None:
        """Count ``requests`` made outside the tracker in the day's request budget."""
        ...


class LabelOutcome(Protocol):
    """What the runner reads of a labelling (``bot.tracking.labels.LabelResult``)."""

    @property
    def requests(self) -> int:
        """Spotify requests the labelling made."""
        ...


class RunLabeler(Protocol):
    """Labels a run's new releases (``bot.tracking.labels.Labeler``)."""

    async def label(self, release_ids: Iterable[str], *, run_id: int | None = None) -> LabelOutcome:
        """Label ``release_ids`` (the run's new releases)."""
        ...


class FailedArtist(NamedTuple):
    """An artist that could not be checked in a run: Spotify ``id``, stored ``name``, ``reason``."""

    id: str
    name: str
    reason: str


@dataclass
class RunSummary:
    """What a run did.

    ``status``: ``ok`` | ``partial`` (some artists failed or some guild's delivery
    failed) | ``failed`` (artists were due but none could be checked, e.g. a Spotify
    cooldown). ``deliveries``: guild id → :class:`DeliveryResult`. ``spotify_requests``:
    API requests made by the run. ``cooldown_until``: UTC end of the cooldown that
    stopped it, if any. Times are aware UTC.
    """

    run_id: int
    trigger: str
    status: str
    artists_due: int
    artists_checked: int
    failed_artists: list[FailedArtist] = field(default_factory=list)
    releases_found: int = 0
    releases_posted: int = 0
    spotify_requests: int = 0
    cooldown_until: dt.datetime | None = None
    deliveries: dict[int, DeliveryResult] = field(default_factory=dict)
    guild_ids: list[int] = field(default_factory=list)
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    error: str | None = None
    new_release_ids: list[str] = field(default_factory=list)
    baselined: list[str] = field(default_factory=list)
    carried_over: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def coverage(self) -> float:
        """Share of due artists checked, 0.0–1.0 (1.0 when none were due)."""
        return 1.0 if self.artists_due == 0 else self.artists_checked / self.artists_due


@dataclass
class RunPlan:
    """What a run is to do, decided by its plan phase (:meth:`Runner._plan`).

    ``artist_ids``: to track (each once); ``guild_ids``: to deliver to; ``advance_after``:
    for ``schedule``, the due times move strictly after it; ``fresh_after``: for a leased
    ``schedule`` run, artists checked at or after it (by any process) are not fetched again;
    ``plan_seconds``: wall seconds of the plan phase; ``store_failed``: guilds whose delivery failed
    because the store did (their due time does not move: the next scan runs them again); ``keep_due``:
    guilds a stop cut short (no delivery, or one stopped before a post), which keep their due time too.
    """

    run_id: int
    trigger: str
    artist_ids: list[str]
    guild_ids: list[int]
    started_at: dt.datetime
    advance_after: dt.datetime | None
    fresh_after: dt.datetime | None
    plan_seconds: float
    store_failed: set[int] = field(default_factory=set)
    keep_due: set[int] = field(default_factory=set)


@dataclass
class RunWork:
    """What the track, label and deliver phases did (:meth:`Runner._work`).

    ``problems``: lines for ``runs.error``; ``requests``: the Spotify client's requests over
    the phases; ``label_requests``: the labeler's share; ``*_seconds``: wall seconds per phase.
    """

    track: TrackResult
    deliveries: dict[int, DeliveryResult]
    problems: list[str]
    requests: int
    label_requests: int
    label_seconds: float
    deliver_seconds: float


class Runner:
    """Runs tracking then delivery for a set of guilds; see the module docstring.

    ``db``: :class:`storage.db.Database`; ``tracker``: a :class:`RunTracker` (its
    ``spotify.request_count`` is read for the run's request count); ``deliverer``: the
    :class:`Deliverer`, or None for a runner that only tracks (``release-bot check``: it runs
    with ``artist_ids`` only and posts nothing); ``clock``: aware UTC now; ``labeler``:
    optional :class:`RunLabeler`, called after tracking with the new release ids and before
    delivery (its requests are added to the run's lower bound L and to the day's budget; its
    failure is logged and delivery goes on); ``coordinator``: this process among several
    (due guilds are leased, runs and due times carry its owner id); ``before_delivery``: awaited after
    labelling, before delivery (the free signal's matching, so a release matched to an announced release
    group replies to its announcement: docs/musicdata.md); its failure is logged and delivery goes on.
    """

    def __init__(
        self,
        db: Database,
        tracker: RunTracker,
        deliverer: Deliverer | None,
        *,
        clock: Clock = utcnow,
        labeler: RunLabeler | None = None,
        coordinator: Coordinator | None = None,
        before_delivery: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.db = db
        self.before_delivery = before_delivery
        self.tracker = tracker
        self.deliverer = deliverer
        self.clock = clock
        self.labeler = labeler
        self.coordinator = coordinator
        #: called with ``(summary, wall seconds)`` as each run ends, also one that raised (``failed``)
        self.on_finished: Callable[[RunSummary, float], object] | None = None
        self._lock = asyncio.Lock()
        #: guilds whose leases this process could not give up after their run (the store was failing):
        #: its heartbeat keeps renewing them, so they are given up at the next due scan instead
        self._leases_to_end: set[int] = set()
        #: set by :meth:`stop`: no new run starts, a run in progress stops at its next step
        self.stopping = False
        #: the task of the run in progress (waited for, then cancelled, by :meth:`stop`)
        self._task: asyncio.Task[Any] | None = None
        #: run id → (error, outcome if its work was done): runs that ended (or broke) while the store
        #: failed, so they could not be closed then; closed by :meth:`close_unclosed` at the next due scan
        self.unclosed: dict[int, tuple[str, RunOutcome | None]] = {}

    @property
    def running(self) -> bool:
        """True while a run is in progress."""
        return self._lock.locked()

    @property
    def _owner(self) -> str | None:
        return None if self.coordinator is None else self.coordinator.owner

    async def run(
        self,
        trigger: str,
        guild_ids: Sequence[int] | None = None,
        *,
        artist_ids: Sequence[str] | None = None,
        progress: Progress | None = None,
    ) -> RunSummary:
        """Run for ``guild_ids`` (None = every guild) and return its summary; waits for a run in progress.

        With ``artist_ids`` (``release-bot check``, a release-day probe) exactly those artists are
        tracked and nothing is delivered: the releases first seen stay pending for the guilds.

        ``trigger``: ``schedule`` | ``refresh`` | ``check`` | ``release_day``. For ``schedule`` each
        guild's ``next_due_at`` is moved to its next weekly time strictly after now
        and ``last_run_at`` set. Artist and delivery failures are reported in the
        summary, not raised; a store failure propagates (the ``Run`` is marked failed
        when possible). Raises ``ValueError`` for an unknown trigger, or for guilds to
        deliver to on a runner without a deliverer.

        ``progress(checked, total)`` is handed to the tracker (``Tracker.track``): called
        synchronously with 0 first, then after each artist checked or failed.
        """
        if self.stopping:
            raise RunnerStopping()
        async with self._lock:
            if self.stopping:
                raise RunnerStopping()
            return await self._run(trigger, guild_ids, artist_ids=artist_ids, progress=progress)

    # --- a graceful stop ------------------------------------------------------------------------

    def _stop_requested(self) -> bool:
        """True once :meth:`stop` was called (a method, so a check after an ``await`` reads it anew)."""
        return self.stopping

    async def stop(self, grace_seconds: float) -> bool:
        """Shutting down: start no new run, let the run in progress stop at its next step within
        ``grace_seconds`` (seconds), then cancel it. Returns True when it ended within the grace.

        A stopping run claims no new post (a post being sent finishes and is confirmed: the
        deliverer's :meth:`Deliverer.stop`), tracks and delivers nothing more, and is recorded
        ``partial`` with :data:`STOPPED` (its scheduled guilds keep their due time, so another
        process, or the next start, runs them at once). One cancelled after the grace is recorded
        ``failed``; a post cancelled in flight stays claimed and is settled from the channel by
        recovery (docs/design.md). Nothing is lost and nothing is posted twice either way.
        """
        self.stopping = True
        if self.deliverer is not None:
            self.deliverer.stop()
        task = self._task
        if task is None or task.done() or task is asyncio.current_task():
            return True
        done, _pending = await asyncio.wait({task}, timeout=max(0.0, grace_seconds))
        if done:
            return True
        log.warning("the run in progress did not stop within %.0f s; cancelling it", grace_seconds)
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
        return False

    # --- the due scan ---------------------------------------------------------------------------

    async def run_due(self, now: dt.datetime | None = None) -> RunSummary | None:
        """One ``schedule`` run for every guild whose ``next_due_at <= now`` (default: the clock); None if none are due.

        After downtime a guild overdue by several weeks is run once and its next due
        time set strictly after now, so the catch-up happens exactly once. With a
        coordinator, this process runs the due guilds it leases (:meth:`_run_leased`), after giving
        up the leases a store failure kept it from giving up after an earlier run (:meth:`_end_leases`).
        """
        if self.stopping:
            return None
        await self.close_unclosed()
        if self._leases_to_end and self.coordinator is not None and not self.running:
            await self._end_leases(self.coordinator, sorted(self._leases_to_end))
        now = now or self.clock()
        # A cheap read first, without the runner's lock: a scan that finds nothing due never makes
        # a /refresh wait (or say that another run is in progress).
        async with self.db.transaction() as session:
            due = await leases.anything_due(session, now)
            retry = self.deliverer is not None and await leases.any_retry_due(session, now)
        if not due and not retry:
            return None
        async with self._lock:
            if self._stop_requested():
                return None
            summary: RunSummary | None = None
            try:
                if due:
                    if self.coordinator is None:
                        summary = await self._run_due_alone(now)
                    else:
                        summary = await self._run_leased(now, self.coordinator)
                if retry and not self._stop_requested():
                    retried = await self._retry_due(now)
                    summary = summary or retried
            except RunnerStopping:
                return summary
            return summary

    async def _retry_due(self, now: dt.datetime) -> RunSummary | None:
        """Deliver again to the guilds whose failed posts are due for a retry (``guilds.delivery_retry_at
        <= now``): one ``retry`` run that tracks nothing (no Spotify request) and delivers what is
        pending, each guild leased like a due guild when several processes share the store. The
        deliverer sets the next retry (back-off) or clears it."""
        co = self.coordinator
        if co is None:
            async with self.db.transaction() as session:
                guild_ids = await guilds.retry_due_guilds(session, now)
        else:

            async def lease(session: Session) -> list[int]:
                return await leases.claim_retry_guilds(session, co.owner, now=now, lease_seconds=co.lease_seconds)

            guild_ids = await self.db.retrying(lease)
        if not guild_ids:
            return None
        log.info("retrying the posts Discord failed for %d guild(s): %s", len(guild_ids), guild_ids)
        try:
            return await self._run("retry", guild_ids, deliver_only=True)
        finally:
            if co is not None:
                await self._end_leases(co, guild_ids)

    async def close_unclosed(self) -> int:
        """Close the runs this process could not close while the store failed (recorded ``failed``,
        their error kept, with :data:`STORE_FAILED`), and this process's own runs still ``running``
        with no run in progress (none is running here, so none of them can end by itself). Returns how
        many were closed; a store still failing raises (the next scan tries again)."""
        if self.running:
            return 0
        async with self._lock:  # free: taken at once, so no run starts while these are closed
            return await self._close_unclosed()

    async def _close_unclosed(self) -> int:
        closed: list[int] = []
        now = self.clock()
        async with self.db.transaction() as session:
            for run_id, (error, outcome) in list(self.unclosed.items()):
                if await _close_run(session, run_id, f"{error}; {STORE_FAILED}", outcome, now=now):
                    closed.append(run_id)
            if self.coordinator is not None:
                closed += await runs.mark_interrupted_of(
                    session, self.coordinator.owner, now=now, error=f"{INTERRUPTED}; {STORE_FAILED}"
                )
        self.unclosed.clear()
        if closed:
            log.warning(
                "closed %d run(s) left running by a store failure: %s", len(closed), ", ".join(map(str, closed))
            )
        return len(closed)

    async def _run_due_alone(self, now: dt.datetime) -> RunSummary | None:
        """The due scan of a process that runs alone: one run for every due guild."""
        async with self.db.transaction() as session:
            due = [g.id for g in await guilds.due_guilds(session, now)]
        if not due:
            return None
        return await self._run("schedule", due, advance_after=now)

    async def _run_leased(self, now: dt.datetime, co: Coordinator) -> RunSummary | None:
        """The due scan of one process among several: lease a share of the due guilds and run them.

        A due guild runs once, whichever process leases it; a dead process's lease expires and
        another takes the guild over. Each process takes its share (due ÷ live processes), so N
        processes split a large weekly slot between them; what is left is leased at the next scan.
        """
        live = len(await co.live_owners())

        async def lease(session: Session) -> tuple[list[tuple[int, dt.datetime]], set[int]]:
            due_now = await leases.count_due(session, now)
            share = max(1, math.ceil(due_now / max(1, live)))
            expired = await leases.expired_guild_leases(session, co.owner, now=now)
            claimed = await leases.claim_due_guilds(
                session, co.owner, now=now, lease_seconds=co.lease_seconds, limit=share
            )
            return claimed, expired

        leased, expired = await self.db.retrying(lease)
        if not leased:
            return None
        guild_ids = [g for g, _due in leased]
        co.taken_over("guild", len(expired.intersection(guild_ids)))
        try:
            return await self._run("schedule", guild_ids, advance_after=now, fresh_after=max(due for _g, due in leased))
        finally:
            await self._end_leases(co, guild_ids)

    async def _end_leases(self, co: Coordinator, guild_ids: list[int]) -> None:
        """Give up this process's leases of ``guild_ids`` (a guild whose run did not finish stays due).

        When the store fails, the guilds are kept and given up at the next due scan (:meth:`run_due`):
        this process's heartbeat renews every lease it owns, so they would not expire by themselves and
        the guilds would not run again while the process lives."""
        try:
            async with self.db.transaction() as session:
                await leases.release_guild_leases(session, co.owner, guild_ids)
        except Exception:  # the store is failing: given up at the next due scan
            self._leases_to_end.update(guild_ids)
            log.warning("could not release guild leases; trying again at the next due scan", exc_info=True)
        else:
            self._leases_to_end.difference_update(guild_ids)

    # --- one run --------------------------------------------------------------------------------

    async def _run(
        self,
        trigger: str,
        guild_ids: Sequence[int] | None,
        *,
        advance_after: dt.datetime | None = None,
        artist_ids: Sequence[str] | None = None,
        progress: Progress | None = None,
        fresh_after: dt.datetime | None = None,
        deliver_only: bool = False,
    ) -> RunSummary:
        """Plan, then work, then record; a run that raises is marked failed and the error re-raised.

        ``deliver_only`` (a ``retry`` run): no artist is tracked (no Spotify request), the guilds get
        what is pending for them."""
        if self.stopping:
            raise RunnerStopping()
        self._task = asyncio.current_task()
        if trigger not in TRIGGERS:
            raise ValueError(f"unknown trigger {trigger!r}; expected one of {', '.join(TRIGGERS)}")
        if artist_ids is None and self.deliverer is None:
            raise ValueError("this runner only tracks (no deliverer): pass artist_ids")
        started = time.perf_counter()
        plan = await self._plan(trigger, guild_ids, artist_ids, advance_after, fresh_after, deliver_only=deliver_only)
        summary = RunSummary(
            run_id=plan.run_id,
            trigger=trigger,
            status="running",
            artists_due=len(plan.artist_ids),
            artists_checked=0,
            guild_ids=plan.guild_ids,
            started_at=plan.started_at,
        )
        outcome: RunOutcome | None = None
        with log_context(run_id=plan.run_id):  # every record of the run's work carries its run_id
            try:
                work = await self._work(plan, progress, deliver_only=deliver_only)
                finished = self.clock()
                _summarize(summary, work, finished, plan.plan_seconds)
                stopped = self._stop_requested() and _stopped_early(work, plan)
                if stopped:
                    summary.status = "partial" if summary.status == "ok" else summary.status
                    summary.error = "; ".join(p for p in (STOPPED, summary.error) if p)[:ERROR_LIMIT]
                    # The guilds not delivered to in full stay due: another process (or the next start) runs them.
                    plan.keep_due = {
                        g for g in plan.guild_ids if g not in work.deliveries or work.deliveries[g].stopped
                    }
                outcome = _outcome(summary, work.track, finished)
                await self._record(summary, work.track, plan, finished)
            except BaseException as exc:
                # Failed before its end was known; or (``outcome``) its work was done and only recording it failed.
                await self._mark_failed(plan.run_id, f"{type(exc).__name__}: {exc}", outcome)
                summary.status = "failed"
                self._finished(summary, started)
                raise
            finally:
                self._task = None
            self._finished(summary, started)
            log.info(
                "run %s (%s): %s, %d/%d artists, %d found, %d posted, %d Spotify requests",
                summary.run_id,
                trigger,
                summary.status,
                summary.artists_checked,
                summary.artists_due,
                summary.releases_found,
                summary.releases_posted,
                summary.spotify_requests,
            )
        return summary

    def _finished(self, summary: RunSummary, started: float) -> None:
        """Tell :attr:`on_finished` the run ended (``started``: its ``perf_counter``); a failing hook is only logged."""
        if self.on_finished is None:
            return
        try:
            self.on_finished(summary, time.perf_counter() - started)
        except Exception:
            log.warning("run %s: on_finished failed", summary.run_id, exc_info=True)

    async def _plan(
        self,
        trigger: str,
        guild_ids: Sequence[int] | None,
        artist_ids: Sequence[str] | None,
        advance_after: dt.datetime | None,
        fresh_after: dt.datetime | None,
        *,
        deliver_only: bool = False,
    ) -> RunPlan:
        """The plan phase: the guilds (known ones of ``guild_ids``; every guild when None) and the
        union of their followed artists — or exactly ``artist_ids`` and no guild — and the
        ``running`` run record, in one transaction."""
        started = self.clock()
        t_plan = time.perf_counter()
        async with self.db.transaction() as session:
            if artist_ids is not None:
                gids: list[int] = []
                artists = list(dict.fromkeys(artist_ids))
            else:
                gids = [g.id for g in await guilds.guilds_by_ids(session, guild_ids)]
                artists = [] if deliver_only else await guilds.followed_artist_ids(session, gids)
            run_id = await runs.start_run(
                session,
                trigger=trigger,
                guild_id=gids[0] if trigger in ("refresh", "retry") and len(gids) == 1 else None,
                started_at=started,
                artists_due=len(artists),
                owner=self._owner,
            )
        return RunPlan(
            run_id=run_id,
            trigger=trigger,
            artist_ids=artists,
            guild_ids=gids,
            started_at=started,
            advance_after=advance_after,
            fresh_after=fresh_after,
            plan_seconds=time.perf_counter() - t_plan,
        )

    async def _work(self, plan: RunPlan, progress: Progress | None, *, deliver_only: bool = False) -> RunWork:
        """The track, label and deliver phases (only delivery for ``deliver_only``); the Spotify requests
        they made are counted. A stopping runner skips the phases that have not begun."""
        before = self.tracker.spotify.request_count
        problems: list[str] = []
        track = TrackResult() if deliver_only else await self._track(plan, progress, problems)
        t_label = time.perf_counter()
        label_requests = 0 if self.stopping else await self._label(plan.run_id, track, problems)
        label_seconds = time.perf_counter() - t_label
        t_deliver = time.perf_counter()
        if (
            self.before_delivery is not None
            and self.deliverer is not None
            and plan.guild_ids
            and not deliver_only
            and not self.stopping
        ):
            try:
                await self.before_delivery()
            except Exception:
                log.warning("run %s: matching announced releases before delivery failed", plan.run_id, exc_info=True)
        deliveries = await self._deliver(plan.run_id, plan.guild_ids, problems, plan.store_failed)
        deliver_seconds = time.perf_counter() - t_deliver
        return RunWork(
            track=track,
            deliveries=deliveries,
            problems=problems,
            requests=self.tracker.spotify.request_count - before,
            label_requests=label_requests,
            label_seconds=label_seconds,
            deliver_seconds=deliver_seconds,
        )

    async def _track(self, plan: RunPlan, progress: Progress | None, problems: list[str]) -> TrackResult:
        """The track phase: each artist of the plan once (the tracker never raises per artist; a
        failure of the whole phase fails every artist). Adds the cooldown and budget problems."""
        # A scheduled run of one process among several: an artist another process checked since the
        # guilds' due time is not fetched again. /refresh and check always fetch (concurrent checks
        # are still serialised).
        fresh_after = plan.fresh_after if self.coordinator is not None else None
        try:
            # The free second signal orders a budgeted run (announced or just-out releases first); it
            # never leaves an artist out (docs/musicdata.md "What it never decides").
            async with self.db.transaction() as session:
                announced = await musicdata.announced_artists(
                    session, plan.artist_ids, since=self.clock().date() - ANNOUNCED_RECENT
                )
            track = await self.tracker.track(
                plan.artist_ids,
                run_id=plan.run_id,
                economy=None if plan.trigger == "schedule" else False,
                progress=progress,
                fresh_after=fresh_after,
                announced=announced,
            )
        except Exception as exc:  # the tracker catches per artist; this is a bug or the store failing
            log.exception("run %s: tracking failed", plan.run_id)
            reason = failure_reason(exc)
            track = TrackResult(failed=dict.fromkeys(plan.artist_ids, reason))
            problems.append(f"tracking failed: {reason}")
        if track.cooldown is not None:
            problems.append(str(track.cooldown))
        budget_carried = _budget_carried(track)
        if budget_carried:
            problems.append(f"request budget reached: {len(budget_carried)} artists carried to the next run")
        return track

    async def _label(self, run_id: int, track: TrackResult, problems: list[str]) -> int:
        """The label phase: label the new releases (when there is a labeler); returns its Spotify
        requests, counted in the day's budget too. A failure is a problem, not an error."""
        if self.labeler is None or not track.new_releases:
            return 0
        label_requests = 0
        try:
            labelled = await self.labeler.label(list(track.new_releases), run_id=run_id)
            label_requests = labelled.requests
            if label_requests:
                await self.tracker.count_day_requests(label_requests)
        except Exception as exc:  # labels are a nicety: delivery goes on without them
            log.exception("run %s: labelling failed", run_id)
            problems.append(f"labelling failed: {type(exc).__name__}: {exc}"[:300])
        return label_requests

    async def _deliver(
        self, run_id: int, guild_ids: list[int], problems: list[str], store_failed: set[int]
    ) -> dict[int, DeliveryResult]:
        """The deliver phase: each guild in turn (one guild's failure never stops the others). A guild
        whose delivery failed because the store did (``storage.db.store_failed``) is added to
        ``store_failed``: its weekly due time is not moved, so its releases are not left pending for a week."""
        deliveries: dict[int, DeliveryResult] = {}
        if self.deliverer is None:  # a tracking-only run has no guild (checked by _run)
            return deliveries
        for gid in guild_ids:
            if self.stopping:  # shutting down: the guilds not reached keep what is pending
                break
            try:
                result = await self.deliverer.deliver(gid, run_id=run_id)
            except Exception as exc:  # one guild never stops the others
                with log_context(guild_id=gid):
                    log.exception("run %s: delivery to guild %s failed", run_id, gid)
                result = DeliveryResult(gid, error=f"{type(exc).__name__}: {exc}"[:300])
                if store_failed_error(exc):
                    store_failed.add(gid)
            deliveries[gid] = result
            if result.error:
                problems.append(f"guild {gid}: {result.error}")
            if result.retry_at is not None:
                problems.append(
                    f"guild {gid}: {result.pending} releases wait for a retry at {result.retry_at:%H:%M:%S} UTC"
                )
        return deliveries

    async def _record(self, summary: RunSummary, track: TrackResult, plan: RunPlan, finished: dt.datetime) -> None:
        """The record phase: the run's outcome (``summary``, finished at ``finished``) and, for
        ``schedule``, the guilds' next due times (not of a guild the store failed, ``plan.store_failed``, nor
        of one a stop cut short, ``plan.keep_due``), in one transaction rerun on a PostgreSQL deadlock
        or serialization failure (another process finishing its guilds at the same time). Sets
        ``summary.failed_artists``."""
        outcome = _outcome(summary, track, finished)

        async def record(session: Session) -> dict[str, str]:
            names = await catalog.artist_names(session, track.failed)
            await runs.finish_run(session, plan.run_id, outcome)
            if plan.trigger == "schedule":
                after = max(finished, plan.advance_after or finished)
                done = [g for g in plan.guild_ids if g not in plan.keep_due and g not in plan.store_failed]
                await self._advance_due(session, plan.run_id, done, after=after, finished=finished)
            return names

        names = await self.db.retrying(record)
        summary.failed_artists = [FailedArtist(a, names.get(a, a), r) for a, r in track.failed.items()]

    async def _advance_due(
        self, session: Session, run_id: int, guild_ids: list[int], *, after: dt.datetime, finished: dt.datetime
    ) -> None:
        """Move each guild's weekly run to its next due time strictly after ``after``; ``last_run_at``
        is ``finished``. With a coordinator only while this process still holds the guild's lease (a
        lease lost to a stall was taken over: that run moves the due time on, not this one)."""
        for guild in await guilds.guilds_by_ids(session, guild_ids):
            next_due_at = _next_due_of(guild, after)
            if self.coordinator is None:
                await guilds.set_due(session, guild.id, next_due_at=next_due_at, last_run_at=finished)
            elif not await leases.finish_guild_lease(
                session, self.coordinator.owner, guild.id, next_due_at=next_due_at, last_run_at=finished
            ):
                log.warning(
                    "run %s: lease of guild %s was lost; its due time is left to the process that took it over",
                    run_id,
                    guild.id,
                )

    # --- failed and interrupted runs ------------------------------------------------------------

    async def mark_interrupted(self) -> int:
        """At start-up: runs still ``running`` were cut short by a crash or kill; mark them ``failed``.

        Their error says "interrupted"; nothing is lost (unchecked artists stay due, unposted
        releases pending, unconfirmed claims are settled by ``Deliverer.recover``). Only runs
        whose owner is not a live process (another process's run in flight is left alone).
        Skipped while this runner itself runs. Returns how many runs were marked.
        """
        if self.running:
            return 0
        live = await self.coordinator.live_owners() if self.coordinator is not None else set()
        async with self.db.transaction() as session:
            marked = await runs.mark_interrupted(session, live, now=self.clock(), error=INTERRUPTED)
        if marked:
            log.warning("marked %d interrupted run(s) as failed: %s", len(marked), ", ".join(map(str, marked)))
        return len(marked)

    async def _mark_failed(self, run_id: int, error: str, outcome: RunOutcome | None = None) -> None:
        """Close run ``run_id`` that raised ``error``: ``failed``, or, when its work was done and only
        recording it failed (``outcome``), with that outcome made ``partial`` (:func:`_close_run`). When
        the store fails too the run is remembered and closed at the next due scan (:meth:`close_unclosed`)."""
        try:
            async with self.db.transaction() as session:
                await _close_run(session, run_id, error, outcome, now=self.clock())
        except Exception:  # the store is down: closed by the next due scan once it answers
            self.unclosed[run_id] = (error, outcome)
            log.warning(
                "could not mark run %s failed (the store failed); it is closed once the store answers",
                run_id,
                exc_info=True,
            )


async def _close_run(
    session: Session, run_id: int, error: str, outcome: RunOutcome | None, *, now: dt.datetime
) -> bool:
    """Close run ``run_id`` if it is still ``running``: ``failed`` with ``error`` at ``now``, or, with
    ``outcome`` (its work done, its record not written), that outcome as ``partial`` (``failed`` stays
    ``failed``) with ``error`` added to its problems. Returns whether it was still running."""
    if outcome is None:
        return await runs.mark_failed(session, run_id, error=error, now=now)
    problems = "; ".join(p for p in (outcome.error, error) if p)[:ERROR_LIMIT]
    status = "failed" if outcome.status == "failed" else "partial"
    return await runs.finish_run(session, run_id, replace(outcome, status=status, error=problems), if_running=True)


def _outcome(summary: RunSummary, track: TrackResult, finished: dt.datetime) -> RunOutcome:
    """The run record's :class:`RunOutcome` of a summarised run (finished at ``finished``)."""
    return RunOutcome(
        status=summary.status,
        finished_at=finished,
        artists_checked=summary.artists_checked,
        failed_artists=list(track.failed),
        spotify_requests=summary.spotify_requests,
        releases_found=summary.releases_found,
        releases_posted=summary.releases_posted,
        error=summary.error,
        metrics=summary.metrics,
    )


def _stopped_early(work: RunWork, plan: RunPlan) -> bool:
    """True when a stop cut the run short: a delivery stopped before a post, or a guild got none."""
    return any(d.stopped for d in work.deliveries.values()) or len(work.deliveries) < len(plan.guild_ids)


def _budget_carried(track: TrackResult) -> list[str]:
    """Artists carried to the next run by the request budget (not by a failure or a cooldown)."""
    return [a for a in track.carried if a not in track.failed]


def _summarize(summary: RunSummary, work: RunWork, finished: dt.datetime, plan_seconds: float) -> None:
    """Fill ``summary`` from the phases' ``work``: counts, status, error and metrics.

    ``failed`` when artists were due but none was checked, shared or carried by the budget;
    ``partial`` when an artist failed or was carried, or a delivery failed; else ``ok``.
    """
    track = work.track
    summary.deliveries = work.deliveries
    summary.cooldown_until = track.cooldown.until if track.cooldown is not None else None
    summary.artists_due = max(0, summary.artists_due - len(track.economy_skipped))
    summary.carried_over = len(track.carried)
    summary.artists_checked = len(track.checked) + len(track.shared)
    summary.releases_found = len(track.new_releases)
    summary.new_release_ids = list(track.new_releases)
    summary.baselined = list(track.baselined)
    summary.releases_posted = sum(d.posted for d in work.deliveries.values())
    summary.spotify_requests = work.requests
    summary.finished_at = finished
    if summary.artists_due and not track.checked and not track.shared and not _budget_carried(track):
        summary.status = "failed"
    elif track.failed or track.carried or any(d.error for d in work.deliveries.values()):
        summary.status = "partial"
    else:
        summary.status = "ok"
    summary.error = "; ".join(work.problems)[:ERROR_LIMIT] or None
    summary.metrics = run_metrics(
        track,
        summary,
        label_requests=work.label_requests,
        phase_seconds={
            "plan": plan_seconds + track.phase_seconds.get("plan", 0.0),
            "track": track.phase_seconds.get("track", 0.0),
            "label": work.label_seconds,
            "deliver": work.deliver_seconds,
        },
        endpoints=dict(track.requests_by_endpoint),
    )


def run_metrics(
    track: TrackResult,
    summary: RunSummary,
    *,
    label_requests: int,
    phase_seconds: dict[str, float],
    endpoints: dict[str, int],
) -> dict[str, Any]:
    """The ``runs.metrics`` JSON of a run (docs/tracking.md, "Metrics").

    ``lower_bound`` is L: N checked + extra pages each changed group needed + the
    labeler's album requests; ``lower_bound_recheck`` is L_B: L + the re-check's fair share of
    pages (docs/tracking.md, "Lower bound L_B"), and ``requests_over_lb`` the requests ÷ L_B.
    Requests of the labeler are added to ``album`` in ``requests_by_endpoint`` when the client
    does not count them itself.
    """
    by_endpoint = dict(endpoints)
    if label_requests and "album" not in by_endpoint:
        by_endpoint["album"] = label_requests
    lower_recheck = track.lower_bound + label_requests + track.recheck.fair_share
    return {
        "requests": summary.spotify_requests,
        "requests_by_endpoint": by_endpoint,
        "lower_bound": track.lower_bound + label_requests,
        "label_requests": label_requests,
        "pages_skipped": track.pages_skipped,
        "naive_pages": track.naive_pages,
        "rate_limited": track.rate_limited,
        "phase_seconds": {k: round(v, 4) for k, v in phase_seconds.items()},
        "budget": track.budget,
        "carried_over": len(track.carried),
        "artists_due": summary.artists_due,
        "artists_checked": summary.artists_checked,
        "coverage": round(summary.coverage, 4),
        "changed": track.changed,
        "fallbacks": track.fallbacks,
        "baselined": len(track.baselined),
        "back_catalogue": len(track.back_catalogue),
        "economy_skipped": len(track.economy_skipped),
        "rechecked": len(track.rechecked),
        "recheck_requests": track.recheck_requests,
        "recheck_plan": track.recheck.metrics(),
        "lower_bound_recheck": round(lower_recheck, 1),
        "requests_over_lb": round(summary.spotify_requests / lower_recheck, 4) if lower_recheck else None,
        "folded": len(track.folded),
    }


def _next_due_of(guild: Guild, after: dt.datetime) -> dt.datetime:
    """The guild's next weekly due time strictly after ``after``; a broken stored schedule falls back to UTC / Friday 09:00."""
    try:
        return next_due(guild.schedule_day, guild.schedule_time, guild.timezone, after)
    except ValueError:
        log.warning(
            "guild %s has an invalid schedule (%r %r %r); using Friday 09:00 UTC",
            guild.id,
            guild.schedule_day,
            guild.schedule_time,
            guild.timezone,
        )
        return next_due(4, "09:00", "UTC", after)
