"""``cogs.runs``: ``/refresh`` (its progress and its one-per-server guard), ``/status``, ``/history`` and ``/preview``.

Each test calls ``await cog.<command>.callback(cog, interaction, ...)`` with an autospec'd
``discord.Interaction`` and autospec'd command services (``bot.services``: see ``tests/cogs/mocks.py``);
the cogs come from the fixtures of ``tests/cogs/conftest.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import discord
import pytest

from bot.delivery.planner import Announcement, BlockedArtist, GuildFilters
from bot.delivery.render import render_messages
from bot.scheduling.runner import FailedArtist, RunSummary
from bot.services.errors import UserError
from bot.services.runs import REFRESH_RUNNING_TEXT, GuildStatus, HistoryRow, Preview, PreviewPost
from cogs.runs import WAITING_TEXT, ProgressReporter, progress_text
from storage.models import Release, Run
from storage.routes import GuildRoutes
from tests.cogs.mocks import CHANNEL_ID, GUILD_ID, MEMBER_ID, http_response, make_interaction, sent, spec_mock, text

pytestmark = pytest.mark.timeout(30)

NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
ARTIST = "4Z8W4fKeB5YxbusRsdQVPb"


# --- /refresh ---------------------------------------------------------------------------------


def summary(**kwargs) -> RunSummary:
    base: dict[str, Any] = dict(
        run_id=5, trigger="refresh", status="ok", artists_due=4, artists_checked=4, releases_posted=2
    )
    base.update(kwargs)
    return RunSummary(**base)


async def test_refresh_replies_with_the_summary(runs, bot):
    bot.services.runs.refresh.return_value = summary()
    i = make_interaction()
    await runs.refresh.callback(runs, i)
    i.response.defer.assert_awaited_once_with(ephemeral=True, thinking=True)
    assert bot.services.runs.refresh.await_args.args == (GUILD_ID,)
    assert isinstance(bot.services.runs.refresh.await_args.kwargs["progress"], ProgressReporter)
    assert text(i) == "Checked 4/4 artists (coverage 100%) · **2 new releases** posted."


async def test_refresh_summary_with_failures_and_cooldown(runs, bot):
    bot.services.runs.refresh.return_value = summary(
        status="partial",
        artists_checked=3,
        releases_posted=0,
        cooldown_until=NOW,
        failed_artists=[FailedArtist(ARTIST, "Nova", "timeout")],
    )
    i = make_interaction()
    await runs.refresh.callback(runs, i)
    assert "Checked 3/4 artists (coverage 75%) · no new releases." in text(i)
    assert "Could not check Nova" in text(i) and "paused" in text(i)


async def test_second_refresh_answers_at_once(runs, bot):
    bot.services.runs.refresh_running.return_value = True
    i = make_interaction()
    await runs.refresh.callback(runs, i)
    assert text(i) == REFRESH_RUNNING_TEXT and sent(i)["ephemeral"]
    i.response.defer.assert_not_awaited()
    bot.services.runs.refresh.assert_not_awaited()


async def test_refresh_user_error_replaces_the_thinking_message(runs, bot):
    bot.services.runs.refresh.side_effect = UserError("Choose where releases go first: `/settings channel`.")
    i = make_interaction()
    await runs.refresh.callback(runs, i)
    assert i.edit_original_response.await_args.kwargs == {
        "content": "Choose where releases go first: `/settings channel`."
    }


async def test_refresh_shows_progress_then_the_summary(runs, bot):
    runs.progress_interval = 0.0

    async def slow_refresh(guild_id, progress):
        for done in range(3):
            progress(done, 3)
            await asyncio.sleep(0.01)
        progress(3, 3)  # all checked: no edit, the summary follows
        return summary(artists_due=3, artists_checked=3)

    bot.services.runs.refresh.side_effect = slow_refresh
    i = make_interaction()
    await runs.refresh.callback(runs, i)
    edits = [c.kwargs["content"] for c in i.edit_original_response.await_args_list]
    assert edits[:-1] and all(e.startswith("Checking… checked ") for e in edits[:-1])
    assert progress_text(3, 3) not in edits
    assert edits[-1].startswith("Checked 3/3 artists")


async def test_refresh_waiting_for_another_run_says_so(runs, bot):
    runs.progress_interval = 0.01
    bot.services.runs.run_in_progress = True

    async def waits(guild_id, progress):
        await asyncio.sleep(0.1)  # the weekly run holds the runner
        return summary()

    bot.services.runs.refresh.side_effect = waits
    i = make_interaction()
    await runs.refresh.callback(runs, i)
    edits = [c.kwargs["content"] for c in i.edit_original_response.await_args_list]
    assert edits[0] == WAITING_TEXT and edits[-1].startswith("Checked 4/4")


async def test_progress_reporter_throttles():
    now = [100.0]
    i = make_interaction()
    reporter = ProgressReporter(i, interval=1.5, clock=lambda: now[0])
    reporter(0, 10)  # right after the deferral: nothing
    now[0] += 1.0
    reporter(1, 10)
    assert reporter.edits == []
    now[0] += 0.6
    reporter(2, 10)
    reporter(3, 10)  # within 1.5 s of the last edit
    await asyncio.sleep(0)  # let the edit complete
    now[0] += 1.0
    reporter(4, 10)
    now[0] += 0.6
    reporter(5, 10)
    reporter(10, 10)
    assert reporter.edits == [progress_text(2, 10), progress_text(5, 10)]
    await reporter.close()
    reporter(6, 10)  # closed: never edits after the summary
    assert len(reporter.edits) == 2
    assert [c.kwargs["content"] for c in i.edit_original_response.await_args_list] == reporter.edits


async def test_progress_edit_failure_is_not_fatal():
    i = make_interaction()
    i.edit_original_response.side_effect = discord.HTTPException(http_response(500, "x"), "boom")
    reporter = ProgressReporter(i, interval=0.0)
    reporter(1, 2)
    await reporter.close()
    assert reporter.edits == [progress_text(1, 2)]


# --- /status ----------------------------------------------------------------------------------


def guild_status(**kwargs) -> GuildStatus:
    base: dict[str, Any] = dict(
        channel_id=CHANNEL_ID,
        channel_problem=None,
        follows=3,
        schedule_day=4,
        schedule_time="12:00",
        timezone="UTC",
        next_due_at=NOW,
        last_run=None,
        cooldown_until=None,
        cooldown_reason=None,
    )
    base.update(kwargs)
    return GuildStatus(**base)


async def test_status(runs, bot):
    bot.services.runs.status.return_value = guild_status(
        mention_role_id=999,
        filters=GuildFilters(frozenset({"remix", "live"}), frozenset({ARTIST})),
        channel_problem="the bot is not allowed to post",
        cooldown_until=NOW,
        cooldown_reason="QUOTA_EXCEEDED",
        last_run=Run(
            trigger="refresh",
            status="ok",
            artists_due=3,
            artists_checked=3,
            finished_at=NOW,
            started_at=NOW,
            releases_posted=1,
            spotify_requests=4,
        ),
    )
    i = make_interaction(user_id=MEMBER_ID, manage=False)
    await runs.status.callback(runs, i)
    fields = {f.name: f.value for f in sent(i)["embed"].fields}
    assert fields["Mention"] == "<@&999>"
    assert fields["Not posted"] == "remixes, live versions, appearances of 1 artist muted"
    assert "not allowed to post" in fields["Channel"] and "paused until" in fields["Spotify"]
    assert "checked 3/3 (100%), 1 posted, 4 Spotify requests" in fields["Last run"]
    assert "release day" not in fields["Schedule"]
    bot.services.runs.status.return_value = guild_status(release_day=True)
    i = make_interaction(user_id=MEMBER_ID, manage=False)
    await runs.status.callback(runs, i)
    assert "release day: on" in {f.name: f.value for f in sent(i)["embed"].fields}["Schedule"]


async def test_status_shows_routes_and_publishing(runs, bot):
    routes = GuildRoutes(by_type={"ep": 501, "single": 502}, by_artist={ARTIST: 503, "B" * 22: 504})
    bot.services.runs.status.return_value = guild_status(
        routes=routes,
        artist_names={ARTIST: "Nova_Lights"},
        publish=True,
        album_groups=("album", "single", "ep"),
        filters=GuildFilters(
            block_keywords=("karaoke",),
            block_patterns=("(a+)+$",),
            block_artists=(BlockedArtist("B" * 22, "Guest"),),
        ),
    )
    i = make_interaction()
    i.guild = spec_mock(discord.Guild)
    news = spec_mock(discord.TextChannel)
    news.is_news.return_value = True
    i.guild.get_channel.side_effect = lambda cid: news if cid == 501 else None
    await runs.status.callback(runs, i)
    fields = {f.name: f.value for f in sent(i)["embed"].fields}
    assert fields["Routes"].splitlines() == [
        "Singles → <#502>",
        "EPs → <#501>",
        f"{'B' * 22} → <#504>",  # an artist the bot does not know by name: its id (artists by name)
        r"Nova\_Lights → <#503>",
    ]
    assert fields["Posting"] == "Albums, Singles, EPs"
    assert fields["Publish"].startswith("Posts in <#501> are published (crossposted)")
    assert f"<#{CHANNEL_ID}>, <#502>, <#504>, <#503> are not announcement channels" in fields["Publish"]
    assert fields["Not posted"] == "2 blocked title keywords or patterns, releases crediting 1 blocked artist"


async def test_status_defaults(runs, bot):
    bot.services.runs.status.return_value = guild_status(channel_id=None)
    i = make_interaction()
    await runs.status.callback(runs, i)
    fields = {f.name: f.value for f in sent(i)["embed"].fields}
    assert fields["Mention"] == "nobody" and "Not posted" not in fields and fields["Last run"] == "none yet"
    assert "not set" in fields["Channel"]


# --- /history ---------------------------------------------------------------------------------


async def test_history(runs, bot):
    run = Run(
        trigger="schedule",
        status="partial",
        artists_due=4,
        artists_checked=3,
        artists_failed=1,
        spotify_requests=9,
        started_at=NOW,
        finished_at=NOW + dt.timedelta(minutes=1),
    )
    refresh = Run(
        trigger="refresh",
        status="ok",
        artists_due=0,
        artists_checked=0,
        artists_failed=0,
        spotify_requests=0,
        started_at=NOW,
        finished_at=None,
    )
    bot.services.runs.history.return_value = [HistoryRow(run, 2, 1), HistoryRow(refresh, 0, 0)]
    i = make_interaction(user_id=MEMBER_ID, manage=False)
    await runs.history.callback(runs, i)
    bot.services.runs.history.assert_awaited_once_with(GUILD_ID, limit=10)
    embed = sent(i)["embed"]
    lines = embed.description.splitlines()
    assert embed.title == "Last 2 runs" and sent(i)["ephemeral"]
    assert "weekly · partial · checked 3/4 (75%) · 9 requests · 2 posted, 1 skipped · 1 failed" in lines[0]
    assert "/refresh · ok · checked 0/0 (100%) · 0 requests · 0 posted" in lines[1]


async def test_history_empty(runs, bot):
    bot.services.runs.history.return_value = []
    i = make_interaction()
    await runs.history.callback(runs, i)
    assert text(i).startswith("No run yet.")


# --- /preview ---------------------------------------------------------------------------------


def release(k: int) -> Release:
    return Release(
        id=f"{k:022d}",
        name=f"Record {k}",
        album_type="single",
        release_date="2026-11-20",
        release_date_precision="day",
        total_tracks=1,
        image_url=None,
        labels=[],
        artists=[{"id": ARTIST, "name": "Nova"}],
    )


def preview_of(n: int, *, channel_id: int | None = CHANNEL_ID, **kwargs) -> Preview:
    announcements = [Announcement(release(k)) for k in range(n)]
    base: dict[str, Any] = dict(
        channel_id=channel_id,
        announcements=announcements,
        posts=[PreviewPost(channel_id, announcements, render_messages(announcements))] if n else [],
        skipped={},
        mention=None,
    )
    base.update(kwargs)
    return Preview(**base)


async def test_preview_shows_the_next_post_privately(runs, bot):
    bot.services.runs.preview.return_value = preview_of(12, mention="<@&999>", skipped={"remix": 2, "muted": 1})
    i = make_interaction(user_id=MEMBER_ID, manage=False)
    await runs.preview.callback(runs, i)
    kwargs = i.response.send_message.await_args.kwargs
    assert kwargs["ephemeral"] is True
    assert kwargs["allowed_mentions"].roles is False and kwargs["allowed_mentions"].everyone is False
    assert len(kwargs["embeds"]) == 10 and kwargs["embeds"][0].title == "Record 0"
    assert "**12 releases** in 2 messages, mentioning <@&999>" in kwargs["content"]
    assert "Showing the first message (10 of 12)" in kwargs["content"]
    assert "Not posted, ever: 1 muted appearances, 2 remixes." in kwargs["content"]
    assert "Nothing was changed" in kwargs["content"]


async def test_preview_empty(runs, bot):
    bot.services.runs.preview.return_value = preview_of(0, skipped={"type": 1})
    i = make_interaction()
    await runs.preview.callback(runs, i)
    kwargs = i.response.send_message.await_args.kwargs
    assert kwargs["embeds"] == [] and "Nothing is waiting" in kwargs["content"]
    assert "1 of a type not posted" in kwargs["content"]


async def test_preview_without_channel(runs, bot):
    bot.services.runs.preview.return_value = preview_of(1, channel_id=None)
    i = make_interaction()
    await runs.preview.callback(runs, i)
    assert "none set yet" in i.response.send_message.await_args.kwargs["content"]


async def test_preview_says_where_each_release_goes(runs, bot):
    first, second, third = (Announcement(release(k)) for k in range(3))
    third.release.name = "Five Songs"
    bot.services.runs.preview.return_value = preview_of(
        3,
        announcements=[first, second, third],
        posts=[
            PreviewPost(CHANNEL_ID, [first, second], render_messages([first, second])),
            PreviewPost(555, [third], render_messages([third])),
        ],
        skipped={"block_artist": 1, "block_title": 2},
    )
    i = make_interaction()
    await runs.preview.callback(runs, i)
    content = i.response.send_message.await_args.kwargs["content"]
    assert f"**3 releases** in 2 messages: 2 to <#{CHANNEL_ID}> · 1 to <#555>." in content
    assert f"• Nova — Record 0 → <#{CHANNEL_ID}>" in content and "• Nova — Five Songs → <#555>" in content
    assert f"Showing the first message (2 of 3) to <#{CHANNEL_ID}>." in content
    assert "1 crediting a blocked artist, 2 with a blocked keyword or pattern in the title" in content
    assert len(i.response.send_message.await_args.kwargs["embeds"]) == 2
