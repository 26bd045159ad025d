"""``GuildSettingsService``: routes (a release type or a followed artist to another channel) and publishing,
over a real store. Bad input is refused and changes nothing; one server never sees or changes another's
routes."""

from __future__ import annotations

import pytest

from bot.services.errors import UserError
from bot.services.guild_settings import GuildSettingsService
from storage.routes import GuildRoutes
from tests.bot.services.helpers import World, services_world

pytestmark = pytest.mark.timeout(60)
GUILD, OTHER = 7, 8


@pytest.fixture
async def world(db, clock):
    async with services_world(db, clock) as w:
        yield w


@pytest.fixture
def settings(world: World) -> GuildSettingsService:
    return world.services.guild_settings


async def test_type_routes(settings: GuildSettingsService):
    await settings.set_channel(GUILD, 100)
    assert await settings.set_type_route(GUILD, " EP", 501) == "ep"
    assert await settings.set_type_route(GUILD, "appears_on", 502) == "appears_on"
    assert await settings.set_type_route(GUILD, "ep", 503) == "ep"  # replaces
    mine = await settings.destinations(GUILD)
    assert (mine.channel_id, mine.routes.by_type, mine.routes.by_artist) == (100, {"ep": 503, "appears_on": 502}, {})
    assert mine.channel_ids() == [100, 503, 502]  # default, then types in their order
    assert not (await settings.destinations(OTHER)).routes
    assert await settings.clear_type_route(OTHER, "ep") == ("ep", False)  # another server's: untouched
    assert await settings.clear_type_route(GUILD, "ep") == ("ep", True)
    assert await settings.clear_type_route(GUILD, "ep") == ("ep", False)
    assert (await settings.destinations(GUILD)).routes.by_type == {"appears_on": 502}


async def test_an_unknown_type_is_refused(settings: GuildSettingsService):
    for call in (settings.set_type_route(GUILD, "podcast", 501), settings.clear_type_route(GUILD, "podcast")):
        with pytest.raises(UserError, match="Unknown release type 'podcast'; choose from album, single, ep"):
            await call
    assert not (await settings.destinations(GUILD)).routes


async def test_artist_routes_only_for_followed_artists(world: World, settings: GuildSettingsService):
    nova, guest = world.emu.add_artist("Nova Lights"), world.emu.add_artist("Guest")
    await world.services.follows.follow(GUILD, nova)
    await world.services.follows.follow(OTHER, guest)
    assert await settings.set_artist_route(GUILD, "nova LIGHTS", 601) == (nova, "Nova Lights")
    assert await settings.set_artist_route(GUILD, f"https://open.spotify.com/artist/{nova}", 602) == (
        nova,
        "Nova Lights",
    )
    for text in ("Guest", guest):  # followed by another server only
        with pytest.raises(UserError, match="This server doesn't follow"):
            await settings.set_artist_route(GUILD, text, 603)
    mine = await settings.destinations(GUILD)
    assert mine.routes.by_artist == {nova: 602} and mine.artist_names == {nova: "Nova Lights"}
    assert mine.artist_name(nova) == "Nova Lights" and mine.artist_name("X" * 22) == "X" * 22
    assert not (await settings.destinations(OTHER)).routes
    with pytest.raises(UserError, match="This server doesn't follow"):
        await settings.clear_artist_route(OTHER, nova)  # OTHER can't name GUILD's route
    # Unfollowing the artist removes its route with the follow: no stale route is left behind.
    await world.services.follows.unfollow(GUILD, nova)
    assert (await settings.destinations(GUILD)).routes == GuildRoutes()
    with pytest.raises(UserError, match="This server doesn't follow"):
        await settings.clear_artist_route(GUILD, "Nova Lights")  # no route, not followed


async def test_publish(settings: GuildSettingsService):
    await settings.set_channel(GUILD, 100)
    await settings.set_type_route(GUILD, "single", 501)
    on = await settings.set_publish(GUILD, True)
    assert on.publish and on.channel_ids() == [100, 501]
    assert (await settings.destinations(GUILD)).publish
    assert not (await settings.destinations(OTHER)).publish
    assert not (await settings.set_publish(GUILD, False)).publish
