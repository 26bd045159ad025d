"""Sharding on the Discord fake ("Gateway" > "Sharding"), driven by real discord.py sharded clients.

Two processes' worth of ``AutoShardedBot`` (shards [0] and [1] of 2) on one fake: each is READY
with only its own guilds, and a guild's events and interactions reach only the owner of its shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import discord
import pytest
import pytest_asyncio
import yarl
from discord.ext import commands

from fakes.discord_fake import DiscordFake, shard_of

pytestmark = pytest.mark.asyncio(loop_scope="module")

TIMEOUT = 10.0


class ShardProbe(commands.AutoShardedBot):
    """An ``AutoShardedBot`` that answers ``/where`` with its shard ids and records what it receives:
    the READY payloads (``shard``, ``guilds``) and the guilds of the interactions it got."""

    def __init__(self, **kwargs) -> None:
        super().__init__(
            command_prefix="!",
            intents=discord.Intents.none() | discord.Intents(guilds=True),
            chunk_guilds_at_startup=False,
            guild_ready_timeout=0.1,
            enable_debug_events=True,
            **kwargs,
        )
        self.readies: list[dict] = []
        self.interaction_guilds: list[int] = []

        @self.tree.command(name="where", description="Which shards answer")
        async def where(interaction: discord.Interaction) -> None:
            await interaction.response.send_message(f"shards {sorted(self.shards)} of {self.shard_count}")

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py waits 5 s between IDENTIFYs of one client (Discord's identify rate limit); not here."""

    async def on_socket_raw_receive(self, msg: str) -> None:
        frame = json.loads(msg)
        if frame.get("t") == "READY":
            self.readies.append(frame["d"])

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        self.interaction_guilds.append(interaction.guild_id)


@contextlib.asynccontextmanager
async def running(client: discord.Client, fake: DiscordFake):
    """Start ``client`` on the fake, wait (bounded) until it is ready, close it after."""
    task = asyncio.create_task(client.start(fake.token))
    try:
        await asyncio.wait_for(
            asyncio.wait([asyncio.ensure_future(client.wait_until_ready()), task], return_when=asyncio.FIRST_COMPLETED),
            TIMEOUT,
        )
        if task.done():
            task.result()
        yield client
    finally:
        await client.close()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 5)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world():
    """A fake with two guilds on shard 0 of 2 and one on shard 1, each with a channel and a member."""
    old_base, old_gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    fake = DiscordFake()
    await fake.start()
    discord.http.Route.BASE = fake.api_base_url
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    guilds: dict[int, list[tuple[int, int]]] = {0: [], 1: []}  # shard → (guild id, member id)
    for shard, name in ((0, "Zero A"), (0, "Zero B"), (1, "One")):
        gid = fake.add_guild(name, guild_id=fake.snowflake_on_shard(shard, 2))
        fake.add_channel(gid, "general")
        guilds[shard].append((gid, fake.add_member(gid, name="listener")))
    try:
        yield {"fake": fake, "guilds": guilds}
    finally:
        await fake.stop()
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


async def test_two_processes_each_get_ready_with_only_their_guilds_and_interactions(world):
    fake, guilds = world["fake"], world["guilds"]
    zero, one = ShardProbe(shard_count=2, shard_ids=[0]), ShardProbe(shard_count=2, shard_ids=[1])
    async with running(zero, fake), running(one, fake):
        await fake.wait_for_ready(TIMEOUT, shards=[0, 1])
        assert sorted(s["shard"] for s in fake.sessions) == [[0, 2], [1, 2]]
        assert [r["shard"] for r in zero.readies] == [[0, 2]]
        assert [r["shard"] for r in one.readies] == [[1, 2]]
        assert {int(g["id"]) for g in zero.readies[0]["guilds"]} == {g for g, _ in guilds[0]}
        assert {g.id for g in zero.guilds} == {g for g, _ in guilds[0]}
        assert {g.id for g in one.guilds} == {g for g, _ in guilds[1]}

        await asyncio.wait_for(zero.tree.sync(), TIMEOUT)
        for shard, bot, other in ((0, zero, one), (1, one, zero)):
            for gid, member in guilds[shard]:
                handle = await fake.invoke(gid, member, "where")
                await handle.wait_done(TIMEOUT)
                assert handle.content == f"shards [{shard}] of 2"
                assert handle.shard == [shard, 2]
                assert gid in bot.interaction_guilds and gid not in other.interaction_guilds

        # a guild joined later is announced to the owner of its shard only
        late = fake.add_guild("Late", guild_id=fake.snowflake_on_shard(1, 2))
        await asyncio.wait_for(_until(lambda: one.get_guild(late) is not None), TIMEOUT)
        assert zero.get_guild(late) is None
        channel = fake.add_channel(late, "late-news")
        await asyncio.wait_for(_until(lambda: one.get_channel(channel) is not None), TIMEOUT)
        assert zero.get_channel(channel) is None


async def test_interaction_for_a_shard_nobody_runs_is_refused(world):
    fake, guilds = world["fake"], world["guilds"]
    async with running(ShardProbe(shard_count=2, shard_ids=[0]), fake) as zero:
        await asyncio.wait_for(zero.tree.sync(), TIMEOUT)
        await fake.wait_for_ready(TIMEOUT, shards=[0])
        gid, member = guilds[1][0]
        with pytest.raises(RuntimeError, match="shard"):
            await fake.invoke(gid, member, "where")
        assert zero.interaction_guilds == []


async def test_snowflake_on_shard_gives_distinct_ids_of_that_shard(world):
    fake = world["fake"]
    ids = [fake.snowflake_on_shard(shard, 3) for shard in (2, 2, 0, 1, 2)]
    assert [shard_of(i, 3) for i in ids] == [2, 2, 0, 1, 2]
    assert len(set(ids)) == len(ids) and fake.snowflake() > max(ids)


async def test_invalid_shard_is_closed_with_4010(world):
    fake = world["fake"]
    client = discord.AutoShardedClient(intents=discord.Intents.none(), shard_count=2, shard_ids=[2])
    try:
        with pytest.raises(discord.ConnectionClosed) as err:
            await asyncio.wait_for(client.start(fake.token), TIMEOUT)
        assert err.value.code == 4010
    finally:
        await client.close()
    assert all(s["shard"] != [2, 2] for s in fake.sessions)


async def test_recommended_shards_launch_every_shard_in_one_client(world):
    fake, guilds = world["fake"], world["guilds"]
    fake.recommended_shards = 2
    try:
        async with running(ShardProbe(), fake) as bot:  # shard_count None: discord.py asks GET /gateway/bot
            assert bot.shard_count == 2 and sorted(bot.shards) == [0, 1]
            assert fake.requests("GET", "/gateway/bot")
            assert {g.id for g in bot.guilds} >= {g for shard in guilds.values() for g, _ in shard}
    finally:
        fake.recommended_shards = 1


async def test_an_unsharded_client_gets_every_guild(world):
    fake, guilds = world["fake"], world["guilds"]
    client = discord.Client(
        intents=discord.Intents.none() | discord.Intents(guilds=True),
        chunk_guilds_at_startup=False,
        guild_ready_timeout=0.1,
    )
    async with running(client, fake):
        assert [s["shard"] for s in fake.sessions] == [[0, 1]]
        assert {g.id for g in client.guilds} >= {g for shard in guilds.values() for g, _ in shard}


async def _until(predicate) -> None:
    """Poll ``predicate`` every 20 ms (callers bound it with ``asyncio.wait_for``)."""
    while not predicate():  # noqa: ASYNC110 - the fake's state has no event to wait on
        await asyncio.sleep(0.02)
