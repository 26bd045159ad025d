"""One benchmark size, end to end: the real bot path against the emulator process, plus the naive tracker.

``python -m benchmarks.harness --size 1000 --weeks 12 --out result.json`` (normally started by
``benchmarks.run``, one process per size so that each size's peak RSS is its own).

The bot side is the public path: a real :class:`bot.runner.Runner` with a real
:class:`bot.tracking.Tracker`, :class:`bot.spotify.client.SpotifyClient` and
:class:`bot.delivery.Deliverer` (a counting sender instead of Discord), on SQLite in a temp
dir, three guilds following the scenario's artists. Whatever the tracker does when this
runs is what gets measured. Metrics the tracker records (``Run.metrics``) are read when
present; everything else is measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import inspect
import json
import logging
import math
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from benchmarks.scenario import GROUPS, PAGE, Scenario, pages, run_time
from bot.delivery.deliverer import Deliverer
from bot.tracking.labels import Labeler
from bot.runner import Runner
from bot.spotify.client import SpotifyClient
from bot.tracking.tracker import Tracker
from storage import queries
from storage.db import open_database
from storage.models import ArtistRelease, Delivery, Run

ALL_GROUPS = ("album", "single", "compilation", "appears_on")
GUILDS = {1: 9001, 2: 9002, 3: 9003}  # guild id -> channel id
ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- measuring
class DbTimer:
    """Wall time during which at least one SQLite operation (execute/executemany/commit/rollback) is in flight.

    Installed by wrapping the aiosqlite DBAPI adapter's methods in this process (no change
    to ``storage``). Overlapping operations are counted once (union of intervals), so the
    figure is "seconds of the run's wall time spent waiting on the database". ``ops`` counts
    operations.
    """

    def __init__(self) -> None:
        self.busy = 0.0
        self.sqlite = 0.0  # seconds spent inside sqlite3 calls in aiosqlite's worker threads
        self.ops = 0
        self._inflight = 0
        self._since = 0.0
        self._lock = threading.Lock()

    def reset(self) -> None:
        self.busy, self.sqlite, self.ops = 0.0, 0.0, 0

    def _enter(self) -> None:
        if self._inflight == 0:
            self._since = time.perf_counter()
        self._inflight += 1
        self.ops += 1

    def _exit(self) -> None:
        self._inflight -= 1
        if self._inflight == 0:
            self.busy += time.perf_counter() - self._since

    def install(self) -> None:
        from sqlalchemy.dialects.sqlite import aiosqlite as adapter

        timer = self

        def wrap(cls, name):
            original = getattr(cls, name)

            def timed(self, *args, **kwargs):
                timer._enter()
                try:
                    return original(self, *args, **kwargs)
                finally:
                    timer._exit()

            setattr(cls, name, timed)

        for name in ("execute", "executemany"):
            wrap(adapter.AsyncAdapt_aiosqlite_cursor, name)
            wrap(adapter.AsyncAdapt_aiosqlite_ss_cursor, name)
        for name in ("commit", "rollback"):
            wrap(adapter.AsyncAdapt_aiosqlite_connection, name)

        import aiosqlite.core

        original_execute = aiosqlite.core.Connection._execute

        async def _execute(self, fn, *args, **kwargs):
            def in_thread(*a, **k):
                t = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    with timer._lock:
                        timer.sqlite += time.perf_counter() - t

            return await original_execute(self, in_thread, *args, **kwargs)

        aiosqlite.core.Connection._execute = _execute


def reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class CountingSender:
    """A ``Sender`` that only counts: messages, embeds and (channel, release) sends for duplicates."""

    def __init__(self) -> None:
        self.messages = 0
        self.sent: collections.Counter[tuple[int, str]] = collections.Counter()
        self._next = 10_000

    async def send(self, channel_id: int, embeds: list[dict], *, nonce: str) -> int:
        assert 1 <= len(embeds) <= 10 and len(nonce) <= 25
        self.messages += 1
        for embed in embeds:
            url = embed.get("url") or ""
            self.sent[(channel_id, url.rsplit("/", 1)[-1])] += 1
        self._next += 1
        return self._next

    def duplicates(self) -> int:
        return sum(n - 1 for n in self.sent.values() if n > 1)


class SimClock:
    """Simulated UTC time: the week's run time plus the real time elapsed since :meth:`set`."""

    def __init__(self) -> None:
        self._base = run_time(0)
        self._t0 = time.monotonic()

    def set(self, when: dt.datetime) -> None:
        self._base, self._t0 = when, time.monotonic()

    def __call__(self) -> dt.datetime:
        return self._base + dt.timedelta(seconds=time.monotonic() - self._t0)


class EmulatorProcess:
    """``benchmarks.emulator_server`` as a child process, spoken to by JSON lines."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.args, self.log_path = args, log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.info: dict = {}

    async def start(self) -> dict:
        self._log = open(self.log_path, "ab")
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.emulator_server", *self.args, cwd=str(ROOT), env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=self._log, limit=2**20)
        self.info = await self._read()
        return self.info

    async def _read(self) -> dict:
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"emulator server exited; see {self.log_path}")
        return json.loads(line)

    async def cmd(self, cmd: str, **kw: Any) -> dict:
        self.proc.stdin.write((json.dumps({"cmd": cmd, **kw}) + "\n").encode())
        await self.proc.stdin.drain()
        return await self._read()

    async def stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.cmd("quit"), 10)
                await asyncio.wait_for(self.proc.wait(), 10)
            except Exception:
                self.proc.kill()
                await self.proc.wait()
        self._log.close()


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


def needs_tracks(spec) -> bool:
    """An album or compilation announced as new needs its track list (carried singles, deluxe check)."""
    return spec.album_type in ("album", "compilation") and spec.kind != "twin_clean"


# ----------------------------------------------------------------------------- naive tracker
async def naive_run(client: SpotifyClient, artist_ids: list[str], concurrency: int,
                    snapshot: dict[str, set[str]]) -> tuple[set[str], int]:
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
                page = await client.artist_albums(aid, include_groups=ALL_GROUPS, limit=PAGE)
                while True:
                    for album in page.items:
                        if any(a.id == aid for a in album.artists):
                            seen.add(album.id)
                    if not page.next:
                        break
                    page = await client.artist_albums_next(page)
            except Exception:
                failed += 1
                return
        if aid in snapshot:
            new.update(seen - snapshot[aid])
        snapshot[aid] = seen

    await asyncio.gather(*(one(a) for a in artist_ids))
    return new, failed


# ----------------------------------------------------------------------------- the run
def _build(cls, *args, **kwargs):
    """Construct ``cls`` with only the keyword arguments its signature accepts."""
    params = inspect.signature(cls).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return cls(*args, **kwargs)


async def setup_store(db, scenario: Scenario, followed_at: dt.datetime) -> None:
    names = {aid: name for aid, name, _ in scenario.artists}
    async with db.sessions() as session:
        for gid, channel in GUILDS.items():
            guild = await queries.get_or_create_guild(session, gid, now=followed_at)
            guild.channel_id = channel
        await session.flush()
        from storage.models import Artist, Follow

        session.add_all([Artist(id=aid, name=names[aid], group_state={}) for aid in names])
        await session.flush()
        session.add_all([Follow(guild_id=gid, artist_id=aid, followed_at=followed_at)
                         for gid, aids in scenario.follows.items() for aid in aids])
        await session.commit()


async def read_run(db, run_id: int) -> dict:
    async with db.sessions() as session:
        run = await session.get(Run, run_id)
        metrics = getattr(run, "metrics", None) or {}
        delivered = (await session.execute(
            select(Delivery.guild_id, Delivery.release_id).where(Delivery.run_id == run_id))).all()
    return {"metrics": dict(metrics), "delivered": {(g, r) for g, r in delivered}, "status": run.status}


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


async def run_size(args: argparse.Namespace) -> dict:
    size, weeks, latency, conc = args.size, args.weeks, args.latency, args.concurrency
    rate_max, rate_window = (None, None) if args.rate_limit == "none" else map(float, args.rate_limit.split("/"))
    rate = None if rate_max is None else rate_max / rate_window
    naive_mode = args.naive
    if naive_mode == "auto":
        naive_mode = "real" if size <= args.naive_real_max else "count"

    workdir = Path(tempfile.mkdtemp(prefix=f"release-bot-bench-{size}-"))
    logging.basicConfig(filename=workdir / "bot.log", level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    t_start = time.perf_counter()
    fingerprint = code_fingerprint()
    scenario = Scenario(size, args.seed, weeks)
    scenario.reset_live()
    followed = [aid for aid, _, _ in scenario.artists]
    followers: dict[str, list[int]] = collections.defaultdict(list)
    for gid, aids in scenario.follows.items():
        for aid in aids:
            followers[aid].append(gid)

    emulator = EmulatorProcess(["--size", str(size), "--seed", args.seed, "--weeks", str(weeks),
                                "--latency", str(latency), "--rate-limit", args.rate_limit], workdir / "emulator.log")
    info = await emulator.start()
    timer = DbTimer()
    timer.install()
    db_path = workdir / "bench.db"
    db = await open_database(args.database_url or f"sqlite+aiosqlite:///{db_path}")
    clock = SimClock()
    await setup_store(db, scenario, run_time(0) - dt.timedelta(days=1))
    client_kw = dict(client_id=info["client_id"], client_secret=info["client_secret"], api_base_url=info["api"],
                     accounts_base_url=info["accounts"])
    # The bot paces itself to the emulator's rolling limit, as a deployment sets
    # `rate_limit_per_30s` to Spotify's (the naive tracker does not pace).
    pace = int(rate_max * 30.0 / rate_window) if rate_max else 0
    client = SpotifyClient(**client_kw, rate_limit_per_30s=pace)
    naive_client = SpotifyClient(**client_kw)
    sender = CountingSender()
    tracker = _build(Tracker, db, client, clock=clock, concurrency=conc)
    deliverer = Deliverer(db, sender, clock=clock)
    runner = Runner(db, tracker, deliverer, clock=clock, labeler=Labeler(db, client, clock=clock))
    naive_snapshot: dict[str, set[str]] = {}
    rows: list[dict] = []
    expected_before: set[tuple[int, str]] = set()  # expected pairs of earlier weeks (for "late")
    delivered_all: set[tuple[int, str]] = set()
    try:
        for k in range(0, weeks + 1):
            row: dict[str, Any] = {"week": k}
            expected_pairs: set[tuple[int, str]] = set()
            week = None
            L_gt = None
            if k > 0:
                week = scenario.week_list[k - 1]
                changed = {a for s in week.adds for a in s.artists if a in followers}
                changed |= {a for rid in week.removes for a in scenario.albums[rid].artists if a in followers}
                old = {a: group_lists(scenario, a) for a in changed}
                await emulator.cmd("week", k=k)
                scenario.apply_week(week)
                extra = sum(extra_pages(old[a], group_lists(scenario, a)) for a in changed)
                albums = sum(1 for rid in week.expected if needs_tracks(scenario.albums[rid]))
                L_gt = len(followed) + extra + albums
                row.update(L_gt=L_gt, L_gt_extra_pages=extra, L_gt_album_requests=albums,
                           changed_artists=len(changed), injected=len(week.expected), kinds=week.kinds,
                           backcat=len(week.backcat), removals=len(week.removes))
                for rid in week.expected:
                    for a in scenario.albums[rid].artists:
                        for g in followers.get(a, ()):
                            expected_pairs.add((g, rid))
            await emulator.cmd("reset_window")
            await emulator.cmd("stats")
            reset_peak_rss()
            timer.reset()
            clock.set(run_time(k))
            before_dups = sender.duplicates()
            t0 = time.perf_counter()
            summary = await runner.run("schedule", list(GUILDS))
            wall = time.perf_counter() - t0
            stats = await emulator.cmd("stats")
            run = await read_run(db, summary.run_id)
            metrics = run["metrics"]
            summary_metrics = getattr(summary, "metrics", None)
            if isinstance(summary_metrics, dict) and summary_metrics:
                metrics = {**summary_metrics, **metrics}
            requests = summary.spotify_requests
            L_bot = metrics.get("lower_bound")
            L = L_bot if isinstance(L_bot, (int, float)) and L_bot > 0 else L_gt
            bound = max(requests * latency / conc, requests / rate if rate else 0.0)
            got = run["delivered"]
            delivered_all |= got
            row.update(
                run_id=summary.run_id, status=summary.status, trigger="schedule",
                artists_due=summary.artists_due, artists_checked=summary.artists_checked,
                requests=requests, emulator_requests=stats["requests"], by_kind=stats["by_kind"],
                requests_by_endpoint=metrics.get("requests_by_endpoint") or dict(getattr(client, "requests_by_endpoint", {})),
                L_bot=L_bot, L=L, L_source=("bot" if L is L_bot and L_bot is not None else "harness" if L else None),
                req_over_L=(requests / L if L else None),
                wall=wall, bound=bound, wall_over_bound=(wall / bound if bound else None),
                http_429=stats["by_status"].get("429", 0) + stats["by_status"].get(429, 0),
                rate_limited_bot=metrics.get("rate_limited"), pages_skipped=metrics.get("pages_skipped"),
                phase_seconds=metrics.get("phase_seconds"),
                db_seconds=timer.busy, sqlite_seconds=timer.sqlite, db_ops=timer.ops, rss_mb=peak_rss_mb(), db_mb=await database_size_mb(db),
                posted=summary.releases_posted, found=summary.releases_found, messages=sender.messages,
                duplicates=sender.duplicates() - before_dups, duplicates_total=sender.duplicates(),
                failed_artists=len(summary.failed_artists), error=summary.error,
            )
            if k > 0:
                hit = expected_pairs & got
                row.update(
                    expected_pairs=len(expected_pairs), recall=(len(hit) / len(expected_pairs) if expected_pairs else 1.0),
                    missed=sorted({r for _, r in expected_pairs - got})[:50],
                    missed_kinds=dict(collections.Counter(scenario.albums[r].kind for r in {r for _, r in expected_pairs - got})),
                    late=len(got & expected_before),
                    unexpected_posts=len({p for p in got if p not in expected_pairs and p not in expected_before
                                           and p[1] not in set(week.backcat)}),
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
                row["naive_429"] = nstats["by_status"].get("429", 0)
                if k > 0:
                    exp = set(week.expected)
                    row["naive_recall"] = len(exp & new) / len(exp) if exp else 1.0
            else:
                row["naive_requests"] = naive_count
            rows.append(row)
            print(f"[{size}] week {k:2d}: {requests} req (L={L}), wall {wall:.1f}s (bound {bound:.1f}s), "
                  f"429s {row['http_429']}, recall {row.get('recall', '-')}, dup {row['duplicates']}, "
                  f"naive {row['naive_requests']}, db {timer.busy:.2f}s/sqlite {timer.sqlite:.2f}s, rss {row['rss_mb']:.0f}MB", flush=True)
    finally:
        await client.close()
        await naive_client.close()
        await db.close()
        final = await emulator.cmd("stats") if emulator.proc and emulator.proc.returncode is None else {}
        await emulator.stop()
    return {
        "size": size, "weeks": weeks, "latency": latency, "rate_limit": args.rate_limit, "concurrency": conc,
        "seed": args.seed, "naive_mode": naive_mode, "rows": rows, "artists": len(followed),
        "catalogue_releases": len(scenario.catalogue), "guild_follows": {g: len(a) for g, a in scenario.follows.items()},
        "emulator_build_seconds": info.get("build_seconds"), "emulator_rss_mb": final.get("rss_mb"),
        "total_seconds": time.perf_counter() - t_start, "code_fingerprint": fingerprint, "workdir": str(workdir),
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
    ap.add_argument("--database-url", default=None,
                    help="SQLAlchemy URL of an empty or migrated database (default: a SQLite file in the work folder)")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    result = asyncio.run(run_size(args))
    args.out.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
