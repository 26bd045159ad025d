"""Several bot processes on one PostgreSQL (issue 8 §3): 1 and N processes on the same scenario.

For each process count P (``--processes 1,4``): a fresh database on one PostgreSQL server
(``--database-url`` of a server's admin database, or a throw-away server started here:
``benchmarks.pgserver``), the Spotify emulator of the scenario in its own process, ``--guilds``
guilds following the scenario's artists (each artist by one guild, 30 % by a second one on
another guild), and P ``benchmarks.bot_server`` processes, each with its owner id (``--owner``):
leases, artist claims, the shared day budget and the split rate limit are real. Each run (the baseline,
then ``--weeks`` weekly runs with the scenario's changes injected) makes every guild due and asks
all P processes at once to run what is due (``Runner.run_due`` until none is left to lease).

Per run it records: wall time (all processes done), Spotify requests (sum), each process's
DB seconds and peak RSS (``VmHWM`` since the run began), releases posted, guilds run per
process, **artists fetched by more than one process** (must be 0: artist-level claims) and
**(channel, release) posted more than once across processes** (must be 0), and whether every
due guild ran exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

from sqlalchemy import text, update
from sqlalchemy.engine import make_url

from benchmarks.harness import ChildProcess, EmulatorProcess
from benchmarks.scenario import Scenario, run_time
from storage.db import open_database
from storage.models import Artist, Follow, Guild

CHANNEL_BASE = 5_000_000


def follows_for(scenario: Scenario, guilds: int) -> dict[int, list[str]]:
    """Guild id (1..guilds) → artist ids: artist i by guild ``i % guilds + 1``; 30 % also by ``(7i+3) % guilds + 1``."""
    out: dict[int, list[str]] = collections.defaultdict(list)
    for i, (aid, _name, _profile) in enumerate(scenario.artists):
        first = i % guilds + 1
        out[first].append(aid)
        if i % 10 < 3:
            second = (7 * i + 3) % guilds + 1
            if second != first:
                out[second].append(aid)
    return out


async def _admin(server_url: str, statement: str) -> None:
    import asyncpg

    url = make_url(server_url)
    conn = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database=url.database
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def setup_store(db, scenario: Scenario, follows: dict[int, list[str]], followed_at: dt.datetime) -> None:
    """Guilds with channels, artists (not baselined) and follows, written in bulk."""
    from bot.scheduling.due import next_due
    from storage import guilds

    async with db.sessions() as session:
        for gid in sorted(follows):
            guild = await guilds.get_or_create_guild(
                session, gid, now=followed_at, next_due_at=next_due(4, "09:00", "UTC", followed_at)
            )
            guild.channel_id = CHANNEL_BASE + gid
        await session.flush()
        session.add_all([Artist(id=aid, name=name, group_state={}) for aid, name, _ in scenario.artists])
        await session.flush()
        session.add_all(
            [Follow(guild_id=g, artist_id=a, followed_at=followed_at) for g, aids in follows.items() for a in aids]
        )
        await session.commit()


async def run_count(args: argparse.Namespace, server_url: str, processes: int) -> dict:
    """One process count: set-up, the baseline and the weekly runs; returns its rows."""
    scenario = Scenario(args.size, args.seed, args.weeks)
    scenario.reset_live()
    follows = follows_for(scenario, args.guilds)
    workdir = Path(tempfile.mkdtemp(prefix=f"release-bot-bench-p{processes}-"))
    name = f"release_bot_bench_p{processes}_{int(time.time())}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    db = await open_database(url)
    emulator = EmulatorProcess(
        [
            "--size",
            str(args.size),
            "--seed",
            args.seed,
            "--weeks",
            str(args.weeks),
            "--latency",
            str(args.latency),
            "--rate-limit",
            args.rate_limit,
        ],
        workdir / "emulator.log",
    )
    info = await emulator.start()
    rate_max, rate_window = (int(x) for x in args.rate_limit.split("/"))
    # One developer account: every process is given the account's whole limit, as a deployment configures
    # it, and splits it with the live processes at each heartbeat (bot.wiring.share_spotify_state).
    pace = int(rate_max * 30 / rate_window)
    bots = [
        ChildProcess(
            "benchmarks.bot_server",
            [
                "--database-url",
                url,
                "--api",
                info["api"],
                "--accounts",
                info["accounts"],
                "--client-id",
                info["client_id"],
                "--client-secret",
                info["client_secret"],
                "--concurrency",
                str(args.concurrency),
                "--pace",
                str(pace),
                "--recheck-share",
                str(args.recheck_share),
                "--owner",
                f"bench-{i}",
                "--log",
                str(workdir / f"bot-{i}.log"),
            ],
            workdir / f"bot_server-{i}.log",
        )
        for i in range(processes)
    ]
    rows: list[dict] = []
    try:
        await setup_store(db, scenario, follows, run_time(0) - dt.timedelta(days=1))
        for bot in bots:
            await bot.start()
        for k in range(args.weeks + 1):
            if k > 0:
                await emulator.cmd("week", k=k)
                scenario.apply_week(scenario.week_list[k - 1])
            async with db.sessions() as session:
                await session.execute(update(Guild).values(next_due_at=run_time(k)))
                await session.commit()
            await emulator.cmd("reset_window")
            await emulator.cmd("stats")
            # Twice: at the second beat every process sees all the others alive at this time, and so
            # takes its share of the guilds and of the rate limit.
            for _ in range(2):
                await asyncio.gather(*(b.cmd("beat", when=run_time(k).isoformat()) for b in bots))
            t0 = time.perf_counter()
            replies = await asyncio.gather(*(b.cmd("run", when=run_time(k).isoformat(), due=True) for b in bots))
            wall = time.perf_counter() - t0
            stats = await emulator.cmd("stats")
            checked = collections.Counter(a for r in replies for a in r.get("checked", ()))
            sent = collections.Counter(x for r in replies for x in r.get("sent", ()))
            ran = collections.Counter(g for r in replies for g in r.get("guilds", ()))
            async with db.sessions() as session:
                still_due = (
                    await session.execute(
                        text("select count(*) from guilds where next_due_at <= :t"),
                        {"t": run_time(k).replace(tzinfo=None)},
                    )
                ).scalar_one()
            row = {
                "week": k,
                "processes": processes,
                "wall": wall,
                "requests": sum(r["spotify_requests"] for r in replies),
                "emulator_requests": stats["requests"],
                "http_429": stats["by_status"].get("429", 0) + stats["by_status"].get(429, 0),
                "db_seconds": [round(r["db_seconds"], 2) for r in replies],
                "rss_mb": [round(r["rss_mb"]) for r in replies],
                "guilds_per_process": [len(r.get("guilds", ())) for r in replies],
                "runs_per_process": [r.get("runs", 0) for r in replies],
                "posted": sum(r["releases_posted"] for r in replies),
                "artists_fetched": len(checked),
                "artists_fetched_twice": sum(1 for n in checked.values() if n > 1),
                "posted_twice": sum(n - 1 for n in sent.values() if n > 1),
                "guilds_ran": len(ran),
                "guilds_ran_twice": sum(1 for n in ran.values() if n > 1),
                "guilds_left_due": still_due,
            }
            rows.append(row)
            print(
                f"[{processes} processes] run {k}: {row['requests']} req, wall {wall:.1f}s, "
                f"db {row['db_seconds']} s, rss {row['rss_mb']} MB, guilds {row['guilds_per_process']}, "
                f"fetched twice {row['artists_fetched_twice']}, posted twice {row['posted_twice']}",
                flush=True,
            )
    finally:
        for bot in bots:
            with contextlib.suppress(Exception):
                await bot.stop()
        await emulator.stop()
        await db.close()
        with contextlib.suppress(Exception):
            await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return {
        "processes": processes,
        "size": args.size,
        "guilds": args.guilds,
        "weeks": args.weeks,
        "follows": sum(len(v) for v in follows.values()),
        "rows": rows,
    }


def table(results: list[dict]) -> list[str]:
    """The Markdown rows of :func:`run_count` results."""
    out = [
        "| processes | run | wall s | requests | 429s | DB s per process | peak RSS MB per process | guilds per process | "
        "posted | artists fetched | fetched by 2+ processes | posted twice | guilds run twice / left due |",
        "|---:|---:|---:|---:|---:|---|---|---|---:|---:|---:|---:|---|",
    ]
    for res in results:
        for r in res["rows"]:
            out.append(
                f"| {res['processes']} | {'baseline' if r['week'] == 0 else r['week']} | {r['wall']:.1f} | "
                f"{r['requests']:,} | {r['http_429']} | {', '.join(map(str, r['db_seconds']))} | "
                f"{', '.join(map(str, r['rss_mb']))} | {', '.join(map(str, r['guilds_per_process']))} | "
                f"{r['posted']:,} | {r['artists_fetched']:,} | {r['artists_fetched_twice']} | {r['posted_twice']} | "
                f"{r['guilds_ran_twice']} / {r['guilds_left_due']} |"
            )
    return out


async def main_async(args: argparse.Namespace) -> list[dict]:
    results = []
    if args.database_url:
        for p in args.processes:
            results.append(await run_count(args, args.database_url, p))
        return results
    from benchmarks.pgserver import throwaway_server

    with throwaway_server() as url:
        for p in args.processes:
            results.append(await run_count(args, url, p))
    return results


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--guilds", type=int, default=2_500)
    ap.add_argument("--processes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4])
    ap.add_argument("--weeks", type=int, default=2)
    ap.add_argument("--seed", default="bench")
    ap.add_argument("--latency", type=float, default=0.03)
    ap.add_argument("--rate-limit", default="9000/30")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--recheck-share", type=float, default=0.125)
    ap.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL server's admin URL (a database is created per process count); "
        "default: a throw-away server started here",
    )
    ap.add_argument("--out", type=Path, default=None, help="JSON results")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    results = asyncio.run(main_async(args))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    print("\n".join(table(results)))


if __name__ == "__main__":
    main()
