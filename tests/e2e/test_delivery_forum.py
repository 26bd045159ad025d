"""Forum destinations, end to end with the real discord.py client against the Discord fake: each
release becomes one forum post titled "Artist — Title" whose starter message is the release's embed,
carrying the forum's Album / Single / EP tag; the bot adds the tags the forum lacks when it has
Manage Channels there, and posts untagged (adding nothing) when it has not. Refreshing again or
restarting posts nothing twice."""

from __future__ import annotations

import pytest

from fakes.discord_fake import Permission
from fakes.stack import Stack
from tests import backend

pytestmark = pytest.mark.timeout(120)


def tag_names(stack: Stack, forum_id: int) -> dict[str, str]:
    """The forum's tags as ``{tag id: name}``."""
    return {t["id"]: t["name"] for t in stack.discord.forum_tags(forum_id)}


def forum_posts(stack: Stack, forum_id: int) -> dict[str, dict]:
    """The forum's posts by title: ``{title: {"tags": [tag name], "starter": starter message}}``."""
    names = tag_names(stack, forum_id)
    out: dict[str, dict] = {}
    for thread in stack.discord.threads(forum_id):
        assert thread["name"] not in out, f"two posts titled {thread['name']!r}"
        out[thread["name"]] = {
            "tags": sorted(names[t] for t in thread["applied_tags"]),
            "starter": stack.discord.thread_messages(int(thread["id"]))[0],
        }
    return out


async def releases_out(stack: Stack, artist: str) -> None:
    """An album (11 tracks), a single (1 track) and an EP (5 tracks: Spotify calls it a single) come out."""
    sp = stack.spotify
    stack.clock.advance(hours=20)
    sp.add_album([artist], "Afterglow", album_type="album", total_tracks=11, release_date="2026-11-17")
    sp.add_album([artist], "Midnight Drive", album_type="single", total_tracks=1, release_date="2026-11-17")
    sp.add_album([artist], "Five Songs", album_type="single", total_tracks=5, release_date="2026-11-17")


async def forum_stack(tmp_path, *, manage_channels: bool) -> tuple[Stack, int, str]:
    """A stack whose default channel is a forum with only an "Album" tag (and Manage Channels for the
    bot there when asked), following Nova Lights: ``(stack, forum id, artist id)``."""
    stack = await backend.create_stack(tmp_path)
    fake = stack.discord
    forum = fake.add_channel(stack.guild_id, "releases", kind="forum", tags=["Album", "Live"])
    if manage_channels:
        fake.set_permission_overwrite(forum, fake.bot_user_id, allow=Permission.MANAGE_CHANNELS)
    nova = stack.spotify.add_artist("Nova Lights")
    stack.spotify.add_album([nova], "Old Album", release_date="2023-05-05")
    await stack.start_bot()
    reply = await stack.command("settings", {"channel": forum}, subcommand="channel")
    assert f"<#{forum}>" in reply.content, reply.content
    assert "Now following" in (await stack.command("follow", {"artist": nova})).content
    return stack, forum, nova


async def test_each_release_is_one_tagged_forum_post_and_missing_tags_are_created(tmp_path):
    stack, forum, nova = await forum_stack(tmp_path, manage_channels=True)
    try:
        await releases_out(stack, nova)
        reply = await stack.command("refresh")
        assert "3 new releases" in reply.content, reply.content

        posts = forum_posts(stack, forum)
        assert set(posts) == {"Nova Lights — Afterglow", "Nova Lights — Midnight Drive", "Nova Lights — Five Songs"}
        assert posts["Nova Lights — Afterglow"]["tags"] == ["Album"]
        assert posts["Nova Lights — Midnight Drive"]["tags"] == ["Single"]
        assert posts["Nova Lights — Five Songs"]["tags"] == ["EP"]
        for title, post in posts.items():
            [embed] = post["starter"]["embeds"]  # the release's embed is the starter message
            assert f"Nova Lights — {embed['title']}" == title
            assert embed["url"].startswith("https://open.spotify.com/album/")
        # The two tags it needed were added to the forum's own, nothing else changed; no message outside.
        assert sorted(tag_names(stack, forum).values()) == ["Album", "EP", "Live", "Single"]
        assert stack.discord.channel_messages(forum) == [] and stack.posted() == []

        # Nothing twice: another refresh, then a restart and a refresh.
        await stack.command("refresh")
        await stack.restart_bot()
        await stack.command("refresh")
        assert len(stack.discord.threads(forum)) == 3
        assert len(stack.discord.requests("PATCH", f"/channels/{forum}")) == 1  # the tags were added once
    finally:
        await stack.close()


async def test_without_manage_channels_posts_go_out_untagged_and_no_tag_is_added(tmp_path):
    stack, forum, nova = await forum_stack(tmp_path, manage_channels=False)
    try:
        await releases_out(stack, nova)
        reply = await stack.command("refresh")
        assert "3 new releases" in reply.content, reply.content

        posts = forum_posts(stack, forum)
        assert {title: post["tags"] for title, post in posts.items()} == {
            "Nova Lights — Afterglow": ["Album"],  # the forum has this one
            "Nova Lights — Midnight Drive": [],
            "Nova Lights — Five Songs": [],
        }
        assert all(len(post["starter"]["embeds"]) == 1 for post in posts.values())
        assert sorted(tag_names(stack, forum).values()) == ["Album", "Live"]
        assert stack.discord.requests("PATCH", f"/channels/{forum}") == []  # it did not even try
        status = await stack.command("status")
        assert "⚠" not in str(status.final)  # untagged posts are no channel problem
    finally:
        await stack.close()
