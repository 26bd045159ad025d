"""``bot.services.post_actions``: what the post buttons do (the buttons themselves: ``tests/bot/delivery/test_components.py``)."""

from __future__ import annotations

import pytest

from bot.services import Services
from bot.services.errors import UserError
from bot.services.post_actions import hide_album_group, notify_me, stop_notifying, unfollow_artist
from storage import catalog, guilds
from tests.bot.services.helpers import services_world

GUILD = 7
NOVA = "1" * 22
GUEST = "2" * 22
MEMBER, OTHER_MEMBER = 501, 502


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


async def test_notify_me_then_again_offers_to_stop(services: Services):
    notify = services.notify
    first = await notify_me(notify, GUILD, MEMBER, NOVA)
    assert not first.offer_stop and first.artist_id == NOVA
    assert first.text.startswith(r"🔔 You'll be mentioned in this server's post when **Nova\_Lights** releases")
    assert "`/notify mode`" in first.text and "`/notify remove`" in first.text
    again = await notify_me(notify, GUILD, MEMBER, NOVA)  # pressed again: nothing changes, a Stop is offered
    assert again.offer_stop and "already notified of **Nova\\_Lights**" in again.text and "Stop" in again.text
    assert [a for a, _ in (await notify.subscriptions(GUILD, MEMBER)).artists] == [NOVA]
    assert (await notify.subscriptions(GUILD, OTHER_MEMBER)).artists == []  # another member's are their own

    text = await stop_notifying(notify, GUILD, MEMBER, NOVA)
    assert text.startswith(r"You won't be notified of **Nova\_Lights** here any more.")
    assert (await notify.subscriptions(GUILD, MEMBER)).artists == []
    with pytest.raises(UserError, match="not notified of that artist here"):
        await stop_notifying(notify, GUILD, MEMBER, NOVA)


async def test_notify_me_refusals(services: Services):
    notify = services.notify
    with pytest.raises(UserError, match="does not name a Spotify artist"):
        await notify_me(notify, GUILD, MEMBER, "nope")
    with pytest.raises(UserError, match="only inside a server"):
        await notify_me(notify, None, MEMBER, NOVA)
    await services.follows.unfollow(GUILD, NOVA)  # a post's button after the server unfollowed the artist
    with pytest.raises(UserError, match=r"doesn't follow “Nova\\_Lights”"):
        await notify_me(notify, GUILD, MEMBER, NOVA)
    with pytest.raises(UserError, match="doesn't follow"):  # another server: nothing of this one's follows
        await notify_me(notify, GUILD + 1, MEMBER, GUEST)
    assert (await notify.subscriptions(GUILD, MEMBER)).artists == []
