"""Release-day posting vs the weekly post: hours from a release going live on Spotify to its post, and the
Spotify requests release-day probing adds (docs/musicdata.md, "Release day").

```sh
.venv/bin/python -m benchmarks.release_day                       # 200 artists × 4 weeks, seed 1 (~1 min)
.venv/bin/python -m benchmarks.release_day --artists 500 --weeks 8 --json out.json
```

One process, the bot as :func:`bot.wiring.build_core` builds it (``Runner``, ``Tracker``, ``Deliverer``,
``ReleaseDayProber``) on SQLite, the Spotify
emulator (``fakes/spotify_emulator.py``, no latency) and a simulated clock. Two guilds follow every artist,
both with the default weekly slot (Friday 12:00 UTC): guild 1 has ``release_day`` on, guild 2 not. Market
US: release days start at 00:00 New York time (05:00 UTC in the simulated weeks, November–December).

Each week ``--share`` of the artists (default 10 %) have a release dated Friday. ``--announced`` of those
(default 80 %) are listed by MusicBrainz ahead (a release group stored on Thursday, as the daily job
would); the others are not and only the weekly run finds them. Go-live on Spotify (drawn per release):
70 % at 05:00 UTC (midnight in New York), 20 % at a random minute from 06:00 to 16:00 UTC (a late
delivery by the distributor), 10 % on Saturday 05:00 UTC (MusicBrainz's date was a day early). The day
is simulated from Friday 00:00 to Saturday 06:00 UTC in steps of ``--step-minutes`` (default 5): at each
step the releases due go live, the release-day scan runs, and the due scan (``Runner.run_due``) runs the
weekly post when due. A last weekly run after the final week posts what is left.

Figures: per guild, the hours from going live to the post (median, mean, p90, max) for the announced
releases and for all; Spotify requests of the weekly runs and of the probes (probes, found on their
day, share found at the first probe); duplicates (a (channel, release) sent twice) — must be 0.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.bot_server import CountingSender
from bot.scheduling.due import next_due
from bot.settings import DatabaseSettings, MusicBrainzSettings, Settings, SpotifySettings
from bot.wiring import build_core
from fakes.spotify_emulator import SpotifyEmulator
from storage import catalog, guilds, musicdata
from storage.musicdata import ReleaseGroupRow

UTC = dt.UTC
FIRST_FRIDAY = dt.date(2026, 11, 6)
RELEASE_DAY_GUILD, WEEKLY_GUILD = 1, 2
CHANNEL = {RELEASE_DAY_GUILD: 100, WEEKLY_GUILD: 200}


class SimClock:
    """The simulated clock: ``now`` is set by the loop."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


class TimedSender(CountingSender):
    """The counting sender, also noting when each (channel, release id) was first sent (simulated time)."""

    def __init__(self, clock: SimClock) -> None:
        super().__init__()
        self.clock = clock
        self.first_sent: dict[tuple[int, str], dt.datetime] = {}

    async def send(self, channel_id: int, embeds: list[dict], **kwargs: object) -> int:
        mid = await super().send(channel_id, embeds, **kwargs)  # type: ignore[arg-type]
        for embed in embeds:
            rid = (embed.get("url") or "").rsplit("/", 1)[-1]
            self.first_sent.setdefault((channel_id, rid), self.clock())
        return mid


@dataclass
class Planned:
    """A release of the scenario: its artist, title, whether MusicBrainz announced it, when it goes live."""

    artist: str
    title: str
    announced: bool
    live_at: dt.datetime
    release_id: str | None = None


@dataclass
class Figures:
    """What the benchmark measured (see the module docstring)."""

    hours: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    weekly_requests: int = 0
    weekly_runs: int = 0
    probe_requests: int = 0
    probes: int = 0
    found: int = 0
    found_first: int = 0
    announced: int = 0
    duplicates: int = 0
    unposted: int = 0
    wall_seconds: float = 0.0


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "n": len(values),
        "median": round(statistics.median(ordered), 2),
        "mean": round(statistics.fmean(ordered), 2),
        "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 2),
        "max": round(ordered[-1], 2),
    }


def plan_week(rng: random.Random, artists: list[str], friday: dt.date, share: float, announced: float) -> list[Planned]:
    """The week's releases (see the module docstring)."""
    out = []
    for n, artist in enumerate(rng.sample(artists, max(1, round(share * len(artists))))):
        draw = rng.random()
        if draw < 0.7:
            live = dt.datetime.combine(friday, dt.time(5, 0), tzinfo=UTC)
        elif draw < 0.9:
            live = dt.datetime.combine(friday, dt.time(6, 0), tzinfo=UTC) + dt.timedelta(minutes=rng.randrange(600))
        else:
            live = dt.datetime.combine(friday + dt.timedelta(days=1), dt.time(5, 0), tzinfo=UTC)
        out.append(Planned(artist, f"Record {friday.isoformat()} #{n}", rng.random() < announced, live))
    return out


async def run(artists: int, weeks: int, seed: int, share: float, announced: float, step_minutes: int) -> Figures:
    """Run the scenario; returns the figures."""
    rng = random.Random(seed)
    figures = Figures()
    started = time.perf_counter()
    clock = SimClock(dt.datetime.combine(FIRST_FRIDAY - dt.timedelta(days=1), dt.time(12), tzinfo=UTC))
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        async with SpotifyEmulator() as emu:
            sender = TimedSender(clock)
            # The bot as a deployment builds it (bot.wiring): the signal on (so the prober is built),
            # the emulator's endpoints, no client-side pacing, a day budget that counts every request.
            settings = Settings(
                spotify=SpotifySettings(
                    client_id=emu.client_id,
                    client_secret=emu.client_secret,
                    api_base_url=emu.api_base_url,
                    accounts_base_url=emu.accounts_base_url,
                    requests_per_run=0,
                    requests_per_day=10_000_000,
                    rate_limit_per_30s=0,
                ),
                database=DatabaseSettings(url=url),
                musicbrainz=MusicBrainzSettings(enabled=True, contact="benchmark@example.org"),
            )
            core = await build_core(settings, sender=sender, clock=clock)
            db, tracker, runner, prober = core.db, core.tracker, core.runner, core.release_day
            assert prober is not None
            ids = []
            for a in range(artists):
                artist = emu.add_artist(f"Artist {a}")
                for i in range(3):
                    emu.add_album([artist], f"Artist {a} old {i}", album_type="single", release_date=f"202{i}-01-01")
                ids.append(artist)
            async with db.transaction() as session:
                for gid in (RELEASE_DAY_GUILD, WEEKLY_GUILD):
                    await guilds.get_or_create_guild(
                        session,
                        gid,
                        now=clock(),
                        next_due_at=next_due(4, "12:00", "UTC", clock()),
                        schedule_day=4,
                        schedule_time="12:00",
                        timezone="UTC",
                    )
                    await guilds.set_channel(session, gid, CHANNEL[gid])
                await guilds.set_release_day(session, RELEASE_DAY_GUILD, True)
                for artist in ids:
                    await catalog.get_or_create_artist(session, artist, artist)
                    for gid in (RELEASE_DAY_GUILD, WEEKLY_GUILD):
                        await guilds.follow_artist(session, gid, artist, now=clock())
            for artist in ids:
                await tracker.baseline(artist)
            planned: list[Planned] = []
            for week in range(weeks):
                friday = FIRST_FRIDAY + dt.timedelta(days=7 * week)
                releases = plan_week(rng, ids, friday, share, announced)
                planned += releases
                clock.now = dt.datetime.combine(friday - dt.timedelta(days=1), dt.time(12), tzinfo=UTC)
                rows = [
                    ReleaseGroupRow(
                        mbid=f"00000000-0000-4000-8000-{week:04d}{n:08d}",
                        title=p.title,
                        artist_credit_name=p.artist,
                        artist_mbids=(f"mb-{p.artist}",),
                        primary_type="Album",
                        secondary_types=(),
                        release_date=friday,
                        release_mbid=f"00000000-0000-4000-9000-{week:04d}{n:08d}",
                        caa_id=None,
                        caa_release_mbid=None,
                        spotify_ids=(p.artist,),
                    )
                    for n, p in enumerate(releases)
                    if p.announced
                ]
                async with db.transaction() as session:
                    await musicdata.store_release_groups(
                        session,
                        rows,
                        listed={r.mbid for r in rows},
                        window=(friday, friday),
                        now=clock(),
                    )
                now = dt.datetime.combine(friday, dt.time(0), tzinfo=UTC)
                end = now + dt.timedelta(hours=30)
                while now <= end:
                    clock.now = now
                    for p in releases:
                        if p.release_id is None and p.live_at <= now:
                            p.release_id = emu.add_album(
                                [p.artist], p.title, album_type="album", release_date=friday.isoformat()
                            )
                    for outcome in await prober.scan(now):
                        figures.probes += 1
                        figures.probe_requests += outcome.requests
                        if outcome.found is not None:
                            figures.found += 1
                            figures.found_first += outcome.probe == 1
                    summary = await runner.run_due(now)
                    if summary is not None:
                        figures.weekly_runs += 1
                        figures.weekly_requests += summary.spotify_requests
                    now += dt.timedelta(minutes=step_minutes)
            clock.now = dt.datetime.combine(FIRST_FRIDAY + dt.timedelta(days=7 * weeks), dt.time(12), tzinfo=UTC)
            summary = await runner.run_due(clock.now)  # the last week's leftovers
            if summary is not None:
                figures.weekly_runs += 1
                figures.weekly_requests += summary.spotify_requests
            await core.close()
    figures.announced = sum(p.announced for p in planned)
    figures.duplicates = sum(1 for c in sender.sent.values() if c > 1)
    for label, gid in (("release_day", RELEASE_DAY_GUILD), ("weekly", WEEKLY_GUILD)):
        by: dict[str, list[float]] = {"announced": [], "not announced": [], "all": []}
        for p in planned:
            sent = sender.first_sent.get((CHANNEL[gid], p.release_id or ""))
            if sent is None:
                figures.unposted += 1
                continue
            hours = (sent - p.live_at).total_seconds() / 3600
            by["announced" if p.announced else "not announced"].append(hours)
            by["all"].append(hours)
        figures.hours[label] = by
    figures.wall_seconds = round(time.perf_counter() - started, 1)
    return figures


def report(f: Figures, args: argparse.Namespace) -> str:
    """The figures as Markdown (the tables of benchmarks/RESULTS.md)."""
    lines = [
        f"{args.artists} artists × {args.weeks} weeks, seed {args.seed}, {args.share:.0%} release each week, "
        f"{args.announced:.0%} of them announced by MusicBrainz; scan every {args.step_minutes} min; "
        f"wall {f.wall_seconds} s.",
        "",
        "| guild | releases | hours live → post: median | mean | p90 | max |",
        "|---|---|---|---|---|---|",
    ]
    for label in ("release_day", "weekly"):
        for kind in ("announced", "not announced", "all"):
            s = _stats(f.hours[label][kind])
            if s:
                lines.append(f"| {label} | {kind} ({s['n']}) | {s['median']} | {s['mean']} | {s['p90']} | {s['max']} |")
    lines += [
        "",
        "| Spotify requests | |",
        "|---|---|",
        f"| weekly runs ({f.weekly_runs}) | {f.weekly_requests} |",
        f"| release-day probes ({f.probes}, for {f.announced} announced releases) | {f.probe_requests} "
        f"(+{f.probe_requests / max(1, f.weekly_requests):.1%}) |",
        f"| found by a probe on their day | {f.found} ({f.found_first} at the first probe) |",
        f"| duplicates / unposted | {f.duplicates} / {f.unposted} |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.release_day``: run and print the Markdown tables (and ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--artists", type=int, default=200)
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--share", type=float, default=0.10)
    parser.add_argument("--announced", type=float, default=0.80)
    parser.add_argument("--step-minutes", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args.artists, args.weeks, args.seed, args.share, args.announced, args.step_minutes))
    print(report(figures, args))
    if args.json is not None:
        args.json.write_text(json.dumps(figures.__dict__, default=str, indent=1))


if __name__ == "__main__":
    main()
