"""A run, end to end: the one path both triggers take (weekly schedule and ``/refresh``).

``Runner.run(trigger, guild_ids)`` records a ``Run``, tracks the union of the guilds'
followed artists once each, delivers to each guild (one guild's failure never stops
the others) and finishes the ``Run`` with its counts and status. Runs never overlap
(one ``asyncio.Lock`` per runner). No discord import.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from bot.clock import utcnow
from bot.delivery.deliverer import Deliverer, DeliveryResult
from bot.scheduling.due import next_due
from bot.tracking.tracker import Tracker, TrackResult, failure_reason
from storage import catalog, guilds, leases
from storage.db import Database, retry_transaction
from storage.models import Guild, Run

log = logging.getLogger(__name__)

TRIGGERS = ("schedule", "refresh", "check")


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


class Runner:
    """Runs tracking then delivery for a set of guilds; see the module docstring.

    ``db``: :class:`storage.db.Database`; ``tracker``: :class:`Tracker` (its
    ``spotify.request_count`` is read for the request count); ``deliverer``:
    :class:`Deliverer`; ``clock``: returns the current aware UTC datetime;
    ``labeler``: optional, duck-typed ``await labeler.label(release_ids, *, run_id)``
    returning an object with ``.requests`` (the album requests it made, added to the
    run's lower bound L); called after tracking with the new release ids and before
    delivery (phase ``label``); its failure is logged and delivery goes on.
    """

    def __init__(
        self,
        db: Database,
        tracker: Tracker,
        deliverer: Deliverer,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        labeler: Any = None,
        coordinator: Any = None,
    ) -> None:
        self.db = db
        self.tracker = tracker
        self.deliverer = deliverer
        self.clock = clock
        self.labeler = labeler
        self.coordinator = coordinator
        self._lock = asyncio.Lock()

    @property
    def running(self) -> bool:
        """True while a run is in progress."""
        return self._lock.locked()

    async def run(
        self,
        trigger: str,
        guild_ids: Sequence[int] | None = None,
        *,
        artist_ids: Sequence[str] | None = None,
        progress: Callable[[int, int], Any] | None = None,
    ) -> RunSummary:
        """Run for ``guild_ids`` (None = every guild) and return its summary; waits for a run in progress.

        With ``artist_ids`` (``release-bot check``) exactly those artists are tracked and
        nothing is delivered: the releases first seen stay pending for the guilds.

        ``trigger``: ``schedule`` | ``refresh`` | ``check``. For ``schedule`` each
        guild's ``next_due_at`` is moved to its next weekly time strictly after now
        and ``last_run_at`` set. Artist and delivery failures are reported in the
        summary, not raised; a store failure propagates (the ``Run`` is marked failed
        when possible).

        ``progress(checked, total)`` is handed to the tracker (``Tracker.track``): called
        synchronously with 0 first, then after each artist checked or failed.
        """
        async with self._lock:
            return await self._run(trigger, guild_ids, artist_ids=artist_ids, progress=progress)

    async def run_due(self, now: dt.datetime | None = None) -> RunSummary | None:
        """One ``schedule`` run for every guild whose ``next_due_at <= now`` (default: the clock); None if none are due.

        After downtime a guild overdue by several weeks is run once and its next due
        time set strictly after now, so the catch-up happens exactly once.
        """
        now = now or self.clock()
        # A cheap read first, without the runner's lock: a scan that finds nothing due never makes
        # a /refresh wait (or say that another run is in progress).
        async with self.db.sessions() as session:
            if not await leases.anything_due(session, now):
                return None
        async with self._lock:
            co = self.coordinator
            if co is None:
                async with self.db.sessions() as session:
                    due = [g.id for g in await guilds.due_guilds(session, now)]
                if not due:
                    return None
                return await self._run("schedule", due, advance_after=now)
            # Several processes: lease the due guilds (a due guild runs once, whichever process
            # leases it; a dead process's lease expires and another takes the guild over). Each
            # process takes its share (due ÷ live processes), so N processes split a large weekly
            # slot between them; what is left is leased at the next scan.
            live = len(await co.live_owners())

            async def lease(session: Any) -> list[tuple[int, dt.datetime]]:
                due_now = await leases.count_due(session, now)
                return await leases.claim_due_guilds(
                    session,
                    co.owner,
                    now=now,
                    lease_seconds=co.lease_seconds,
                    limit=max(1, math.ceil(due_now / max(1, live))),
                )

            leased = await retry_transaction(self.db.sessions, lease)
            if not leased:
                return None
            try:
                return await self._run(
                    "schedule", [g for g, _due in leased], advance_after=now, fresh_after=max(due for _g, due in leased)
                )
            finally:
                await self._end_leases([g for g, _due in leased])

    async def _end_leases(self, guild_ids: list[int]) -> None:
        """Give up this process's leases of ``guild_ids`` (a guild whose run did not finish stays due)."""
        try:
            async with self.db.sessions() as session:
                for gid in guild_ids:
                    await leases.finish_guild_lease(
                        session, self.coordinator.owner, gid, next_due_at=None, last_run_at=None
                    )
                await session.commit()
        except Exception:  # pragma: no cover - the leases expire by themselves
            log.warning("could not release guild leases", exc_info=True)

    async def _run(
        self,
        trigger: str,
        guild_ids: Sequence[int] | None,
        advance_after: dt.datetime | None = None,
        artist_ids: Sequence[str] | None = None,
        progress: Callable[[int, int], Any] | None = None,
        fresh_after: dt.datetime | None = None,
    ) -> RunSummary:
        if trigger not in TRIGGERS:
            raise ValueError(f"unknown trigger {trigger!r}; expected one of {', '.join(TRIGGERS)}")
        started = self.clock()
        t_plan = time.perf_counter()
        async with self.db.sessions() as session:
            if artist_ids is not None:
                gids: list[int] = []
                artist_ids = list(dict.fromkeys(artist_ids))
            else:
                rows = await guilds.guilds_by_ids(session, guild_ids)
                gids = [g.id for g in rows]
                artist_ids = await guilds.followed_artist_ids(session, gids)
            run = Run(
                trigger=trigger,
                guild_id=gids[0] if trigger == "refresh" and len(gids) == 1 else None,
                status="running",
                started_at=started,
                artists_due=len(artist_ids),
                failed_artists=[],
                owner=self.coordinator.owner if self.coordinator is not None else None,
            )
            session.add(run)
            await session.commit()
            run_id = run.id
        summary = RunSummary(
            run_id=run_id,
            trigger=trigger,
            status="running",
            artists_due=len(artist_ids),
            artists_checked=0,
            guild_ids=gids,
            started_at=started,
        )
        plan_seconds = time.perf_counter() - t_plan
        try:
            await self._work(
                summary, artist_ids, gids, trigger, advance_after, plan_seconds, progress, fresh_after=fresh_after
            )
        except BaseException as exc:
            await self._mark_failed(run_id, f"{type(exc).__name__}: {exc}")
            raise
        return summary

    async def _work(
        self,
        summary: RunSummary,
        artist_ids: list[str],
        gids: list[int],
        trigger: str,
        advance_after: dt.datetime | None,
        plan_seconds: float = 0.0,
        progress: Callable[[int, int], Any] | None = None,
        fresh_after: dt.datetime | None = None,
    ) -> None:
        spotify = self.tracker.spotify
        before = getattr(spotify, "request_count", 0)
        problems: list[str] = []
        try:
            extra: dict[str, Any] = {"progress": progress} if progress is not None else {}
            if self.coordinator is not None and fresh_after is not None:
                # A scheduled run: an artist another process checked since the guilds' due time is not
                # fetched again. /refresh and check always fetch (concurrent checks are still serialised).
                extra["fresh_after"] = fresh_after
            track = await self.tracker.track(
                artist_ids, run_id=summary.run_id, economy=None if trigger == "schedule" else False, **extra
            )
        except Exception as exc:  # the tracker catches per artist; this is a bug or the store failing
            log.exception("run %s: tracking failed", summary.run_id)
            reason = failure_reason(exc)
            track = TrackResult(failed=dict.fromkeys(artist_ids, reason))
            problems.append(f"tracking failed: {reason}")
        if track.cooldown is not None:
            summary.cooldown_until = track.cooldown.until
            problems.append(str(track.cooldown))
        budget_carried = [a for a in track.carried if a not in track.failed]
        if budget_carried:
            problems.append(f"request budget reached: {len(budget_carried)} artists carried to the next run")

        label_requests = 0
        t_label = time.perf_counter()
        if self.labeler is not None and track.new_releases:
            try:
                labelled = await self.labeler.label(list(track.new_releases), run_id=summary.run_id)
                label_requests = int(getattr(labelled, "requests", 0) or 0)
                if label_requests and hasattr(self.tracker, "count_day_requests"):
                    await self.tracker.count_day_requests(label_requests)
            except Exception as exc:  # labels are a nicety: delivery goes on without them
                log.exception("run %s: labelling failed", summary.run_id)
                problems.append(f"labelling failed: {type(exc).__name__}: {exc}"[:300])
        label_seconds = time.perf_counter() - t_label

        t_deliver = time.perf_counter()
        for gid in gids:
            try:
                result = await self.deliverer.deliver(gid, run_id=summary.run_id)
            except Exception as exc:  # one guild never stops the others
                log.exception("run %s: delivery to guild %s failed", summary.run_id, gid)
                result = DeliveryResult(gid, error=f"{type(exc).__name__}: {exc}"[:300])
            summary.deliveries[gid] = result
            if result.error:
                problems.append(f"guild {gid}: {result.error}")

        deliver_seconds = time.perf_counter() - t_deliver
        finished = self.clock()
        summary.artists_due = max(0, summary.artists_due - len(track.economy_skipped))
        summary.carried_over = len(track.carried)
        summary.artists_checked = len(track.checked) + len(track.shared)
        summary.releases_found = len(track.new_releases)
        summary.new_release_ids = list(track.new_releases)
        summary.baselined = list(track.baselined)
        summary.releases_posted = sum(d.posted for d in summary.deliveries.values())
        summary.spotify_requests = getattr(spotify, "request_count", 0) - before
        summary.finished_at = finished
        if summary.artists_due and not track.checked and not track.shared and not budget_carried:
            summary.status = "failed"
        elif track.failed or track.carried or any(d.error for d in summary.deliveries.values()):
            summary.status = "partial"
        else:
            summary.status = "ok"
        summary.error = "; ".join(problems)[:2000] or None
        summary.metrics = run_metrics(
            track,
            summary,
            label_requests=label_requests,
            phase_seconds={
                "plan": plan_seconds + track.phase_seconds.get("plan", 0.0),
                "track": track.phase_seconds.get("track", 0.0),
                "label": label_seconds,
                "deliver": deliver_seconds,
            },
            endpoints=_endpoint_delta(spotify, track),
        )

        async def record(session: Any) -> None:
            names = await catalog.artist_names(session, track.failed)
            summary.failed_artists = [FailedArtist(a, names.get(a, a), r) for a, r in track.failed.items()]
            run = await session.get(Run, summary.run_id)
            run.status = summary.status
            run.finished_at = finished
            run.artists_checked = summary.artists_checked
            run.artists_failed = len(track.failed)
            run.failed_artists = list(track.failed)
            run.spotify_requests = summary.spotify_requests
            run.releases_found = summary.releases_found
            run.releases_posted = summary.releases_posted
            run.error = summary.error
            run.metrics = summary.metrics
            if trigger == "schedule":
                after = max(finished, advance_after or finished)
                for guild in await guilds.guilds_by_ids(session, gids):
                    if self.coordinator is not None:
                        # Only while this process still holds the guild's lease (a lease lost to
                        # a stall was taken over: that run moves the due time on, not this one).
                        if not await leases.finish_guild_lease(
                            session,
                            self.coordinator.owner,
                            guild.id,
                            next_due_at=_next_due_of(guild, after),
                            last_run_at=finished,
                        ):
                            log.warning(
                                "run %s: lease of guild %s was lost; its due time is left to the "
                                "process that took it over",
                                summary.run_id,
                                guild.id,
                            )
                        continue
                    guild.next_due_at = _next_due_of(guild, after)
                    guild.last_run_at = finished

        # The run record and the guilds' due times in one transaction, rerun on a PostgreSQL
        # deadlock or serialization failure (another process finishing its guilds at the same time).
        await retry_transaction(self.db.sessions, record)

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

    async def mark_interrupted(self) -> int:
        """At start-up: runs still ``running`` were cut short by a crash or kill; mark them ``failed``.

        Their error says "interrupted"; nothing is lost (unchecked artists stay due, unposted
        releases pending, unconfirmed claims are settled by ``Deliverer.recover``). Skipped
        while this runner itself runs. Returns how many runs were marked.
        """
        if self.running:
            return 0
        live = await self.coordinator.live_owners() if self.coordinator is not None else set()
        async with self.db.sessions() as session:
            # Only runs whose owner is not a live process: another process's run in flight is left alone.
            runs = await leases.interrupted_runs(session, live)
            now = self.clock()
            for run in runs:
                run.status = "failed"
                run.finished_at = now
                run.error = "interrupted: the bot stopped during this run (nothing is lost; the next run goes on)"
            await session.commit()
        if runs:
            log.warning("marked %d interrupted run(s) as failed: %s", len(runs), ", ".join(str(r.id) for r in runs))
        return len(runs)

    async def _mark_failed(self, run_id: int, error: str) -> None:
        try:
            async with self.db.sessions() as session:
                run = await session.get(Run, run_id)
                if run is not None and run.status == "running":
                    run.status = "failed"
                    run.finished_at = self.clock()
                    run.error = error[:2000]
                    await session.commit()
        except Exception:  # pragma: no cover - the store is down; nothing more to do
            log.exception("could not mark run %s failed", run_id)


def _endpoint_delta(spotify: Any, track: TrackResult) -> dict[str, int]:
    return dict(track.requests_by_endpoint)


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
    labeler's album requests. Requests of the labeler are added to ``album`` in
    ``requests_by_endpoint`` when the client does not count them itself.
    """
    by_endpoint = dict(endpoints)
    if label_requests and "album" not in by_endpoint:
        by_endpoint["album"] = label_requests
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
