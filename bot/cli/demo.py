"""``release-bot demo``: the real bot, offline, over a few simulated weeks.

Starts the Spotify emulator and the Discord-compatible fake on 127.0.0.1, runs the
unmodified ``ReleaseBot`` against them with a simulated clock, acts as a server admin
(channel, routes, follows, ``/refresh``) and as a member (``/notify add``), then lets the
weekly schedule post on its own while the emulator gains new releases. Prints what lands
where — the default channel ``#new-music``, the singles' route ``#singles`` and the forum
``#lumen-forum`` that one artist's route points to (one post per release, tagged) — with who
each post pings, then the run history.

The MusicBrainz and ListenBrainz emulators run too (``[musicbrainz] enabled``): the server turns on
``/settings upcoming``, MusicBrainz lists an album of a followed artist ahead of its date
(:data:`ANNOUNCED`), the bot's daily look announces it, and on its release day the weekly run's post of
it replies to that announcement, "Out now!" (docs/musicdata.md, "Announcements").
"""

from __future__ import annotations

import datetime as dt
import tempfile
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.delivery.upcoming import RELEASE_GROUP_URL
from storage import runs
from storage.db import Database

if TYPE_CHECKING:  # the fakes are imported when the demo runs (they are not part of the bot)
    from fakes.spotify_emulator import SpotifyEmulator
    from fakes.stack import SimClock, Stack

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


def _tracks(names: list[str]) -> list[dict[str, Any]]:
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
        ("The Quiet Harbour", "Lighthouse", "album", 10),
    ],
    [],
    [("Lumen Choir", "Evensong", "album", 9), ("The Quiet Harbour", "Tides (Acoustic)", "single", 3)],
    [("Nova Lights", "Afterglow (Deluxe)", "album", 15)],
    [("Lumen Choir", "Matins", "single", 1), ("Nova Lights", "Midnight Drive (Lumen Choir Remix)", "single", 1)],
]


@dataclass(frozen=True)
class Announced:
    """The release MusicBrainz lists ahead: ``title`` (an album of ``artist``, out on week 1's Friday), its
    barcode on MusicBrainz, the UPC Spotify gives the album (``releases.upc``: matched by barcode)."""

    artist: str
    title: str
    barcode: str


ANNOUNCED = Announced("The Quiet Harbour", "Lighthouse", "0602455012345")
ANNOUNCE_AT = dt.datetime(2026, 11, 17, 9, 0, tzinfo=dt.UTC)
"""When the daily look finds it listed (the Tuesday before week 1's Friday)."""


def _mbid(name: str) -> str:
    """A stable MusicBrainz id for the demo's invented ``name``."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"release-bot-demo:{name}"))


@dataclass(frozen=True)
class Channels:
    """The demo server's destinations: the default channel, the singles' route and a forum (one artist's route)."""

    new_music: int
    singles: int
    forum: int

    def named(self, text: str) -> str:
        """``text`` with the channel mentions ``<#id>`` of these channels shown as ``#name``."""
        for name, channel_id in (("new-music", self.new_music), ("singles", self.singles), ("lumen-forum", self.forum)):
            text = text.replace(f"<#{channel_id}>", f"#{name}")
        return text


def _add_channels(stack: Stack) -> Channels:
    """Add ``#singles`` (text) and ``#lumen-forum`` (a forum with the release-type tags) beside ``#new-music``."""
    fake = stack.discord
    singles = fake.add_channel(stack.guild_id, "singles")
    forum = fake.add_channel(stack.guild_id, "lumen-forum", kind="forum", tags=["Album", "Single", "EP"])
    return Channels(stack.channel_id, singles, forum)


@dataclass(frozen=True)
class Post:
    """A message the bot posted: where (``#channel``, or the forum post's title and tags), and the message."""

    where: str
    message: dict[str, Any]


def _posts(stack: Stack, channels: Channels) -> list[Post]:
    """Every message the bot posted so far: in ``#new-music``, in ``#singles``, and each forum post's
    messages (its starter message first) in ``#lumen-forum``."""
    fake = stack.discord
    posts = [Post("#new-music", m) for m in fake.channel_messages(channels.new_music)]
    posts += [Post("#singles", m) for m in fake.channel_messages(channels.singles)]
    tag_names = {t["id"]: t["name"] for t in fake.forum_tags(channels.forum)}
    for thread in fake.threads(channels.forum):
        tags = ", ".join(tag_names.get(str(t), "?") for t in thread.get("applied_tags") or [])
        where = f"#lumen-forum ▸ forum post “{thread['name']}”" + (f" [{tags}]" if tags else "")
        posts += [Post(where, m) for m in fake.thread_messages(int(thread["id"]))]
    return posts


def _print_new(stack: Stack, channels: Channels, seen: set[str]) -> None:
    """Print the messages posted since ``seen`` (message ids, updated) as a reader would see them:
    where, who was pinged (as Discord computed it), the embeds."""
    new = [p for p in _posts(stack, channels) if p.message["id"] not in seen]
    seen.update(p.message["id"] for p in new)
    if not new:
        print("  (nothing posted)")
    contents = {p.message["id"]: p.message.get("content") or "" for p in _posts(stack, channels)}
    for post in new:
        message = post.message
        embeds = message.get("embeds") or []
        users = message.get("mentions") or []
        pinged = ", ".join(f"@{u.get('username')}" for u in users) or "none"
        print(f"  {post.where} ← {len(embeds)} embed{'s' * (len(embeds) != 1)}, mentions: {pinged}")
        reference = (message.get("message_reference") or {}).get("message_id")
        if reference is not None:
            print(f"    ↪ replying to “{contents.get(str(reference), '?')}”")
        text = _spoken(message.get("content") or "", users)
        if reference is not None or text.startswith("Announced:"):
            print(f"    “{text}”")
        for embed in embeds:
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


def _spoken(content: str, users: list[dict[str, Any]]) -> str:
    """``content`` with the user mentions ``<@id>`` of ``users`` shown as ``@name``."""
    for user in users:
        content = content.replace(f"<@{user['id']}>", f"@{user.get('username')}")
    return content


def _is_announcement(embed: dict[str, Any]) -> bool:
    """Whether ``embed`` is an announcement's (it links to a MusicBrainz release group), not a release's."""
    return str(embed.get("url") or "").startswith(RELEASE_GROUP_URL.format(""))


def _posted_titles(stack: Stack, channels: Channels) -> list[str]:
    """The title of every release embed posted anywhere (announcements left out), in :func:`_posts` order."""
    return [
        str(e.get("title"))
        for p in _posts(stack, channels)
        for e in p.message.get("embeds") or []
        if not _is_announcement(e)
    ]


def _announcements_and_replies(stack: Stack, channels: Channels) -> tuple[int, int]:
    """How many announcements were posted, and how many release posts reply to one."""
    posts = _posts(stack, channels)
    announcements = {p.message["id"] for p in posts if any(map(_is_announcement, p.message.get("embeds") or []))}
    replies = [p for p in posts if str((p.message.get("message_reference") or {}).get("message_id")) in announcements]
    return len(announcements), len(replies)


async def _reply(
    stack: Stack,
    name: str,
    options: dict[str, Any] | None = None,
    subcommand: str | None = None,
    *,
    user_id: int | None = None,
    channels: Channels | None = None,
) -> str:
    """Invoke slash command ``name`` as the admin (or ``user_id``) and print its reply (content, else embed
    fields; the mentions of ``channels`` shown by name)."""
    handle = await stack.command(name, options, subcommand=subcommand, user_id=user_id)
    text: str = handle.content or ""
    if not text and handle.embeds:
        text = " | ".join(f"{f['name']}: {f['value']}" for e in handle.embeds for f in e.get("fields") or [])
    shown = " ".join((text if channels is None else channels.named(text)).split())
    print(f"  ⮑ {shown}")
    return text


async def run_demo(weeks: int = 5) -> int:
    """Run the offline demo for ``weeks`` simulated weeks (1-10); returns the exit status."""
    from fakes.stack import SimClock, Stack

    with tempfile.TemporaryDirectory(prefix="release-bot-demo-") as tmp:
        clock = SimClock(dt.datetime(2026, 11, 16, 9, 0, tzinfo=dt.UTC))
        stack = await Stack.create(Path(tmp), clock=clock, scan_interval_seconds=0.1, music=True)
        stack.musicdata = True  # [musicbrainz] enabled: the daily look and the announcements
        ids = _seed_catalogue(stack.spotify)
        _seed_musicbrainz(stack, ids)
        channels = _add_channels(stack)
        seen: set[str] = set()
        try:
            print(
                "release-bot demo — offline: the real bot, emulators of Spotify, MusicBrainz and ListenBrainz "
                "and a Discord-compatible fake on 127.0.0.1"
            )
            print(
                "Server “Music Club”: #new-music, #singles and the forum #lumen-forum; members “admin” and “listener”. "
                f"Simulated time starts {clock().strftime('%A %d %b %Y %H:%M')} UTC.\n"
            )
            db = (await stack.start_bot()).core.db
            await _set_up_the_server(stack, ids, channels, seen)
            await _announce_ahead(stack, clock, channels, seen)
            for week in range(weeks):
                await _simulate_week(stack, db, clock, ids, week, channels, seen)
            print("\n▶ restart the bot, then /refresh — nothing is posted twice")
            db = (await stack.restart_bot()).core.db
            await _reply(stack, "refresh")
            _print_new(stack, channels, seen)
            await _print_history(db)
            titles = _posted_titles(stack, channels)
            announced, replies = _announcements_and_replies(stack, channels)
            print(
                f"\n{len(titles)} releases posted, {len(titles) - len(set(titles))} duplicates; "
                f"{announced} announced ahead, {replies} posted as a reply to the announcement; "
                f"{len(stack.spotify.request_log)} Spotify requests in all."
            )
        finally:
            await stack.close()
    return 0


def _seed_catalogue(sp: SpotifyEmulator) -> dict[str, str]:
    """Add :data:`CATALOGUE` to the emulator; returns ``{artist name: Spotify id}``."""
    ids: dict[str, str] = {}
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
    return ids


def _seed_musicbrainz(stack: Stack, ids: dict[str, str]) -> None:
    """Add :data:`CATALOGUE`'s artists to MusicBrainz, linked to their Spotify ids (how the bot maps them)."""
    mb = stack.musicbrainz
    assert mb is not None  # the stack runs with music=True
    for name, spotify_id in ids.items():
        mb.add_artist(_mbid(name), name, spotify_id=spotify_id)


async def _announce_ahead(stack: Stack, clock: SimClock, channels: Channels, seen: set[str]) -> None:
    """MusicBrainz lists :data:`ANNOUNCED` (out on week 1's Friday), ListenBrainz serves it among its fresh
    releases; on the Tuesday before, the bot's daily look stores it and announces it. (The music-data task
    looks at start-up and every 15 minutes; the demo makes that look at once.)"""
    mb, lb = stack.musicbrainz, stack.listenbrainz
    assert mb is not None and lb is not None and stack.bot is not None
    friday = dt.date(2026, 11, 20)
    group, release, artist = _mbid(ANNOUNCED.title), _mbid(ANNOUNCED.title + "/release"), _mbid(ANNOUNCED.artist)
    mb.add_release_group(group, ANNOUNCED.title, artist_mbids=[artist], first_release_date=friday.isoformat())
    mb.add_release(release, group, ANNOUNCED.title, barcode=ANNOUNCED.barcode, date=friday.isoformat())
    lb.add_release_group(
        group,
        release_mbid=release,
        release_name=ANNOUNCED.title,
        artist_credit_name=ANNOUNCED.artist,
        artist_mbids=[artist],
        first_release_date=friday.isoformat(),
        primary_type="Album",
    )
    print(
        f"\n── Announced ahead: MusicBrainz lists {ANNOUNCED.artist} “{ANNOUNCED.title}” (album), "
        f"out {friday:%A %d %b} ──"
    )
    clock.set(ANNOUNCE_AT)
    print(f"⏰ {ANNOUNCE_AT.strftime('%A %d %b %Y %H:%M')} UTC — the bot's daily MusicBrainz / ListenBrainz look")
    core = stack.bot.core
    assert core.musicdata is not None and core.announcer is not None  # [musicbrainz] enabled, and it posts
    await core.musicdata.run_daily()
    await core.announcer.run()
    _print_new(stack, channels, seen)


async def _set_up_the_server(stack: Stack, ids: dict[str, str], channels: Channels, seen: set[str]) -> None:
    """Act as the server admin: pick the channel, route singles to ``#singles`` and Lumen Choir to the
    forum, follow three artists three ways; as the member “listener”, ``/notify add`` two artists
    (mentions); turn on ``/settings upcoming``; then ``/refresh`` (the baseline)."""
    print("▶ /settings channel channel:#new-music")
    await _reply(stack, "settings", {"channel": channels.new_music}, "channel", channels=channels)
    print("▶ /settings route type:single channel:#singles")
    await _reply(stack, "settings", {"type": "single", "channel": channels.singles}, "route", channels=channels)
    url = f"https://open.spotify.com/artist/{ids['Nova Lights']}"
    print(f"▶ /follow artist:{url}")
    await _reply(stack, "follow", {"artist": url})
    choices = await stack.discord.autocomplete(
        stack.guild_id, stack.admin_id, "follow", {"artist": "quiet har"}, focused="artist"
    )
    print(f"▶ /follow artist:“quiet har” → autocomplete offers {[c['name'] for c in choices]}; picking the first")
    await _reply(stack, "follow", {"artist": choices[0]["value"]})
    print("▶ /follow artist:Lumen Choir")
    await _reply(stack, "follow", {"artist": "Lumen Choir"})
    print("▶ /settings route artist:Lumen Choir channel:#lumen-forum   (an artist's route wins over the type's)")
    await _reply(
        stack, "settings", {"artist": ids["Lumen Choir"], "channel": channels.forum}, "route", channels=channels
    )
    for artist in ("Nova Lights", "Lumen Choir"):
        print(f"▶ listener: /notify add artist:{artist}")
        await _reply(stack, "notify", {"artist": ids[artist]}, "add", user_id=stack.member_id)
    print("▶ /settings upcoming enabled:True   (post what MusicBrainz announces ahead)")
    await _reply(stack, "settings", {"enabled": True}, "upcoming")
    print("▶ /refresh   (the baseline: what is already out is not posted)")
    await _reply(stack, "refresh")
    _print_new(stack, channels, seen)


async def _simulate_week(
    stack: Stack, db: Database, clock: SimClock, ids: dict[str, str], week: int, channels: Channels, seen: set[str]
) -> None:
    """Week ``week`` (0-based): the emulator gains that week's releases of :data:`WEEKS` (a repeat gets
    a ``#n`` suffix), the clock passes Friday 12:00 and the bot's weekly run posts on its own."""
    plan = WEEKS[week % len(WEEKS)]
    friday = dt.datetime(2026, 11, 20, tzinfo=dt.UTC) + dt.timedelta(weeks=week)
    print(
        f"\n── Week {week + 1}: Spotify gains "
        + (", ".join(f"{a} “{t}” ({k})" for a, t, k, _n in plan) if plan else "nothing new")
        + " ──"
    )
    for artist, title, kind, tracks in plan:
        suffix = "" if week < len(WEEKS) else f" #{week // len(WEEKS) + 1}"
        stack.spotify.add_album(
            [ids[artist]],
            title + suffix,
            album_type=kind,
            release_date=friday.date().isoformat(),
            total_tracks=tracks,
            tracks=TRACKS.get(title) if not suffix else None,
            upc=ANNOUNCED.barcode if (artist, title) == (ANNOUNCED.artist, ANNOUNCED.title) and not suffix else None,
        )
    due = friday.replace(hour=12)
    print(f"⏰ {due.strftime('%A %d %b %Y %H:%M')} UTC — the weekly run, no command")
    before = await _finished_schedule_runs(db)
    clock.set(due + dt.timedelta(seconds=30))

    async def weekly_run_finished() -> bool:
        return await _finished_schedule_runs(db) > before

    await stack.until(weekly_run_finished, timeout=30, what="weekly run")
    _print_new(stack, channels, seen)


async def _print_history(db: Database) -> None:
    """Print the run history: one line per run, oldest first."""
    print("\n── Run history ──")
    print(
        f"  {'#':>2}  {'trigger':8} {'status':8} {'checked':>8} {'requests':>8} {'new':>4} {'posted':>6}  started (UTC)"
    )
    async with db.transaction() as session:
        history = await runs.all_runs(session)
    for run in history:
        print(
            f"  {run.id:>2}  {run.trigger:8} {run.status:8} "
            f"{f'{run.artists_checked}/{run.artists_due}':>8} {run.spotify_requests:>8} "
            f"{run.releases_found:>4} {run.releases_posted:>6}  {run.started_at:%a %d %b %H:%M}"
        )


async def _finished_schedule_runs(db: Database) -> int:
    """How many weekly (``schedule``) runs have finished."""
    async with db.transaction() as session:
        return await runs.count_finished(session, "schedule")
