"""The command tree puts an interaction's guild and shard in the log context (bot/ops/logs.py)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import discord

from bot.discord_app.interactions import ContextCommandTree, shard_of
from bot.ops.logs import context_fields

GUILD = 1579696594075385856  # (GUILD >> 22) % 3 == 1


def interaction(guild_id, shard_count):
    return SimpleNamespace(guild_id=guild_id, client=SimpleNamespace(shard_count=shard_count))


def test_shard_of_follows_discords_formula():
    assert (GUILD >> 22) % 3 == 1
    assert shard_of(interaction(GUILD, 3)) == 1
    assert shard_of(interaction(GUILD, None)) == 0  # an unsharded client: shard 0
    assert shard_of(interaction(None, 3)) is None  # outside a guild


async def test_the_tree_binds_guild_and_shard_for_the_interactions_task_only():
    client = discord.Client(intents=discord.Intents.none())
    tree = ContextCommandTree(client)
    seen = {}

    async def handle():  # discord.py runs each interaction in a task of its own
        assert await tree.interaction_check(interaction(GUILD, 3))
        seen.update(context_fields())

    await asyncio.create_task(handle())
    assert seen == {"guild_id": GUILD, "shard": 1}
    assert context_fields() == {}
    await client.close()
