"""Planning under a budget: carry-over, the starvation bound, the UTC day, economy mode, cooldown priority.

The tracker talks to the Spotify emulator through the real client (``tests/bot/helpers.py``)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from bot.tracking import Tracker
from bot.tracking.plan import ArtistRow, priority_order, recheck_period_runs, recheck_plan, starvation_bound
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
        picks = recheck_plan([_row(a, last[a]) for a in pool], now, share).picks
        per_run.append(len(picks))
        for a in picks:
            last[a] = now
        # After each run, no artist of that run went 8 weekly runs without a whole read.
        assert all(now - last[a] < dt.timedelta(weeks=recheck_period_runs(share)) for a in pool)
    assert recheck_period_runs(share) == 8
    assert max(per_run[10:]) <= 12  # spread: about share × the run's artists, never all at once
    assert recheck_plan([_row("x", start)], start + dt.timedelta(weeks=7), share).picks == []
    assert recheck_plan([_row("x", start)], start + dt.timedelta(weeks=8), share).picks == ["x"]
    assert recheck_plan([_row("x", start)], start + dt.timedelta(weeks=8), 0.0).picks == []


def test_recheck_takes_the_share_longest_unread():
    start = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    rows = [_row(f"a{i}", start + dt.timedelta(hours=i)) for i in range(16)]
    assert recheck_plan(rows, start + dt.timedelta(days=1), 0.25).picks == ["a0", "a1", "a2", "a3"]


# --- the re-check spread by pages (issue 13) ------------------------------------------------

WEEK = dt.timedelta(weeks=1)


def _state(total: int) -> dict:
    """A stored ``group_state`` whose album/single/compilation listing holds ``total`` items."""
    singles = total // 2
    counts = {"album": total - singles, "single": singles, "compilation": 0}
    return {"v": 2, "groups": ["album", "single", "compilation"], "counts": counts, "total": total}


def _catalogue() -> dict[str, int]:
    """Listing sizes: 4 huge artists (300–395 items: 29–39 pages beyond the probe), 300 small ones
    (11–40 items: 1–3 pages) and 60 that fit one page (no page beyond the probe)."""
    sizes = {f"huge{i}": 300 + 31 * i for i in range(4)}
    sizes |= {f"small{i:03d}": 11 + (i * 7) % 30 for i in range(300)}
    sizes |= {f"tiny{i:02d}": 1 + i % 10 for i in range(60)}
    return sizes


class _Rotation:
    """Weekly runs over shifting pools: each artist's last whole read and last check, as the store keeps them."""

    def __init__(self, sizes: dict[str, int], start: dt.datetime) -> None:
        self.sizes = dict(sizes)
        self.whole = dict.fromkeys(sizes, start)
        self.checked = dict.fromkeys(sizes, start)

    def join(self, artist: str, size: int, now: dt.datetime) -> None:
        """A new follow: its baseline reads it whole now."""
        self.sizes[artist] = size
        self.whole[artist] = self.checked[artist] = now

    def rows(self, pool: list[str]) -> list[ArtistRow]:
        return [
            ArtistRow(
                a,
                self.whole[a] if a.startswith("new") else dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
                self.checked[a],
                None,
                0,
                _state(self.sizes[a]),
                exact_checked_at=self.whole[a],
            )
            for a in pool
        ]

    def run(self, pool: list[str], now: dt.datetime, share: float):
        plan = recheck_plan(self.rows(pool), now, share)
        for a in plan.picks:
            self.whole[a] = now
        for a in pool:
            self.checked[a] = now
        return plan


def _pages(sizes: dict[str, int], artists) -> int:
    return sum(max(1, -(-sizes[a] // 10)) - 1 for a in artists)


def test_recheck_pages_are_the_whole_read_beyond_the_probe():
    from bot.tracking.plan import recheck_pages

    assert recheck_pages(_state(10)) == 0  # one page: the re-check is the probe
    assert recheck_pages(_state(11)) == 1 and recheck_pages(_state(395)) == 39
    with_appears = {"groups": ["album", "single", "appears_on"], "counts": {"album": 3, "single": 4, "appears_on": 25}}
    assert recheck_pages(with_appears) == 1 + 3 - 1  # own groups one page, appears_on three
    assert recheck_pages({}) == 0 and recheck_pages(None) == 0


def test_recheck_pages_stay_within_5_percent_of_the_even_share_every_run():
    """A few huge catalogues and many small ones: each run's re-check pages stay within 5 % of the even share
    W/P (W: every listing's pages beyond the probe, P = 8 runs), from the first run after the baselines on;
    a rotation by count of artists swings far more on the same catalogue; every artist is read whole within
    the bound."""
    share, sizes = 0.125, _catalogue()
    start = dt.datetime(2026, 1, 2, 9, tzinfo=dt.UTC)
    rotation = _Rotation(sizes, start)
    cycle = _pages(sizes, sizes)
    even = cycle / 8
    by_count = []
    for week in range(1, 41):
        now = start + week * WEEK
        pool = sorted(sizes)
        old = sorted(pool, key=lambda a: (rotation.whole[a], a))[: len(pool) // 8]
        by_count.append(_pages(sizes, old))
        plan = rotation.run(pool, now, share)
        assert plan.cycle_pages == cycle and plan.even_share == pytest.approx(even)
        assert plan.planned_pages == _pages(sizes, plan.picks)
        assert abs(plan.planned_pages - even) <= 0.05 * even, (week, plan)
        assert plan.fair_share == pytest.approx(even)  # no listing above the even share, none overdue
        assert all(now - rotation.whole[a] < 8 * WEEK for a in pool)
    # The old rule (floor(share × N) read whole longest ago) on the first cycle: far from even.
    assert max(by_count[:8]) > 1.15 * even or min(by_count[:8]) < 0.85 * even


def test_recheck_keeps_its_bound_over_40_weeks_with_shifting_run_pools():
    """Pools shift (two weekly slots over overlapping thirds of the artists, new follows, unfollows): every artist
    of a run was read whole within ceil(1/share) = 8 weekly runs, and a run reads more than its target only
    when the listings due now need it."""
    share, sizes = 0.125, _catalogue()
    start = dt.datetime(2026, 1, 2, 9, tzinfo=dt.UTC)
    rotation = _Rotation(sizes, start)
    followed = sorted(sizes)
    over_even = []
    for week in range(1, 41):
        now = start + week * WEEK
        if week % 5 == 0:
            new = f"new{week:02d}"
            rotation.join(new, 150 + week, now - dt.timedelta(days=3))
            followed.append(new)
        if week % 7 == 0:
            followed.remove(followed[week])  # an unfollow
        pool = [a for i, a in enumerate(followed) if (i + week) % 3 != 0]
        plan = rotation.run(pool, now, share)
        assert all(now - rotation.whole[a] < 8 * WEEK for a in pool), week
        assert plan.planned_pages <= max(plan.target, plan.forced_pages), (week, plan)
        assert plan.forced_pages <= plan.planned_pages
        over_even.append(plan.planned_pages / plan.even_share)
    assert max(over_even[8:]) < 1.5  # artists away a week come back due: a surge, never a pile-up


async def test_the_tracker_reads_whole_the_planned_listings_and_counts_their_pages(db, emu, spotify, clock):
    """Through the real client: each weekly run reads whole the listings the plan picked, at the pages it
    planned (probe replaced), the rest is one probe each; every artist is read whole within 8 runs."""
    await add_guild(db, 1, now=clock())
    artists = []
    for i, singles in enumerate([95, *[25] * 8, *[15] * 7]):  # 9, 2 and 1 pages beyond the probe
        a = emu.add_artist(f"R{i}")
        for k in range(singles):
            emu.add_album([a], f"R{i} s{k}", album_type="single", release_date=f"{2000 + k % 20}-01-01")
        await follow(db, 1, a, f"R{i}", now=clock())
        artists.append(a)
    tracker = Tracker(db, spotify, clock=clock, recheck_share=0.125)
    await tracker.track(artists)  # the baselines
    whole = dict.fromkeys(artists, 0)
    for week in range(1, 17):
        clock.advance(days=7)
        result = await tracker.track(artists)
        plan = result.recheck
        assert plan.cycle_pages == 9 + 8 * 2 + 7 and plan.even_share == pytest.approx(32 / 8)
        assert set(result.rechecked) == set(plan.picks)
        assert result.recheck_requests == plan.planned_pages
        assert result.requests == len(artists) + plan.planned_pages and result.new_releases == []
        assert plan.planned_pages <= max(plan.target, plan.forced_pages)
        for a in plan.picks:
            whole[a] = week
        assert all(week - whole[a] < 8 for a in artists)
        if plan.largest_pages == 9:  # the big listing is read alone in its run: more than S, never piled up
            assert plan.planned_pages == 9 and plan.fair_share == 9
        else:
            assert plan.planned_pages == 4


async def test_every_probe_blind_spot_is_found_within_the_bound_when_the_recheck_goes_by_pages(db, emu, spotify, clock):
    """Recall (docs/tracking.md): listings of 3 to 12 pages, each with a release the probe cannot see (an album
    leaves and a new one arrives in the same week: total and window unchanged), hidden in weeks 1 to 4. The
    re-check now picks listings by pages, not by count, and still announces every hidden release, once, within
    ceil(1/share) = 8 weekly runs of its appearance."""
    await add_guild(db, 1, now=clock())
    artists = []
    for i, singles in enumerate([10, 30, 60, 100, 10, 30, 60, 100]):
        a = emu.add_artist(f"H{i}")
        for k in range(12):  # 12 albums: the probe's window starts at the last album
            emu.add_album([a], f"H{i} a{k}", release_date=f"{2000 + k}-01-01")
        for k in range(singles):
            emu.add_album([a], f"H{i} s{k}", album_type="single", release_date=f"{2010 + k % 10}-02-01")
        await follow(db, 1, a, f"H{i}", now=clock())
        artists.append(a)
    tracker = Tracker(db, spotify, clock=clock, recheck_share=0.125)
    await tracker.track(artists)  # the baselines
    hidden: dict[str, tuple[str, int]] = {}
    found: dict[str, int] = {}
    for week in range(1, 13):
        clock.advance(days=7)
        if week <= 4:
            for a in artists[2 * (week - 1) : 2 * week]:
                emu.remove_album(emu.artist_listing(a, ("album",))[3][1])
                hidden[a] = (emu.add_album([a], f"hidden {a}", release_date="2026-11-27"), week)
        result = await tracker.track(artists)
        for release in result.new_releases:
            assert release not in found  # announced once
            found[release] = week
    for release, appeared in hidden.values():
        assert release in found and found[release] - appeared < 8, (release, appeared, found)
    assert len(found) == len(hidden)


def test_priority_order_puts_announced_then_recent_releases_first():
    """The planner's hook: ids with an announced release first (in the same order among themselves), then our
    own data: newest release first, unknown activity last; ties: longest unchecked first, never checked first."""
    now = dt.datetime(2026, 11, 6, 9, tzinfo=UTC)
    day = dt.timedelta(days=1)

    def row(artist_id, released, checked):
        return ArtistRow(artist_id, now - 100 * day, checked, released, 0, {})

    rows = [
        row("old", now - 900 * day, now - 7 * day),
        row("unknown", None, None),
        row("recent", now - 2 * day, now - 7 * day),
        row("recent_never", now - 2 * day, None),
        row("month", now - 30 * day, now - 7 * day),
        row("ann_old", now - 2000 * day, now - 7 * day),
        row("ann_recent", now - 1 * day, now - 7 * day),
    ]
    assert priority_order(rows) == ["ann_recent", "recent_never", "recent", "month", "old", "ann_old", "unknown"]
    assert priority_order(rows, announced={"ann_old", "ann_recent", "gone"}) == [
        "ann_recent",
        "ann_old",
        "recent_never",
        "recent",
        "month",
        "old",
        "unknown",
    ]
    assert priority_order(rows, announced=["unknown"])[0] == "unknown"  # announced beats unknown activity


async def test_announced_artists_come_first_after_the_reserve(db, emu, spotify, clock):
    artists = await setup(db, emu, spotify, clock, 6, active=2)
    tracker = Tracker(db, spotify, clock=clock, requests_per_run=3, reserve_share=0.25, concurrency=1)
    clock.advance(days=7)
    reserve = min(artists)  # the reserve's one request: longest unchecked, ties by id
    quiet = max(a for a in artists[2:] if a != reserve)  # inactive for years, not the reserve's pick
    result = await tracker.track(artists, announced={quiet})
    # Then the announced artist, before the two recently active ones (same activity: by id).
    after = [a for a in [quiet, *sorted(artists[:2])] if a != reserve]
    assert set(result.checked) == {reserve, *after[:2]} and len(result.carried) == 3
    assert quiet in result.checked


async def test_announced_artists_never_starve_the_others(db, emu, spotify, clock):
    """Three artists announced in every run: the reserve still reaches every artist within the bound."""
    n, budget, share = 10, 4, 0.25
    artists = await setup(db, emu, spotify, clock, n, active=3)
    tracker = Tracker(db, spotify, clock=clock, requests_per_run=budget, reserve_share=share, concurrency=1)
    bound = starvation_bound(n, budget, share)
    announced = set(artists[-3:])
    last_checked = dict.fromkeys(artists, 0)
    for run in range(1, 3 * bound + 1):
        clock.advance(days=7)
        result = await tracker.track(artists, announced=announced)
        assert result.requests <= budget
        assert announced <= set(result.checked)  # announced: checked every run
        for a in result.checked:
            last_checked[a] = run
        assert all(run - last_checked[a] < bound for a in artists)
