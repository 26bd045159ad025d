"""The DM outbox: direct messages to members subscribed in ``dm`` mode, each (member, release) once,
paced, in the background.

The deliverer enqueues one ``dm_deliveries`` row per DM-mode subscriber of a release's artists when
the release's post is confirmed (``storage.dm_ledger.enqueue``: once per member and release, even
across guilds). :meth:`DmOutbox.run` drains them in the background (owned by ``cogs/outbox.py``), so
a fan-out to thousands of members never holds up channel posts: **claim** a few due rows (``claimed``
by this process; ``UPDATE … WHERE status='pending' … RETURNING``, ``SKIP LOCKED`` on PostgreSQL, so
two processes never take the same row) → open the DM channel (``POST /users/@me/channels``, cached
per user by the sender) → **send** the release's embed (with a nonce) → **confirm** (``sent``,
message id).

Pacing: at most ``per_second`` DMs per second per process (default :data:`DEFAULT_PER_SECOND` = 2:
Discord's global limit is 50 requests per second per bot, and opening DMs to many users quickly is
what its anti-spam watches for, so the outbox stays far below; 1,000 DMs take about 8 minutes).

What Discord answers: 50007 (DMs closed, or no shared server) → the row ``closed``, with every other
pending DM of that user, and the member switched to ``mention`` mode (``storage.members.mark_dms_closed``;
they are told once at their next command); 10013 Unknown User → ``gone`` and their subscriptions
forgotten; 10007 Unknown Member → ``gone`` and their subscriptions in that guild forgotten; a long
429 → back to ``pending`` until ``retry_after`` and the outbox pauses that long; anything else →
back to ``pending`` with ``attempts`` + 1 and an exponential back-off (:meth:`DmOutbox.backoff`).

A crash between send and confirm leaves ``claimed`` rows: once their owner is dead (or, for a process
alone, for claims older than this process), :meth:`DmOutbox.settle` reads the DM channel's recent
messages: the release's embed url there → ``sent``; absent → ``pending`` again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.clock import Clock, utcnow
from bot.coordination.coordinator import Coordinator
from bot.delivery.deliverer import make_nonce
from bot.delivery.render import ALBUM_URL, release_embed
from bot.delivery.sending import DmClosed, RateLimited, Sender, UnknownMember, UnknownUser
from storage import catalog, dm_ledger, members
from storage.db import Database
from storage.dm_ledger import DmTask
from storage.models import Release

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[object]]

DEFAULT_PER_SECOND = 2.0
DM_CONTENT = "🔔 A new release by an artist you follow (`/notify` sends you these)."


@dataclass
class OutboxCounts:
    """What the outbox did: ``sent``, ``closed`` (50007), ``gone`` (unknown user or member),
    ``retried`` (back to pending after a failure), and of the stale claims it settled,
    ``settled_sent`` (found in the DM channel) and ``settled_pending`` (not found: to send again)."""

    sent: int = 0
    closed: int = 0
    gone: int = 0
    retried: int = 0
    settled_sent: int = 0
    settled_pending: int = 0

    @property
    def attempted(self) -> int:
        """DMs this pass tried to send."""
        return self.sent + self.closed + self.gone + self.retried


class DmOutbox:
    """Drains ``dm_deliveries`` through ``sender`` (see the module docstring).

    ``clock``: aware UTC now (pacing and due times); ``sleep``: how pacing waits (tests inject one
    that moves their clock); ``coordinator``: this process among several (its owner id marks the
    claims; only a dead process's claims are settled) — without one, claims older than this outbox
    are stale; ``per_second``: DMs per second at most; ``poll_seconds``: how often :meth:`run`
    looks for due rows when nobody :meth:`wake` s it.
    """

    #: rows claimed at a time (a dying process leaves at most this many to settle)
    batch = 10
    #: stale claims settled per pass
    settle_limit = 50

    def __init__(
        self,
        db: Database,
        sender: Sender,
        *,
        clock: Clock = utcnow,
        sleep: Sleep = asyncio.sleep,
        coordinator: Coordinator | None = None,
        per_second: float = DEFAULT_PER_SECOND,
        poll_seconds: float = 30.0,
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.db = db
        self.sender = sender
        self.clock = clock
        self.sleep = sleep
        self.coordinator = coordinator
        self.interval = 1.0 / per_second
        self.poll_seconds = poll_seconds
        self.owner = coordinator.owner if coordinator is not None else f"outbox:{secrets.token_hex(6)}"
        self.started_at = clock()
        #: ``clock()`` when the last DM slot was taken, and the end of a rate limit's pause
        self._last_at: dt.datetime | None = None
        self._paused_until: dt.datetime | None = None
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Ask :meth:`run` to look for due rows now (the deliverer calls it after enqueuing DMs)."""
        self._wake.set()

    @staticmethod
    def backoff(attempts: int) -> float:
        """Seconds before attempt ``attempts`` + 1 after ``attempts`` failures: 30 s doubling, at most 6 h."""
        return float(min(30 * 2 ** max(attempts - 1, 0), 6 * 3600))

    # --- a pass --------------------------------------------------------------------------------

    async def drain(self, *, max_dms: int | None = None) -> OutboxCounts:
        """Settle stale claims, then send due DMs batch by batch, paced, until none is due (or about
        ``max_dms`` were tried: the batch in progress is finished). Store errors propagate."""
        counts = OutboxCounts()
        refused: dict[int | tuple[int, int], str] = {}  # user (or (guild, user)) → closed/gone this pass
        await self.settle(counts)
        while max_dms is None or counts.attempted < max_dms:
            async with self.db.transaction() as session:
                tasks = await dm_ledger.claim_due(session, self.owner, now=self.clock(), limit=self.batch)
                releases = await catalog.releases_by_id(session, {t.release_id for t in tasks}) if tasks else {}
            if not tasks:
                break
            for task in tasks:
                if task.user_id in refused or (task.guild_id, task.user_id) in refused:
                    await self._refused(task, refused, counts)  # refused a moment ago: no request
                    continue
                await self._pace()
                await self._send(task, releases[task.release_id], counts, refused)
        return counts

    async def _pace(self) -> None:
        """Wait for this process's next DM slot: ``1 / per_second`` after the last one, and not before
        the end of a rate limit's pause (a long 429).

        The gap since the last slot is measured on ``clock`` but a wait is never longer than one
        interval: a clock that does not move while the outbox sleeps (a simulated one, a wall clock
        stepped back) must not make each wait longer than the one before.
        """
        now = self.clock()
        if self._paused_until is not None:
            if self._paused_until > now:
                await self.sleep((self._paused_until - now).total_seconds())
                now = self.clock()
            self._paused_until = None
        elif self._last_at is not None:
            since = max((now - self._last_at).total_seconds(), 0.0)
            if since < self.interval:
                await self.sleep(self.interval - since)
                now = self.clock()
        self._last_at = now

    async def _refused(self, task: DmTask, refused: dict[int | tuple[int, int], str], counts: OutboxCounts) -> None:
        """A DM of a user Discord refused earlier in this pass: recorded as that refusal, not sent."""
        async with self.db.transaction() as session:
            if task.user_id in refused:
                status = refused[task.user_id]
                changed = await dm_ledger.finish_user(session, task.user_id, status, dm_id=task.id)
            else:
                status = refused[(task.guild_id, task.user_id)]
                changed = await dm_ledger.finish_member(session, task.guild_id, task.user_id, dm_id=task.id)
        if status == "closed":
            counts.closed += changed
        else:
            counts.gone += changed

    async def _still_member(self, task: DmTask) -> bool:
        """After a 50007: whether the user is still a member of the task's guild (True when Discord
        cannot say: then the DMs count as closed, the safe reading)."""
        try:
            return await self.sender.is_member(task.guild_id, task.user_id)
        except Exception:
            log.warning("could not check whether user %s is in guild %s", task.user_id, task.guild_id, exc_info=True)
            return True

    async def _send(
        self, task: DmTask, release: Release, counts: OutboxCounts, refused: dict[int | tuple[int, int], str]
    ) -> None:
        """Open the DM channel, send, confirm; or record why not (see the module docstring). A user (or
        member) Discord refuses for good goes into ``refused``."""
        try:
            channel_id = await self.sender.open_dm(task.user_id)
            message_id = await self.sender.send_dm(
                channel_id,
                [release_embed(release)],
                nonce=make_nonce(task.user_id, ["dm", task.release_id]),
                content=DM_CONTENT,
            )
        except DmClosed:
            now = self.clock()
            if not await self._still_member(task):
                # Discord says 50007 to a member who left the server (no server in common): forget
                # them there rather than switching them to mentions nobody would see.
                async with self.db.transaction() as session:
                    counts.gone += await dm_ledger.finish_member(session, task.guild_id, task.user_id, dm_id=task.id)
                    await members.forget_member(session, task.guild_id, task.user_id)
                refused[(task.guild_id, task.user_id)] = "gone"
                log.info(
                    "user %s left guild %s (50007, not a member): subscriptions there removed",
                    task.user_id,
                    task.guild_id,
                )
                return
            async with self.db.transaction() as session:
                counts.closed += await dm_ledger.finish_user(session, task.user_id, "closed", dm_id=task.id)
                await members.mark_dms_closed(session, task.user_id, now=now)
            refused[task.user_id] = "closed"
            log.info("user %s does not take DMs (50007): switched to mentions", task.user_id)
        except UnknownUser:
            async with self.db.transaction() as session:
                counts.gone += await dm_ledger.finish_user(session, task.user_id, "gone", dm_id=task.id)
                await members.forget_user(session, task.user_id)
            refused[task.user_id] = "gone"
            log.info("user %s is unknown to Discord (10013): subscriptions removed", task.user_id)
        except UnknownMember:
            async with self.db.transaction() as session:
                counts.gone += await dm_ledger.finish_member(session, task.guild_id, task.user_id, dm_id=task.id)
                await members.forget_member(session, task.guild_id, task.user_id)
            refused[(task.guild_id, task.user_id)] = "gone"
            log.info("user %s left guild %s (10007): subscriptions there removed", task.user_id, task.guild_id)
        except RateLimited as exc:
            until = self.clock() + dt.timedelta(seconds=exc.retry_after)
            self._paused_until = until if self._paused_until is None else max(self._paused_until, until)
            async with self.db.transaction() as session:
                await dm_ledger.retry_later(session, task.id, at=until, failed=False)
            counts.retried += 1
            log.warning("DMs rate limited for %.0f s", exc.retry_after)
        except Exception:
            at = self.clock() + dt.timedelta(seconds=self.backoff(task.attempts + 1))
            async with self.db.transaction() as session:
                await dm_ledger.retry_later(session, task.id, at=at, failed=True)
            counts.retried += 1
            log.warning("DM %s to user %s failed; retried at %s", task.id, task.user_id, at, exc_info=True)
        else:
            async with self.db.transaction() as session:
                if await dm_ledger.confirm(session, task.id, message_id=message_id, now=self.clock()):
                    counts.sent += 1
                else:
                    log.error(
                        "DM %s to user %s sent as message %s but not confirmed", task.id, task.user_id, message_id
                    )

    # --- stale claims --------------------------------------------------------------------------

    async def settle(self, counts: OutboxCounts | None = None) -> OutboxCounts:
        """Settle claimed DMs a dead process (or, alone, an earlier process) left: found in the DM
        channel (embed url) → ``sent``; absent → ``pending`` again; the channel unreadable now → left
        for the next pass. Returns ``counts`` (a new one when None), updated."""
        counts = counts if counts is not None else OutboxCounts()
        live = None if self.coordinator is None else await self.coordinator.live_owners()
        async with self.db.transaction() as session:
            stale = await dm_ledger.stale_claims(
                session,
                live=live,
                claimed_before=self.started_at if self.coordinator is None else None,
                limit=self.settle_limit,
            )
        for task in stale:
            try:
                channel_id = await self.sender.open_dm(task.user_id)
                found = await self.sender.find_dm(channel_id, ALBUM_URL.format(task.release_id))
            except UnknownUser:
                async with self.db.transaction() as session:
                    counts.gone += await dm_ledger.finish_user(session, task.user_id, "gone", dm_id=task.id)
                    await members.forget_user(session, task.user_id)
                continue
            except Exception:
                log.warning(
                    "cannot read the DM channel of user %s to settle DM %s", task.user_id, task.id, exc_info=True
                )
                continue
            async with self.db.transaction() as session:
                if found is not None:
                    if await dm_ledger.confirm(session, task.id, message_id=found, now=self.clock()):
                        counts.settled_sent += 1
                elif await dm_ledger.retry_later(session, task.id, at=None, failed=False):
                    counts.settled_pending += 1
        if stale:
            log.info(
                "settled %d unconfirmed DMs: %d found sent, %d to send again",
                len(stale),
                counts.settled_sent,
                counts.settled_pending,
            )
        return counts

    # --- the background loop -------------------------------------------------------------------

    async def run(self) -> None:
        """Forever: :meth:`drain`, then wait until :meth:`wake` or :attr:`poll_seconds` (a DM retried
        later falls due meanwhile). A failed pass is logged and the loop goes on; cancel to stop."""
        while True:
            self._wake.clear()
            try:
                counts = await self.drain()
                if counts.attempted:
                    log.info(
                        "DMs: %d sent, %d closed, %d gone, %d to retry",
                        counts.sent,
                        counts.closed,
                        counts.gone,
                        counts.retried,
                    )
            except Exception:
                log.exception("a DM pass failed; trying again in %.0f s", self.poll_seconds)
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            except TimeoutError:
                pass
