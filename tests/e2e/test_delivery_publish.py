"""Crossposts, end to end with the real discord.py client against the Discord fake: with ``/settings
publish on`` the bot's posts in an announcement channel are published; Discord allows 10 publishes
per channel per hour (the fake answers the 11th with a long 429), so the 11th and 12th wait — nothing
publishes them while the hour lasts — and the bot's background publisher publishes them once the hour
has passed (the simulated clock, shared by the bot and the fake, moves on). None is lost, none is
published twice, and a restart changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.settings import DeliverySettings
from fakes.stack import Stack
from storage.models import Delivery
from tests import backend

pytestmark = pytest.mark.timeout(120)


async def publish_states(stack: Stack) -> dict[int, str | None]:
    """``{message id: publish_state}`` of the guild's posts."""
    async with backend.running_bot(stack).core.db.sessions() as s:
        rows = await s.execute(
            select(Delivery.message_id, Delivery.publish_state).where(Delivery.guild_id == stack.guild_id)
        )
        return {int(mid): state for mid, state in rows if mid is not None}


def successful_crossposts(stack: Stack) -> list[int]:
    """Message ids of every crosspost request Discord accepted, in order (one per publish)."""
    return [int(r.path.split("/")[-2]) for r in stack.discord.requests("POST", "/crosspost") if r.status == 200]


async def test_past_ten_an_hour_publishing_waits_and_every_post_is_published_once(tmp_path):
    stack = await backend.create_stack(tmp_path)
    sp, fake = stack.spotify, stack.discord
    # The fake counts its publish window on the stack's simulated clock, as the bot does.
    fake.clock = lambda: stack.clock().timestamp()
    # The publisher looks for crossposts that fell due every second (the least a config may ask).
    stack.delivery = DeliverySettings(retry_seconds=1)
    news = fake.add_channel(stack.guild_id, "announcements", kind="announcement")
    try:
        nova = sp.add_artist("Nova Lights")
        sp.add_album([nova], "Old Album", release_date="2023-05-05")
        await stack.start_bot()
        await stack.command("settings", {"channel": news}, subcommand="channel")
        await stack.command("follow", {"artist": nova})
        reply = await stack.command("settings", {"enabled": True}, subcommand="publish")
        assert reply.content.startswith(f"Posts in <#{news}> are published (crossposted)"), reply.content

        # Twelve posts within the hour, one per refresh.
        stack.clock.advance(hours=20)
        for i in range(12):
            sp.add_album([nova], f"Single {i}", album_type="single", release_date="2026-11-17")
            reply = await stack.command("refresh")
            assert "1 new release" in reply.content, reply.content
            stack.clock.advance(minutes=1)
        posts = [int(m["id"]) for m in fake.channel_messages(news)]
        assert len(posts) == 12

        # The first ten are published at once; the eleventh met the limit, and both late ones wait.
        assert fake.crossposted(news) == posts[:10]
        assert [r.status for r in fake.requests("POST", "/crosspost")][10] == 429
        states = await publish_states(stack)
        assert [states[mid] for mid in posts] == ["done"] * 10 + ["pending"] * 2
        publisher = backend.running_bot(stack).core.publisher
        assert publisher is not None
        tried = len(fake.requests("POST", "/crosspost"))
        counts = await publisher.run_due()  # within the hour nothing is due: no request
        assert (counts.published, counts.deferred) == (0, 0)
        assert len(fake.requests("POST", "/crosspost")) == tried

        # The hour passes: the background publisher publishes the two, with no command.
        stack.clock.advance(hours=1)
        await stack.until(lambda: len(fake.crossposted(news)) == 12, timeout=15, what="the late crossposts")
        assert fake.crossposted(news) == posts

        async def all_done() -> bool:
            return set((await publish_states(stack)).values()) == {"done"}

        await stack.until(all_done, timeout=5, what="the ledger to record the late publishes")

        # A restart and a refresh publish nothing again; each post was published exactly once.
        await stack.restart_bot()
        await stack.command("refresh")
        await backend.running_bot(stack).core.publisher.run_due()  # type: ignore[union-attr]
        assert sorted(successful_crossposts(stack)) == sorted(posts)
        assert all(r.status != 400 for r in fake.requests("POST", "/crosspost"))  # never "already crossposted"
    finally:
        await stack.close()
