"""``bot.ops.metrics`` fed by the real components ``build_core`` wires: what a run, a delivery, a
takeover and the store do shows in the counters; the account-wide values come from one process only."""

from __future__ import annotations

import datetime as dt
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from bot.ops.metrics import ACCOUNT_LEASE, DELIVERY_RESULTS, Metrics
from bot.settings import CoordinationSettings, DatabaseSettings, Settings, SpotifySettings
from bot.wiring import Core, build_core
from fakes.spotify_emulator import SpotifyEmulator
from storage import leases, spotify_state
from storage.db import Database
from storage.models import Guild
from tests.bot.helpers import FakeSender, add_guild, follow, no_wait


def scrape(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``metrics.render()``: ``(name, labels) → value``, parsed as Prometheus would."""
    samples = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def total(samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def settings_for(db: Database, emu: SpotifyEmulator) -> Settings:
    return Settings(
        spotify=SpotifySettings(
            client_id=emu.client_id,
            client_secret=emu.client_secret,
            api_base_url=emu.api_base_url,
            accounts_base_url=emu.accounts_base_url,
            rate_limit_per_30s=0,
            requests_per_day=1000,
        ),
        database=DatabaseSettings(url=db.engine.url.render_as_string(hide_password=False)),
        coordination=CoordinationSettings(heartbeat_seconds=5, lease_seconds=30),
    )


async def core_for(db: Database, emu: SpotifyEmulator, clock, owner: str) -> tuple[Core, Metrics]:
    metrics = Metrics(process_collectors=False)
    core = await build_core(
        settings_for(db, emu),
        sender=FakeSender(),
        clock=clock,
        sleep=no_wait,
        owner=owner,
        migrate=False,
        metrics=metrics,
    )
    return core, metrics


@pytest.fixture
async def emu():
    async with SpotifyEmulator() as emulator:
        yield emulator


async def test_a_run_and_its_delivery_move_the_counters(db, emu, clock):
    core, metrics = await core_for(db, emu, clock, "a")
    try:
        before = scrape(metrics)
        assert all(value(before, "release_bot_deliveries_total", result=r) == 0 for r in DELIVERY_RESULTS)
        artist = emu.add_artist("Nova")
        emu.add_album([artist], "Old", release_date="2020-01-01")
        await add_guild(db, 1, now=clock(), channel_id=None)  # no channel yet: the release waits
        await follow(db, 1, artist, now=clock())
        await core.tracker.baseline(artist)
        clock.advance(minutes=1)
        emu.add_album([artist], "New", album_type="single", release_date="2026-11-20")
        # The guild is due, and a process that stopped beating left its lease on it.
        async with db.transaction() as session:
            await session.execute(
                update(Guild).values(
                    next_due_at=clock() - dt.timedelta(minutes=1),
                    lease_owner="dead",
                    lease_until=clock() - dt.timedelta(seconds=1),
                )
            )
        first = await core.runner.run_due()
        assert first is not None and first.releases_found == 1 and first.releases_posted == 0
        clock.advance(hours=2)
        async with db.transaction() as session:
            await session.execute(update(Guild).values(channel_id=100))
        second = await core.runner.run("refresh", [1])
        assert second.releases_posted == 1

        after = scrape(metrics)
        assert value(after, "release_bot_runs_total", trigger="schedule", status="ok") == 1
        assert value(after, "release_bot_runs_total", trigger="refresh", status="ok") == 1
        assert value(after, "release_bot_run_duration_seconds_count", trigger="refresh") == 1
        assert value(after, "release_bot_run_coverage_ratio", trigger="refresh") == 1.0
        assert value(after, "release_bot_artists_checked_total") == 2
        assert value(after, "release_bot_artists_due_total") == 2
        assert value(after, "release_bot_releases_found_total") == 1
        assert value(after, "release_bot_deliveries_total", result="posted") == 1
        # First seen by the scheduled run, posted two hours later once the channel was set.
        assert value(after, "release_bot_release_post_latency_seconds_count") == 1
        assert value(after, "release_bot_release_post_latency_seconds_sum") == 7200
        assert value(after, "release_bot_release_post_latency_seconds_bucket", le="3600.0") == 0
        assert value(after, "release_bot_release_post_latency_seconds_bucket", le="10800.0") == 1
        # Every request the emulator answered (the token's included) was counted, by endpoint and status.
        assert total(after, "release_bot_spotify_requests_total") == len(emu.request_log) > 0
        tokens = len(emu.requests_to("/api/token"))
        assert value(after, "release_bot_spotify_requests_total", endpoint="token", status="200") == tokens > 0
        assert value(after, "release_bot_lease_takeovers_total", kind="guild") == 1
        assert value(after, "release_bot_db_statement_seconds_count", kind="select") > 0
        assert value(after, "release_bot_db_statement_seconds_count", kind="update") > 0
    finally:
        await core.close()


async def test_429s_and_failed_and_skipped_deliveries_are_counted(db, emu, clock):
    core, metrics = await core_for(db, emu, clock, "a")
    try:
        artist = emu.add_artist("Nova")
        emu.add_album([artist], "Old", release_date="2020-01-01")
        for guild_id in (1, 2):
            await add_guild(db, guild_id, now=clock(), channel_id=100 + guild_id)
            await follow(db, guild_id, artist, now=clock())
        async with db.transaction() as session:  # guild 1 wants albums only
            await session.execute(update(Guild).where(Guild.id == 1).values(album_groups=["album"]))
        await core.tracker.baseline(artist)
        clock.advance(minutes=1)
        emu.add_album([artist], "Single", album_type="single", release_date="2026-11-20")
        emu.fail_next(status=429, retry_after=0)
        assert core.deliverer is not None and isinstance(core.deliverer.sender, FakeSender)
        core.deliverer.sender.fail_with = RuntimeError("Discord is down")
        summary = await core.runner.run("refresh", [1, 2])
        assert summary.status == "partial" and summary.releases_found == 1
        samples = scrape(metrics)
        assert value(samples, "release_bot_spotify_rate_limited_total", endpoint="artist_albums") == 1
        assert value(samples, "release_bot_spotify_requests_total", endpoint="artist_albums", status="429") == 1
        assert value(samples, "release_bot_deliveries_total", result="skipped") == 1  # guild 1: not an album
        assert value(samples, "release_bot_deliveries_total", result="failed") == 1  # guild 2: left pending
        assert value(samples, "release_bot_deliveries_total", result="posted") == 0
        assert value(samples, "release_bot_runs_total", trigger="refresh", status="partial") == 1
    finally:
        await core.close()


async def test_a_named_lease_taken_from_a_dead_process_is_a_takeover(db, emu, clock):
    core, metrics = await core_for(db, emu, clock, "b")
    try:
        async with db.transaction() as session:
            await leases.acquire_lease(
                session, "refresh:1", "dead", now=clock() - dt.timedelta(minutes=5), lease_seconds=30
            )
            await leases.acquire_lease(session, "refresh:2", "alive", now=clock(), lease_seconds=30)
        assert await core.coordinator.try_lease("refresh:1")
        assert not await core.coordinator.try_lease("refresh:2")  # held: no takeover
        assert await core.coordinator.try_lease("refresh:3")  # free: no takeover either
        assert value(scrape(metrics), "release_bot_lease_takeovers_total", kind="lease") == 1
    finally:
        await core.close()


def account_values(metrics: Metrics) -> dict[str, float]:
    return {
        name: v
        for (name, _labels), v in scrape(metrics).items()
        if name.startswith(("release_bot_spotify_budget", "release_bot_spotify_cooldown", "release_bot_account"))
    }


async def test_one_process_exports_the_account_wide_values_and_another_takes_over(db, emu, clock):
    a, ma = await core_for(db, emu, clock, "a")
    b, mb = await core_for(db, emu, clock, "b")
    closed_a = False
    try:
        day = clock().date().isoformat()
        async with db.transaction() as session:
            await spotify_state.reserve_budget(session, day, 120, 1000)
            await spotify_state.set_cooldown(session, clock() + dt.timedelta(hours=3), "QUOTA_EXCEEDED")
        await a.coordinator.beat()
        await b.coordinator.beat()
        assert account_values(ma) == {
            "release_bot_account_exporter": 1,
            "release_bot_spotify_budget_used_requests": 120,
            "release_bot_spotify_budget_left_requests": 880,
            "release_bot_spotify_cooldown_until_seconds": (clock() + dt.timedelta(hours=3)).timestamp(),
        }
        assert account_values(mb) == {"release_bot_account_exporter": 0}  # not exported twice
        assert await a.coordinator.holder(ACCOUNT_LEASE) == "a"

        # The exporter stops (its leases go with it): the other one exports at its next heartbeat.
        await a.close()
        closed_a = True
        clock.advance(hours=13)  # the next UTC day: the cooldown is over, the budget new
        await b.coordinator.beat()
        assert account_values(mb) == {
            "release_bot_account_exporter": 1,
            "release_bot_spotify_budget_used_requests": 0,
            "release_bot_spotify_budget_left_requests": 1000,
            "release_bot_spotify_cooldown_until_seconds": 0,
        }
    finally:
        if not closed_a:
            await a.close()
        await b.close()


async def test_shards_and_gateway_latency_are_read_when_scraped():
    metrics = Metrics(process_collectors=False)
    samples = scrape(metrics)
    assert value(samples, "release_bot_shards_ready") == 0 and value(samples, "release_bot_shards") == 0
    states = {0: (True, 0.042), 2: (False, float("inf"))}
    metrics.shards = lambda: states
    samples = scrape(metrics)
    assert value(samples, "release_bot_shards_ready") == 1 and value(samples, "release_bot_shards") == 2
    assert value(samples, "release_bot_gateway_latency_seconds", shard="0") == 0.042
    assert ("release_bot_gateway_latency_seconds", frozenset({("shard", "2")})) not in samples  # no heartbeat yet
    states[2] = (True, 0.05)
    assert value(scrape(metrics), "release_bot_shards_ready") == 2


def test_process_metrics_are_exported_when_asked():
    names = {name for name, _ in scrape(Metrics())}
    assert "python_info" in names and "python_gc_collections_total" in names
    assert sys.platform != "linux" or "process_resident_memory_bytes" in names  # read from /proc
