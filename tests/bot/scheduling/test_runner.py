"""End to end without Discord: Runner = tracker (the Spotify emulator through the real client) + deliverer
(fake sender) over a real store."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from bot.delivery import ChannelUnavailable, Deliverer
from bot.scheduling.runner import Runner
from bot.spotify.client import SpotifyClient
from bot.tracking import Tracker
from fakes.spotify_emulator import SpotifyEmulator
from storage import guilds, musicdata
from storage.models import Artist, Guild, Run
from storage.musicdata import ReleaseGroupRow
from tests.bot.helpers import UNTIL_CLEARED, FakeSender, add_guild, emulator_client, follow, ledger

UTC = dt.UTC
GROUPS = 3
PROBE = 1  # one request per unchanged artist (docs/tracking.md)


class World:
    """A store, the Spotify emulator (``emu``) and the client on it, a fake Discord and the runner wiring
    them (rebuildable = a restart)."""

    def __init__(self, db, clock, emu: SpotifyEmulator) -> None:
        self.db, self.clock, self.emu = db, clock, emu
        self.clients: list[SpotifyClient] = []
        self.sender = FakeSender()
        self.names: dict[str, str] = {}
        self.restart()

    def restart(self) -> None:
        """A new process: a new client (which knows nothing of a cooldown), tracker, deliverer and runner."""
        self.spotify = emulator_client(self.emu, self.clock)
        self.clients.append(self.spotify)
        self.tracker = Tracker(self.db, self.spotify, clock=self.clock)
        self.deliverer = Deliverer(self.db, self.sender, clock=self.clock)
        self.runner = Runner(self.db, self.tracker, self.deliverer, clock=self.clock)

    async def artist(self, name: str, singles: int = 3) -> str:
        artist = self.emu.add_artist(name)
        self.names[artist] = name
        for i in range(singles):
            self.release(artist, f"{name} old {i}", f"{2020 + i // 12}-{i % 12 + 1:02d}-01")
        return artist

    def release(self, artist: str, name: str, date: str) -> str:
        """A single of ``artist`` on Spotify (what a tracker finds new); returns its id."""
        return self.emu.add_album([artist], name, album_type="single", release_date=date)

    async def follow(self, guild: int, artist: str, *, channel_id: int | None = 100) -> None:
        """What /follow does: guild row, follow since now, silent baseline."""
        await add_guild(self.db, guild, now=self.clock(), channel_id=channel_id)
        await follow(self.db, guild, artist, self.names[artist], now=self.clock())
        await self.tracker.baseline(artist)
        self.clock.advance(minutes=1)

    def posted(self, channel: int | None = None) -> list[str]:
        return [e["title"] for ch, embeds, _ in self.sender.messages for e in embeds if channel in (None, ch)]


@pytest.fixture
async def world(db, clock):
    async with SpotifyEmulator() as emu:
        world = World(db, clock, emu)
        try:
            yield world
        finally:
            for client in world.clients:
                await client.close()


async def test_baseline_posts_nothing_and_a_new_single_is_posted_once_per_guild(world, clock):
    artist = await world.artist("Pitbull")
    await world.follow(1, artist)
    summary = await world.runner.run("refresh", [1])
    assert summary.status == "ok" and summary.releases_posted == 0 and world.sender.messages == []
    await add_guild(world.db, 2, now=clock(), channel_id=200)
    await follow(world.db, 2, artist, now=clock())
    clock.advance(hours=1)
    world.release(artist, "Fresh Single", "2026-11-21")
    summary = await world.runner.run("schedule")
    assert summary.status == "ok"
    assert summary.releases_found == 1 and summary.releases_posted == 2
    assert world.posted(100) == ["Fresh Single"] and world.posted(200) == ["Fresh Single"]
    clock.advance(days=7)
    again = await world.runner.run("schedule")
    assert again.releases_posted == 0 and len(world.sender.messages) == 2


async def test_second_guild_following_later_does_not_get_the_past(world, clock):
    artist = await world.artist("Pitbull")
    await world.follow(1, artist)
    world.release(artist, "Last Week", "2026-11-21")
    await world.runner.run("schedule")
    assert world.posted(100) == ["Last Week"]
    clock.advance(days=1)
    await world.follow(2, artist, channel_id=200)  # already baselined: no request, no past
    world.release(artist, "This Week", "2026-11-28")
    clock.advance(days=6)
    await world.runner.run("schedule")
    assert world.posted(200) == ["This Week"]
    assert world.posted(100) == ["Last Week", "This Week"]


async def test_each_artist_fetched_once_for_three_guilds(world, clock):
    artist = await world.artist("Pitbull")
    for guild in (1, 2, 3):
        await world.follow(guild, artist, channel_id=100 + guild)
    world.release(artist, "New", "2026-11-21")
    summary = await world.runner.run("schedule")
    assert summary.artists_due == 1 and summary.spotify_requests == PROBE  # the window shows the new single
    assert summary.releases_posted == 3 and summary.coverage == 1.0


async def test_unchanged_artists_cost_one_request_each(world, clock):
    artists = [await world.artist(f"A{i}", singles=12) for i in range(4)]
    for a in artists:
        await world.follow(1, a)
    summary = await world.runner.run("schedule")
    assert summary.spotify_requests == PROBE * 4 and summary.releases_found == 0


async def test_failed_artist_makes_a_partial_run_and_nothing_is_missed(world, clock):
    good, bad = await world.artist("Good"), await world.artist("Bad")
    await world.follow(1, good)
    await world.follow(1, bad)
    world.release(good, "Good Song", "2026-11-21")
    world.release(bad, "Bad Song", "2026-11-21")
    world.emu.fail_next(UNTIL_CLEARED, status=502, path_contains=bad)
    summary = await world.runner.run("schedule")
    assert summary.status == "partial"
    assert summary.artists_checked == 1 and summary.coverage == 0.5
    assert [(f.id, f.name) for f in summary.failed_artists] == [(bad, "Bad")]
    assert "502" in summary.failed_artists[0].reason
    assert world.posted() == ["Good Song"]
    async with world.db.sessions() as s:
        run = await s.get(Run, summary.run_id)
        assert (run.status, run.artists_failed, run.failed_artists, run.releases_posted) == ("partial", 1, [bad], 1)
    world.emu.clear_faults()
    clock.advance(days=7)
    summary = await world.runner.run("schedule")
    assert summary.status == "ok" and world.posted() == ["Good Song", "Bad Song"]


async def test_cooldown_stops_the_run_and_survives_a_restart(world, clock):
    # In the order the tracker checks artists of equal priority: by id.
    artists = sorted([await world.artist(f"A{i}") for i in range(3)])
    for a in artists:
        await world.follow(1, a)
    for a in artists:
        world.release(a, f"{a} new", "2026-11-21")
    until = clock() + dt.timedelta(hours=24)
    world.tracker.concurrency = 1
    # The first artist is checked (PROBE), then QUOTA_EXCEEDED.
    world.emu.fail_next(
        status=429, retry_after=(until - clock()).total_seconds(), reason="QUOTA_EXCEEDED", path_contains=artists[1]
    )
    summary = await world.runner.run("schedule")
    assert summary.status == "partial" and summary.cooldown_until == until
    assert summary.artists_checked == 1 and len(summary.failed_artists) == 2
    assert all("cooldown" in f.reason for f in summary.failed_artists)
    assert summary.releases_posted == 1  # what was found before the cooldown is still posted

    # Restart: a new client that knows nothing of the cooldown, new tracker and runner.
    world.restart()
    fresh = world.spotify
    clock.advance(hours=12)
    summary = await world.runner.run("schedule")
    assert summary.status == "failed" and summary.artists_checked == 0
    assert fresh.request_count == 0 and summary.spotify_requests == 0
    async with world.db.sessions() as s:
        assert (await s.get(Run, summary.run_id)).status == "failed"
    clock.advance(hours=13)
    summary = await world.runner.run("schedule")
    assert summary.status == "ok" and summary.releases_posted == 2
    assert sorted(world.posted()) == sorted(f"{a} new" for a in artists)


async def test_one_guild_delivery_failure_does_not_stop_the_others(world, clock):
    artist = await world.artist("Pitbull")
    await world.follow(1, artist, channel_id=100)
    await world.follow(2, artist, channel_id=200)
    world.release(artist, "New", "2026-11-21")
    original = world.sender.send

    async def forbidden_in_100(channel_id, embeds, *, nonce, **extra):
        if channel_id == 100:
            raise ChannelUnavailable("Missing Permissions", status=403)
        return await original(channel_id, embeds, nonce=nonce, **extra)

    world.sender.send = forbidden_in_100
    summary = await world.runner.run("schedule")
    assert summary.status == "partial"
    assert summary.deliveries[1].error and summary.deliveries[2].posted == 1
    async with world.db.sessions() as s:
        assert (await s.get(Guild, 1)).channel_problem == "Missing Permissions"
    world.sender.send = original
    clock.advance(days=7)
    summary = await world.runner.run("schedule")
    assert summary.status == "ok" and world.posted(100) == ["New"] and world.posted(200) == ["New"]


async def test_send_failure_then_next_run_posts_without_duplicates(world, clock):
    artist = await world.artist("Pitbull")
    await world.follow(1, artist)
    world.release(artist, "New", "2026-11-21")
    world.sender.fail_with, world.sender.fail_times = ConnectionResetError("reset"), 1
    summary = await world.runner.run("schedule")
    assert summary.status == "partial" and summary.releases_posted == 0
    assert await ledger(world.db, 1) == []
    clock.advance(days=7)
    await world.runner.run("schedule")
    await world.runner.run("refresh", [1])
    assert world.posted() == ["New"]


async def test_guild_without_channel_keeps_releases_pending(world, clock):
    artist = await world.artist("Pitbull")
    await world.follow(1, artist, channel_id=None)
    world.release(artist, "New", "2026-11-21")
    summary = await world.runner.run("schedule")
    assert summary.status == "ok" and summary.deliveries[1].problem == "no channel set"
    assert summary.deliveries[1].pending == 1 and world.sender.messages == []


async def test_schedule_advances_due_time_and_refresh_does_not(world, db, clock):
    await add_guild(db, 1, now=clock(), schedule_day=4, schedule_time="09:00", timezone="Europe/Berlin")
    async with db.sessions() as s:
        before = (await s.get(Guild, 1)).next_due_at
    assert before == dt.datetime(2026, 11, 27, 8, tzinfo=UTC)  # Friday 09:00 CET
    refresh = await world.runner.run("refresh", [1])
    async with db.sessions() as s:
        guild = await s.get(Guild, 1)
        assert guild.next_due_at == before and guild.last_run_at is None
        assert (await s.get(Run, refresh.run_id)).guild_id == 1
    clock.now = before
    summary = await world.runner.run_due()
    assert summary.trigger == "schedule" and summary.guild_ids == [1]
    async with db.sessions() as s:
        guild = await s.get(Guild, 1)
        assert guild.next_due_at == dt.datetime(2026, 12, 4, 8, tzinfo=UTC)
        assert guild.last_run_at == before


async def test_run_due_catches_up_once_after_downtime(world, db, clock):
    artist = await world.artist("Pitbull")
    await world.follow(1, artist)
    await add_guild(db, 2, now=clock())  # due next Friday, like guild 1
    async with db.sessions() as s:
        assert await guilds.due_guilds(s, clock()) == []
    assert await world.runner.run_due() is None
    world.release(artist, "While Down", "2026-12-01")
    clock.advance(days=30)  # the bot was down for four weekly runs
    summary = await world.runner.run_due()
    assert summary is not None and sorted(summary.guild_ids) == [1, 2]
    assert world.posted() == ["While Down"]
    assert await world.runner.run_due() is None  # caught up exactly once
    async with db.sessions() as s:
        for guild in (await s.get(Guild, 1), await s.get(Guild, 2)):
            assert guild.next_due_at > clock() and guild.next_due_at - clock() <= dt.timedelta(days=7)
        runs = (await s.execute(Run.__table__.select().where(Run.trigger == "schedule"))).all()
        assert len(runs) == 1


async def test_runs_never_overlap(world, clock):
    artist = await world.artist("Pitbull")
    await world.follow(1, artist)
    inside = peak = 0
    original = world.tracker.track

    async def watched(*args, **kwargs):
        nonlocal inside, peak
        inside += 1
        peak = max(peak, inside)
        for _ in range(5):
            await asyncio.sleep(0)
        try:
            return await original(*args, **kwargs)
        finally:
            inside -= 1

    world.tracker.track = watched
    results = await asyncio.gather(
        world.runner.run("refresh", [1]),
        world.runner.run("schedule"),
        world.runner.run_due(clock() + dt.timedelta(days=8)),
    )
    assert peak == 1
    assert len({r.run_id for r in results if r is not None}) == 3 - (results[2] is None)


async def test_empty_run_is_ok(world):
    summary = await world.runner.run("schedule")
    assert summary.status == "ok" and summary.artists_due == 0 and summary.coverage == 1.0
    with pytest.raises(ValueError):
        await world.runner.run("bogus")


class RecordingLabeler:
    """A duck-typed labeler: records its calls, reports ``requests``, optionally fails."""

    def __init__(self, requests: int = 0, fail: bool = False) -> None:
        self.calls: list[tuple[list[str], int]] = []
        self.requests, self.fail = requests, fail

    async def label(self, release_ids, *, run_id):
        self.calls.append((list(release_ids), run_id))
        if self.fail:
            raise RuntimeError("labels down")

        class Result:
            requests = self.requests

        return Result()


async def test_metrics_are_recorded_and_the_labeler_runs_before_delivery(world, clock):
    artist = await world.artist("Pitbull", singles=12)
    await world.follow(1, artist)
    new = world.release(artist, "Fresh", "2026-11-21")
    labeler = RecordingLabeler(requests=1)
    world.runner.labeler = labeler
    summary = await world.runner.run("schedule")
    assert labeler.calls == [([new], summary.run_id)]
    assert world.posted() == ["Fresh"]
    async with world.db.sessions() as s:
        metrics = (await s.get(Run, summary.run_id)).metrics
    assert metrics["requests_by_endpoint"] == {"artist_albums": 1, "album": 1}
    assert metrics["lower_bound"] == 2 and metrics["label_requests"] == 1  # N = 1 + one album request
    assert metrics["rate_limited"] == 0 and metrics["carried_over"] == 0 and metrics["budget"] is None
    assert metrics["pages_skipped"] == 1  # 13 releases: a full walk takes 2 pages
    assert set(metrics["phase_seconds"]) == {"plan", "track", "label", "deliver"}


async def test_a_failing_labeler_does_not_stop_delivery(world, clock):
    artist = await world.artist("Pitbull")
    await world.follow(1, artist)
    world.release(artist, "Fresh", "2026-11-21")
    world.runner.labeler = RecordingLabeler(fail=True)
    summary = await world.runner.run("schedule")
    assert world.posted() == ["Fresh"] and "labelling failed" in summary.error


async def test_budget_carry_over_makes_a_partial_run_with_its_coverage(world, clock):
    artists = [await world.artist(f"A{i}") for i in range(4)]
    for a in artists:
        await world.follow(1, a)
    world.tracker.requests_per_run = 2
    summary = await world.runner.run("schedule")
    assert summary.status == "partial" and summary.coverage == 0.5 and summary.carried_over == 2
    assert summary.failed_artists == [] and "budget" in summary.error
    async with world.db.sessions() as s:
        run = await s.get(Run, summary.run_id)
        assert run.metrics["carried_over"] == 2 and run.metrics["budget"] == 2 and run.status == "partial"


async def test_a_budgeted_run_checks_artists_with_an_announced_release_first(world, clock):
    """The free second signal orders a budgeted run: the artist MusicBrainz announced a release for
    is checked, the others wait for the next run (none is dropped for lacking an announcement)."""
    artists = [await world.artist(f"A{i}") for i in range(4)]
    for a in artists:
        await world.follow(1, a)
    last = artists[-1]
    today = clock().date()
    async with world.db.transaction() as s:
        await musicdata.store_release_groups(
            s,
            [
                ReleaseGroupRow(
                    mbid="00000000-0000-4000-8000-000000000001",
                    title="Next",
                    artist_credit_name="A3",
                    artist_mbids=("00000000-0000-4000-8000-000000000090",),
                    primary_type="Album",
                    secondary_types=(),
                    release_date=today + dt.timedelta(days=14),
                    release_mbid="00000000-0000-4000-8000-000000000051",
                    caa_id=None,
                    caa_release_mbid=None,
                    spotify_ids=(last,),
                )
            ],
            listed={"00000000-0000-4000-8000-000000000001"},
            window=(today - dt.timedelta(days=30), today + dt.timedelta(days=30)),
            now=clock(),
        )
    world.tracker.requests_per_run = 1
    world.tracker.reserve_share = 0  # no starvation reserve: the one request goes by priority

    async def last_checked() -> dict[str, dt.datetime | None]:
        async with world.db.sessions() as s:
            return {a: (await s.get(Artist, a)).last_checked_at for a in artists}

    before = await last_checked()
    clock.advance(hours=1)
    summary = await world.runner.run("schedule")
    assert summary.carried_over == 3
    after = await last_checked()
    assert {a for a in artists if after[a] != before[a]} == {last}
