"""End to end: the real discord.py bot against the fakes, watched through its operations endpoints.

A ``/refresh`` moves the counters as the run goes (Spotify requests as the emulator saw them, the
run, the artist checked, the post and its latency); ``/readyz`` is 503 until the shard is ready, while
the database fails and while the gateway is gone, and 200 again by itself each time; ``/livez``
answers throughout; with ``[http]`` unset nothing listens and no metric is kept.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.discord_app.client import ReleaseBot
from bot.settings import HttpSettings
from fakes.stack import Stack, wait_for
from tests import backend
from tests.e2e.ops import failing_statements, get, scrape, total, value

pytestmark = pytest.mark.timeout(120)


async def ops_port(stack: Stack) -> int:
    bot = backend.running_bot(stack)
    assert bot.ops is not None, "[http] is set: the endpoints listen"
    return bot.ops.port


async def test_a_refresh_moves_the_counters(tmp_path):
    stack = await backend.create_stack(tmp_path)
    stack.http = HttpSettings(port=0)
    stack.discord.heartbeat_interval_ms = 200  # gateway latency measured within the test
    sp = stack.spotify
    try:
        nova = sp.add_artist("Nova Lights")
        sp.add_album([nova], "First Light", album_type="album", release_date="2024-03-01")
        await stack.start_bot()
        port = await ops_port(stack)
        await stack.command("settings", {"channel": stack.channel_id}, subcommand="channel")
        await stack.command("follow", {"artist": nova})  # the silent baseline
        stack.clock.advance(hours=3)
        sp.add_album([nova], "Midnight Drive", album_type="single", release_date="2026-11-16")

        before = await scrape(port)
        sp.clear_log()
        reply = await stack.command("refresh")
        assert "1 new release" in reply.content
        after = await scrape(port)

        def moved(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        spotify = total(after, "release_bot_spotify_requests_total") - total(
            before, "release_bot_spotify_requests_total"
        )
        assert spotify == len(sp.request_log) > 0  # every request the emulator answered, counted once
        assert moved("release_bot_runs_total", trigger="refresh", status="ok") == 1
        assert moved("release_bot_run_duration_seconds_count", trigger="refresh") == 1
        assert moved("release_bot_artists_checked_total") == 1
        assert moved("release_bot_releases_found_total") == 1
        assert moved("release_bot_deliveries_total", result="posted") == 1
        assert moved("release_bot_release_post_latency_seconds_count") == 1
        assert moved("release_bot_db_statement_seconds_count", kind="insert") > 0
        assert stack.posted_titles() == ["Midnight Drive"]

        # The shard: ready, and its gateway latency once discord.py has had a heartbeat acknowledged.
        assert value(after, "release_bot_shards_ready") == value(after, "release_bot_shards") == 1

        async def latency() -> bool:
            return ("release_bot_gateway_latency_seconds", frozenset({("shard", "0")})) in await scrape(port)

        await wait_for(latency, timeout=10, what="a gateway latency for shard 0")
    finally:
        await stack.close()


async def test_a_scrape_during_a_run_sees_it_go(tmp_path):
    """Scraped while a /refresh is under way: the Spotify requests already made are counted, the run
    itself not yet; scraped after it, the run, its artists and its posts are."""
    stack = await backend.create_stack(tmp_path)
    stack.http = HttpSettings(port=0)
    sp = stack.spotify
    try:
        artists = [sp.add_artist(f"Slow Artist {i}") for i in range(4)]
        for i, a in enumerate(artists):
            sp.add_album([a], f"Old {i}", album_type="album", release_date="2024-03-01")
        await stack.start_bot()
        port = await ops_port(stack)
        await stack.command("settings", {"channel": stack.channel_id}, subcommand="channel")
        for a in artists:
            await stack.command("follow", {"artist": a})
        stack.clock.advance(hours=3)
        for i, a in enumerate(artists):
            sp.add_album([a], f"New {i}", album_type="single", release_date="2026-11-16")

        before = await scrape(port)
        sp.latency = 0.15  # the run spends about a second at Spotify: long enough to be watched
        refresh = asyncio.create_task(stack.command("refresh", timeout=30))
        mid: list[tuple[float, float]] = []  # (Spotify requests counted, runs counted) while it runs
        while not refresh.done():
            now = await scrape(port)
            if not refresh.done():
                mid.append(
                    (
                        total(now, "release_bot_spotify_requests_total")
                        - total(before, "release_bot_spotify_requests_total"),
                        total(now, "release_bot_runs_total") - total(before, "release_bot_runs_total"),
                    )
                )
            await asyncio.sleep(0.05)
        reply = await refresh
        assert "4 new releases" in reply.content, reply.content
        after = await scrape(port)

        # Mid-run: Spotify requests counted as they are made, before the run itself is counted.
        assert any(requests > 0 and runs == 0 for requests, runs in mid), mid
        # The counts only ever grow while it runs.
        assert [m[0] for m in mid] == sorted(m[0] for m in mid), mid
        assert total(after, "release_bot_spotify_requests_total") - total(
            before, "release_bot_spotify_requests_total"
        ) >= max(m[0] for m in mid)
        assert (
            value(after, "release_bot_runs_total", trigger="refresh", status="ok")
            - value(before, "release_bot_runs_total", trigger="refresh", status="ok")
            == 1
        )
        assert (
            total(after, "release_bot_artists_checked_total") - total(before, "release_bot_artists_checked_total") == 4
        )
        assert (
            value(after, "release_bot_deliveries_total", result="posted")
            - value(before, "release_bot_deliveries_total", result="posted")
            == 4
        )
    finally:
        await stack.close()


async def test_readyz_follows_the_shards_and_the_database(tmp_path):
    stack = await backend.create_stack(tmp_path)
    stack.http = HttpSettings(port=0)
    try:
        # Started by hand to watch /readyz before the gateway is ready (the endpoints listen from
        # setup_hook on; the shard connects after it).
        bot = stack.bot = ReleaseBot(stack.settings(), clock=stack.clock)
        stack._task = asyncio.create_task(bot.start(stack.discord.token))
        await wait_for(lambda: bot.ops is not None or stack._task.done(), timeout=15, what="the endpoints")
        assert bot.ops is not None
        url = f"http://127.0.0.1:{bot.ops.port}"
        status, body = await get(url + "/readyz")
        assert status == 503 and "shards: FAIL" in body, body
        assert await get(url + "/livez") == (200, "ok\n")

        async def readyz(expected: int) -> str | None:
            status, body = await get(url + "/readyz")
            return body if status == expected else None

        body = await wait_for(lambda: readyz(200), timeout=20, what="/readyz 200 once the shard is ready")
        assert bot.is_ready() and "shards: ok 1 ready" in body and "migrations: ok" in body

        # The database stops answering: not ready, saying why; back by itself once it answers.
        with failing_statements(bot.core.db):
            status, body = await get(url + "/readyz")
            assert status == 503 and "database: FAIL" in body and "shards: ok" in body
            assert (await get(url + "/livez"))[0] == 200
        await wait_for(lambda: readyz(200), timeout=10, what="/readyz 200 once the database answers")

        # The gateway drops the shard and holds its RESUME a while: not ready until discord.py has resumed.
        fake = stack.discord
        answer_frame, resume = fake._on_gateway_frame, asyncio.Event()

        async def held(conn, op, data):
            if op == 6:  # RESUME
                await resume.wait()
            await answer_frame(conn, op, data)

        fake._on_gateway_frame = held
        await fake.disconnect_clients()
        body = await wait_for(lambda: readyz(503), timeout=10, what="/readyz 503 without the shard")
        assert "shards: FAIL shard(s) 0 of 1 not ready" in body and "database: ok" in body
        resume.set()
        await wait_for(lambda: readyz(200), timeout=20, what="/readyz 200 after the resume")
    finally:
        await stack.close()


async def test_without_http_nothing_listens_and_no_metric_is_kept(tmp_path):
    stack = await backend.create_stack(tmp_path)
    try:
        bot = await stack.start_bot()
        assert stack.settings().http.port is None
        assert bot.ops is None and bot.core.metrics is None
        assert bot.core.spotify.on_response is None and bot.core.runner.on_finished is None
    finally:
        await stack.close()
