"""Discord failures end to end (issue 4 §1): a channel the bot cannot post to (403) or that is gone
(404) keeps the releases pending, is tried once per run, and the next command in the server says
so once — also after a restart; 429 and 5xx from Discord are survived without a duplicate."""

from __future__ import annotations

import pytest

from fakes.stack import Stack
from tests import backend

pytestmark = pytest.mark.timeout(180)


async def ready_stack(tmp_path, releases: int = 2) -> tuple[Stack, list[str]]:
    stack = await backend.create_stack(tmp_path)
    sp = stack.spotify
    artist = sp.add_artist("Nova Lights", followers=1000)
    sp.add_album([artist], "Old Days", album_type="album", release_date="2024-01-01")
    await stack.start_bot()
    await stack.command("settings", {"channel": stack.channel_id}, subcommand="channel")
    await stack.command("follow", {"artist": artist})
    stack.clock.advance(hours=1)
    ids = [
        sp.add_album([artist], f"New Song {i}", album_type="single", release_date="2026-11-16") for i in range(releases)
    ]
    return stack, ids


def notices(handle) -> list[dict]:
    return [f for f in handle.followups if "could not be posted" in (f.get("content") or "")]


async def settle(stack: Stack) -> None:
    """Give the completion listener time to send a follow-up (it runs after the reply)."""
    import asyncio

    await asyncio.sleep(0.3)


def message_posts(stack: Stack) -> list:
    return stack.discord.requests("POST", f"/channels/{stack.channel_id}/messages")


def posted_ids(stack: Stack) -> list[str]:
    return [e["url"].rsplit("/", 1)[1] for m in stack.posted() for e in m.get("embeds") or []]


async def test_forbidden_channel_keeps_releases_and_the_next_command_says_so_once(tmp_path):
    stack, _ids = await ready_stack(tmp_path)
    try:
        stack.discord.set_bot_can_send(stack.channel_id, False)
        reply = await stack.command("refresh")
        assert "stay pending" in reply.content  # /refresh shows the problem itself
        assert len(message_posts(stack)) == 1 and posted_ids(stack) == []  # tried once, not hammered

        status = await stack.command("status")
        await settle(stack)
        assert "not allowed to post" in str(status.final) and "/settings channel" in str(status.final)
        assert notices(status) == []  # /status shows it in its reply; it counts as told

        await stack.command("refresh")  # the same problem again: no new notice
        following = await stack.command("following")
        await settle(stack)
        assert notices(following) == [] and len(message_posts(stack)) == 2  # once per run
    finally:
        await stack.close()


async def test_notice_is_told_once_by_the_first_other_command_and_not_after_a_restart(tmp_path):
    stack, ids = await ready_stack(tmp_path)
    try:
        stack.discord.delete_channel(stack.channel_id)
        summary = await backend.running_bot(stack).core.runner.run(
            "schedule", [stack.guild_id]
        )  # a weekly run hits the 404
        assert summary.deliveries[stack.guild_id].problem and summary.releases_posted == 0

        first = await stack.command("following")
        told = await stack.until(lambda: notices(first), timeout=5, what="the channel notice")
        assert len(told) == 1 and told[0]["flags"] & 64  # ephemeral
        assert "no longer exists" in told[0]["content"] and "/settings channel" in told[0]["content"]
        second = await stack.command("following")
        await settle(stack)
        assert notices(second) == []

        await stack.restart_bot()
        third = await stack.command("following")
        await settle(stack)
        assert notices(third) == []

        # Fixed by picking another channel: the pending releases are posted there, once.
        new_channel = stack.discord.add_channel(stack.guild_id, "releases")
        await stack.command("settings", {"channel": new_channel}, subcommand="channel")
        reply = await stack.command("refresh")
        assert "2 new releases" in reply.content
        urls = [e["url"].rsplit("/", 1)[1] for m in stack.discord.channel_messages(new_channel) for e in m["embeds"]]
        assert sorted(urls) == sorted(ids)
    finally:
        await stack.close()


async def test_5xx_keeps_releases_pending_and_the_next_run_posts_them_once(tmp_path):
    stack, ids = await ready_stack(tmp_path)
    try:
        # discord.py does not retry a 503 itself (it does 500/502/504, with the same nonce).
        stack.discord.fail_next(1, status=503, path_contains=f"/channels/{stack.channel_id}/messages", method="POST")
        summary = await backend.running_bot(stack).core.runner.run("refresh", [stack.guild_id])
        result = summary.deliveries[stack.guild_id]
        assert result.posted == 0 and result.pending == 2 and result.error is not None and "send failed" in result.error
        assert posted_ids(stack) == []
        summary = await backend.running_bot(stack).core.runner.run("refresh", [stack.guild_id])
        assert summary.releases_posted == 2 and sorted(posted_ids(stack)) == sorted(ids)
    finally:
        await stack.close()


async def test_a_single_502_is_retried_with_the_same_nonce_and_posts_once(tmp_path):
    stack, ids = await ready_stack(tmp_path)
    try:
        stack.discord.fail_next(1, status=502, path_contains=f"/channels/{stack.channel_id}/messages", method="POST")
        summary = await backend.running_bot(stack).core.runner.run("refresh", [stack.guild_id])
        assert summary.releases_posted == 2 and sorted(posted_ids(stack)) == sorted(ids)
        posts = message_posts(stack)
        assert [r.status for r in posts] == [502, 200]
        assert posts[0].json["nonce"] == posts[1].json["nonce"] and posts[1].json["enforce_nonce"] is True
    finally:
        await stack.close()


async def test_429_is_waited_out_and_posts_once(tmp_path):
    stack, ids = await ready_stack(tmp_path)
    try:
        stack.discord.fail_next(
            1, status=429, retry_after=0.3, path_contains=f"/channels/{stack.channel_id}/messages", method="POST"
        )
        summary = await backend.running_bot(stack).core.runner.run("refresh", [stack.guild_id])
        assert summary.releases_posted == 2 and summary.status == "ok"
        assert sorted(posted_ids(stack)) == sorted(ids) and [r.status for r in message_posts(stack)] == [429, 200]
    finally:
        await stack.close()


async def test_start_up_settles_a_claim_whose_message_is_in_the_channel(tmp_path):
    """A process killed between send and confirm: the restarted bot finds its message, confirms it,
    and posts nothing twice (the nonce window is long gone: only the channel's history tells)."""
    from sqlalchemy import select

    from storage.models import Delivery

    stack, ids = await ready_stack(tmp_path, releases=3)
    try:
        stack.discord.nonce_window = 0.0
        await backend.running_bot(stack).core.runner.run("refresh", [stack.guild_id])
        assert len(posted_ids(stack)) == 3
        async with backend.running_bot(stack).core.db.sessions() as s:  # as if the confirm never happened
            rows = (await s.scalars(select(Delivery).where(Delivery.release_id.in_(ids[:2])))).all()
            for row in rows:
                row.status, row.message_id, row.sent_at = "claimed", None, None
            await s.commit()
        stack.clock.advance(seconds=5)  # the restarted process starts after the claims were made
        await stack.restart_bot()
        async with backend.running_bot(stack).core.db.sessions() as s:
            rows = (await s.scalars(select(Delivery))).all()
        assert {r.status for r in rows} == {"sent"} and all(r.message_id for r in rows)
        assert any(r.path.endswith("/messages") and r.method == "GET" for r in stack.discord.request_log)
        await backend.running_bot(stack).core.runner.run("refresh", [stack.guild_id])
        assert sorted(posted_ids(stack)) == sorted(ids)
    finally:
        await stack.close()
