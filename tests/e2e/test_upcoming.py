"""End to end with the real discord.py client against the Discord fake, the Spotify emulator and the
MusicBrainz / ListenBrainz emulators: ``/settings upcoming`` on, the daily job finds releases announced
ahead → one post each with cover art; a new date → that message edited once ("postponed to …"); a
disappearance → edited; Spotify lists one → its release post replies to the announcement ("Out now!");
a crash between send and confirm → still one message; a server with it off gets nothing, and another
server never sees another's; ``/upcoming`` lists them."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from sqlalchemy import select

from fakes.listenbrainz_emulator import ListenBrainzEmulator
from fakes.stack import Stack
from storage import upcoming
from storage.models import UpcomingPost
from tests import backend

pytestmark = pytest.mark.timeout(180)


def mbid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def announce(lb: ListenBrainzEmulator, title: str, day: dt.date, primary: str = "Album") -> str:
    return lb.add_release_group(
        mbid(title),
        release_mbid=mbid(title + "/release"),
        release_name=title,
        artist_credit_name="Nova Lights",
        artist_mbids=[mbid("nova")],
        first_release_date=day.isoformat(),
        primary_type=primary,
        caa_id=777,
        caa_release_mbid=mbid(title + "/release"),
    )


def by_title(stack: Stack, title: str) -> dict:
    [message] = [m for m in stack.posted() if f"*{title}*" in (m.get("content") or "")]
    return message


async def ledger(stack: Stack) -> list[UpcomingPost]:
    async with backend.running_bot(stack).core.db.sessions() as session:
        return list((await session.scalars(select(UpcomingPost))).all())


async def look(stack: Stack) -> None:
    """One look of the music-data cog's task in the running bot: the daily job (once per UTC day), then the
    announcements. (The task itself runs at start-up and every 15 minutes: tests/cogs/test_upcoming.py.)"""
    core = backend.running_bot(stack).core
    assert core.musicdata is not None and core.announcer is not None
    await core.musicdata.run_daily()
    await core.announcer.run()


async def test_announcements_end_to_end(tmp_path, monkeypatch):
    stack = await backend.create_stack(tmp_path, music=True)
    stack.musicdata = True  # [musicbrainz] enabled: the daily job and the announcements run
    try:
        await run(stack, monkeypatch)
    finally:
        await stack.close()


async def run(stack: Stack, monkeypatch) -> None:
    sp, fake = stack.spotify, stack.discord
    mb, lb = stack.musicbrainz, stack.listenbrainz
    assert mb is not None and lb is not None
    nova, harbour = sp.add_artist("Nova Lights"), sp.add_artist("The Quiet Harbour")
    mb.add_artist(mbid("nova"), "Nova Lights", spotify_id=nova)
    mb.add_artist(mbid("harbour"), "The Quiet Harbour", spotify_id=harbour)
    other = fake.add_guild("Other Club")
    other_channel = fake.add_channel(other, "releases")
    other_admin = fake.add_member(other, name="other-admin", manage_guild=True)
    off = fake.add_guild("Quiet Club")
    off_channel = fake.add_channel(off, "releases")
    off_admin = fake.add_member(off, name="quiet-admin", manage_guild=True)
    await stack.start_bot()

    async def in_guild(guild: int, admin: int, channel: int, name: str, options: dict, sub: str | None = None):
        handle = await fake.invoke(guild, admin, name, options, subcommand=sub, channel_id=channel)
        await handle.wait_done(timeout=15)
        return handle

    await stack.command("settings", {"channel": stack.channel_id}, subcommand="channel")
    await stack.command("follow", {"artist": nova})
    turned_on = await stack.command("settings", {"enabled": True}, subcommand="upcoming")
    assert "will be posted" in turned_on.content
    await in_guild(other, other_admin, other_channel, "settings", {"channel": other_channel}, "channel")
    await in_guild(other, other_admin, other_channel, "follow", {"artist": harbour})
    await in_guild(other, other_admin, other_channel, "settings", {"enabled": True}, "upcoming")
    await in_guild(off, off_admin, off_channel, "settings", {"channel": off_channel}, "channel")
    await in_guild(off, off_admin, off_channel, "follow", {"artist": nova})  # follows Nova, upcoming off

    today = stack.clock().date()
    night, moon, ghost = today + dt.timedelta(days=25), today + dt.timedelta(days=20), today + dt.timedelta(days=15)
    announce(lb, "Night Drive", night)
    announce(lb, "Paper Moon", moon, "Single")
    announce(lb, "Ghost Track", ghost, "EP")
    stack.clock.advance(days=1)  # the next daily job lists them, ahead of their dates
    await look(stack)
    assert len(stack.posted()) == 3
    nd = by_title(stack, "Night Drive")
    assert nd["content"] == f"Announced: *Night Drive* — Nova Lights · out {night:%A} {night.day} {night:%B}"
    [embed] = nd["embeds"]
    assert embed["thumbnail"]["url"] == f"https://coverartarchive.org/release/{mbid('Night Drive/release')}/777-250.jpg"
    assert embed["url"] == f"https://musicbrainz.org/release-group/{mbid('Night Drive')}"
    assert fake.channel_messages(other_channel) == [] and fake.channel_messages(off_channel) == []

    listing = await stack.command("upcoming", user_id=stack.member_id)
    lines = listing.embeds[0]["description"].splitlines()
    assert [line.split("[*")[1].split("*]")[0] for line in lines] == ["Ghost Track", "Paper Moon", "Night Drive"]

    # A new date edits its message once; a disappearance edits its message; never a new post.
    later = night + dt.timedelta(days=7)
    lb.update_release_group(mbid("Night Drive"), first_release_date=later.isoformat())
    lb.remove_release_group(mbid("Ghost Track"))
    stack.clock.advance(days=1)
    await look(stack)
    await look(stack)  # another look (another process's, say): nothing more
    assert by_title(stack, "Night Drive")["content"].endswith(f"postponed to {later:%A} {later.day} {later:%B}")
    assert by_title(stack, "Night Drive")["_edits"] == 1 and by_title(stack, "Ghost Track")["_edits"] == 1
    assert len(stack.posted()) == 3

    # Spotify lists Paper Moon: the run's post of it replies to the announcement.
    sp.add_album([nova], "Paper Moon", album_type="single", release_date=moon.isoformat(), total_tracks=1)
    stack.clock.set(dt.datetime.combine(moon, dt.time(10), tzinfo=dt.UTC))
    await stack.command("refresh")
    await stack.until(lambda: len(stack.posted()) == 4, timeout=30, what="the release post")
    out_now = stack.posted()[-1]
    assert out_now["content"] == "Out now!"
    assert str(out_now["message_reference"]["message_id"]) == by_title(stack, "Paper Moon")["id"]
    assert out_now["embeds"][0]["title"] == "Paper Moon"
    await stack.command("refresh")
    assert len(stack.posted()) == 4

    # A crash between send and confirm: after the restart the claim is found posted; one message.
    crashed = asyncio.Event()

    async def crash(*args: object, **kwargs: object) -> bool:
        crashed.set()
        raise asyncio.CancelledError

    monkeypatch.setattr(upcoming, "confirm", crash)
    announce(lb, "Last Light", stack.clock().date() + dt.timedelta(days=30))
    stack.clock.advance(days=1)
    with pytest.raises(asyncio.CancelledError):
        await look(stack)
    assert crashed.is_set()
    await stack.stop_bot()
    monkeypatch.undo()
    assert len([m for m in stack.posted() if "*Last Light*" in (m.get("content") or "")]) == 1
    await stack.start_bot()  # its start-up look settles the claim

    async def settled() -> bool:
        rows = {r.release_group_mbid: r for r in await ledger(stack)}
        return rows[mbid("Last Light")].status == "posted"

    await stack.until(settled, timeout=30, what="the claim settled")
    await asyncio.sleep(0.5)
    last = by_title(stack, "Last Light")
    rows = {(r.guild_id, r.release_group_mbid): r for r in await ledger(stack)}
    assert rows[(stack.guild_id, mbid("Last Light"))].message_id == int(last["id"])
    assert {g for g, _m in rows} == {stack.guild_id}  # the other servers have no announcement at all
    assert fake.channel_messages(other_channel) == []
    [release_post] = fake.channel_messages(off_channel)  # upcoming off: the release's ordinary post only
    assert release_post["content"] == "" and "message_reference" not in release_post
