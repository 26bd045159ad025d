"""The free second signal's daily job (docs/musicdata.md): map the followed artists to MusicBrainz,
fetch ListenBrainz's fresh releases, keep the release groups of followed artists, read their
barcodes, match them to Spotify releases and record the misses.

:meth:`MusicSignal.run_daily` runs at most once per UTC day across every process on the store: under
the named lease :data:`DAILY_LEASE` (one process at a time) it skips a day already done, and
records the day (:func:`storage.musicdata.record_daily_fetch`) only once the day's work has
succeeded: a fetch that fails, or a process killed half-way, leaves the day to the next look.

Nothing here decides what tracking looks at: the tracker's artists, probes and budget are not
read or written (docs/musicdata.md, "What it never decides").
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field

from bot.clock import Clock, utcnow
from bot.coordination.coordinator import Coordinator, LeaseBusy
from bot.musicdata.errors import MusicDataError
from bot.musicdata.listenbrainz import ListenBrainzClient
from bot.musicdata.matching import Match, pick_match
from bot.musicdata.musicbrainz import MAX_RESOURCES, MusicBrainzClient
from storage import catalog, musicdata
from storage.db import Database
from storage.models import Release
from storage.musicdata import ReleaseGroupRow, StoredGroup

log = logging.getLogger(__name__)

DAILY_LEASE = "musicdata:daily"
"""The named lease held while the daily job runs."""

MAX_MAPPING_REQUESTS = 100
"""MusicBrainz URL lookups per daily job (:data:`MAX_RESOURCES` artists each: 10,000 artists a day)."""

MAX_BARCODE_REQUESTS = 300
"""MusicBrainz release browses (one per release group) per daily job; the rest wait for the next day."""

UNMAPPED_WEEKLY_ATTEMPTS = 4
"""An unmapped artist is tried again weekly this many times, then monthly."""

WEEK = dt.timedelta(days=7)
MONTH = dt.timedelta(days=30)

MISS_AFTER_DAYS = 14
"""Days after a release group's date with no Spotify release matched before it counts as missed."""

MATCH_WINDOW_DAYS = 90
"""Unmatched release groups dated up to this many days ago are still matched (a late Spotify listing)."""


def mapping_retry_after(unmapped_attempts: int) -> dt.timedelta:
    """How long after an answer a Spotify artist's mapping is tried again.

    ``unmapped_attempts``: answers in a row that found no MusicBrainz artist (0: mapped). Mapped: a
    month (MBIDs change when artists are merged). Unmapped: a week after each of the first
    :data:`UNMAPPED_WEEKLY_ATTEMPTS` answers (small artists are often added to MusicBrainz soon after
    their first release), then a month.
    """
    if unmapped_attempts == 0:
        return MONTH
    return WEEK if unmapped_attempts <= UNMAPPED_WEEKLY_ATTEMPTS else MONTH


def wants_barcodes(group: StoredGroup, today: dt.date) -> bool:
    """Whether the daily job reads ``group``'s barcodes: never read yet, or none known, read before
    its date, and the date has come (labels enter barcodes around the release)."""
    if group.barcodes_checked_at is None:
        return True
    return not group.barcodes and group.barcodes_checked_at.date() < group.release_date <= today


@dataclass
class DailyReport:
    """What one daily job did (UTC ``day``): artists whose mapping was tried and of them mapped; the
    fresh releases listed and kept (of followed, mapped artists); release groups first seen, whose
    date changed, that came back, that are gone; barcode lookups; matches and misses recorded; the
    MusicBrainz and ListenBrainz requests sent; ``errors`` (one line each: a step that failed)."""

    day: dt.date
    artists_tried: int = 0
    artists_mapped: int = 0
    listed: int = 0
    kept: int = 0
    new: int = 0
    date_changed: int = 0
    returned: int = 0
    gone: int = 0
    barcode_lookups: int = 0
    matched: int = 0
    missed: int = 0
    musicbrainz_requests: int = 0
    listenbrainz_requests: int = 0
    errors: list[str] = field(default_factory=list)


class MusicSignal:
    """The daily job on ``db`` (see the module docstring).

    ``coordinator``: this process's (the lease); ``musicbrainz`` / ``listenbrainz``: the clients;
    ``clock``: aware UTC now (the coordinator's); ``lookahead_days``: the fresh releases' window,
    days before and after today (``[musicbrainz] lookahead_days``).
    """

    def __init__(
        self,
        db: Database,
        coordinator: Coordinator,
        musicbrainz: MusicBrainzClient,
        listenbrainz: ListenBrainzClient,
        *,
        clock: Clock = utcnow,
        lookahead_days: int = 30,
    ) -> None:
        self.db = db
        self.coordinator = coordinator
        self.musicbrainz = musicbrainz
        self.listenbrainz = listenbrainz
        self.clock = clock
        self.lookahead_days = lookahead_days

    async def run_daily(self) -> DailyReport | None:
        """Run the day's job unless another process is running it or it ran today: None then.

        Steps (each step's failure is logged in the report and the next runs, except the fetch):
        map the due artists, fetch and store the fresh releases, read barcodes, match, record misses.
        Raises :class:`MusicDataError` when the fresh releases cannot be fetched (the day is not
        recorded: the next attempt fetches), and what the store raises.
        """
        try:
            async with self.coordinator.lease(DAILY_LEASE):
                return await self._run_claimed()
        except LeaseBusy:
            return None

    async def _run_claimed(self) -> DailyReport | None:
        today = self.clock().date()
        async with self.db.transaction() as session:
            done = await musicdata.daily_fetch_day(session)
        if done is not None and done >= today.isoformat():
            return None
        report = DailyReport(today)
        mb_before, lb_before = self.musicbrainz.request_count, self.listenbrainz.request_count
        try:
            await self._step(report, "mapping", self.map_artists(report))
            await self.fetch_fresh_releases(today, report)
            await self._step(report, "barcodes", self.read_barcodes(today, report))
            report.matched = len(await self.match(today))
            report.missed = len(await self.record_misses(today))
        finally:
            report.musicbrainz_requests = self.musicbrainz.request_count - mb_before
            report.listenbrainz_requests = self.listenbrainz.request_count - lb_before
        # Recorded only now: a fetch that failed, or a process killed half-way, leaves the day to the
        # next look (any process). The lease keeps two processes from doing it at once.
        async with self.db.transaction() as session:
            await musicdata.record_daily_fetch(session, today.isoformat())
        log.info(
            "music data %s: %d/%d artists mapped, %d of %d fresh releases kept (%d new, %d moved, %d gone), "
            "%d matched, %d missed; %d MusicBrainz and %d ListenBrainz requests",
            today,
            report.artists_mapped,
            report.artists_tried,
            report.kept,
            report.listed,
            report.new,
            report.date_changed,
            report.gone,
            report.matched,
            report.missed,
            report.musicbrainz_requests,
            report.listenbrainz_requests,
        )
        return report

    @staticmethod
    async def _step(report: DailyReport, name: str, work: Awaitable[None]) -> None:
        """Await ``work``; a :class:`MusicDataError` is logged and noted in ``report``."""
        try:
            await work
        except MusicDataError as exc:
            log.warning("music data %s: %s (the rest of the step waits for the next day)", name, exc)
            report.errors.append(f"{name}: {exc}")

    async def map_artists(self, report: DailyReport) -> None:
        """Map the followed artists whose mapping is due (never tried, or its retry time passed) to their
        MusicBrainz artists, :data:`MAX_RESOURCES` per request, at most :data:`MAX_MAPPING_REQUESTS`
        requests; each answer is stored at once. Raises :class:`MusicDataError` (what was stored stays)."""
        now = self.clock()
        async with self.db.transaction() as session:
            due = await musicdata.artists_to_map(session, now=now, limit=MAX_MAPPING_REQUESTS * MAX_RESOURCES)
        for start in range(0, len(due), MAX_RESOURCES):
            chunk = due[start : start + MAX_RESOURCES]
            found = await self.musicbrainz.artist_mbids(chunk)
            async with self.db.transaction() as session:
                await musicdata.record_mappings(session, found, now=self.clock(), retry_after=mapping_retry_after)
            report.artists_tried += len(chunk)
            report.artists_mapped += sum(1 for mbids in found.values() if mbids)

    async def fetch_fresh_releases(self, today: dt.date, report: DailyReport) -> None:
        """Fetch the release groups dated ``today`` ± ``lookahead_days`` and store those of followed,
        mapped artists (:func:`storage.musicdata.store_release_groups`: first/last seen, date changes,
        disappearance). Raises :class:`MusicDataError`."""
        days = self.lookahead_days
        releases = await self.listenbrainz.fresh_releases(days=days, pivot=today)
        async with self.db.transaction() as session:
            followed = await musicdata.followed_artists_by_mbid(session)
        rows = []
        for r in releases:
            spotify_ids = sorted({a for m in r.artist_mbids for a in followed.get(m, ())})
            if spotify_ids:
                rows.append(
                    ReleaseGroupRow(
                        mbid=r.release_group_mbid,
                        title=r.title,
                        artist_credit_name=r.artist_credit_name,
                        artist_mbids=r.artist_mbids,
                        primary_type=r.primary_type,
                        secondary_types=r.secondary_types,
                        release_date=r.release_date,
                        release_mbid=r.release_mbid,
                        caa_id=r.caa_id,
                        caa_release_mbid=r.caa_release_mbid,
                        spotify_ids=tuple(spotify_ids),
                    )
                )
        window = (today - dt.timedelta(days=days), today + dt.timedelta(days=days))
        async with self.db.transaction() as session:
            stored = await musicdata.store_release_groups(
                session, rows, listed={r.release_group_mbid for r in releases}, window=window, now=self.clock()
            )
        report.listed, report.kept = len(releases), len(rows)
        report.new, report.date_changed = len(stored.new), len(stored.date_changed)
        report.returned, report.gone = len(stored.returned), len(stored.gone)

    async def read_barcodes(self, today: dt.date, report: DailyReport) -> None:
        """Read the barcodes of the stored release groups that want them (:func:`wants_barcodes`), never read
        ones first, at most :data:`MAX_BARCODE_REQUESTS`. Raises :class:`MusicDataError` (what was read stays)."""
        async with self.db.transaction() as session:
            groups = await musicdata.unmatched_release_groups(
                session, since=today - dt.timedelta(days=MATCH_WINDOW_DAYS)
            )
        wanted = sorted(
            (g for g in groups if wants_barcodes(g, today)),
            key=lambda g: (g.barcodes_checked_at is not None, g.release_date, g.mbid),
        )
        for group in wanted[:MAX_BARCODE_REQUESTS]:
            barcodes = await self.musicbrainz.release_barcodes(group.mbid)
            async with self.db.transaction() as session:
                await musicdata.store_barcodes(session, group.mbid, barcodes, now=self.clock())
            report.barcode_lookups += 1

    async def match(self, today: dt.date) -> list[tuple[str, Match]]:
        """Match the unmatched release groups dated from ``today - MATCH_WINDOW_DAYS`` on to the Spotify
        releases of their followed artists (:func:`bot.musicdata.matching.pick_match`); each Spotify
        release to one group at most: a barcode match first, then the best score, then the group whose
        type agrees, then the earliest date. Returns the
        ``(release group MBID, Match)`` recorded. No request: the store only."""
        async with self.db.transaction() as session:
            groups = await musicdata.unmatched_release_groups(
                session, since=today - dt.timedelta(days=MATCH_WINDOW_DAYS)
            )
            linked = await catalog.linked_releases(session, sorted({a for g in groups for a in g.spotify_ids}))
            taken = await musicdata.matched_release_ids(session)
        recorded: list[tuple[str, Match]] = []
        pending = list(groups)
        while pending:
            proposals = []
            for group in pending:
                match = pick_match(
                    title=group.title,
                    release_date=group.release_date,
                    primary_type=group.primary_type,
                    barcodes=group.barcodes,
                    candidates=_candidates(group, linked, taken),
                )
                if match is not None:
                    proposals.append((group, match))
            proposals.sort(
                key=lambda gm: (
                    gm[1].method != "upc",
                    -gm[1].score,
                    not gm[1].type_agrees,
                    gm[0].release_date,
                    gm[0].mbid,
                )
            )
            won = []
            for group, match in proposals:
                if match.release_id not in taken:
                    taken.add(match.release_id)
                    won.append((group, match))
            if not won:
                break
            async with self.db.transaction() as session:
                for group, match in won:
                    if await musicdata.record_match(
                        session, group.mbid, match.release_id, match.method, now=self.clock()
                    ):
                        recorded.append((group.mbid, match))
            done = {g.mbid for g, _ in won}
            pending = [g for g, _ in proposals if g.mbid not in done]
        return recorded

    async def match_now(self) -> int:
        """:meth:`match` for today (UTC), between daily jobs: run before each delivery, so a Spotify release
        found by a run is matched to its announced release group before it is posted. No request. Returns
        how many matches were recorded."""
        return len(await self.match(self.clock().date()))

    async def record_misses(self, today: dt.date) -> list[str]:
        """Record as missed the unmatched release groups dated more than :data:`MISS_AFTER_DAYS` before
        ``today``; returns their MBIDs."""
        async with self.db.transaction() as session:
            return await musicdata.record_misses(
                session, dated_before=today - dt.timedelta(days=MISS_AFTER_DAYS), now=self.clock()
            )


def _candidates(group: StoredGroup, linked: dict[str, list[Release]], taken: set[str]) -> Sequence[Release]:
    """The Spotify releases of ``group``'s followed artists not matched to a group yet (each once)."""
    found = {r.id: r for a in group.spotify_ids for r in linked.get(a, ()) if r.id not in taken}
    return list(found.values())
