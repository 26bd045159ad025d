"""``GuildSettingsService.set_filters``: the title block list (keywords, RE2 patterns) and the artist block
list, with their bounds; refused input changes nothing; one server never sees another's lists."""

from __future__ import annotations

import pytest

from bot.delivery.planner import (
    MAX_BLOCK_ARTISTS,
    MAX_BLOCK_KEYWORDS,
    MAX_BLOCK_PATTERNS,
    MAX_KEYWORD_LENGTH,
    MAX_PATTERN_LENGTH,
    BlockedArtist,
    GuildFilters,
)
from bot.services.errors import UserError
from bot.services.guild_settings import GuildSettingsService
from storage import guilds
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


async def test_keywords(settings: GuildSettingsService):
    assert (await settings.set_filters(GUILD, block_keyword="  Sped   Up ")).block_keywords == ("Sped Up",)
    assert (await settings.set_filters(GUILD, block_keyword="karaoke")).block_keywords == ("Sped Up", "karaoke")
    assert (await settings.set_filters(GUILD, block_keyword="KARAOKE")).block_keywords == ("Sped Up", "karaoke")
    assert (await settings.set_filters(GUILD, unblock_keyword="sped up")).block_keywords == ("karaoke",)
    with pytest.raises(UserError, match="“live” is not a blocked keyword"):
        await settings.set_filters(GUILD, unblock_keyword="live")
    assert (await settings.filters(GUILD)).block_keywords == ("karaoke",)
    assert await settings.filters(OTHER) == GuildFilters()


async def test_patterns(settings: GuildSettingsService):
    stored = await settings.set_filters(GUILD, block_pattern=r"\(8D( Audio)?\)", skip={"remix": True})
    assert stored.block_patterns == (r"\(8D( Audio)?\)",) and stored.skip == {"remix"}
    assert (await settings.set_filters(GUILD, block_pattern="(a+)+$")).block_patterns == (r"\(8D( Audio)?\)", "(a+)+$")
    assert (await settings.set_filters(GUILD, unblock_pattern=r"\(8D( Audio)?\)")).block_patterns == ("(a+)+$",)
    assert await settings.filters(OTHER) == GuildFilters()


@pytest.mark.parametrize(
    "pattern, message",
    [
        ("(", "RE2 refused that pattern: missing ): (. Nothing was changed."),
        ("(?<=live)x", "RE2 refused that pattern: invalid perl operator: (?<"),
        (r"(a)\1", "RE2 refused that pattern: invalid escape sequence: \\1"),
        ("a{1001}", "RE2 refused that pattern: invalid repetition size: {1001}"),
        (".*", "matches an empty title, so it would block every release"),
        ("x" * (MAX_PATTERN_LENGTH + 1), f"at most {MAX_PATTERN_LENGTH} characters"),
    ],
)
async def test_a_bad_pattern_is_refused_with_the_reason(settings: GuildSettingsService, pattern, message):
    before = await settings.set_filters(GUILD, block_pattern="^intro$")
    with pytest.raises(UserError) as refused:
        await settings.set_filters(GUILD, block_pattern=pattern, skip={"live": True})
    assert message in str(refused.value)
    assert await settings.filters(GUILD) == before  # nothing changed, the skip kinds neither


async def test_bounds(settings: GuildSettingsService):
    with pytest.raises(UserError, match=f"at most {MAX_KEYWORD_LENGTH} characters"):
        await settings.set_filters(GUILD, block_keyword="k" * (MAX_KEYWORD_LENGTH + 1))
    with pytest.raises(UserError, match="Give a keyword"):
        await settings.set_filters(GUILD, block_keyword="   ")
    for n in range(MAX_BLOCK_KEYWORDS):
        await settings.set_filters(GUILD, block_keyword=f"word{n}")
    with pytest.raises(UserError, match=f"At most {MAX_BLOCK_KEYWORDS} keywords"):
        await settings.set_filters(GUILD, block_keyword="one more")
    for n in range(MAX_BLOCK_PATTERNS):
        await settings.set_filters(GUILD, block_pattern=f"^p{n}$")
    with pytest.raises(UserError, match=f"At most {MAX_BLOCK_PATTERNS} patterns"):
        await settings.set_filters(GUILD, block_pattern="^one more$")
    stored = await settings.filters(GUILD)
    assert len(stored.block_keywords) == MAX_BLOCK_KEYWORDS and len(stored.block_patterns) == MAX_BLOCK_PATTERNS
    assert (
        await settings.set_filters(GUILD, block_keyword="word0")
    ).block_keywords == stored.block_keywords  # kept once


async def test_artists(world: World, settings: GuildSettingsService):
    nova = world.emu.add_artist("Nova Lights")
    stranger = world.emu.add_artist("Featured Stranger")  # followed nowhere, never stored
    await world.services.follows.follow(GUILD, nova)
    world.emu.clear_log()
    stored = await settings.set_filters(GUILD, block_artist="nova lights")
    assert stored.block_artists == (BlockedArtist(nova, "Nova Lights"),)
    assert world.emu.requests_to("/artists/") == []  # a followed artist's name is known
    stored = await settings.set_filters(GUILD, block_artist=f"https://open.spotify.com/artist/{stranger}?si=x")
    assert stored.block_artists[1] == BlockedArtist(stranger, "Featured Stranger")
    assert len(world.emu.requests_to(f"/artists/{stranger}")) == 1  # one lookup, for the name
    assert (await settings.set_filters(GUILD, block_artist=stranger)).block_artists == stored.block_artists
    assert (await settings.set_filters(GUILD, unblock_artist="featured STRANGER")).block_artists == (
        BlockedArtist(nova, "Nova Lights"),
    )
    assert (await settings.set_filters(GUILD, unblock_artist=f"spotify:artist:{nova}")).block_artists == ()
    assert await settings.filters(OTHER) == GuildFilters()


async def test_an_artist_spotify_cannot_name_now_is_blocked_by_id(world: World, settings: GuildSettingsService):
    stranger = world.emu.add_artist("Featured Stranger")
    world.emu.fail_next(status=503, path_contains=f"/artists/{stranger}")
    stored = await settings.set_filters(GUILD, block_artist=stranger)
    assert stored.block_artists == (BlockedArtist(stranger, ""),)


@pytest.mark.parametrize(
    "text, message",
    [
        ("https://open.spotify.com/album/4aawyAB9vmqN3uQ7FjRGTy", "That is a Spotify album link, not an artist."),
        ("0" * 22, f"No Spotify artist has the id `{'0' * 22}`."),
        ("Somebody", "This server doesn't follow “Somebody”. See `/following` for the list. To block an artist"),
        ("https://open.spotify.com/artist/short", "That Spotify artist link is malformed"),
    ],
)
async def test_a_bad_artist_is_refused(world: World, settings: GuildSettingsService, text, message):
    before = await settings.set_filters(GUILD, block_keyword="karaoke")
    with pytest.raises(UserError) as refused:
        await settings.set_filters(GUILD, block_artist=text, block_keyword="live")
    assert str(refused.value).startswith(message)
    assert await settings.filters(GUILD) == before


async def test_the_artist_list_is_bounded(world: World, settings: GuildSettingsService, db):
    ids = [f"{n:022d}" for n in range(MAX_BLOCK_ARTISTS)]
    await settings.ensure_guild(GUILD)
    async with db.transaction() as s:  # a full list, written directly (100 Spotify lookups otherwise)
        await guilds.set_filters(s, GUILD, {"block_artists": [{"id": a, "name": a} for a in ids]})
    with pytest.raises(UserError, match=f"At most {MAX_BLOCK_ARTISTS} artists"):
        await settings.set_filters(GUILD, block_artist=world.emu.add_artist("One More"))
    with pytest.raises(UserError, match="is not a blocked artist"):
        await settings.set_filters(GUILD, unblock_artist="Nobody")
