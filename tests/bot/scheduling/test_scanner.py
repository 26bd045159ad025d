"""The due scan's lifecycle: ticks repeat, a failing scan does not stop the schedule (a database
that cannot be written is logged in one plain line), and shutdown lets a scan in progress finish instead of cutting a run in half."""

from __future__ import annotations

import asyncio
import sqlite3

from bot.scheduling.scanner import DueScanner


async def test_first_scan_runs_at_once_and_repeats():
    calls = []

    async def scan():
        calls.append(asyncio.get_running_loop().time())

    scanner = DueScanner(scan, 0.05)
    scanner.start()
    try:
        for _ in range(100):
            if len(calls) >= 3:
                break
            await asyncio.sleep(0.02)
    finally:
        await scanner.shutdown()
    assert len(calls) >= 3


async def test_a_failing_scan_does_not_stop_the_schedule():
    calls = 0

    async def scan():
        nonlocal calls
        calls += 1
        raise RuntimeError("database briefly unavailable")

    scanner = DueScanner(scan, 0.05)
    scanner.start()
    try:
        for _ in range(100):
            if calls >= 2:
                break
            await asyncio.sleep(0.02)
    finally:
        await scanner.shutdown()
    assert calls >= 2


async def test_a_scan_failing_on_a_full_disk_is_logged_plainly_in_one_line(caplog):
    async def scan():
        error = RuntimeError("the lease could not be taken")
        error.__cause__ = sqlite3.OperationalError("database or disk is full")
        raise error

    scanner = DueScanner(scan, 60)
    await scanner._tick()
    lines = [r for r in caplog.records if r.name == "bot.scheduling.scanner"]
    assert [r.levelname for r in lines] == ["ERROR"] and lines[0].exc_info is None
    assert "the database cannot be written: its disk is full" in lines[0].getMessage()


async def test_shutdown_lets_a_running_scan_finish():
    started, finished = asyncio.Event(), asyncio.Event()

    async def scan():
        started.set()
        await asyncio.sleep(0.2)
        finished.set()

    scanner = DueScanner(scan, 60)
    scanner.start()
    await asyncio.wait_for(started.wait(), 5)
    await scanner.shutdown(grace_seconds=5)
    assert finished.is_set()


async def test_shutdown_cancels_a_scan_that_outlives_the_grace_period():
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def scan():
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    scanner = DueScanner(scan, 60)
    scanner.start()
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(scanner.shutdown(grace_seconds=0.1), 5)
    assert cancelled.is_set()
