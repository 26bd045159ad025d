"""DM mode, end to end with the real discord.py client against the Discord fake: a member who chose
``/notify mode mode:dm`` gets a direct message with the release's embed, once (also across a
restart); a member whose DMs are closed (Discord 50007) is switched to mention mode — mentioned in
the next post — and told once, privately, at their next command; a subscriber Discord no longer knows
(10013 Unknown User) has their subscriptions removed, and one who left the server (10007 Unknown
Member) has theirs in that server removed. A fan-out to 1,000 DM subscribers neither holds up the
channel posts nor loses a DM."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from sqlalchemy import select

from bot.delivery.dm_outbox import DM_CONTENT
from bot.settings import DeliverySettings
from fakes.stack import Stack
from storage import dm_ledger, members
from storage.models import Member, Subscription
from tests import backend

pytestmark = pytest.mark.timeout(240)

DM_NOTICE = "your DMs are closed to me"


async def as_member(stack: Stack, user_id: int, name: str, options: dict | None = None, sub: str | None = None):
    """A command run by ``user_id`` in the stack's server, its final reply."""
    handle = await stack.discord.invoke(
        stack.guild_id, user_id, name, options or {}, subcommand=sub, channel_id=stack.channel_id
    )
    await handle.wait_done(timeout=15)
    return handle


async def subscriptions(stack: Stack) -> set[tuple[int, int]]:
    """``{(guild id, user id)}`` of every subscription."""
    async with backend.running_bot(stack).core.db.sessions() as s:
        return {(g, u) for g, u in await s.execute(select(Subscription.guild_id, Subscription.user_id))}


async def mode_of(stack: Stack, user_id: int) -> str | None:
    async with backend.running_bot(stack).core.db.sessions() as s:
        return await s.scalar(select(Member.mode).where(Member.guild_id == stack.guild_id, Member.user_id == user_id))


async def outbox_idle(stack: Stack) -> bool:
    """No DM is waiting to be sent (``pending``) or in flight (``claimed``)."""
    async with backend.running_bot(stack).core.db.sessions() as s:
        statuses = await dm_ledger.count_by_status(s)
    return not statuses.get("pending") and not statuses.get("claimed")


def dm_titles(stack: Stack, user_id: int) -> list[str]:
    return [e["title"] for m in stack.discord.dms(user_id) for e in m["embeds"]]


async def subscribe_directly(stack: Stack, user_ids: list[int], artist: str, *, mode: str) -> None:
    """Subscribe ``user_ids`` in ``mode`` as ``/notify add`` + ``/notify mode`` store it (the commands
    themselves are used in the other tests; here there are too many members to type them)."""
    async with backend.running_bot(stack).core.db.transaction() as session:
        for user_id in user_ids:
            result = await members.subscribe(session, stack.guild_id, user_id, artist, now=stack.clock(), limit=25)
            assert result.status == "added"
            await members.set_mode(session, stack.guild_id, user_id, mode)


async def subscribe_many(stack: Stack, user_ids: list[int], artist: str, *, mode: str) -> None:
    """As :func:`subscribe_directly` for many members, in one insert per table."""
    async with backend.running_bot(stack).core.db.transaction() as session:
        session.add_all([Member(guild_id=stack.guild_id, user_id=u, mode=mode) for u in user_ids])
        await session.flush()
        session.add_all(
            [
                Subscription(guild_id=stack.guild_id, user_id=u, artist_id=artist, created_at=stack.clock())
                for u in user_ids
            ]
        )


async def new_release(stack: Stack, artist: str, title: str) -> None:
    stack.clock.advance(hours=1)
    stack.spotify.add_album([artist], title, album_type="single", release_date="2026-11-17")
    reply = await stack.command("refresh")
    assert "1 new release" in reply.content, reply.content


async def test_dms_once_closed_dms_switch_to_mentions_and_gone_members_are_forgotten(tmp_path):
    stack = await backend.create_stack(tmp_path)
    fake, sp = stack.discord, stack.spotify
    stack.delivery = DeliverySettings(dm_per_second=20, retry_seconds=1)
    try:
        nova = sp.add_artist("Nova Lights")
        sp.add_album([nova], "Old Album", release_date="2023-05-05")
        other_guild = fake.add_guild("Other Club")
        fake.add_channel(other_guild, "releases")
        other_admin = fake.add_member(other_guild, name="other-admin", manage_guild=True)
        fan = stack.member_id
        closed = fake.add_member(stack.guild_id, name="closed-dms", dms_open=False)
        leaver = fake.add_member(stack.guild_id, name="leaver")
        fake.add_member(other_guild, user_id=leaver, name="leaver")
        lone = fake.add_member(stack.guild_id, name="lone-leaver")  # in no other server with the bot
        ghost = fake.snowflake()  # an account deleted since it subscribed: Discord doesn't know it any more
        await stack.start_bot()
        await stack.command("settings", {"channel": stack.channel_id}, subcommand="channel")
        await stack.command("follow", {"artist": nova})
        for user in (fan, closed, leaver, lone):
            assert "Nova Lights" in (await as_member(stack, user, "notify", {"artist": nova}, "add")).content
            reply = await as_member(stack, user, "notify", {"mode": "dm"}, "mode")
            assert reply.content.startswith("You'll get a direct message"), reply.content
        await subscribe_directly(stack, [ghost], nova, mode="dm")
        # The leaver is notified of Nova in another server too.
        followed = await fake.invoke(other_guild, other_admin, "follow", {"artist": nova})
        await followed.wait_done(timeout=15)
        there = await fake.invoke(other_guild, leaver, "notify", {"artist": nova}, subcommand="add")
        await there.wait_done(timeout=15)
        assert "Nova Lights" in (there.content or ""), there.content

        # A release: the channel post pings nobody (everyone chose DMs); the DMs follow.
        await new_release(stack, nova, "Afterglow")
        [post] = stack.posted()
        assert post["mentions"] == [] and not post["content"]
        await stack.until(lambda: outbox_idle(stack), timeout=20, what="the DMs of the first release")
        [dm] = fake.dms(fan)
        assert dm["content"] == DM_CONTENT and len(dm["embeds"]) == 1
        assert dm["embeds"][0]["title"] == "Afterglow" and dm["embeds"][0]["url"] == post["embeds"][0]["url"]
        assert dm_titles(stack, leaver) == ["Afterglow"]
        assert fake.dms(closed) == []  # 50007: refused …
        assert await mode_of(stack, closed) == "mention"  # … and switched to mentions
        assert (stack.guild_id, ghost) not in await subscriptions(stack)  # 10013: forgotten

        # The member with closed DMs is told once, privately, at their next command — only they are.
        first = await as_member(stack, closed, "following")
        [told] = await stack.until(
            lambda: [f for f in first.followups if DM_NOTICE in (f.get("content") or "")], what="the notice"
        )
        assert told["flags"] & 64 and "now mentioned in this server's posts" in told["content"]
        second = await as_member(stack, closed, "notify", sub="list")
        assert "switched to mentions" in str(second.embeds)  # /notify list says why it is mentions now
        assert all(DM_NOTICE not in (f.get("content") or "") for f in second.followups)
        others = await as_member(stack, fan, "following")
        assert all(DM_NOTICE not in (f.get("content") or "") for f in others.followups)

        # The leaver left the server; Discord answers their next DM with 10007 Unknown Member.
        leaver_dm_channel = int(fake.dms(leaver)[0]["channel_id"])
        fake.fail_next(status=404, code=10007, method="POST", path_contains=f"/channels/{leaver_dm_channel}/messages")
        # The lone leaver shares no server with the bot any more: Discord answers 50007, and Get Guild
        # Member 10007 tells the bot they left — forgotten here, not switched to mentions.
        fake.remove_member(stack.guild_id, lone)
        await new_release(stack, nova, "Midnight Drive")
        assert [int(u["id"]) for u in stack.posted()[-1]["mentions"]] == [closed]  # mentioned now
        await stack.until(lambda: outbox_idle(stack), timeout=20, what="the DMs of the second release")
        assert dm_titles(stack, fan) == ["Afterglow", "Midnight Drive"]
        assert dm_titles(stack, leaver) == ["Afterglow"]
        subs = await subscriptions(stack)
        assert (stack.guild_id, leaver) not in subs and (other_guild, leaver) in subs  # gone from this server only
        assert (stack.guild_id, lone) not in subs and dm_titles(stack, lone) == ["Afterglow"]
        assert lone not in [int(u["id"]) for u in stack.posted()[-1]["mentions"]]
        assert (stack.guild_id, fan) in subs and (stack.guild_id, closed) in subs

        # Nothing is sent twice: a restart and a refresh.
        await stack.restart_bot()
        await stack.command("refresh")
        await stack.until(lambda: outbox_idle(stack), timeout=20, what="the outbox after the restart")
        assert dm_titles(stack, fan) == ["Afterglow", "Midnight Drive"]
        assert len(fake.dms(closed)) == 0 and len(fake.dms(ghost)) == 0
    finally:
        await stack.close()


async def test_a_fan_out_to_1000_dm_subscribers_holds_up_no_post_and_loses_no_dm(tmp_path):
    stack = await backend.create_stack(tmp_path)
    fake, sp = stack.discord, stack.spotify
    # 200 DMs a second (above what a config file may ask: 20): 1,000 DMs take at least 5 s, long enough
    # to see the channel posts go on meanwhile, short enough for the suite.
    stack.delivery = DeliverySettings.model_construct(dm_per_second=200.0, retry_seconds=1.0)
    try:
        nova, harbour = sp.add_artist("Nova Lights"), sp.add_artist("The Quiet Harbour")
        for artist in (nova, harbour):
            sp.add_album([artist], "Old Album", release_date="2023-05-05")
        fans = [fake.add_member(stack.guild_id, name=f"fan{i}") for i in range(1000)]
        await stack.start_bot()
        await stack.command("settings", {"channel": stack.channel_id}, subcommand="channel")
        for artist in (nova, harbour):
            await stack.command("follow", {"artist": artist})
        await subscribe_many(stack, fans, nova, mode="dm")

        started = time.monotonic()
        await new_release(stack, nova, "Afterglow")
        first_post = stack.posted()[-1]
        assert time.monotonic() - started < 10  # the post did not wait for its 1,000 DMs
        # Meanwhile another release is posted at once, while the fan-out goes on.
        await new_release(stack, harbour, "Harbour Lights")
        second_post = stack.posted()[-1]
        dm_ids = [int(m["id"]) for u in fans for m in fake.dms(u)]
        assert len(dm_ids) < len(fans), "the fan-out ended before the second post: the test proves nothing"
        assert int(first_post["id"]) < min(dm_ids)  # the channel post arrived first
        assert [e["title"] for e in second_post["embeds"]] == ["Harbour Lights"]

        await stack.until(lambda: outbox_idle(stack), timeout=120, what="1,000 DMs")
        per_fan = Counter(u for u in fans for _ in fake.dms(u))
        assert len(per_fan) == 1000 and set(per_fan.values()) == {1}  # every fan, exactly once
        assert {t for u in fans for t in dm_titles(stack, u)} == {"Afterglow"}
    finally:
        await stack.close()
