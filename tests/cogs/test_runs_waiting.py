"""The ``/refresh`` reply when Discord failed the posts: what waits, why, and when the next try is —
never "no new releases" beside the warning."""

from __future__ import annotations

import datetime as dt

from bot.delivery.deliverer import DeliveryResult
from bot.scheduling.runner import RunSummary
from bot.services.runs import duration_text, waiting_text
from cogs.runs import summary_text

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def summary(result: DeliveryResult, found: int = 3) -> RunSummary:
    return RunSummary(
        run_id=1,
        trigger="refresh",
        status="partial",
        artists_due=4,
        artists_checked=4,
        releases_found=found,
        deliveries={result.guild_id: result},
        finished_at=NOW,
    )


def test_failed_posts_say_what_waits_and_when_the_next_try_is():
    result = DeliveryResult(7, pending=3, failure="Discord failed: 503", retry_at=NOW + dt.timedelta(minutes=10))
    result.error = "send failed: DiscordServerError: 503 Service Unavailable"
    text = summary_text(summary(result))
    assert "nothing posted yet" in text and "no new releases" not in text
    assert "⚠ 3 releases are waiting to be posted (Discord failed: 503); next try in 10 min." in text
    assert "Posting failed" not in text


def test_a_stop_says_the_releases_wait_for_the_next_run():
    result = DeliveryResult(7, pending=1, stopped=True)
    assert "The bot is restarting: 1 release waits for the next run." in summary_text(summary(result))


def test_nothing_new_still_says_so():
    assert "no new releases" in summary_text(summary(DeliveryResult(7), found=0))


def test_durations_read_as_people_say_them():
    assert [duration_text(s) for s in (-3, 2, 59, 119.7, 600, 3600, 5400, 21600)] == [
        "0 s",
        "2 s",
        "59 s",
        "2 min",
        "10 min",
        "1 h",
        "1 h 30 min",
        "6 h",
    ]
    assert (
        waiting_text(1, None, NOW + dt.timedelta(hours=2), NOW) == "1 release is waiting to be posted; next try in 2 h"
    )
