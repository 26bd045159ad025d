"""The due scan: one APScheduler interval job that runs every guild whose weekly run is due.

Due times live in the database (``guilds.next_due_at``), not in APScheduler's job
store, so a run missed while the bot was down is caught up exactly once at start-up
(the first scan fires immediately) and restarts never drop or repeat one.
Source: APScheduler 3.11 user guide, "Missed job executions and coalescing".
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.scheduling.runner import RunnerStopping
from storage.db import unwritable_reason

log = logging.getLogger(__name__)

JOB_ID = "release-bot-due-scan"
RELEASE_DAY_JOB_ID = "release-bot-release-day-scan"


class _SkippedTickFilter(logging.Filter):
    """Drop APScheduler's "maximum number of running instances" warning: with
    ``max_instances=1`` a tick that finds the previous scan still running is the
    intended outcome (a long run), not a problem worth a log line every interval."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances" not in record.getMessage()


logging.getLogger("apscheduler.scheduler").addFilter(_SkippedTickFilter())


class DueScanner:
    """Runs ``scan()`` every ``interval_seconds`` (seconds) on the running asyncio loop.

    ``scan`` is an async callable (normally ``Runner.run_due``; the release-day scan,
    ``ReleaseDayProber.scan``, under ``job_id`` :data:`RELEASE_DAY_JOB_ID`). The job uses
    ``coalesce=True`` and ``max_instances=1`` so a slow run is never doubled, and
    a scan that raises is logged and retried at the next tick (a database that cannot be written —
    disk full, read-only — in one line saying so, without a traceback).
    """

    def __init__(self, scan: Callable[[], Awaitable[object]], interval_seconds: float, *, job_id: str = JOB_ID) -> None:
        self._scan = scan
        self.interval_seconds = interval_seconds
        self.job_id = job_id
        self.scheduler = AsyncIOScheduler(timezone=dt.UTC)
        self._current: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        self._current = asyncio.current_task()
        try:
            await self._scan()
        except asyncio.CancelledError:
            log.info("due scan cancelled by shutdown")
        except RunnerStopping:
            log.info("due scan skipped: the bot is shutting down")
        except Exception as exc:  # one bad scan must not stop the schedule
            reason = unwritable_reason(exc)
            if reason is None:
                log.exception("due scan failed; will retry at the next tick")
            else:  # disk full or read-only: one clear line per tick, no traceback
                log.error(
                    "due scan failed: the database cannot be written: %s; nothing is lost — free space on "
                    "its disk or make it writable again; will retry at the next tick",
                    reason,
                )
        finally:
            self._current = None

    def start(self) -> None:
        """Start the scheduler; the first scan runs at once (start-up catch-up)."""
        self.scheduler.add_job(
            self._tick,
            IntervalTrigger(seconds=self.interval_seconds),
            id=self.job_id,
            next_run_time=dt.datetime.now(dt.UTC),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            replace_existing=True,
        )
        self.scheduler.start()

    async def shutdown(self, grace_seconds: float = 10.0) -> None:
        """Stop the scheduler; let a scan in progress finish for up to ``grace_seconds`` (seconds), then cancel it
        (waiting at most 1 s more for it to end).

        The bot stops its runner first (``Runner.stop``: a run stops at its next step), so the scan
        ends quickly. A cancelled run is recorded as failed and loses nothing: unposted releases stay
        pending and unchecked artists stay due for the next run.
        """
        if not self.scheduler.running:
            return
        # AsyncIOExecutor.shutdown() cancels running coroutine jobs, so pause (no new
        # ticks), give the scan in progress its grace period, and only then shut down.
        self.scheduler.pause()
        task = self._current
        if task is not None and not task.done() and task is not asyncio.current_task():
            await asyncio.wait({task}, timeout=grace_seconds)
        self.scheduler.shutdown(wait=False)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 1)
