"""The due scan of one process among several (a coordinator) after a store failure cut a weekly run off:
the guild leases it could not give up are given up at the next scan, and the guilds run again — its
heartbeat renews every lease it owns, so they would otherwise never expire while the process lives;
and a guild whose delivery failed because the store did keeps its due time, so the next scan posts its
releases (without asking Spotify again) instead of the next week's run."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.coordination.coordinator import Coordinator
from bot.delivery import Deliverer
from bot.scheduling.runner import Runner
from bot.tracking import Tracker
from fakes.spotify_emulator import SpotifyEmulator
from storage import leases, runs
from storage.models import Guild
from tests.bot.helpers import FakeSender, add_guild, emulator_client, follow


class StoreDown(Exception):
    """What the store raises while it is away."""


async def test_guilds_of_a_run_cut_off_by_the_store_run_again_at_the_next_scan(db, clock, monkeypatch):
    async with SpotifyEmulator() as emu:
        spotify = emulator_client(emu, clock)
        co = Coordinator(db, clock=clock, lease_seconds=60, heartbeat_seconds=10)
        sender = FakeSender()
        tracker = Tracker(db, spotify, clock=clock)
        runner = Runner(db, tracker, Deliverer(db, sender, clock=clock), clock=clock, coordinator=co)
        try:
            artist = emu.add_artist("Nova")
            emu.add_album([artist], "Old", album_type="album", release_date="2024-01-05")
            await add_guild(db, 1, now=clock())
            await follow(db, 1, artist, now=clock())
            await tracker.baseline(artist)
            async with db.transaction() as session:
                due = (await session.get(Guild, 1)).next_due_at
            emu.add_album([artist], "New", album_type="single", release_date="2026-11-26")
            clock.now = due

            # The store fails as the run records its outcome and as it gives its leases up.
            real_finish, real_release = runs.finish_run, leases.release_guild_leases

            async def finish_fails(*args, **kwargs):
                raise StoreDown("the store is away")

            async def release_fails(*args, **kwargs):
                raise StoreDown("the store is away")

            monkeypatch.setattr(runs, "finish_run", finish_fails)
            monkeypatch.setattr(leases, "release_guild_leases", release_fails)
            with pytest.raises(StoreDown):
                await runner.run_due()
            monkeypatch.setattr(runs, "finish_run", real_finish)
            monkeypatch.setattr(leases, "release_guild_leases", real_release)
            async with db.transaction() as session:
                guild = await session.get(Guild, 1)
                assert guild.next_due_at == due and guild.lease_owner == co.owner  # still due, still held
            posted_before = len(sender.messages)

            # The store is back; the heartbeat renews the lease this process still owns.
            clock.advance(seconds=10)
            await co.beat()
            summary = await runner.run_due()
            assert summary is not None and summary.status == "ok", summary
            async with db.transaction() as session:
                guild = await session.get(Guild, 1)
                assert guild.next_due_at > due and guild.lease_owner is None
            titles = [e["title"] for _ch, embeds, _ in sender.messages for e in embeds]
            assert titles.count("New") == 1, (posted_before, titles)
        finally:
            await spotify.close()


async def test_a_guild_whose_delivery_the_store_failed_keeps_its_due_time_and_is_posted_at_the_next_scan(
    db, clock, monkeypatch
):
    async with SpotifyEmulator() as emu:
        spotify = emulator_client(emu, clock)
        co = Coordinator(db, clock=clock, lease_seconds=60, heartbeat_seconds=10)
        sender = FakeSender()
        tracker = Tracker(db, spotify, clock=clock, coordinator=co)  # as bot/wiring.py builds it
        deliverer = Deliverer(db, sender, clock=clock)
        runner = Runner(db, tracker, deliverer, clock=clock, coordinator=co)
        try:
            artist = emu.add_artist("Nova")
            emu.add_album([artist], "Old", album_type="album", release_date="2024-01-05")
            for gid, channel in ((1, 100), (2, 200)):
                await add_guild(db, gid, now=clock(), channel_id=channel)
                await follow(db, gid, artist, now=clock())
            await tracker.baseline(artist)
            async with db.transaction() as session:
                due = (await session.get(Guild, 1)).next_due_at
            emu.add_album([artist], "New", album_type="single", release_date="2026-11-26")
            clock.now = due + dt.timedelta(seconds=1)  # the scan comes a moment after the due time

            # The store drops the connection while guild 1 is delivered to; it is back for guild 2.
            real_deliver = deliverer.deliver

            async def deliver(guild_id, **kwargs):
                if guild_id == 1:
                    raise ConnectionRefusedError(111, "Connect call failed")
                return await real_deliver(guild_id, **kwargs)

            monkeypatch.setattr(deliverer, "deliver", deliver)
            summary = await runner.run_due()
            assert summary is not None and summary.status == "partial"
            monkeypatch.setattr(deliverer, "deliver", real_deliver)
            async with db.transaction() as session:
                one, two = await session.get(Guild, 1), await session.get(Guild, 2)
                assert one.next_due_at == due and one.lease_owner is None  # still due: runs again
                assert two.next_due_at > due
            requests = len(emu.request_log)

            clock.advance(seconds=60)
            again = await runner.run_due()
            assert again is not None and again.status == "ok" and again.guild_ids == [1]
            assert len(emu.request_log) == requests, emu.request_log[
                requests:
            ]  # checked since the due time: not fetched again
            posted = [(ch, e["title"]) for ch, embeds, _ in sender.messages for e in embeds]
            assert sorted(posted) == [(100, "New"), (200, "New")]
            async with db.transaction() as session:
                assert (await session.get(Guild, 1)).next_due_at > due
        finally:
            await spotify.close()
