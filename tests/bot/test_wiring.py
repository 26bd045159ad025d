"""``bot.wiring``: one object graph per process, built from the settings, closed in reverse order.

(The hooks across two processes — a quota cooldown stops both, the rate limit is split — are
``tests/bot/coordination/test_shared_quota.py``; that nothing else builds these objects is
``tests/test_layers.py``.)
"""

from __future__ import annotations

import datetime as dt
from importlib.metadata import version

import aiohttp
import pytest

from bot import wiring
from bot.delivery.deliverer import Deliverer
from bot.musicdata import SharedRateLimit
from bot.settings import (
    CoordinationSettings,
    DatabaseSettings,
    DiscordSettings,
    MusicBrainzSettings,
    ScheduleSettings,
    Settings,
    SpotifySettings,
    TrackingSettings,
)
from bot.spotify.errors import SpotifyCooldown
from bot.wiring import build_core
from fakes.spotify_emulator import SpotifyEmulator
from storage import leases, spotify_state
from storage.db import Database
from tests.bot.helpers import FakeSender


async def no_wait(_seconds: float) -> None:
    return None


def settings_for(db: Database, emu: SpotifyEmulator | None = None, **spotify: object) -> Settings:
    endpoints = (
        {}
        if emu is None
        else {
            "client_id": emu.client_id,
            "client_secret": emu.client_secret,
            "api_base_url": emu.api_base_url,
            "accounts_base_url": emu.accounts_base_url,
        }
    )
    return Settings(
        discord=DiscordSettings(shard_count=4, shard_ids=[1, 3]),
        spotify=SpotifySettings(**{"market": "SE", "rate_limit_per_30s": 0, **endpoints, **spotify}),
        tracking=TrackingSettings(economy=True, economy_every=3, recheck_share=0.25, reserve_share=0.5),
        database=DatabaseSettings(url=db.engine.url.render_as_string(hide_password=False)),
        default_schedule=ScheduleSettings(day=2, time="18:30", timezone="Europe/Berlin"),
        coordination=CoordinationSettings(heartbeat_seconds=5, lease_seconds=30),
    )


async def registered(db: Database, owner: str, clock) -> bool:
    async with db.transaction() as session:
        return owner in await leases.live_owners(session, now=clock(), lease_seconds=30)


async def test_the_core_is_built_from_the_settings_on_one_store_and_one_clock(db, clock):
    settings = settings_for(db, requests_per_run=700, requests_per_day=9000, max_concurrency=6)
    sender = FakeSender()
    async with await build_core(settings, sender=sender, clock=clock, owner="p1", migrate=False) as core:
        assert core.clock is clock and core.coordinator.clock is clock
        assert core.coordinator.owner == "p1" and core.coordinator.shard_ids == [1, 3]
        assert (core.coordinator.lease_seconds, core.coordinator.heartbeat_seconds) == (30.0, 5.0)
        assert await registered(db, "p1", clock)  # started: this process is registered and beats
        tracker = core.tracker
        assert tracker.db is core.db and tracker.spotify is core.spotify and tracker.coordinator is core.coordinator
        assert (tracker.concurrency, tracker.requests_per_run, tracker.requests_per_day) == (6, 700, 9000)
        assert (tracker.economy, tracker.economy_every, tracker.recheck_share, tracker.reserve_share) == (
            True,
            3,
            0.25,
            0.5,
        )
        assert core.spotify.market == "SE"
        assert isinstance(core.deliverer, Deliverer) and core.deliverer.sender is sender
        assert core.runner.deliverer is core.deliverer and core.runner.labeler is core.labeler
        assert core.runner.tracker is tracker and core.runner.coordinator is core.coordinator
        guild = await core.services.guild_settings.ensure_guild(42)
        assert (guild.schedule_day, guild.schedule_time, guild.timezone) == (2, "18:30", "Europe/Berlin")
        http = core.http
    assert http.closed  # the session it opened is closed with it
    assert not await registered(db, "p1", clock)  # the coordinator gave everything up


async def test_without_a_sender_the_runner_only_tracks(db, clock):
    async with await build_core(settings_for(db), clock=clock, concurrency=2, migrate=False) as core:
        assert core.deliverer is None and core.runner.deliverer is None
        assert core.tracker.concurrency == 2  # the explicit concurrency wins over [spotify] max_concurrency
        with pytest.raises(ValueError):
            await core.runner.run("refresh", [1])


async def test_an_injected_http_session_is_left_open(db, clock):
    async with aiohttp.ClientSession() as http:
        async with await build_core(settings_for(db), clock=clock, session=http, migrate=False) as core:
            assert core.http is http
        assert not http.closed


async def test_a_core_without_a_sender_persists_a_quota_cooldown_as_the_429_arrives(db, clock):
    """``release-bot check`` gets the Spotify client's hooks too (it had none before the wiring)."""
    async with SpotifyEmulator() as emu:
        artist = emu.add_artist("Quota Queen")
        settings = settings_for(db, emu)
        async with await build_core(settings, clock=clock, sleep=no_wait, migrate=False) as core:
            emu.fail_next(1, status=429, retry_after=86400, reason="QUOTA_EXCEEDED")
            with pytest.raises(SpotifyCooldown):
                await core.spotify.get_artist(artist)
            async with db.transaction() as session:
                until, reason = await spotify_state.get_cooldown(session)
            assert reason == "QUOTA_EXCEEDED" and until is not None and until > clock() + dt.timedelta(hours=23)


async def test_a_failure_while_building_closes_what_was_opened(db, clock, monkeypatch):
    closed: list[str] = []
    close_db = Database.close

    async def recording_close(self: Database) -> None:
        closed.append("db")
        await close_db(self)

    def broken_labeler(*args: object, **kwargs: object) -> None:
        raise RuntimeError("labeler")

    monkeypatch.setattr(Database, "close", recording_close)
    monkeypatch.setattr(wiring, "Labeler", broken_labeler)
    sessions: list[aiohttp.ClientSession] = []
    real_session = aiohttp.ClientSession

    def recording_session() -> aiohttp.ClientSession:
        sessions.append(real_session())
        return sessions[-1]

    monkeypatch.setattr(aiohttp, "ClientSession", recording_session)
    with pytest.raises(RuntimeError, match="labeler"):
        await build_core(settings_for(db), clock=clock, owner="broken", migrate=False)
    assert closed == ["db"] and [s.closed for s in sessions] == [True]
    assert not await registered(db, "broken", clock)


async def test_the_free_signal_is_built_only_when_enabled_on_the_process_session_and_clock(db, clock):
    async with await build_core(settings_for(db), clock=clock, migrate=False) as core:
        assert core.musicdata is None  # off by default
    settings = settings_for(db).model_copy(
        update={
            "musicbrainz": MusicBrainzSettings(
                enabled=True,
                contact="ops@example.org",
                lookahead_days=45,
                api_base_url="http://127.0.0.1:1/ws/2",
                listenbrainz_api_base_url="http://127.0.0.1:2",
            )
        }
    )
    async with await build_core(settings, clock=clock, migrate=False) as core:
        signal = core.musicdata
        assert signal is not None and signal.db is core.db and signal.coordinator is core.coordinator
        assert signal.clock is clock and signal.lookahead_days == 45
        mb, lb = signal.musicbrainz, signal.listenbrainz
        assert (mb.base_url, lb.base_url) == ("http://127.0.0.1:1/ws/2", "http://127.0.0.1:2")
        assert mb.user_agent == lb.user_agent == f"release-bot/{version('release-bot')} ( ops@example.org )"
        assert mb.http is core.http and lb.http is core.http
        assert isinstance(mb.rate_limit, SharedRateLimit) and mb.rate_limit.db is core.db
        assert mb.rate_limit.interval_seconds == 1.0 and mb.rate_limit.clock is clock
