"""Spotify answering 503 for an hour, met in the middle of a weekly run, on a simulated clock.

A real process takes its time from the database's clock (``release-bot run`` has no clock to
inject), so this runs the real ``ReleaseBot`` in-process against the fakes (:class:`fakes.stack.Stack`)
with a :class:`~fakes.stack.SimClock`: the bot's clock, the Spotify emulator's clock (so the outage,
``SpotifyEmulator.fail_for``, ends after one simulated hour) and the Spotify client's waits between
retries (each wait moves the clock on instead of sleeping) are all that one clock.

The weekly run starts with Spotify answering; a few requests in, every request answers 503 for
an hour. The run checks what it could, keeps the rest due and is recorded ``partial`` with its
coverage (``/history``, ``/status``); what it found is posted once. The next weekly run, after the
outage, checks every artist and posts the rest once — nothing twice, nothing lost.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter

import pytest
from sqlalchemy import select

from storage.models import Run
from tests import backend
from tests.e2e.processes import posted_albums

pytestmark = pytest.mark.timeout(120)

ARTISTS = 10
#: /albums requests answered before Spotify starts failing (an artist with nothing else new costs one)
ANSWERED_BEFORE_OUTAGE = 4
OUTAGE = dt.timedelta(hours=1)


async def test_spotify_503_for_an_hour_partial_run_then_the_next_run_catches_up(tmp_path):
    t0 = time.monotonic()
    stack = await backend.create_stack(tmp_path)
    sp, clock = stack.spotify, stack.clock
    sp.monotonic = lambda: clock().timestamp()  # before any token: expiry on the same clock
    slept: list[float] = []

    async def sim_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds=seconds)
        await asyncio.sleep(0)

    stack.spotify_sleep = sim_sleep
    try:
        artists = [sp.add_artist(f"Artist {i}", followers=100 * (i + 1)) for i in range(ARTISTS)]
        for i, a in enumerate(artists):
            sp.add_album([a], f"Old {i}", album_type="album", release_date="2024-05-03")
        await stack.start_bot()
        await stack.command("settings", {"channel": stack.channel_id}, subcommand="channel")
        for a in artists:
            reply = await stack.command("follow", {"artist": a})
            assert "Now following" in (reply.content or ""), reply.final
        status = await stack.bot.services.runs.status(stack.guild_id)
        due = status.next_due_at  # Friday 12:00 UTC, the default slot
        new = {
            a: sp.add_album([a], f"New {i}", album_type="single", release_date="2026-11-19")
            for i, a in enumerate(artists)
        }

        # The weekly run; Spotify goes down a few requests into it, for an hour.
        sp.latency = 0.02
        start = len(sp.request_log)

        def answered() -> int:
            return sum(1 for r in sp.request_log[start:] if "/albums" in r.path and r.status == 200)

        async def outage_after_a_few() -> dt.datetime:
            while answered() < ANSWERED_BEFORE_OUTAGE:  # noqa: ASYNC110 - polls the emulator's log
                await asyncio.sleep(0.001)
            sp.fail_for(OUTAGE.total_seconds(), status=503)
            return clock()

        watcher = asyncio.create_task(outage_after_a_few())
        clock.set(due)
        outage_start = await asyncio.wait_for(watcher, 30)

        async def schedule_runs() -> list:
            async with stack.bot.core.db.transaction() as session:
                rows = await session.execute(select(Run).where(Run.trigger == "schedule").order_by(Run.id))
                return list(rows.scalars())

        first = (await stack.until(lambda: _finished(schedule_runs()), timeout=60, what="the weekly run"))[0]
        assert first.status == "partial", (first.status, first.error)
        assert 0 < first.artists_checked < first.artists_due == ARTISTS, (first.artists_checked, first.artists_due)
        assert first.artists_failed == ARTISTS - first.artists_checked, (first.artists_failed, first.error)
        assert clock() - outage_start < OUTAGE, "the retries' waits did not outlast the outage"
        sent_503 = sum(1 for r in sp.request_log[start:] if r.status == 503)
        checked_first = first.artists_checked

        # Posted once: the releases of the artists the run could check, nothing else.
        posted, other = posted_albums(stack.discord, stack.channel_id)
        assert set(posted.values()) <= {1} and other == 0, posted
        assert len(posted) == checked_first
        assert set(posted) <= set(new.values())

        # What an operator and a member see: the partial run with its coverage.
        history = await stack.command("history")
        text = str(history.final)
        assert "partial" in text and f"checked {checked_first}/{ARTISTS}" in text, text
        status_reply = await stack.command("status")
        assert f"partial; checked {checked_first}/{ARTISTS}" in str(status_reply.final), status_reply.final

        # The next weekly run, after the outage: every artist checked, the rest posted once.
        assert stack.bot.services is not None
        nxt = (await stack.bot.services.runs.status(stack.guild_id)).next_due_at
        assert nxt >= due + dt.timedelta(days=7) - dt.timedelta(minutes=1)
        clock.set(nxt)
        runs = await stack.until(lambda: _finished(schedule_runs(), 2), timeout=60, what="the next weekly run")
        second = runs[1]
        assert second.status == "ok", (second.status, second.error)
        assert second.artists_checked == ARTISTS
        posted, other = posted_albums(stack.discord, stack.channel_id)
        assert posted == Counter(dict.fromkeys(new.values(), 1)), posted
        assert other == 0
    finally:
        await stack.close()
    print(
        f"\nSpotify 503 for an hour: weekly run partial, {checked_first}/{ARTISTS} artists checked, "
        f"{sent_503} requests answered 503, {len(slept)} retry waits ({sum(slept):.1f} simulated s); "
        f"next weekly run ok, {ARTISTS} releases posted once in all; {time.monotonic() - t0:.1f} s"
    )


async def _finished(runs, count: int = 1) -> list | None:
    """The schedule runs once ``count`` of them finished (none ``running``), else None."""
    done = await runs
    return done if len(done) >= count and all(r.status != "running" for r in done) else None
