"""Callback tests: every command, option and error path, with mocks spec'd on real discord objects.

Each test calls ``await cog.<command>.callback(cog, interaction, ...)`` with an autospec'd
``discord.Interaction`` and autospec'd command services (``bot.services``: see ``tests/cogs/mocks.py``).
Checks (Manage Server) are run through the command's ``checks``; errors through the tree's
error handler (``cogs.notices.on_app_command_error``), as discord.py would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace
from unittest.mock import MagicMock

import discord
import pytest
from discord import app_commands

from bot.delivery.planner import Announcement, GuildFilters
from bot.delivery.render import render_messages
from bot.scheduling.runner import FailedArtist, RunSummary
from bot.services.errors import UserError
from bot.services.follows import FollowedArtist, FollowOutcome
from bot.services.runs import GuildStatus, HistoryRow, Preview
from cogs.common import MissingManageGuild
from cogs.follows import Follows, Paginator, following_pages
from cogs.notices import on_app_command_error
from cogs.runs import REFRESH_RUNNING_TEXT, WAITING_TEXT, ProgressReporter, Runs, progress_text
from cogs.settings import Settings
from tests.cogs.mocks import CHANNEL_ID, GUILD_ID, MEMBER_ID, make_bot, make_interaction, sent, text

pytestmark = pytest.mark.timeout(30)

NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
ARTIST = "4Z8W4fKeB5YxbusRsdQVPb"


@pytest.fixture
def bot():
    return make_bot()


@pytest.fixture
def follows(bot):
    return Follows(bot)


@pytest.fixture
def runs(bot):
    return Runs(bot)


@pytest.fixture
def settings(bot):
    return Settings(bot)


async def run_checks(command, interaction) -> None:
    for check in command.checks:
        await discord.utils.maybe_coroutine(check, interaction)


async def handle_error(interaction, exc: Exception) -> None:
    """What the tree does with an exception raised by a callback."""
    error = (
        exc if isinstance(exc, app_commands.AppCommandError) else app_commands.CommandInvokeError(Follows.follow, exc)
    )
    await on_app_command_error(interaction, error)


# --- Manage Server checks -------------------------------------------------------------------


@pytest.mark.parametrize(
    "cog_name, command",
    [
        ("follows", "follow"),
        ("follows", "unfollow"),
        ("runs", "refresh"),
        ("settings", "channel"),
        ("settings", "schedule"),
        ("settings", "types"),
        ("settings", "filters"),
        ("settings", "mention"),
    ],
)
async def test_manage_server_is_required(request, cog_name, command):
    cog = request.getfixturevalue(cog_name)
    member = make_interaction(user_id=MEMBER_ID, manage=False)
    with pytest.raises(MissingManageGuild) as info:
        await run_checks(getattr(cog, command), member)
    await handle_error(member, info.value)
    assert "Manage Server" in text(member) and sent(member)["ephemeral"] is True
    await run_checks(getattr(cog, command), make_interaction())  # an admin passes


@pytest.mark.parametrize(
    "cog_name, command",
    [
        ("follows", "following"),
        ("runs", "status"),
        ("runs", "history"),
        ("runs", "preview"),
    ],
)
async def test_read_only_commands_need_no_permission(request, cog_name, command):
    cog = request.getfixturevalue(cog_name)
    await run_checks(getattr(cog, command), make_interaction(user_id=MEMBER_ID, manage=False))


async def test_error_handler_paths():
    i = make_interaction()
    await handle_error(i, UserError("Bad input."))
    assert text(i) == "Bad input." and sent(i)["ephemeral"]
    i = make_interaction()
    await handle_error(i, app_commands.NoPrivateMessage())
    assert "only inside a server" in text(i)
    i = make_interaction()
    await handle_error(i, RuntimeError("boom"))
    assert "Something went wrong" in text(i) and "boom" not in text(i)
    i = make_interaction()
    i.response.defer.side_effect(None)  # already deferred: the error goes as a follow-up
    await handle_error(i, UserError("Late."))
    assert i.followup.send.await_args.kwargs["content"] == "Late."


# --- /follow, /unfollow -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "outcome, expected",
    [
        (FollowOutcome(ARTIST, "Nova Lights", False, 12), "Now following [Nova Lights]"),
        (FollowOutcome(ARTIST, "Nova Lights", True, None), "already follows [Nova Lights]"),
        (FollowOutcome(ARTIST, "Nova Lights", False, None), "Spotify is busy"),
    ],
)
async def test_follow(follows, bot, outcome, expected):
    bot.services.follows.follow.return_value = outcome
    i = make_interaction()
    await follows.follow.callback(follows, i, "Nova Lights")
    i.response.defer.assert_awaited_once_with(ephemeral=True, thinking=True)
    bot.services.follows.follow.assert_awaited_once_with(GUILD_ID, "Nova Lights")
    assert expected in text(i) and f"open.spotify.com/artist/{ARTIST}" in text(i)


async def test_follow_bad_input_is_a_private_error(follows, bot):
    bot.services.follows.follow.side_effect = UserError("No Spotify artist matches “zzqx”.")
    i = make_interaction()
    with pytest.raises(UserError) as info:
        await follows.follow.callback(follows, i, "zzqx")
    await handle_error(i, info.value)
    assert "No Spotify artist matches" in i.followup.send.await_args.kwargs["content"]
    assert i.followup.send.await_args.kwargs["ephemeral"] is True


async def test_follow_autocomplete(follows, bot):
    bot.services.follows.artist_choices.return_value = [("Nova Lights · synthpop", ARTIST)]
    choices = await follows.follow_autocomplete(make_interaction(), "nova")
    assert [(c.name, c.value) for c in choices] == [("Nova Lights · synthpop", ARTIST)]
    assert await follows.follow_autocomplete(make_interaction(manage=False), "nova") == []


async def test_unfollow(follows, bot):
    bot.services.follows.unfollow.return_value = "Nova_Lights"
    i = make_interaction()
    await follows.unfollow.callback(follows, i, ARTIST)
    bot.services.follows.unfollow.assert_awaited_once_with(GUILD_ID, ARTIST)
    assert text(i) == r"Unfollowed **Nova\_Lights**." and sent(i)["ephemeral"]
    bot.services.follows.unfollow.side_effect = UserError("This server doesn't follow “x”.")
    with pytest.raises(UserError):
        await follows.unfollow.callback(follows, make_interaction(), "x")


async def test_unfollow_autocomplete(follows, bot):
    bot.services.follows.followed_choices.return_value = [("Nova Lights", ARTIST)]
    choices = await follows.unfollow_autocomplete(make_interaction(), "no")
    assert [(c.name, c.value) for c in choices] == [("Nova Lights", ARTIST)]
    bot.services.follows.followed_choices.assert_awaited_once_with(GUILD_ID, "no")


# --- /following -------------------------------------------------------------------------------


def followed(n: int) -> list[FollowedArtist]:
    rows = []
    for k in range(n):
        rows.append(
            FollowedArtist(
                f"{k:022d}",
                f"Artist {k:02d}",
                NOW,
                NOW - dt.timedelta(hours=k) if k % 3 else None,
                "timeout" if k == 1 else None,
                *((f"r{k}", f"Record *{k}*", "2026-11-14", "day") if k % 2 == 0 else (None, None, None, None)),
            )
        )
    return rows


async def test_following_empty(follows, bot):
    bot.services.follows.following.return_value = []
    i = make_interaction()
    await follows.following.callback(follows, i)
    assert "follows no artists yet" in text(i)


async def test_following_short_list_has_no_buttons(follows, bot):
    bot.services.follows.following.return_value = followed(3)
    i = make_interaction(user_id=MEMBER_ID, manage=False)
    await follows.following.callback(follows, i)
    kwargs = sent(i)
    assert "view" not in kwargs and kwargs["ephemeral"]
    description = kwargs["embed"].description
    assert r"last release *Record \*0\**" in description and "(14 Nov 2026)" in description
    assert "no release known yet" in description and "not checked yet" in description
    assert "⚠ last check failed" in description and "checked <t:" in description
    assert kwargs["embed"].title == "Following 3 artists"


async def test_following_long_list_pages_with_buttons(follows, bot):
    bot.services.follows.following.return_value = followed(25)
    i = make_interaction()
    await follows.following.callback(follows, i)
    kwargs = i.response.send_message.await_args.kwargs
    view = kwargs["view"]
    assert isinstance(view, Paginator) and kwargs["ephemeral"] and view.timeout == 180
    assert kwargs["embed"].footer.text == "Page 1/3" and "Artist 00" in kwargs["embed"].description
    assert view.previous.disabled and not view.next.disabled

    # The invoker turns the pages.
    click = make_interaction()
    assert await view.interaction_check(click)
    await view.next.callback(click)
    page = click.response.edit_message.await_args.kwargs
    assert page["embed"].footer.text == "Page 2/3" and "Artist 10" in page["embed"].description
    click = make_interaction()
    await view.next.callback(click)
    assert click.response.edit_message.await_args.kwargs["embed"].footer.text == "Page 3/3"
    assert view.next.disabled and not view.previous.disabled
    click = make_interaction()
    await view.previous.callback(click)
    assert click.response.edit_message.await_args.kwargs["embed"].footer.text == "Page 2/3"

    # Someone else may not.
    other = make_interaction(user_id=MEMBER_ID, manage=False)
    assert not await view.interaction_check(other)
    assert "Only the person who ran `/following`" in text(other) and sent(other)["ephemeral"]

    # Timeout disables the buttons on the reply.
    await view.on_timeout()
    edited = i.edit_original_response.await_args.kwargs["view"]
    assert all(item.disabled for item in edited.children)
    view.stop()


def test_following_pages_stay_within_discord_limits():
    rows = [FollowedArtist(f"{k:022d}", "N" * 300, NOW, NOW, "e", "r", "T" * 500, "2026", "year") for k in range(23)]
    pages = following_pages(rows)
    assert len(pages) == 3 and all(len(p.description) <= 4096 for p in pages)


# --- /refresh ---------------------------------------------------------------------------------


def summary(**kwargs) -> RunSummary:
    base = dict(run_id=5, trigger="refresh", status="ok", artists_due=4, artists_checked=4, releases_posted=2)
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
    i.edit_original_response.side_effect = discord.HTTPException(MagicMock(status=500, reason="x"), "boom")
    reporter = ProgressReporter(i, interval=0.0)
    reporter(1, 2)
    await reporter.close()
    assert reporter.edits == [progress_text(1, 2)]


# --- /status ----------------------------------------------------------------------------------


def guild_status(**kwargs) -> GuildStatus:
    base = dict(
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
        last_run=SimpleNamespace(
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


async def test_status_defaults(runs, bot):
    bot.services.runs.status.return_value = guild_status(channel_id=None)
    i = make_interaction()
    await runs.status.callback(runs, i)
    fields = {f.name: f.value for f in sent(i)["embed"].fields}
    assert fields["Mention"] == "nobody" and "Not posted" not in fields and fields["Last run"] == "none yet"
    assert "not set" in fields["Channel"]


# --- /history ---------------------------------------------------------------------------------


async def test_history(runs, bot):
    run = SimpleNamespace(
        trigger="schedule",
        status="partial",
        artists_due=4,
        artists_checked=3,
        artists_failed=1,
        spotify_requests=9,
        started_at=NOW,
        finished_at=NOW + dt.timedelta(minutes=1),
    )
    refresh = SimpleNamespace(
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


def release(k: int) -> SimpleNamespace:
    return SimpleNamespace(
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


def preview_of(n: int, **kwargs) -> Preview:
    announcements = [Announcement(release(k)) for k in range(n)]
    base = dict(
        channel_id=CHANNEL_ID,
        announcements=announcements,
        messages=render_messages(announcements),
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


# --- /settings channel / schedule / types ---------------------------------------------------------


def guild_with_channel(perms: discord.Permissions | None, *, visible: bool = True) -> MagicMock:
    guild = MagicMock(spec=discord.Guild)
    guild.me = MagicMock(spec=discord.Member)
    channel = MagicMock(spec=discord.TextChannel)
    channel.id = CHANNEL_ID
    channel.mention = f"<#{CHANNEL_ID}>"
    channel.permissions_for.return_value = perms
    guild.get_channel.return_value = channel if visible else None
    return guild


async def test_settings_channel(settings, bot):
    i = make_interaction()
    i.guild = guild_with_channel(discord.Permissions(view_channel=True, send_messages=True, embed_links=True))
    channel = MagicMock(spec=discord.TextChannel)
    channel.id = CHANNEL_ID
    await settings.channel.callback(settings, i, channel)
    bot.services.guild_settings.set_channel.assert_awaited_once_with(GUILD_ID, CHANNEL_ID)
    assert text(i) == f"New releases will be posted in <#{CHANNEL_ID}>."


@pytest.mark.parametrize(
    "perms, visible, expected",
    [
        (discord.Permissions(view_channel=True), True, "missing Send Messages, Embed Links"),
        (None, False, "I can't see that channel"),
    ],
)
async def test_settings_channel_refused(settings, bot, perms, visible, expected):
    i = make_interaction()
    i.guild = guild_with_channel(perms, visible=visible)
    channel = MagicMock(spec=discord.TextChannel)
    channel.id = CHANNEL_ID
    with pytest.raises(UserError, match=expected):
        await settings.channel.callback(settings, i, channel)
    bot.services.guild_settings.set_channel.assert_not_awaited()


async def test_settings_schedule(settings, bot):
    bot.services.guild_settings.set_schedule.return_value = NOW
    i = make_interaction()
    await settings.schedule.callback(
        settings, i, app_commands.Choice(name="Friday", value="friday"), " 18:30 ", "Europe/Berlin"
    )
    bot.services.guild_settings.set_schedule.assert_awaited_once_with(GUILD_ID, "friday", " 18:30 ", "Europe/Berlin")
    assert text(i).startswith("New releases will be posted every Friday at 18:30 (Europe/Berlin).")
    bot.services.guild_settings.set_schedule.side_effect = UserError("Unknown time zone 'Mars/Base'.")
    with pytest.raises(UserError):
        await settings.schedule.callback(
            settings, make_interaction(), app_commands.Choice(name="Monday", value="monday"), "10:00", "Mars/Base"
        )


async def test_settings_types(settings, bot):
    bot.services.guild_settings.album_groups.return_value = ("album", "single", "compilation")
    i = make_interaction()
    await settings.types.callback(settings, i)
    assert text(i) == "Posting: Albums, Singles, Compilations. Nothing was changed."
    bot.services.guild_settings.switch_album_groups.return_value = ("album", "appears_on")
    i = make_interaction()
    await settings.types.callback(settings, i, single=False, compilation=False, appears_on=True)
    # The service turns the groups on and off atomically (tests/bot/services/test_guild_settings.py).
    assert bot.services.guild_settings.switch_album_groups.await_args.args == (
        GUILD_ID,
        {"album": None, "single": False, "compilation": False, "appears_on": True},
    )
    assert text(i) == "Posting: Albums, Appears on."
    bot.services.guild_settings.switch_album_groups.side_effect = UserError(
        "That would post nothing: keep at least one release type. Nothing was changed."
    )
    with pytest.raises(UserError, match="at least one"):
        await settings.types.callback(settings, make_interaction(), album=False, single=False, compilation=False)


# --- /settings filters --------------------------------------------------------------------------


async def test_settings_filters_show(settings, bot):
    bot.services.guild_settings.filters.return_value = GuildFilters()
    i = make_interaction()
    await settings.filters.callback(settings, i)
    assert text(i) == "No title filter: every version is posted. Nothing was changed."
    bot.services.guild_settings.set_filters.assert_not_awaited()


async def test_settings_filters_set(settings, bot):
    bot.services.guild_settings.set_filters.return_value = GuildFilters(
        frozenset({"remix", "sped_up"}), frozenset({ARTIST})
    )
    bot.services.follows.artist_names.return_value = {ARTIST: "Nova_Lights"}
    i = make_interaction()
    await settings.filters.callback(settings, i, remixes=True, live=False, sped_up=True, mute_appearances=ARTIST)
    bot.services.guild_settings.set_filters.assert_awaited_once_with(
        GUILD_ID, skip={"remix": True, "live": False, "sped_up": True, "instrumental": None}, mute=ARTIST, unmute=None
    )
    assert text(i).startswith(r"Skipping remixes, sped-up / slowed versions. Appearances muted: Nova\_Lights.")
    assert "never posted" in text(i)


async def test_settings_filters_unmute_and_errors(settings, bot):
    bot.services.guild_settings.set_filters.return_value = GuildFilters()
    i = make_interaction()
    await settings.filters.callback(settings, i, unmute_appearances=ARTIST)
    assert bot.services.guild_settings.set_filters.await_args.kwargs["unmute"] == ARTIST
    bot.services.guild_settings.set_filters.side_effect = UserError("This server doesn't follow “x”.")
    with pytest.raises(UserError):
        await settings.filters.callback(settings, make_interaction(), mute_appearances="x")


async def test_settings_filters_autocomplete(settings, bot):
    bot.services.follows.followed_choices.return_value = [("Nova Lights", ARTIST)]
    choices = await settings.mute_autocomplete(make_interaction(), "no")
    assert [(c.name, c.value) for c in choices] == [("Nova Lights", ARTIST)]
    bot.services.guild_settings.filters.return_value = GuildFilters(mute_appearances=frozenset({ARTIST, "B" * 22}))
    bot.services.follows.artist_names.return_value = {ARTIST: "Nova Lights", "B" * 22: "Bright Harbour"}
    choices = await settings.unmute_autocomplete(make_interaction(), "")
    assert [c.name for c in choices] == ["Bright Harbour", "Nova Lights"]
    choices = await settings.unmute_autocomplete(make_interaction(), "nov")
    assert [(c.name, c.value) for c in choices] == [("Nova Lights", ARTIST)]


# --- /settings mention --------------------------------------------------------------------------


def role(role_id: int = 999, *, default: bool = False, mentionable: bool = True) -> MagicMock:
    r = MagicMock(spec=discord.Role)
    r.id = role_id
    r.mention = f"<@&{role_id}>"
    r.mentionable = mentionable
    r.is_default.return_value = default
    return r


async def test_settings_mention_set(settings, bot):
    i = make_interaction()
    await settings.mention.callback(settings, i, role=role())
    bot.services.guild_settings.set_mention_role.assert_awaited_once_with(GUILD_ID, 999)
    assert text(i) == "Posts will mention <@&999> (and only that role)."
    assert sent(i)["allowed_mentions"].roles is False  # the confirmation itself pings nobody


async def test_settings_mention_unmentionable_role_warns(settings, bot):
    i = make_interaction()
    await settings.mention.callback(settings, i, role=role(mentionable=False))
    assert "not mentionable" in text(i)
    i = make_interaction(app_permissions=discord.Permissions(mention_everyone=True))
    await settings.mention.callback(settings, i, role=role(mentionable=False))
    assert "not mentionable" not in text(i)


async def test_settings_mention_show_and_clear(settings, bot):
    bot.services.guild_settings.mention_role.return_value = 999
    i = make_interaction()
    await settings.mention.callback(settings, i)
    assert text(i).startswith("Posts mention <@&999>.") and "Nothing was changed" in text(i)
    bot.services.guild_settings.set_mention_role.assert_not_awaited()
    bot.services.guild_settings.mention_role.return_value = None
    i = make_interaction()
    await settings.mention.callback(settings, i)
    assert text(i).startswith("Posts mention nobody.")
    i = make_interaction()
    await settings.mention.callback(settings, i, clear=True)
    bot.services.guild_settings.set_mention_role.assert_awaited_once_with(GUILD_ID, None)
    assert text(i) == "Posts will mention nobody."


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"role": role(default=True)}, "can't mention @everyone"),
        ({"role": role(), "clear": True}, "not both"),
    ],
)
async def test_settings_mention_refused(settings, bot, kwargs, expected):
    with pytest.raises(UserError, match=expected):
        await settings.mention.callback(settings, make_interaction(), **kwargs)
    bot.services.guild_settings.set_mention_role.assert_not_awaited()
