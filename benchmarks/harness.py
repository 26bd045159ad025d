"""One benchmark size, end to end: the real bot path against the emulator process, plus the naive tracker.

``python -m benchmarks.harness --size 1000 --weeks 12 --out result.json`` (normally started by
``benchmarks.run``, one process per size so that each size's peak RSS is its own).

Three processes: the emulator (``benchmarks.emulator_server``), the bot
(``benchmarks.bot_server``: a real :class:`bot.scheduling.runner.Runner` with a real
:class:`bot.tracking.Tracker`, :class:`bot.spotify.client.SpotifyClient` and
:class:`bot.delivery.Deliverer` with a counting sender instead of Discord, and nothing
else — its peak RSS and database time are the bot's own) and this one, which holds the
scenario's ground truth, creates the SQLite store in a temp dir (three guilds following the
scenario's artists), tells the bot when to run, reads each run's record and deliveries from
the store afterwards, and runs the naive tracker. Whatever the tracker does when this runs
is what gets measured. Metrics the tracker records (``Run.metrics``) are read when present;
everything else is measured here or in the bot process.

``--world RATE`` adds the music world (``fakes/music_world.py``, :func:`benchmarks.emulator_server.world_of`:
RATE releases per artist and week on top of the scenario's, MusicBrainz/ListenBrainz knowing most of
them ahead) and simulates every day: before each day's 00:15 UTC the world advances (Spotify lists a
release at midnight in its market's zone), with ``--signal`` the bot runs the free signal's daily job
then, and the weekly runs stay at 09:00 UTC on the scenario's Fridays. The world's releases that
Spotify lists between two runs join the next run's ground truth (expected pairs, L, L_B) as kind
``world``. The result adds ``world``: the latency from each world release's Spotify listing to its
post (``latency_hours`` per guild kind), the daily reports, the signal's counts
(``storage.musicdata.signal_counts``) and its matches checked against the world.

``--release-day`` turns release-day posting on for the guilds ``RELEASE_DAY_GUILDS`` (``guilds.release_day``,
set through ``storage.guilds.set_release_day``) and steps simulated time through each day's probe times
(:func:`day_steps`: local midnight of the ``[spotify] market`` plus ``[release_day] probe_hours``,
the bot's defaults), where the bot process makes every probe due (its ``release_day`` command, the
prober ``build_core`` makes). Every step of a day that falls after the weekly run's time is made after
that run. Posts are measured from the store (``deliveries.sent_at``), so whatever run posts a release,
its latency is measured the same way; a pair a probe posted counts as announced by the next weekly run
(recall), and each row adds the probes made since the previous run (``probes``,
``probe_requests``, ``probes_found``) and the Spotify requests the emulator served between the runs
(``between_runs_requests``: the probes' — 0 without them).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from benchmarks.bot_server import peak_rss_mb
from benchmarks.emulator_server import world_of
from benchmarks.scenario import GROUPS, PAGE, START, AlbumSpec, Scenario, Week, pages, run_time
from bot.scheduling.due import next_due
from bot.scheduling.release_day import market_zone, probe_times
from bot.settings import ReleaseDaySettings, SpotifySettings
from bot.spotify.client import SpotifyClient
from bot.spotify.models import Album, Page
from bot.wiring import spotify_client
from fakes.music_world import MusicWorld, WorldRelease
from storage import guilds, musicdata
from storage.db import open_database
from storage.models import Artist, ArtistRelease, Delivery, MusicBrainzReleaseGroup, Run

ALL_GROUPS = ("album", "single", "compilation", "appears_on")
GUILDS = {1: 9001, 2: 9002, 3: 9003}  # guild id -> channel id
ROOT = Path(__file__).resolve().parent.parent
RELEASE_DAY_GUILDS: frozenset[int] = frozenset({1})  # with --release-day: guilds posting on release day
DAILY_AT = dt.time(0, 15)  # when the simulated day's steps run (UTC); the daily job runs soon after midnight
MARKET = SpotifySettings.model_fields["market"].default  # the bot process's [spotify] market (its default)
PROBE_HOURS = tuple(ReleaseDaySettings.model_fields["probe_hours"].default)  # [release_day] probe_hours (default)


def day_steps(args: argparse.Namespace, day: dt.date) -> list[tuple[dt.datetime, str]]:
    """What runs on simulated day ``day``, in time order (aware UTC, step): at :data:`DAILY_AT` ``advance``
    (the world) and ``daily`` (the signal's job, ``--signal``); with ``--release-day`` a ``release_day``
    step at each of the day's probe times (:func:`bot.scheduling.release_day.probe_times` of ``day`` in
    :data:`MARKET`'s zone; before each, the world advances to it)."""
    at = dt.datetime.combine(day, DAILY_AT, tzinfo=dt.UTC)
    steps = [(at, "advance"), *([(at, "daily")] if args.signal else [])]
    if args.release_day:
        steps += [(t, "release_day") for t in probe_times(day, market_zone(MARKET), PROBE_HOURS)]
    return steps


def world_spec(scenario: Scenario, r: WorldRelease) -> AlbumSpec:
    """A world release as the scenario's ground truth holds it (kind ``world``), added to its albums."""
    scenario._seq += 1
    spec = AlbumSpec(
        r.spotify_id,
        r.title,
        r.album_type,
        (r.artist,),
        r.final_date.isoformat(),
        "day",
        10 if r.album_type == "album" else 1,
        scenario._seq,
        "world",
    )
    scenario.albums[spec.id] = spec
    scenario.own.setdefault(r.artist, []).append(spec.id)
    return spec


# ----------------------------------------------------------------------------- child processes
class ChildProcess:
    """A ``python -m <module>`` child process spoken to by JSON lines (first line: its start-up info)."""

    def __init__(self, module: str, args: list[str], log_path: Path) -> None:
        self.module, self.args, self.log_path = module, args, log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.info: dict = {}

    async def start(self) -> dict:
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        with self.log_path.open("ab") as log:  # the child's stderr: it keeps its own copy of the descriptor
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                self.module,
                *self.args,
                cwd=str(ROOT),
                env=env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                limit=2**20,
            )
        assert proc.stdin is not None and proc.stdout is not None  # both are PIPEs
        self.proc, self._stdin, self._stdout = proc, proc.stdin, proc.stdout
        self.info = await self._read()
        return self.info

    async def _read(self) -> dict:
        line = await self._stdout.readline()
        if not line:
            raise RuntimeError(f"{self.module} exited; see {self.log_path}")
        return json.loads(line)

    async def cmd(self, cmd: str, **kw: Any) -> dict:
        self._stdin.write((json.dumps({"cmd": cmd, **kw}) + "\n").encode())
        await self._stdin.drain()
        return await self._read()

    async def stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.cmd("quit"), 10)
                await asyncio.wait_for(self.proc.wait(), 10)
            except Exception:
                self.proc.kill()
                await self.proc.wait()


def EmulatorProcess(args: list[str], log_path: Path) -> ChildProcess:
    """``benchmarks.emulator_server`` as a child process."""
    return ChildProcess("benchmarks.emulator_server", args, log_path)


# ----------------------------------------------------------------------------- ground truth
def group_lists(scenario: Scenario, artist: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {g: [] for g in GROUPS}
    for g, aid in scenario.listing(artist):
        out[g].append(aid)
    return out


def extra_pages(old: dict[str, list[str]], new: dict[str, list[str]]) -> int:
    """Pages beyond the one probe request needed to reach the newest known release of each changed group.

    The probe is the artist's newest page (10 items) over album, single and compilation
    (listed in that order). A changed group whose new items and first known release all
    sit inside the probe page costs nothing more; otherwise ceil((p+1)/10) pages of that
    group's own listing, p = index of its first known release (the whole group when none
    is known).
    """
    extra, offset = 0, 0
    for g in GROUPS:
        new_g, old_g = new[g], old[g]
        if new_g != old_g and new_g:
            known = set(old_g)
            p = next((i for i, x in enumerate(new_g) if x in known), None)
            needed = len(new_g) if p is None else p + 1
            if offset + needed > PAGE:
                extra += math.ceil(needed / PAGE)
        offset += len(new_g)
    return extra


def recheck_cost(scenario: Scenario, artist: str) -> int:
    """Ground truth: requests beyond the probe of reading the artist's tracked listing whole now
    (album, single and compilation paged as one listing at limit 10: ``max(1, ceil(T/10)) - 1``)."""
    return pages(len(scenario.listing(artist))) - 1


def recheck_lower_bound(
    scenario: Scenario,
    followed: list[str],
    before: dict[str, dt.datetime | None],
    after: dict[str, dt.datetime | None],
    when: dt.datetime,
    share: float,
) -> dict[str, Any]:
    """The re-check's term of L_B from ground truth (docs/tracking.md, "L_B"): every followed artist is in
    every weekly run, so the even share is ``share × W`` (W: Σ over the artists of their listing's pages
    beyond the probe, from the scenario as it is now); ``largest``: the largest listing the run read whole;
    ``overdue``: pages of the ones it read whole that were due a week earlier already (last whole read
    older than ceil(1/share) + 1 weeks less 12 h). ``before``/``after``: ``exact_checked_at`` per artist
    before and after the run (changed = read whole by the run)."""
    period = math.ceil(1 / share) if share > 0 else 0
    cost = {a: recheck_cost(scenario, a) for a in followed}
    read = [a for a in followed if after.get(a) != before.get(a)]
    overdue_at = when - dt.timedelta(weeks=period + 1) + dt.timedelta(hours=12)
    overdue = sum(cost[a] for a in read if (before.get(a) or when) <= overdue_at) if period else 0
    even = share * sum(cost.values())
    largest = max((cost[a] for a in read), default=0)
    return {
        "even": even,
        "largest": largest,
        "overdue": overdue,
        "term": max(even, largest, overdue),
        "read": len(read),
        "pages": sum(cost[a] for a in read),
    }


def needs_tracks(spec) -> bool:
    """An album or compilation announced as new needs its track list (carried singles, deluxe check)."""
    return spec.album_type in ("album", "compilation") and spec.kind != "twin_clean"


# ----------------------------------------------------------------------------- naive tracker
async def naive_run(
    client: SpotifyClient, artist_ids: list[str], concurrency: int, snapshot: dict[str, set[str]]
) -> tuple[set[str], int]:
    """Every artist's whole catalogue (all four groups) paged at limit 10, no stored state.

    New = an own release (the artist is among the album's artists) not in the previous
    run's in-memory ``snapshot``. Returns (new release ids, artists that failed).
    """
    sem = asyncio.Semaphore(concurrency)
    new: set[str] = set()
    failed = 0

    async def one(aid: str) -> None:
        nonlocal failed
        async with sem:
            try:
                seen: set[str] = set()
                page: Page[Album] | None = await client.artist_albums(aid, include_groups=ALL_GROUPS, limit=PAGE)
                while page is not None:
                    for album in page.items:
                        if any(a.id == aid for a in album.artists):
                            seen.add(album.id)
                    page = await client.artist_albums_next(page)  # None after the last page, without a request
            except Exception:
                failed += 1
                return
        if aid in snapshot:
            new.update(seen - snapshot[aid])
        snapshot[aid] = seen

    await asyncio.gather(*(one(a) for a in artist_ids))
    return new, failed


# ----------------------------------------------------------------------------- the run
async def setup_store(
    db, scenario: Scenario, followed_at: dt.datetime, release_day: frozenset[int] = frozenset()
) -> None:
    """The benchmark's store: the guilds :data:`GUILDS` (``release_day`` on for those in ``release_day``),
    the scenario's artists and follows."""
    names = {aid: name for aid, name, _ in scenario.artists}
    async with db.sessions() as session:
        for gid, channel in GUILDS.items():
            guild = await guilds.get_or_create_guild(
                session, gid, now=followed_at, next_due_at=next_due(4, "09:00", "UTC", followed_at)
            )
            guild.channel_id = channel
        await session.flush()
        for gid in sorted(release_day):
            await guilds.set_release_day(session, gid, True)
        from storage.models import Follow

        session.add_all([Artist(id=aid, name=names[aid], group_state={}) for aid in names])
        await session.flush()
        session.add_all(
            [
                Follow(guild_id=gid, artist_id=aid, followed_at=followed_at)
                for gid, aids in scenario.follows.items()
                for aid in aids
            ]
        )
        await session.commit()


async def delivered_by(db, run_ids: list[int]) -> set[tuple[int, str]]:
    """The (guild, release) pairs the runs ``run_ids`` posted (``deliveries.run_id``)."""
    if not run_ids:
        return set()
    async with db.sessions() as session:
        rows = await session.execute(select(Delivery.guild_id, Delivery.release_id).where(Delivery.run_id.in_(run_ids)))
        return {(g, r) for g, r in rows.all()}


async def read_run(db, run_id: int) -> dict:
    async with db.sessions() as session:
        run = await session.get(Run, run_id)
        metrics = getattr(run, "metrics", None) or {}
        delivered = (
            await session.execute(select(Delivery.guild_id, Delivery.release_id).where(Delivery.run_id == run_id))
        ).all()
    return {"metrics": dict(metrics), "delivered": {(g, r) for g, r in delivered}, "status": run.status}


async def exact_checked(db) -> dict[str, dt.datetime | None]:
    """``artists.exact_checked_at`` (aware UTC) of every artist: when its listing was last read whole."""
    async with db.sessions() as session:
        rows = (await session.execute(select(Artist.id, Artist.exact_checked_at))).all()
    return {a: (t.replace(tzinfo=dt.UTC) if t is not None and t.tzinfo is None else t) for a, t in rows}


async def linked_ids(db, release_ids: list[str]) -> set[str]:
    if not release_ids:
        return set()
    async with db.sessions() as session:
        rows = await session.scalars(select(ArtistRelease.release_id).where(ArtistRelease.release_id.in_(release_ids)))
        return set(rows.all())


def code_fingerprint() -> str:
    """Short hash of bot/ and storage/ sources as imported by this process (the tree may change between sizes)."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted([*ROOT.glob("bot/**/*.py"), *ROOT.glob("storage/**/*.py")]):
        h.update(str(path.relative_to(ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


async def database_size_mb(db) -> float:
    """Size of the benchmark's database in MiB: its SQLite files, or PostgreSQL's ``pg_database_size``."""
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy import text

        async with db.engine.connect() as conn:
            return (await conn.execute(text("SELECT pg_database_size(current_database())"))).scalar_one() / 2**20
    return db_size_mb(Path(db.engine.url.database))


def db_size_mb(path: Path) -> float:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(path) + suffix)
        if p.exists():
            total += p.stat().st_size
    return total / 2**20


def _hours_stats(values: list[float]) -> dict[str, float | int | None]:
    ordered = sorted(values)
    return {
        "pairs": len(ordered),
        "median": ordered[len(ordered) // 2] if ordered else None,
        "p90": ordered[int(len(ordered) * 0.9)] if ordered else None,
        "worst": ordered[-1] if ordered else None,
    }


async def world_figures(
    db,
    world: MusicWorld,
    followers: dict[str, list[int]],
    daily: list[dict[str, Any]],
    music_requests: collections.Counter[str],
    end: dt.datetime,
    release_day_guilds: frozenset[int],
    probes: list[dict[str, Any]],
) -> dict[str, Any]:
    """The world's figures from the store after the last run: post latency from each world release's
        Spotify listing (hours, ``deliveries.sent_at`` − ``appears_at``) for weekly and release-day guilds,
        the signal's counts on ``end``'s day and its matches checked against the world, the daily reports;
    ``end``: the last run's time (the releases Spotify listed by then are the expected ones);
    ``release_day_guilds``: the guilds with ``release_day`` on; ``probes``: the release-day probes made."""
    by_id = {r.spotify_id: r for r in world.releases}
    async with db.sessions() as session:
        rows = (
            await session.execute(
                select(Delivery.guild_id, Delivery.release_id, Delivery.sent_at).where(Delivery.sent_at.is_not(None))
            )
        ).all()
        groups = (
            await session.execute(
                select(
                    MusicBrainzReleaseGroup.mbid,
                    MusicBrainzReleaseGroup.spotify_release_id,
                    MusicBrainzReleaseGroup.match_method,
                )
            )
        ).all()
        counts = await musicdata.signal_counts(session, today=end.date())
    first: dict[tuple[int, str], dt.datetime] = {}
    probe_runs = {p["run_id"] for p in probes if p["run_id"] is not None}
    by_probe = {(g, rid) for g, rid in await delivered_by(db, sorted(probe_runs)) if rid in by_id}
    for g, rid, sent in rows:
        if rid in by_id:
            sent = sent if sent.tzinfo else sent.replace(tzinfo=dt.UTC)
            first[(g, rid)] = min(sent, first.get((g, rid), sent))
    latency: dict[str, list[float]] = {"weekly": [], "release_day": [], "release_day_probed": []}
    for (g, rid), sent in first.items():
        appears = by_id[rid].appears_at
        assert appears is not None
        hours = (sent - appears).total_seconds() / 3600
        latency["release_day" if g in release_day_guilds else "weekly"].append(hours)
        if (g, rid) in by_probe:
            latency["release_day_probed"].append(hours)
    by_rg = {r.rg_mbid: r for r in world.releases}
    right = wrong = 0
    for mbid, spotify_id, method in groups:
        if method is not None:
            if by_rg[mbid].spotify_id == spotify_id:
                right += 1
            else:
                wrong += 1
    listed = [r for r in world.releases if r.appears_at is not None and r.appears_at <= end]
    mapped = [r for r in listed if world.artist(r.artist).mapped]
    kinds = collections.Counter(r.known for r in world.releases)
    return {
        "releases": len(world.releases),
        "known": dict(kinds),
        "postponed": sum(r.postponed for r in world.releases),
        "cancelled": sum(r.cancelled_at is not None for r in world.releases),
        "listed_on_spotify": len(listed),
        "expected_pairs": sum(len(followers.get(r.artist, ())) for r in listed),
        "mapped_listed": len(mapped),
        "mapped_listed_known": sum(r.known != "never" for r in mapped),
        "mapped_listed_ahead": sum(r.known == "ahead" for r in mapped),
        "latency_hours": {kind: _hours_stats(v) for kind, v in latency.items()},
        "release_day_guilds": sorted(release_day_guilds),
        "probes": {
            "made": len(probes),
            "requests": sum(p["requests"] for p in probes),
            "found": sum(p["found"] is not None for p in probes),
            "found_right": sum(p["found"] is not None and by_rg[p["mbid"]].spotify_id == p["found"] for p in probes),
            "release_groups": len({p["mbid"] for p in probes}),
            "by_number": dict(collections.Counter(p["probe"] for p in probes)),
            "found_by_number": dict(collections.Counter(p["probe"] for p in probes if p["found"] is not None)),
            "posted": sum(sum(p["posted"].values()) for p in probes),
        },
        "matches_right": right,
        "matches_wrong": wrong,
        "signal_counts": dataclasses.asdict(counts),
        "daily": daily,
        "musicbrainz_requests": music_requests["musicbrainz"],
        "listenbrainz_requests": music_requests["listenbrainz"],
    }


async def run_size(args: argparse.Namespace) -> dict:
    size, weeks, latency, conc = args.size, args.weeks, args.latency, args.concurrency
    rate_max: float | None = None
    rate_window = 1.0
    if args.rate_limit != "none":
        rate_max, rate_window = map(float, args.rate_limit.split("/"))
    rate = None if rate_max is None else rate_max / rate_window
    naive_mode = args.naive
    if naive_mode == "auto":
        naive_mode = "real" if size <= args.naive_real_max else "count"

    workdir = Path(tempfile.mkdtemp(prefix=f"release-bot-bench-{size}-"))
    logging.basicConfig(
        filename=workdir / "harness.log",
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    t_start = time.perf_counter()
    fingerprint = code_fingerprint()
    scenario = Scenario(size, args.seed, weeks)
    scenario.reset_live()
    followed = [aid for aid, _, _ in scenario.artists]
    followers: dict[str, list[int]] = collections.defaultdict(list)
    for gid, aids in scenario.follows.items():
        for aid in aids:
            followers[aid].append(gid)

    emulator = EmulatorProcess(
        [
            "--size",
            str(size),
            "--seed",
            args.seed,
            "--weeks",
            str(weeks),
            "--latency",
            str(latency),
            "--rate-limit",
            args.rate_limit,
            *(["--world", str(args.world)] if args.world is not None else []),
        ],
        workdir / "emulator.log",
    )
    info = await emulator.start()
    world: MusicWorld | None = world_of(scenario, args.world) if args.world is not None else None
    db_path = workdir / "bench.db"
    db_url = args.database_url or f"sqlite+aiosqlite:///{db_path}"
    db = await open_database(db_url)
    release_day_guilds = RELEASE_DAY_GUILDS if args.release_day else frozenset()
    await setup_store(db, scenario, run_time(0) - dt.timedelta(days=1), release_day_guilds)
    # The bot paces itself to the emulator's rolling limit, as a deployment sets
    # `rate_limit_per_30s` to Spotify's (the naive tracker does not pace).
    pace = int(rate_max * 30.0 / rate_window) if rate_max else 0
    # The bot runs in its own process holding only the bot (its peak RSS is the bot's own);
    # this process keeps the ground truth, reads the store between runs and runs the naive tracker.
    bot = ChildProcess(
        "benchmarks.bot_server",
        [
            "--database-url",
            db_url,
            "--api",
            info["api"],
            "--accounts",
            info["accounts"],
            "--client-id",
            info["client_id"],
            "--client-secret",
            info["client_secret"],
            "--concurrency",
            str(conc),
            "--pace",
            str(pace),
            "--guilds",
            ",".join(map(str, GUILDS)),
            "--recheck-share",
            str(args.recheck_share),
            "--log",
            str(workdir / "bot.log"),
            *(["--tracemalloc", str(args.tracemalloc)] if args.tracemalloc else []),
            *(["--musicbrainz", info["musicbrainz"], "--listenbrainz", info["listenbrainz"]] if args.signal else []),
            *(["--release-day"] if args.release_day else []),
            *(["--metrics-port", "0"] if args.metrics else []),
        ],
        workdir / "bot_server.log",
    )
    bot_info = await bot.start()
    scraper = Scraper(bot_info["metrics_port"], args.scrape_seconds) if args.metrics else None
    if scraper is not None:
        scraper.start()
    naive_client = spotify_client(  # the bot's client, unpaced (the naive tracker does not pace)
        SpotifySettings(
            client_id=info["client_id"],
            client_secret=info["client_secret"],
            api_base_url=info["api"],
            accounts_base_url=info["accounts"],
            rate_limit_per_30s=0,
        )
    )
    dups_before = 0
    naive_snapshot: dict[str, set[str]] = {}
    rows: list[dict] = []
    expected_before: set[tuple[int, str]] = set()  # expected pairs of earlier weeks (for "late")
    delivered_all: set[tuple[int, str]] = set()
    # Recall within the re-check bound: when each expected pair appeared and was first announced,
    # and when its release was taken down again (a release removed before any check could see it
    # was never observable). Settle weeks (no changes) after the scenario give the last weeks'
    # releases their whole bound.
    bound_runs = math.ceil(1 / args.recheck_share) if args.recheck_share > 0 else 0
    settle = args.settle_weeks if args.settle_weeks is not None else bound_runs
    appeared: dict[tuple[int, str], int] = {}
    announced: dict[tuple[int, str], int] = {}
    removed_at: dict[str, int] = {}
    daily: list[dict[str, Any]] = []  # the signal's daily reports, one per simulated day
    music_requests: collections.Counter[str] = (
        collections.Counter()
    )  # MusicBrainz / ListenBrainz requests the emulators logged
    pending: list[tuple[dt.datetime, str]] = []  # the simulated days' steps not made yet, in time order
    probes: list[dict[str, Any]] = []  # every release-day probe made (the bot's replies, with "at")
    probes_since: list[dict[str, Any]] = []  # those since the last weekly run

    def count_music(stats: dict) -> None:
        music_requests["musicbrainz"] += stats.get("musicbrainz_requests", 0)
        music_requests["listenbrainz"] += stats.get("listenbrainz_requests", 0)

    async def simulate_until(until: dt.datetime) -> None:
        """Make the pending day steps at or before ``until`` in time order, then advance the world to ``until``."""
        pending.sort(key=lambda step: step[0])
        while pending and pending[0][0] <= until:
            when, step = pending.pop(0)
            if step == "advance":
                await emulator.cmd("advance", to=when.isoformat())
            elif step == "daily":
                reply = await bot.cmd("daily", when=when.isoformat())
                daily.append({"day": when.date().isoformat(), "wall": reply["wall"], **(reply["report"] or {})})
            elif step == "release_day":
                await emulator.cmd("advance", to=when.isoformat())
                reply = await bot.cmd("release_day", when=when.isoformat())
                made = [{**p, "at": when.isoformat()} for p in reply["probes"]]
                probes.extend(made)
                probes_since.extend(made)
        await emulator.cmd("advance", to=until.isoformat())

    try:
        if world is not None:
            pending.extend(day_steps(args, START))
            await simulate_until(run_time(0))
        for k in range(weeks + settle + 1):
            row: dict[str, Any] = {"week": k, "settle": k > weeks}
            expected_pairs: set[tuple[int, str]] = set()
            week: Week | None = None  # set for the weeks 1..weeks, None for week 0 and the settle runs
            L_gt = None
            if k > 0 and world is not None:  # the simulated days before the run
                for d in range(7 * (k - 1) + 1, 7 * k + 1):
                    pending.extend(day_steps(args, START + dt.timedelta(days=d)))
                await simulate_until(run_time(k))
            appearing = world.appeared(run_time(k - 1), run_time(k)) if world is not None and k > 0 else []
            if k > weeks and not appearing:
                L_gt = len(followed)  # no change: one probe per artist
                row["L_gt"] = L_gt
            elif k > 0:
                week = scenario.week_list[k - 1] if k <= weeks else Week(k)
                changed = {a for s in week.adds for a in s.artists if a in followers}
                changed |= {a for rid in week.removes for a in scenario.albums[rid].artists if a in followers}
                changed |= {r.artist for r in appearing}
                old = {a: group_lists(scenario, a) for a in changed}
                if k <= weeks:
                    await emulator.cmd("week", k=k)
                for r in appearing:
                    spec = world_spec(scenario, r)
                    week.adds.append(spec)
                    week.expected.append(spec.id)
                    week.kinds["world"] = week.kinds.get("world", 0) + 1
                scenario.apply_week(week)
                extra = sum(extra_pages(old[a], group_lists(scenario, a)) for a in changed)
                albums = sum(1 for rid in week.expected if needs_tracks(scenario.albums[rid]))
                L_gt = len(followed) + extra + albums
                row.update(
                    L_gt=L_gt,
                    L_gt_extra_pages=extra,
                    L_gt_album_requests=albums,
                    changed_artists=len(changed),
                    injected=len(week.expected),
                    kinds=week.kinds,
                    backcat=len(week.backcat),
                    removals=len(week.removes),
                )
                for rid in week.expected:
                    for a in scenario.albums[rid].artists:
                        for g in followers.get(a, ()):
                            expected_pairs.add((g, rid))
                for rid in week.removes:
                    removed_at.setdefault(rid, k)
                for pair in expected_pairs:
                    appeared.setdefault(pair, k)
            await emulator.cmd("reset_window")
            between = await emulator.cmd("stats")  # since the previous run's: the probes' Spotify requests
            count_music(between)
            row.update(
                between_runs_requests=between["requests"],
                probes=len(probes_since),
                probe_requests=sum(p["requests"] for p in probes_since),
                probes_found=sum(p["found"] is not None for p in probes_since),
            )
            probe_runs = [await read_run(db, p["run_id"]) for p in probes_since if p["run_id"] is not None]
            probe_endpoints: collections.Counter[str] = collections.Counter()
            for probe_run in probe_runs:
                probe_endpoints.update(probe_run["metrics"].get("requests_by_endpoint") or {})
            row["probe_requests_by_endpoint"] = dict(probe_endpoints)
            probe_posted = set().union(*(probe_run["delivered"] for probe_run in probe_runs))
            probes_since.clear()
            whole_before = await exact_checked(db)
            summary = await bot.cmd("run", when=run_time(k).isoformat())
            wall = summary["wall"]
            stats = await emulator.cmd("stats")
            count_music(stats)
            run = await read_run(db, summary["run_id"])
            metrics = run["metrics"]
            if summary.get("metrics"):
                metrics = {**summary["metrics"], **metrics}
            requests = summary["spotify_requests"]
            if k > 0:  # L_B from ground truth: L + the re-check's term (docs/tracking.md, "L_B")
                rc = recheck_lower_bound(
                    scenario, followed, whole_before, await exact_checked(db), run_time(k), args.recheck_share
                )
                row.update(
                    LB_gt=L_gt + rc["term"],
                    req_over_LB_gt=requests / (L_gt + rc["term"]),
                    recheck_even_gt=rc["even"],
                    recheck_largest_gt=rc["largest"],
                    recheck_overdue_gt=rc["overdue"],
                    recheck_pages_gt=rc["pages"],
                    recheck_read_gt=rc["read"],
                )
            LB_bot = metrics.get("lower_bound_recheck")
            row.update(LB_bot=LB_bot, req_over_LB_bot=metrics.get("requests_over_lb"))
            L_bot = metrics.get("lower_bound")
            L = L_bot if isinstance(L_bot, (int, float)) and L_bot > 0 else L_gt
            bound = max(requests * latency / conc, requests / rate if rate else 0.0)
            got = run["delivered"] | probe_posted  # a pair a probe posted before this run: announced by it
            row["posted_by_probes"] = len(probe_posted)
            delivered_all |= got
            for pair in got:
                announced.setdefault(pair, k)
            row.update(
                run_id=summary["run_id"],
                status=summary["status"],
                trigger="schedule",
                artists_due=summary["artists_due"],
                artists_checked=summary["artists_checked"],
                requests=requests,
                emulator_requests=stats["requests"],
                by_kind=stats["by_kind"],
                requests_by_endpoint=metrics.get("requests_by_endpoint") or summary["requests_by_endpoint"],
                L_bot=L_bot,
                L=L,
                L_source=("bot" if L is L_bot and L_bot is not None else "harness" if L else None),
                req_over_L=(requests / L if L else None),
                wall=wall,
                bound=bound,
                wall_over_bound=(wall / bound if bound else None),
                http_429=stats["by_status"].get("429", 0) + stats["by_status"].get(429, 0),
                rate_limited_bot=metrics.get("rate_limited"),
                pages_skipped=metrics.get("pages_skipped"),
                phase_seconds=metrics.get("phase_seconds"),
                db_seconds=summary["db_seconds"],
                sqlite_seconds=summary["sqlite_seconds"],
                db_ops=summary["db_ops"],
                db_by_kind=summary["db_by_kind"],
                rss_mb=summary["rss_mb"],
                db_mb=await database_size_mb(db),
                posted=summary["releases_posted"],
                found=summary["releases_found"],
                messages=summary["messages"],
                duplicates=summary["duplicates_total"] - dups_before,
                duplicates_total=summary["duplicates_total"],
                failed_artists=summary["failed_artists"],
                error=summary["error"],
            )
            if week is not None:
                hit = expected_pairs & got
                row.update(
                    expected_pairs=len(expected_pairs),
                    recall=(len(hit) / len(expected_pairs) if expected_pairs else 1.0),
                    missed=sorted({r for _, r in expected_pairs - got})[:50],
                    missed_kinds=dict(
                        collections.Counter(scenario.albums[r].kind for r in {r for _, r in expected_pairs - got})
                    ),
                    late=len(got & expected_before),
                    unexpected_posts=len(
                        {
                            p
                            for p in got
                            if p not in expected_pairs and p not in expected_before and p[1] not in set(week.backcat)
                        }
                    ),
                    backcat_posted=len({p for p in got if p[1] in set(week.backcat)}),
                    backcat_linked=len(await linked_ids(db, week.backcat)),
                )
                expected_before |= expected_pairs
            # The naive tracker, same scenario state, after the bot's run.
            naive_count = sum(pages(scenario.total_all_groups(a)) for a in followed)
            row["naive_requests_counted"] = naive_count
            if naive_mode == "real":
                await emulator.cmd("reset_window")
                n_before = naive_client.request_count
                t1 = time.perf_counter()
                new, failed = await naive_run(naive_client, followed, conc, naive_snapshot)
                row["naive_wall"] = time.perf_counter() - t1
                row["naive_requests"] = naive_client.request_count - n_before
                row["naive_failed"] = failed
                nstats = await emulator.cmd("stats")
                count_music(nstats)
                row["naive_429"] = nstats["by_status"].get("429", 0)
                if week is not None:
                    exp = set(week.expected)
                    row["naive_recall"] = len(exp & new) / len(exp) if exp else 1.0
            else:
                row["naive_requests"] = naive_count
            rows.append(row)
            dups_before = summary["duplicates_total"]
            row["recheck_requests"] = metrics.get("recheck_requests", 0)
            row["rechecked"] = metrics.get("rechecked", 0)
            print(
                f"[{size}] week {k:2d}: {requests} req (L={L}), wall {wall:.1f}s (bound {bound:.1f}s), "
                f"429s {row['http_429']}, recall {row.get('recall', '-')}, dup {row['duplicates']}, "
                f"naive {row['naive_requests']}, db {row['db_seconds']:.2f}s/sqlite {row['sqlite_seconds']:.2f}s, "
                f"bot rss {row['rss_mb']:.0f}MB",
                flush=True,
            )
        world_result = (
            await world_figures(
                db, world, followers, daily, music_requests, run_time(weeks + settle), release_day_guilds, probes
            )
            if world is not None
            else None
        )
    finally:
        if scraper is not None:
            await scraper.stop()
        await bot.stop()
        await naive_client.close()
        await db.close()
        final = await emulator.cmd("stats") if emulator.proc and emulator.proc.returncode is None else {}
        await emulator.stop()
    # Each expected pair: announced in the run right after it appeared, within the bound, or not;
    # pairs whose release was taken down before the end of its bound window are "unobservable".
    within = same = unobservable = 0
    late_runs: list[int] = []
    never: list[tuple[int, str]] = []
    for pair, k in appeared.items():
        gone = removed_at.get(pair[1])
        at = announced.get(pair)
        if at is not None and at == k:
            same += 1
        if at is not None and at - k <= bound_runs:
            within += 1
            if at > k:
                late_runs.append(at - k)
        elif gone is not None and gone <= k + bound_runs:
            unobservable += 1
        else:
            never.append(pair)
    observable = len(appeared) - unobservable
    recall_bound = {
        "bound_runs": bound_runs,
        "settle_weeks": settle,
        "recheck_share": args.recheck_share,
        "expected_pairs": len(appeared),
        "same_run": same,
        "within_bound": within,
        "unobservable": unobservable,
        "recall_same_run": same / len(appeared) if appeared else 1.0,
        "recall_within_bound": within / observable if observable else 1.0,
        "late_runs": sorted(late_runs),
        "never": [list(p) for p in never[:50]],
        "never_kinds": dict(collections.Counter(scenario.albums[r].kind for _, r in never)),
    }
    return {
        "world": world_result,
        "signal": args.signal,
        "release_day": args.release_day,
        "recall_bound": recall_bound,
        "size": size,
        "weeks": weeks,
        "latency": latency,
        "rate_limit": args.rate_limit,
        "concurrency": conc,
        "seed": args.seed,
        "naive_mode": naive_mode,
        "rows": rows,
        "artists": len(followed),
        "catalogue_releases": len(scenario.catalogue),
        "guild_follows": {g: len(a) for g, a in scenario.follows.items()},
        "emulator_build_seconds": info.get("build_seconds"),
        "emulator_rss_mb": final.get("rss_mb"),
        "bot_idle_rss_mb": bot_info.get("rss_mb"),
        "metrics": None if scraper is None else scraper.figures(),
        "harness_rss_mb": round(peak_rss_mb(), 1),
        "total_seconds": time.perf_counter() - t_start,
        "code_fingerprint": fingerprint,
        "workdir": str(workdir),
    }


class Scraper:
    """Scrapes the bot's ``/metrics`` every ``interval`` seconds while the benchmark runs, as Prometheus
    would (``--metrics``): counts the scrapes and times them, so the endpoint's cost is in the bot's figures."""

    def __init__(self, port: int, interval: float) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.interval = interval
        self.seconds: list[float] = []
        self.failed = 0
        self.last_bytes = 0
        self.last_samples = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        async with aiohttp.ClientSession() as http:
            while True:
                t0 = time.perf_counter()
                try:
                    async with http.get(self.url, timeout=aiohttp.ClientTimeout(total=30)) as resp:
                        body = await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"/metrics answered {resp.status}")
                    self.seconds.append(time.perf_counter() - t0)
                    self.last_bytes = len(body)
                    self.last_samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
                except (aiohttp.ClientError, TimeoutError, RuntimeError):
                    self.failed += 1
                await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def figures(self) -> dict[str, Any]:
        """``scrapes``, ``failed``, ``interval``, mean and max seconds per scrape, the last body's bytes and samples."""
        return {
            "scrapes": len(self.seconds),
            "failed": self.failed,
            "interval": self.interval,
            "mean_seconds": sum(self.seconds) / len(self.seconds) if self.seconds else None,
            "max_seconds": max(self.seconds, default=None),
            "last_bytes": self.last_bytes,
            "last_samples": self.last_samples,
        }


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--weeks", type=int, default=12)
    ap.add_argument("--seed", default="bench")
    ap.add_argument("--latency", type=float, default=0.03)
    ap.add_argument("--rate-limit", default="9000/30")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--naive", choices=("auto", "real", "count"), default="auto")
    ap.add_argument("--naive-real-max", type=int, default=1000)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--database-url",
        default=None,
        help="SQLAlchemy URL of an empty or migrated database (default: a SQLite file in the work folder)",
    )
    ap.add_argument(
        "--recheck-share",
        type=float,
        default=0.125,
        help="the bot's tracking.recheck_share (rotating exact re-check; 0 = off)",
    )
    ap.add_argument(
        "--settle-weeks",
        type=int,
        default=None,
        help="runs with no catalogue change after the scenario's weeks, so every release gets its "
        "whole re-check bound (default: ceil(1 / recheck share))",
    )
    ap.add_argument(
        "--world",
        type=float,
        default=None,
        metavar="RATE",
        help="add the music world (fakes/music_world.py) with RATE releases per artist and week, and simulate every day",
    )
    ap.add_argument(
        "--signal", action="store_true", help="run the free signal's daily job each simulated day (needs --world)"
    )
    ap.add_argument(
        "--release-day",
        action="store_true",
        help="release-day posting for the guilds RELEASE_DAY_GUILDS: the bot makes the probes due at each "
        "of the day's probe times (needs --world; probes find something only with --signal)",
    )
    ap.add_argument(
        "--metrics",
        action="store_true",
        help="the bot serves /metrics ([http] port, bot/ops) and the harness scrapes it every --scrape-seconds",
    )
    ap.add_argument("--scrape-seconds", type=float, default=1.0, help="with --metrics: seconds between two scrapes")
    ap.add_argument(
        "--tracemalloc",
        type=Path,
        default=None,
        metavar="DIR",
        help="profiling only: the bot process traces its memory per run into DIR (slower runs)",
    )
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if (args.signal or args.release_day) and args.world is None:
        parser().error("--signal and --release-day need --world")
    result = asyncio.run(run_size(args))
    args.out.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
