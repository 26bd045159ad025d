"""storage.runs: the run record as the runner writes it."""

from __future__ import annotations

import datetime as dt

from storage import runs
from storage.models import Run
from storage.runs import RunOutcome

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 20, 12, tzinfo=UTC)


async def start(db, owner: str | None = None, trigger: str = "schedule") -> int:
    async with db.transaction() as s:
        return await runs.start_run(s, trigger=trigger, guild_id=None, started_at=NOW, artists_due=3, owner=owner)


async def test_a_run_is_recorded_as_it_starts_and_ends(db):
    run_id = await start(db)
    outcome = RunOutcome(
        status="partial",
        finished_at=NOW + dt.timedelta(minutes=1),
        artists_checked=2,
        failed_artists=["A"],
        spotify_requests=5,
        releases_found=1,
        releases_posted=2,
        error="guild 1: send failed",
        metrics={"requests": 5},
    )
    async with db.transaction() as s:
        assert await runs.count_finished(s, "schedule") == 0
        await runs.finish_run(s, run_id, outcome)
    async with db.transaction() as s:
        run = await s.get(Run, run_id)
        assert (run.status, run.artists_due, run.artists_checked, run.artists_failed, run.failed_artists) == (
            "partial",
            3,
            2,
            1,
            ["A"],
        )
        assert (run.spotify_requests, run.releases_found, run.releases_posted, run.metrics) == (
            5,
            1,
            2,
            {"requests": 5},
        )
        assert run.finished_at == outcome.finished_at and run.error == "guild 1: send failed"
        assert await runs.count_finished(s, "schedule") == 1 and await runs.count_finished(s, "refresh") == 0
        assert [r.id for r in await runs.all_runs(s)] == [run_id]


async def test_only_a_running_run_is_marked_failed(db):
    run_id = await start(db)
    async with db.transaction() as s:
        assert await runs.mark_failed(s, run_id, error="x" * 3000, now=NOW)
        assert not await runs.mark_failed(s, run_id, error="again", now=NOW)
    async with db.transaction() as s:
        run = await s.get(Run, run_id)
        assert run.status == "failed" and run.error == "x" * runs.ERROR_LIMIT and run.finished_at == NOW


async def test_only_dead_processes_runs_are_marked_interrupted(db):
    live, dead, alone = await start(db, "live"), await start(db, "dead"), await start(db, None)
    async with db.transaction() as s:
        assert await runs.mark_interrupted(s, {"live"}, now=NOW, error="interrupted") == [dead, alone]
        assert await runs.mark_interrupted(s, {"live"}, now=NOW, error="interrupted") == []
    async with db.transaction() as s:
        assert (await s.get(Run, live)).status == "running"
        assert (await s.get(Run, dead)).error == "interrupted"
        assert await runs.mark_interrupted(s, set(), now=NOW, error="interrupted") == [live]  # a process alone
