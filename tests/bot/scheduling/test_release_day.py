"""Release-day probing end to end without Discord: the prober over a real store, the runner (the tracker on
the Spotify emulator through the real client, the deliverer on a fake sender), an injected clock — no
sleeping. The market is US: release days start at midnight New York time (05:00 UTC in November), so
the default probes are due at 05:15, 07:00, 11:00 and 17:00 UTC."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

import pytest

from bot.delivery import Deliverer
from bot.scheduling.release_day import ReleaseDayProber, market_zone, next_probe_at, probe_times
from bot.scheduling.runner import Runner, RunSummary
from bot.spotify.client import SpotifyClient
from bot.tracking import Tracker
from fakes.spotify_emulator import SpotifyEmulator
from fakes.stack import wait_for
from storage import guilds, musicdata, release_day, runs, spotify_state
from storage.musicdata import ReleaseGroupRow
from tests.bot.helpers import FakeSender, add_guild, emulator_client, follow

UTC = dt.UTC
DAY = dt.date(2026, 11, 20)  # a Friday
MIDNIGHT_NY = dt.datetime(2026, 11, 20, 5, 0, tzinfo=UTC)
MBID = "00000000-0000-4000-8000-000000000001"


def at(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, 20, hour, minute, tzinfo=UTC)


class World:
    """A store, the emulator and client, a fake Discord, and the runner and prober wiring them."""

    def __init__(self, db, clock, emu: SpotifyEmulator, *, max_probes: int = 4) -> None:
        self.db, self.clock, self.emu = db, clock, emu
        self.sender = FakeSender()
        self.spotify: SpotifyClient = emulator_client(emu, clock)
        self.tracker = Tracker(db, self.spotify, clock=clock, requests_per_day=1000)
        self.deliverer = Deliverer(db, self.sender, clock=clock)
        self.runner = Runner(db, self.tracker, self.deliverer, clock=clock)
        self.prober = ReleaseDayProber(
            db, self.runner, self.deliverer, self.tracker, clock=clock, market="US", max_probes=max_probes
        )

    async def guild(self, guild_id: int, artist: str, *, release_day_on: bool) -> None:
        await add_guild(self.db, guild_id, now=self.clock(), channel_id=guild_id * 100)
        await follow(self.db, guild_id, artist, "Artist", now=self.clock())
        async with self.db.transaction() as session:
            await guilds.set_release_day(session, guild_id, release_day_on)
        await self.tracker.baseline(artist)

    async def announce(self, artist: str, title: str, day: dt.date = DAY) -> None:
        """MusicBrainz lists ``title`` by ``artist`` for ``day`` (the daily job stored it)."""
        row = ReleaseGroupRow(
            mbid=MBID,
            title=title,
            artist_credit_name="Artist",
            artist_mbids=("mb-artist",),
            primary_type="Album",
            secondary_types=(),
            release_date=day,
            release_mbid="00000000-0000-4000-8000-000000000002",
            caa_id=None,
            caa_release_mbid=None,
            spotify_ids=(artist,),
        )
        async with self.db.transaction() as session:
            await musicdata.store_release_groups(
                session, [row], listed={MBID}, window=(day - dt.timedelta(days=30), day), now=self.clock()
            )

    async def scan_at(self, when: dt.datetime):
        self.clock.now = when
        return await self.prober.scan()

    async def probe_row(self):
        async with self.db.transaction() as session:
            return await release_day.probe_row(session, MBID, DAY)

    def posted(self, channel: int) -> list[str]:
        return [e["title"] for ch, embeds, _ in self.sender.messages for e in embeds if ch == channel]


@pytest.fixture
async def emu():
    async with SpotifyEmulator() as emulator:
        yield emulator


@pytest.fixture
async def world(db, clock, emu):
    clock.now = at(1)
    w = World(db, clock, emu)
    try:
        yield w
    finally:
        await w.spotify.close()


def test_probe_times_start_at_midnight_of_the_markets_zone():
    assert [t.isoformat() for t in probe_times(DAY, market_zone("us"), [0.25, 2, 6, 12])] == [
        "2026-11-20T05:15:00+00:00",
        "2026-11-20T07:00:00+00:00",
        "2026-11-20T11:00:00+00:00",
        "2026-11-20T17:00:00+00:00",
    ]
    assert probe_times(dt.date(2026, 7, 3), market_zone("US"), [0])[0] == dt.datetime(2026, 7, 3, 4, tzinfo=UTC)  # EDT
    assert probe_times(DAY, market_zone("DE"), [0])[0] == dt.datetime(2026, 11, 19, 23, tzinfo=UTC)
    assert probe_times(DAY, market_zone("ZZ"), [0])[0] == dt.datetime(2026, 11, 20, tzinfo=UTC)  # unknown: UTC


def test_missed_probe_times_are_skipped_and_k_ends_the_day():
    zone, hours = market_zone("US"), [0.25, 2, 6, 12]
    assert next_probe_at(DAY, zone, hours, after=at(12, 30), probes_made=1, max_probes=4) == at(17)
    assert next_probe_at(DAY, zone, hours, after=at(17), probes_made=2, max_probes=4) is None  # no time left
    assert next_probe_at(DAY, zone, hours, after=at(5, 15), probes_made=4, max_probes=4) is None


async def test_found_on_its_day_is_posted_at_once_to_release_day_guilds_only_and_once(world, emu, clock):
    artist = emu.add_artist("Artist")
    await world.guild(1, artist, release_day_on=True)
    await world.guild(2, artist, release_day_on=False)
    await world.announce(artist, "Fresh Album")
    emu.clear_log()

    assert await world.scan_at(at(4, 59)) == []  # still Thursday in New York: not today's release
    assert await world.scan_at(at(5, 10)) == []  # seeded, first probe due 05:15
    [first] = await world.scan_at(at(5, 15))
    assert (first.probe, first.found, first.requests, first.next_probe_at) == (1, None, 1, at(7))
    assert await world.scan_at(at(6, 59)) == []

    emu.add_album([artist], "Fresh Album", album_type="album", release_date="2026-11-20")  # live on Spotify
    emu.add_album([artist], "Other Single", album_type="single", release_date="2026-11-20")  # not announced
    [second] = await world.scan_at(at(7))
    assert second.probe == 2 and second.found is not None and second.posted == {1: 1}
    assert world.posted(100) == ["Fresh Album"] and world.posted(200) == []
    row = await world.probe_row()
    assert row is not None and (row.probes, row.spotify_release_id, row.next_probe_at) == (2, second.found, None)
    assert row.requests == first.requests + second.requests == len(emu.requests_to("/v1/"))
    async with world.db.transaction() as session:  # every probe request in the day's budget
        assert await spotify_state.budget_used_today(session, "2026-11-20") >= row.requests
        group = await musicdata.release_group(session, MBID)
        assert group is not None and group.spotify_release_id == second.found

    assert await world.scan_at(at(11)) == []  # found: no more probes
    async with world.db.transaction() as session:  # a probe is not the last run /status shows a guild
        assert await runs.last_run_for_guild(session, 2) is None
    summary = await world.runner.run("schedule", [1, 2])  # the weekly digest carries everything else
    assert summary.releases_posted == 3
    assert world.posted(100) == ["Fresh Album", "Other Single"]  # each once
    assert sorted(world.posted(200)) == ["Fresh Album", "Other Single"]


async def test_never_listed_is_probed_at_most_k_times_and_left_to_the_weekly_run(db, clock, emu):
    clock.now = at(1)
    world = World(db, clock, emu, max_probes=3)
    try:
        artist = emu.add_artist("Artist")
        await world.guild(1, artist, release_day_on=True)
        await world.announce(artist, "Delayed Album")
        emu.clear_log()
        made = []
        for hour in range(5, 24):
            made += [p.probe for p in await world.scan_at(at(hour, 30))]
        assert made == [1, 2, 3]  # 05:30, 07:30, 11:30; the 17:00 slot is past k
        row = await world.probe_row()
        assert row is not None and (row.probes, row.requests, row.next_probe_at) == (3, 3, None)
        assert len(emu.requests_to("/v1/")) == 3 and world.sender.messages == []
    finally:
        await world.spotify.close()


async def test_nothing_is_probed_during_a_quota_cooldown(world, emu, clock):
    artist = emu.add_artist("Artist")
    await world.guild(1, artist, release_day_on=True)
    await world.announce(artist, "Fresh Album")
    async with world.db.transaction() as session:
        await spotify_state.set_cooldown(session, at(10), "QUOTA_EXCEEDED")
    emu.clear_log()
    assert await world.scan_at(at(5, 15)) == [] and await world.scan_at(at(9, 59)) == []
    assert emu.requests_to("/v1/") == []
    [probe] = await world.scan_at(at(10))  # the cooldown is over: the slot is still due
    assert probe.probe == 1 and probe.next_probe_at == at(11)


async def test_no_release_day_guild_means_no_probe(world, emu):
    artist = emu.add_artist("Artist")
    await world.guild(2, artist, release_day_on=False)
    await world.announce(artist, "Fresh Album")
    emu.clear_log()
    for hour in range(5, 24):
        assert await world.scan_at(at(hour, 30)) == []
    assert emu.requests_to("/v1/") == [] and await world.probe_row() is None


class WaitingRunner:
    """The runner of a process whose weekly run started just after the scan took its slots: a probe's run
    waits (``waiting`` set) until ``done`` is set, then runs."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.waiting, self.done = asyncio.Event(), asyncio.Event()

    @property
    def running(self) -> bool:
        return self.runner.running

    async def run(
        self, trigger: str, guild_ids: Sequence[int] | None = None, *, artist_ids: Sequence[str] | None = None
    ) -> RunSummary:
        self.waiting.set()
        await self.done.wait()
        return await self.runner.run(trigger, guild_ids, artist_ids=artist_ids)


async def test_a_slot_waiting_behind_a_long_run_stays_held_and_is_never_probed_by_another_process(world, emu, clock):
    artist = emu.add_artist("Artist")
    await world.guild(1, artist, release_day_on=True)
    await world.announce(artist, "Fresh Album")
    delayed = WaitingRunner(world.runner)
    busy = ReleaseDayProber(
        world.db, delayed, world.deliverer, world.tracker, clock=clock, market="US", renew_seconds=0.01
    )
    await world.scan_at(at(5, 10))  # seeded
    clock.now = at(5, 15)
    scan = asyncio.create_task(busy.scan())  # takes the slot (held until 05:45), its run waits
    await asyncio.wait_for(delayed.waiting.wait(), 5)

    clock.now = at(6, 30)  # the weekly run lasted 75 minutes: far past the first hold

    async def renewed() -> bool:
        row = await world.probe_row()
        return row is not None and row.next_probe_at == at(7)  # 06:30 + 30 minutes

    await wait_for(renewed, timeout=5, what="the hold renewed")
    assert await world.prober.scan() == []  # another process finds the slot held
    emu.add_album([artist], "Fresh Album", album_type="album", release_date="2026-11-20")
    delayed.done.set()
    [probe] = await asyncio.wait_for(scan, 10)
    assert (probe.probe, probe.posted) == (1, {1: 1}) and probe.found is not None
    row = await world.probe_row()
    assert row is not None and (row.probes, row.next_probe_at) == (1, None)
    assert world.posted(100) == ["Fresh Album"]
