"""The bot side of a benchmark size, in its own process: only what a deployment would hold.

Run by the harness (``benchmarks/harness.py``) so that the bot's peak RSS is measured in a
process holding nothing but the bot — the harness keeps the scenario's ground truth
(≈ 100 MB at 10,000 artists) and the naive tracker, the emulator runs in a third process::

    python -m benchmarks.bot_server --db /tmp/x/bench.db --api URL --accounts URL \
        --client-id ID --client-secret SECRET --concurrency 16 --pace 9000 --guilds 1,2,3

The store must exist already (the harness creates and fills it: guilds, artists, follows).
This process opens it and builds the bot as every process does (:func:`bot.wiring.build_core`:
the coordinator, the ``SpotifyClient`` with its hooks, ``Tracker``, ``Labeler``, a ``Deliverer``
with a counting sender, the ``Runner``) on a simulated clock, prints one JSON line
``{"ready": true, "rss_mb"}`` and then answers one JSON command per stdin line with one JSON
line on stdout:

* ``{"cmd": "run", "when": ISO-8601 UTC}`` — peak RSS and the database timer are reset,
  the clock is set to ``when`` and ``Runner.run("schedule", guilds)`` runs (the harness names the
  guilds: they are not leased as a due scan leases them, so their due times are left alone and the
  runner logs that it holds no lease of them — one warning per guild and run in ``--log``). Reply: the
  run's summary fields, ``wall`` (s), ``db_seconds`` / ``sqlite_seconds`` / ``db_ops``
  (:class:`DbTimer`), ``rss_mb`` (this process's ``VmHWM`` since the reset, MB),
  ``messages`` / ``duplicates_total`` (the counting sender) and ``requests_by_endpoint``.
* ``{"cmd": "run", "when": …, "due": true}`` — for several bot processes on one PostgreSQL
  (``benchmarks/processes.py``, each with its ``--owner``): ``Runner.run_due`` until this process finds no due
  guild left to lease; the reply adds ``runs``, ``guilds`` (guild ids it ran), ``checked``
  (artist ids it fetched) and ``sent`` (``"channel:release"`` per message embed).
* ``{"cmd": "beat", "when": …}`` — a heartbeat at that simulated time (the
  harness beats every process before a run, so each sees the others alive and takes its share).
* ``{"cmd": "daily", "when": ISO-8601 UTC}`` — with ``--musicbrainz``/``--listenbrainz``: the clock is
  set to ``when`` and the free signal's daily job runs (``MusicSignal.run_daily``, as
  ``cogs/musicdata.py`` runs it). Its MusicBrainz pacing (one request a second, shared through the
  store) waits on the simulated clock (the wait advances it instead of sleeping), so a day's job
  takes no real second per request; the requests are the job's own. Reply: the
  ``DailyReport`` fields (``null`` when the day was done already) and ``wall`` (s).
* ``{"cmd": "release_day", "when": ISO-8601 UTC}`` — with ``--release-day``: the clock is set to ``when``
  and the release-day prober (``Core.release_day``, :class:`bot.scheduling.release_day.ReleaseDayProber`,
  as ``build_core`` makes it for ``[musicbrainz] enabled``) scans until no probe is due at that time
  (a scan takes at most its batch of slots; the bot scans every ``[release_day] interval_seconds``).
  Reply: ``probes`` (per probe: ``mbid``, ``probe`` number, ``run_id``, ``requests``, ``found``,
  ``method``, ``posted`` guild id → announcements), ``requests`` (their Spotify requests) and ``wall`` (s).
* ``{"cmd": "quit"}``.

``--metrics-port N`` turns the operations endpoints on as ``[http] port`` does (``/metrics`` fed by the
components' hooks; 0 = any free port, given as ``metrics_port`` in the ready line), to measure their cost.

``--tracemalloc DIR`` (profiling only) writes each run's top allocation sites to
``DIR/run-<run id>.txt``; the run is then slower and its timings are not benchmark figures.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import datetime as dt
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Collection
from typing import Any

from bot.delivery.components import PostButtons
from bot.delivery.render import AllowedMentions
from bot.delivery.sending import Destination
from bot.ops.http import ops_server
from bot.ops.metrics import Metrics
from bot.settings import (
    DatabaseSettings,
    HttpSettings,
    MusicBrainzSettings,
    Settings,
    SpotifySettings,
    TrackingSettings,
)
from bot.wiring import build_core, music_clients, music_signal


class DbTimer:
    """Wall time during which at least one database operation (execute/executemany/commit/rollback) is in flight.

    Installed by wrapping the aiosqlite and asyncpg DBAPI adapters' methods in this process (no change
    to ``storage``). Overlapping operations are counted once (union of intervals), so the
    figure is "seconds of the run's wall time spent waiting on the database". ``ops`` counts
    operations; ``sqlite`` sums the seconds spent inside sqlite3 calls in aiosqlite's worker
    threads (0 on PostgreSQL, whose work happens in the server); ``by_kind`` (``{"insert"|"select"|"update"|"commit"|…: [count, in-flight s]}``)
    splits the operations by statement kind (first SQL keyword), each interval timed whole.
    """

    def __init__(self) -> None:
        self.busy = 0.0
        self.sqlite = 0.0
        self.ops = 0
        self.by_kind: dict[str, list[float]] = {}
        self._inflight = 0
        self._since = 0.0
        self._lock = threading.Lock()

    def reset(self) -> None:
        self.busy, self.sqlite, self.ops = 0.0, 0.0, 0
        self.by_kind = {}

    def _enter(self) -> float:
        t = time.perf_counter()
        if self._inflight == 0:
            self._since = t
        self._inflight += 1
        self.ops += 1
        return t

    def _exit(self, kind: str, t: float) -> None:
        now = time.perf_counter()
        self._inflight -= 1
        if self._inflight == 0:
            self.busy += now - self._since
        entry = self.by_kind.setdefault(kind, [0, 0.0])
        entry[0] += 1
        entry[1] += now - t

    def install(self) -> None:
        from sqlalchemy.dialects.sqlite import aiosqlite as adapter

        timer = self

        def wrap(cls, name):
            original = getattr(cls, name)

            def timed(self, *args, **kwargs):
                if name in ("commit", "rollback"):
                    kind = name
                else:
                    kind = statement_kind(str(args[0] if args else kwargs.get("operation", "")))
                    if name == "executemany":
                        kind += " (many)"
                t = timer._enter()
                try:
                    return original(self, *args, **kwargs)
                finally:
                    timer._exit(kind, t)

            setattr(cls, name, timed)

        from sqlalchemy.dialects.postgresql import asyncpg as pg_adapter

        for module, prefix in ((adapter, "AsyncAdapt_aiosqlite"), (pg_adapter, "AsyncAdapt_asyncpg")):
            for name in ("execute", "executemany"):
                wrap(getattr(module, f"{prefix}_cursor"), name)
                wrap(getattr(module, f"{prefix}_ss_cursor"), name)
            for name in ("commit", "rollback"):
                wrap(getattr(module, f"{prefix}_connection"), name)

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

        aiosqlite.core.Connection._execute = _execute  # type: ignore[method-assign]  # timing instrument


_TABLE = re.compile(
    r"^\s*(?:insert\s+(?:or\s+\w+\s+)?into|update|delete\s+from|select\b.*?\bfrom)\s+\"?(\w+)",
    re.IGNORECASE | re.DOTALL,
)


def statement_kind(sql: str) -> str:
    """``"<first SQL keyword> <first table>"`` of a statement, lower case (``"insert releases"``, ``"pragma"``)."""
    word = (sql.split(None, 1) or ["?"])[0].lower()
    m = _TABLE.match(sql)
    return f"{word} {m.group(1)}" if m else word


class MemorySampler:
    """tracemalloc while a run lasts: every ``every`` s, a snapshot when traced memory is at a new high.

    Profiling only (slows the bot down ~2×; its timings are not benchmark figures).
    :meth:`report` writes the top allocation sites of the highest snapshot to ``path``.
    """

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self.best: tuple[int, Any] | None = None
        self._task: asyncio.Task | None = None

    async def _loop(self) -> None:
        import tracemalloc

        while True:
            await asyncio.sleep(self.every)
            current, _ = tracemalloc.get_traced_memory()
            if self.best is None or current > self.best[0] * 1.05:
                self.best = (current, tracemalloc.take_snapshot())

    def start(self) -> None:
        import tracemalloc

        tracemalloc.start(12)
        self.best = None
        self._task = asyncio.ensure_future(self._loop())

    def stop_and_report(self, path: str, title: str) -> None:
        import tracemalloc

        if self._task is not None:
            self._task.cancel()
        _, peak = tracemalloc.get_traced_memory()
        if self.best is None:
            self.best = (tracemalloc.get_traced_memory()[0], tracemalloc.take_snapshot())
        tracemalloc.stop()
        current, snap = self.best
        snap = snap.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        lines = [
            f"# {title}: traced peak {peak / 2**20:.1f} MB; highest snapshot {current / 2**20:.1f} MB",
            "",
            "## top 30 lines",
            "",
        ]
        for stat in snap.statistics("lineno")[:30]:
            lines.append(f"{stat.size / 2**20:8.1f} MB {stat.count:9d} blocks  {stat.traceback[0]}")
        lines += ["", "## top 12 tracebacks", ""]
        for stat in snap.statistics("traceback")[:12]:
            lines.append(f"{stat.size / 2**20:8.1f} MB {stat.count:9d} blocks")
            lines += [f"      {frame}" for frame in stat.traceback[-8:]]
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")


def reset_peak_rss() -> bool:
    """Reset this process's ``VmHWM`` to its current RSS (Linux ``/proc/self/clear_refs``); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """This process's peak RSS in MB (``VmHWM``; ``ru_maxrss`` where ``/proc`` is missing)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class CountingSender:
    """A ``Sender`` of text channels that only counts: messages, embeds and (channel, release) sends for
    duplicates (the tracking benchmark has no forum, crosspost, mention or DM)."""

    def __init__(self) -> None:
        self.messages = 0
        self.sent: collections.Counter[tuple[int, str]] = collections.Counter()
        self._posted: dict[tuple[int, str], int] = {}  # (channel, embed url) → the latest message id
        self._next = 10_000

    async def send(
        self,
        channel_id: int,
        embeds: list[dict],
        *,
        nonce: str,
        buttons: PostButtons | None = None,
        content: str | None = None,
        allowed_mentions: AllowedMentions | None = None,
        reply_to: int | None = None,
    ) -> int:
        assert 1 <= len(embeds) <= 10 and len(nonce) <= 25
        self.messages += 1
        self._next += 1
        for embed in embeds:
            url = embed.get("url") or ""
            self.sent[(channel_id, url.rsplit("/", 1)[-1])] += 1
            self._posted[(channel_id, url)] = self._next
        return self._next

    async def find_posted(self, channel_id: int, album_urls: list[str], *, limit: int = 100) -> dict[str, int]:
        """The message each of ``album_urls`` was posted in to ``channel_id`` (its whole history)."""
        return {url: self._posted[(channel_id, url)] for url in album_urls if (channel_id, url) in self._posted}

    def duplicates(self) -> int:
        return sum(n - 1 for n in self.sent.values() if n > 1)

    async def destination(self, channel_id: int) -> Destination:
        return Destination(channel_id, "text")

    async def find_content(
        self, channel_id: int, content: str, *, limit: int = 100, exclude: Collection[int] = ()
    ) -> int | None:
        return None  # the benchmark's guilds have no subscribers: no mention follow-up is ever sent

    async def create_forum_post(self, forum_id: int, **post: Any) -> int:
        raise AssertionError("the tracking benchmark posts to text channels only")

    async def edit_message(self, channel_id: int, message_id: int, *, content: str, embeds: list[dict]) -> None:
        raise AssertionError("the tracking benchmark announces nothing ahead: no message is edited")

    async def create_forum_tags(self, forum_id: int, names: list[str]) -> dict[str, int]:
        raise AssertionError("the tracking benchmark posts to text channels only")

    async def find_forum_posts(self, forum_id: int, wanted: Any) -> dict[str, int]:
        raise AssertionError("the tracking benchmark posts to text channels only")

    async def crosspost(self, channel_id: int, message_id: int) -> bool:
        raise AssertionError("the tracking benchmark posts to text channels only")

    async def open_dm(self, user_id: int) -> int:
        raise AssertionError("the tracking benchmark sends no DM")

    async def send_dm(self, dm_channel_id: int, embeds: list[dict], *, nonce: str, content: str) -> int:
        raise AssertionError("the tracking benchmark sends no DM")

    async def find_dm(self, dm_channel_id: int, album_url: str, *, limit: int = 100) -> int | None:
        raise AssertionError("the tracking benchmark sends no DM")

    async def is_member(self, guild_id: int, user_id: int) -> bool:
        raise AssertionError("the tracking benchmark sends no DM")


class SimClock:
    """Simulated UTC time: the time given to :meth:`set` plus the real time elapsed since."""

    def __init__(self, base: dt.datetime) -> None:
        self._base = base
        self._t0 = time.monotonic()

    def set(self, when: dt.datetime) -> None:
        self._base, self._t0 = when, time.monotonic()

    def advance(self, seconds: float) -> None:
        """Move simulated time ``seconds`` ahead (a wait that takes no real time)."""
        self._base += dt.timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        """A wait on the simulated clock: advance it, yield to the loop once."""
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)

    def __call__(self) -> dt.datetime:
        return self._base + dt.timedelta(seconds=time.monotonic() - self._t0)


def _merge(summaries: list) -> Any:
    """One summary-like object for the runs a ``due`` command made (sums; the last run's id and status)."""
    from types import SimpleNamespace

    if not summaries:
        return SimpleNamespace(
            run_id=None,
            status="none",
            artists_due=0,
            artists_checked=0,
            spotify_requests=0,
            releases_posted=0,
            releases_found=0,
            failed_artists=[],
            error=None,
            metrics=None,
        )
    last = summaries[-1]
    return SimpleNamespace(
        run_id=last.run_id,
        status=",".join(sorted({x.status for x in summaries})),
        artists_due=sum(x.artists_due for x in summaries),
        artists_checked=sum(x.artists_checked for x in summaries),
        spotify_requests=sum(x.spotify_requests for x in summaries),
        releases_posted=sum(x.releases_posted for x in summaries),
        releases_found=sum(x.releases_found for x in summaries),
        failed_artists=[f for x in summaries for f in x.failed_artists],
        error="; ".join(x.error for x in summaries if x.error) or None,
        metrics=None,
    )


async def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", required=True, help="SQLAlchemy URL of the migrated benchmark database")
    ap.add_argument("--api", required=True)
    ap.add_argument("--accounts", required=True)
    ap.add_argument("--client-id", required=True)
    ap.add_argument("--client-secret", required=True)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--pace", type=int, default=0, help="rate_limit_per_30s of the client (0 = off)")
    ap.add_argument("--guilds", default="1,2,3")
    ap.add_argument(
        "--owner",
        default=None,
        help="this process's owner id among several processes (leases, claims); default host:pid:random",
    )
    ap.add_argument(
        "--recheck-share",
        type=float,
        default=0.125,
        help="tracking.recheck_share of the tracker (the rotating exact re-check; 0 = off)",
    )
    ap.add_argument("--musicbrainz", default=None, help="MusicBrainz ws/2 base URL (the free signal's daily job)")
    ap.add_argument("--listenbrainz", default=None, help="ListenBrainz API base URL (the free signal's daily job)")
    ap.add_argument(
        "--release-day",
        action="store_true",
        help="build the release-day prober ([musicbrainz] enabled; the MusicBrainz URLs as given, else never used)",
    )
    ap.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve /metrics, /livez and /readyz on this port ([http] port; 0 = any free port, told in the "
        "ready line as metrics_port); default: off, as a deployment without [http]",
    )
    ap.add_argument("--log", default=None)
    ap.add_argument(
        "--tracemalloc",
        default=None,
        metavar="DIR",
        help="profile each run's memory with tracemalloc into DIR/run-<n>.txt (slows the bot down)",
    )
    args = ap.parse_args(argv)
    if args.log:
        logging.basicConfig(
            filename=args.log, level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    guilds = [int(g) for g in args.guilds.split(",") if g]
    timer = DbTimer()
    timer.install()
    clock = SimClock(dt.datetime.now(dt.UTC))
    sender = CountingSender()
    # The free signal's settings (`[musicbrainz]`): the daily job's (--musicbrainz/--listenbrainz) and, with
    # --release-day, `enabled` for build_core, which then builds the release-day prober. Without the
    # daily job no release group is ever stored, so the prober finds nothing to probe.
    music_settings = MusicBrainzSettings(
        enabled=True,
        contact="https://example.invalid/release-bot-benchmark",
        api_base_url=args.musicbrainz or "http://127.0.0.1:9/ws/2",
        listenbrainz_api_base_url=args.listenbrainz or "http://127.0.0.1:9",
    )
    # The bot as a deployment builds it (bot.wiring), with the harness's choices: no request budgets,
    # the emulator's pacing, the given re-check share; the store is migrated already.
    settings = Settings(
        spotify=SpotifySettings(
            client_id=args.client_id,
            client_secret=args.client_secret,
            api_base_url=args.api,
            accounts_base_url=args.accounts,
            requests_per_run=0,
            requests_per_day=0,
            rate_limit_per_30s=args.pace,
        ),
        tracking=TrackingSettings(recheck_share=args.recheck_share),
        database=DatabaseSettings(url=args.database_url),
        musicbrainz=music_settings if args.release_day else MusicBrainzSettings(),
    )
    metrics = Metrics() if args.metrics_port is not None else None
    core = await build_core(
        settings,
        sender=sender,
        clock=clock,
        owner=args.owner,
        concurrency=args.concurrency,
        migrate=False,
        metrics=metrics,
    )
    # The operations endpoints as ReleaseBot.setup_hook starts them ([http] port); no gateway here, so one
    # shard reported ready.
    ops = await ops_server(HttpSettings(port=args.metrics_port), core, lambda: {0: (True, None)})
    runner, tracker, client, coordinator = core.runner, core.tracker, core.spotify, core.coordinator
    signal = None
    if args.musicbrainz and args.listenbrainz:
        # The daily job as build_core makes it for `[musicbrainz] enabled`, its pacing on the simulated clock.
        music = music_clients(music_settings, core.db, session=core.http, clock=clock, sleep=clock.sleep)
        signal = music_signal(music_settings, core.db, coordinator, music, clock=clock)
    checked_log: list[str] = []
    original_track = tracker.track

    async def track_and_log(*a, **kw):
        result = await original_track(*a, **kw)
        checked_log.extend(result.checked)
        return result

    tracker.track = track_and_log  # type: ignore[method-assign]  # records the artists each run fetched
    out = sys.stdout
    ready = {"ready": True, "rss_mb": round(peak_rss_mb(), 1), "metrics_port": None if ops is None else ops.port}
    out.write(json.dumps(ready) + "\n")
    out.flush()
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            cmd = json.loads(line)
            reply: dict[str, Any] = {"ok": True}
            if cmd["cmd"] == "run":
                sampler = MemorySampler() if args.tracemalloc else None
                if sampler is not None:
                    sampler.start()
                reset_peak_rss()
                timer.reset()
                clock.set(dt.datetime.fromisoformat(cmd["when"]))
                checked_log.clear()
                sent_before = collections.Counter(sender.sent)
                extra: dict[str, Any] = {}
                t0 = time.perf_counter()
                if cmd.get("due"):
                    await coordinator.beat()
                    summaries = []
                    while (one := await runner.run_due()) is not None:
                        summaries.append(one)
                    wall = time.perf_counter() - t0
                    extra = {
                        "runs": len(summaries),
                        "guilds": [g for x in summaries for g in x.guild_ids],
                        "checked": list(checked_log),
                        "sent": [f"{c}:{r}" for (c, r), n in (sender.sent - sent_before).items() for _ in range(n)],
                    }
                    summary = _merge(summaries)
                else:
                    summary = await runner.run("schedule", guilds)
                    wall = time.perf_counter() - t0
                if sampler is not None:
                    os.makedirs(args.tracemalloc, exist_ok=True)
                    sampler.stop_and_report(
                        os.path.join(args.tracemalloc, f"run-{summary.run_id}.txt"), f"run {summary.run_id}"
                    )
                metrics = summary.metrics
                reply = {
                    "run_id": summary.run_id,
                    "status": summary.status,
                    "artists_due": summary.artists_due,
                    "artists_checked": summary.artists_checked,
                    "spotify_requests": summary.spotify_requests,
                    "releases_posted": summary.releases_posted,
                    "releases_found": summary.releases_found,
                    "failed_artists": len(summary.failed_artists),
                    "error": summary.error,
                    "metrics": metrics if isinstance(metrics, dict) else None,
                    "wall": wall,
                    "db_seconds": timer.busy,
                    "sqlite_seconds": timer.sqlite,
                    "db_ops": timer.ops,
                    "db_by_kind": {k: [int(n), round(s, 3)] for k, (n, s) in sorted(timer.by_kind.items())},
                    "rss_mb": peak_rss_mb(),
                    "messages": sender.messages,
                    "duplicates_total": sender.duplicates(),
                    "requests_by_endpoint": dict(client.requests_by_endpoint),
                    **extra,
                }
            elif cmd["cmd"] == "daily":
                assert signal is not None, "daily needs --musicbrainz and --listenbrainz"
                clock.set(dt.datetime.fromisoformat(cmd["when"]))
                t0 = time.perf_counter()
                report = await signal.run_daily()
                reply = {
                    "report": dataclasses.asdict(report) if report is not None else None,
                    "wall": time.perf_counter() - t0,
                }
            elif cmd["cmd"] == "release_day":
                prober = core.release_day
                assert prober is not None, "release_day needs --release-day"
                clock.set(dt.datetime.fromisoformat(cmd["when"]))
                t0 = time.perf_counter()
                outcomes = []
                while batch := await prober.scan():  # every probe due now (each scan takes at most its batch)
                    outcomes.extend(batch)
                reply = {
                    "probes": [
                        {
                            "mbid": o.mbid,
                            "probe": o.probe,
                            "run_id": o.run_id,
                            "requests": o.requests,
                            "found": o.found,
                            "method": o.method,
                            "posted": o.posted or {},
                        }
                        for o in outcomes
                    ],
                    "requests": sum(o.requests for o in outcomes),
                    "wall": time.perf_counter() - t0,
                }
            elif cmd["cmd"] == "beat":  # several processes: alive at the simulated time before a run
                clock.set(dt.datetime.fromisoformat(cmd["when"]))
                await coordinator.beat()
            elif cmd["cmd"] == "quit":
                out.write(json.dumps(reply) + "\n")
                out.flush()
                break
            out.write(json.dumps(reply, default=str) + "\n")
            out.flush()
    finally:
        if ops is not None:
            await ops.stop()
        await core.close()


if __name__ == "__main__":
    asyncio.run(main())
