"""``release-bot demo``: the real bot, offline, over a few simulated weeks.

Starts the Spotify emulator and the Discord-compatible fake on 127.0.0.1, runs the
unmodified ``ReleaseBot`` against them with a simulated clock, acts as a server admin
(channel, follows, ``/refresh``), then lets the weekly schedule post on its own while
the emulator gains new releases. Prints what lands in the channel and the run history.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import textwrap
from pathlib import Path

from sqlalchemy import func, select

from storage.models import Run

AFTERGLOW = [
    "Afterglow",
    "Neon Static",
    "Satellites",
    "Paper Moons",
    "Overpass",
    "Glasshouse",
    "Low Orbit",
    "Static Bloom",
    "Northern Line",
    "Slow Burn",
    "Goodnight, City",
]
DELUXE_BONUS = ["Afterglow (Acoustic)", "Night Bus", "Overpass (Live)", "Echo Park"]


def _tracks(names: list[str]) -> list[dict]:
    """The same title always gets the same duration, so editions and singles match across releases."""
    return [{"name": n, "duration_ms": 150_000 + sum(map(ord, n)) * 37 % 90_000} for n in names]


# Track lists where they matter: an album carrying two earlier singles, its deluxe edition.
TRACKS = {
    "Neon Static": _tracks(["Neon Static"]),
    "Satellites": _tracks(["Satellites"]),
    "Afterglow": _tracks(AFTERGLOW),
    "Afterglow (Clean)": _tracks(AFTERGLOW),
    "Afterglow (Deluxe)": _tracks(AFTERGLOW + DELUXE_BONUS),
}

# A small invented catalogue: (name, [(title, album_type, release_date, precision)]).
CATALOGUE = {
    "Nova Lights": [
        ("First Light", "album", "2024-03-01", "day"),
        ("Neon Static", "single", "2025-06-13", "day"),
        ("Satellites", "single", "2025-09-05", "day"),
        ("Northbound", "album", "2025-10-10", "day"),
    ],
    "The Quiet Harbour": [
        ("Harbour Songs", "album", "2019", "year"),
        ("Low Tide", "single", "2025-04", "month"),
        ("Lanterns", "album", "2025-08-22", "day"),
    ],
    "Lumen Choir": [("Vespers", "album", "2022-11-18", "day"), ("Hymn For The Tired", "single", "2025-11-07", "day")],
}
WEEKS = [
    [
        ("Nova Lights", "Midnight Drive", "single", 1),
        ("Nova Lights", "Afterglow", "album", 11),
        ("Nova Lights", "Afterglow (Clean)", "album", 11),
        ("The Quiet Harbour", "Harbour Lights", "single", 2),
    ],
    [],
    [("Lumen Choir", "Evensong", "album", 9), ("The Quiet Harbour", "Tides (Acoustic)", "single", 3)],
    [("Nova Lights", "Afterglow (Deluxe)", "album", 15)],
    [("Lumen Choir", "Matins", "single", 1), ("Nova Lights", "Midnight Drive (Lumen Choir Remix)", "single", 1)],
]


def _print_messages(messages: list[dict], channel: str) -> None:
    if not messages:
        print(f"  #{channel}: (nothing posted)")
        return
    for n, message in enumerate(messages, 1):
        print(f"  #{channel} ← message {n} ({len(message.get('embeds') or [])} embeds, mentions: none)")
        for embed in message.get("embeds") or []:
            print(f"    ┌ {embed.get('title')}")
            for paragraph in (embed.get("description") or "").splitlines():
                for line in textwrap.wrap(paragraph, 76):
                    print(f"    │ {line}")
            fields = " · ".join(f"{f['name']}: {f['value']}" for f in embed.get("fields") or [])
            if fields:
                print(f"    │ {fields}")
            if (embed.get("footer") or {}).get("text"):
                print(f"    │ {embed['footer']['text']}")
            print(f"    └ {embed.get('url')}")


async def _reply(stack, name: str, options: dict | None = None, subcommand: str | None = None) -> str:
    handle = await stack.command(name, options, subcommand=subcommand)
    text = handle.content or ""
    if not text and handle.embeds:
        text = " | ".join(f"{f['name']}: {f['value']}" for e in handle.embeds for f in e.get("fields") or [])
    shown = " ".join(text.split())
    print(f"  ⮑ {shown}")
    return text


async def run_demo(weeks: int = 5) -> int:
    """Run the offline demo for ``weeks`` simulated weeks (1-10); returns the exit status."""
    from fakes.stack import SimClock, Stack

    with tempfile.TemporaryDirectory(prefix="release-bot-demo-") as tmp:
        clock = SimClock(dt.datetime(2026, 11, 16, 9, 0, tzinfo=dt.UTC))
        stack = await Stack.create(Path(tmp), clock=clock, scan_interval_seconds=0.1)
        sp = stack.spotify
        ids = {}
        for name, releases in CATALOGUE.items():
            ids[name] = sp.add_artist(name)
            for title, kind, date, precision in releases:
                sp.add_album(
                    [ids[name]],
                    title,
                    album_type=kind,
                    release_date=date,
                    release_date_precision=precision,
                    tracks=TRACKS.get(title),
                )
        try:
            print(
                "release-bot demo — offline: the real bot, a Spotify emulator and a Discord-compatible fake on 127.0.0.1"
            )
            print(
                f"Server “Music Club”, channel #new-music. Simulated time starts {clock().strftime('%A %d %b %Y %H:%M')} UTC.\n"
            )
            await stack.start_bot()
            print("▶ /settings channel channel:#new-music")
            await _reply(stack, "settings", {"channel": stack.channel_id}, "channel")
            url = f"https://open.spotify.com/artist/{ids['Nova Lights']}"
            print(f"▶ /follow artist:{url}")
            await _reply(stack, "follow", {"artist": url})
            choices = await stack.discord.autocomplete(
                stack.guild_id, stack.admin_id, "follow", {"artist": "quiet har"}, focused="artist"
            )
            print(
                f"▶ /follow artist:“quiet har” → autocomplete offers {[c['name'] for c in choices]}; picking the first"
            )
            await _reply(stack, "follow", {"artist": choices[0]["value"]})
            print("▶ /follow artist:Lumen Choir")
            await _reply(stack, "follow", {"artist": "Lumen Choir"})
            print("▶ /refresh   (the baseline: what is already out is not posted)")
            await _reply(stack, "refresh")
            _print_messages(stack.posted(), "new-music")

            seen = 0
            for week in range(weeks):
                plan = WEEKS[week % len(WEEKS)]
                friday = dt.datetime(2026, 11, 20, tzinfo=dt.UTC) + dt.timedelta(weeks=week)
                print(
                    f"\n── Week {week + 1}: Spotify gains "
                    + (", ".join(f"{a} “{t}” ({k})" for a, t, k, _n in plan) if plan else "nothing new")
                    + " ──"
                )
                for artist, title, kind, tracks in plan:
                    suffix = "" if week < len(WEEKS) else f" #{week // len(WEEKS) + 1}"
                    sp.add_album(
                        [ids[artist]],
                        title + suffix,
                        album_type=kind,
                        release_date=friday.date().isoformat(),
                        total_tracks=tracks,
                        tracks=TRACKS.get(title) if not suffix else None,
                    )
                seen = len(stack.posted())
                due = friday.replace(hour=12)
                print(f"⏰ {due.strftime('%A %d %b %Y %H:%M')} UTC — the weekly run, no command")
                before = await _schedule_runs(stack)
                clock.set(due + dt.timedelta(seconds=30))
                await stack.until(lambda: _schedule_runs(stack, finished_after=before), timeout=30, what="weekly run")
                _print_messages(stack.posted()[seen:], "new-music")

            print("\n▶ restart the bot, then /refresh — nothing is posted twice")
            await stack.restart_bot()
            seen = len(stack.posted())
            await _reply(stack, "refresh")
            _print_messages(stack.posted()[seen:], "new-music")

            print("\n── Run history ──")
            print(
                f"  {'#':>2}  {'trigger':8} {'status':8} {'checked':>8} {'requests':>8} {'new':>4} {'posted':>6}  started (UTC)"
            )
            async with stack.bot.db.sessions() as session:
                for run in (await session.scalars(select(Run).order_by(Run.id))).all():
                    print(
                        f"  {run.id:>2}  {run.trigger:8} {run.status:8} "
                        f"{f'{run.artists_checked}/{run.artists_due}':>8} {run.spotify_requests:>8} "
                        f"{run.releases_found:>4} {run.releases_posted:>6}  {run.started_at:%a %d %b %H:%M}"
                    )
            titles = stack.posted_titles()
            print(
                f"\n{len(titles)} releases posted, {len(titles) - len(set(titles))} duplicates; "
                f"{len(sp.request_log)} Spotify requests in all."
            )
        finally:
            await stack.close()
    return 0


async def _schedule_runs(stack, finished_after: int | None = None):
    async with stack.bot.db.sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(Run).where(Run.trigger == "schedule", Run.finished_at.is_not(None))
        )
    if finished_after is None:
        return count
    return count > finished_after
