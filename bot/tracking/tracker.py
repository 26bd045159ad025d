"""Change detection: which releases of the followed artists are new (docs/design.md, docs/tracking.md).

Plain async code over the store and a Spotify client; no discord import. The client
is anything with the ``SpotifyClient`` surface used here (:class:`SpotifyCatalog`:
``artist_albums``, ``get_artist``, ``request_count``, ``requests_by_endpoint``,
``rate_limited``, ``cooldown_until``).

One probe per artist (``GET /artists/{id}/albums?include_groups=<union>&limit=10&offset=o``)
decides "unchanged"; changes are drilled into group by group (:mod:`bot.tracking.detect`).
A run is planned under a request budget (:mod:`bot.tracking.plan`). Unchanged
artists and findings are written in batches (a few statements per chunk of artists).
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.clock import Clock, utcnow
from bot.ops.logs import log_context
from bot.spotify.errors import SpotifyCooldown, SpotifyError, SpotifyNotFound
from bot.spotify.models import Album, Page
from bot.spotify.models import Artist as SpotifyArtist
from bot.tracking import detect as det
from bot.tracking.editions import same_release
from bot.tracking.groups import tracked_groups
from bot.tracking.plan import (
    ArtistRow,
    Budget,
    BudgetExhausted,
    RecheckPlan,
    economy_skips,
    oldest_key,
    priority_order,
    recheck_plan,
    reserve_requests,
    run_budget,
)
from storage import catalog, leases, spotify_state
from storage.db import Database, Session

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
    ``recheck_requests``: requests those re-checks made beyond one per artist (the re-check's pages);
    ``recheck``: the run's re-check plan (:class:`bot.tracking.plan.RecheckPlan`: its pages, even and
    fair share; ``lower_bound + recheck.fair_share`` is L_B without the labeler's requests);
    ``baselined``: artists whose silent baseline was taken instead of a check;
    ``requests``: Spotify API requests made (client ``request_count`` delta), of which
    ``requests_by_endpoint`` per endpoint; ``rate_limited``: HTTP 429 answers met;
    ``cooldown``: the cooldown that stopped the run; ``carried``: due artists left
    for the next run because the request budget ran out (or a cooldown stopped the run);
    ``economy_skipped``: inactive artists not due this run (economy mode);
    ``back_catalogue``: new release ids found mid-group (old release date);
    ``lower_bound``: this run's L without the labeler's album requests;
    ``naive_pages``: pages a whole-catalogue walk at limit 10 would have fetched for
    the checked artists; ``pages_skipped``: naive pages not fetched;
    ``budget``: the run's request budget (None = unlimited); ``changed``: checked artists
    whose probe disagreed with the stored state; ``fallbacks``: exact per-group reads made
    because an alignment check failed;
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
    recheck: RecheckPlan = field(default_factory=lambda: RecheckPlan([]))
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


class SpotifyCatalog(Protocol):
    """What the tracker needs of the Spotify client (:class:`bot.spotify.client.SpotifyClient`): the two
    endpoints it calls and the client's counters and cooldown."""

    @property
    def request_count(self) -> int:
        """API requests sent so far (retries included, token requests excluded)."""
        ...

    @property
    def requests_by_endpoint(self) -> Mapping[str, int]:
        """Requests sent so far per endpoint name (``"artist_albums"``, ``"artist"``, …)."""
        ...

    @property
    def rate_limited(self) -> int:
        """HTTP 429 answers seen so far."""
        ...

    cooldown_until: dt.datetime | None
    """The end (aware UTC) of the Spotify cooldown the client honours, or None."""

    async def artist_albums(self, artist_id: str, *, include_groups: str, limit: int, offset: int) -> Page[Album]:
        """Get Artist's Albums: one page of ``include_groups`` (comma-separated album groups)."""
        ...

    async def get_artist(self, artist_id: str) -> SpotifyArtist:
        """Get Artist: its name and image."""
        ...


class ArtistClaims(Protocol):
    """What the tracker needs of this process's coordinator (:class:`bot.coordination.coordinator.Coordinator`)
    to claim artists in the store shared by several processes."""

    @property
    def owner(self) -> str:
        """This process's id: the ``claim_owner`` of its claims."""
        ...

    @property
    def lease_seconds(self) -> float:
        """How long a claim holds (seconds) unless renewed or released."""
        ...

    @property
    def clock(self) -> Clock:
        """The clock claims are dated by (the database's, shared by every process)."""
        ...


class _ArtistFetcher:
    """One artist's Spotify pages within a check: each (groups, offset) requested at most once, through the budget."""

    def __init__(
        self, spotify: SpotifyCatalog, artist_id: str, groups: Sequence[str], budget: Budget, *, reserved: bool = False
    ) -> None:
        self.spotify = spotify
        self.artist_id = artist_id
        self.union = ",".join(groups)
        self.budget = budget
        self.cache: dict[tuple[str, int], Page[Album]] = {}
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
        """Give back the worker's reservation of this artist's first request, if still held."""
        if self.holding:
            self.holding = False
            self.budget.reserved -= 1

    async def _get(self, include: str, offset: int) -> Page[Album]:
        key = (include, offset)
        page = self.cache.get(key)
        if page is None:
            await self.take()
            page = await self.spotify.artist_albums(
                self.artist_id, include_groups=include, limit=PAGE_LIMIT, offset=offset
            )
            self.cache[key] = page
        return page

    async def combined(self, offset: int) -> Page[Album]:
        """The page of the union of the tracked groups at ``offset``."""
        return await self._get(self.union, offset)

    async def exact(self, group: str, offset: int) -> Page[Album]:
        """The page of ``group`` (or comma-separated groups) at ``offset``."""
        return await self._get(group, offset)


@dataclass
class _Outcome:
    """One artist's check, not stored yet: its detection, whether it was the baseline, the ``artists``
    row to create (an artist without one), its newest release date and the requests it made."""

    artist_id: str
    detection: det.Detection
    baselined: bool
    create: catalog.NewArtistRow | None
    last_release_at: dt.datetime | None
    requests: int
    exact: bool = False  # the listing was read whole (baseline, resync, rotating re-check)

    def drop_stored(self) -> None:
        """Forget what only the store needed, once written: the baseline's parsed albums, the new state.

        What the run's result reads (``baselined``, ``requests``, the detection's ``new``
        and counters) is kept; a run over thousands of artists then holds no catalogue.
        """
        self.detection.baseline = []
        self.detection.state = None
        self.create = None


@dataclass(frozen=True)
class _FirstSeen:
    """A release first seen now under ``artist_id`` (a new ``releases`` row), as editions compares it."""

    artist_id: str
    id: str
    name: str
    album_type: str
    artists: list[dict[str, str]]
    release_date: str
    release_date_precision: str
    total_tracks: int | None

    @classmethod
    def of(cls, artist_id: str, values: catalog.ReleaseRow) -> _FirstSeen:
        """From the ``releases`` row ``values`` (:func:`storage.catalog.release_values`)."""
        return cls(
            artist_id,
            values["id"],
            values["name"],
            values["album_type"],
            values["artists"],
            values["release_date"],
            values["release_date_precision"],
            values["total_tracks"],
        )


@dataclass
class _Counters:
    """The Spotify client's counters at one moment (a run's requests are the difference)."""

    requests: int
    by_endpoint: collections.Counter[str]
    rate_limited: int

    @classmethod
    def of(cls, spotify: SpotifyCatalog) -> _Counters:
        """The counters of ``spotify`` now."""
        return cls(spotify.request_count, collections.Counter(spotify.requests_by_endpoint), spotify.rate_limited)


@dataclass
class _Batch:
    """The rows of a batch of checks for :func:`storage.catalog.store_checks`, and the candidates to announce."""

    new_artists: list[catalog.NewArtistRow] = field(default_factory=list)
    releases: list[catalog.ReleaseRow] = field(default_factory=list)
    links: list[catalog.LinkRow] = field(default_factory=list)
    updates: list[catalog.ArtistUpdate] = field(default_factory=list)
    candidates: list[_FirstSeen] = field(default_factory=list)  # found new (non-baseline), first seen or not


@dataclass
class _Run:
    """One call of :meth:`Tracker.track`: its plan, and what its workers share while checking.

    Plan: ``ids`` (the artists this process checks, input order; claimed ones with a
    coordinator), ``waiting`` (held by another live process), ``rows`` (their ``artists``
    columns), ``groups_by`` (each artist's tracked groups), ``unlinked`` (never baselined and
    without a linked release), ``due`` (not skipped by economy mode; grows with artists
    taken over from ``waiting``), ``exact_ids`` (the rotating exact re-check's picks),
    ``phases`` (artists in order, with the requests each phase may spend), ``budget``,
    ``day`` (UTC ``YYYY-MM-DD``) and ``shared_day`` (the day's budget is drawn from the store).

    Check: ``cooldown`` (in force, or met; it stops the run), ``started`` (artists taken by
    a worker), ``outcomes``, ``errors``, ``pending`` (checks not stored yet),
    ``announced`` (release ids the stored batches announce), ``done`` (artists checked or
    failed, for ``progress``).
    """

    run_id: int | None
    fresh_after: dt.datetime | None
    progress: Callable[[int, int], object] | None
    result: TrackResult
    counters: _Counters
    day: str
    ids: list[str]
    waiting: list[str]
    rows: dict[str, ArtistRow]
    groups_by: Mapping[str, Sequence[str]]
    unlinked: set[str]
    budget: Budget
    shared_day: bool
    cooldown: SpotifyCooldown | None
    due: list[str] = field(default_factory=list)
    exact_ids: set[str] = field(default_factory=set)
    phases: list[tuple[list[str], float]] = field(default_factory=list)
    started: set[str] = field(default_factory=set)
    outcomes: dict[str, _Outcome] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    pending: list[_Outcome] = field(default_factory=list)
    announced: set[str] = field(default_factory=set)
    done: int = 0

    @property
    def stopped(self) -> bool:
        """A Spotify cooldown is in force: no more requests this run."""
        return self.cooldown is not None

    def report(self) -> None:
        """Call ``progress(done, due)``; its errors are logged and ignored."""
        if self.progress is not None:
            try:
                self.progress(self.done, len(self.due))
            except Exception:  # a progress display never breaks a run
                log.warning("progress callback failed", exc_info=True)


class Tracker:
    """Finds new releases of artists and records them in the store.

    ``db``: :class:`storage.db.Database`; ``spotify``: the Spotify client (:class:`SpotifyCatalog`);
    ``clock``: returns the current aware UTC datetime; ``groups``: album groups
    tracked for an artist no guild follows (a followed artist gets the union of its
    guilds' ``album_groups``); ``concurrency``: artists checked at once;
    ``max_pages``: safety cap of pages read per group in one check;
    ``requests_per_run`` / ``requests_per_day``: request budgets (0 = unlimited; the
    day is the UTC day, counted in ``spotify_state``); ``reserve_share``: share of a
    budgeted run spent first on the longest-unchecked artists (the starvation guard);
    ``economy`` / ``economy_inactive_days`` / ``economy_every``: economy mode (an
    artist with no release for that many days is checked every k-th scheduled run);
    ``coordinator``: a ``bot.coordination.Coordinator`` (:class:`ArtistClaims`) when several
    processes share the store (artist-level claims: each artist fetched once per due time
    across processes; None = this process alone); ``flush_every``: artists per store batch;
    ``recheck_share``: the rotating exact re-check (0 = off): each run reads whole about this share
    of the pages of its artists' listings, and every artist within ``ceil(1/share)`` weekly runs
    (:func:`bot.tracking.plan.recheck_plan`).
    """

    claim_poll_seconds = 0.5
    """Seconds between two claim attempts on artists another live process is checking."""

    def __init__(
        self,
        db: Database,
        spotify: SpotifyCatalog,
        *,
        clock: Clock = utcnow,
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
        coordinator: ArtistClaims | None = None,
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
        async with self.db.transaction() as session:
            until, reason = await spotify_state.get_cooldown(session)
        client_until = self.spotify.cooldown_until
        if until is not None and until > now:
            if client_until is None or client_until < until:
                self.spotify.cooldown_until = until
            return SpotifyCooldown(until, reason or "rate limit")
        if client_until is not None and client_until > now:
            cooldown = SpotifyCooldown(client_until, "rate limit")
            await self._persist_cooldown(cooldown)
            return cooldown
        return None

    async def _persist_cooldown(self, cooldown: SpotifyCooldown) -> None:
        """Store ``cooldown`` in ``spotify_state`` (shared by every process and by restarts)."""
        async with self._write_lock, self.db.transaction() as session:
            await spotify_state.set_cooldown(session, cooldown.until, cooldown.reason)
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
        async with self.db.transaction() as session:
            if await catalog.is_baselined(session, artist_id):
                return 0
            groups = (await tracked_groups(session, [artist_id]))[artist_id]
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
            await self._settle_day(_utc_day(self.clock()), budget.spent)
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
        progress: Callable[[int, int], object] | None = None,
        fresh_after: dt.datetime | None = None,
        announced: Collection[str] = (),
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
        tracker's setting) skips long-inactive artists except every k-th run. ``announced``: ids of
        artists with a release announced ahead (a release group dated today or later, from the
        MusicBrainz/ListenBrainz signal): after the reserve, they come first (docs/tracking.md,
        "Budget and starvation"); they are checked like any other, never skipped for it.

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

        Phases: plan (:meth:`_plan`: claims, the store's rows, the budget, the order), check
        in batches (:meth:`_check_due`, then :meth:`_check_waiting`), settle the cooldown, the
        day's budget and the claims (:meth:`_settle`), and build the result (:meth:`_conclude`).
        """
        t_plan = time.perf_counter()
        run = await self._plan(list(dict.fromkeys(artist_ids)), run_id, economy, progress, fresh_after, announced)
        run.result.phase_seconds["plan"] = time.perf_counter() - t_plan
        t_track = time.perf_counter()
        run.report()
        try:
            await self._check_due(run)
            await self._check_waiting(run)
        finally:
            await self._settle(run)
        await self._conclude(run)
        run.result.phase_seconds["track"] = time.perf_counter() - t_track
        return run.result

    async def _plan(
        self,
        ids: list[str],
        run_id: int | None,
        economy: bool | None,
        progress: Callable[[int, int], object] | None,
        fresh_after: dt.datetime | None,
        announced: Collection[str],
    ) -> _Run:
        """Plan a run over ``ids`` (deduplicated, input order): claim them (with a coordinator), read
        their rows, tracked groups and the day's budget use, the cooldown in force, and the budget;
        then the artists due and their order (:meth:`_order`; ``announced`` first after the reserve)."""
        result = TrackResult()
        counters = _Counters.of(self.spotify)
        now = self.clock()
        day = _utc_day(now)
        waiting: list[str] = []
        if self.coordinator is not None:
            claimed, fresh, busy = await self._claim(self.coordinator, ids, fresh_after)
            result.shared = [a for a in ids if a in fresh]
            waiting = [a for a in ids if a in busy]
            ids = [a for a in ids if a in claimed]
        async with self.db.transaction() as session:
            raw = await catalog.artist_tracking_rows(session, [*ids, *waiting])
            groups_by = await tracked_groups(session, [*ids, *waiting])
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
        budget = Budget(limit, reserve=functools.partial(self._reserve_day, day) if shared_day else None)
        result.budget = limit
        run = _Run(
            run_id=run_id,
            fresh_after=fresh_after,
            progress=progress,
            result=result,
            counters=counters,
            day=day,
            ids=ids,
            waiting=waiting,
            rows=rows,
            groups_by=groups_by,
            unlinked=unlinked,
            budget=budget,
            shared_day=shared_day,
            cooldown=cooldown,
        )
        self._order(run, now, self.economy if economy is None else economy, limit, frozenset(announced))
        return run

    def _order(
        self, run: _Run, now: dt.datetime, use_economy: bool, limit: int | None, announced: frozenset[str]
    ) -> None:
        """The artists due (economy mode skips some), the exact re-check's plan, and the phases: the
        starvation reserve (longest unchecked first) when the run is budgeted, then priority order
        (``announced`` artists first, then recently active: :func:`bot.tracking.plan.priority_order`)."""
        for a in run.ids:
            if use_economy and economy_skips(run.rows[a], now, self.economy_inactive_days, self.economy_every):
                run.result.economy_skipped.append(a)
            else:
                run.due.append(a)
        current = [
            run.rows[a]
            for a in run.due
            if det.is_current(
                run.rows[a].group_state, det.order_groups(run.groups_by.get(a, self.groups)) or self.groups
            )
        ]
        run.result.recheck = recheck_plan(current, now, self.recheck_share)
        run.exact_ids = set(run.result.recheck.picks)
        priority = priority_order([run.rows[a] for a in run.due], announced)
        reserve = reserve_requests(limit, self.reserve_share)
        if limit is not None and reserve:
            run.phases.append((sorted(run.due, key=lambda a: oldest_key(run.rows[a])), reserve))
        run.phases.append((priority, float("inf")))

    async def _check_due(self, run: _Run) -> None:
        """Check the planned artists phase by phase (``concurrency`` workers each), then store what is pending."""
        for order, phase_limit in run.phases:
            if run.stopped:
                break
            queue = collections.deque(a for a in order if a not in run.started)
            await asyncio.gather(*(self._work(run, queue, phase_limit) for _ in range(self.concurrency)))
        await self._flush_pending(run, force=True)

    async def _check_waiting(self, run: _Run) -> None:
        """Artists another live process was checking: wait for its findings (bounded), or take an artist
        over when its claim expires (that process died). Those still held are ``shared``: its run posts
        them; ours checks them next time."""
        co = self.coordinator
        if co is None:
            return  # nothing is waiting without claims
        deadline = time.monotonic() + 2 * co.lease_seconds + 5
        while run.waiting and not run.stopped and time.monotonic() < deadline:
            await asyncio.sleep(self.claim_poll_seconds)
            claimed, fresh, busy = await self._claim(co, run.waiting, run.fresh_after)
            run.result.shared += [a for a in run.waiting if a in fresh]
            run.due += [a for a in run.waiting if a in claimed]
            queue = collections.deque(a for a in run.waiting if a in claimed)
            run.waiting = [a for a in run.waiting if a in busy]
            await asyncio.gather(*(self._work(run, queue, float("inf")) for _ in range(self.concurrency)))
            await self._flush_pending(run, force=True)
        run.result.shared.extend(run.waiting)

    async def _work(self, run: _Run, queue: collections.deque[str], phase_limit: float) -> None:
        """One worker: check artists from ``queue`` until it is empty, a cooldown stops the run, or the
        next artist's probe would not fit the budget (requests spent + probes reserved < the limit)."""
        while queue and not run.stopped:
            if run.budget.spent + run.budget.reserved >= min(phase_limit, run.budget.left() + run.budget.spent):
                return
            artist_id = queue.popleft()
            if artist_id in run.started:
                continue
            run.started.add(artist_id)
            run.budget.reserved += 1
            with log_context(artist_id=artist_id):
                await self._check_one(run, artist_id)

    async def _check_one(self, run: _Run, artist_id: str) -> None:
        """Check ``artist_id`` (its first request reserved), and record the outcome in ``run``.

        A cooldown stops the run and an exhausted budget leaves the artist due (neither is
        the artist's failure); any other error is the artist's (``last_error``). A check
        is queued for the next batch, which is stored once ``flush_every`` are pending.
        """
        try:
            outcome = await self._check(
                artist_id,
                run.rows[artist_id],
                run.groups_by.get(artist_id, self.groups),
                run.budget,
                reserved=True,
                exact=artist_id in run.exact_ids,
                unlinked=artist_id in run.unlinked,
            )
        except SpotifyCooldown as exc:
            if run.cooldown is None or exc.until > run.cooldown.until:
                run.cooldown = exc
            run.started.discard(artist_id)
        except BudgetExhausted:
            run.started.discard(artist_id)  # nothing stored: still due
        except Exception as exc:  # one artist never stops the others
            log.warning("check of artist %s failed: %s", artist_id, exc, exc_info=True)
            run.errors[artist_id] = exc
            await self._record_error(artist_id, failure_reason(exc))
            run.done += 1
            run.report()
        else:
            run.outcomes[artist_id] = outcome
            run.pending.append(outcome)
            await self._flush_pending(run)
            run.done += 1
            run.report()

    async def _flush_pending(self, run: _Run, *, force: bool = False) -> None:
        """Store the pending checks as one batch once ``flush_every`` are pending (or any, with ``force``),
        then release their claims and drop what only the store needed."""
        if not run.pending or not (force or len(run.pending) >= self.flush_every):
            return
        batch = list(run.pending)
        run.pending.clear()
        run.announced.update(await self._flush(batch, run_id=run.run_id, folded=run.result.folded))
        await self._release([o.artist_id for o in batch])
        for o in batch:
            o.drop_stored()

    async def _settle(self, run: _Run) -> None:
        """After the checks (even when they raised): persist the cooldown met, settle the day's request
        count (give back the unused part of what was drawn from the shared budget), release the claims."""
        if run.cooldown is not None:
            try:
                await self._persist_cooldown(run.cooldown)
            except Exception:  # the store failing: the client still holds the cooldown
                log.exception("could not persist the Spotify cooldown")
        spent = run.budget.spent - run.budget.granted if run.shared_day else run.budget.spent
        await self._settle_day(run.day, spent)
        await self._release([*run.ids, *run.waiting, *run.started])

    async def _conclude(self, run: _Run) -> None:
        """Fill ``run.result`` (see :class:`TrackResult`): each artist checked, failed or carried, the
        releases announced, the counters; carried and economy-skipped artists get ``runs_skipped`` + 1."""
        result = run.result
        seen_new: set[str] = set()
        for artist_id in [*run.ids, *(a for a in run.started if a not in run.ids)]:
            if artist_id in result.economy_skipped:
                continue
            if artist_id in run.errors:
                result.failed[artist_id] = failure_reason(run.errors[artist_id])
                continue
            outcome = run.outcomes.get(artist_id)
            if outcome is None:
                result.carried.append(artist_id)
                if run.cooldown is not None:
                    result.failed[artist_id] = cooldown_reason(run.cooldown.until)
                continue
            result.checked.append(artist_id)
            _count_outcome(result, outcome, artist_id in run.exact_ids)
            for found in outcome.detection.new:
                if found.album.id in run.announced and found.album.id not in seen_new:
                    seen_new.add(found.album.id)
                    result.new_releases.append(found.album.id)
                    if found.back_catalogue:
                        result.back_catalogue.append(found.album.id)
        skipped = result.carried + result.economy_skipped
        if skipped:
            async with self._write_lock, self.db.transaction() as session:
                await catalog.bump_runs_skipped(session, [a for a in skipped if run.rows[a].exists])
        result.cooldown = run.cooldown
        now = _Counters.of(self.spotify)
        result.requests = now.requests - run.counters.requests
        result.requests_by_endpoint = {k: v for k, v in (now.by_endpoint - run.counters.by_endpoint).items() if v}
        result.rate_limited = now.rate_limited - run.counters.rate_limited

    # --- one artist ----------------------------------------------------------------
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
        """One artist's check through ``fetcher``: its ``artists`` row to create if it has none
        (:meth:`_new_artist_row`), the detection (:meth:`_detect`), its newest release date."""
        create = None
        if row is None or not row.exists:
            create = await self._new_artist_row(fetcher, artist_id)
        baselined = row is None or row.baselined_at is None
        detection = await self._detect(fetcher, artist_id, row, groups, exact=exact, unlinked=unlinked)
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

    async def _new_artist_row(self, fetcher: _ArtistFetcher, artist_id: str) -> catalog.NewArtistRow | None:
        """The ``artists`` row to insert for an artist without one (one ``get_artist`` request), or None
        when the row exists (another run created it meanwhile)."""
        async with self.db.transaction() as session:
            if await catalog.artist_exists(session, artist_id):
                return None
        await fetcher.take()
        spotify_artist = await self.spotify.get_artist(artist_id)
        return {
            "id": artist_id,
            "name": spotify_artist.name,
            "image_url": spotify_artist.image_url,
            "group_state": {},
            "runs_skipped": 0,
        }

    async def _detect(
        self,
        fetcher: _ArtistFetcher,
        artist_id: str,
        row: ArtistRow | None,
        groups: Sequence[str],
        *,
        exact: bool,
        unlinked: bool,
    ) -> det.Detection:
        """The detection that fits the artist's stored state: the baseline (never baselined), a resync
        (the tracked groups changed, or an old-format state), the rotating exact re-check, or the
        one-probe check (:mod:`bot.tracking.detect`)."""

        async def load_known() -> dict[str, str]:
            if unlinked:
                return {}
            async with self.db.transaction() as session:
                return await catalog.known_release_groups(session, artist_id)

        whole = max(self.max_pages, 100)
        state = None if row is None else row.group_state
        if row is None or row.baselined_at is None:
            return await det.resync(fetcher, groups, await load_known(), head_new=set(), max_pages=whole)
        if state is None or not det.is_current(state, groups):
            if state and state.get("v") == det.STATE_VERSION:
                previous = set(state.get("groups") or ())
            else:  # the issue-2 format: {"album": {"total", "newest"}, …}
                previous = set(TRACKED_GROUPS)  # issue 2 always tracked these three
            return await det.resync(
                fetcher, groups, await load_known(), head_new=previous & set(groups), max_pages=whole
            )
        if exact:
            return await det.recheck(fetcher, groups, await load_known(), max_pages=whole)
        return await det.detect(fetcher, state, load_known, max_pages=self.max_pages)

    # --- the store -----------------------------------------------------------------
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
        rows = _batch_rows(batch, run_id=run_id, now=self.clock())

        async def work(session: Session) -> tuple[list[_FirstSeen], dict[str, str]]:
            inserted = await catalog.store_checks(
                session,
                new_artists=rows.new_artists,
                releases=rows.releases,
                links=rows.links,
                artist_updates=rows.updates,
                announce_ids={c.id for c in rows.candidates},
            )
            firsts = [c for c in rows.candidates if c.id in inserted]
            return firsts, await _fold_editions(session, firsts, inserted)

        # Several processes write the same artists and releases: a PostgreSQL deadlock or
        # serialization failure reruns the whole batch (idempotent: ON CONFLICT, updates by id).
        async with self._write_lock:
            firsts, editions = await self.db.retrying(work)
        if folded is not None:
            folded.update(editions)
        return {c.id for c in firsts if c.id not in editions}

    async def _claim(
        self, co: ArtistClaims, ids: list[str], fresh_after: dt.datetime | None
    ) -> tuple[set[str], set[str], set[str]]:
        """Artist-level claims through the coordinator ``co``: ``(claimed, fresh, busy)`` (storage.leases);
        rerun on a PostgreSQL deadlock or serialization failure."""

        async def work(session: Session) -> tuple[set[str], set[str], set[str]]:
            return await leases.claim_artists(
                session, co.owner, ids, now=co.clock(), lease_seconds=co.lease_seconds, fresh_after=fresh_after
            )

        async with self._write_lock:
            return await self.db.retrying(work)

    async def _release(self, ids: Iterable[str]) -> None:
        """Drop this process's claims on ``ids`` (nothing without a coordinator); a failure is logged:
        the claims expire by themselves."""
        co = self.coordinator
        if co is None:
            return
        unique = list(dict.fromkeys(ids))
        if not unique:
            return

        async def work(session: Session) -> None:
            await leases.release_artists(session, co.owner, unique)

        try:
            async with self._write_lock:
                await self.db.retrying(work)
        except Exception:  # the claims expire by themselves
            log.warning("could not release artist claims", exc_info=True)

    async def _reserve_day(self, day: str, want: int) -> int:
        """Draw up to ``want`` requests from UTC ``day``'s budget in the store; returns how many were granted."""
        async with self._write_lock, self.db.transaction() as session:
            return await spotify_state.reserve_budget(session, day, want, self.requests_per_day)

    async def count_day_requests(self, requests: int) -> None:
        """Add ``requests`` Spotify requests made outside the tracker in a run (the labeler's album
        requests) to today's count in ``spotify_state``, shared by every process: the day budget
        (``requests_per_day``) covers all of a run's requests, not only the tracker's."""
        await self._settle_day(_utc_day(self.clock()), int(requests))

    async def _settle_day(self, day: str, delta: int) -> None:
        """Add ``delta`` requests to UTC ``day``'s count in the store (negative: give some back); a
        failure is logged: accounting never breaks a run."""
        if delta == 0:
            return
        try:
            async with self._write_lock, self.db.transaction() as session:
                await spotify_state.settle_budget(session, day, delta)
        except Exception:  # accounting must never break a run
            log.exception("could not settle the day's Spotify budget")

    async def _record_error(self, artist_id: str, reason: str) -> None:
        """Store why ``artist_id``'s check failed (``last_error``); a store failure is logged (the run still reports it)."""
        try:
            async with self._write_lock, self.db.transaction() as session:
                await catalog.record_artist_error(session, artist_id, reason)
        except Exception:  # the store failing too; the run still reports it
            log.exception("could not record the error of artist %s", artist_id)


def _utc_day(now: dt.datetime) -> str:
    """The UTC day of ``now`` as ``YYYY-MM-DD`` (the day budget's key)."""
    return now.astimezone(dt.UTC).date().isoformat()


def _count_outcome(result: TrackResult, outcome: _Outcome, rechecked: bool) -> None:
    """Add a checked artist's outcome to the run's counters (a baseline only to ``baselined``)."""
    d = outcome.detection
    if outcome.baselined:
        result.baselined.append(outcome.artist_id)
        return
    if rechecked:
        result.rechecked.append(outcome.artist_id)
        result.recheck_requests += max(0, outcome.requests - 1)
    result.lower_bound += d.lower_bound
    result.naive_pages += d.naive_pages
    result.pages_skipped += max(0, d.naive_pages - outcome.requests)
    result.changed += int(d.changed)
    result.fallbacks += d.fallbacks


def _batch_rows(batch: list[_Outcome], *, run_id: int | None, now: dt.datetime) -> _Batch:
    """The rows storing ``batch`` (checked at ``now``, UTC): new artists, releases (first seen now if
    absent), links (``baseline`` for a baseline's releases), the artists' updates; and the releases
    found new (non-baseline), the candidates to announce."""
    rows = _Batch()
    for o in batch:
        if o.create is not None:
            rows.new_artists.append(o.create)
        d = o.detection
        for found, baseline in [*((f, False) for f in d.new), *((f, True) for f in d.baseline)]:
            values = catalog.release_values(found.album, now)
            rows.releases.append(values)
            rows.links.append(
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
                rows.candidates.append(_FirstSeen.of(o.artist_id, values))
        update: catalog.ArtistUpdate = {
            "id": o.artist_id,
            "last_checked_at": now,
            "last_error": None,
            "last_release_at": o.last_release_at,
            "runs_skipped": 0,
        }
        if d.state is not None:
            update["group_state"] = d.state
        if o.baselined:
            update["baselined_at"] = now
        if o.exact:
            update["exact_checked_at"] = now
        rows.updates.append(update)
    return rows


async def _fold_editions(session: Session, firsts: list[_FirstSeen], inserted: set[str]) -> dict[str, str]:
    """Mark each first-seen release that is another edition of one its artist already had
    (``releases.folded_into``); returns ``{release id: known release id}``. Not committed."""
    if not firsts:
        return {}
    known = await catalog.linked_releases(session, {c.artist_id for c in firsts}, exclude=inserted)
    editions: dict[str, str] = {}
    for new in firsts:
        for other in known.get(new.artist_id, ()):
            if same_release(new, other):
                editions[new.id] = other.id
                break
    if editions:
        await catalog.set_folded_into(session, editions)
    return editions
