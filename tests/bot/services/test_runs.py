"""``bot.services.runs``: ``/refresh``, ``/history``, ``/preview`` and ``/status`` over a real store, the
Spotify emulator and a fake Discord sender, with an injected clock. A server sees its own refreshes
and the weekly runs, with what they posted to it, never another server's."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, select, update

from bot.coordination.coordinator import Coordinator
from bot.delivery.planner import GuildFilters
from bot.services.errors import UserError
from bot.services.runs import REFRESH_RUNNING_TEXT
from storage import spotify_state
from storage.models import Delivery, Guild, Run
from tests.bot.services.helpers import World, services_world

pytestmark = pytest.mark.timeout(60)
UTC = dt.UTC
GUILD, OTHER = 7, 8


@pytest.fixture
async def world(db, clock):
    async with services_world(db, clock) as w:
        yield w


async def followed_with_news(world: World, guild_id: int, channel_id: int = 555) -> str:
    """The guild posts to ``channel_id`` and follows an artist (baselined) with one new single since."""
    artist = world.emu.add_artist("Nova Lights")
    world.emu.add_album([artist], "Old Single", album_type="single", release_date="2024-01-01")
    await world.services.guild_settings.set_channel(guild_id, channel_id)
    await world.services.follows.follow(guild_id, artist)
    world.clock.advance(minutes=5)
    world.emu.add_album([artist], "New Single", album_type="single", release_date="2026-11-20")
    return artist


async def test_refresh_posts_what_is_new_once(world: World):
    await followed_with_news(world, GUILD)
    summary = await world.services.runs.refresh(GUILD)
    assert summary.trigger == "refresh" and summary.status == "ok" and summary.releases_posted == 1
    assert world.sender.titles() == ["New Single"]
    assert [channel for channel, _, _ in world.sender.messages] == [555]
    assert (await world.services.runs.refresh(GUILD)).releases_posted == 0  # posted once
    assert world.services.runs.refresh_running(GUILD) is False


async def test_refresh_reports_progress(world: World):
    await followed_with_news(world, GUILD)
    seen: list[tuple[int, int]] = []
    await world.services.runs.refresh(GUILD, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (1, 1)


@pytest.mark.parametrize(
    "channel, follow, message",
    [
        (False, True, "Choose where releases go first: `/settings channel`."),
        (True, False, "This server follows no artists yet. Add one with `/follow`."),
    ],
)
async def test_refresh_refuses_what_cannot_run(world: World, channel, follow, message):
    if channel:
        await world.services.guild_settings.set_channel(GUILD, 555)
    if follow:
        await world.services.follows.follow(GUILD, world.emu.add_artist("Nova Lights"))
    with pytest.raises(UserError) as refused:
        await world.services.runs.refresh(GUILD)
    assert str(refused.value) == message
    async with world.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(Run)) == 0
    assert await world.coordinator.holder(f"refresh:{GUILD}") is None  # the guard was given back


async def test_one_refresh_per_server_across_processes(world: World, clock):
    await followed_with_news(world, GUILD)
    other_process = Coordinator(world.db, clock=clock)
    assert await other_process.try_lease(f"refresh:{GUILD}")
    with pytest.raises(UserError) as refused:
        await world.services.runs.refresh(GUILD)
    assert str(refused.value) == REFRESH_RUNNING_TEXT
    assert world.sender.messages == []
    await other_process.release(f"refresh:{GUILD}")
    assert (await world.services.runs.refresh(GUILD)).releases_posted == 1


async def test_a_second_refresh_of_a_server_in_this_process_is_refused_at_once(world: World):
    await followed_with_news(world, GUILD)
    runs = world.services.runs
    busy: list[bool] = []
    first = asyncio.create_task(runs.refresh(GUILD, progress=lambda done, total: busy.append(runs.run_in_progress)))
    await asyncio.sleep(0)  # the first refresh starts
    assert runs.refresh_running(GUILD)
    with pytest.raises(UserError) as refused:
        await runs.refresh(GUILD)
    assert str(refused.value) == REFRESH_RUNNING_TEXT
    assert (await asyncio.wait_for(first, 30)).releases_posted == 1
    assert busy and all(busy)  # the runner was busy while it ran
    assert not runs.refresh_running(GUILD) and not runs.run_in_progress


async def test_history_shows_this_servers_runs_with_its_own_posts(world: World, clock):
    await followed_with_news(world, GUILD)
    other_artist = world.emu.add_artist("Guest")
    await world.services.guild_settings.set_channel(OTHER, 666)
    await world.services.follows.follow(OTHER, other_artist)
    await world.services.runs.refresh(GUILD)
    clock.advance(minutes=1)
    await world.services.runs.refresh(OTHER)  # another server's refresh: not in GUILD's history
    clock.advance(minutes=1)
    await world.runner.run("check", artist_ids=[other_artist])  # `release-bot check`: never shown
    clock.advance(minutes=1)
    async with world.db.transaction() as s:
        await s.execute(update(Guild).values(next_due_at=clock()))
    weekly = await world.runner.run_due()
    assert weekly is not None
    rows = await world.services.runs.history(GUILD)
    assert [(r.run.trigger, r.run.guild_id) for r in rows] == [("schedule", None), ("refresh", GUILD)]
    assert [(r.posted, r.skipped) for r in rows] == [(0, 0), (1, 0)]
    assert rows[1].coverage == 1.0
    other = await world.services.runs.history(OTHER)
    assert [(r.run.trigger, r.run.guild_id, r.posted) for r in other] == [("schedule", None, 0), ("refresh", OTHER, 0)]
    assert len(await world.services.runs.history(GUILD, limit=1)) == 1


async def test_history_counts_skips_for_this_server(world: World):
    artist = await followed_with_news(world, GUILD)
    world.emu.add_album([artist], "New Single (Live)", album_type="single", release_date="2026-11-20")
    await world.services.guild_settings.set_filters(GUILD, skip={"live": True})
    await world.services.runs.refresh(GUILD)
    [row] = await world.services.runs.history(GUILD)
    assert (row.posted, row.skipped) == (1, 1)
    assert world.sender.titles() == ["New Single"]


async def test_preview_shows_the_next_post_and_writes_nothing(world: World, clock):
    artist = await followed_with_news(world, GUILD)
    await world.runner.run("check", artist_ids=[artist])  # found, not yet posted
    world.emu.add_album([artist], "New Single (Live)", album_type="single", release_date="2026-11-20")
    clock.advance(minutes=1)
    await world.runner.run("check", artist_ids=[artist])
    await world.services.guild_settings.set_filters(GUILD, skip={"live": True})
    await world.services.guild_settings.set_mention_role(GUILD, 999)
    preview = await world.services.runs.preview(GUILD)
    assert [a.release.name for a in preview.announcements] == ["New Single"]
    assert preview.skipped == {"live": 1} and preview.mention == "<@&999>" and preview.channel_id == 555
    assert [(p.channel_id, [e["title"] for e in p.messages[0]]) for p in preview.posts] == [(555, ["New Single"])]
    async with world.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(Delivery)) == 0  # nothing written
    assert (await world.services.runs.preview(OTHER)).announcements == []  # another server: its own plan


async def test_status(world: World, clock):
    await followed_with_news(world, GUILD)
    await world.services.runs.refresh(GUILD)
    await world.services.guild_settings.set_filters(GUILD, skip={"remix": True})
    until = clock() + dt.timedelta(hours=1)
    async with world.db.transaction() as s:
        await spotify_state.set_cooldown(s, until, "QUOTA_EXCEEDED")
    status = await world.services.runs.status(GUILD)
    assert (status.channel_id, status.channel_problem, status.follows) == (555, None, 1)
    assert status.schedule_text == "Fridays at 12:00 (UTC)"
    assert status.next_due_at == dt.datetime(2026, 11, 27, 12, tzinfo=UTC)
    assert status.last_run is not None and status.last_run.trigger == "refresh"
    assert (status.cooldown_until, status.cooldown_reason) == (until, "QUOTA_EXCEEDED")
    assert status.album_groups_text == "Albums, Singles, EPs, Compilations"
    assert status.filters == GuildFilters(frozenset({"remix"}))
    other = await world.services.runs.status(OTHER)
    assert (other.channel_id, other.follows, other.last_run, other.filters) == (None, 0, None, GuildFilters())
    clock.advance(hours=2)
    status = await world.services.runs.status(GUILD)
    assert (status.cooldown_until, status.cooldown_reason) == (None, None)  # over: not shown


async def test_preview_and_status_show_the_routes(world: World, clock):
    artist = await followed_with_news(world, GUILD)
    world.emu.add_album([artist], "Five Songs", album_type="single", total_tracks=5, release_date="2026-11-20")
    clock.advance(minutes=1)
    await world.runner.run("check", artist_ids=[artist])
    settings = world.services.guild_settings
    await settings.set_type_route(GUILD, "ep", 600)
    await settings.set_publish(GUILD, True)
    preview = await world.services.runs.preview(GUILD)
    assert [(p.channel_id, [a.release.name for a in p.announcements]) for p in preview.posts] == [
        (555, ["New Single"]),
        (600, ["Five Songs"]),
    ]
    await settings.set_artist_route(GUILD, "Nova Lights", 700)  # the artist's route wins over the type's
    preview = await world.services.runs.preview(GUILD)
    assert [(p.channel_id, len(p.announcements)) for p in preview.posts] == [(700, 2)]
    status = await world.services.runs.status(GUILD)
    assert status.publish and status.routes.by_type == {"ep": 600} and status.routes.by_artist == {artist: 700}
    assert status.artist_names == {artist: "Nova Lights"} and status.destinations.channel_ids() == [555, 600, 700]
    other = await world.services.runs.status(OTHER)  # another server sees none of it
    assert (other.publish, other.routes.by_type, other.routes.by_artist) == (False, {}, {})
    assert (await world.services.runs.preview(OTHER)).posts == []
