"""Crossposting the bot's posts in announcement channels (``/settings publish on``), each once.

The deliverer claims a message for an announcement channel of a guild that publishes with
``publish_state="pending"``; its confirmation makes it due (``storage.ledger``). The deliverer then
asks :meth:`Publisher.publish` at once; whatever cannot be published then is retried by
:meth:`Publisher.run` in the background (owned by ``cogs/outbox.py``: started in ``cog_load``,
stopped in ``cog_unload``, as Red-DiscordBot's streams cog owns its poller).

Discord allows about 10 publishes per announcement channel per hour and answers the 11th with a 429
whose ``retry_after`` is up to an hour. The client does not sleep that out (its
``max_ratelimit_timeout`` makes discord.py raise instead): the sender raises
:class:`~bot.delivery.sending.RateLimited`, and every pending crosspost of that channel waits until
then (``publish_after``). Each attempt first takes the message with one conditional ``UPDATE``
(:func:`storage.ledger.take_publish`), so two processes never both try it; a crash between the
publish and its record leaves it due again, and the retry meets Discord's "already crossposted"
(400, code 40033), which counts as done. So a post is never lost and never published twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.clock import Clock, utcnow
from bot.delivery.sending import ChannelUnavailable, RateLimited, Sender
from storage import ledger
from storage.db import Database

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[object]]


@dataclass
class PublishCounts:
    """What a pass did: ``published`` (now), ``already`` (Discord had it published: 40033), ``deferred``
    (rate limited or a transient failure: retried later), ``failed`` (refused for good)."""

    published: int = 0
    already: int = 0
    deferred: int = 0
    failed: int = 0

    def add(self, outcome: str) -> None:
        """Count one :meth:`Publisher.publish` outcome (``busy`` counts nowhere)."""
        if outcome in ("published", "already", "deferred", "failed"):
            setattr(self, outcome, getattr(self, outcome) + 1)


class Publisher:
    """Crossposts due messages through ``sender`` (see the module docstring).

    ``db``: the store; ``clock``: aware UTC now; ``sleep``: the background loop's wait (tests inject
    one); ``poll_seconds``: how often :meth:`run` looks for crossposts that fell due (a deferred one
    is published at most this late).
    """

    #: seconds a taken crosspost is held (another process may take it after, if this one died)
    hold_seconds = 60.0
    #: seconds before a crosspost that failed transiently (5xx, timeout) is tried again
    retry_seconds = 60.0
    #: crossposts tried per pass
    batch = 50

    def __init__(
        self,
        db: Database,
        sender: Sender,
        *,
        clock: Clock = utcnow,
        sleep: Sleep = asyncio.sleep,
        poll_seconds: float = 30.0,
    ) -> None:
        self.db = db
        self.sender = sender
        self.clock = clock
        self.sleep = sleep
        self.poll_seconds = poll_seconds

    async def publish(self, guild_id: int, channel_id: int, message_id: int) -> str:
        """Crosspost message ``message_id`` of ``channel_id`` now if it is due and nobody else has it.

        Returns ``published``, ``already`` (Discord had it: 40033), ``deferred`` (429: every pending
        crosspost of the channel waits ``retry_after``; or a transient failure: retried after
        :attr:`retry_seconds`), ``failed`` (the message or channel is gone, or the bot may not
        publish there) or ``busy`` (not due, or another process took it). Store errors propagate.
        """
        now = self.clock()
        async with self.db.transaction() as session:
            taken = await ledger.take_publish(
                session, guild_id, message_id, now=now, hold_until=now + dt.timedelta(seconds=self.hold_seconds)
            )
        if not taken:
            return "busy"
        try:
            published = await self.sender.crosspost(channel_id, message_id)
        except RateLimited as exc:
            until = self.clock() + dt.timedelta(seconds=exc.retry_after)
            async with self.db.transaction() as session:
                await ledger.defer_publishes(session, channel_id, until=until)
                await ledger.defer_publish(session, guild_id, message_id, until=until)
            log.info("channel %s: crossposts wait %.0f s (Discord's publish limit)", channel_id, exc.retry_after)
            return "deferred"
        except ChannelUnavailable as exc:
            async with self.db.transaction() as session:
                await ledger.finish_publish(session, guild_id, message_id, state="failed")
            log.warning("guild %s: message %s cannot be crossposted: %s", guild_id, message_id, exc.reason)
            return "failed"
        except Exception:
            log.warning("guild %s: crossposting message %s failed; retried later", guild_id, message_id, exc_info=True)
            async with self.db.transaction() as session:
                await ledger.defer_publish(
                    session, guild_id, message_id, until=self.clock() + dt.timedelta(seconds=self.retry_seconds)
                )
            return "deferred"
        async with self.db.transaction() as session:
            await ledger.finish_publish(session, guild_id, message_id, state="done")
        return "published" if published else "already"

    async def run_due(self, *, guild_id: int | None = None) -> PublishCounts:
        """One pass: every due crosspost (of ``guild_id`` only when given; at most :attr:`batch`), in
        order. A channel that answers 429 is skipped for the rest of the pass (its crossposts were
        deferred)."""
        counts = PublishCounts()
        async with self.db.transaction() as session:
            tasks = await ledger.due_publishes(session, now=self.clock(), limit=self.batch, guild_id=guild_id)
        limited: set[int] = set()
        for task in tasks:
            if task.channel_id in limited:
                continue
            outcome = await self.publish(task.guild_id, task.channel_id, task.message_id)
            counts.add(outcome)
            if outcome == "deferred":
                limited.add(task.channel_id)
        return counts

    async def run(self) -> None:
        """Forever: a pass (:meth:`run_due`), then wait :attr:`poll_seconds`. A failed pass is logged and
        the loop goes on; cancel the task to stop it."""
        while True:
            try:
                counts = await self.run_due()
                if counts.published or counts.failed:
                    log.info(
                        "crossposts: %d published, %d already, %d deferred, %d failed",
                        counts.published,
                        counts.already,
                        counts.deferred,
                        counts.failed,
                    )
            except Exception:
                log.exception("a crosspost pass failed; trying again in %.0f s", self.poll_seconds)
            await self.sleep(self.poll_seconds)
