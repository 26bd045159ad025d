"""``bot.services.guild_settings``: the guild row, ``/settings`` and the channel-problem notice, over a
real store with an injected clock. Bad input is refused with a clear message and changes nothing;
one server never changes another's settings."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from bot.delivery.planner import GuildFilters
from bot.services.errors import UserError
from bot.services.guild_settings import DefaultSchedule, GuildSettingsService
from storage.models import Guild
from tests.bot.services.helpers import World, services_world

pytestmark = pytest.mark.timeout(60)
UTC = dt.UTC
GUILD, OTHER = 7, 8


@pytest.fixture
async def world(db, clock):
    async with services_world(db, clock) as w:
        yield w


@pytest.fixture
def settings(world: World) -> GuildSettingsService:
    return world.services.guild_settings


def snapshot(guild: Guild) -> tuple:
    return (
        guild.channel_id,
        guild.channel_problem,
        guild.schedule_day,
        guild.schedule_time,
        guild.timezone,
        guild.next_due_at,
        guild.album_groups,
        guild.filters,
        guild.mention_role_id,
    )


async def test_a_new_guild_gets_the_default_slot_once(world: World, db, clock):
    settings = GuildSettingsService(
        db, clock=clock, default_schedule=DefaultSchedule(0, "08:30", "Europe/Berlin"), spotify=world.spotify
    )
    guild = await settings.ensure_guild(GUILD)  # clock: Friday 2026-11-20 12:00 UTC
    assert (guild.schedule_day, guild.schedule_time, guild.timezone) == (0, "08:30", "Europe/Berlin")
    assert guild.next_due_at == dt.datetime(2026, 11, 23, 7, 30, tzinfo=UTC)  # Monday 08:30 in Berlin
    assert guild.created_at == clock() and guild.channel_id is None
    clock.advance(days=10)
    assert snapshot(await settings.ensure_guild(GUILD)) == snapshot(guild)  # created once, never reset


async def test_channel(settings: GuildSettingsService, db):
    await settings.set_channel(GUILD, 555)
    async with db.transaction() as s:
        await s.execute(update(Guild).where(Guild.id == GUILD).values(channel_problem="Missing Permissions"))
    await settings.set_channel(GUILD, 666)
    guild = await settings.ensure_guild(GUILD)
    assert (guild.channel_id, guild.channel_problem) == (666, None)  # a new channel: the old problem is gone
    assert (await settings.ensure_guild(OTHER)).channel_id is None


async def test_schedule(settings: GuildSettingsService):
    due = await settings.set_schedule(GUILD, "Mon", " 8:30 ", "europe/berlin")
    assert due == dt.datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
    guild = await settings.ensure_guild(GUILD)
    assert (guild.schedule_day, guild.schedule_time, guild.timezone, guild.next_due_at) == (
        0,
        "08:30",
        "Europe/Berlin",
        due,
    )
    assert (await settings.ensure_guild(OTHER)).schedule_day == 4  # the default slot


@pytest.mark.parametrize(
    "day, time, timezone, message",
    [
        ("someday", "12:00", "UTC", "Unknown day 'someday'"),
        ("t", "12:00", "UTC", "Unknown day 't'"),
        ("friday", "9am", "UTC", "9am"),
        ("friday", "24:00", "UTC", "24:00"),
        ("friday", "12:00", "Mars/Base", "Mars/Base"),
    ],
)
async def test_bad_schedule_is_refused_and_changes_nothing(
    settings: GuildSettingsService, day, time, timezone, message
):
    before = snapshot(await settings.ensure_guild(GUILD))
    with pytest.raises(UserError, match=message):
        await settings.set_schedule(GUILD, day, time, timezone)
    assert snapshot(await settings.ensure_guild(GUILD)) == before


async def test_release_types(settings: GuildSettingsService):
    assert await settings.album_groups(GUILD) == ("album", "single", "ep", "compilation")
    assert await settings.set_album_groups(GUILD, [" Appears_On", "ep", "single", "single"]) == (
        "single",
        "ep",
        "appears_on",
    )
    for groups, message in (([], "Choose at least one release type"), (["album", "eps"], "Unknown release type 'eps'")):
        with pytest.raises(UserError, match=message):
            await settings.set_album_groups(GUILD, groups)
    assert await settings.album_groups(GUILD) == ("single", "ep", "appears_on")
    assert await settings.album_groups(OTHER) == ("album", "single", "ep", "compilation")


async def test_switching_release_types_on_and_off(settings: GuildSettingsService):
    switch = settings.switch_album_groups
    assert await switch(GUILD, {"single": False, "ep": False, "compilation": False, "appears_on": True}) == (
        "album",
        "appears_on",
    )
    assert await switch(GUILD, {"album": None, "single": True}) == ("album", "single", "appears_on")
    assert await switch(GUILD, {"ep": True, "single": False}) == ("album", "ep", "appears_on")
    with pytest.raises(UserError) as refused:
        await switch(GUILD, {"album": False, "ep": False, "appears_on": False})
    assert str(refused.value) == "That would post nothing: keep at least one release type. Nothing was changed."
    assert await settings.album_groups(GUILD) == ("album", "ep", "appears_on")


async def test_a_refused_change_of_release_types_changes_nothing(settings: GuildSettingsService):
    def refuse(current: tuple[str, ...]) -> tuple[str, ...]:
        raise UserError("Not now")

    await settings.set_album_groups(GUILD, ["album"])
    with pytest.raises(UserError, match="Not now"):
        await settings.update_album_groups(GUILD, refuse)
    assert await settings.update_album_groups(GUILD, lambda current: (*current, "single")) == (
        ("album",),
        ("album", "single"),
    )


async def test_filters(world: World, settings: GuildSettingsService):
    nova, guest = world.emu.add_artist("Nova Lights"), world.emu.add_artist("Guest")
    await world.services.follows.follow(GUILD, nova)
    await world.services.follows.follow(OTHER, guest)
    assert await settings.filters(GUILD) == GuildFilters()
    stored = await settings.set_filters(GUILD, skip={"remix": True, "live": True, "sped_up": None}, mute="nova LIGHTS")
    assert stored == GuildFilters(frozenset({"remix", "live"}), frozenset({nova}))
    stored = await settings.set_filters(GUILD, skip={"live": False})
    assert stored == GuildFilters(frozenset({"remix"}), frozenset({nova}))
    assert await settings.filters(GUILD) == stored
    assert await settings.filters(OTHER) == GuildFilters()
    await world.services.follows.unfollow(GUILD, nova)
    assert (await settings.set_filters(GUILD, unmute=nova)).mute_appearances == frozenset()  # unmuted by id


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"skip": {"karaoke": True}}, "Unknown filter 'karaoke'; choose from remix, live, sped_up, instrumental."),
        ({"mute": "Guest"}, "This server doesn't follow “Guest”."),  # another server's artist
        ({"skip": {"remix": True}, "mute": "Nobody"}, "This server doesn't follow “Nobody”."),
        ({"unmute": "Nova Lights"}, None),
    ],
)
async def test_bad_filters_are_refused_and_change_nothing(world: World, settings, kwargs, message):
    nova, guest = world.emu.add_artist("Nova Lights"), world.emu.add_artist("Guest")
    await world.services.follows.follow(GUILD, nova)
    await world.services.follows.follow(OTHER, guest)
    before = await settings.set_filters(GUILD, skip={"live": True})
    if message is None:  # unmuting an artist that is not muted changes nothing either
        assert await settings.set_filters(GUILD, **kwargs) == before
    else:
        with pytest.raises(UserError) as refused:
            await settings.set_filters(GUILD, **kwargs)
        assert str(refused.value).startswith(message)
    assert await settings.filters(GUILD) == before


async def test_mention_role(settings: GuildSettingsService):
    assert await settings.mention_role(GUILD) is None
    await settings.set_mention_role(GUILD, 999)
    assert await settings.mention_role(GUILD) == 999
    assert await settings.mention_role(OTHER) is None
    await settings.set_mention_role(GUILD, None)
    assert await settings.mention_role(GUILD) is None


async def test_the_channel_problem_is_told_once_and_again_when_new(settings: GuildSettingsService, db):
    async def problem(text: str | None) -> None:
        async with db.transaction() as s:
            await s.execute(update(Guild).where(Guild.id == GUILD).values(channel_problem=text))

    await settings.set_channel(GUILD, 555)
    assert await settings.take_channel_notice(GUILD) is None  # no problem
    await problem("Missing Permissions")
    assert await settings.take_channel_notice(GUILD) == (555, "Missing Permissions")
    assert await settings.take_channel_notice(GUILD) is None  # told
    assert await settings.take_channel_notice(OTHER) is None
    await settings.forget_channel_notice(GUILD)  # the notice could not be sent: tell it again
    assert await settings.take_channel_notice(GUILD) == (555, "Missing Permissions")
    await problem("Unknown Channel")  # another problem: told again
    assert await settings.take_channel_notice(GUILD) == (555, "Unknown Channel")
    await problem(None)  # fixed: forgotten, so the same problem later is told again
    assert await settings.take_channel_notice(GUILD) is None
    await problem("Unknown Channel")
    assert await settings.take_channel_notice(GUILD) == (555, "Unknown Channel")


async def test_release_day_is_off_until_turned_on_and_status_shows_it(world: World, settings: GuildSettingsService):
    assert (await settings.ensure_guild(GUILD)).release_day is False
    await settings.set_release_day(GUILD, True)
    assert (await settings.ensure_guild(GUILD)).release_day is True
    assert (await world.services.runs.status(GUILD)).release_day is True
    assert (await settings.ensure_guild(OTHER)).release_day is False  # one guild's setting only
    await settings.set_release_day(GUILD, False)
    assert (await world.services.runs.status(GUILD)).release_day is False
