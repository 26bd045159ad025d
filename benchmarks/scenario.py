"""Deterministic synthetic catalogues and weekly changes for the tracking benchmark.

``Scenario(size, seed, weeks)`` is a pure function of its arguments: the emulator
server process (``benchmarks/emulator_server.py``) and the harness build the same
scenario independently, so the harness keeps the ground truth without asking the
emulator. Ids are 22-character base62 strings derived from the seed.

Artist profiles (share of the followed artists; own releases = album/single/compilation):

* ``prolific`` — max(1, N/200) artists with 150–400 own releases, 20–120 appears_on, release p=0.5 a week;
* ``weekly``   — max(2, N/50) artists with 30–100 own releases, 5–40 appears_on, release p=0.85 a week;
* ``regular``  — N/10 artists with 15–60 own releases, 5–40 appears_on, release p=0.08 a week;
* ``quiet``    — the rest, 3–25 own releases, 0–25 appears_on, release p=0.01 a week.

appears_on items come from a pool of N/2 compilations by unfollowed host artists, each
listing several followed artists.

Every week also injects (counts scale with N, at least one each): albums with a
"(Clean)" twin, deluxe re-releases of an older album, remix singles, albums carrying
two singles already out, collaborations of two followed artists, back-catalogue
additions (release date 1998–2015), removals (a third of them the newest release of
the group), a removal plus an addition for the same artist, and appears_on items
(albums by unfollowed "host" artists listing a followed artist under appears_on).

Ground truth per week: ``expected`` = releases that must be announced in the run
right after they appear (new albums/singles/compilations incl. deluxe, remix,
carrying-singles albums, collaborations, the addition of a removal+addition pair and
both editions of a twin pair — the clean one is announced folded into the explicit
one). Back-catalogue additions and appears_on items are *not* expected (see README).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
from dataclasses import dataclass, field

GROUPS = ("album", "single", "compilation")
PAGE = 10
START = dt.date(2026, 9, 4)  # a Friday: week k runs at START + 7k days, 09:00 UTC
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_WORDS = [
    "Neon",
    "Velvet",
    "Echo",
    "Paper",
    "Hollow",
    "River",
    "Static",
    "Golden",
    "Midnight",
    "Silver",
    "Glass",
    "Wild",
    "Quiet",
    "Electric",
    "Broken",
    "Summer",
    "Winter",
    "Ocean",
    "Desert",
    "Crimson",
    "Blue",
    "Lunar",
    "Solar",
    "Faded",
    "Open",
    "Secret",
    "Northern",
    "Southern",
    "Little",
    "Heavy",
    "Gentle",
    "Burning",
    "Frozen",
    "Distant",
    "Sacred",
    "Restless",
    "Hidden",
    "Lost",
    "Bright",
    "Dark",
    "Second",
]
_NOUNS = [
    "Hearts",
    "Lights",
    "Roads",
    "Dreams",
    "Waves",
    "Skies",
    "Fields",
    "Streets",
    "Rooms",
    "Signals",
    "Machines",
    "Gardens",
    "Tides",
    "Mirrors",
    "Horizons",
    "Letters",
    "Engines",
    "Shadows",
    "Stars",
    "Bridges",
    "Islands",
    "Voices",
    "Rivers",
    "Hours",
    "Cities",
]


def make_id(*parts: object) -> str:
    value = int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest(), "big")
    out = []
    for _ in range(22):
        value, rem = divmod(value, 62)
        out.append(_BASE62[rem])
    return "".join(out)


def week_date(k: int) -> dt.date:
    return START + dt.timedelta(days=7 * k)


def run_time(k: int) -> dt.datetime:
    """Simulated UTC time at which the run of week ``k`` starts (week 0 = the baseline run)."""
    return dt.datetime.combine(week_date(k), dt.time(9, 0), tzinfo=dt.UTC)


@dataclass(slots=True)
class AlbumSpec:
    id: str
    name: str
    album_type: str
    artists: tuple[str, ...]
    date: str
    precision: str
    n_tracks: int
    seq: int
    kind: str = "catalogue"
    appears_on: tuple[str, ...] = ()
    carried: tuple[str, ...] = ()  # album ids whose tracks open this one (deluxe, carrying singles)

    @property
    def sort_date(self) -> str:
        parts = self.date.split("-")
        while len(parts) < 3:
            parts.append("00")
        return "-".join(parts)


@dataclass
class Week:
    k: int
    adds: list[AlbumSpec] = field(default_factory=list)
    removes: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)  # release ids to announce in run k
    backcat: list[str] = field(default_factory=list)
    appears: list[str] = field(default_factory=list)
    removed_newest: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


class Scenario:
    """Catalogue at week 0 plus ``weeks`` weekly change sets; see the module docstring."""

    def __init__(self, size: int, seed: str = "bench", weeks: int = 12) -> None:
        self.size, self.seed, self.weeks = size, seed, weeks
        self.rng = random.Random(f"{seed}:{size}")
        self._seq = 0
        self._n = 0
        self.albums: dict[str, AlbumSpec] = {}  # every album ever created (removed ones too)
        self.live: set[str] = set()
        self.own: dict[str, list[str]] = {}  # artist -> own album ids (live or not; filter with live)
        self.appears_of: dict[str, list[str]] = {}
        self.artists: list[tuple[str, str, str]] = []  # (id, name, profile), followed
        self.hosts: list[tuple[str, str]] = []  # unfollowed artists (appears_on hosts)
        self.follows: dict[int, list[str]] = {}  # guild id -> artist ids
        self.catalogue: list[AlbumSpec] = []
        self.week_list: list[Week] = []
        self._build()

    # ------------------------------------------------------------------ helpers
    def _artist(self, i: int, host: bool = False) -> str:
        return make_id(self.seed, self.size, "host" if host else "artist", i)

    def _title(self) -> str:
        r = self.rng
        return f"{r.choice(_WORDS)} {r.choice(_NOUNS)}"

    def _album(
        self,
        artists,
        name,
        album_type,
        date,
        *,
        precision="day",
        kind="catalogue",
        appears_on=(),
        carried=(),
        n_tracks=None,
    ) -> AlbumSpec:
        self._n += 1
        self._seq += 1
        if n_tracks is None:
            n_tracks = {"album": self.rng.randint(6, 12), "single": self.rng.randint(1, 2), "compilation": 10}[
                album_type
            ]
        spec = AlbumSpec(
            make_id(self.seed, self.size, "album", self._n),
            name,
            album_type,
            tuple(artists),
            date,
            precision,
            n_tracks,
            self._seq,
            kind,
            tuple(appears_on),
            tuple(carried),
        )
        self.albums[spec.id] = spec
        self.live.add(spec.id)
        for a in spec.artists:
            self.own.setdefault(a, []).append(spec.id)
        for a in spec.appears_on:
            self.appears_of.setdefault(a, []).append(spec.id)
        return spec

    def _old_date(self, lo=1998, hi=None) -> tuple[str, str]:
        hi_date = START - dt.timedelta(days=14)
        lo_date = dt.date(lo, 1, 1)
        if hi is not None:
            hi_date = min(hi_date, dt.date(hi, 12, 31))
        d = lo_date + dt.timedelta(days=self.rng.randrange((hi_date - lo_date).days))
        if d.year < 2008 and self.rng.random() < 0.3:
            return str(d.year), "year"
        return d.isoformat(), "day"

    def _type(self, weights=(0.35, 0.55, 0.10)) -> str:
        return self.rng.choices(GROUPS, weights)[0]

    # ------------------------------------------------------------------ build
    def _build(self) -> None:
        n, r = self.size, self.rng
        n_prolific, n_weekly, n_regular = max(1, n // 200), max(2, n // 50), n // 10
        for i in range(n):
            profile = (
                "prolific"
                if i < n_prolific
                else "weekly"
                if i < n_prolific + n_weekly
                else "regular"
                if i < n_prolific + n_weekly + n_regular
                else "quiet"
            )
            self.artists.append((self._artist(i), f"Artist {i:05d}", profile))
        r.shuffle(self.artists)
        self.hosts = [(self._artist(i, True), f"Host {i:04d}") for i in range(max(3, n // 20))]
        for gi, (aid, _, _) in enumerate(self.artists):
            g = gi % 3 + 1
            self.follows.setdefault(g, []).append(aid)
            if r.random() < 0.3:
                self.follows.setdefault((g % 3) + 1, []).append(aid)
        for g in (1, 2, 3):
            self.follows.setdefault(g, [])
        counts = {"prolific": (150, 400), "weekly": (30, 100), "regular": (15, 60), "quiet": (3, 25)}
        for aid, _, profile in self.artists:
            lo, hi = counts[profile]
            for _ in range(r.randint(lo, hi)):
                date, prec = self._old_date(lo=2012 if profile == "weekly" else 1998)
                t = self._type((0.3, 0.5, 0.2) if profile == "prolific" else (0.35, 0.55, 0.10))
                spec = self._album([aid], self._title(), t, date, precision=prec)
                self.catalogue.append(spec)
                if t == "album" and prec == "day" and r.random() < 0.08:  # back-catalogue clean twin
                    self.catalogue.append(
                        self._album([aid], spec.name + " (Clean)", "album", date, n_tracks=spec.n_tracks)
                    )
        # appears_on: a pool of compilations by unfollowed host artists, each listing several followed
        # artists (as real "Hits of 2019"-style compilations do); per artist 0-25 (quiet) to 20-120 (prolific).
        pool_size = max(20, n // 2)
        slots: list[list[str]] = [[] for _ in range(pool_size)]
        appears = {"prolific": (20, 120), "weekly": (5, 40), "regular": (5, 40), "quiet": (0, 25)}
        for aid, _, profile in self.artists:
            for j in r.sample(range(pool_size), min(pool_size, r.randint(*appears[profile]))):
                slots[j].append(aid)
        for j, members in enumerate(slots):
            if members:
                date, prec = self._old_date()
                self.catalogue.append(
                    self._album(
                        [self.hosts[j % len(self.hosts)][0]],
                        self._title(),
                        "compilation",
                        date,
                        precision=prec,
                        appears_on=members,
                        n_tracks=12,
                    )
                )
        for k in range(1, self.weeks + 1):
            self.week_list.append(self._week(k))

    def listing(self, artist: str, groups=GROUPS) -> list[tuple[str, str]]:
        """``[(group, album id)]`` as the emulator lists them (date desc, then insertion order)."""
        out: list[tuple[str, str]] = []
        own = [self.albums[i] for i in self.own.get(artist, ()) if i in self.live]
        for g in groups:
            items = sorted((a for a in own if a.album_type == g), key=lambda a: a.seq)
            items.sort(key=lambda a: a.sort_date, reverse=True)
            out.extend((g, a.id) for a in items)
        return out

    def total_all_groups(self, artist: str) -> int:
        own = sum(1 for i in self.own.get(artist, ()) if i in self.live)
        return own + sum(1 for i in self.appears_of.get(artist, ()) if i in self.live)

    def _week(self, k: int) -> Week:
        r, n = self.rng, self.size
        w = Week(k)
        friday = week_date(k)

        def new_date() -> str:
            return (friday - dt.timedelta(days=r.choice((0, 0, 0, 1, 2, 4)))).isoformat()

        def add(spec: AlbumSpec, expected: bool = True) -> AlbumSpec:
            w.adds.append(spec)
            w.kinds[spec.kind] = w.kinds.get(spec.kind, 0) + 1
            if expected:
                w.expected.append(spec.id)
            return spec

        def own_live(aid, t=None):
            return [
                self.albums[i]
                for i in self.own.get(aid, ())
                if i in self.live and (t is None or self.albums[i].album_type == t)
            ]

        p = {"prolific": 0.5, "weekly": 0.85, "regular": 0.08, "quiet": 0.01}
        followed = [a for a, _, _ in self.artists]
        touched: set[str] = set()
        for aid, _, profile in self.artists:
            if r.random() < p[profile]:
                t = "single" if profile == "weekly" and r.random() < 0.85 else self._type((0.4, 0.5, 0.1))
                add(self._album([aid], self._title(), t, new_date(), kind="new"))
                touched.add(aid)

        def count(rate: float) -> int:
            return max(1, round(rate * n))

        for _ in range(count(0.002)):  # album + clean twin
            aid = r.choice(followed)
            date, name = new_date(), self._title()
            main = add(self._album([aid], name, "album", date, kind="twin_main"))
            add(self._album([aid], name + " (Clean)", "album", date, kind="twin_clean", n_tracks=main.n_tracks))
        for _ in range(count(0.001)):  # deluxe re-release
            aid = r.choice(followed)
            albums = own_live(aid, "album")
            if not albums:
                continue
            orig = r.choice(albums)
            add(
                self._album(
                    [aid],
                    orig.name + " (Deluxe Edition)",
                    "album",
                    new_date(),
                    kind="deluxe",
                    carried=[orig.id],
                    n_tracks=orig.n_tracks + 3,
                )
            )
        for _ in range(count(0.001)):  # remix single
            aid = r.choice(followed)
            singles = own_live(aid, "single")
            if not singles:
                continue
            orig = r.choice(singles)
            add(
                self._album(
                    [aid], f"{orig.name} ({r.choice(_WORDS)} Remix)", "single", new_date(), kind="remix", n_tracks=1
                )
            )
        weekly = [a for a, _, pr in self.artists if pr in ("weekly", "prolific")]
        for _ in range(count(0.001)):  # album carrying two singles already out
            aid = r.choice(weekly)
            singles = sorted(own_live(aid, "single"), key=lambda a: a.sort_date, reverse=True)[:2]
            if len(singles) < 2:
                continue
            add(
                self._album(
                    [aid],
                    self._title(),
                    "album",
                    new_date(),
                    kind="carries_singles",
                    carried=[s.id for s in singles],
                    n_tracks=8 + sum(s.n_tracks for s in singles),
                )
            )
        for _ in range(count(0.001)):  # collaboration of two followed artists
            a, b = r.sample(followed, 2)
            add(self._album([a, b], self._title(), "single", new_date(), kind="collab"))
        for _ in range(count(0.002)):  # back-catalogue addition (old release date)
            aid = r.choice(followed)
            date, prec = self._old_date(hi=2015)
            spec = add(
                self._album([aid], self._title(), self._type(), date, precision=prec, kind="backcat"), expected=False
            )
            w.backcat.append(spec.id)
        new_ids = {s.id for s in w.adds}
        for i in range(count(0.002) + count(0.001)):  # removals; the last ones come with an addition
            with_addition = i >= count(0.002)
            aid = r.choice(followed)
            groups = [g for g in GROUPS if any(x.id not in new_ids for x in own_live(aid, g))]
            if not groups:
                continue
            g = r.choice(groups)
            listing = [x for gg, x in self.listing(aid, (g,)) if x not in new_ids]
            newest = r.random() < 0.33
            victim = listing[0] if newest else r.choice(listing)
            w.removed_newest += (newest and 1) or 0
            w.removes.append(victim)
            self.live.discard(victim)
            w.kinds["removal"] = w.kinds.get("removal", 0) + 1
            if with_addition:
                add(self._album([aid], self._title(), g, new_date(), kind="removal_add"))
        for _ in range(count(0.002)):  # appears_on on a followed artist
            aid = r.choice(followed)
            host = r.choice(self.hosts)[0]
            spec = add(
                self._album([host], self._title(), "album", new_date(), kind="appears_on", appears_on=[aid]),
                expected=False,
            )
            w.appears.append(spec.id)
        return w

    def apply_week(self, w: Week) -> None:
        """Update the live set with week ``w`` (the generator calls it; replay with ``replay``)."""
        for victim in w.removes:
            self.live.discard(victim)
        for spec in w.adds:
            self.live.add(spec.id)

    # ------------------------------------------------------------------ replay for the harness
    def reset_live(self) -> None:
        """Put the live set back to week 0 (the generator advanced it to the last week)."""
        self.live = {s.id for s in self.catalogue}

    # ------------------------------------------------------------------ emulator content
    def tracks_of(self, spec: AlbumSpec) -> list[dict]:
        tracks: list[dict] = []
        for cid in spec.carried:
            tracks.extend(self.tracks_of(self.albums[cid]))
        own = spec.n_tracks - len(tracks)
        name = spec.name[: -len(" (Clean)")] if spec.name.endswith(" (Clean)") else spec.name
        for i in range(max(0, own)):
            title = name if spec.n_tracks == 1 else f"{name} - Track {i + 1}"
            tracks.append(
                {
                    "name": title,
                    "duration_ms": 150_000 + (sum(map(ord, f"{name}{i}")) * 7919) % 120_000,
                    "isrc": _isrc(spec.id, i),
                }
            )
        return tracks


def _isrc(album_id: str, i: int) -> str:
    h = int.from_bytes(hashlib.blake2b(f"{album_id}:{i}".encode(), digest_size=6).digest(), "big")
    return f"QZB{h % 10**9:09d}"


def pages(n: int) -> int:
    return max(1, math.ceil(n / PAGE))
