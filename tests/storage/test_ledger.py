"""storage.ledger: what is pending for a guild, and claims that make a post exactly-once."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from bot.spotify.models import Album, ArtistRef
from storage import catalog, guilds, ledger
from storage.db import Database, open_database
from storage.ledger import LedgerConflict
from storage.models import Delivery
from tests.bot.helpers import add_guild, follow

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 20, 12, tzinfo=UTC)


def album(rid: str) -> Album:
    return Album(
        id=rid,
        name=f"Song {rid}",
        album_type="single",
        release_date="2026-11-20",
        release_date_precision="day",
        total_tracks=1,
        artists=(ArtistRef("A", "A"),),
    )


async def link(db: Database, artist_id: str, rid: str, *, at: dt.datetime, group: str = "single", baseline=False):
    async with db.transaction() as s:
        await catalog.upsert_release(s, album(rid), now=at)
        await catalog.link_release(s, artist_id, rid, album_group=group, now=at, baseline=baseline)


async def rows(db: Database, guild_id: int = 1) -> list[tuple[str, str, str | None]]:
    async with db.transaction() as s:
        claims = await ledger.unconfirmed_claims(s, guild_id)
        return [(r.release_id, r.status, r.folded_into) for r in claims]


@pytest.fixture
async def guild(db):
    """Guild 1 follows artists A and B since NOW; r1..r3 are linked after, one of them to both."""
    await add_guild(db, 1, now=NOW)
    await follow(db, 1, "A", now=NOW)
    await follow(db, 1, "B", now=NOW)
    await link(db, "A", "old", at=NOW - dt.timedelta(days=1))  # before the follow: not new
    await link(db, "A", "base", at=NOW + dt.timedelta(minutes=1), baseline=True)  # a baseline link: not new
    for i, rid in enumerate(("r1", "r2", "r3")):
        await link(db, "A", rid, at=NOW + dt.timedelta(hours=i + 1))
    await link(db, "B", "r2", at=NOW + dt.timedelta(hours=5), group="appears_on")


async def test_pending_releases_are_the_new_links_of_followed_artists_without_a_ledger_row(db, guild):
    async with db.transaction() as s:
        pending = await ledger.pending_releases(s, 1)
    assert [p.release.id for p in pending] == ["r1", "r2", "r3"]  # oldest first seen first
    assert pending[1].links == {("A", "single"), ("B", "appears_on")}
    async with db.transaction() as s:
        await ledger.record_skipped(s, 1, ["r2"], now=NOW, run_id=None)
    async with db.transaction() as s:
        assert [p.release.id for p in await ledger.pending_releases(s, 1)] == ["r1", "r3"]
        assert await ledger.pending_releases(s, 2) == []  # an unknown guild follows nobody


async def test_a_claim_is_all_or_nothing_and_a_second_claim_of_a_release_fails(db, guild):
    async with db.transaction() as s:
        await ledger.claim(s, 1, 100, [("r1", None), ("r2", "r1")], now=NOW, run_id=3, owner="p1")
    with pytest.raises(LedgerConflict):
        async with db.transaction() as s:
            await ledger.claim(s, 1, 100, [("r3", None), ("r2", None)], now=NOW, run_id=4, owner="p2")
    assert await rows(db) == [("r1", "claimed", None), ("r2", "claimed", "r1")]  # r3 was not kept
    async with db.transaction() as s:
        assert [p.release.id for p in await ledger.pending_releases(s, 1)] == ["r3"]


async def test_two_processes_claiming_the_same_release_one_wins(db, guild):
    other = await open_database(db.engine.url.render_as_string(hide_password=False), migrate=False)

    async def claim(database: Database, owner: str) -> bool:
        try:
            async with database.transaction() as s:
                await ledger.claim(s, 1, 100, [("r1", None)], now=NOW, run_id=None, owner=owner)
        except LedgerConflict:
            return False
        return True

    try:
        results = await asyncio.gather(*(claim(db if i % 2 else other, f"p{i}") for i in range(6)))
    finally:
        await other.close()
    assert sum(results) == 1 and len(await rows(db)) == 1


async def test_confirm_counts_the_claims_it_confirmed_and_unclaim_leaves_sent_rows(db, guild):
    async with db.transaction() as s:
        await ledger.claim(s, 1, 100, [("r1", None), ("r2", None)], now=NOW, run_id=None, owner=None)
    async with db.transaction() as s:
        assert await ledger.unclaim(s, 1, ["r2"]) == 1  # settled elsewhere meanwhile
    async with db.transaction() as s:
        assert await ledger.confirm(s, 1, ["r1", "r2"], message_id=9, now=NOW) == 1
    async with db.transaction() as s:
        assert await ledger.unclaim(s, 1, ["r1"]) == 0  # sent: not a claim any more
        sent = await s.get(Delivery, 1)
        assert (sent.release_id, sent.status, sent.message_id, sent.sent_at) == ("r1", "sent", 9, NOW)
        assert await ledger.unconfirmed_claims(s, 1) == []


async def test_guilds_with_claims_left_by_dead_processes(db, guild):
    await add_guild(db, 2, now=NOW)
    await add_guild(db, 3, now=NOW)
    async with db.transaction() as s:
        await ledger.claim(s, 1, 100, [("r1", None)], now=NOW, run_id=None, owner="live")
        await ledger.claim(s, 2, 100, [("r1", None)], now=NOW, run_id=None, owner="dead")
        await ledger.claim(s, 3, 100, [("r1", None)], now=NOW, run_id=None, owner=None)  # an older process's
    async with db.transaction() as s:
        assert await ledger.guilds_with_claims(s, live={"live"}) == [2, 3]
        assert await ledger.guilds_with_claims(s, live={"live"}, guild_ids=[1, 2]) == [2]
        assert await ledger.guilds_with_claims(s, live=None) == [1, 2, 3]  # a process alone: every claim


async def test_a_new_channel_problem_forgets_the_notice_and_a_post_clears_it(db, guild):
    async def take():
        async with db.transaction() as s:
            return await guilds.take_channel_notice(s, 1)

    async with db.transaction() as s:
        await guilds.set_channel_problem(s, 1, "Missing Access")
    assert await take() == (100, "Missing Access")
    async with db.transaction() as s:
        await guilds.set_channel_problem(s, 1, "Missing Access")  # the same problem again: not told again
    assert await take() is None
    async with db.transaction() as s:
        assert await guilds.clear_channel_problem(s, 1)
        assert not await guilds.clear_channel_problem(s, 1)
        settings = await guilds.delivery_settings(s, 1)
    assert settings is not None and settings.channel_problem is None
    async with db.transaction() as s:
        await guilds.set_channel_problem(s, 1, "Unknown Channel")
    assert await take() == (100, "Unknown Channel")
