"""Mention mode, end to end with the real discord.py client against the Discord fake: the post of a
release mentions exactly the members subscribed to its artist (``/notify add``), its
``allowed_mentions`` lets only them be pinged (the fake records who really was), and with more
subscribers than 2,000 characters of mentions hold, the rest go into follow-up messages: every member
mentioned and pinged exactly once, no message over Discord's limits, nothing sent again after a
restart."""

from __future__ import annotations

from collections import Counter

import pytest

from fakes.stack import Stack
from storage import members
from tests import backend

pytestmark = pytest.mark.timeout(120)


def pinged(message: dict) -> list[int]:
    """Who Discord pinged with ``message`` (the fake's ``mentions``)."""
    return [int(u["id"]) for u in message["mentions"]]


def allowed_users(message: dict) -> list[int]:
    """The users the message's ``allowed_mentions`` lets be pinged."""
    return [int(u) for u in message["allowed_mentions"].get("users") or []]


async def notify_add(stack: Stack, user_id: int, artist: str) -> None:
    handle = await stack.discord.invoke(
        stack.guild_id, user_id, "notify", {"artist": artist}, subcommand="add", channel_id=stack.channel_id
    )
    await handle.wait_done(timeout=15)
    assert "You'll be mentioned" in (handle.content or ""), handle.content


async def following(tmp_path, *names: str) -> tuple[Stack, list[str]]:
    """A stack whose server posts in its channel and follows ``names``; the bot is running."""
    stack = await backend.create_stack(tmp_path)
    ids = [stack.spotify.add_artist(n) for n in names]
    for artist in ids:
        stack.spotify.add_album([artist], f"{artist} Old", release_date="2023-05-05")
    await stack.start_bot()
    await stack.command("settings", {"channel": stack.channel_id}, subcommand="channel")
    for artist in ids:
        await stack.command("follow", {"artist": artist})
    return stack, ids


async def test_a_post_mentions_and_pings_exactly_the_subscribed_members(tmp_path):
    stack, (nova, guest) = await following(tmp_path, "Nova Lights", "Guest Star")
    fake = stack.discord
    try:
        fans = [
            stack.member_id,
            fake.add_member(stack.guild_id, name="fan2"),
            fake.add_member(stack.guild_id, name="fan3"),
        ]
        other = fake.add_member(stack.guild_id, name="guest-fan")
        for fan in fans:
            await notify_add(stack, fan, nova)
        await notify_add(stack, other, guest)  # subscribed to another artist: not mentioned

        stack.clock.advance(hours=20)
        stack.spotify.add_album([nova], "Afterglow", album_type="album", total_tracks=11, release_date="2026-11-17")
        await stack.command("refresh")
        [post] = stack.posted()
        assert [e["title"] for e in post["embeds"]] == ["Afterglow"]
        assert post["content"].split() == [f"<@{fan}>" for fan in fans]
        assert post["allowed_mentions"]["parse"] == [] and allowed_users(post) == fans
        assert pinged(post) == fans  # nobody else: not the admin, not the other artist's subscriber

        # A release of the other artist pings only its subscriber; a release of nobody's artist, nobody.
        stack.clock.advance(hours=1)
        stack.spotify.add_album([guest], "Guest Single", album_type="single", release_date="2026-11-17")
        await stack.command("refresh")
        assert pinged(stack.posted()[-1]) == [other]
        await stack.command("notify", {"artist": guest}, subcommand="remove", user_id=other)
        stack.clock.advance(hours=1)
        stack.spotify.add_album([guest], "Guest Album", album_type="album", total_tracks=8, release_date="2026-11-17")
        await stack.command("refresh")
        last = stack.posted()[-1]
        assert pinged(last) == [] and not last["content"]
    finally:
        await stack.close()


async def test_mentions_past_2000_characters_go_into_follow_ups_each_member_once(tmp_path):
    stack, (nova,) = await following(tmp_path, "Nova Lights")
    fake = stack.discord
    try:
        fans = [fake.add_member(stack.guild_id, name=f"fan{i}") for i in range(250)]
        bot = backend.running_bot(stack)
        async with bot.core.db.transaction() as session:  # as 250 `/notify add` would (tested above)
            for fan in fans:
                result = await members.subscribe(session, stack.guild_id, fan, nova, now=stack.clock(), limit=25)
                assert result.status == "added"

        stack.clock.advance(hours=20)
        stack.spotify.add_album([nova], "Afterglow", album_type="album", total_tracks=11, release_date="2026-11-17")
        await stack.command("refresh")
        messages = stack.posted()
        # 250 mentions of ~20 digits take over 5,000 characters: the post and at least two follow-ups.
        assert len(messages) >= 3
        post, follow_ups = messages[0], messages[1:]
        assert [e["title"] for e in post["embeds"]] == ["Afterglow"]
        assert all(m["embeds"] == [] for m in follow_ups)
        for m in messages:
            assert len(m["content"]) <= 2000 and len(allowed_users(m)) <= 100
            assert m["content"].split() == [f"<@{u}>" for u in allowed_users(m)]
        counts = Counter(u for m in messages for u in pinged(m))
        assert sorted(counts) == sorted(fans) and set(counts.values()) == {1}  # everyone, each exactly once
        assert [u for m in messages for u in pinged(m)] == fans  # in order

        # Nothing is sent again: another refresh, a restart.
        await stack.command("refresh")
        await stack.restart_bot()
        await stack.command("refresh")
        assert len(stack.posted()) == len(messages)
    finally:
        await stack.close()


async def test_a_members_subscriptions_in_one_server_are_never_seen_in_another(tmp_path):
    stack, (nova,) = await following(tmp_path, "Nova Lights")
    fake = stack.discord
    try:
        m = stack.member_id
        other = fake.add_guild("Other Club")
        other_channel = fake.add_channel(other, "releases")
        other_admin = fake.add_member(other, name="other-admin", manage_guild=True)
        fake.add_member(other, user_id=m, name="listener")

        async def there(user_id: int, name: str, options: dict, sub: str | None = None):
            handle = await fake.invoke(other, user_id, name, options, subcommand=sub, channel_id=other_channel)
            await handle.wait_done(timeout=15)
            return handle

        await there(other_admin, "settings", {"channel": other_channel}, "channel")
        await there(other_admin, "follow", {"artist": nova})
        await notify_add(stack, m, nova)  # subscribed in the first server only
        reply = await there(m, "notify", {"mode": "dm"}, "mode")  # DMs in the other server, no subscription there
        assert reply.content.startswith("You'll get a direct message"), reply.content

        listed = await there(m, "notify", {}, "list")
        assert listed.ephemeral and "not notified of any artist" in listed.content and listed.embeds == []
        assert await fake.autocomplete(other, m, "notify", {"artist": ""}, "artist", subcommand="remove") == []

        # Both servers post the release: only the first one's post pings the member, and no DM comes.
        stack.clock.advance(hours=20)
        stack.spotify.add_album([nova], "Afterglow", album_type="album", total_tracks=11, release_date="2026-11-17")
        await stack.command("refresh")
        await there(other_admin, "refresh", {})
        [here_post] = stack.posted()
        [there_post] = fake.channel_messages(other_channel)
        assert [e["title"] for e in there_post["embeds"]] == ["Afterglow"]
        assert pinged(here_post) == [m] and pinged(there_post) == [] and not there_post["content"]
        assert fake.dms(m) == []
        assert (await there(m, "notify", {}, "list")).embeds == []  # still nothing there
    finally:
        await stack.close()
