"""``/settings filters`` block lists through the Discord fake (the real bot): title keywords, RE2 patterns
(a bad one refused with RE2's reason), blocked artists (a Spotify link of an artist nobody follows, or a
followed artist's name); ``/refresh`` then posts only what passes, the rest is skipped for good, and
another server's posts are not touched."""

from __future__ import annotations

import pytest
import pytest_asyncio

from fakes.stack import Stack
from tests import backend

pytestmark = [pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory):
    st = await backend.create_stack(tmp_path_factory.mktemp("blocks"))
    sp = st.spotify
    st.nova = sp.add_artist("Nova Lights")
    st.stranger = sp.add_artist("Featured Stranger")  # followed by nobody
    sp.add_album([st.nova], "Old Album", release_date="2023-05-05")
    await st.start_bot()
    try:
        await st.command("settings", {"channel": st.channel_id}, subcommand="channel")
        assert "Now following" in (await st.command("follow", {"artist": st.nova})).content
        yield st
    finally:
        await st.close()


async def filters(stack: Stack, options: dict, user_id: int | None = None) -> str:
    return (await stack.command("settings", options, subcommand="filters", user_id=user_id)).content or ""


async def test_block_keywords_patterns_and_artists(stack):
    assert (await filters(stack, {"block_keyword": "  Karaoke "})).startswith(
        "No title filter: every version is posted. Blocked keywords: “Karaoke”."
    )
    refused = await filters(stack, {"block_pattern": "(live"})
    assert refused == "RE2 refused that pattern: missing ): (live. Nothing was changed."
    refused = await filters(stack, {"block_pattern": "(?<!x)live"})
    assert refused.startswith("RE2 refused that pattern: invalid perl operator: (?<!")
    assert "Blocked patterns: `\\(8D( Audio)?\\)$`." in await filters(stack, {"block_pattern": r"\(8D( Audio)?\)$"})
    reply = await filters(stack, {"block_artist": f"https://open.spotify.com/artist/{stack.stranger}"})
    assert "Blocked artists: Featured Stranger." in reply and "never posted" in reply
    member = await filters(stack, {"block_keyword": "live"}, user_id=stack.member_id)
    assert "Manage Server" in member
    shown = await filters(stack, {})
    assert shown.endswith("Blocked artists: Featured Stranger. Nothing was changed.")
    choices = await stack.discord.autocomplete(
        stack.guild_id, stack.admin_id, "settings", {"unblock_artist": "feat"}, "unblock_artist", subcommand="filters"
    )
    assert choices == [{"name": "Featured Stranger", "value": stack.stranger}]
    choices = await stack.discord.autocomplete(
        stack.guild_id, stack.admin_id, "settings", {"unblock_keyword": ""}, "unblock_keyword", subcommand="filters"
    )
    assert choices == [{"name": "Karaoke", "value": "Karaoke"}]


async def test_refresh_posts_only_what_passes_the_block_lists(stack):
    stack.clock.advance(hours=1)
    sp = stack.spotify
    sp.add_album([stack.nova], "Afterglow", album_type="single", release_date="2026-11-16")
    sp.add_album([stack.nova], "Afterglow (Karaoke Version)", album_type="single", release_date="2026-11-16")
    sp.add_album([stack.nova], "Afterglow (8D Audio)", album_type="single", release_date="2026-11-16")
    sp.add_album([stack.nova, stack.stranger], "Duet", album_type="single", release_date="2026-11-16")
    handle = await stack.command("refresh")
    await stack.until(lambda: (handle.content or "").startswith("Checked"), timeout=20, what="/refresh summary")
    assert "1 new release" in handle.content
    assert stack.posted_titles()[-1] == "Afterglow"
    assert not {"Afterglow (Karaoke Version)", "Afterglow (8D Audio)", "Duet"} & set(stack.posted_titles())
    history = await stack.command("history")
    assert "1 posted, 3 skipped" in history.embeds[0]["description"].splitlines()[0]
    # Lifting a block never posts the past.
    reply = await filters(stack, {"unblock_keyword": "karaoke", "unblock_artist": "Featured Stranger"})
    assert "Blocked keywords" not in reply and "Blocked artists" not in reply
    handle = await stack.command("refresh")
    await stack.until(lambda: (handle.content or "").startswith("Checked"), timeout=20, what="/refresh summary")
    assert "no new releases" in handle.content
