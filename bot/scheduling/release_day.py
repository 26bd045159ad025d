"""Release-day probing (docs/musicdata.md, "Release day"): a release MusicBrainz announced for today is
looked for on Spotify on its day, and posted as soon as Spotify lists it, to the guilds that asked
for it (``guilds.release_day``).

A **probe** is the tracker's ordinary incremental check of the release group's followed artists — a
``Runner.run("release_day", artist_ids=…)`` run (recorded like any run, its requests counted in the
day's budget) — followed by the matching rule of the free second signal
(:func:`bot.musicdata.matching.pick_match`) over those artists' Spotify releases. Probes are due at
local midnight of the release day plus each of ``probe_hours`` in the Spotify market's time zone
(:func:`market_zone`), at most ``max_probes`` per release group and day, never during a Spotify
cooldown. Found → the Spotify release is recorded on the probe row and delivered at once to the
``release_day`` guilds following its artists, through the ordinary :class:`Deliverer` restricted to
that release (the ledger keeps it out of the weekly digest afterwards). Not found after the last
probe → the weekly run posts it, as before.

Several processes: each probe slot is taken by one conditional statement
(:func:`storage.release_day.claim_due_probes`) and held for ``hold_seconds``; while the scan that took it
has not finished its probe (waiting for a run of its process to end, or probing a long batch), the hold
is renewed every ``renew_seconds`` (:func:`storage.release_day.extend_holds`), so two processes never
probe one release at once; only a slot whose taker stopped renewing (it died) is taken again.
No discord import, no SQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.clock import Clock, utcnow
from bot.delivery.deliverer import DeliveryResult
from bot.musicdata.matching import Match, pick_match
from bot.scheduling.runner import RunSummary
from bot.spotify.errors import SpotifyCooldown
from storage import catalog, musicdata, release_day
from storage.db import Database, Session
from storage.release_day import ProbeSlot, ProbeTarget

log = logging.getLogger(__name__)

MARKET_ZONES: dict[str, str] = {
    # One zone per market: where Spotify's midnight release happens for listeners of that market.
    # Several zones in one country: the zone of its release midnight (US: 00:00 Eastern, which is
    # 21:00 Pacific the evening before — releases go live across the country at once).
    "US": "America/New_York",
    "CA": "America/Toronto",
    "MX": "America/Mexico_City",
    "BR": "America/Sao_Paulo",
    "AR": "America/Argentina/Buenos_Aires",
    "CL": "America/Santiago",
    "CO": "America/Bogota",
    "PE": "America/Lima",
    "GB": "Europe/London",
    "IE": "Europe/Dublin",
    "FR": "Europe/Paris",
    "DE": "Europe/Berlin",
    "AT": "Europe/Vienna",
    "CH": "Europe/Zurich",
    "NL": "Europe/Amsterdam",
    "BE": "Europe/Brussels",
    "LU": "Europe/Luxembourg",
    "ES": "Europe/Madrid",
    "PT": "Europe/Lisbon",
    "IT": "Europe/Rome",
    "SE": "Europe/Stockholm",
    "NO": "Europe/Oslo",
    "DK": "Europe/Copenhagen",
    "FI": "Europe/Helsinki",
    "IS": "Atlantic/Reykjavik",
    "PL": "Europe/Warsaw",
    "CZ": "Europe/Prague",
    "GR": "Europe/Athens",
    "TR": "Europe/Istanbul",
    "UA": "Europe/Kyiv",
    "ZA": "Africa/Johannesburg",
    "NG": "Africa/Lagos",
    "IN": "Asia/Kolkata",
    "JP": "Asia/Tokyo",
    "KR": "Asia/Seoul",
    "PH": "Asia/Manila",
    "ID": "Asia/Jakarta",
    "SG": "Asia/Singapore",
    "AU": "Australia/Sydney",
    "NZ": "Pacific/Auckland",
}
"""Spotify market (ISO 3166-1 alpha-2) → IANA zone of its release midnight; any other market: UTC."""


def market_zone(market: str) -> ZoneInfo:
    """The time zone whose midnight starts a release day in Spotify ``market`` (:data:`MARKET_ZONES`, else UTC)."""
    return ZoneInfo(MARKET_ZONES.get(market.upper(), "UTC"))


def probe_times(day: dt.date, zone: ZoneInfo, probe_hours: Sequence[float]) -> list[dt.datetime]:
    """The probe times of release day ``day`` (aware UTC): local midnight in ``zone`` plus each of
    ``probe_hours`` (hours, ascending, each in [0, 24)). Wall-clock arithmetic in UTC, so a DST change
    that day shifts nothing by an hour."""
    midnight = dt.datetime.combine(day, dt.time(0, 0), tzinfo=zone).astimezone(dt.UTC)
    return [midnight + dt.timedelta(hours=h) for h in probe_hours]


def next_probe_at(
    day: dt.date,
    zone: ZoneInfo,
    probe_hours: Sequence[float],
    *,
    after: dt.datetime,
    probes_made: int,
    max_probes: int,
) -> dt.datetime | None:
    """When the next probe of release day ``day`` is due: the first probe time strictly after ``after``
    (probe times missed while the bot was busy or down are skipped, not caught up one by one); None
    once ``probes_made`` reached ``max_probes`` or the day has no probe time left."""
    if probes_made >= max_probes:
        return None
    return next((t for t in probe_times(day, zone, probe_hours) if t > after), None)


class ProbeRunner(Protocol):
    """What the prober needs of the runner (:class:`bot.scheduling.runner.Runner`)."""

    @property
    def running(self) -> bool:
        """True while a run is in progress in this process."""
        ...

    async def run(
        self, trigger: str, guild_ids: Sequence[int] | None = None, *, artist_ids: Sequence[str] | None = None
    ) -> RunSummary:
        """One run: here ``trigger="release_day"`` with ``artist_ids`` (tracks and labels them, posts nothing)."""
        ...


class ProbeDeliverer(Protocol):
    """What the prober needs of the deliverer (:class:`bot.delivery.deliverer.Deliverer`)."""

    async def deliver(
        self, guild_id: int, *, run_id: int | None = None, release_ids: Collection[str] | None = None
    ) -> DeliveryResult:
        """Post the guild's pending announcements of ``release_ids`` (with their folded twins)."""
        ...


class CooldownSource(Protocol):
    """Where the prober reads the Spotify cooldown (:class:`bot.tracking.tracker.Tracker`)."""

    async def active_cooldown(self) -> SpotifyCooldown | None:
        """The cooldown in force now (stored or known to the client), or None."""
        ...


@dataclass
class ProbeOutcome:
    """One probe: release group ``mbid`` on ``release_day``, probe number ``probe``; the run it took
    (``run_id``), its Spotify ``requests``, the Spotify release ``found`` (None: not listed yet) and by which rule (``method``:
    ``"upc"`` | ``"title"``), the
    ``next_probe_at`` (UTC; None: no more) and the guilds it was posted to (``posted``: guild id →
    announcements posted)."""

    mbid: str
    release_day: dt.date
    probe: int
    run_id: int | None = None
    requests: int = 0
    found: str | None = None
    method: str = ""
    next_probe_at: dt.datetime | None = None
    posted: dict[int, int] | None = None


class ReleaseDayProber:
    """Seeds, claims and makes the release-day probes; see the module docstring.

    ``db``: the store; ``runner`` (:class:`ProbeRunner`), ``deliverer`` (:class:`ProbeDeliverer`),
    ``cooldowns`` (:class:`CooldownSource`); ``clock``: aware UTC now (the database's with several
    processes); ``market``: the ``[spotify] market`` (its zone: :func:`market_zone`); ``max_probes``:
    probes per release group and day (k); ``probe_hours``: hours after local midnight the probes are due;
    ``hold_seconds``: how long a taken slot is held before another process may take it again (a process
    that died mid-probe); ``renew_seconds``: how often (seconds of real time) the holds of the slots a scan
    took and has not finished yet are renewed (None: a third of ``hold_seconds``); ``batch``: slots taken
    per scan. Raises ``ValueError`` for ``max_probes`` < 1, ``probe_hours`` not ascending in [0, 24), or
    ``renew_seconds`` not in (0, ``hold_seconds``).
    """

    def __init__(
        self,
        db: Database,
        runner: ProbeRunner,
        deliverer: ProbeDeliverer,
        cooldowns: CooldownSource,
        *,
        clock: Clock = utcnow,
        market: str = "US",
        max_probes: int = 4,
        probe_hours: Sequence[float] = (0.25, 2.0, 6.0, 12.0),
        hold_seconds: float = 1800.0,
        renew_seconds: float | None = None,
        batch: int = 20,
    ) -> None:
        if max_probes < 1:
            raise ValueError("max_probes must be ≥ 1")
        if not probe_hours or any(not 0 <= h < 24 for h in probe_hours) or list(probe_hours) != sorted(probe_hours):
            raise ValueError("probe_hours must be ascending hours in [0, 24)")
        renew = hold_seconds / 3 if renew_seconds is None else renew_seconds
        if not 0 < renew < hold_seconds:
            raise ValueError("renew_seconds must be positive and shorter than hold_seconds")
        self.db = db
        self.runner = runner
        self.deliverer = deliverer
        self.cooldowns = cooldowns
        self.clock = clock
        self.zone = market_zone(market)
        self.max_probes = max_probes
        self.probe_hours = tuple(float(h) for h in probe_hours)
        self.hold_seconds = hold_seconds
        self.renew_seconds = renew
        self.batch = batch

    def today(self, now: dt.datetime) -> dt.date:
        """The release day in force at ``now`` (UTC): the calendar day in the market's zone."""
        return now.astimezone(self.zone).date()

    async def scan(self, now: dt.datetime | None = None) -> list[ProbeOutcome]:
        """One scan at ``now`` (default: the clock): seed today's release groups, then make every probe due.

        Nothing is taken while a Spotify cooldown is in force (the slots stay due; a slot of a day that
        ended is never taken) or while a run of this process is in progress (the next scan takes it).
        The slots taken stay held until their probe is finished, however long it waits for a run of
        this process that started meanwhile (:class:`_HeldSlots`); a slot found lost (another process
        took it again after its hold ran out) is not probed. Returns the probes made, in order.
        """
        now = now or self.clock()
        day = self.today(now)
        first = probe_times(day, self.zone, self.probe_hours)[0]
        async with self.db.transaction() as session:
            await release_day.seed_probes(session, day=day, first_probe_at=first)
        if self.runner.running or await self.cooldowns.active_cooldown() is not None:
            return []
        hold = now + dt.timedelta(seconds=self.hold_seconds)

        async def claim(session: Session) -> list[ProbeSlot]:
            return await release_day.claim_due_probes(
                session, day=day, now=now, max_probes=self.max_probes, hold_until=hold, limit=self.batch
            )

        slots = await self.db.retrying(claim)
        if not slots:
            return []
        held = _HeldSlots(slots)
        keeper = asyncio.create_task(self._keep_held(held), name="release-bot-release-day-holds")
        outcomes = []
        try:
            for slot in slots:
                if held.holds(slot):
                    outcomes.append(await self._probe(slot, held))
        finally:
            held.stop.set()
            await keeper
        return outcomes

    async def _keep_held(self, held: _HeldSlots) -> None:
        """Renew the holds of ``held`` every ``renew_seconds`` until the scan sets ``held.stop``; a slot not
        renewed (taken again by another process after its hold ran out) is dropped from ``held``. A
        store failure is logged and tried again at the next renewal."""
        while True:
            try:
                await asyncio.wait_for(held.stop.wait(), self.renew_seconds)
                return
            except TimeoutError:
                pass
            async with held.lock:
                if not held.slots:
                    continue
                try:
                    await self._renew(held)
                except Exception:
                    log.warning("could not renew the holds of %d release-day probes", len(held.slots), exc_info=True)

    async def _renew(self, held: _HeldSlots) -> None:
        """Renew the holds of ``held`` until now + ``hold_seconds`` (under ``held.lock``); drop the slots taken
        over. Raises what the store raises."""
        until = self.clock() + dt.timedelta(seconds=self.hold_seconds)
        pending = list(held.slots.values())

        async def renew(session: Session) -> set[tuple[str, dt.date]]:
            return await release_day.extend_holds(session, pending, hold_until=until)

        renewed = await self.db.retrying(renew)
        for key in set(held.slots) - renewed:
            log.warning("release-day probe of %s on %s was taken over by another process", *key)
            del held.slots[key]

    async def _probe(self, slot: ProbeSlot, held: _HeldSlots) -> ProbeOutcome:
        """Make the probe of ``slot``: check the artists, recognise the release, post it; record the probe."""
        outcome = ProbeOutcome(slot.mbid, slot.release_day, slot.probe)
        async with self.db.transaction() as session:
            target = (await release_day.probe_targets(session, [slot.mbid])).get(slot.mbid)
        if target is None or not target.artist_ids:  # gone from the store, or no release_day guild follows it now
            await self._finish(outcome, held)
            return outcome
        # A run that raises (the store failing) leaves the slot held: it comes back when the hold ends.
        summary = await self.runner.run("release_day", artist_ids=list(target.artist_ids))
        outcome.run_id = summary.run_id
        outcome.requests = summary.spotify_requests
        match = await self._recognise(target)
        if match is not None:
            outcome.found, outcome.method = match.release_id, match.method
        after = self.clock()
        if summary.cooldown_until is not None:
            after = max(after, summary.cooldown_until)
        if outcome.found is None:
            outcome.next_probe_at = next_probe_at(
                slot.release_day,
                self.zone,
                self.probe_hours,
                after=after,
                probes_made=slot.probe,
                max_probes=self.max_probes,
            )
        await self._finish(outcome, held)
        if outcome.found is not None:
            outcome.posted = await self._post(target, outcome.found, summary.run_id)
        log.info(
            "release-day probe %d of %s (%s): %s, %d Spotify requests",
            slot.probe,
            slot.mbid,
            target.title,
            f"found {outcome.found}" if outcome.found else "not listed yet",
            outcome.requests,
        )
        return outcome

    async def _recognise(self, target: ProbeTarget) -> Match | None:
        """The Spotify release of ``target`` among its artists' stored releases not matched to another
        release group (the second signal's rule: barcode, else title and date), or None."""
        async with self.db.transaction() as session:
            linked = await catalog.linked_releases(session, target.artist_ids)
            taken = await musicdata.matched_release_ids(session)
        candidates = {r.id: r for releases in linked.values() for r in releases if r.id not in taken}
        match = pick_match(
            title=target.title,
            release_date=target.release_date,
            primary_type=target.primary_type,
            barcodes=target.barcodes,
            candidates=list(candidates.values()),
        )
        return match

    async def _finish(self, outcome: ProbeOutcome, held: _HeldSlots) -> None:
        """Write the probe's result on its row (and a match on the release group, as the daily job would);
        its hold is no longer renewed (under ``held.lock``: a renewal never follows the result)."""
        now = self.clock()

        async def work(session: Session) -> None:
            await release_day.finish_probe(
                session,
                outcome.mbid,
                outcome.release_day,
                requests=outcome.requests,
                next_probe_at=outcome.next_probe_at,
                found_release_id=outcome.found,
                found_at=now,
            )
            if outcome.found is not None:
                await musicdata.record_match(session, outcome.mbid, outcome.found, outcome.method, now=now)

        async with held.lock:
            held.slots.pop((outcome.mbid, outcome.release_day), None)
            await self.db.retrying(work)

    async def _post(self, target: ProbeTarget, release_id: str, run_id: int) -> dict[int, int]:
        """Deliver ``release_id`` now to each ``release_day`` guild following the group's artists (a guild's
        failure never stops the others); returns guild id → announcements posted."""
        posted: dict[int, int] = {}
        for gid in target.guild_ids:
            try:
                result = await self.deliverer.deliver(gid, run_id=run_id, release_ids={release_id})
            except Exception:  # one guild never stops the others; the weekly run posts what is left
                log.exception("release-day delivery of %s to guild %s failed", release_id, gid)
                continue
            posted[gid] = result.posted
        return posted


class _HeldSlots:
    """The slots one scan took and has not finished probing (``slots``: ``(mbid, release_day)`` → slot),
    whose holds :meth:`ReleaseDayProber._keep_held` renews; ``lock`` orders a renewal and a probe's
    result (a slot's result is written after its last renewal); ``stop``: set when the scan ends."""

    def __init__(self, slots: Sequence[ProbeSlot]) -> None:
        self.slots = {(s.mbid, s.release_day): s for s in slots}
        self.lock = asyncio.Lock()
        self.stop = asyncio.Event()

    def holds(self, slot: ProbeSlot) -> bool:
        """Whether ``slot`` is still this scan's (not finished, not taken over)."""
        return (slot.mbid, slot.release_day) in self.slots
