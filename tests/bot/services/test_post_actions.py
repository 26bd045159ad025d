"""``bot.services.post_actions`` (what the post buttons do) and ``bot.delivery.components`` (the buttons)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from bot.delivery.components import (
    HIDE_TEMPLATE,
    MAX_SELECT_OPTIONS,
    UNFOLLOW_SELECT_ID,
    UNFOLLOW_SELECT_TEMPLATE,
    UNFOLLOW_TEMPLATE,
    render_components,
)
from bot.services import Services
from bot.services.errors import UserError
from bot.services.post_actions import hide_album_group, unfollow_artist
from fakes.discord_fake import validate_message_body
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
    assert await settings.album_groups(GUILD) == ("album", "single", "compilation")
    text = await hide_album_group(settings, GUILD, "single")
    assert text == "Singles won't be posted here any more. Turn them back on with `/settings types single:True`."
    assert await settings.album_groups(GUILD) == ("album", "compilation")
    assert "already not posted" in await hide_album_group(settings, GUILD, "single")
    assert "already not posted" in await hide_album_group(settings, GUILD, "appears_on")
    await hide_album_group(settings, GUILD, "compilation")
    with pytest.raises(UserError, match="only releases posted here"):
        await hide_album_group(settings, GUILD, "album")
    with pytest.raises(UserError, match="does not name a release type"):
        await hide_album_group(settings, GUILD, "ep")
    assert await settings.album_groups(GUILD) == ("album",)


def announcement(release_id: str, album_type: str, *artists: tuple[str, str]):
    release = SimpleNamespace(id=release_id, album_type=album_type, artists=[{"id": a, "name": n} for a, n in artists])
    return SimpleNamespace(release=release, twins=[])


def ids(rows) -> list[str]:
    return [c["custom_id"] for row in rows for c in row["components"]]


def test_single_release_gets_buttons():
    rows = render_components([announcement("r1", "single", (NOVA, "Nova"), (GUEST, "Guest"))])
    assert ids(rows) == [f"rb:unfollow:{NOVA}", f"rb:unfollow:{GUEST}", "rb:hide:single"]
    assert [c["label"] for row in rows for c in row["components"]] == [
        "Unfollow Nova",
        "Unfollow Guest",
        "Hide singles",
    ]
    assert all(re.fullmatch(UNFOLLOW_TEMPLATE, i) for i in ids(rows)[:2])
    assert re.fullmatch(HIDE_TEMPLATE, ids(rows)[2])
    assert validate_message_body({"content": "x", "components": rows}) == {}
    assert render_components([]) == []


def test_digest_uses_a_select_and_one_hide_button_per_type():
    artists = [(f"{i:022d}", f"Artist {i} " + "x" * 120) for i in range(30)]
    anns = [announcement(f"r{i}", ("album", "single", "compilation")[i % 3], a) for i, a in enumerate(artists)]
    anns.append(announcement("dup", "album", artists[0]))
    rows = render_components(anns)
    assert len(rows) == 2
    select = rows[0]["components"][0]
    assert select["custom_id"] == UNFOLLOW_SELECT_ID and re.fullmatch(UNFOLLOW_SELECT_TEMPLATE, select["custom_id"])
    assert len(select["options"]) == MAX_SELECT_OPTIONS and select["options"][0]["value"] == artists[0][0]
    assert all(len(o["label"]) <= 100 for o in select["options"])
    assert ids(rows)[1:] == ["rb:hide:album", "rb:hide:single", "rb:hide:compilation"]
    assert validate_message_body({"components": rows}) == {}


def test_followed_filter_and_known_groups():
    ann = announcement("r1", "album", (NOVA, "Nova"), (GUEST, "Guest"))
    rows = render_components([ann], followed_artist_ids={GUEST}, groups={"r1": "appears_on"})
    assert ids(rows) == [f"rb:unfollow:{GUEST}", "rb:hide:appears_on"]
    assert rows[1]["components"][0]["label"] == "Hide appearances"
    long_name = render_components([announcement("r", "weird", (NOVA, "N" * 200))])
    assert len(long_name[0]["components"][0]["label"]) == 80 and len(long_name) == 1
