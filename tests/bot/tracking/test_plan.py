"""Planning under a budget: carry-over, the starvation bound, the UTC day, economy mode, cooldown priority.

The tracker talks to the Spotify emulator through the real client (``tests/bot/helpers.py``)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from bot.tracking import Tracker
from bot.tracking.plan import ArtistRow, recheck_period_runs, recheck_picks, starvation_bound
from fakes.spotify_emulator import SpotifyEmulator
from storage import spotify_state
from storage.models import Artist
from tests.bot.helpers import add_guild, emulator_client, follow

UTC = dt.UTC


@pytest.fixture
async def emu():
    async with SpotifyEmulator() as emulator:
        yield emulator


@pytest.fixture
async def spotify(emu, clock):
    client = emulator_client(emu, clock)
    yield client
    await client.close()


async def setup(db, emu, spotify, clock, n: int, *, active: int = 0, singles: int = 3) -> list[str]:
    """``n`` followed, baselined artists; the first ``active`` released recently, the rest years ago."""
    await add_guild(db, 1, now=clock())
    artists = []
    for i in range(n):
        a = emu.add_artist(f"A{i}")
        for k in range(singles):
            date = f"2026-10-{k + 1:02d}" if i < active else f"{2019 + k // 12}-{k % 12 + 1:02d}-01"
            emu.add_album([a], f"A{i} s{k}", album_type="single", release_date=date)
        await follow(db, 1, a, f"A{i}", now=clock())
        artists.append(a)
    tracker = Tracker(db, spotify, clock=clock)
    for a in artists:
        await tracker.baseline(a)
    return artists


async def rows(db, ids):
    async with db.sessions() as s:
        return {a.id: a for a in (await s.scalars(select(Artist).where(Artist.id.in_(ids)))).all()}


async def test_budget_carries_the_rest_over_in_priority_order(db, emu, spotify, clock):
    artists = await setup(db, emu, spotify, clock, 6, active=2)
    tracker = Tracker(db, spotify, clock=clock, requests_per_run=3, reserve_share=0.25, concurrency=1)
    clock.advance(days=7)
    result = await tracker.track(artists)
    assert result.requests == 3 and result.budget == 3
    assert len(result.checked) == 3 and len(result.carried) == 3 and result.failed == {}
    assert set(artists[:2]) <= set(result.checked)  # recently active first (after the reserve's one)
    by_id = await rows(db, artists)
    assert all(by_id[a].runs_skipped == 1 for a in result.carried)
    assert all(by_id[a].runs_skipped == 0 for a in result.checked)
    clock.advance(days=7)
    again = await tracker.track(artists)
    # The reserve takes the longest unchecked (a carried one) first.
    assert again.checked and (set(again.checked) & set(result.carried))


async def test_no_artist_starves_within_the_documented_bound(db, emu, spotify, clock):
    n, budget, share = 10, 4, 0.25
    artists = await setup(db, emu, spotify, clock, n, active=3)
    tracker = Tracker(db, spotify, clock=clock, requests_per_run=budget, reserve_share=share, concurrency=1)
    bound = starvation_bound(n, budget, share)
    assert bound == 10  # ceil(10 / max(1, floor(ceil(0.25·4) / 1)))
    last_checked = dict.fromkeys(artists, 0)
    worst = 0
    for run in range(1, 3 * bound + 1):
        clock.advance(days=7)
        result = await tracker.track(artists)
        assert result.requests <= budget
        for a in result.checked:
            worst = max(worst, run - last_checked[a])
            last_checked[a] = run
        assert all(run - last_checked[a] < bound for a in artists)
    assert worst <= bound
    # The recently active ones are checked every run.
    assert all(last_checked[a] == 3 * bound for a in artists[:3])


async def test_day_budget_resets_at_the_utc_day_boundary(db, emu, spotify, clock):
    artists = await setup(db, emu, spotify, clock, 8)
    clock.now = dt.datetime(2026, 11, 27, 23, 0, tzinfo=UTC)
    tracker = Tracker(db, spotify, clock=clock, requests_per_day=5)
    first = await tracker.track(artists)
    assert first.requests == 5 and len(first.carried) == 3
    clock.advance(minutes=30)  # 23:30, same UTC day: nothing left
    second = await tracker.track(artists)
    assert second.requests == 0 and second.budget == 0 and len(second.carried) == 8 and second.failed == {}
    clock.advance(minutes=40)  # 00:10 the next day
    third = await tracker.track(artists)
    assert third.requests == 5 and third.budget == 5
    async with db.sessions() as s:
        assert await spotify_state.budget_used_today(s, "2026-11-28") == 5


async def test_baselines_count_towards_the_day(db, emu, spotify, clock):
    a = emu.add_artist("New")
    emu.add_album([a], "x", album_type="single", release_date="2026-11-20")
    await Tracker(db, spotify, clock=clock).baseline(a)
    async with db.sessions() as s:
        assert await spotify_state.budget_used_today(s, clock().date().isoformat()) == 4  # get_artist + 3 groups


async def test_economy_mode_checks_inactive_artists_every_kth_run(db, emu, spotify, clock):
    artists = await setup(db, emu, spotify, clock, 4, active=1)
    tracker = Tracker(db, spotify, clock=clock, economy=True, economy_inactive_days=365, economy_every=3)
    checks = dict.fromkeys(artists, 0)
    for _ in range(6):
        clock.advance(days=7)
        result = await tracker.track(artists)
        for a in result.checked:
            checks[a] += 1
        assert result.carried == []
    assert checks[artists[0]] == 6
    assert all(checks[a] == 2 for a in artists[1:])
    # Off for refresh/check: economy=False checks everyone.
    result = await tracker.track(artists, economy=False)
    assert len(result.checked) == 4


async def test_cooldown_mid_run_checks_by_priority_and_carries_the_rest(db, emu, spotify, clock):
    artists = await setup(db, emu, spotify, clock, 5, active=0)
    # Make the last two the most recently active.
    async with db.sessions() as s:
        for i, a in enumerate(artists):
            (await s.get(Artist, a)).last_release_at = dt.datetime(2020 + i, 1, 1, tzinfo=UTC)
        await s.commit()
    tracker = Tracker(db, spotify, clock=clock, concurrency=1)
    until = clock() + dt.timedelta(hours=24)
    # Two requests pass (the two most recently active), the third is a quota 429.
    emu.fail_next(
        status=429, retry_after=(until - clock()).total_seconds(), reason="QUOTA_EXCEEDED", path_contains=artists[2]
    )
    result = await tracker.track(artists)
    assert result.checked == [artists[3], artists[4]]  # newest activity first
    assert result.cooldown is not None and result.cooldown.until == until
    assert sorted(result.carried) == sorted(artists[:3])
    by_id = await rows(db, artists)
    assert [by_id[a].runs_skipped for a in artists] == [1, 1, 1, 0, 0]
    async with db.sessions() as s:
        assert (await spotify_state.get_cooldown(s))[0] == until


def _row(artist_id: str, last_whole: dt.datetime) -> ArtistRow:
    return ArtistRow(artist_id, last_whole, last_whole, None, 0, {}, exact_checked_at=last_whole)


def test_recheck_reads_every_artist_whole_within_the_bound_even_when_runs_cover_other_artists():
    """Issue 7: every artist is re-read within ceil(1/share) weekly runs, whatever the runs' artist sets."""
    share = 0.125
    start = dt.datetime(2026, 1, 2, 12, tzinfo=dt.UTC)
    last = {f"a{i:03d}": start for i in range(37)}
    per_run = []
    for week in range(1, 40):
        now = start + dt.timedelta(weeks=week)
        # Two weekly slots (guilds with other days) see overlapping parts; new follows join.
        pool = [a for i, a in enumerate(sorted(last)) if (i + week) % 3 != 0]
        if week % 5 == 0:
            last[f"n{week:03d}"] = now
        picks = recheck_picks([_row(a, last[a]) for a in pool], now, share)
        per_run.append(len(picks))
        for a in picks:
            last[a] = now
        # After each run, no artist of that run went 8 weekly runs without a whole read.
        assert all(now - last[a] < dt.timedelta(weeks=recheck_period_runs(share)) for a in pool)
    assert recheck_period_runs(share) == 8
    assert max(per_run[10:]) <= 12  # spread: about share × the run's artists, never all at once
    assert recheck_picks([_row("x", start)], start + dt.timedelta(weeks=7), share) == []
    assert recheck_picks([_row("x", start)], start + dt.timedelta(weeks=8), share) == ["x"]
    assert recheck_picks([_row("x", start)], start + dt.timedelta(weeks=8), 0.0) == []


def test_recheck_takes_the_share_longest_unread():
    start = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    rows = [_row(f"a{i}", start + dt.timedelta(hours=i)) for i in range(16)]
    assert recheck_picks(rows, start + dt.timedelta(days=1), 0.25) == ["a0", "a1", "a2", "a3"]
