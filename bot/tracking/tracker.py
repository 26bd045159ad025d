"""Change detection: which releases of the followed artists are new (docs/design.md, docs/tracking.md).

Plain async code over the store and a Spotify client; no discord import. The client
is anything with the ``SpotifyClient`` surface used here (``artist_albums``,
``get_artist``, ``request_count``, ``cooldown_until``; optionally
``requests_by_endpoint`` and ``rate_limited``).

One probe per artist (``GET /artists/{id}/albums?include_groups=<union>&limit=10&offset=o``)
decides "unchanged"; changes are drilled into group by group (:mod:`bot.tracking.detect`).
A run is planned under a request budget (:mod:`bot.tracking.plan`). Unchanged
artists and findings are written in batches (a few statements per chunk of artists).
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from bot.clock import utcnow
from bot.spotify.errors import SpotifyCooldown, SpotifyError, SpotifyNotFound
from bot.tracking import detect as det
from bot.tracking.editions import same_release
from bot.tracking.plan import (
    ArtistRow,
    Budget,
    BudgetExhausted,
    economy_skips,
    oldest_key,
    priority_key,
    recheck_picks,
    reserve_requests,
    run_budget,
)
from storage import catalog, guilds, leases, spotify_state
from storage.db import Database, retry_transaction
from storage.models import Artist

log = logging.getLogger(__name__)

TRACKED_GROUPS = ("album", "single", "compilation")
PAGE_LIMIT = 10


def cooldown_reason(until: dt.datetime) -> str:
    """The ``failed`` reason of an artist skipped because of a Spotify cooldown ending at ``until`` (UTC)."""
    return f"Spotify cooldown until {until.astimezone(dt.UTC).isoformat(timespec='seconds')}"


def failure_reason(exc: BaseException) -> str:
    """A short, user-readable reason for a failed artist check (≤ 300 characters)."""
    if isinstance(exc, SpotifyNotFound):
        text = "artist not found on Spotify (404)"
    elif isinstance(exc, SpotifyError):
        status = f" {exc.status}" if exc.status else ""
        text = f"Spotify error{status}: {exc}"
    elif isinstance(exc, TimeoutError):
        text = "Spotify request timed out"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text[:300]


def release_day(date: str | None) -> dt.datetime | None:
    """A Spotify ``release_date`` (``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD``) as UTC midnight of its first day."""
    if not date:
        return None
    parts = (date.split("-") + ["1", "1"])[:3]
    try:
        return dt.datetime(int(parts[0]), max(1, int(parts[1])), max(1, int(parts[2])), tzinfo=dt.UTC)
    except ValueError:
        return None


@dataclass
class TrackResult:
    """Outcome of :meth:`Tracker.track`.

    ``checked``: artist ids checked successfully (including ones baselined this run),
    in input order; ``failed``: artist id → reason (errors, and artists skipped by a
    Spotify cooldown); ``new_releases``: the releases **announced** by this run, each
    once in its life: first seen now (no earlier run stored that release id, under any
    artist) in a non-baseline check, and not another edition of a release known before
    (``folded``); a release already known that is newly linked to one more artist is
    linked (a guild following only that artist still gets it: docs/design.md) but not
    announced again; ``folded``: release id → the known release it is a clean/explicit
    twin or re-issue of (``releases.folded_into``; never announced on its own);
    ``rechecked``: artists whose listing was read whole by the rotating exact re-check;
    ``recheck_requests``: requests those re-checks made beyond one per artist; ``baselined``: artists whose silent baseline was taken instead of a check;
    ``requests``: Spotify API requests made (client ``request_count`` delta);
    ``cooldown``: the cooldown that stopped the run; ``carried``: due artists left
    for the next run because the request budget ran out (or a cooldown stopped the run);
    ``economy_skipped``: inactive artists not due this run (economy mode);
    ``back_catalogue``: new release ids found mid-group (old release date);
    ``lower_bound``: this run's L without the labeler's album requests;
    ``naive_pages``: pages a whole-catalogue walk at limit 10 would have fetched for
    the checked artists; ``pages_skipped``: naive pages not fetched;
    ``budget``: the run's request budget (None = unlimited);
    ``shared``: artists not fetched because another run (another process's, for the same
    due time) checked them at or after ``fresh_after`` — their findings are in the store;
    ``phase_seconds``: ``plan`` and ``track`` wall seconds.
    """

    checked: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    new_releases: list[str] = field(default_factory=list)
    folded: dict[str, str] = field(default_factory=dict)
    rechecked: list[str] = field(default_factory=list)
    recheck_requests: int = 0
    shared: list[str] = field(default_factory=list)
    requests: int = 0
    cooldown: SpotifyCooldown | None = None
    baselined: list[str] = field(default_factory=list)
    carried: list[str] = field(default_factory=list)
    economy_skipped: list[str] = field(default_factory=list)
    back_catalogue: list[str] = field(default_factory=list)
    lower_bound: int = 0
    naive_pages: int = 0
    pages_skipped: int = 0
    budget: int | None = None
    changed: int = 0
    fallbacks: int = 0
    requests_by_endpoint: dict[str, int] = field(default_factory=dict)
    rate_limited: int = 0
    phase_seconds: dict[str, float] = field(default_factory=dict)


class _ArtistFetcher:
    """One artist's Spotify pages within a check: each (groups, offset) requested at most once, through the budget."""

    def __init__(
        self, spotify: Any, artist_id: str, groups: Sequence[str], budget: Budget, *, reserved: bool = False
    ) -> None:
        self.spotify = spotify
        self.artist_id = artist_id
        self.union = ",".join(groups)
        self.budget = budget
        self.cache: dict[tuple[str, int], Any] = {}
        self.requests = 0
        self.holding = reserved  # the worker reserved this artist's first request

    async def take(self) -> None:
        """Count one request against the budget (the first one uses the worker's reservation); raises
        ``BudgetExhausted`` when the run's budget (or the day's, shared in the store) is spent."""
        await self.budget.ensure()
        self.release()
        self.budget.take()
        self.requests += 1

    def release(self) -> None:
        if self.holding:
            self.holding = False
            self.budget.reserved -= 1

    async def _get(self, include: str, offset: int) -> Any:
        key = (include, offset)
        page = self.cache.get(key)
        if page is None:
            await self.take()
            page = await self.spotify.artist_albums(
                self.artist_id, include_groups=include, limit=PAGE_LIMIT, offset=offset
            )
            self.cache[key] = page
        return page

    async def combined(self, offset: int) -> Any:
        return await self._get(self.union, offset)

    async def exact(self, group: str, offset: int) -> Any:
        return await self._get(group, offset)


@dataclass
class _Outcome:
    artist_id: str
    detection: det.Detection
    baselined: bool
    create: dict[str, Any] | None
    last_release_at: dt.datetime | None
    requests: int
    exact: bool = False  # the listing was read whole (baseline, resync, rotating re-check)

    def drop_stored(self) -> None:
        """Forget what only the store needed, once written: the baseline's parsed albums, the new state.

        What the run's result reads (``baselined``, ``requests``, the detection's ``new``
        and counters) is kept; a run over thousands of artists then holds no catalogue.
        """
        self.detection.baseline = []
        self.detection.state = {}
        self.create = None


class Tracker:
    """Finds new releases of artists and records them in the store.

    ``db``: :class:`storage.db.Database`; ``spotify``: the Spotify client;
    ``clock``: returns the current aware UTC datetime; ``groups``: album groups
    tracked for an artist no guild follows (a followed artist gets the union of its
    guilds' ``album_groups``); ``concurrency``: artists checked at once;
    ``max_pages``: safety cap of pages read per group in one check;
    ``requests_per_run`` / ``requests_per_day``: request budgets (0 = unlimited; the
    day is the UTC day, counted in ``spotify_state``); ``reserve_share``: share of a
    budgeted run spent first on the longest-unchecked artists (the starvation guard);
    ``economy`` / ``economy_inactive_days`` / ``economy_every``: economy mode (an
    artist with no release for that many days is checked every k-th scheduled run);
    ``coordinator``: a ``bot.coordination.Coordinator`` when several processes share the
    store (artist-level claims: each artist fetched once per due time across processes;
    None = this process alone); ``flush_every``: artists per store batch; ``recheck_share``: share of each run's
    artists whose listing is read whole (the rotating exact re-check, 0 = off: see
    :func:`bot.tracking.plan.recheck_picks`).
    """

    def __init__(
        self,
        db: Database,
        spotify: Any,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        groups: Sequence[str] = TRACKED_GROUPS,
        concurrency: int = 4,
        max_pages: int = 20,
        requests_per_run: int = 0,
        requests_per_day: int = 0,
        reserve_share: float = 0.25,
        economy: bool = False,
        economy_inactive_days: int = 365,
        economy_every: int = 4,
        flush_every: int = 500,
        recheck_share: float = 0.0,
        coordinator: Any = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be ≥ 1")
        self.db = db
        self.spotify = spotify
        self.clock = clock
        self.groups = det.order_groups(groups)
        self.concurrency = concurrency
        self.max_pages = max_pages
        self.requests_per_run = max(0, int(requests_per_run))
        self.requests_per_day = max(0, int(requests_per_day))
        self.reserve_share = float(reserve_share)
        self.economy = economy
        self.economy_inactive_days = economy_inactive_days
        self.economy_every = economy_every
        self.flush_every = max(1, flush_every)
        self.recheck_share = max(0.0, float(recheck_share))
        self.coordinator = coordinator
        self._write_lock = asyncio.Lock()

    # --- cooldown ------------------------------------------------------------------
    async def active_cooldown(self) -> SpotifyCooldown | None:
        """The Spotify cooldown in force now, or None.

        Reads ``spotify_state`` (so a cooldown survives restarts) and hands a stored one
        to the client (``spotify.cooldown_until``); a cooldown known only to the client
        is persisted.
        """
        now = self.clock()
        async with self.db.sessions() as session:
            until, reason = await spotify_state.get_cooldown(session)
        client_until = getattr(self.spotify, "cooldown_until", None)
        if until is not None and until > now:
            if client_until is None or client_until < until:
                try:
                    self.spotify.cooldown_until = until
                except AttributeError:  # pragma: no cover - a client without the attribute
                    pass
            return SpotifyCooldown(until, reason or "rate limit")
        if client_until is not None and client_until > now:
            cooldown = SpotifyCooldown(client_until, "rate limit")
            await self._persist_cooldown(cooldown)
            return cooldown
        return None

    async def _persist_cooldown(self, cooldown: SpotifyCooldown) -> None:
        async with self._write_lock, self.db.sessions() as session:
            await spotify_state.set_cooldown(session, cooldown.until, cooldown.reason)
            await session.commit()
        log.warning("Spotify cooldown until %s (%s)", cooldown.until.isoformat(), cooldown.reason)

    # --- baseline ------------------------------------------------------------------
    async def baseline(self, artist_id: str) -> int:
        """Take the silent baseline of ``artist_id``; returns the number of releases recorded.

        Every tracked group (the union of the following guilds' ``album_groups``) is read
        whole, ``include_groups=<group>`` at ``limit=10`` (at least one request per
        group), stored with ``baseline=True`` (never announced), and the probe state is
        set up; ``artists.baselined_at`` is set. Plus one ``get_artist`` when the artist
        has no row yet. The requests count towards the day's budget (never refused).
        Idempotent: an artist already baselined costs no request and returns 0.
        Raises ``SpotifyCooldown`` (persisted; no request made while one is in force),
        ``SpotifyNotFound`` or ``SpotifyError``; nothing is stored then.
        """
        async with self.db.sessions() as session:
            artist = await session.get(Artist, artist_id)
            if artist is not None and artist.baselined_at is not None:
                return 0
            groups = (await guilds.tracked_groups(session, [artist_id]))[artist_id]
        cooldown = await self.active_cooldown()
        if cooldown is not None:
            raise cooldown
        budget = Budget(None)
        try:
            outcome = await self._check(artist_id, None, groups, budget)
        except SpotifyCooldown as exc:
            await self._persist_cooldown(exc)
            raise
        finally:
            await self._settle_day(self.clock().astimezone(dt.UTC).date().isoformat(), budget.spent)
        await self._flush([outcome], run_id=None)
        stored = len(outcome.detection.baseline)
        log.info("baseline of %s: %d releases", artist_id, stored)
        return stored

    # --- tracking ------------------------------------------------------------------
    async def track(
        self,
        artist_ids: Iterable[str],
        *,
        run_id: int | None = None,
        economy: bool | None = None,
        progress: Callable[[int, int], Any] | None = None,
        fresh_after: dt.datetime | None = None,
    ) -> TrackResult:
        """Check each artist once for new releases and store them.

        Duplicate ids are checked once. An artist never baselined gets its baseline
        instead (nothing new from it). Otherwise one probe request decides whether
        anything changed; only changed groups are read further (docs/tracking.md).
        New items are stored (``releases`` first seen now, ``artist_releases`` with
        ``baseline=False`` and ``run_id``); ``last_checked_at``/``group_state``/
        ``last_release_at`` updated, ``runs_skipped`` reset and ``last_error``
        cleared — in batches of ``flush_every`` artists, each artist whole or not at all.

        Budget: with ``requests_per_run``/``requests_per_day`` set, artists are checked
        in priority order after a starvation reserve; those not reached are
        ``carried`` (``runs_skipped`` + 1) and stay due. ``economy`` (default: the
        tracker's setting) skips long-inactive artists except every k-th run.

        Failures never raise: an artist that fails (Spotify error, not found, timeout,
        anything) gets ``last_error`` and a ``failed`` entry; the others go on. A
        ``SpotifyCooldown`` — raised by the client, or already in force at the start
        (read from ``spotify_state``) — is persisted and stops the run: every artist not
        yet checked is ``failed`` with "Spotify cooldown until …" (its ``last_error``
        is left alone: not the artist's fault), carried, and ``cooldown`` is set.

        ``progress(done, total)``, when given, is called (synchronously) with 0 first and
        after each artist checked or failed; ``total`` = artists due this run. Its errors
        are logged and ignored.

        With a ``coordinator`` (several processes, docs/multiprocess.md) each artist is
        claimed first: one checked successfully at or after ``fresh_after`` (UTC; by any
        process) is not fetched again (``shared``); one another live process is checking is
        waited for (bounded), then shared or taken over once that claim expires. The day's
        request budget is reserved atomically in the store before the run and what was not
        used is given back after it, so N processes never overspend it.
        """
        t_plan = time.perf_counter()
        ids = list(dict.fromkeys(artist_ids))
        result = TrackResult()
        spotify = self.spotify
        before = getattr(spotify, "request_count", 0)
        before_endpoints = collections.Counter(getattr(spotify, "requests_by_endpoint", {}) or {})
        before_429 = getattr(spotify, "rate_limited", 0)
        now = self.clock()
        day = now.astimezone(dt.UTC).date().isoformat()
        waiting: list[str] = []
        if self.coordinator is not None:
            claimed, fresh, busy = await self._claim(ids, fresh_after)
            result.shared = [a for a in ids if a in fresh]
            waiting = [a for a in ids if a in busy]
            ids = [a for a in ids if a in claimed]
        async with self.db.sessions() as session:
            raw = await catalog.artist_tracking_rows(session, [*ids, *waiting])
            groups_by = await guilds.tracked_groups(session, [*ids, *waiting])
            used_today = await spotify_state.budget_used_today(session, day)
            # Never-baselined artists with no linked release (one query): their baseline needs no
            # per-artist load of known ids (only an artist's own check links releases to it).
            never = [a for a in ids if a not in raw or raw[a][0] is None]
            unlinked = set(never) - await catalog.linked_artist_ids(session, never)
        rows = {
            a: ArtistRow(a, *raw[a]) if a in raw else ArtistRow(a, None, None, None, 0, None, exists=False)
            for a in [*ids, *waiting]
        }
        cooldown = await self.active_cooldown()
        limit = run_budget(self.requests_per_run, self.requests_per_day, used_today)
        # The day's budget is shared by every process: requests are drawn from it in the store, in
        # chunks, as the run goes (what is left unused is given back at the end).
        shared_day = self.requests_per_day > 0
        budget = Budget(limit, reserve=(lambda n: self._reserve_day(day, n)) if shared_day else None)
        result.budget = limit

        use_economy = self.economy if economy is None else economy
        due: list[str] = []
        for a in ids:
            if use_economy and economy_skips(rows[a], now, self.economy_inactive_days, self.economy_every):
                result.economy_skipped.append(a)
            else:
                due.append(a)
        exact_ids = set(
            recheck_picks(
                [
                    rows[a]
                    for a in due
                    if det.is_current(
                        rows[a].group_state, det.order_groups(groups_by.get(a, self.groups)) or self.groups
                    )
                ],
                now,
                self.recheck_share,
            )
        )
        priority = sorted(due, key=lambda a: priority_key(rows[a]))
        reserve = reserve_requests(limit, self.reserve_share)
        phases: list[tuple[list[str], float]] = []
        if limit is not None and reserve:
            phases.append((sorted(due, key=lambda a: oldest_key(rows[a])), reserve))
        phases.append((priority, float("inf")))
        result.phase_seconds["plan"] = time.perf_counter() - t_plan

        t_track = time.perf_counter()
        done = 0

        def report() -> None:
            if progress is not None:
                try:
                    progress(done, len(due))
                except Exception:  # a progress display never breaks a run
                    log.warning("progress callback failed", exc_info=True)

        report()
        outcomes: dict[str, _Outcome] = {}
        errors: dict[str, BaseException] = {}
        started: set[str] = set()
        pending: list[_Outcome] = []
        announced: set[str] = set()
        stop = cooldown is not None

        async def flush_pending(force: bool = False) -> None:
            if pending and (force or len(pending) >= self.flush_every):
                batch = list(pending)
                pending.clear()
                announced.update(await self._flush(batch, run_id=run_id, folded=result.folded))
                await self._release([o.artist_id for o in batch])
                for o in batch:
                    o.drop_stored()

        async def worker(queue: collections.deque[str], phase_limit: float) -> None:
            nonlocal stop, cooldown, done
            while queue and not stop:
                # Start an artist only while its probe fits: requests spent + probes reserved < the limit.
                if budget.spent + budget.reserved >= min(phase_limit, budget.left() + budget.spent):
                    return
                artist_id = queue.popleft()
                if artist_id in started:
                    continue
                started.add(artist_id)
                budget.reserved += 1
                try:
                    outcome = await self._check(
                        artist_id,
                        rows[artist_id],
                        groups_by.get(artist_id, self.groups),
                        budget,
                        reserved=True,
                        exact=artist_id in exact_ids,
                        unlinked=artist_id in unlinked,
                    )
                except SpotifyCooldown as exc:
                    if cooldown is None or exc.until > cooldown.until:
                        cooldown = exc
                    stop = True
                    started.discard(artist_id)
                except BudgetExhausted:
                    started.discard(artist_id)  # nothing stored: still due
                except Exception as exc:  # one artist never stops the others
                    log.warning("check of artist %s failed: %s", artist_id, exc, exc_info=True)
                    errors[artist_id] = exc
                    await self._record_error(artist_id, failure_reason(exc))
                    done += 1
                    report()
                else:
                    outcomes[artist_id] = outcome
                    pending.append(outcome)
                    await flush_pending()
                    done += 1
                    report()

        try:
            for order, phase_limit in phases:
                if stop:
                    break
                queue = collections.deque(a for a in order if a not in started)
                await asyncio.gather(*(worker(queue, phase_limit) for _ in range(self.concurrency)))
            await flush_pending(force=True)
            # Artists another live process was checking: wait for its findings (bounded), or
            # take an artist over when its claim expires (that process died).
            deadline = time.monotonic() + 2 * getattr(self.coordinator, "lease_seconds", 0) + 5
            while waiting and not stop and time.monotonic() < deadline:
                await asyncio.sleep(self.claim_poll_seconds)
                claimed, fresh, busy = await self._claim(waiting, fresh_after)
                result.shared += [a for a in waiting if a in fresh]
                due += [a for a in waiting if a in claimed]
                queue = collections.deque(a for a in waiting if a in claimed)
                waiting = [a for a in waiting if a in busy]
                await asyncio.gather(*(worker(queue, float("inf")) for _ in range(self.concurrency)))
                await flush_pending(force=True)
            for a in waiting:  # still held by a live process: its run posts them; ours checks them next time
                result.shared.append(a)
        finally:
            if cooldown is not None and (stop or cooldown is not None):
                try:
                    await self._persist_cooldown(cooldown)
                except Exception:  # pragma: no cover
                    log.exception("could not persist the Spotify cooldown")
            if shared_day:
                await self._settle_day(day, budget.spent - budget.granted)
            else:
                await self._settle_day(day, budget.spent)
            await self._release([*ids, *waiting, *started])

        seen_new: set[str] = set()
        for artist_id in [*ids, *(a for a in started if a not in ids)]:
            if artist_id in result.economy_skipped:
                continue
            if artist_id in errors:
                result.failed[artist_id] = failure_reason(errors[artist_id])
                continue
            outcome = outcomes.get(artist_id)
            if outcome is None:
                result.carried.append(artist_id)
                if cooldown is not None:
                    result.failed[artist_id] = cooldown_reason(cooldown.until)
                continue
            result.checked.append(artist_id)
            d = outcome.detection
            if outcome.baselined:
                result.baselined.append(artist_id)
            else:
                if artist_id in exact_ids:
                    result.rechecked.append(artist_id)
                    result.recheck_requests += max(0, outcome.requests - 1)
                result.lower_bound += d.lower_bound
                result.naive_pages += d.naive_pages
                result.pages_skipped += max(0, d.naive_pages - outcome.requests)
                result.changed += int(d.changed)
                result.fallbacks += d.fallbacks
            for found in d.new:
                if found.album.id in announced and found.album.id not in seen_new:
                    seen_new.add(found.album.id)
                    result.new_releases.append(found.album.id)
                    if found.back_catalogue:
                        result.back_catalogue.append(found.album.id)
        skipped = result.carried + result.economy_skipped
        if skipped:
            async with self._write_lock, self.db.sessions() as session:
                await catalog.bump_runs_skipped(session, [a for a in skipped if rows[a].exists])
                await session.commit()
        result.cooldown = cooldown
        result.requests = getattr(spotify, "request_count", 0) - before
        after_endpoints = collections.Counter(getattr(spotify, "requests_by_endpoint", {}) or {})
        result.requests_by_endpoint = {k: v for k, v in (after_endpoints - before_endpoints).items() if v}
        result.rate_limited = getattr(spotify, "rate_limited", 0) - before_429
        result.phase_seconds["track"] = time.perf_counter() - t_track
        return result

    async def _check(
        self,
        artist_id: str,
        row: ArtistRow | None,
        groups: Sequence[str],
        budget: Budget,
        *,
        reserved: bool = False,
        exact: bool = False,
        unlinked: bool = False,
    ) -> _Outcome:
        """Check (or baseline) one artist; nothing is stored here.

        ``exact``: the rotating re-check reads the listing whole. ``unlinked``: the artist had no
        linked release when the run was planned, so its known ids are ``{}`` without a query.
        """
        groups = det.order_groups(groups) or self.groups
        fetcher = _ArtistFetcher(self.spotify, artist_id, groups, budget, reserved=reserved)
        try:
            return await self._check_with(fetcher, artist_id, row, groups, exact=exact, unlinked=unlinked)
        finally:
            fetcher.release()

    async def _check_with(
        self,
        fetcher: _ArtistFetcher,
        artist_id: str,
        row: ArtistRow | None,
        groups: Sequence[str],
        *,
        exact: bool = False,
        unlinked: bool = False,
    ) -> _Outcome:
        create = None
        if row is None or not row.exists:
            async with self.db.sessions() as session:
                exists = await session.get(Artist, artist_id) is not None
            if not exists:
                await fetcher.take()
                spotify_artist = await self.spotify.get_artist(artist_id)
                create = {
                    "id": artist_id,
                    "name": spotify_artist.name,
                    "image_url": getattr(spotify_artist, "image_url", None),
                    "group_state": {},
                    "runs_skipped": 0,
                }

        async def load_known() -> dict[str, str]:
            if unlinked:
                return {}
            async with self.db.sessions() as session:
                return await catalog.known_release_groups(session, artist_id)

        baselined = row is None or row.baselined_at is None
        state = None if row is None else row.group_state
        if baselined:
            detection = await det.resync(
                fetcher, groups, await load_known(), head_new=set(), max_pages=max(self.max_pages, 100)
            )
        elif not det.is_current(state, groups):
            if state and state.get("v") == det.STATE_VERSION:
                previous = set(state.get("groups") or ())
            else:  # the issue-2 format: {"album": {"total", "newest"}, …}
                previous = set(TRACKED_GROUPS)  # issue 2 always tracked these three
            detection = await det.resync(
                fetcher, groups, await load_known(), head_new=previous & set(groups), max_pages=max(self.max_pages, 100)
            )
        elif exact:
            detection = await det.recheck(fetcher, groups, await load_known(), max_pages=max(self.max_pages, 100))
        else:
            detection = await det.detect(fetcher, state, load_known, max_pages=self.max_pages)
        newest = row.last_release_at if row is not None else None
        for found in [*detection.new, *detection.baseline]:
            if found.group == "appears_on":
                continue
            day = release_day(found.album.release_date)
            if day is not None and (newest is None or day > newest):
                newest = day
        if detection.new:
            log.info("artist %s: %d new releases", artist_id, len(detection.new))
        return _Outcome(
            artist_id, detection, baselined, create, newest, fetcher.requests, exact=baselined or detection.resynced
        )

    async def _flush(
        self, batch: list[_Outcome], *, run_id: int | None, folded: dict[str, str] | None = None
    ) -> set[str]:
        """Store a batch of checks in one transaction; returns the release ids it announces.

        Announced (once in a release's life, docs/design.md "What new means"): a release found
        new (non-baseline) whose ``releases`` row this batch inserted — no earlier run stored
        that id under any artist — and that is not another edition of a release the artist
        already had (:func:`bot.tracking.editions.same_release`: a clean/explicit twin, a
        re-issue under a new id). Such an edition gets ``releases.folded_into`` and lands in
        ``folded`` (release id → known release id) instead.
        """
        now = self.clock()
        new_artists, releases, links, updates = [], [], [], []
        candidates: list[tuple[str, dict[str, Any]]] = []  # (artist id, release row) found new
        for o in batch:
            if o.create is not None:
                new_artists.append(o.create)
            d = o.detection
            for found, baseline in [*((f, False) for f in d.new), *((f, True) for f in d.baseline)]:
                values = catalog.release_values(found.album, now)
                releases.append(values)
                links.append(
                    {
                        "artist_id": o.artist_id,
                        "release_id": found.album.id,
                        "album_group": found.group,
                        "first_seen_at": now,
                        "baseline": baseline or o.baselined,
                        "run_id": run_id,
                    }
                )
                if not (baseline or o.baselined):
                    candidates.append((o.artist_id, values))
            update = {
                "id": o.artist_id,
                "last_checked_at": now,
                "last_error": None,
                "group_state": d.state,
                "last_release_at": o.last_release_at,
                "runs_skipped": 0,
            }
            if o.baselined:
                update["baselined_at"] = now
            if o.exact:
                update["exact_checked_at"] = now
            updates.append(update)

        async def work(session: Any) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, str]]:
            inserted = await catalog.store_checks(
                session,
                new_artists=new_artists,
                releases=releases,
                links=links,
                artist_updates=updates,
                announce_ids={v["id"] for _a, v in candidates},
            )
            firsts = [(a, v) for a, v in candidates if v["id"] in inserted]
            return firsts, await self._fold_editions(session, firsts, inserted)

        # Several processes write the same artists and releases: a PostgreSQL deadlock or
        # serialization failure reruns the whole batch (idempotent: ON CONFLICT, updates by id).
        async with self._write_lock:
            firsts, editions = await retry_transaction(self.db.sessions, work)
        if folded is not None:
            folded.update(editions)
        return {v["id"] for _a, v in firsts if v["id"] not in editions}

    @staticmethod
    async def _fold_editions(
        session: Any, firsts: list[tuple[str, dict[str, Any]]], inserted: set[str]
    ) -> dict[str, str]:
        """Mark each first-seen release that is another edition of one its artist already had
        (``releases.folded_into``); returns ``{release id: known release id}``. Not committed."""
        if not firsts:
            return {}
        known = await catalog.linked_releases(session, {a for a, _v in firsts}, exclude=inserted)
        editions: dict[str, str] = {}
        for artist_id, values in firsts:
            new = SimpleNamespace(**values)
            for other in known.get(artist_id, ()):
                if same_release(new, other):
                    editions[values["id"]] = other.id
                    break
        if editions:
            await catalog.set_folded_into(session, editions)
        return editions

    claim_poll_seconds = 0.5

    async def _claim(self, ids: list[str], fresh_after: dt.datetime | None) -> tuple[set[str], set[str], set[str]]:
        """Artist-level claims through the coordinator: ``(claimed, fresh, busy)`` (storage.leases)."""
        co = self.coordinator

        async def work(session: Any) -> tuple[set[str], set[str], set[str]]:
            return await leases.claim_artists(
                session, co.owner, ids, now=co.clock(), lease_seconds=co.lease_seconds, fresh_after=fresh_after
            )

        async with self._write_lock:
            return await retry_transaction(self.db.sessions, work)

    async def _release(self, ids: Iterable[str]) -> None:
        if self.coordinator is None:
            return
        ids = list(dict.fromkeys(ids))
        if not ids:
            return
        try:

            async def work(session: Any) -> None:
                await leases.release_artists(session, self.coordinator.owner, ids)

            async with self._write_lock:
                await retry_transaction(self.db.sessions, work)
        except Exception:  # pragma: no cover - the claims expire by themselves
            log.warning("could not release artist claims", exc_info=True)

    async def _reserve_day(self, day: str, want: int) -> int:
        async with self._write_lock, self.db.sessions() as session:
            granted = await spotify_state.reserve_budget(session, day, want, self.requests_per_day)
            await session.commit()
        return granted

    async def count_day_requests(self, requests: int) -> None:
        """Add ``requests`` Spotify requests made outside the tracker in a run (the labeler's album
        requests) to today's count in ``spotify_state``, shared by every process: the day budget
        (``requests_per_day``) covers all of a run's requests, not only the tracker's."""
        await self._settle_day(self.clock().astimezone(dt.UTC).date().isoformat(), int(requests))

    async def _settle_day(self, day: str, delta: int) -> None:
        if delta == 0:
            return
        try:
            async with self._write_lock, self.db.sessions() as session:
                await spotify_state.settle_budget(session, day, delta)
                await session.commit()
        except Exception:  # pragma: no cover - accounting must never break a run
            log.exception("could not settle the day's Spotify budget")

    async def _record_error(self, artist_id: str, reason: str) -> None:
        try:
            async with self._write_lock, self.db.sessions() as session:
                artist = await session.get(Artist, artist_id)
                if artist is not None:
                    artist.last_error = reason
                    await session.commit()
        except Exception:  # pragma: no cover - the store failing too; the run still reports it
            log.exception("could not record the error of artist %s", artist_id)


def tracker_from_settings(
    db: Database, spotify: Any, settings: Any, *, clock: Callable[[], dt.datetime] = utcnow, coordinator: Any = None
) -> Tracker:
    """A :class:`Tracker` configured from ``bot.settings.Settings`` (``[spotify]`` budgets, ``[tracking]``);
    ``coordinator``: this process's ``bot.coordination.Coordinator`` (several processes on one store)."""
    sp, tr = settings.spotify, settings.tracking
    return Tracker(
        db,
        spotify,
        clock=clock,
        concurrency=sp.max_concurrency,
        requests_per_run=sp.requests_per_run,
        requests_per_day=sp.requests_per_day,
        reserve_share=tr.reserve_share,
        economy=tr.economy,
        economy_inactive_days=tr.economy_inactive_days,
        economy_every=tr.economy_every,
        recheck_share=tr.recheck_share,
        coordinator=coordinator,
    )
