"""``cogs.settings``: ``/settings channel``, ``schedule``, ``types``, ``filters`` and ``mention``.

Each test calls ``await cog.<command>.callback(cog, interaction, ...)`` with an autospec'd
``discord.Interaction`` and autospec'd command services (``bot.services``: see ``tests/cogs/mocks.py``);
the cogs come from the fixtures of ``tests/cogs/conftest.py``.
"""

from __future__ import annotations

import datetime as dt
from unittest.mock import MagicMock

import discord
import pytest
from discord import app_commands

from bot.delivery.planner import BlockedArtist, GuildFilters
from bot.services.errors import UserError
from bot.services.guild_settings import Destinations
from storage.routes import GuildRoutes
from tests.cogs.mocks import CHANNEL_ID, GUILD_ID, make_interaction, sent, spec_mock, text

pytestmark = pytest.mark.timeout(30)

NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
ARTIST = "4Z8W4fKeB5YxbusRsdQVPb"


# --- /settings channel / schedule / types ---------------------------------------------------------


def guild_with_channel(perms: discord.Permissions | None, *, visible: bool = True) -> MagicMock:
    guild = spec_mock(discord.Guild)
    guild.me = spec_mock(discord.Member)
    channel = spec_mock(discord.TextChannel)
    channel.id = CHANNEL_ID
    channel.mention = f"<#{CHANNEL_ID}>"
    channel.permissions_for.return_value = perms
    guild.get_channel.return_value = channel if visible else None
    return guild


async def test_settings_channel(settings, bot):
    i = make_interaction()
    i.guild = guild_with_channel(discord.Permissions(view_channel=True, send_messages=True, embed_links=True))
    channel = spec_mock(discord.TextChannel)
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
    channel = spec_mock(discord.TextChannel)
    channel.id = CHANNEL_ID
    with pytest.raises(UserError, match=expected):
        await settings.channel.callback(settings, i, channel)
    bot.services.guild_settings.set_channel.assert_not_awaited()


def forum_guild(perms: discord.Permissions, *, media: bool = False) -> MagicMock:
    guild = spec_mock(discord.Guild)
    guild.me = spec_mock(discord.Member)
    forum = spec_mock(discord.ForumChannel)
    forum.id = CHANNEL_ID
    forum.mention = f"<#{CHANNEL_ID}>"
    forum.is_media.return_value = media
    forum.permissions_for.return_value = perms
    guild.get_channel.return_value = forum
    return guild


FORUM_OK = discord.Permissions(view_channel=True, send_messages=True, send_messages_in_threads=True, embed_links=True)


async def test_settings_channel_takes_a_forum_the_bot_can_post_in(settings, bot):
    i = make_interaction()
    i.guild = forum_guild(FORUM_OK)
    await settings.channel.callback(settings, i, discord.Object(CHANNEL_ID))
    bot.services.guild_settings.set_channel.assert_awaited_once_with(GUILD_ID, CHANNEL_ID)


@pytest.mark.parametrize(
    "perms, media, expected",
    [
        (
            discord.Permissions(view_channel=True, embed_links=True),
            False,
            "missing Create Posts, Send Messages in Threads",
        ),
        (FORUM_OK, True, "media channel"),
    ],
)
async def test_a_forum_the_bot_may_not_post_in_is_refused(settings, bot, perms, media, expected):
    i = make_interaction()
    i.guild = forum_guild(perms, media=media)
    with pytest.raises(UserError, match=expected):
        await settings.channel.callback(settings, i, discord.Object(CHANNEL_ID))
    with pytest.raises(UserError, match=expected):
        await settings.route.callback(
            settings, i, app_commands.Choice(name="EPs", value="ep"), channel=discord.Object(CHANNEL_ID)
        )
    bot.services.guild_settings.set_channel.assert_not_awaited()
    bot.services.guild_settings.set_type_route.assert_not_awaited()


# --- /settings route ----------------------------------------------------------------------------

EPS = app_commands.Choice(name="EPs", value="ep")
TEXT_OK = discord.Permissions(view_channel=True, send_messages=True, embed_links=True)


async def test_route_a_type(settings, bot):
    bot.services.guild_settings.set_type_route.return_value = "ep"
    bot.services.guild_settings.album_groups.return_value = ("album", "single", "ep")
    i = make_interaction()
    i.guild = guild_with_channel(TEXT_OK)
    await settings.route.callback(settings, i, EPS, channel=discord.Object(CHANNEL_ID))
    bot.services.guild_settings.set_type_route.assert_awaited_once_with(GUILD_ID, "ep", CHANNEL_ID)
    assert text(i) == f"EPs will be posted in <#{CHANNEL_ID}>; an artist's route still wins over it."
    bot.services.guild_settings.album_groups.return_value = ("album",)
    i = make_interaction()
    i.guild = guild_with_channel(TEXT_OK)
    await settings.route.callback(settings, i, EPS, channel=discord.Object(CHANNEL_ID))
    assert "not posted at all now: turn them on with `/settings types ep:True`" in text(i)


async def test_route_an_artist(settings, bot):
    bot.services.guild_settings.set_artist_route.return_value = (ARTIST, "Nova_Lights")
    i = make_interaction()
    i.guild = guild_with_channel(TEXT_OK)
    await settings.route.callback(settings, i, artist=ARTIST, channel=discord.Object(CHANNEL_ID))
    bot.services.guild_settings.set_artist_route.assert_awaited_once_with(GUILD_ID, ARTIST, CHANNEL_ID)
    assert text(i) == rf"New releases of **Nova\_Lights** will be posted in <#{CHANNEL_ID}> (whatever their type)."


async def test_clear_a_route(settings, bot):
    bot.services.guild_settings.clear_type_route.return_value = ("ep", True)
    i = make_interaction()
    await settings.route.callback(settings, i, EPS, clear=True)
    assert text(i) == "EPs will be posted in the default channel again."
    bot.services.guild_settings.clear_type_route.return_value = ("ep", False)
    i = make_interaction()
    await settings.route.callback(settings, i, EPS, clear=True)
    assert text(i) == "EPs had no route; nothing was changed."
    bot.services.guild_settings.clear_artist_route.return_value = (ARTIST, "Nova", True)
    i = make_interaction()
    await settings.route.callback(settings, i, artist="Nova", clear=True)
    bot.services.guild_settings.clear_artist_route.assert_awaited_once_with(GUILD_ID, "Nova")
    assert text(i).startswith("New releases of **Nova** will go where their type goes again")


async def test_route_without_a_channel_shows_the_routes(settings, bot):
    bot.services.guild_settings.destinations.return_value = Destinations(
        CHANNEL_ID, GuildRoutes(by_type={"ep": 501}, by_artist={ARTIST: 502}), False, {ARTIST: "Nova"}
    )
    i = make_interaction()
    await settings.route.callback(settings, i)
    assert text(i) == f"Default: <#{CHANNEL_ID}>. Routes: EPs → <#501> · Nova → <#502>. Nothing was changed."
    i = make_interaction()
    await settings.route.callback(settings, i, EPS)
    assert "Give a `channel:` to route them, or `clear:True`" in text(i)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"release_type": EPS, "artist": ARTIST, "channel": discord.Object(CHANNEL_ID)}, "one at a time"),
        ({"release_type": EPS, "channel": discord.Object(CHANNEL_ID), "clear": True}, "not both"),
        ({"channel": discord.Object(CHANNEL_ID)}, "Say which releases"),
        ({"clear": True}, "Say which releases"),
        ({"release_type": EPS, "channel": discord.Object(999)}, "can't see that channel in this server"),
    ],
)
async def test_bad_routes_are_refused(settings, bot, kwargs, expected):
    i = make_interaction()
    i.guild = guild_with_channel(TEXT_OK, visible=False)  # 999: not one of this server's channels
    with pytest.raises(UserError, match=expected):
        await settings.route.callback(settings, i, **kwargs)
    for method in ("set_type_route", "set_artist_route", "clear_type_route", "clear_artist_route"):
        getattr(bot.services.guild_settings, method).assert_not_awaited()


async def test_a_route_to_a_channel_the_bot_cannot_post_in_is_refused(settings, bot):
    i = make_interaction()
    i.guild = guild_with_channel(discord.Permissions(view_channel=True))
    with pytest.raises(UserError, match="missing Send Messages, Embed Links"):
        await settings.route.callback(settings, i, artist=ARTIST, channel=discord.Object(CHANNEL_ID))
    bot.services.guild_settings.set_artist_route.assert_not_awaited()


async def test_route_artist_autocomplete(settings, bot):
    bot.services.follows.followed_choices.return_value = [("Nova Lights", ARTIST)]
    choices = await settings.route_artist_autocomplete(make_interaction(), "no")
    assert [(c.name, c.value) for c in choices] == [("Nova Lights", ARTIST)]
    bot.services.follows.followed_choices.assert_awaited_once_with(GUILD_ID, "no")


# --- /settings publish --------------------------------------------------------------------------


def guild_with_channels(news_ids: set[int]) -> MagicMock:
    guild = spec_mock(discord.Guild)

    def channel(cid: int) -> MagicMock:
        ch = spec_mock(discord.TextChannel)
        ch.is_news.return_value = cid in news_ids
        return ch

    guild.get_channel.side_effect = channel
    return guild


async def test_publish_on_says_which_destinations_are_announcement_channels(settings, bot):
    routes = GuildRoutes(by_type={"single": 501})
    bot.services.guild_settings.set_publish.return_value = Destinations(CHANNEL_ID, routes, True)
    i = make_interaction()
    i.guild = guild_with_channels({CHANNEL_ID})
    await settings.publish.callback(settings, i, enabled=True)
    bot.services.guild_settings.set_publish.assert_awaited_once_with(GUILD_ID, True)
    assert text(i) == (
        f"Posts in <#{CHANNEL_ID}> are published (crossposted) to the servers following them; <#501> is not an "
        "announcement channel, so posts there are only posted. Discord allows 10 publishes per channel per hour; "
        "past that they wait."
    )
    i = make_interaction()
    i.guild = guild_with_channels(set())
    await settings.publish.callback(settings, i, enabled=True)
    assert "none of <#444>, <#501> is one" in text(i) and "nothing is published for now" in text(i)


async def test_publish_off_and_show(settings, bot):
    bot.services.guild_settings.set_publish.return_value = Destinations(CHANNEL_ID, GuildRoutes(), False)
    i = make_interaction()
    await settings.publish.callback(settings, i, enabled=False)
    bot.services.guild_settings.set_publish.assert_awaited_once_with(GUILD_ID, False)
    assert text(i) == "Posts are not published (crossposted)."
    bot.services.guild_settings.destinations.return_value = Destinations(CHANNEL_ID, GuildRoutes(), False)
    i = make_interaction()
    await settings.publish.callback(settings, i)
    assert text(i).endswith("Turn it on with `enabled:True`. Nothing was changed.")
    assert bot.services.guild_settings.set_publish.await_count == 1


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


async def test_settings_schedule_release_day(settings, bot):
    bot.services.guild_settings.set_schedule.return_value = NOW
    i = make_interaction()
    await settings.schedule.callback(settings, i, release_day=True)
    bot.services.guild_settings.set_release_day.assert_awaited_once_with(GUILD_ID, True)
    bot.services.guild_settings.set_schedule.assert_not_awaited()
    assert text(i).startswith("Release day: on.")
    i = make_interaction()
    await settings.schedule.callback(
        settings, i, app_commands.Choice(name="Friday", value="friday"), "18:30", "UTC", release_day=False
    )
    assert bot.services.guild_settings.set_schedule.await_count == 1
    bot.services.guild_settings.set_release_day.assert_awaited_with(GUILD_ID, False)
    assert text(i).endswith("Release day: off. Everything is posted in the weekly post.")
    with pytest.raises(UserError, match="both `day` and `time`"):
        await settings.schedule.callback(
            settings, make_interaction(), app_commands.Choice(name="Friday", value="friday")
        )
    assert bot.services.guild_settings.set_release_day.await_count == 2


async def test_settings_schedule_without_options_shows_it(settings, bot):
    guild = MagicMock(schedule_day=4, schedule_time="12:00", timezone="UTC", release_day=True)
    bot.services.guild_settings.ensure_guild.return_value = guild
    i = make_interaction()
    await settings.schedule.callback(settings, i)
    assert text(i).startswith("New releases are posted every Friday at 12:00 (UTC). Release day: on.")
    assert text(i).endswith("Nothing was changed.")
    bot.services.guild_settings.set_release_day.assert_not_awaited()


async def test_settings_types(settings, bot):
    bot.services.guild_settings.album_groups.return_value = ("album", "single", "ep", "compilation")
    i = make_interaction()
    await settings.types.callback(settings, i)
    assert text(i) == "Posting: Albums, Singles, EPs, Compilations. Nothing was changed."
    bot.services.guild_settings.switch_album_groups.return_value = ("album", "ep", "appears_on")
    i = make_interaction()
    await settings.types.callback(settings, i, single=False, compilation=False, appears_on=True)
    # The service turns the types on and off atomically (tests/bot/services/test_guild_settings.py).
    assert bot.services.guild_settings.switch_album_groups.await_args.args == (
        GUILD_ID,
        {"album": None, "single": False, "ep": None, "compilation": False, "appears_on": True},
    )
    assert text(i) == "Posting: Albums, EPs, Appears on."
    i = make_interaction()
    await settings.types.callback(settings, i, ep=False)
    assert bot.services.guild_settings.switch_album_groups.await_args.args[1]["ep"] is False
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
        GUILD_ID,
        skip={"remix": True, "live": False, "sped_up": True, "instrumental": None},
        mute=ARTIST,
        unmute=None,
        block_keyword=None,
        unblock_keyword=None,
        block_pattern=None,
        unblock_pattern=None,
        block_artist=None,
        unblock_artist=None,
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
    r = spec_mock(discord.Role)
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


async def test_settings_filters_block_lists(settings, bot):
    bot.services.guild_settings.set_filters.return_value = GuildFilters(
        block_keywords=("karaoke", "8D audio"),
        block_patterns=("^intro`$",),
        block_artists=(BlockedArtist(ARTIST, "Nova_Lights"), BlockedArtist("B" * 22)),
    )
    bot.services.follows.artist_names.return_value = {}
    i = make_interaction()
    await settings.filters.callback(settings, i, block_keyword="8D audio", block_artist=ARTIST)
    kwargs = bot.services.guild_settings.set_filters.await_args.kwargs
    assert (kwargs["block_keyword"], kwargs["block_artist"], kwargs["block_pattern"]) == ("8D audio", ARTIST, None)
    i.response.defer.assert_awaited_once()  # a blocked link may ask Spotify for the name
    assert text(i).startswith(
        "No title filter: every version is posted. Blocked keywords: “karaoke”, “8D audio”. "
        "Blocked patterns: `^introˋ$`. "
        rf"Blocked artists: Nova\_Lights, <https://open.spotify.com/artist/{'B' * 22}>."
    )
    i = make_interaction()
    await settings.filters.callback(settings, i, unblock_pattern="^intro`$")
    assert bot.services.guild_settings.set_filters.await_args.kwargs["unblock_pattern"] == "^intro`$"
    i.response.defer.assert_not_awaited()


async def test_settings_filters_long_lists_are_cut(settings, bot):
    bot.services.guild_settings.filters.return_value = GuildFilters(block_keywords=tuple(f"w{n}" for n in range(50)))
    i = make_interaction()
    await settings.filters.callback(settings, i)
    assert "“w14” and 35 more." in text(i) and "w15" not in text(i)


async def test_settings_filters_unblock_autocomplete(settings, bot):
    bot.services.guild_settings.filters.return_value = GuildFilters(
        block_keywords=("karaoke", "8D audio"),
        block_patterns=("^b", "^a"),
        block_artists=(BlockedArtist(ARTIST, "Nova Lights"), BlockedArtist("B" * 22)),
    )
    keywords = await settings.unblock_keyword_autocomplete(make_interaction(), "")
    assert [c.value for c in keywords] == ["8D audio", "karaoke"]
    patterns = await settings.unblock_pattern_autocomplete(make_interaction(), "")
    assert [c.value for c in patterns] == ["^b", "^a"]  # as stored
    artists = await settings.unblock_artist_autocomplete(make_interaction(), "nova")
    assert [(c.name, c.value) for c in artists] == [("Nova Lights", ARTIST)]
    bot.services.follows.followed_choices.return_value = [("Nova Lights", ARTIST)]
    assert [c.value for c in await settings.block_artist_autocomplete(make_interaction(), "n")] == [ARTIST]
