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
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update

from bot.clock import utcnow
from bot.spotify.errors import SpotifyCooldown
from bot.tracking.editions import are_twins, edition_marker
from storage import spotify_state
from storage.db import Database
from storage.models import ArtistRelease, Release, ReleaseTrack

log = logging.getLogger(__name__)

DURATION_TOLERANCE_MS = 2000
CHUNK = 500

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
    release: Release
    labels: list[dict[str, Any]] = field(default_factory=list)
    fetch: str | None = None  # "edition" | "album" | "single"
    original: Release | None = None  # for an edition
    edition: str = "special"


class Labeler:
    """Labels new releases (see the module docstring) in ``releases.labels`` and stores fetched tracks.

    ``db``: :class:`storage.db.Database`; ``spotify``: anything with ``get_album(id)``
    (returning ``Album`` with ``tracks`` and ``upc``) and ``request_count``; ``clock``:
    aware UTC now; ``back_catalogue_days``: how long after its release date a first
    sighting counts as a back-catalogue addition; ``concurrency``: album fetches at once.
    """

    def __init__(
        self,
        db: Database,
        spotify: Any,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
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
        before = getattr(self.spotify, "request_count", 0)
        ids = list(dict.fromkeys(release_ids))
        if not ids:
            return result
        try:
            await self._label(ids, result)
        except Exception:  # labels are an extra: never let them stop delivery
            log.exception("run %s: labelling %d releases failed", run_id, len(ids))
        result.requests = getattr(self.spotify, "request_count", 0) - before
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
        async with self.db.sessions() as session:
            new = await _releases(session, ids)
            if not new:
                return
            links = await _links_of(session, list(new))
            artist_ids = sorted({a for rids in links.values() for a in rids})
            by_artist = await _release_ids_of_artists(session, artist_ids)
            known_ids = {rid for rids in by_artist.values() for rid in rids} - set(new)
            known = await _releases(session, list(known_ids))
        everything = {**known, **new}

        plans: dict[str, _Plan] = {}
        for rid in ids:
            release = new.get(rid)
            if release is None:
                continue
            pool_ids = {x for a in links.get(rid, ()) for x in by_artist.get(a, ())} - {rid}
            pool = [everything[x] for x in sorted(pool_ids) if x in everything]
            plans[rid] = self._plan(release, pool)

        # Tracks needed for comparisons: known singles of the new albums' artists, and the editions' originals.
        singles_of: dict[str, list[Release]] = {}
        want_tracks: set[str] = set()
        for rid, plan in plans.items():
            if plan.fetch == "album":
                pool_ids = {x for a in links.get(rid, ()) for x in by_artist.get(a, ())}
                singles = [known[x] for x in sorted(pool_ids) if x in known and known[x].album_type == "single"]
                singles_of[rid] = singles
                want_tracks.update(s.id for s in singles if s.tracks_fetched)
            elif plan.fetch == "edition" and plan.original is not None and plan.original.tracks_fetched:
                want_tracks.add(plan.original.id)
        # A release whose tracks are stored already (labelled before) is compared from the store: no request.
        cached = {rid for rid, p in plans.items() if p.fetch and p.release.tracks_fetched}
        async with self.db.sessions() as session:
            stored = await _tracks_of(session, sorted(want_tracks | cached))

        fetched = await self._fetch_all([rid for rid, p in plans.items() if p.fetch and rid not in cached], result)

        for rid, plan in plans.items():
            album = fetched.get(rid)
            if album is not None:
                tracks = [_Track(normalise_title(t.name), t.duration_ms, t.isrc) for t in album.tracks]
                total = max(album.total_tracks or 0, len(tracks))
            elif rid in cached:
                tracks = stored.get(rid, [])
                total = max(plan.release.total_tracks or 0, len(tracks))
            else:
                if plan.fetch == "edition":  # the title decided: labelled without a bonus count from tracks
                    plan.labels.append(self._edition_label(plan, None, stored))
                continue
            if plan.fetch == "edition":
                plan.labels.append(self._edition_label(plan, tracks, stored))
            elif plan.fetch == "album":
                label = _carries_singles(total, tracks, singles_of.get(rid, ()), stored)
                if label is not None:
                    plan.labels.append(label)

        async with self.db.sessions() as session:
            for rid, plan in plans.items():
                values: dict[str, Any] = {"labels": plan.labels}
                album = fetched.get(rid)
                if album is not None:
                    values.update(tracks_fetched=True, upc=album.upc or plan.release.upc)
                    await session.execute(delete(ReleaseTrack).where(ReleaseTrack.release_id == rid))
                    session.add_all(
                        ReleaseTrack(
                            release_id=rid,
                            position=i,
                            track_id=t.id or None,
                            name=t.name,
                            duration_ms=int(t.duration_ms or 0),
                            isrc=t.isrc,
                        )
                        for i, t in enumerate(album.tracks)
                    )
                await session.execute(update(Release).where(Release.id == rid).values(**values))
            await session.commit()
        result.labelled = sum(1 for p in plans.values() if p.labels)

    def _plan(self, release: Release, pool: list[Release]) -> _Plan:
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

    def _edition_label(
        self, plan: _Plan, tracks: list[_Track] | None, stored: dict[str, list[_Track]]
    ) -> dict[str, Any]:
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

    async def _fetch_all(self, ids: list[str], result: LabelResult) -> dict[str, Any]:
        fetched: dict[str, Any] = {}
        semaphore = asyncio.Semaphore(self.concurrency)
        stop = False

        async def fetch(rid: str) -> None:
            nonlocal stop
            async with semaphore:
                if stop:
                    return
                result.album_requests += 1
                try:
                    fetched[rid] = await self.spotify.get_album(rid)
                except SpotifyCooldown as exc:
                    stop = True
                    if result.cooldown is None or exc.until > result.cooldown.until:
                        result.cooldown = exc
                    result.failed[rid] = str(exc)[:300]
                except Exception as exc:  # one release never stops the others
                    log.warning("album %s: track fetch failed: %s", rid, exc)
                    result.failed[rid] = f"{type(exc).__name__}: {exc}"[:300]

        await asyncio.gather(*(fetch(rid) for rid in ids))
        if result.cooldown is not None:
            try:
                async with self.db.sessions() as session:
                    await spotify_state.set_cooldown(session, result.cooldown.until, result.cooldown.reason)
                    await session.commit()
            except Exception:  # pragma: no cover - the store failing; the client still holds the cooldown
                log.exception("could not persist the Spotify cooldown")
        return fetched


def _artist_set(release: Release) -> frozenset[str]:
    return frozenset(a.get("id") for a in release.artists or () if a.get("id"))


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
) -> dict[str, Any] | None:
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


# --- store reads (kept here, not in storage.queries) ----------------------------------------


def _chunks(items: Sequence[Any], size: int = CHUNK):
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def _releases(session, ids: Sequence[str]) -> dict[str, Release]:
    out: dict[str, Release] = {}
    for chunk in _chunks(list(ids)):
        for release in (await session.scalars(select(Release).where(Release.id.in_(chunk)))).all():
            out[release.id] = release
    return out


async def _grouped_links(session, key, value, keys: Sequence[str]) -> dict[str, set[str]]:
    """``artist_releases`` grouped: each of ``keys`` (values of column ``key``) → its set of ``value``."""
    out: dict[str, set[str]] = defaultdict(set)
    for chunk in _chunks(list(keys)):
        for k, v in await session.execute(select(key, value).where(key.in_(chunk))):
            out[k].add(v)
    return out


async def _links_of(session, release_ids: Sequence[str]) -> dict[str, set[str]]:
    """release id → artist ids it is linked to."""
    return await _grouped_links(session, ArtistRelease.release_id, ArtistRelease.artist_id, release_ids)


async def _release_ids_of_artists(session, artist_ids: Sequence[str]) -> dict[str, set[str]]:
    """artist id → ids of every release linked to it."""
    return await _grouped_links(session, ArtistRelease.artist_id, ArtistRelease.release_id, artist_ids)


async def _tracks_of(session, release_ids: Sequence[str]) -> dict[str, list[_Track]]:
    out: dict[str, list[_Track]] = defaultdict(list)
    for chunk in _chunks(list(release_ids)):
        rows = await session.execute(
            select(ReleaseTrack.release_id, ReleaseTrack.name, ReleaseTrack.duration_ms, ReleaseTrack.isrc)
            .where(ReleaseTrack.release_id.in_(chunk))
            .order_by(ReleaseTrack.release_id, ReleaseTrack.position)
        )
        for release_id, name, duration_ms, isrc in rows:
            out[release_id].append(_Track(normalise_title(name), duration_ms, isrc))
    return dict(out)
