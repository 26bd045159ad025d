"""``bot.services.post_actions``: what the post buttons do (the buttons themselves: ``tests/bot/delivery/test_components.py``)."""

from __future__ import annotations

import pytest

from bot.services import Services
from bot.services.errors import UserError
from bot.services.post_actions import hide_album_group, unfollow_artist
from storage import catalog, guilds
from tests.bot.services.helpers import services_world

GUILD = 7
NOVA = "1" * 22
GUEST = "2" * 22


@pytest.fixture
async def services(db, clock):
    async with services_world(db, clock) as world:
        await world.services.guild_settings.ensure_guild(GUILD)
        async with db.sessions() as s:
            for artist_id, name in ((NOVA, "Nova_Lights"), (GUEST, "Guest")):
                await catalog.get_or_create_artist(s, artist_id, name)
                await guilds.follow_artist(s, GUILD, artist_id, now=clock())
            await s.commit()
        yield world.services


async def test_unfollow(services: Services):
    follows = services.follows
    text = await unfollow_artist(follows, GUILD, NOVA)
    assert text.startswith(r"Unfollowed **Nova\_Lights**") and "/follow" in text
    assert [r.artist_id for r in await follows.following(GUILD)] == [GUEST]
    with pytest.raises(UserError, match="doesn't follow that artist"):
        await unfollow_artist(follows, GUILD, NOVA)
    with pytest.raises(UserError, match="doesn't follow"):  # another server's follows are not touched
        await unfollow_artist(follows, GUILD + 1, GUEST)
    with pytest.raises(UserError, match="does not name a Spotify artist"):
        await unfollow_artist(follows, GUILD, "nope")
    assert [r.artist_id for r in await follows.following(GUILD)] == [GUEST]


async def test_hide_type(services: Services):
    settings = services.guild_settings
    assert await settings.album_groups(GUILD) == ("album", "single", "ep", "compilation")
    text = await hide_album_group(settings, GUILD, "single")
    assert text == "Singles won't be posted here any more. Turn them back on with `/settings types single:True`."
    assert await settings.album_groups(GUILD) == ("album", "ep", "compilation")
    text = await hide_album_group(settings, GUILD, "ep")
    assert text == "EPs won't be posted here any more. Turn them back on with `/settings types ep:True`."
    assert await settings.album_groups(GUILD) == ("album", "compilation")
    assert "already not posted" in await hide_album_group(settings, GUILD, "single")
    assert "already not posted" in await hide_album_group(settings, GUILD, "appears_on")
    await hide_album_group(settings, GUILD, "compilation")
    with pytest.raises(UserError, match="only releases posted here"):
        await hide_album_group(settings, GUILD, "album")
    with pytest.raises(UserError, match="does not name a release type"):
        await hide_album_group(settings, GUILD, "podcast")
    assert await settings.album_groups(GUILD) == ("album",)
