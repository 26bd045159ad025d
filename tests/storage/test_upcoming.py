"""``storage.upcoming``: ``guilds.upcoming``, the release groups a guild may be told about, and the
announcement ledger (claims race-free, confirm, unclaim, skipped, the conditional edit) — on the run's
backend (SQLite or PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest

from storage import musicdata, upcoming
from storage.db import Database
from tests.bot.helpers import add_guild, follow
from tests.storage.helpers import race
from tests.storage.test_musicdata import NOW, TODAY, WINDOW, add_release, group, mbid

LATER = TODAY + dt.timedelta(days=10)


async def seed(db: Database) -> None:
    """Guild 1 follows artA, guild 2 follows artB; group 1 (artA, in 10 days), group 2 (artB, in 10 days),
    group 3 (artA, today: first seen on its day, not ahead), group 4 (artA, past)."""
    await add_guild(db, 1, now=NOW)
    await add_guild(db, 2, now=NOW)
    await follow(db, 1, "artA", now=NOW)
    await follow(db, 2, "artB", now=NOW)
    rows = [
        group(1, date=LATER),
        group(2, date=LATER, spotify_ids=("artB",)),
        group(3, date=TODAY),
        group(4, date=TODAY - dt.timedelta(days=3)),
    ]
    async with db.transaction() as session:
        await musicdata.store_release_groups(session, rows, listed={r.mbid for r in rows}, window=WINDOW, now=NOW)


async def claim(db: Database, guild_id: int, n: int, *, owner: str = "p1") -> bool:
    async with db.transaction() as session:
        return await upcoming.claim(
            session,
            guild_id,
            mbid(n),
            channel_id=100,
            destination="message",
            content=f"Announced: Group {n}",
            shown_date=LATER,
            owner=owner,
            now=NOW,
        )


async def test_upcoming_is_off_by_default_and_set_per_guild(db: Database) -> None:
    await seed(db)
    async with db.transaction() as session:
        assert await upcoming.upcoming_guilds(session) == []
        await upcoming.set_upcoming(session, 2, True)
    async with db.transaction() as session:
        assert await upcoming.upcoming_guilds(session) == [2]
        assert await upcoming.upcoming_enabled(session, 2) and not await upcoming.upcoming_enabled(session, 1)
        with pytest.raises(LookupError):
            await upcoming.set_upcoming(session, 99, True)


async def test_a_guild_sees_only_its_followed_artists_groups(db: Database) -> None:
    await seed(db)
    async with db.transaction() as session:
        one = await upcoming.unannounced_groups(session, 1, since=TODAY)
        two = await upcoming.unannounced_groups(session, 2, since=TODAY)
        listed = await upcoming.guild_groups(session, 1, since=TODAY)
        count = await upcoming.count_guild_groups(session, 1, since=TODAY)
    assert [g.mbid for g in one] == [mbid(3), mbid(1)]  # by date; the past group 4 is not there
    assert [(g.mbid, g.spotify_ids, g.announced_ahead) for g in two] == [(mbid(2), ("artB",), True)]
    assert not one[0].announced_ahead and one[1].announced_ahead  # group 3 was first seen on its day
    assert [g.mbid for g in listed] == [mbid(3), mbid(1)] and count == 2


async def test_a_claim_is_taken_once_and_the_group_leaves_the_unannounced(db: Database) -> None:
    await seed(db)
    assert await claim(db, 1, 1)
    assert not await claim(db, 1, 1, owner="p2")
    assert await claim(db, 2, 2)  # another guild's ledger is its own
    async with db.transaction() as session:
        assert [g.mbid for g in await upcoming.unannounced_groups(session, 1, since=TODAY)] == [mbid(3)]
        [row] = await upcoming.claims(session, 1)
        assert (row.owner, row.content, row.status) == ("p1", "Announced: Group 1", "claimed")
        assert await upcoming.guilds_with_claims(session) == [1, 2]


async def test_two_sessions_claiming_at_once_one_wins(db: Database) -> None:
    await seed(db)

    def work(owner: str):
        async def go(session):
            return await upcoming.claim(
                session,
                1,
                mbid(1),
                channel_id=100,
                destination="message",
                content="x",
                shown_date=LATER,
                owner=owner,
                now=NOW,
            )

        return go

    first, second = await race(db, work("p1"), work("p2"))
    assert (first, second) == (True, False)
    async with db.transaction() as session:
        [row] = await upcoming.claims(session, 1)
    assert row.owner == "p1"


async def test_confirm_unclaim_and_skipped(db: Database) -> None:
    await seed(db)
    await claim(db, 1, 1)
    await claim(db, 1, 3)
    async with db.transaction() as session:
        assert await upcoming.confirm(session, 1, mbid(1), message_id=555, thread_id=None, now=NOW)
        assert not await upcoming.confirm(session, 1, mbid(1), message_id=556, thread_id=None, now=NOW)
        await upcoming.unclaim(session, 1, mbid(3))
        await upcoming.unclaim(session, 1, mbid(1))  # posted: kept
        await upcoming.record_skipped(session, 1, [mbid(3), mbid(1)], now=NOW)
    async with db.transaction() as session:
        assert await upcoming.claims(session, 1) == []
        assert await upcoming.unannounced_groups(session, 1, since=TODAY) == []
        [(post, grp)] = await upcoming.posted_announcements(session, 1)
    assert (post.message_id, post.message_channel_id, post.shown_date, post.shown_state) == (
        555,
        100,
        LATER,
        "announced",
    )
    assert grp.mbid == mbid(1)


async def test_an_edit_is_taken_by_one_conditional_update(db: Database) -> None:
    await seed(db)
    await claim(db, 1, 1)
    moved = LATER + dt.timedelta(days=7)
    async with db.transaction() as session:
        await upcoming.confirm(session, 1, mbid(1), message_id=555, thread_id=None, now=NOW)
    before, after = (LATER, "announced"), (moved, "postponed")
    async with db.transaction() as session:
        assert await upcoming.mark_shown(session, 1, mbid(1), was=before, now_shown=after, now=NOW)
        assert not await upcoming.mark_shown(session, 1, mbid(1), was=before, now_shown=after, now=NOW)

    def work(session):
        return upcoming.mark_shown(session, 1, mbid(1), was=after, now_shown=(moved, "gone"), now=NOW)

    first, second = await race(db, work, work)
    assert sorted([first, second]) == [False, True]
    async with db.transaction() as session:
        [(post, _grp)] = await upcoming.posted_announcements(session, 1)
    assert (post.shown_date, post.shown_state) == (moved, "gone")


async def test_the_announcement_of_a_matched_release(db: Database) -> None:
    await seed(db)
    await claim(db, 1, 1)
    await add_release(db, "rel1", "artA")
    async with db.transaction() as session:
        await upcoming.confirm(session, 1, mbid(1), message_id=555, thread_id=None, now=NOW)
        await musicdata.record_match(session, mbid(1), "rel1", "title", now=NOW)
    async with db.transaction() as session:
        assert (await upcoming.announcement_messages(session, 1, ["rel1", "other"]))["rel1"].message_id == 555
        assert await upcoming.announcement_messages(session, 2, ["rel1"]) == {}
