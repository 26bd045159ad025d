"""Releases that are not really new (issue 3 §2): labels for the new releases of a run.

:class:`Labeler` looks at the releases a run found and stores, per release, a list
of labels in ``releases.labels`` (dicts with a ``kind``) that delivery renders:

* ``{"kind": "edition_of", "release_id", "name", "edition", "bonus_tracks"}`` — a
  deluxe / anniversary / expanded / remastered / "… Edition" re-release whose base
  title matches a known release of the same artists.
* ``{"kind": "remix_of", "release_id", "name"}`` — a remix single ("(X Remix)",
  "(Remixes)", "[Remix]", "- Remix", "Remixed") of a known release.
* ``{"kind": "carries_singles", "new_tracks": N, "known_tracks": M}`` — an album
  whose tracks include M tracks already out on singles of the same artists.
* ``{"kind": "back_catalogue"}`` — first seen more than ``back_catalogue_days``
  after its release date (at the date's precision: "2011" counts from 31 Dec 2011).

Request rule: **at most one** ``GET /albums/{id}`` per new release, and none where the
title or the dates decide. Clean/explicit twins are folded at delivery
(:mod:`bot.delivery.planner`) and cost nothing here; the clean edition is never fetched.

==========================  =============================================
release                     request
==========================  =============================================
clean twin (of a batch or    none
known release)
back-catalogue addition     none
remix single                none
edition of a known release  1 (its tracks, to count the bonus tracks)
album (not the above)       1 (its tracks, to find tracks out as singles)
single (not the above)      1 (its tracks, kept for later albums)
compilation                 none
==========================  =============================================

Track comparison: two tracks are the same recording when their ISRCs are equal
(where both are stored) or their normalised titles are equal and their durations
differ by at most 2 s. A single known only from the silent baseline has no stored
tracks; a one-track one is compared by its title alone.

Failures never raise out of :meth:`Labeler.label`: a failed fetch leaves that
release without the labels the fetch was for (title/date labels still apply) and it
is announced as usual; a Spotify cooldown stops the remaining fetches (and is
persisted like the tracker does); anything else is logged.
"""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypedDict

from bot.clock import Clock, utcnow
from bot.spotify.errors import SpotifyCooldown
from bot.spotify.models import Album
from bot.tracking.editions import are_twins, edition_marker
from storage import catalog, spotify_state
from storage.db import Database
from storage.models import Release

log = logging.getLogger(__name__)

DURATION_TOLERANCE_MS = 2000


# --- labels (the ``releases.labels`` JSON; shapes in the module docstring) ------------------


class EditionOf(TypedDict):
    """A re-release of the known release ``release_id`` (``name``); ``bonus_tracks`` None when unknown."""

    kind: Literal["edition_of"]
    release_id: str
    name: str
    edition: str
    bonus_tracks: int | None


class RemixOf(TypedDict):
    """A remix release of the known release ``release_id`` (``name``)."""

    kind: Literal["remix_of"]
    release_id: str
    name: str


class CarriesSingles(TypedDict):
    """An album with ``known_tracks`` tracks already out on singles and ``new_tracks`` others."""

    kind: Literal["carries_singles"]
    new_tracks: int
    known_tracks: int


class BackCatalogue(TypedDict):
    """First seen long after its release date."""

    kind: Literal["back_catalogue"]


Label = EditionOf | RemixOf | CarriesSingles | BackCatalogue
"""One entry of ``releases.labels``."""

# --- titles -------------------------------------------------------------------------------

_QUOTES = str.maketrans({"’": "'", "‘": "'", "`": "'", "“": '"', "”": '"', "–": "-", "—": "-"})
# "(feat. X)", "[with X]", "(ft X)", "(featuring X)" anywhere; a trailing " feat. X" / " - feat. X".
_FEAT_GROUP_RE = re.compile(r"\s*[(\[]\s*(?:feat\.?|ft\.?|featuring|with)\s[^)\]]*[)\]]", re.IGNORECASE)
_FEAT_TAIL_RE = re.compile(r"\s+(?:-\s+)?(?:feat\.?|ft\.|featuring)\s.*$", re.IGNORECASE)

_REMIX_WORD = r"(?:remix(?:es|ed)?|rmx)"
_REMIX_RES = (
    re.compile(r"^(?P<base>.+?)\s*[(\[](?P<tag>[^()\[\]]*\b" + _REMIX_WORD + r"\b[^()\[\]]*)[)\]]\s*$", re.IGNORECASE),
    re.compile(r"^(?P<base>.+?)\s+-\s+(?P<tag>[^-]*\b" + _REMIX_WORD + r"\b.*)$", re.IGNORECASE),
    re.compile(r"^(?P<base>.+?)\s+(?P<tag>(?:the\s+)?(?:remixes|remixed))\s*$", re.IGNORECASE),
)
_EDITION_WORD = r"(?:deluxe|anniversary|expanded|remaster(?:ed)?|edition)"
_EDITION_RES = (
    re.compile(
        r"^(?P<base>.+?)\s*[(\[](?P<tag>[^()\[\]]*\b" + _EDITION_WORD + r"\b[^()\[\]]*)[)\]]\s*$", re.IGNORECASE
    ),
    re.compile(r"^(?P<base>.+?)\s+-\s+(?P<tag>[^-]*\b" + _EDITION_WORD + r"\b.*)$", re.IGNORECASE),
)
_SUBTITLE_RE = re.compile(r"^(?P<head>.+?)\s*(?::|\s-\s)\s*.+$")


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "").translate(_QUOTES)
    return re.sub(r"\s+", " ", text).strip()


def _strip_feat(text: str) -> str:
    return _FEAT_TAIL_RE.sub("", _FEAT_GROUP_RE.sub("", text)).strip()


def normalise_title(name: str) -> str:
    """Comparable form of a release or track title.

    NFKC, casefolded, typographic quotes/dashes made plain, "(feat. X)" / "(with X)" /
    trailing "feat. X" removed, a clean/explicit marker removed, spaces collapsed.
    ``"Now or Never (feat. X) - Clean"`` → ``"now or never"``.
    """
    text = _strip_feat(_clean(name))
    text = edition_marker(text)[0]
    text = _strip_feat(text)
    return re.sub(r"\s+", " ", text).strip(" .-").casefold()


def remix_base(name: str) -> str | None:
    """The title a remix release remixes, or None when ``name`` is not a remix title.

    ``"Now Or Never (TropKillaz Remix)"`` → ``"Now Or Never"``; ``"Damn I Love Miami
    (Remixes)"``, ``"Song [Remix]"``, ``"Song - X Remix"``, ``"Trackhouse Remixed"``.
    """
    text = edition_marker(_strip_feat(_clean(name)))[0]
    for regex in _REMIX_RES:
        match = regex.match(text)
        if match and match.group("base").strip(" -"):
            return match.group("base").strip(" -")
    return None


def edition_base(name: str) -> tuple[str, str] | None:
    """``(base title, edition)`` of a re-release title, or None.

    ``edition`` is ``deluxe`` | ``anniversary`` | ``expanded`` | ``remaster`` | ``special``
    (any other "… Edition"). ``"Planet Pit (Deluxe Version)"`` → ``("Planet Pit",
    "deluxe")``; ``"X (10th Anniversary Edition)"`` → anniversary; ``"X (Remastered
    2024)"`` / ``"X - 2011 Remaster"`` → remaster. Clean/explicit markers are not editions.
    """
    text = edition_marker(_strip_feat(_clean(name)))[0]
    for regex in _EDITION_RES:
        match = regex.match(text)
        if not match or not match.group("base").strip(" -"):
            continue
        tag = match.group("tag").casefold()
        if re.search(r"\b(?:clean|explicit)\b", tag) or re.search(r"\b" + _REMIX_WORD + r"\b", tag):
            continue
        if "deluxe" in tag:
            edition = "deluxe"
        elif "anniversary" in tag:
            edition = "anniversary"
        elif "expanded" in tag:
            edition = "expanded"
        elif "remaster" in tag:
            edition = "remaster"
        else:
            edition = "special"
        return match.group("base").strip(" -"), edition
    return None


def release_period_end(date: str, precision: str | None) -> dt.date | None:
    """Last day a Spotify release date can mean: ``"2011"`` → 2011-12-31, ``"2011-06"`` → 2011-06-30."""
    try:
        if precision == "year" or len(date or "") == 4:
            return dt.date(int(date[:4]), 12, 31)
        if precision == "month" or len(date or "") == 7:
            year, month = int(date[:4]), int(date[5:7])
            return dt.date(year, month, calendar.monthrange(year, month)[1])
        return dt.date.fromisoformat(date[:10])
    except (TypeError, ValueError):
        return None


def is_back_catalogue(release: Release, days: int) -> bool:
    """First seen more than ``days`` days after the last day its release date can mean."""
    end = release_period_end(release.release_date or "", release.release_date_precision)
    if end is None or release.first_seen_at is None:
        return False
    return (release.first_seen_at.date() - end).days > days


# --- tracks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Track:
    name: str  # normalised
    duration_ms: int | None
    isrc: str | None


def _same_track(a: _Track, b: _Track) -> bool:
    if a.isrc and b.isrc and a.isrc == b.isrc:
        return True
    if a.name != b.name:
        return False
    if a.duration_ms is None or b.duration_ms is None:
        return True  # a title-only stand-in (a one-track single known from the baseline)
    return abs(a.duration_ms - b.duration_ms) <= DURATION_TOLERANCE_MS


def count_matches(tracks: Sequence[_Track], known: Sequence[_Track]) -> int:
    """How many of ``tracks`` match a track of ``known`` (each known track used once)."""
    pool = list(known)
    hits = 0
    for track in tracks:
        for i, other in enumerate(pool):
            if _same_track(track, other):
                hits += 1
                del pool[i]
                break
    return hits


# --- the labeler --------------------------------------------------------------------------


@dataclass
class LabelResult:
    """Outcome of :meth:`Labeler.label`.

    ``requests``: Spotify API requests made (client ``request_count`` delta, retries
    included); ``album_requests``: ``GET /albums/{id}`` calls made (≤ one per release);
    ``labelled``: releases that got at least one label; ``failed``: release id →
    reason for the fetches that failed; ``cooldown``: the cooldown that stopped fetching.
    """

    requests: int = 0
    labelled: int = 0
    album_requests: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    cooldown: SpotifyCooldown | None = None


@dataclass
class _Plan:
    """What labelling one new release takes: the labels the title and dates decide, and the fetch
    its tracks are needed for (``"edition"`` | ``"album"`` | ``"single"``, None = no request)."""

    release: Release
    labels: list[Label] = field(default_factory=list)
    fetch: str | None = None
    original: Release | None = None  # for an edition
    edition: str = "special"


class AlbumSource(Protocol):
    """What the labeler needs of the Spotify client (:class:`bot.spotify.client.SpotifyClient`)."""

    @property
    def request_count(self) -> int:
        """API requests sent so far (retries included)."""
        ...

    async def get_album(self, album_id: str) -> Album:
        """Get Album (``GET /albums/{id}``): the full album with its tracks and ``upc``."""
        ...


@dataclass
class _Catalogue:
    """The store's view of a run's new releases: ``new`` (release id → Release), ``links`` (release id →
    the artists it is linked to), ``by_artist`` (artist id → every release linked to it) and ``known``
    (those artists' other releases, release id → Release)."""

    new: dict[str, Release]
    links: dict[str, set[str]]
    by_artist: dict[str, set[str]]
    known: dict[str, Release]

    def pool_ids(self, release_id: str) -> set[str]:
        """Ids of every release linked to an artist of ``release_id`` (``release_id`` included)."""
        return {x for a in self.links.get(release_id, ()) for x in self.by_artist.get(a, ())}


class Labeler:
    """Labels new releases (see the module docstring) in ``releases.labels`` and stores fetched tracks.

    ``db``: :class:`storage.db.Database`; ``spotify``: the Spotify client (:class:`AlbumSource`:
    ``get_album(id)`` returning an ``Album`` with ``tracks`` and ``upc``, and ``request_count``);
    ``clock``: aware UTC now; ``back_catalogue_days``: how long after its release date a first
    sighting counts as a back-catalogue addition; ``concurrency``: album fetches at once.
    """

    def __init__(
        self,
        db: Database,
        spotify: AlbumSource,
        *,
        clock: Clock = utcnow,
        back_catalogue_days: int = 90,
        concurrency: int = 8,
    ) -> None:
        self.db = db
        self.spotify = spotify
        self.clock = clock
        self.back_catalogue_days = back_catalogue_days
        self.concurrency = max(1, concurrency)

    async def label(self, release_ids: Iterable[str], *, run_id: int | None = None) -> LabelResult:
        """Label ``release_ids`` (a run's new releases); never raises for a release's (or the store's) failure."""
        result = LabelResult()
        before = self.spotify.request_count
        ids = list(dict.fromkeys(release_ids))
        if not ids:
            return result
        try:
            await self._label(ids, result)
        except Exception:  # labels are an extra: never let them stop delivery
            log.exception("run %s: labelling %d releases failed", run_id, len(ids))
        result.requests = self.spotify.request_count - before
        if result.album_requests or result.labelled:
            log.info(
                "run %s: %d of %d new releases labelled, %d album requests",
                run_id,
                result.labelled,
                len(ids),
                result.album_requests,
            )
        return result

    async def _label(self, ids: list[str], result: LabelResult) -> None:
        """Label the releases ``ids`` (deduplicated), counting requests and failures in ``result``.

        Phases: read the releases and their artists' other releases (:meth:`_load`), plan each
        release from its title and dates (:meth:`_plan`), read the stored tracks the comparisons
        need (:func:`_tracks_wanted`), fetch the albums whose tracks are not stored
        (:meth:`_fetch_all`), label from the tracks (:meth:`_label_from_tracks`), store
        (:meth:`_store`). Raises what the store raises.
        """
        cat = await self._load(ids)
        if not cat.new:
            return
        everything = {**cat.known, **cat.new}
        plans: dict[str, _Plan] = {}
        for rid in ids:
            release = cat.new.get(rid)
            if release is None:
                continue
            pool = [everything[x] for x in sorted(cat.pool_ids(rid) - {rid}) if x in everything]
            plans[rid] = self._plan(release, pool)
        singles_of, want_tracks = _tracks_wanted(plans, cat)
        # A release whose tracks are stored already (labelled before) is compared from the store: no request.
        cached = {rid for rid, p in plans.items() if p.fetch and p.release.tracks_fetched}
        async with self.db.transaction() as session:
            rows = await catalog.release_tracks(session, sorted(want_tracks | cached))
        stored = {rid: [_Track(normalise_title(t.name), t.duration_ms, t.isrc) for t in ts] for rid, ts in rows.items()}
        fetched = await self._fetch_all([rid for rid, p in plans.items() if p.fetch and rid not in cached], result)
        for rid, plan in plans.items():
            self._label_from_tracks(plan, fetched.get(rid), rid in cached, singles_of.get(rid, ()), stored)
        await self._store(plans, fetched)
        result.labelled = sum(1 for p in plans.values() if p.labels)

    async def _load(self, ids: list[str]) -> _Catalogue:
        """Read the releases ``ids``, the artists linked to them, and those artists' other releases."""
        async with self.db.transaction() as session:
            new = await catalog.releases_by_id(session, ids)
            if not new:
                return _Catalogue(new, {}, {}, {})
            links = await catalog.artist_ids_of_releases(session, list(new))
            artist_ids = sorted({a for rids in links.values() for a in rids})
            by_artist = await catalog.release_ids_of_artists(session, artist_ids)
            known_ids = {rid for rids in by_artist.values() for rid in rids} - set(new)
            known = await catalog.releases_by_id(session, list(known_ids))
        return _Catalogue(new, links, by_artist, known)

    def _plan(self, release: Release, pool: list[Release]) -> _Plan:
        """Labels ``release`` gets from its title and dates against ``pool`` (its artists' other releases),
        and which fetch (if any) its remaining labels need (see the module docstring's table)."""
        plan = _Plan(release)
        back = is_back_catalogue(release, self.back_catalogue_days)
        if back:
            plan.labels.append({"kind": "back_catalogue"})
        if edition_marker(release.name or "")[1] == "clean" and any(are_twins(release, o) for o in pool):
            return plan  # folded into its explicit twin at delivery: no request
        remix = remix_base(release.name or "")
        if remix is not None:
            original = _best_original(release, remix, pool, subtitle=False)
            if original is not None:
                plan.labels.append({"kind": "remix_of", "release_id": original.id, "name": original.name})
            return plan  # the title decides: no request
        edition = edition_base(release.name or "")
        if edition is not None:
            original = _best_original(release, edition[0], pool, subtitle=True)
            if original is not None:
                plan.original, plan.edition = original, edition[1]
                if back:
                    plan.labels.append(self._edition_label(plan, None, {}))
                else:
                    plan.fetch = "edition"
                return plan
        if back:
            return plan
        if release.album_type == "album":
            plan.fetch = "album"
        elif release.album_type == "single":
            plan.fetch = "single"
        return plan

    def _label_from_tracks(
        self,
        plan: _Plan,
        album: Album | None,
        cached: bool,
        singles: Sequence[Release],
        stored: dict[str, list[_Track]],
    ) -> None:
        """Add the labels that need tracks to ``plan``: from the fetched ``album``, else from the stored
        tracks (``cached``); an edition whose fetch failed is labelled from the track counts alone."""
        if album is not None:
            tracks = [_Track(normalise_title(t.name), t.duration_ms, t.isrc) for t in album.tracks]
            total = max(album.total_tracks or 0, len(tracks))
        elif cached:
            tracks = stored.get(plan.release.id, [])
            total = max(plan.release.total_tracks or 0, len(tracks))
        else:
            if plan.fetch == "edition":  # the title decided: labelled without a bonus count from tracks
                plan.labels.append(self._edition_label(plan, None, stored))
            return
        if plan.fetch == "edition":
            plan.labels.append(self._edition_label(plan, tracks, stored))
        elif plan.fetch == "album":
            label = _carries_singles(total, tracks, singles, stored)
            if label is not None:
                plan.labels.append(label)

    async def _store(self, plans: dict[str, _Plan], fetched: dict[str, Album]) -> None:
        """Store every planned release's labels, and the tracks (and ``upc``) of the albums fetched, in one transaction."""
        async with self.db.transaction() as session:
            for rid, plan in plans.items():
                album = fetched.get(rid)
                if album is None:
                    await catalog.store_labels(session, rid, plan.labels)
                    continue
                tracks = [catalog.TrackRow(t.id or None, t.name, int(t.duration_ms or 0), t.isrc) for t in album.tracks]
                await catalog.store_labels(session, rid, plan.labels, tracks=tracks, upc=album.upc or plan.release.upc)

    def _edition_label(self, plan: _Plan, tracks: list[_Track] | None, stored: dict[str, list[_Track]]) -> EditionOf:
        """The ``edition_of`` label of an edition plan: bonus tracks counted from the tracks when both
        editions' are known, else from the track totals (None when neither tells)."""
        original = plan.original
        assert original is not None
        bonus: int | None = None
        original_tracks = stored.get(original.id)
        if tracks is not None and original_tracks:
            bonus = len(tracks) - count_matches(tracks, original_tracks)
        else:
            total, base_total = plan.release.total_tracks, original.total_tracks
            if total is not None and base_total is not None and total >= base_total:
                bonus = total - base_total
        return {
            "kind": "edition_of",
            "release_id": original.id,
            "name": original.name,
            "edition": plan.edition,
            "bonus_tracks": bonus,
        }

    async def _fetch_all(self, ids: list[str], result: LabelResult) -> dict[str, Album]:
        """``GET /albums/{id}`` for each of ``ids`` (``concurrency`` at once): ``{release id: Album}`` of those
        that answered. A failure is recorded in ``result.failed``; a Spotify cooldown stops the
        fetches not started yet and is persisted in ``spotify_state``."""
        fetched: dict[str, Album] = {}
        semaphore = asyncio.Semaphore(self.concurrency)
        await asyncio.gather(*(self._fetch(rid, semaphore, fetched, result) for rid in ids))
        if result.cooldown is not None:
            try:
                async with self.db.transaction() as session:
                    await spotify_state.set_cooldown(session, result.cooldown.until, result.cooldown.reason)
            except Exception:  # the store failing; the client still holds the cooldown
                log.exception("could not persist the Spotify cooldown")
        return fetched

    async def _fetch(
        self, rid: str, semaphore: asyncio.Semaphore, fetched: dict[str, Album], result: LabelResult
    ) -> None:
        """Fetch album ``rid`` into ``fetched`` unless a cooldown (``result.cooldown``) stopped fetching."""
        async with semaphore:
            if result.cooldown is not None:
                return
            result.album_requests += 1
            try:
                fetched[rid] = await self.spotify.get_album(rid)
            except SpotifyCooldown as exc:
                result.cooldown = _later(result.cooldown, exc)  # another fetch may have set one meanwhile
                result.failed[rid] = str(exc)[:300]
            except Exception as exc:  # one release never stops the others
                log.warning("album %s: track fetch failed: %s", rid, exc)
                result.failed[rid] = f"{type(exc).__name__}: {exc}"[:300]


def _later(current: SpotifyCooldown | None, cooldown: SpotifyCooldown) -> SpotifyCooldown:
    """The cooldown that ends later of ``current`` (None: none yet) and ``cooldown`` (``current`` on a tie)."""
    return cooldown if current is None or cooldown.until > current.until else current


def _tracks_wanted(plans: dict[str, _Plan], cat: _Catalogue) -> tuple[dict[str, list[Release]], set[str]]:
    """Tracks the comparisons need: ``({album release id: its artists' known singles}, {release ids whose
    stored tracks are read})`` — the known singles of the new albums' artists, and the editions' originals."""
    singles_of: dict[str, list[Release]] = {}
    want_tracks: set[str] = set()
    for rid, plan in plans.items():
        if plan.fetch == "album":
            singles = [
                cat.known[x]
                for x in sorted(cat.pool_ids(rid))
                if x in cat.known and cat.known[x].album_type == "single"
            ]
            singles_of[rid] = singles
            want_tracks.update(s.id for s in singles if s.tracks_fetched)
        elif plan.fetch == "edition" and plan.original is not None and plan.original.tracks_fetched:
            want_tracks.add(plan.original.id)
    return singles_of, want_tracks


def _artist_set(release: Release) -> frozenset[str]:
    """The artist ids of ``release``."""
    return frozenset(artist_id for a in release.artists if (artist_id := a.get("id")))


def _date_key(release: Release) -> str:
    end = release_period_end(release.release_date or "", release.release_date_precision)
    return end.isoformat() if end else "9999"


def _best_original(release: Release, base: str, pool: Sequence[Release], *, subtitle: bool) -> Release | None:
    """The known release ``release`` re-issues or remixes: same normalised title as ``base``, same artists.

    "Same artists": one artist set contains the other (a remix adds its remixer). With
    ``subtitle`` a base "Global Warming: Meltdown" also matches "Global Warming". Of
    several, the one of the same type, without a clean marker, released first.
    """
    targets = [normalise_title(base)]
    if subtitle:
        match = _SUBTITLE_RE.match(base)
        if match:
            targets.append(normalise_title(match.group("head")))
    mine = _artist_set(release)
    for target in targets:
        candidates = []
        for other in pool:
            if other.id == release.id or normalise_title(other.name) != target:
                continue
            theirs = _artist_set(other)
            if not theirs or not (theirs <= mine or mine <= theirs):
                continue
            if remix_base(other.name or "") is not None or edition_base(other.name or "") is not None:
                continue
            candidates.append(other)
        if candidates:
            return min(
                candidates,
                key=lambda o: (
                    o.album_type != release.album_type,
                    edition_marker(o.name)[1] == "clean",
                    _date_key(o),
                    o.id,
                ),
            )
    return None


def _carries_singles(
    total: int, tracks: list[_Track], singles: Iterable[Release], stored: dict[str, list[_Track]]
) -> CarriesSingles | None:
    """The ``carries_singles`` label of an album of ``total`` tracks (``tracks`` as fetched) whose artists'
    ``singles`` are known, or None when none of its tracks is out on one of them."""
    known: list[_Track] = []
    for single in singles:
        if remix_base(single.name or "") is not None:
            continue
        if single.id in stored:
            known.extend(stored[single.id])
        elif not single.tracks_fetched and (single.total_tracks or 1) == 1:
            known.append(_Track(normalise_title(single.name), None, None))
    if not known:
        return None
    hits = count_matches(tracks, known)
    if not hits:
        return None
    return {"kind": "carries_singles", "new_tracks": total - hits, "known_tracks": hits}
