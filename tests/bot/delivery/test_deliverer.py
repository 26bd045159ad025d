"""Delivery: claim → send → confirm, exactly once per (guild, release)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import IntegrityError

from bot.delivery import ChannelUnavailable, Deliverer, make_nonce
from bot.spotify.models import Album
from storage import catalog
from storage.models import Delivery, Guild
from tests.bot.helpers import FakeSender, add_guild, follow, ledger


def album(rid: str, name: str, date: str = "2026-11-20") -> Album:
    return Album.from_api(
        {
            "id": rid,
            "name": name,
            "album_type": "single",
            "release_date": date,
            "release_date_precision": "day",
            "total_tracks": 1,
            "artists": [{"id": "A", "name": "A"}],
        }
    )


async def setup(db, clock, n: int = 1, *, names=None, channel_id: int | None = 100):
    await add_guild(db, 1, now=clock(), channel_id=channel_id)
    await follow(db, 1, "A", now=clock())
    clock.advance(hours=1)
    names = names or [f"Song {i}" for i in range(n)]
    async with db.sessions() as s:
        for i, name in enumerate(names):
            alb = album(f"r{i:03d}", name)
            await catalog.upsert_release(s, alb, now=clock())
            await catalog.link_release(s, "A", alb.id, album_group="single", now=clock(), baseline=False)
        await s.commit()
    return [f"r{i:03d}" for i in range(len(names))]


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


@pytest.fixture
def deliverer(db, sender, clock) -> Deliverer:
    return Deliverer(db, sender, clock=clock)


async def test_posts_once_and_confirms(db, clock, sender, deliverer):
    ids = await setup(db, clock, 2)
    result = await deliverer.deliver(1, run_id=5)
    assert (result.posted, result.messages, result.pending, result.error) == (2, 1, 0, None)
    channel, _embeds, nonce = sender.messages[0]
    assert channel == 100 and nonce == make_nonce(1, ids) and len(nonce) <= 25
    rows = await ledger(db, 1)
    assert [(r.release_id, r.status, r.message_id, r.run_id) for r in rows] == [(i, "sent", 1001, 5) for i in ids]
    assert all(r.sent_at == clock() for r in rows)
    again = await deliverer.deliver(1)
    assert again.posted == 0 and len(sender.messages) == 1


async def test_25_releases_three_messages(db, clock, sender, deliverer):
    await setup(db, clock, 25)
    result = await deliverer.deliver(1)
    assert result.posted == 25 and result.messages == 3
    assert [len(m[1]) for m in sender.messages] == [10, 10, 5]
    assert len({m[2] for m in sender.messages}) == 3  # a nonce per message
    assert sender.titles() == [f"Song {i}" for i in range(25)]


async def test_twins_folded_into_one_announcement_both_in_the_ledger(db, clock, sender, deliverer):
    await setup(db, clock, names=["Yeehaw (Clean)", "Yeehaw"])
    result = await deliverer.deliver(1)
    assert result.posted == 1 and result.folded == 1
    assert sender.titles() == ["Yeehaw"]
    rows = {r.release_id: r for r in await ledger(db, 1)}
    assert rows["r001"].folded_into is None and rows["r000"].folded_into == "r001"
    assert {r.status for r in rows.values()} == {"sent"} and rows["r000"].message_id == rows["r001"].message_id


async def test_send_failure_removes_claims_then_posts_next_time(db, clock, sender, deliverer):
    await setup(db, clock, 12)
    sender.fail_with = RuntimeError("503 Service Unavailable")
    result = await deliverer.deliver(1)
    assert result.error.startswith("send failed") and result.posted == 0 and result.pending == 12
    assert await ledger(db, 1) == []
    sender.fail_with = None
    result = await deliverer.deliver(1)
    assert result.posted == 12 and result.ok
    assert sorted(sender.titles()) == sorted(f"Song {i}" for i in range(12))  # no duplicate


async def test_failure_on_second_message_keeps_the_first(db, clock, sender, deliverer):
    await setup(db, clock, 15)
    original = sender.send
    calls = 0

    async def second_fails(channel_id, embeds, *, nonce, **extra):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise TimeoutError()
        return await original(channel_id, embeds, nonce=nonce, **extra)

    sender.send = second_fails
    result = await deliverer.deliver(1)
    assert (result.posted, result.messages, result.pending) == (10, 1, 5)
    assert len(await ledger(db, 1)) == 10
    result = await deliverer.deliver(1)
    assert result.posted == 5
    assert len(sender.titles()) == 15 and len(set(sender.titles())) == 15


async def test_channel_unavailable_sets_problem_and_loses_nothing(db, clock, sender, deliverer):
    await setup(db, clock, 3)
    sender.fail_with = ChannelUnavailable("Missing Access", status=403)
    result = await deliverer.deliver(1)
    assert not result.ok and "Missing Access" in result.problem
    async with db.sessions() as s:
        assert (await s.get(Guild, 1)).channel_problem == "Missing Access"
    assert await ledger(db, 1) == []
    sender.fail_with = None
    result = await deliverer.deliver(1)
    assert result.posted == 3 and result.problem is None
    async with db.sessions() as s:
        assert (await s.get(Guild, 1)).channel_problem is None


async def test_no_channel_sends_nothing_and_keeps_pending(db, clock, sender, deliverer):
    await setup(db, clock, 2, channel_id=None)
    result = await deliverer.deliver(1)
    assert result.problem == "no channel set" and result.pending == 2 and result.ok
    assert sender.messages == [] and await ledger(db, 1) == []
    async with db.sessions() as s:
        (await s.get(Guild, 1)).channel_id = 200
        await s.commit()
    assert (await deliverer.deliver(1)).posted == 2


async def test_ledger_is_unique_per_guild_and_release(db, clock):
    await setup(db, clock, 1)
    async with db.sessions() as s:
        s.add(Delivery(guild_id=1, release_id="r000", status="sent", claimed_at=clock()))
        await s.commit()
    with pytest.raises(IntegrityError):
        async with db.sessions() as s:
            s.add(Delivery(guild_id=1, release_id="r000", status="claimed", claimed_at=clock()))
            await s.commit()


async def test_two_deliverers_at_once_post_each_release_once(db, clock, sender):
    await setup(db, clock, 4)
    first, second = Deliverer(db, sender, clock=clock), Deliverer(db, sender, clock=clock)  # e.g. two processes
    results = await asyncio.gather(first.deliver(1), second.deliver(1))
    assert sum(r.posted for r in results) == 4
    assert sorted(sender.titles()) == [f"Song {i}" for i in range(4)]
