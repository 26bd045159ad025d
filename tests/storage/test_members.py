"""``storage.members``: who to notify of an artist in a guild and how; closed DMs switch a member
to mentions in every guild; a member or user Discord no longer knows is forgotten."""

from __future__ import annotations

from storage import members
from storage.members import Subscriber
from storage.models import Member, Subscription
from tests.bot.helpers import add_guild

A, B = "A" * 22, "B" * 22


async def _seed(db, clock) -> None:
    for g in (1, 2):
        await add_guild(db, g, now=clock())
    async with db.sessions() as s:
        s.add_all(
            [
                Subscription(guild_id=1, user_id=20, artist_id=A, created_at=clock()),
                Subscription(guild_id=1, user_id=10, artist_id=A, created_at=clock()),
                Subscription(guild_id=1, user_id=10, artist_id=B, created_at=clock()),
                Subscription(guild_id=2, user_id=10, artist_id=A, created_at=clock()),
                Member(guild_id=1, user_id=10, mode="dm"),
                Member(guild_id=2, user_id=10, mode="dm"),
            ]
        )
        await s.commit()


async def test_subscribers_by_artist_with_their_mode_in_one_guild(db, clock):
    await _seed(db, clock)
    async with db.transaction() as s:
        got = await members.subscribers(s, 1, [A, B, "C" * 22])
    assert got == {A: [Subscriber(10, "dm"), Subscriber(20, "mention")], B: [Subscriber(10, "dm")]}


async def test_closed_dms_switch_every_membership_to_mention_once(db, clock):
    await _seed(db, clock)
    async with db.transaction() as s:
        assert await members.mark_dms_closed(s, 10, now=clock()) == 2
        assert await members.mark_dms_closed(s, 10, now=clock()) == 0
    async with db.transaction() as s:
        assert (await members.subscribers(s, 2, [A]))[A] == [Subscriber(10, "mention")]
        row = await s.get(Member, (1, 10))
        assert row is not None and row.dm_notice_pending and row.dm_closed_at == clock()


async def test_forget_member_is_per_guild_and_forget_user_everywhere(db, clock):
    await _seed(db, clock)
    async with db.transaction() as s:
        assert await members.forget_member(s, 1, 10) == 2
    async with db.transaction() as s:
        assert await members.subscribers(s, 1, [A, B]) == {A: [Subscriber(20, "mention")]}
        assert (await members.subscribers(s, 2, [A]))[A] == [Subscriber(10, "dm")]
        assert await members.forget_user(s, 10) == 1
    async with db.transaction() as s:
        assert await members.subscribers(s, 2, [A]) == {}
