"""A simulated music world that drives the Spotify, MusicBrainz and ListenBrainz emulators together.

Used by the signal benchmark (``benchmarks/harness.py --world``) and by tests. ``MusicWorld`` is a
pure function of its arguments (deterministic by ``seed``): given the followed Spotify artists it
decides

* **mapping**: every artist has a MusicBrainz artist; ``mapped_share`` (default 60 %) of them carry
  the Spotify URL relationship (``https://open.spotify.com/artist/<id>``, "free streaming"), the
  others cannot be found from Spotify;
* **releases** over ``weeks`` simulated weeks after ``start`` (dates ``start + 1 day`` …
  ``start + 7 × weeks days``, ``release_rate`` releases per artist and week; single-artist albums
  and singles; ``friday_share``, default 80 %, dated on a Friday, the others on any day), each for a market whose time zone decides when Spotify lists it: **at midnight of
  its (final) date in that time zone** (:attr:`WorldRelease.appears_at`);
* **what MusicBrainz/ListenBrainz know** (``WorldRelease.known``): ``ahead`` (default 70 %:
  announced 1–6 weeks before the date), ``late`` (default 15 %: MusicBrainz learns 1–10 days after
  Spotify lists it) or ``never``;
* **changes of announced releases**: ``postponed_share`` (default 10 %) are postponed 1–4 weeks, the
  new date entered between the announcement and the old date (Spotify lists them at the new
  date, never at the old); ``cancelled_share`` (default 3 %) disappear from MusicBrainz before
  their date and never appear on Spotify;
* **barcodes** of the MusicBrainz release: 40 % entered with the release (half as the 12-digit
  UPC, half as the 13-digit EAN with a leading 0), 30 % entered when Spotify lists it, 30 % none
  (``""``); a MusicBrainz title differs from Spotify's by a "(feat. …)" credit in 15 % of them.

:meth:`MusicWorld.install` adds the MusicBrainz artists (and optionally the Spotify artists);
:meth:`MusicWorld.advance` applies every event up to a UTC time to the emulators given (each once,
in time order): MusicBrainz/ListenBrainz learn, change, lose a release group or its barcode,
Spotify lists a release. :meth:`MusicWorld.appeared` is the ground truth of what Spotify lists
when. Times are aware UTC datetimes; dates are ``datetime.date``.

Example::

    world = MusicWorld([(spotify_id, "Some Artist")], seed="t", start=dt.date(2026, 9, 4), weeks=4)
    world.install(musicbrainz, spotify=spotify)
    world.advance(now, spotify=spotify, musicbrainz=musicbrainz, listenbrainz=listenbrainz)
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from fakes.listenbrainz_emulator import ListenBrainzEmulator
from fakes.musicbrainz_emulator import MusicBrainzEmulator
from fakes.spotify_emulator import SpotifyEmulator

__all__ = ["MARKETS", "MusicWorld", "WorldArtist", "WorldEvent", "WorldRelease"]

#: Markets a release is dated for: (market, IANA time zone, weight).
MARKETS: tuple[tuple[str, str, float], ...] = (
    ("US", "America/New_York", 0.35),
    ("GB", "Europe/London", 0.15),
    ("DE", "Europe/Berlin", 0.10),
    ("BR", "America/Sao_Paulo", 0.08),
    ("MX", "America/Mexico_City", 0.05),
    ("JP", "Asia/Tokyo", 0.10),
    ("KR", "Asia/Seoul", 0.05),
    ("AU", "Australia/Sydney", 0.07),
    ("NZ", "Pacific/Auckland", 0.05),
)

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_WORDS = ("Neon", "Velvet", "Echo", "Paper", "Hollow", "Static", "Golden", "Glass", "Lunar", "Faded", "Quiet")
_NOUNS = ("Hearts", "Lights", "Roads", "Dreams", "Waves", "Signals", "Tides", "Mirrors", "Letters", "Hours")


def _spotify_id(*parts: object) -> str:
    value = int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest(), "big")
    out = []
    for _ in range(22):
        value, rem = divmod(value, 62)
        out.append(_BASE62[rem])
    return "".join(out)


def _mbid(*parts: object) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "music-world:" + ":".join(map(str, parts))))


@dataclass(frozen=True, slots=True)
class WorldArtist:
    """A followed artist: Spotify id and name, its MusicBrainz artist, whether MusicBrainz links it
    to the Spotify artist (``mapped``)."""

    spotify_id: str
    name: str
    mbid: str
    mapped: bool


@dataclass(slots=True)
class WorldRelease:
    """One release of the world.

    ``spotify_id`` / ``title`` / ``album_type`` (``album`` | ``single``) / ``artist`` (Spotify
    artist id) / ``upc``: as Spotify lists it. ``market``, ``tz``: whose midnight Spotify lists it
    at. ``first_date``: the date first announced; ``final_date``: after a postponement (else the
    same). ``known``: ``ahead`` | ``late`` | ``never`` (MusicBrainz). ``announced_at``: when
    MusicBrainz/ListenBrainz learn it (None: never); ``postponed_at``: when the date changes to
    ``final_date`` (None: never postponed); ``cancelled_at``: when it disappears from MusicBrainz
    (None: it does not; a cancelled release never appears on Spotify). ``barcode``: the
    MusicBrainz release's barcode once entered (``""``: none); ``barcode_at``: when it is entered
    (None: with the release). ``rg_mbid`` / ``release_mbid`` / ``mb_title`` / ``primary_type``:
    MusicBrainz's release group and release.
    """

    index: int
    spotify_id: str
    title: str
    album_type: str
    artist: str
    upc: str
    market: str
    tz: str
    first_date: dt.date
    final_date: dt.date
    known: str
    announced_at: dt.datetime | None
    postponed_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    barcode: str
    barcode_at: dt.datetime | None
    rg_mbid: str
    release_mbid: str
    mb_title: str
    primary_type: str

    @property
    def appears_at(self) -> dt.datetime | None:
        """When Spotify lists it (aware UTC): midnight of ``final_date`` in ``tz``; None when cancelled."""
        if self.cancelled_at is not None:
            return None
        return dt.datetime.combine(self.final_date, dt.time(0), tzinfo=ZoneInfo(self.tz)).astimezone(dt.UTC)

    @property
    def postponed(self) -> bool:
        return self.postponed_at is not None


@dataclass(frozen=True, slots=True)
class WorldEvent:
    """A change of the world at ``at`` (aware UTC): ``kind`` is ``mb_add`` (MusicBrainz/ListenBrainz
    learn the release), ``mb_date`` (its date moves to ``final_date``), ``mb_remove`` (it disappears),
    ``mb_barcode`` (its barcode is entered) or ``spotify_add`` (Spotify lists it)."""

    at: dt.datetime
    order: int
    kind: str
    release: WorldRelease


class MusicWorld:
    """See the module docstring. ``artists``: ``[(Spotify id, name)]`` of the followed artists."""

    def __init__(
        self,
        artists: Sequence[tuple[str, str]],
        *,
        seed: str,
        start: dt.date,
        weeks: int,
        release_rate: float = 0.05,
        mapped_share: float = 0.6,
        ahead_share: float = 0.7,
        late_share: float = 0.15,
        postponed_share: float = 0.1,
        cancelled_share: float = 0.03,
        friday_share: float = 0.8,
    ) -> None:
        self.seed, self.start, self.weeks = seed, start, weeks
        rng = random.Random(f"music-world:{seed}")
        self.artists = [
            WorldArtist(sid, name, _mbid(seed, "artist", sid), rng.random() < mapped_share) for sid, name in artists
        ]
        markets, weights = [m[:2] for m in MARKETS], [m[2] for m in MARKETS]
        self.releases: list[WorldRelease] = []
        days = 7 * weeks
        for artist in self.artists:
            for _ in range(_poisson(rng, release_rate * weeks)):
                i = len(self.releases)
                date = start + dt.timedelta(days=rng.randint(1, days))
                if rng.random() < friday_share:  # most releases come out on a Friday (the global release day)
                    date = (
                        start
                        + dt.timedelta(days=7 * rng.randint(1, weeks))
                        - dt.timedelta(days=(start.weekday() - 4) % 7)
                    )
                market, tz = rng.choices(markets, weights)[0]
                album_type = "album" if rng.random() < 0.35 else "single"
                title = f"{rng.choice(_WORDS)} {rng.choice(_NOUNS)} {i}"
                upc = str(int(hashlib.sha256(f"{seed}:upc:{i}".encode()).hexdigest(), 16))[:12]
                roll = rng.random()
                known = "ahead" if roll < ahead_share else "late" if roll < ahead_share + late_share else "never"
                midnight = dt.datetime.combine(date, dt.time(0), tzinfo=ZoneInfo(tz)).astimezone(dt.UTC)
                announced_at: dt.datetime | None = None
                postponed_at = cancelled_at = None
                final = date
                if known == "ahead":
                    announced_at = midnight - dt.timedelta(days=rng.randint(7, 42), hours=rng.randint(0, 23))
                    fate = rng.random()
                    if fate < postponed_share:
                        postponed_at = announced_at + (midnight - announced_at) * rng.uniform(0.2, 0.9)
                        final = date + dt.timedelta(weeks=rng.randint(1, 4))
                    elif fate < postponed_share + cancelled_share:
                        cancelled_at = announced_at + (midnight - announced_at) * rng.uniform(0.2, 0.9)
                elif known == "late":
                    announced_at = midnight + dt.timedelta(days=rng.randint(1, 10), hours=rng.randint(0, 23))
                roll = rng.random()
                barcode, barcode_at = "", None
                if roll < 0.4:
                    barcode = upc if rng.random() < 0.5 else "0" + upc
                elif roll < 0.7:
                    barcode = upc
                    barcode_at = dt.datetime.combine(final, dt.time(0), tzinfo=ZoneInfo(tz)).astimezone(dt.UTC)
                mb_title = title + (" (feat. Guest Singer)" if rng.random() < 0.15 else "")
                primary = "Album" if album_type == "album" else ("EP" if rng.random() < 0.2 else "Single")
                self.releases.append(
                    WorldRelease(
                        index=i,
                        spotify_id=_spotify_id(seed, "world-album", i),
                        title=title,
                        album_type=album_type,
                        artist=artist.spotify_id,
                        upc=upc,
                        market=market,
                        tz=tz,
                        first_date=date,
                        final_date=final,
                        known=known,
                        announced_at=announced_at,
                        postponed_at=postponed_at,
                        cancelled_at=cancelled_at,
                        barcode=barcode,
                        barcode_at=barcode_at,
                        rg_mbid=_mbid(seed, "release-group", i),
                        release_mbid=_mbid(seed, "release", i),
                        mb_title=mb_title,
                        primary_type=primary,
                    )
                )
        self._artist = {a.spotify_id: a for a in self.artists}
        events: list[WorldEvent] = []
        for r in self.releases:
            if r.announced_at is not None:
                events.append(WorldEvent(r.announced_at, 0, "mb_add", r))
            if r.postponed_at is not None:
                events.append(WorldEvent(r.postponed_at, 1, "mb_date", r))
            if r.cancelled_at is not None:
                events.append(WorldEvent(r.cancelled_at, 1, "mb_remove", r))
            if r.barcode_at is not None and r.known != "never" and r.cancelled_at is None:
                # A late group's barcode is entered with it (it is entered after the date anyway).
                events.append(WorldEvent(max(r.barcode_at, r.announced_at or r.barcode_at), 2, "mb_barcode", r))
            appears = r.appears_at
            if appears is not None:
                events.append(WorldEvent(appears, 3, "spotify_add", r))
        events.sort(key=lambda e: (e.at, e.order, e.release.index))
        self.events = events
        self._times = [e.at for e in events]
        self.applied_until: dt.datetime | None = None
        self._next = 0

    def artist(self, spotify_id: str) -> WorldArtist:
        """The world's artist of a Spotify id (``KeyError`` for another)."""
        return self._artist[spotify_id]

    def install(self, musicbrainz: MusicBrainzEmulator, *, spotify: SpotifyEmulator | None = None) -> None:
        """Add every artist to MusicBrainz (mapped ones linked to their Spotify URL) and, with
        ``spotify``, to Spotify too (the benchmark's Spotify emulator has them already)."""
        for a in self.artists:
            if spotify is not None:
                spotify.add_artist(a.name, artist_id=a.spotify_id, followers=1000)
            musicbrainz.add_artist(a.mbid, a.name, spotify_id=a.spotify_id if a.mapped else None)

    def advance(
        self,
        until: dt.datetime,
        *,
        spotify: SpotifyEmulator | None = None,
        musicbrainz: MusicBrainzEmulator | None = None,
        listenbrainz: ListenBrainzEmulator | None = None,
    ) -> list[WorldEvent]:
        """Apply the events at or before ``until`` (aware UTC) not applied yet, in time order, to the
        emulators given (an emulator not given is left alone: a process may hold only some); returns
        them. Raises ``ValueError`` when ``until`` is before an earlier ``until``."""
        if self.applied_until is not None and until < self.applied_until:
            raise ValueError(f"the world is at {self.applied_until}, cannot go back to {until}")
        end = bisect.bisect_right(self._times, until)
        due = self.events[self._next : end]
        self._next, self.applied_until = end, until
        for event in due:
            r = event.release
            if event.kind == "spotify_add":
                if spotify is not None:
                    spotify.add_album(
                        [r.artist],
                        r.title,
                        album_type=r.album_type,
                        release_date=r.final_date.isoformat(),
                        album_id=r.spotify_id,
                        upc=r.upc,
                    )
                continue
            if event.kind == "mb_add":
                date = r.final_date if r.postponed_at is not None and r.postponed_at <= event.at else r.first_date
                if musicbrainz is not None:
                    musicbrainz.add_release_group(
                        r.rg_mbid,
                        r.mb_title,
                        artist_mbids=[self._artist[r.artist].mbid],
                        primary_type=r.primary_type,
                        first_release_date=date.isoformat(),
                    )
                    musicbrainz.add_release(
                        r.release_mbid,
                        r.rg_mbid,
                        r.mb_title,
                        barcode=r.barcode if r.barcode_at is None else None,
                        date=date.isoformat(),
                    )
                if listenbrainz is not None:
                    listenbrainz.add_release_group(
                        r.rg_mbid,
                        release_mbid=r.release_mbid,
                        release_name=r.mb_title,
                        artist_credit_name=self._artist[r.artist].name,
                        artist_mbids=[self._artist[r.artist].mbid],
                        first_release_date=date.isoformat(),
                        primary_type=r.primary_type,
                    )
            elif event.kind == "mb_date":
                if musicbrainz is not None:
                    musicbrainz.update_release_group(r.rg_mbid, first_release_date=r.final_date.isoformat())
                    musicbrainz.update_release(
                        r.release_mbid, release_events=[{"date": r.final_date.isoformat(), "area": None}]
                    )
                if listenbrainz is not None:
                    listenbrainz.update_release_group(r.rg_mbid, first_release_date=r.final_date.isoformat())
            elif event.kind == "mb_remove":
                if musicbrainz is not None:
                    musicbrainz.remove_release_group(r.rg_mbid)
                if listenbrainz is not None:
                    listenbrainz.remove_release_group(r.rg_mbid)
            elif event.kind == "mb_barcode" and musicbrainz is not None:
                musicbrainz.update_release(r.release_mbid, barcode=r.barcode)
        return due

    def appeared(self, since: dt.datetime | None, until: dt.datetime) -> list[WorldRelease]:
        """Ground truth: the releases Spotify starts listing after ``since`` (None: the beginning) and
        at or before ``until``, in the order :meth:`advance` adds them."""
        return [
            e.release
            for e in self.events
            if e.kind == "spotify_add" and (since is None or e.at > since) and e.at <= until
        ]


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson-distributed count of mean ``mean`` (Knuth's method; means here are small)."""
    limit, k, p = pow(2.718281828459045, -mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
