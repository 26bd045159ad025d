"""deploy/grafana/release-bot.json queries only metrics a bot really exports: every metric name in its
panels' PromQL has samples in a real scrape of a bot's ``/metrics`` after a run (the real discord.py
client against the fakes)."""

from __future__ import annotations

import pytest

from bot.settings import HttpSettings
from fakes.stack import wait_for
from tests import backend
from tests.e2e.ops import dashboard_exprs, metric_names, scrape

pytestmark = pytest.mark.timeout(120)


def test_the_dashboard_covers_runs_coverage_budget_cooldown_deliveries_and_latency():
    names = set().union(*map(metric_names, dashboard_exprs()))
    for needed in (
        "release_bot_runs_total",
        "release_bot_artists_checked_total",
        "release_bot_artists_due_total",
        "release_bot_spotify_budget_used_requests",
        "release_bot_spotify_budget_left_requests",
        "release_bot_spotify_cooldown_until_seconds",
        "release_bot_deliveries_total",
        "release_bot_release_post_latency_seconds_bucket",
    ):
        assert needed in names
    assert metric_names('sum(x{status!="release_bot_fake"}) + release_bot_a_total') == {"release_bot_a_total"}


async def test_every_metric_the_dashboard_queries_is_in_a_scrape_after_a_run(tmp_path):
    stack = await backend.create_stack(tmp_path)
    stack.http = HttpSettings(port=0)
    stack.discord.heartbeat_interval_ms = 200  # a gateway latency within the test
    sp = stack.spotify
    try:
        nova = sp.add_artist("Nova Lights")
        sp.add_album([nova], "First Light", release_date="2024-03-01")
        bot = await stack.start_bot()
        assert bot.ops is not None
        await stack.command("settings", {"channel": stack.channel_id}, subcommand="channel")
        await stack.command("follow", {"artist": nova})
        stack.clock.advance(hours=1)
        sp.add_album([nova], "Midnight Drive", album_type="single", release_date="2026-11-16")
        sp.fail_next(status=429, retry_after=0)  # a short rate limit, retried
        assert "1 new release" in (await stack.command("refresh")).content
        await bot.core.coordinator.beat()  # the account-wide values are read at the heartbeat

        wanted = set().union(*map(metric_names, dashboard_exprs()))

        async def missing() -> set[str]:
            present = {name for name, _labels in await scrape(bot.ops.port)}
            return wanted - present

        async def complete() -> bool:
            return not await missing()

        try:
            await wait_for(complete, timeout=10, what="every dashboard metric in the scrape")
        except TimeoutError:
            pytest.fail(f"the dashboard queries metrics the bot does not export: {sorted(await missing())}")
    finally:
        await stack.close()
