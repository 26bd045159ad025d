"""The fan-out benchmark: one release reaching many guilds, its subscribers mentioned and sent DMs.

One command::

    .venv/bin/python -m benchmarks.fanout                      # 2,500 guilds, 200 subscribers, half DM
    .venv/bin/python -m benchmarks.fanout --guilds 20 --subscribers 40 --dm-per-second 20   # quick

Scenario: ``--guilds`` guilds all follow one artist (each posts to its text channel ``#new-music``);
``--subscribers`` members of **one** guild (the first delivered, ``--subscribers-in first``; or the
last) subscribe to that artist, the first ``--dm-share`` of them (default half) in ``dm`` mode, the
others in ``mention`` mode. The artist releases a single; the bot delivers it.

Processes: ``benchmarks.fanout_server`` holds the Discord fake (``fakes/discord_fake.py``) and a
Spotify emulator; this process holds only the bot — the real ``ReleaseBot`` (discord.py's
``AutoShardedBot``, its gateway connection, cogs and background loops, posting through
``DiscordSender``), built from settings as a deployment builds it, on SQLite in a temp dir or on
``--database-url``. The store is seeded (guilds, channel, follows, members, subscriptions), the bot
connects, a first weekly run takes the artist's silent baseline; then the fake's Spotify gains the
single, every guild is made due and this process calls ``Runner.run_due`` (what the due scan does).

Measured (the delivery phase): from the first ``Deliverer.deliver`` call of the run to the moment
the ledgers say everything is settled — every guild's ``deliver`` returned (its post confirmed), every
mention follow-up ``sent`` (``mention_posts``) and every DM ``sent`` (``dm_deliveries``, drained by the
DM outbox in the background at ``[delivery] dm_per_second``). The fake reports every REST request
it answered during the phase, by route (``benchmarks.fanout_server.route_of``), and what it holds:
embeds per channel, DMs per user and who was pinged — so duplicates and losses are counted on
Discord's side, independent of the ledgers. Writes ``--out`` (JSON) and prints the Markdown rows
of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from sqlalchemy import text

from benchmarks.bot_server import peak_rss_mb
from benchmarks.harness import ChildProcess
from bot.delivery.deliverer import DeliveryResult
from bot.discord_app.client import ReleaseBot
from bot.scheduling.due import next_due
from bot.settings import (
    DatabaseSettings,
    DeliverySettings,
    DiscordSettings,
    DueScanSettings,
    Settings,
    SpotifySettings,
)
from storage import catalog, guilds, members
from storage.db import Database, open_database

ROOT = Path(__file__).resolve().parent.parent


async def seed(db: Database, world: dict[str, Any], dm_users: list[int], mention_users: list[int]) -> None:
    """Guilds (channel set, due next week), the artist, every guild following it, the subscribers and their modes."""
    now = dt.datetime.now(dt.UTC)
    due = next_due(4, "09:00", "UTC", now + dt.timedelta(days=7))
    async with db.transaction() as session:
        await catalog.get_or_create_artist(session, world["artist_id"], "Nova Lights")
        for gid, cid in world["guilds"]:
            await guilds.get_or_create_guild(session, gid, now=now, next_due_at=due)
            await guilds.set_channel(session, gid, cid)
            await guilds.follow_artist(session, gid, world["artist_id"], now=now)
        home = world["subscriber_guild"]
        for users, mode in ((dm_users, "dm"), (mention_users, "mention")):
            for uid in users:
                await members.set_mode(session, home, uid, mode)
                result = await members.subscribe(session, home, uid, world["artist_id"], now=now, limit=25)
                assert result.status == "added", result


async def make_due(db: Database, guild_ids: list[int]) -> None:
    """Every guild due now (its weekly slot: an artist checked before it is fetched again)."""
    now = dt.datetime.now(dt.UTC)
    async with db.transaction() as session:
        for gid in guild_ids:
            await guilds.set_due(session, gid, next_due_at=now, last_run_at=now - dt.timedelta(days=7))


async def ledger_counts(db: Database) -> dict[str, dict[str, int]]:
    """``{table: {status: rows}}`` of ``dm_deliveries`` and ``mention_posts`` (read-only instrument)."""
    out: dict[str, dict[str, int]] = {}
    async with db.transaction() as session:
        for table in ("dm_deliveries", "mention_posts"):
            rows = await session.execute(text(f"SELECT status, count(*) FROM {table} GROUP BY status"))
            out[table] = {str(status): int(n) for status, n in rows}
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="release-bot-fanout-"))
    url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'fanout.db'}"
    logging.basicConfig(
        filename=str(workdir / "bot.log"), level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    server = ChildProcess(
        "benchmarks.fanout_server",
        ["--guilds", str(args.guilds), "--subscribers", str(args.subscribers), "--subscribers-in", args.subscribers_in],
        workdir / "fanout_server.log",
    )
    t = time.monotonic()
    world = await server.start()
    world_seconds = time.monotonic() - t
    users: list[int] = world["users"]
    n_dm = round(len(users) * args.dm_share)
    dm_users, mention_users = users[:n_dm], users[n_dm:]
    guild_ids = [gid for gid, _cid in world["guilds"]]
    t = time.monotonic()
    db = await open_database(url)
    try:
        await seed(db, world, dm_users, mention_users)
    finally:
        await db.close()
    seed_seconds = time.monotonic() - t
    settings = Settings(
        discord=DiscordSettings(token=world["token"], api_base_url=world["api"], gateway_url=world["gateway"]),
        spotify=SpotifySettings(
            client_id=world["spotify"]["client_id"],
            client_secret=world["spotify"]["client_secret"],
            api_base_url=world["spotify"]["api"],
            accounts_base_url=world["spotify"]["accounts"],
            rate_limit_per_30s=0,
        ),
        database=DatabaseSettings(url=url),
        # The due scan stays out of the way: this process calls Runner.run_due itself, once everything is in place.
        due_scan=DueScanSettings(interval_seconds=3600),
        delivery=DeliverySettings(dm_per_second=args.dm_per_second),
    )
    bot = ReleaseBot(settings)
    t = time.monotonic()
    task = asyncio.create_task(bot.start(world["token"]), name="release-bot")
    try:
        deadline = time.monotonic() + args.timeout
        while not (bot.is_ready() and len(bot.guilds) == len(guild_ids)):
            if task.done():
                task.result()
            if time.monotonic() > deadline:
                raise TimeoutError("the bot did not become ready")
            await asyncio.sleep(0.05)
        ready_seconds = time.monotonic() - t
        core = bot.core
        assert core.deliverer is not None
        # The baseline: a first weekly run records the artist's catalogue and posts nothing.
        await make_due(core.db, guild_ids)
        baseline = await core.runner.run_due()
        assert baseline is not None and baseline.releases_posted == 0, baseline
        await server.cmd("release")
        await server.cmd("mark")
        # The delivery phase's clock: the first deliver() of the run to the last (instrumented here, no bot change).
        calls: list[tuple[float, float]] = []
        original = core.deliverer.deliver

        async def timed_deliver(
            guild_id: int, *, run_id: int | None = None, release_ids: Collection[str] | None = None
        ) -> DeliveryResult:
            start = time.monotonic()
            try:
                return await original(guild_id, run_id=run_id, release_ids=release_ids)
            finally:
                calls.append((start, time.monotonic()))

        core.deliverer.deliver = timed_deliver  # type: ignore[method-assign]  # timing instrument
        await make_due(core.db, guild_ids)
        load_before = os.getloadavg()[0]

        async def wait_settled() -> tuple[float, dict[str, dict[str, int]]]:
            """The moment every guild's delivery returned and every DM and follow-up is ``sent`` (polled
            beside the run, every 0.2 s: the run's record phase afterwards is not delivery)."""
            limit = time.monotonic() + args.timeout + len(dm_users) / args.dm_per_second
            while True:
                counts = await ledger_counts(core.db)
                dms, parts = counts["dm_deliveries"], counts["mention_posts"]
                if (
                    len(calls) == len(guild_ids)
                    and sum(dms.values()) == len(dm_users)
                    and set(dms) <= {"sent"}
                    and set(parts) <= {"sent"}
                ):
                    return time.monotonic(), counts
                if time.monotonic() > limit:
                    raise TimeoutError(f"the DMs and follow-ups did not settle: {counts}")
                await asyncio.sleep(0.2)

        watch = asyncio.create_task(wait_settled())
        summary = await core.runner.run_due()
        run_done = time.monotonic()
        assert summary is not None
        settled, counts = await watch
        load_after = os.getloadavg()[0]
        t0 = min(s for s, _e in calls)
        posts_done = max(e for _s, e in calls)
        report = await server.cmd("report")
        rss = peak_rss_mb()
    finally:
        await bot.close()
        try:
            await asyncio.wait_for(task, 10)
        except Exception:  # closing: the gateway task ends with the connection
            pass
        await server.stop()  # asks it to quit
    return _result(args, world, dm_users, mention_users, summary, report, counts, rss, url, workdir) | {
        "seconds": {
            "world": round(world_seconds, 2),
            "seed": round(seed_seconds, 2),
            "ready": round(ready_seconds, 2),
            "delivery": round(settled - t0, 2),
            "channel_posts": round(posts_done - t0, 2),
            "last_request": round(report["last_at"] - t0, 2) if report["last_at"] else None,
            "run_recorded": round(run_done - t0, 2),
        },
        # other work on the machine competes with the bot and the fake for its CPUs: the 1-minute load average
        "load_average": [round(load_before, 2), round(load_after, 2), os.cpu_count()],
    }


def _result(
    args: argparse.Namespace,
    world: dict[str, Any],
    dm_users: list[int],
    mention_users: list[int],
    summary: Any,
    report: dict[str, Any],
    counts: dict[str, dict[str, int]],
    rss: float,
    url: str,
    workdir: Path,
) -> dict[str, Any]:
    """The figures: requests by route (and per channel post), and what Discord holds — lost and duplicated
    posts, DMs and mentions."""
    channels = {str(cid) for _gid, cid in world["guilds"]}
    embeds = report["embeds_per_channel"]
    dms = report["dms_per_user"]
    pinged = report["pinged"]
    posts = report["by_route"].get("channel post", 0)
    return {
        "guilds": args.guilds,
        "subscribers": len(world["users"]),
        "dm_subscribers": len(dm_users),
        "mention_subscribers": len(mention_users),
        "subscribers_in": args.subscribers_in,
        "dm_per_second": args.dm_per_second,
        "backend": url.split(":", 1)[0],
        "workdir": str(workdir),
        "run_status": summary.status,
        "releases_posted": summary.releases_posted,
        "requests": report["requests"],
        "by_route": report["by_route"],
        "statuses": report["statuses"],
        "requests_per_post": {k: round(v / posts, 4) for k, v in report["by_route"].items()} if posts else {},
        "ledgers": counts,
        "posts_lost": sum(1 for c in channels if embeds.get(c, 0) == 0),
        "posts_duplicated": sum(n - 1 for n in embeds.values() if n > 1),
        "dms_lost": sum(1 for u in dm_users if dms.get(str(u), 0) == 0),
        "dms_duplicated": sum(n - 1 for n in dms.values() if n > 1),
        "mentions_lost": sum(1 for u in mention_users if pinged.get(str(u), 0) == 0),
        "mentions_duplicated": sum(n - 1 for n in pinged.values() if n > 1),
        "dm_users_pinged": sum(1 for u in dm_users if str(u) in pinged),
        "bot_peak_rss_mb": round(rss, 1),
    }


def markdown(res: dict[str, Any]) -> list[str]:
    """The Markdown rows for ``benchmarks/RESULTS.md``."""
    s = res["seconds"]
    routes = res["by_route"]
    order = ["channel post", "mention follow-up", "DM channel open", "DM message"]
    lines = [
        "| guilds | subscribers (DM / mention) | DM/s | delivery s (settled) | channel posts done s | "
        "requests | lost (posts / DMs / mentions) | duplicated (posts / DMs / mentions) | bot peak RSS MB |",
        "|---:|---|---:|---:|---:|---:|---|---|---:|",
        f"| {res['guilds']:,} | {res['subscribers']} ({res['dm_subscribers']} / {res['mention_subscribers']}) | "
        f"{res['dm_per_second']:g} | {s['delivery']:.1f} | {s['channel_posts']:.1f} | {res['requests']:,} | "
        f"{res['posts_lost']} / {res['dms_lost']} / {res['mentions_lost']} | "
        f"{res['posts_duplicated']} / {res['dms_duplicated']} / {res['mentions_duplicated']} | "
        f"{res['bot_peak_rss_mb']:.0f} |",
        "",
        "| route | requests | per channel post |",
        "|---|---:|---:|",
    ]
    posts = routes.get("channel post", 0) or 1
    for route in order + sorted(r for r in routes if r not in order):
        n = routes.get(route, 0)
        lines.append(f"| {route} | {n:,} | {n / posts:.4f} |")
    lines.append(f"| **all** | {res['requests']:,} | {res['requests'] / posts:.4f} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--guilds", type=int, default=2500)
    ap.add_argument("--subscribers", type=int, default=200)
    ap.add_argument(
        "--dm-share", type=float, default=0.5, help="share of the subscribers in dm mode (the rest: mention)"
    )
    ap.add_argument("--subscribers-in", choices=("first", "last"), default="first")
    ap.add_argument("--dm-per-second", type=float, default=2.0, help="[delivery] dm_per_second (the default: 2)")
    ap.add_argument("--database-url", default=None, help="SQLAlchemy URL of an empty database (default: SQLite)")
    ap.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds for start-up, and again for the delivery (plus the DMs' pacing)",
    )
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args(argv)
    t = time.monotonic()
    res = asyncio.run(run(args))
    res["total_seconds"] = round(time.monotonic() - t, 1)
    res["machine"] = f"{platform.python_version()}, {platform.platform()}"
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))
    print("\n".join(markdown(res)))
    print(json.dumps({k: res[k] for k in ("seconds", "ledgers", "run_status", "total_seconds")}))


if __name__ == "__main__":
    main()
