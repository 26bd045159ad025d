"""The kill test (``test_exactly_once.py``) repeated for the destinations and subscribers of issue 12:
``release-bot run`` as a real process, SIGKILLed at random points of ``/refresh`` runs (often just
after Discord answered the n-th post, follow-up or DM) and of its own start-up, restarted each
time; at the end, counted from what the Discord fake recorded:

* ``forum`` — the default channel is a forum: every release is one forum post titled
  "Artist — Title", tagged with its type, exactly once (no duplicate thread, none lost);
* ``subscribers`` — a DM-mode member gets each release of their artists once by DM; a mention-mode
  member and a crowd of 95 more (so that every post about the first two artists needs a follow-up
  message past the 2,000-character content limit) are pinged once per post about their artists — the post's
  own mentions plus its follow-up, none twice, none lost;
* ``routed`` — singles routed to another channel by ``/settings route type:single``, and one
  artist routed by a stored route (``storage.routes.set_route``, which wins over the type route):
  every release once, in the channel its route names.

Discord's nonce window is 0 in the fake, so only the ledgers (``deliveries``, ``mention_posts``,
``dm_deliveries``) and the settling of unconfirmed claims count. Deterministic: one seeded RNG per
scenario picks the releases, the kill delays and the kill kinds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from fakes.discord_fake import DiscordFake
from fakes.spotify_emulator import SpotifyEmulator
from storage import members, routes
from storage.db import open_database
from tests import backend
from tests.e2e.processes import ALBUM_RE, BotProcess, process_config, until

SEED = 20261212
KILLS = 10
CROWD = 95  # mention-mode members of artists 0 and 1 beside the one subscribed to every artist: > 2,000 chars
TYPE_TAGS = {"album": "Album", "single": "Single"}


@dataclass
class World:
    """What one scenario set up: the guild's channels and who subscribes to what."""

    guild: int
    admin: int
    channel: int  # the default channel (a forum in ``forum``)
    artists: list[str]
    names: dict[str, str]
    singles: int | None = None  # ``routed``: the type route's channel
    artist_channel: int | None = None  # ``routed``: artist 2's route
    dm_user: int | None = None
    mention_users: dict[int, set[str]] = field(default_factory=dict)  # user → the artists they follow


@dataclass
class Injected:
    """A release put into the Spotify emulator: its id, its one artist, type and title."""

    album_id: str
    artist: str
    album_type: str
    title: str


async def unsettled(db_url: str) -> dict[str, int]:
    """Rows still claimed (or, for DMs and follow-ups, not yet sent) in each ledger, read on a
    connection of the test's own (the bot may be dead or alive)."""
    engine = create_async_engine(db_url)
    queries = {
        "deliveries claimed": "select count(*) from deliveries where status = 'claimed'",
        "follow-ups unsent": "select count(*) from mention_posts where status <> 'sent'",
        "dms unsent": "select count(*) from dm_deliveries where status <> 'sent'",
    }
    try:
        async with engine.connect() as conn:
            return {k: int((await conn.execute(text(q))).scalar_one()) for k, q in queries.items()}
    finally:
        await engine.dispose()


def embed_album(message: dict) -> list[str]:
    """The album ids of a message's embeds (their Spotify urls)."""
    return [m.group(1) for e in message.get("embeds") or [] if (m := ALBUM_RE.fullmatch(e.get("url") or ""))]


async def set_up(scenario: str, fake: DiscordFake, emu: SpotifyEmulator, command, db_url: str) -> World:
    """The scenario's channels, routes and subscriptions (the bot is up, the guild has none yet)."""
    guild, admin = command.guild, command.admin
    artists = [emu.add_artist(f"Artist {i}", followers=1000 * (i + 1)) for i in range(3)]
    names = {a: f"Artist {i}" for i, a in enumerate(artists)}
    for i, a in enumerate(artists):
        for j in range(2):
            emu.add_album([a], f"Old {i}.{j}", album_type="album", release_date=f"2024-0{j + 1}-01")
    text_channel = command.channel
    if scenario == "forum":
        channel = fake.add_channel(guild, "releases", kind="forum", tags=list(TYPE_TAGS.values()))
    else:
        channel = text_channel
    world = World(guild, admin, channel, artists, names)
    await command("settings", {"channel": channel}, subcommand="channel")
    for a in artists:
        reply = await command("follow", {"artist": a})
        assert "ollowing" in (reply.content or ""), reply.final
    if scenario == "routed":
        world.singles = fake.add_channel(guild, "singles")
        world.artist_channel = fake.add_channel(guild, "artist-2")
        reply = await command("settings", {"type": "single", "channel": world.singles}, subcommand="route")
        assert f"<#{world.singles}>" in (reply.content or ""), reply.final
        db = await open_database(db_url)
        try:
            async with db.transaction() as session:
                await routes.set_route(session, guild, "artist", artists[2], world.artist_channel)
        finally:
            await db.close()
    if scenario == "subscribers":
        world.dm_user = fake.add_member(guild, name="dm-fan")
        fan = fake.add_member(guild, name="mention-fan")
        crowd = [fake.add_member(guild, name=f"crowd-{i}") for i in range(CROWD)]
        world.mention_users = {fan: set(artists)} | {u: set(artists[:2]) for u in crowd}
        subscriptions = {world.dm_user: set(artists[:2])} | world.mention_users
        db = await open_database(db_url)
        now = dt.datetime.now(dt.UTC)
        try:
            async with db.transaction() as session:
                for user, followed in subscriptions.items():
                    for a in sorted(followed):
                        added = await members.subscribe(session, guild, user, a, now=now, limit=100)
                        assert added.status == "added", added
                await members.set_mode(session, guild, world.dm_user, "dm")
        finally:
            await db.close()
    return world


def check_forum(fake: DiscordFake, world: World, injected: list[Injected]) -> tuple[Counter, list[str]]:
    """Posts per album id in the forum, and what is wrong with their titles or tags."""
    tags = {t["name"]: int(t["id"]) for t in fake.forum_tags(world.channel)}
    by_id = {r.album_id: r for r in injected}
    posted: Counter = Counter()
    wrong: list[str] = []
    assert fake.channel_messages(world.channel) == []  # nothing but posts in a forum
    for thread in fake.threads(world.channel):
        starter, *rest = fake.thread_messages(int(thread["id"]))
        albums = embed_album(starter)
        posted.update(albums)
        release = by_id.get(albums[0]) if len(albums) == 1 else None
        if release is None or rest:
            wrong.append(f"thread {thread['name']!r}: albums {albums}, {len(rest)} more messages")
            continue
        title = f"{world.names[release.artist]} — {release.title}"
        applied = [int(t) for t in thread.get("applied_tags") or []]
        if thread["name"] != title or applied != [tags[TYPE_TAGS[release.album_type]]]:
            wrong.append(f"thread {thread['name']!r} (tags {applied}) for {title!r} ({release.album_type})")
    return posted, wrong


def check_routed(fake: DiscordFake, world: World, injected: list[Injected]) -> tuple[Counter, list[str]]:
    """Posts per album id over the three channels, and the releases found in the wrong channel."""
    assert world.singles is not None and world.artist_channel is not None
    where: dict[str, int] = {}
    for r in injected:
        if r.artist == world.artists[2]:
            where[r.album_id] = world.artist_channel
        else:
            where[r.album_id] = world.singles if r.album_type == "single" else world.channel
    posted: Counter = Counter()
    wrong: list[str] = []
    for channel in (world.channel, world.singles, world.artist_channel):
        for message in fake.channel_messages(channel):
            for album in embed_album(message):
                posted[album] += 1
                if where.get(album) != channel:
                    wrong.append(f"{album} in channel {channel}, routed to {where.get(album)}")
    return posted, wrong


@dataclass
class MentionCount:
    """``pings[user]`` — times the fake recorded the user as pinged in the channel; ``owed[user]`` — posts
    about an artist they follow (each must ping them exactly once, in the post or its follow-up);
    ``follow_ups`` — messages without embeds (mention follow-ups); ``owed_follow_ups`` — posts that
    need one (those about artists 0 or 1, whose subscribers do not fit in 2,000 characters)."""

    pings: Counter = field(default_factory=Counter)
    owed: Counter = field(default_factory=Counter)
    follow_ups: int = 0
    owed_follow_ups: int = 0

    @property
    def wrong(self) -> dict[int, tuple[int, int]]:
        """``{user: (pinged, owed)}`` where they differ."""
        users = set(self.pings) | set(self.owed)
        return {u: (self.pings[u], self.owed[u]) for u in users if self.pings[u] != self.owed[u]}


def check_subscribers(
    fake: DiscordFake, world: World, injected: list[Injected]
) -> tuple[Counter, MentionCount, Counter]:
    """Posts per album id, the mention counts, and DMs per album id of the DM-mode member."""
    assert world.dm_user is not None
    artist_of = {r.album_id: r.artist for r in injected}
    posted: Counter = Counter()
    count = MentionCount()
    for message in fake.channel_messages(world.channel):
        albums = embed_album(message)
        posted.update(albums)
        count.pings.update(int(u["id"]) for u in message.get("mentions") or [])
        if not albums:
            count.follow_ups += 1
            continue
        artists = {artist_of.get(a) for a in albums}
        count.owed.update(u for u, followed in world.mention_users.items() if followed & artists)
        count.owed_follow_ups += bool(set(world.artists[:2]) & artists)
    dms: Counter = Counter(a for m in fake.dms(world.dm_user) for a in embed_album(m))
    return posted, count, dms


def posts_since(fake: DiscordFake, t: float) -> int:
    """Messages, forum posts and DMs the bot created since ``t`` (``time.monotonic()``)."""
    return sum(
        1
        for r in fake.requests("POST")
        if r.at >= t and (r.path.endswith("/messages") or r.path.endswith("/threads")) and r.status < 300
    )


class Commands:
    """Slash commands as the guild's admin, in its text channel."""

    def __init__(self, fake: DiscordFake, guild: int, admin: int, channel: int) -> None:
        self.fake, self.guild, self.admin, self.channel = fake, guild, admin, channel

    async def __call__(self, name: str, options: dict | None = None, subcommand: str | None = None, timeout=30.0):
        handle = await self.fake.invoke(
            self.guild, self.admin, name, options or {}, subcommand=subcommand, channel_id=self.channel
        )
        await handle.wait_done(timeout=timeout)
        return handle


@pytest.mark.timeout(150)
@pytest.mark.parametrize("scenario", ["forum", "subscribers", "routed"])
async def test_sigkill_during_delivery_posts_every_release_exactly_once_per_destination(tmp_path, scenario):
    rng = random.Random(f"{SEED}:{scenario}")
    t0 = time.monotonic()
    async with DiscordFake(nonce_window=0.0) as fake, SpotifyEmulator() as emu:
        guild = fake.add_guild("Kill Club")
        text_channel = fake.add_channel(guild, "new-music")
        admin = fake.add_member(guild, name="admin", manage_guild=True)
        db_url = backend.database_url(tmp_path, "kill")
        config = tmp_path / "config.toml"
        config.write_text(
            process_config(
                fake,
                emu,
                db_url,
                scan_interval_seconds=3600,
                sections={"delivery": {"dm_per_second": 20.0, "retry_seconds": 1.0}},
            )
        )
        command = Commands(fake, guild, admin, text_channel)
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

        bot = await start_bot()
        await until(lambda: any(c["name"] == "refresh" for c in fake.registered_commands), 30, "command sync")
        world = await set_up(scenario, fake, emu, command, db_url)

        injected: list[Injected] = []
        kills = start_up_kills = mid_delivery = left_unsettled = 0
        n_release = 0
        try:
            while kills < KILLS:
                for _ in range(rng.choice([0, 1, 3, 5, 7])):
                    n_release += 1
                    artist = rng.choice(world.artists)
                    album_type = rng.choice(["single", "album"])
                    title = f"New {n_release}"
                    album = emu.add_album(
                        [artist], title, album_type=album_type, release_date=dt.date.today().isoformat()
                    )
                    injected.append(Injected(album, artist, album_type, title))
                if kills % 5 == 4:
                    # Kill during start-up (settling unconfirmed claims and DMs happens there).
                    await bot.kill()
                    kills += 1
                    start_up_kills += 1
                    bot = await start_bot(wait=False)
                    await asyncio.sleep(rng.uniform(0.3, 1.6))
                else:
                    await command("status")  # the process is up and answering
                    t_inv = time.monotonic()
                    handle = await fake.invoke(guild, admin, "refresh", channel_id=text_channel)
                    if rng.random() < 0.4:
                        await asyncio.sleep(rng.uniform(0.0, 0.4))  # anywhere in the run
                    else:
                        # Mid-delivery: a few ms after the n-th post, follow-up or DM was answered, i.e.
                        # between its send and its confirm, or at the next one's claim or send.
                        target = rng.randint(1, 3)
                        deadline = time.monotonic() + 5
                        while (  # noqa: ASYNC110 - polls the fake for a process's requests: no event to wait on
                            posts_since(fake, t_inv) < target and handle.final is None and time.monotonic() < deadline
                        ):
                            await asyncio.sleep(0.0002)
                        await asyncio.sleep(rng.uniform(0.0, 0.006))
                        mid_delivery += 1
                await bot.kill()
                kills += 1
                if any((await unsettled(db_url)).values()):
                    left_unsettled += 1
                bot = await start_bot()

            # A clean, complete run at the end; then the DM outbox drains in the background.
            reply = await command("refresh", timeout=60)
            if scenario == "subscribers":
                assert world.dm_user is not None
                owed = sum(1 for r in injected if r.artist in world.artists[:2])
                dm_user = world.dm_user
                await until(lambda: len(fake.dms(dm_user)) >= owed, 30, f"{owed} DMs")
            left = await unsettled(db_url)
            code = await bot.stop()
            assert code == 0, bot.log()[-3000:]
        finally:
            for p in procs:
                if p.alive:
                    await p.kill()

        logs = "".join(p.log() for p in procs)
        ids = [r.album_id for r in injected]
        detail = ""
        wrong: list[str] | dict = []
        dms: Counter = Counter()
        if scenario == "forum":
            posted, wrong = check_forum(fake, world, injected)
        elif scenario == "routed":
            posted, wrong = check_routed(fake, world, injected)
        else:
            posted, mentions, dms = check_subscribers(fake, world, injected)
            wrong = mentions.wrong
            detail = (
                f"; {sum(mentions.pings.values())} pings of {len(world.mention_users)} members "
                f"(owed {sum(mentions.owed.values())}), {mentions.follow_ups} follow-ups "
                f"(owed {mentions.owed_follow_ups}), {sum(dms.values())} DMs"
            )
        duplicates = {k: v for k, v in posted.items() if v > 1}
        lost = [r for r in ids if r not in posted]
        extra = [r for r in posted if r not in ids]
        print(
            f"\nkill test, {scenario}: {kills} SIGKILLs ({start_up_kills} during start-up, {mid_delivery} aimed "
            f"mid-delivery), {len(injected)} releases injected, {sum(posted.values())} posted, "
            f"{len(duplicates)} duplicates, {len(lost)} lost{detail}; {left_unsettled} kills left "
            f"unsettled ledger rows; {time.monotonic() - t0:.1f} s"
        )
        assert kills >= KILLS and len(injected) >= 15
        assert not duplicates, duplicates
        assert not lost, (lost, reply.final)
        assert not extra, extra
        assert not wrong, wrong
        assert left == {"deliveries claimed": 0, "follow-ups unsent": 0, "dms unsent": 0}, left
        # The deliverer and the DM outbox log an ERROR when a post or DM was sent but its claim had gone.
        alarms = [line for line in logs.splitlines() if "IntegrityError" in line or " ERROR bot.delivery" in line]
        assert not alarms, alarms[:5]
        if scenario == "subscribers":
            assert world.dm_user is not None
            owed_dms = [r.album_id for r in injected if r.artist in world.artists[:2]]
            assert dms == Counter(owed_dms), (dms - Counter(owed_dms), Counter(owed_dms) - dms)
            assert mentions.follow_ups == mentions.owed_follow_ups > 0
