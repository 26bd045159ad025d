"""End to end: Spotify 429/503 survived, the quota cooldown honoured across a restart,
bad input refused with nothing changed, and members without Manage Server refused."""

from __future__ import annotations

import pytest
import pytest_asyncio

from tests import backend

pytestmark = [pytest.mark.timeout(180), pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory):
    st = await backend.create_stack(tmp_path_factory.mktemp("failures"))
    st.nova = st.spotify.add_artist("Nova Lights")
    st.spotify.add_album([st.nova], "Old Album", album_type="album", release_date="2023-05-05")
    st.closed_channel = st.discord.add_channel(st.guild_id, "staff-only", bot_can_send=False)
    await st.start_bot()
    await st.command("settings", {"channel": st.channel_id}, subcommand="channel")
    reply = await st.command("follow", {"artist": f"spotify:artist:{st.nova}"})
    assert "Now following" in reply.content
    try:
        yield st
    finally:
        await st.close()


async def follows_of(stack) -> list[str]:
    return [f.name for f in await stack.bot.services.follows.following(stack.guild_id)]


async def test_short_429_and_503_are_survived(stack):
    stack.clock.advance(hours=1)
    stack.spotify.add_album([stack.nova], "Through The Storm", album_type="single", release_date="2026-11-18")
    stack.spotify.fail_next(1, status=429, retry_after=1, path_contains="/albums")
    stack.spotify.fail_next(2, status=503, path_contains="/albums")
    reply = await stack.command("refresh", timeout=30)
    assert "1 new release" in reply.content and "1/1" in reply.content
    assert stack.posted_titles().count("Through The Storm") == 1
    statuses = [r.status for r in stack.spotify.requests_to("/albums")]
    assert 429 in statuses and 503 in statuses


async def test_quota_cooldown_stops_runs_and_survives_restart(stack):
    stack.clock.advance(hours=1)
    stack.spotify.add_album([stack.nova], "After The Pause", album_type="single", release_date="2026-11-19")
    stack.spotify.fail_next(1, status=429, retry_after=86400, reason="QUOTA_EXCEEDED")
    reply = await stack.command("refresh")
    assert "paused" in reply.content and "nothing is missed" in reply.content
    assert "After The Pause" not in stack.posted_titles()
    status = await stack.command("status")
    assert "paused until" in str(status.final)

    await stack.restart_bot()
    before = len(stack.spotify.request_log)
    reply = await stack.command("refresh")
    assert "paused" in reply.content
    assert len(stack.spotify.request_log) == before, "no Spotify request during the cooldown, even after a restart"

    stack.clock.advance(days=1, minutes=1)
    reply = await stack.command("refresh")
    assert "1 new release" in reply.content
    assert stack.posted_titles().count("After The Pause") == 1


@pytest.mark.parametrize(
    "artist, expected",
    [
        ("https://open.spotify.com/album/4aawyAB9vmqN3uQ7FjRGTy", "album link, not an artist"),
        ("https://open.spotify.com/track/0VjIjW4GlUZAMYd2vXMi3b", "track link, not an artist"),
        ("zzqx no such artist here", "No Spotify artist matches"),
        ("0000000000000000000000", "No Spotify artist has the id"),
    ],
)
async def test_bad_follow_input_is_refused_and_changes_nothing(stack, artist, expected):
    before = await follows_of(stack)
    reply = await stack.command("follow", {"artist": artist})
    assert expected in reply.content
    assert reply.ephemeral
    assert await follows_of(stack) == before


@pytest.mark.parametrize(
    "options, expected",
    [
        ({"day": "friday", "time": "25:99", "timezone": "UTC"}, "out of range"),
        ({"day": "friday", "time": "noon", "timezone": "UTC"}, "HH:MM"),
        ({"day": "friday", "time": "18:00", "timezone": "Mars/Olympus_Mons"}, "time zone"),
    ],
)
async def test_bad_schedule_is_refused_and_changes_nothing(stack, options, expected):
    before = await stack.bot.services.runs.status(stack.guild_id)
    reply = await stack.command("settings", options, subcommand="schedule")
    assert expected in reply.content and reply.ephemeral
    after = await stack.bot.services.runs.status(stack.guild_id)
    assert (after.schedule_day, after.schedule_time, after.timezone, after.next_due_at) == (
        before.schedule_day,
        before.schedule_time,
        before.timezone,
        before.next_due_at,
    )


async def test_good_schedule_is_applied_in_its_time_zone(stack):
    reply = await stack.command(
        "settings", {"day": "monday", "time": "09:30", "timezone": "Europe/Berlin"}, subcommand="schedule"
    )
    assert "Monday" in reply.content
    st = await stack.bot.services.runs.status(stack.guild_id)
    local = st.next_due_at.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 30)
    assert st.next_due_at > stack.clock()


async def test_channel_the_bot_cannot_post_in_is_refused(stack):
    reply = await stack.command("settings", {"channel": stack.closed_channel}, subcommand="channel")
    assert "can't" in reply.content and reply.ephemeral
    st = await stack.bot.services.runs.status(stack.guild_id)
    assert st.channel_id == stack.channel_id


@pytest.mark.parametrize(
    "command, options, subcommand",
    [
        ("follow", {"artist": "Nova Lights"}, None),
        ("unfollow", {"artist": "Nova Lights"}, None),
        ("refresh", {}, None),
        ("settings", {"day": "friday", "time": "10:00", "timezone": "UTC"}, "schedule"),
    ],
)
async def test_member_without_manage_server_is_refused(stack, command, options, subcommand):
    before = await follows_of(stack)
    posted = len(stack.posted())
    reply = await stack.command(command, options, subcommand=subcommand, user_id=stack.member_id)
    assert "Manage Server" in reply.content and reply.ephemeral
    assert await follows_of(stack) == before and len(stack.posted()) == posted


async def test_member_can_read_following_and_status(stack):
    reply = await stack.command("following", user_id=stack.member_id)
    assert "Nova Lights" in str(reply.final)
    reply = await stack.command("status", user_id=stack.member_id)
    assert "Schedule" in str(reply.final)


async def test_unfollow_then_nothing_is_posted_for_that_artist(stack):
    reply = await stack.command("unfollow", {"artist": stack.nova})
    assert "Unfollowed" in reply.content
    assert await follows_of(stack) == []
    reply = await stack.command("unfollow", {"artist": stack.nova})
    assert "doesn't follow" in reply.content
    reply = await stack.command("refresh")
    assert "follows no artists" in reply.content
