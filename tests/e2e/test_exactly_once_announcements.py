"""The kill test (``test_exactly_once.py``) with announcements pending (docs/musicdata.md, "Announcements"):
``release-bot run`` as a real process with ``[musicbrainz] enabled`` against the MusicBrainz and ListenBrainz
emulators, in a server with ``/settings upcoming`` on, SIGKILLed at random points and restarted.

Each round MusicBrainz (ListenBrainz's fresh releases) announces a few release groups of the followed artists,
dated tomorrow, and Spotify lists some of the groups announced in earlier rounds (same title, dated today: the
matching's title-and-date rule) beside a few releases never announced. The daily fetch is made possible again
(the ``bot_state`` day claim removed, as when the UTC day turns). Then the process is killed twice:

* during its start-up — the music-data task's look (the daily fetch, then the Announcer's claims, sends and
  confirms, and the settling of what the previous process left), often a few ms after Discord answered the
  n-th announcement;
* during a ``/refresh`` — the out-now posts replying to announcements and the plain posts, often just after
  the n-th post was answered; the start-up look may still be announcing meanwhile.

At the end a clean process announces what is left, Spotify lists every announced group, and a clean
``/refresh`` posts the rest. Counted from what the Discord fake recorded: every release group announced
exactly once (no duplicate, none lost); every Spotify release posted exactly once; the post of each release
whose group was announced replies to that announcement, and no announcement gets two replies; no claim left
unsettled. Discord's nonce window is 0 in the fake, so only the ledgers and the settling count. Deterministic
choices (one seeded RNG); the kill timing follows the processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from fakes.discord_fake import DiscordFake
from fakes.listenbrainz_emulator import ListenBrainzEmulator
from fakes.musicbrainz_emulator import MusicBrainzEmulator
from fakes.spotify_emulator import SpotifyEmulator
from tests import backend
from tests.e2e.processes import BotProcess, process_config, until
from tests.e2e.test_exactly_once_destinations import Commands, embed_album, posts_since

SEED = 20261213
ROUNDS = 5  # two kills each: 10 SIGKILLs
RELEASE_GROUP_URL = "https://musicbrainz.org/release-group/"
# Distinct titles: no two score 90 under the title-and-date rule, so each Spotify release matches its own group.
WORDS = [
    "Amber Coast",
    "Blizzard",
    "Cascade",
    "Driftwood",
    "Ember Lane",
    "Foxglove",
    "Gravel Road",
    "Harbinger",
    "Ivory Tower",
    "Juniper",
    "Kaleidoscope",
    "Lullaby",
    "Monsoon",
    "Nightjar",
    "Obsidian",
    "Pinwheel",
    "Quicksand",
    "Riverbed",
    "Saffron",
    "Thistle",
    "Umbrella Sky",
    "Vortex",
    "Wildfire",
    "Xylophone",
    "Yarrow",
    "Zephyr",
]


@dataclass
class Group:
    """A release group announced on ListenBrainz: its MBID, artist (Spotify id), type and title; the Spotify
    album of it once Spotify lists it."""

    mbid: str
    artist: str
    album_type: str
    title: str
    album_id: str | None = None


def mbid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kill-announcements:{name}"))


async def sql(db_url: str, query: str) -> list[tuple]:
    """Run ``query`` on a connection of the test's own (the bot may be dead or alive); the rows, committed."""
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(query))
            return [tuple(r) for r in result.all()] if result.returns_rows else []
    finally:
        await engine.dispose()


async def next_day(db_url: str) -> None:
    """Let the daily fetch run again today, as when the UTC day turns (the day claim is removed)."""
    await sql(db_url, "delete from bot_state where key = 'musicdata:daily-fetch'")


async def posted_announcements(db_url: str) -> set[str]:
    """The release groups whose announcement the ledger holds as posted."""
    return {r[0] for r in await sql(db_url, "select release_group_mbid from upcoming_posts where status = 'posted'")}


async def unsettled(db_url: str) -> dict[str, int]:
    """Claims still unconfirmed, per ledger."""
    return {
        "deliveries claimed": (await sql(db_url, "select count(*) from deliveries where status = 'claimed'"))[0][0],
        "announcements claimed": (await sql(db_url, "select count(*) from upcoming_posts where status = 'claimed'"))[0][
            0
        ],
    }


def announcement_group(message: dict) -> str | None:
    """The release group MBID of an announcement (its embed links to the group on MusicBrainz), else None."""
    urls = [str(e.get("url") or "") for e in message.get("embeds") or []]
    found = [u.removeprefix(RELEASE_GROUP_URL) for u in urls if u.startswith(RELEASE_GROUP_URL)]
    return found[0] if found else None


@pytest.mark.timeout(300)
async def test_sigkill_with_announcements_pending_announces_once_and_replies_once(tmp_path):
    rng = random.Random(SEED)
    t0 = time.monotonic()
    today = dt.datetime.now(dt.UTC).date()
    tomorrow = today + dt.timedelta(days=1)
    async with (
        DiscordFake(nonce_window=0.0) as fake,
        SpotifyEmulator() as emu,
        MusicBrainzEmulator(rate_limit=None) as mb,
        ListenBrainzEmulator() as lb,
    ):
        guild = fake.add_guild("Kill Club")
        channel = fake.add_channel(guild, "new-music")
        admin = fake.add_member(guild, name="admin", manage_guild=True)
        db_url = backend.database_url(tmp_path, "kill")
        config = tmp_path / "config.toml"
        musicbrainz = {
            "enabled": True,
            "contact": "kill-test@example.org",
            "api_base_url": mb.base_url,
            "listenbrainz_api_base_url": lb.base_url,
        }
        config.write_text(
            process_config(fake, emu, db_url, scan_interval_seconds=3600, sections={"musicbrainz": musicbrainz})
        )
        command = Commands(fake, guild, admin, channel)
        procs: list[BotProcess] = []

        async def start_bot(wait: bool = True) -> BotProcess:
            before = fake.identify_count
            bp = BotProcess(config, tmp_path, f"bot-{len(procs):02d}")
            procs.append(bp)
            await bp.start()
            if wait:
                await until(lambda: fake.identify_count > before or not bp.alive, 60, f"{bp.name} to identify")
                assert bp.alive, bp.log()[-3000:]
                await fake.wait_for_ready(timeout=30)
            return bp

        async def aim(t: float, target: int, handle=None) -> None:
            """Return a few ms after the ``target``-th post since ``t`` was answered (or after 10 s, or once
            ``handle``'s command finished)."""
            deadline = time.monotonic() + 10
            while (  # noqa: ASYNC110 - polls the fake for a process's requests: no event to wait on
                posts_since(fake, t) < target
                and (handle is None or handle.final is None)
                and time.monotonic() < deadline
            ):
                await asyncio.sleep(0.0002)
            await asyncio.sleep(rng.uniform(0.0, 0.006))

        bot = await start_bot()
        await until(lambda: any(c["name"] == "refresh" for c in fake.registered_commands), 30, "command sync")
        artists = [emu.add_artist(f"Artist {i}") for i in range(3)]
        names = {a: f"Artist {i}" for i, a in enumerate(artists)}
        for i, a in enumerate(artists):
            mb.add_artist(mbid(f"artist-{i}"), names[a], spotify_id=a)
            emu.add_album([a], f"Old {i}", album_type="album", release_date="2024-01-01")
        await command("settings", {"channel": channel}, subcommand="channel")
        for a in artists:
            assert "ollowing" in ((await command("follow", {"artist": a})).content or "")
        assert "will be posted" in ((await command("settings", {"enabled": True}, subcommand="upcoming")).content or "")

        groups: list[Group] = []
        plain: list[str] = []  # Spotify releases never announced
        words = iter(WORDS)
        kills = start_up_kills = aimed = left_unsettled = left_announcements = 0

        def list_on_spotify(group: Group) -> None:
            group.album_id = emu.add_album(
                [group.artist], group.title, album_type=group.album_type, release_date=today.isoformat()
            )

        try:
            for _round in range(ROUNDS):
                for _ in range(rng.choice([2, 3, 4])):
                    artist, album_type = rng.choice(artists), rng.choice(["album", "single"])
                    group = Group(mbid(f"group-{len(groups)}"), artist, album_type, next(words))
                    lb.add_release_group(
                        group.mbid,
                        release_mbid=mbid(f"release-{len(groups)}"),
                        release_name=group.title,
                        artist_credit_name=names[artist],
                        artist_mbids=[mbid(f"artist-{artists.index(artist)}")],
                        first_release_date=tomorrow.isoformat(),
                        primary_type=album_type.capitalize(),
                    )
                    groups.append(group)
                announced = await posted_announcements(db_url)
                for group in groups:  # Spotify lists some of what was announced (never before its announcement)
                    if group.album_id is None and group.mbid in announced and rng.random() < 0.7:
                        list_on_spotify(group)
                for _ in range(rng.choice([0, 1, 2])):
                    plain.append(
                        emu.add_album([rng.choice(artists)], f"Plain {len(plain)}", release_date=today.isoformat())
                    )
                await next_day(db_url)

                # 1. Killed during start-up: the daily fetch, the announcements, the settling of the last claims.
                await bot.kill()
                bot = await start_bot(wait=False)
                t_start = time.monotonic()
                if rng.random() < 0.3:
                    await asyncio.sleep(rng.uniform(0.5, 4.0))
                else:
                    await aim(t_start, rng.randint(1, 3))
                    aimed += 1
                await bot.kill()
                kills += 1
                start_up_kills += 1
                claims = await unsettled(db_url)
                left_unsettled += any(claims.values())
                left_announcements += claims["announcements claimed"] > 0
                bot = await start_bot()

                # 2. Killed during a /refresh: out-now replies and plain posts (the start-up look may still run).
                await command("status")
                t_inv = time.monotonic()
                handle = await fake.invoke(guild, admin, "refresh", channel_id=channel)
                if rng.random() < 0.3:
                    await asyncio.sleep(rng.uniform(0.0, 0.4))
                else:
                    await aim(t_inv, rng.randint(1, 3), handle)
                    aimed += 1
                await bot.kill()
                kills += 1
                claims = await unsettled(db_url)
                left_unsettled += any(claims.values())
                left_announcements += claims["announcements claimed"] > 0
                bot = await start_bot()

            # A clean process: its start-up look fetches (a kill may have taken the day) and announces the rest;
            # then Spotify lists every announced group and a clean /refresh posts everything.
            await next_day(db_url)
            assert await bot.stop() == 0, bot.log()[-3000:]
            bot = await start_bot()
            everything = {g.mbid for g in groups}

            async def all_announced() -> bool:
                return everything <= await posted_announcements(db_url)

            with contextlib.suppress(TimeoutError):  # one lost is reported by the counts below
                await until(all_announced, 60, "every group announced")
            for group in groups:
                if group.album_id is None:
                    list_on_spotify(group)
            reply = await command("refresh", timeout=60)
            left = await unsettled(db_url)
            code = await bot.stop()
            assert code == 0, bot.log()[-3000:]
        finally:
            for p in procs:
                if p.alive:
                    await p.kill()

        messages = fake.channel_messages(channel)
        announcements: Counter = Counter()
        announcement_of: dict[str, str] = {}  # group mbid -> message id
        posted: Counter = Counter()
        replies: Counter = Counter()  # announcement message id -> replies to it
        replied_by: dict[str, str | None] = {}  # album id -> the message its post replies to
        for message in messages:
            group_mbid = announcement_group(message)
            if group_mbid is not None:
                announcements[group_mbid] += 1
                announcement_of[group_mbid] = message["id"]
                continue
            reference = (message.get("message_reference") or {}).get("message_id")
            if reference is not None:
                replies[str(reference)] += 1
            for album in embed_album(message):
                posted[album] += 1
                replied_by[album] = None if reference is None else str(reference)

        album_ids = [g.album_id for g in groups] + plain
        duplicates = {k: v for k, v in (announcements + posted).items() if v > 1}
        lost_announcements = [g.title for g in groups if g.mbid not in announcements]
        lost_posts = [a for a in album_ids if a not in posted]
        extra = [a for a in posted if a not in album_ids] + [m for m in announcements if m not in everything]
        wrong_replies = [
            f"{g.title}: replies to {replied_by.get(str(g.album_id))}, announced as {announcement_of.get(g.mbid)}"
            for g in groups
            if g.mbid in announcement_of and replied_by.get(str(g.album_id)) != announcement_of[g.mbid]
        ]
        wrong_replies += [f"{a}: a plain release replies to {replied_by[a]}" for a in plain if replied_by.get(a)]
        twice = {m: n for m, n in replies.items() if n > 1}
        logs = "".join(p.log() for p in procs)
        alarms = [line for line in logs.splitlines() if "IntegrityError" in line or " ERROR bot.delivery" in line]
        print(
            f"\nkill test, announcements: {kills} SIGKILLs ({start_up_kills} during start-up, {aimed} aimed just after "
            f"a post), {len(groups)} release groups announced by MusicBrainz, {sum(announcements.values())} "
            f"announcements posted, {len(album_ids)} Spotify releases ({len(plain)} never announced), "
            f"{sum(posted.values())} posted, {sum(replies.values())} as replies; {len(duplicates)} duplicates, "
            f"{len(lost_announcements)} + {len(lost_posts)} lost; {left_unsettled} kills left unsettled claims "
            f"({left_announcements} an announcement's); "
            f"{time.monotonic() - t0:.1f} s"
        )
        assert kills == 2 * ROUNDS and len(groups) >= 10
        assert not duplicates, duplicates
        assert not lost_announcements, lost_announcements
        assert not lost_posts, (lost_posts, reply.final)
        assert not extra, extra
        assert not wrong_replies, wrong_replies
        assert not twice, twice
        assert sum(replies.values()) == len(groups)
        assert left == {"deliveries claimed": 0, "announcements claimed": 0}, left
        assert not alarms, alarms[:5]
