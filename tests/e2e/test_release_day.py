"""End to end through the fakes, with the real discord.py client: release-day posting (docs/musicdata.md,
"Release day"). MusicBrainz and ListenBrainz announce two releases for Friday D; the daily signal job
stores them; a guild with ``/settings schedule release_day:true`` gets the one Spotify lists at
midnight (New York: the ``US`` market) from the probe shortly after, at once — a second guild without
release day gets it in its weekly post at noon, and the weekly run does not post it again to the
first. The release Spotify never lists is probed k times, then no more.

The stack's simulated clock is moved by the test; the bot's two APScheduler jobs look every 0.1 s of
real time, and every wait is bounded."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from bot.scheduling.release_day import ReleaseDayProber
from bot.settings import ReleaseDaySettings
from fakes.stack import Stack
from storage import musicdata, release_day, runs
from storage.models import ReleaseDayProbe
from tests import backend

pytestmark = pytest.mark.timeout(180)

UTC = dt.UTC
D = dt.date(2026, 11, 20)  # a Friday; the guilds' weekly post is Friday 12:00 UTC (the stack's default)
UPC = "602445791234"


def mbid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"release-day:{name}"))


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def announce(stack: Stack, key: str, title: str, artist_key: str, artist_name: str, *, barcode: str | None) -> None:
    """MusicBrainz gets release group ``key`` (and its release) dated D; ListenBrainz lists it as fresh."""
    mb, lb = stack.musicbrainz, stack.listenbrainz
    assert mb is not None and lb is not None
    mb.add_release_group(mbid(key), title, artist_mbids=[mbid(artist_key)], first_release_date=D.isoformat())
    mb.add_release(mbid(f"{key}/release"), mbid(key), title, barcode=barcode, date=D.isoformat())
    lb.add_release_group(
        mbid(key),
        release_mbid=mbid(f"{key}/release"),
        release_name=title,
        artist_credit_name=artist_name,
        artist_mbids=[mbid(artist_key)],
        first_release_date=D.isoformat(),
        primary_type="Album",
    )


async def probe_row(stack: Stack, key: str) -> ReleaseDayProbe | None:
    async with backend.running_bot(stack).core.db.transaction() as session:
        return await release_day.probe_row(session, mbid(key), D)


async def probed(stack: Stack, key: str, probes: int, next_at: dt.datetime | None) -> bool:
    """The probe row of ``key`` shows ``probes`` probes made and finished (the next one due at ``next_at``)."""
    row = await probe_row(stack, key)
    return row is not None and row.probes == probes and row.next_probe_at == next_at


async def stored_groups(stack: Stack) -> set[str]:
    async with backend.running_bot(stack).core.db.transaction() as session:
        return {g.mbid for g in await musicdata.unmatched_release_groups(session, since=D)}


async def runs_of(stack: Stack, trigger: str) -> int:
    async with backend.running_bot(stack).core.db.transaction() as session:
        return sum(1 for r in await runs.all_runs(session) if r.trigger == trigger)


def prober(stack: Stack) -> ReleaseDayProber:
    found = backend.running_bot(stack).core.release_day
    assert found is not None, "the prober is built when [musicbrainz] is enabled"
    return found


async def test_a_release_announced_for_today_is_posted_on_its_day_to_release_day_guilds_only(tmp_path):
    stack: Stack = await backend.create_stack(tmp_path, music=True)
    sp, mb, fake = stack.spotify, stack.musicbrainz, stack.discord
    assert mb is not None
    stack.musicdata = True
    stack.release_day = ReleaseDaySettings.model_construct(
        max_probes=3, probe_hours=[0.25, 2.0, 6.0, 12.0], interval_seconds=stack.scan_interval_seconds
    )
    try:
        nova = sp.add_artist("Nova Lights")
        harbour = sp.add_artist("The Quiet Harbour")
        for artist in (nova, harbour):
            sp.add_album([artist], "Back Catalogue", release_date="2020-01-01")
        mb.add_artist(mbid("nova"), "Nova Lights", spotify_id=nova)
        mb.add_artist(mbid("harbour"), "The Quiet Harbour", spotify_id=harbour)
        other_guild = fake.add_guild("Weekly Club")
        other_channel = fake.add_channel(other_guild, "releases")
        other_admin = fake.add_member(other_guild, name="other-admin", manage_guild=True)

        await stack.start_bot()  # Monday 09:00: the day's signal job runs at start-up, nothing followed yet
        await stack.command("settings", {"channel": stack.channel_id}, subcommand="channel")
        await stack.command("follow", {"artist": nova})
        await stack.command("follow", {"artist": harbour})
        reply = await stack.command("settings", {"release_day": True}, subcommand="schedule")
        assert "Release day: on." in reply.content, reply.content
        for name, options, sub in (
            ("settings", {"channel": other_channel}, "channel"),
            ("follow", {"artist": nova}, None),
        ):
            handle = await fake.invoke(
                other_guild, other_admin, name, options, subcommand=sub, channel_id=other_channel
            )
            await handle.wait_done(timeout=15)

        # Tuesday: MusicBrainz and ListenBrainz know both releases for D; the daily job (at start-up of
        # the restarted process) maps the artists and stores them.
        announce(stack, "fresh", "Fresh Album", "nova", "Nova Lights", barcode=UPC)
        announce(stack, "ghost", "Ghost Record", "harbour", "The Quiet Harbour", barcode=None)
        await stack.stop_bot()
        stack.clock.set(at(17, 9))
        await stack.start_bot()
        await stack.until(lambda: stored_groups(stack), timeout=30, what="the daily job storing the announced releases")
        assert await stored_groups(stack) == {mbid("fresh"), mbid("ghost")}

        # Thursday 18:30 in New York (23:30 UTC): not D yet in the market's zone — nothing seeded.
        stack.clock.set(at(19, 23, 30))
        assert await prober(stack).scan() == []
        assert await probe_row(stack, "fresh") is None

        # Midnight in New York: Spotify lists the album; the probes are seeded, the first due at 00:15.
        stack.clock.set(at(20, 5, 0))
        sp.add_album([nova], "Fresh Album", release_date=D.isoformat(), upc=UPC)
        assert await prober(stack).scan() == []
        first = at(20, 5, 15)
        assert await probed(stack, "fresh", 0, first) and await probed(stack, "ghost", 0, first)
        assert stack.posted_titles() == []

        # 00:16: the job's probe finds it and posts it at once in the release-day guild only.
        stack.clock.set(at(20, 5, 16))
        await stack.until(lambda: stack.posted_titles(), timeout=20, what="the release-day post")
        assert stack.posted_titles() == ["Fresh Album"]
        await stack.until(lambda: probed(stack, "ghost", 1, at(20, 7)), timeout=20, what="the ghost's first probe")
        fresh = await probe_row(stack, "fresh")
        assert fresh is not None and fresh.found_at is not None and fresh.probes == 1
        assert fresh.spotify_release_id is not None and fresh.next_probe_at is None
        assert fake.channel_messages(other_channel) == []

        # The release Spotify never lists: probed at 02:00 and 06:00 (New York), then k = 3 is reached.
        stack.clock.set(at(20, 7, 1))
        await stack.until(lambda: probed(stack, "ghost", 2, at(20, 11)), timeout=20, what="the second probe")
        stack.clock.set(at(20, 11, 1))
        await stack.until(lambda: probed(stack, "ghost", 3, None), timeout=20, what="the third probe")

        # Noon UTC: the weekly run posts it to the other guild; the release-day guild does not get it again.
        stack.clock.set(at(20, 12, 1))
        await stack.until(
            lambda: [e for m in fake.channel_messages(other_channel) for e in m.get("embeds") or []],
            timeout=30,
            what="the weekly post of the other guild",
        )

        async def weekly_finished() -> bool:
            async with backend.running_bot(stack).core.db.transaction() as session:
                return await runs.count_finished(session, "schedule") >= 1

        await stack.until(weekly_finished, timeout=30, what="the weekly run's end")
        other_titles = [e.get("title") for m in fake.channel_messages(other_channel) for e in m.get("embeds") or []]
        assert other_titles == ["Fresh Album"]
        assert stack.posted_titles() == ["Fresh Album"]

        # Later that day (12:00 in New York) and just before its end: no probe beyond k.
        for when in (at(20, 17, 1), at(21, 4, 59)):
            stack.clock.set(when)
            assert await prober(stack).scan() == []
        ghost = await probe_row(stack, "ghost")
        assert ghost is not None and (ghost.probes, ghost.found_at, ghost.next_probe_at) == (3, None, None)
        assert await runs_of(stack, "release_day") == 4  # 1 probe of the found release + 3 of the other
        assert stack.posted_titles() == ["Fresh Album"]
    finally:
        await stack.close()
