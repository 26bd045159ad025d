"""``storage.release_day``: seeding the probes of today's release groups for ``release_day`` guilds, the
race-free claim of a probe slot (two engines: two processes), the k cap, and a probe's result — on the
run's backend (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from storage import guilds, musicdata, release_day
from storage.db import Database, open_database
from tests.bot.helpers import add_guild, follow
from tests.storage.test_musicdata import add_release, group, mbid, store

NOW = dt.datetime(2026, 11, 20, 5, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
FIRST = dt.datetime(2026, 11, 20, 5, 15, tzinfo=dt.UTC)
HOLD = NOW + dt.timedelta(minutes=30)


@pytest.fixture
async def other(db: Database):
    """A second engine on the same database: another process."""
    second = await open_database(db.engine.url.render_as_string(hide_password=False), migrate=False)
    try:
        yield second
    finally:
        await second.close()


async def release_day_guild(db: Database, guild_id: int, *artists: str, on: bool = True) -> None:
    await add_guild(db, guild_id, now=NOW - dt.timedelta(days=30))
    for a in artists:
        await follow(db, guild_id, a, now=NOW - dt.timedelta(days=30))
    async with db.transaction() as session:
        await guilds.set_release_day(session, guild_id, on)


async def seed(db: Database, day: dt.date = TODAY) -> list[str]:
    async with db.transaction() as session:
        return await release_day.seed_probes(session, day=day, first_probe_at=FIRST)


async def claim(db: Database, now: dt.datetime = FIRST, *, max_probes: int = 4, day: dt.date = TODAY):
    async with db.transaction() as session:
        return await release_day.claim_due_probes(
            session, day=day, now=now, max_probes=max_probes, hold_until=now + dt.timedelta(minutes=30)
        )


async def test_only_todays_unmatched_groups_of_artists_a_release_day_guild_follows_are_seeded(db):
    await release_day_guild(db, 1, "artA")
    await release_day_guild(db, 2, "artB", on=False)
    await store(
        db,
        [
            group(1, date=TODAY),  # artA, today: seeded
            group(2, date=TODAY, spotify_ids=("artB",)),  # only a weekly guild follows artB
            group(3, date=TODAY + dt.timedelta(days=1)),  # tomorrow
            group(4, date=TODAY),  # matched already
        ],
        now=NOW,
    )
    await add_release(db, "sp4", "artA")
    async with db.transaction() as session:
        assert await musicdata.record_match(session, mbid(4), "sp4", "title", now=NOW)
    assert await seed(db) == [mbid(1)]
    assert len(await claim(db)) == 1
    assert await seed(db) == [mbid(1)]  # again: the row is left as it is (its probe stays counted)
    async with db.transaction() as session:
        row = await release_day.probe_row(session, mbid(1), TODAY)
    assert row is not None and (row.probes, row.requests, row.last_probe_at) == (1, 0, FIRST)


async def test_a_due_slot_is_taken_once_and_counted(db):
    await release_day_guild(db, 1, "artA")
    await store(db, [group(1, date=TODAY)], now=NOW)
    await seed(db)
    assert await claim(db, FIRST - dt.timedelta(seconds=1)) == []  # not due yet
    [slot] = await claim(db, FIRST)
    assert (slot.mbid, slot.release_day, slot.probe) == (mbid(1), TODAY, 1)
    assert await claim(db, FIRST + dt.timedelta(minutes=29)) == []  # held by its taker
    [again] = await claim(db, FIRST + dt.timedelta(minutes=30))  # the taker died: it comes back
    assert again.probe == 2
    assert await claim(db, FIRST + dt.timedelta(hours=1), day=TODAY + dt.timedelta(days=1)) == []  # another day


async def test_at_most_k_probes_per_release_group_and_day(db):
    await release_day_guild(db, 1, "artA")
    await store(db, [group(1, date=TODAY)], now=NOW)
    await seed(db)
    made = []
    t = FIRST
    for _ in range(6):
        got = await claim(db, t, max_probes=3)
        made += [s.probe for s in got]
        for s in got:
            async with db.transaction() as session:
                await release_day.finish_probe(session, s.mbid, s.release_day, requests=2, next_probe_at=t)
        t += dt.timedelta(hours=1)
    assert made == [1, 2, 3]
    async with db.transaction() as session:
        row = await release_day.probe_row(session, mbid(1), TODAY)
    assert row is not None and (row.probes, row.requests) == (3, 6)


async def test_a_found_release_ends_the_probes(db):
    await release_day_guild(db, 1, "artA")
    await store(db, [group(1, date=TODAY)], now=NOW)
    await seed(db)
    [slot] = await claim(db)
    async with db.transaction() as session:
        await release_day.finish_probe(
            session, slot.mbid, TODAY, requests=1, next_probe_at=FIRST, found_release_id="rel1", found_at=FIRST
        )
    assert await claim(db, FIRST + dt.timedelta(hours=3)) == []
    async with db.transaction() as session:
        row = await release_day.probe_row(session, mbid(1), TODAY)
    assert row is not None and row.spotify_release_id == "rel1" and row.next_probe_at is None


async def test_a_held_slot_is_renewed_by_its_taker_until_another_process_took_it_again(db):
    await release_day_guild(db, 1, "artA", "artB")
    await store(db, [group(1, date=TODAY), group(2, date=TODAY, spotify_ids=("artB",))], now=NOW)
    await seed(db)
    first, second = await claim(db)  # both held until 05:45
    renewed_until = FIRST + dt.timedelta(minutes=50)
    async with db.transaction() as session:
        assert await release_day.extend_holds(session, [first], hold_until=renewed_until) == {(mbid(1), TODAY)}
    [again] = await claim(db, FIRST + dt.timedelta(minutes=30))  # only the slot not renewed comes back
    assert (again.mbid, again.probe) == (mbid(2), 2)

    later = renewed_until + dt.timedelta(minutes=30)
    async with db.transaction() as session:  # the first taker renews both: the one taken over is not its own
        assert await release_day.extend_holds(session, [first, second], hold_until=later) == {(mbid(1), TODAY)}
        row = await release_day.probe_row(session, mbid(2), TODAY)
    assert row is not None and row.probes == 2 and row.next_probe_at == FIRST + dt.timedelta(minutes=60)

    async with db.transaction() as session:  # found: nothing left to hold
        await release_day.finish_probe(
            session, mbid(1), TODAY, requests=1, next_probe_at=None, found_release_id="rel1", found_at=later
        )
    async with db.transaction() as session:
        assert await release_day.extend_holds(session, [first], hold_until=later) == set()


async def test_two_processes_claiming_at_once_never_take_one_slot_twice(db, other):
    await release_day_guild(db, 1, *[f"art{i}" for i in range(10)])
    await store(db, [group(i, date=TODAY, spotify_ids=(f"art{i}",)) for i in range(10)], now=NOW)
    await seed(db)
    rounds = await asyncio.gather(*(claim(db if i % 2 else other, FIRST) for i in range(8)))
    taken = [s.mbid for r in rounds for s in r]
    assert sorted(taken) == [mbid(i) for i in range(10)]  # every slot once, none twice
    assert all(s.probe == 1 for r in rounds for s in r)


async def test_targets_are_the_release_day_guilds_and_their_followed_artists_of_the_group(db):
    await release_day_guild(db, 1, "artA")
    await release_day_guild(db, 2, "artA", "artB", on=False)
    await release_day_guild(db, 3, "artB")
    await store(db, [group(1, date=TODAY, spotify_ids=("artA", "artB", "artC"))], now=NOW)
    async with db.transaction() as session:
        target = (await release_day.probe_targets(session, [mbid(1)]))[mbid(1)]
    assert (target.artist_ids, target.guild_ids) == (("artA", "artB"), (1, 3))
    assert (target.title, target.release_date, target.primary_type) == ("Group 1", TODAY, "Album")
