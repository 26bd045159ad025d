"""``storage.musicdata``: the shared request slot, the day claim, artist mappings, release groups (first and
last seen, date changes, disappearance), barcodes, matches, misses and the signal's counts — on the run's
backend (SQLite or PostgreSQL)."""

from __future__ import annotations

import datetime as dt

from storage import musicdata
from storage.db import Database
from storage.models import ArtistRelease, Release
from storage.musicdata import ReleaseGroupRow
from tests.bot.helpers import add_guild, follow

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
MB = "00000000-0000-4000-8000-0000000000"  # + two digits: placeholder MBIDs


def mbid(n: int) -> str:
    return f"{MB}{n:02d}"


def group(
    n: int, *, date: dt.date, spotify_ids: tuple[str, ...] = ("artA",), title: str | None = None
) -> ReleaseGroupRow:
    return ReleaseGroupRow(
        mbid=mbid(n),
        title=title or f"Group {n}",
        artist_credit_name="Artist A",
        artist_mbids=(mbid(90),),
        primary_type="Album",
        secondary_types=(),
        release_date=date,
        release_mbid=mbid(50 + n),
        caa_id=None,
        caa_release_mbid=None,
        spotify_ids=spotify_ids,
    )


WINDOW = (TODAY - dt.timedelta(days=30), TODAY + dt.timedelta(days=30))


async def store(db: Database, rows, *, listed=None, now=NOW, window=WINDOW):
    async with db.transaction() as session:
        return await musicdata.store_release_groups(
            session, rows, listed={r.mbid for r in rows} if listed is None else listed, window=window, now=now
        )


async def stored(db: Database, n: int):
    async with db.transaction() as session:
        row = await musicdata.release_group(session, mbid(n))
    assert row is not None
    return row


# --- the shared request slot -------------------------------------------------------------------


async def take(db: Database, now: float) -> float:
    async with db.transaction() as session:
        return await musicdata.take_rate_slot(session, "mb", now=now, interval=1.0)


async def test_slots_taken_at_once_are_one_interval_apart_and_an_idle_limit_starts_now(db):
    t = NOW.timestamp()
    assert [await take(db, t) for _ in range(3)] == [t, t + 1, t + 2]
    assert await take(db, t + 0.5) == t + 3  # still queued behind the others
    assert await take(db, t + 100.25) == t + 100.25  # idle since: the slot is now


async def test_holding_off_pushes_every_later_slot_but_never_pulls_one_earlier(db):
    t = NOW.timestamp()
    await take(db, t)
    async with db.transaction() as session:
        await musicdata.hold_off_rate_slot(session, "mb", until=t + 8)
    assert await take(db, t + 1) == t + 8
    async with db.transaction() as session:
        await musicdata.hold_off_rate_slot(session, "mb", until=t + 2)  # earlier than the next free slot
    assert await take(db, t + 1) == t + 9
    async with db.transaction() as session:
        await musicdata.hold_off_rate_slot(session, "other", until=t + 5)  # a limit not used yet
    async with db.transaction() as session:
        assert await musicdata.take_rate_slot(session, "other", now=t, interval=2.0) == t + 5


# --- the day claim -----------------------------------------------------------------------------


async def record_day(db: Database, day: str) -> bool:
    async with db.transaction() as session:
        return await musicdata.record_daily_fetch(session, day)


async def test_a_day_is_recorded_once_and_never_moves_back(db):
    assert await record_day(db, "2026-11-20") is True
    assert await record_day(db, "2026-11-20") is False
    assert await record_day(db, "2026-11-19") is False  # an earlier day never comes back
    assert await record_day(db, "2026-11-21") is True
    async with db.transaction() as session:
        assert await musicdata.daily_fetch_day(session) == "2026-11-21"


# --- artist mapping ----------------------------------------------------------------------------


def retry_after(unmapped_attempts: int) -> dt.timedelta:
    return dt.timedelta(days=30 if unmapped_attempts == 0 else unmapped_attempts)


async def to_map(db: Database, now: dt.datetime, limit: int = 100) -> list[str]:
    async with db.transaction() as session:
        return await musicdata.artists_to_map(session, now=now, limit=limit)


async def record(db: Database, found: dict[str, tuple[str, ...]], now: dt.datetime) -> None:
    async with db.transaction() as session:
        await musicdata.record_mappings(session, found, now=now, retry_after=retry_after)


async def test_followed_artists_are_mapped_when_due_never_tried_first(db):
    await add_guild(db, 1, now=NOW)
    for artist in ("artC", "artA", "artB"):
        await follow(db, 1, artist, now=NOW)
    assert await to_map(db, NOW) == ["artA", "artB", "artC"]
    assert await to_map(db, NOW, limit=2) == ["artA", "artB"]
    await record(db, {"artA": (mbid(1),), "artB": ()}, NOW)
    assert await to_map(db, NOW) == ["artC"]  # tried ones wait for their next attempt
    later = NOW + dt.timedelta(days=1)
    assert await to_map(db, later) == ["artC", "artB"]  # never tried first, then the overdue
    assert await to_map(db, NOW + dt.timedelta(days=30)) == ["artC", "artB", "artA"]


async def test_an_answer_replaces_the_links_and_counts_the_unmapped_attempts(db):
    await add_guild(db, 1, now=NOW)
    await follow(db, 1, "artA", now=NOW)
    await record(db, {"artA": ()}, NOW)
    await record(db, {"artA": ()}, NOW + dt.timedelta(days=1))
    async with db.transaction() as session:
        state = (await musicdata.mapping_states(session, ["artA", "artZ"]))["artA"]
        assert "artZ" not in await musicdata.mapping_states(session, ["artZ"])
    assert state.mbids == () and state.unmapped_attempts == 2
    assert state.next_attempt_at == NOW + dt.timedelta(days=3)  # the last answer + retry_after(2)
    await record(db, {"artA": (mbid(2), mbid(1))}, NOW + dt.timedelta(days=3))
    async with db.transaction() as session:
        state = (await musicdata.mapping_states(session, ["artA"]))["artA"]
        assert await musicdata.followed_artists_by_mbid(session) == {mbid(1): ["artA"], mbid(2): ["artA"]}
    assert state.mbids == (mbid(1), mbid(2)) and state.unmapped_attempts == 0  # both MBIDs kept
    assert state.next_attempt_at == NOW + dt.timedelta(days=33)
    await record(db, {"artA": (mbid(2),)}, NOW + dt.timedelta(days=33))
    async with db.transaction() as session:
        assert await musicdata.followed_artists_by_mbid(session) == {mbid(2): ["artA"]}


async def test_only_followed_artists_count_as_mapped_by_mbid(db):
    await add_guild(db, 1, now=NOW)
    await follow(db, 1, "artA", now=NOW)
    await record(db, {"artA": (mbid(1),), "gone": (mbid(1),)}, NOW)  # "gone" is followed by nobody
    async with db.transaction() as session:
        assert await musicdata.followed_artists_by_mbid(session) == {mbid(1): ["artA"]}


# --- release groups ----------------------------------------------------------------------------


async def test_a_release_group_is_first_seen_once_and_last_seen_at_every_listing(db):
    result = await store(db, [group(1, date=TODAY + dt.timedelta(days=14))])
    assert result.new == [mbid(1)] and result.date_changed == [] and result.gone == []
    later = NOW + dt.timedelta(days=1)
    result = await store(db, [group(1, date=TODAY + dt.timedelta(days=14), title="Group 1 (retitled)")], now=later)
    assert result.new == [] and result.date_changed == []
    row = await stored(db, 1)
    assert (row.first_seen_at, row.last_seen_at) == (NOW, later)
    assert row.title == "Group 1 (retitled)" and row.release_date == TODAY + dt.timedelta(days=14)
    assert row.date_changes == [] and row.gone_at is None


async def test_a_date_change_is_kept_with_the_date_it_replaced(db):
    first = TODAY + dt.timedelta(days=7)
    await store(db, [group(1, date=first)])
    moved = NOW + dt.timedelta(days=2)
    result = await store(db, [group(1, date=first + dt.timedelta(days=14))], now=moved)
    assert result.date_changed == [mbid(1)]
    result = await store(db, [group(1, date=first + dt.timedelta(days=21))], now=moved + dt.timedelta(days=1))
    row = await stored(db, 1)
    assert row.release_date == first + dt.timedelta(days=21)
    assert row.date_changes == [
        {"from": "2026-11-27", "to": "2026-12-11", "at": moved.isoformat()},
        {"from": "2026-12-11", "to": "2026-12-18", "at": (moved + dt.timedelta(days=1)).isoformat()},
    ]


async def test_a_group_missing_from_a_listing_that_covers_its_date_is_gone_and_may_come_back(db):
    await store(db, [group(1, date=TODAY + dt.timedelta(days=3)), group(2, date=TODAY - dt.timedelta(days=29))])
    later = NOW + dt.timedelta(days=2)
    window = (later.date() - dt.timedelta(days=30), later.date() + dt.timedelta(days=30))
    result = await store(db, [], listed={mbid(7)}, now=later, window=window)  # group 2 is now outside the window
    assert result.gone == [mbid(1)]
    assert (await stored(db, 1)).gone_at == later and (await stored(db, 2)).gone_at is None
    result = await store(db, [], listed=set(), now=later + dt.timedelta(days=1), window=window)
    assert result.gone == []  # gone once, not again
    back = NOW + dt.timedelta(days=4)
    result = await store(db, [group(1, date=TODAY + dt.timedelta(days=3))], now=back, window=window)
    assert result.returned == [mbid(1)] and result.new == []
    assert (await stored(db, 1)).gone_at is None


async def test_a_group_listed_but_not_kept_is_not_gone(db):
    """A group whose artist was unfollowed is listed but not kept: the listing still has it, so it is not gone."""
    await store(db, [group(1, date=TODAY)])
    assert (await store(db, [], listed={mbid(1)})).gone == []


async def test_the_followed_artists_of_a_group_are_those_of_its_latest_listing(db):
    await store(db, [group(1, date=TODAY, spotify_ids=("artA", "artB"))])
    await store(db, [group(1, date=TODAY, spotify_ids=("artB",))])
    async with db.transaction() as session:
        (pending,) = await musicdata.unmatched_release_groups(session, since=TODAY)
    assert pending.spotify_ids == ("artB",)


# --- barcodes, matches, misses -----------------------------------------------------------------


async def add_release(db: Database, release_id: str, artist_id: str, *, upc: str | None = None) -> None:
    async with db.sessions() as session:
        session.add(
            Release(
                id=release_id,
                name=release_id,
                album_type="album",
                artists=[{"id": artist_id, "name": artist_id}],
                release_date=TODAY.isoformat(),
                release_date_precision="day",
                first_seen_at=NOW,
                labels=[],
                upc=upc,
            )
        )
        await session.flush()
        session.add(
            ArtistRelease(
                artist_id=artist_id, release_id=release_id, album_group="album", first_seen_at=NOW, baseline=False
            )
        )
        await session.commit()


async def test_barcodes_are_stored_once_each_and_a_match_is_recorded_once(db):
    await add_guild(db, 1, now=NOW)
    await follow(db, 1, "artA", now=NOW)
    await add_release(db, "sp1", "artA")
    await store(db, [group(1, date=TODAY), group(2, date=TODAY)])
    async with db.transaction() as session:
        await musicdata.store_barcodes(session, mbid(1), ["0123", "0123", "456"], now=NOW)
    row = await stored(db, 1)
    assert row.barcodes == ["0123", "456"] and row.barcodes_checked_at == NOW
    async with db.transaction() as session:
        assert await musicdata.record_match(session, mbid(1), "sp1", "upc", now=NOW)
        assert not await musicdata.record_match(session, mbid(1), "sp1", "title", now=NOW)
        assert await musicdata.matched_release_ids(session) == {"sp1"}
        assert [g.mbid for g in await musicdata.unmatched_release_groups(session, since=TODAY)] == [mbid(2)]
    row = await stored(db, 1)
    assert (row.spotify_release_id, row.match_method, row.matched_at) == ("sp1", "upc", NOW)


async def test_misses_are_unmatched_groups_dated_before_the_limit_not_gone_once_each(db):
    await store(
        db,
        [
            group(1, date=TODAY - dt.timedelta(days=20)),
            group(2, date=TODAY - dt.timedelta(days=5)),
            group(3, date=TODAY - dt.timedelta(days=21)),
        ],
    )
    await store(db, [], listed={mbid(1), mbid(2)})  # group 3 disappeared: gone, not missed
    async with db.transaction() as session:
        before = TODAY - dt.timedelta(days=14)
        assert await musicdata.record_misses(session, dated_before=before, now=NOW) == [mbid(1)]
        assert await musicdata.record_misses(session, dated_before=before, now=NOW) == []
    assert (await stored(db, 1)).missed_at == NOW


async def test_announced_artists_are_those_with_an_unmatched_group_not_gone_dated_since(db):
    await add_guild(db, 1, now=NOW)
    await follow(db, 1, "artA", now=NOW)
    await add_release(db, "sp1", "artA")
    await store(
        db,
        [
            group(1, date=TODAY + dt.timedelta(days=10), spotify_ids=("artA",)),  # announced ahead
            group(2, date=TODAY - dt.timedelta(days=3), spotify_ids=("artB",)),  # just out, not on Spotify yet
            group(3, date=TODAY - dt.timedelta(days=20), spotify_ids=("artC",)),  # too old to count
            group(4, date=TODAY, spotify_ids=("artD",)),  # matched below
            group(5, date=TODAY + dt.timedelta(days=5), spotify_ids=("artE",)),  # gone below
        ],
    )
    await store(db, [], listed={mbid(n) for n in (1, 2, 3, 4)})
    async with db.transaction() as session:
        await musicdata.record_match(session, mbid(4), "sp1", "upc", now=NOW)
        found = await musicdata.announced_artists(
            session, ["artA", "artB", "artC", "artD", "artE", "artZ"], since=TODAY - dt.timedelta(days=7)
        )
        assert found == {"artA", "artB"}
        assert await musicdata.announced_artists(session, ["artB"], since=TODAY) == set()


# --- the counts --------------------------------------------------------------------------------


async def test_the_counts_say_how_the_signal_did(db):
    await add_guild(db, 1, now=NOW)
    for artist in ("artA", "artB", "artC", "artD"):
        await follow(db, 1, artist, now=NOW)
    await record(db, {"artA": (mbid(90),), "artB": ()}, NOW)  # artC, artD: not tried
    await add_release(db, "early", "artA")  # first seen NOW (the 20th)
    await add_release(db, "later", "artA")
    everything = {mbid(n) for n in range(1, 7)}
    await store(
        db,
        [group(1, date=TODAY), group(2, date=TODAY - dt.timedelta(days=3))],
        listed=everything,
        now=NOW - dt.timedelta(days=40),
    )
    await store(
        db,
        [group(3, date=TODAY + dt.timedelta(days=5)), group(4, date=TODAY - dt.timedelta(days=20))],
        listed=everything,
    )
    await store(
        db,
        [group(5, date=TODAY - dt.timedelta(days=25)), group(6, date=TODAY + dt.timedelta(days=1))],
        listed=everything,
    )
    await store(db, [group(3, date=TODAY + dt.timedelta(days=9))], listed=everything - {mbid(6)})  # 3 postponed, 6 gone
    async with db.transaction() as session:
        # Groups 1 and 2 were listed 40 days before their dates: announced ahead.
        await musicdata.record_match(session, mbid(1), "early", "upc", now=NOW)  # seen on its date: not late
        await musicdata.record_match(session, mbid(2), "later", "title", now=NOW)  # seen 3 days after its date: late
        await musicdata.record_misses(session, dated_before=TODAY - dt.timedelta(days=14), now=NOW)  # 4 and 5
        counts = await musicdata.signal_counts(session, today=TODAY)
    assert counts == musicdata.SignalCounts(
        artists_followed=4,
        artists_mapped=1,
        artists_unmapped=1,
        artists_untried=2,
        release_groups=6,
        upcoming=1,  # group 3 (postponed, still ahead)
        matched=2,
        matched_by_upc=1,
        matched_by_title=1,
        announced_ahead=2,
        late=1,
        missed=2,
        gone=1,
        postponed=1,
    )


async def test_the_last_daily_fetch_day_is_none_until_recorded(db):
    async with db.transaction() as session:
        assert await musicdata.daily_fetch_day(session) is None
    await record_day(db, "2026-11-20")
    async with db.transaction() as session:
        assert await musicdata.daily_fetch_day(session) == "2026-11-20"
