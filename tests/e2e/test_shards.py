"""Two real ``ReleaseBot`` processes on shards [0] and [1] of 2, one Discord fake, one database.

Each answers the slash commands of its own shard's guilds (and never the other's), the two
started together sync the commands once, and each records its shards in ``processes``.
"""

from __future__ import annotations

import asyncio
import contextlib

import discord
import pytest
from sqlalchemy import select

from bot.discord_app.client import ReleaseBot
from fakes.discord_fake import shard_of
from fakes.stack import wait_for
from storage.models import Process
from tests import backend

pytestmark = pytest.mark.timeout(120)


def recorder(seen: list[int | None]):
    """An ``on_interaction`` listener appending each interaction's guild id to ``seen``."""

    async def on_interaction(interaction: discord.Interaction) -> None:
        seen.append(interaction.guild_id)

    return on_interaction


async def test_two_shard_processes_answer_their_own_guilds_and_sync_once(tmp_path):
    stack = await backend.create_stack(tmp_path)
    fake = stack.discord
    bots: list[ReleaseBot] = []
    tasks: list[asyncio.Task] = []
    try:
        # The stack's guild is on one shard; a second guild, with its own admin, on the other.
        home = shard_of(stack.guild_id, 2)
        second = fake.add_guild("Second Club", guild_id=fake.snowflake_on_shard(1 - home, 2))
        second_channel = fake.add_channel(second, "releases")
        second_admin = fake.add_member(second, name="admin two", manage_guild=True)
        servers = {
            home: (stack.guild_id, stack.channel_id, stack.admin_id),
            1 - home: (second, second_channel, second_admin),
        }

        base = stack.settings()
        seen: dict[int, list[int | None]] = {0: [], 1: []}
        for shard in (0, 1):
            discord_settings = base.discord.model_copy(update={"shard_count": 2, "shard_ids": (shard,)})
            settings = base.model_copy(update={"discord": discord_settings})
            bot = ReleaseBot(settings, clock=stack.clock)
            bot.add_listener(recorder(seen[shard]), "on_interaction")
            bots.append(bot)
        # Started together: both reach the command sync at about the same time.
        tasks = [asyncio.create_task(bot.start(fake.token)) for bot in bots]
        await wait_for(
            lambda: all(b.is_ready() for b in bots) or any(t.done() for t in tasks), timeout=30, what="both bots ready"
        )
        for task in tasks:
            if task.done():
                task.result()  # re-raise a start-up failure
        await fake.wait_for_ready(10, shards=[0, 1])

        assert [{g.id for g in bot.guilds} for bot in bots] == [{servers[0][0]}, {servers[1][0]}]
        assert len(fake.requests("PUT", "/commands")) == 1
        assert {"status", "settings", "follow"} <= {c["name"] for c in fake.registered_commands}

        for shard in (0, 1):
            gid, channel, admin = servers[shard]
            reply = await fake.invoke(
                gid, admin, "settings", {"channel": channel}, subcommand="channel", channel_id=channel
            )
            await reply.wait_done(15)
            assert f"<#{channel}>" in reply.content and reply.shard == [shard, 2]
            status = await fake.invoke(gid, admin, "status", {}, channel_id=channel)
            await status.wait_done(15)
            assert f"<#{channel}>" in str(status.final)
            assert seen[shard] == [gid, gid] and gid not in seen[1 - shard]

        async with bots[0].core.db.sessions() as session:
            recorded = sorted((await session.scalars(select(Process.shard_ids))).all(), key=str)
        assert recorded == [[0], [1]]
    finally:
        for bot in bots:
            with contextlib.suppress(Exception):
                await bot.close()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, 10)
        await stack.close()
