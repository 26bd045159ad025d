"""Posting a guild's pending announcements, exactly once, through the delivery ledger.

Per message: **claim** (insert ``deliveries`` rows, ``status="claimed"``, twins with
``folded_into``; commit) → **send** (with a nonce derived from the guild and the
message's release ids, so Discord's ``enforce_nonce`` folds a quick retry into the
earlier message) → **confirm** (``status="sent"``, ``message_id``, ``sent_at``).
The unique (guild_id, release_id) constraint makes a second claim of the same
release fail, so no release is ever posted twice to one guild.

A failed send deletes that message's claims (the releases stay pending for the next
run) and stops the guild for this run. A process killed between claim and confirm
leaves "claimed" rows: those releases are then never re-sent (at most once wins
over at least once; the nonce covers quick retries).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from bot.delivery.planner import Announcement, fold_twins, split_pending
from bot.delivery.render import announcement_embed, pack_indices
from storage.db import Database
from storage.models import Delivery, Guild

log = logging.getLogger(__name__)

NONCE_LENGTH = 25  # Discord: nonce ≤ 25 characters


class ChannelUnavailable(Exception):
    """The channel cannot be posted to (HTTP 403 Missing Access/Permissions or 404 Unknown Channel).

    ``reason`` is a short text fit to show an admin; ``status`` the HTTP status if known.
    """

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class Sender(Protocol):
    """Posts one message of embeds (the Discord side, e.g. ``DiscordSender``)."""

    async def send(self, channel_id: int, embeds: list[dict], *, nonce: str) -> int:
        """Post ``embeds`` (≤ 10 embed dicts) to ``channel_id``; return the message id.

        ``nonce`` (≤ 25 chars) should be sent with ``enforce_nonce``. Raises
        :class:`ChannelUnavailable` for 403/404, any other exception for a transient failure.
        """
        ...


@dataclass
class DeliveryResult:
    """Outcome of :meth:`Deliverer.deliver` for one guild.

    ``posted``: announcements posted (one per main release); ``folded``: twin releases
    recorded with them; ``skipped``: releases of album groups the guild does not want,
    recorded as ``skipped`` and never posted; ``messages``: messages sent; ``pending``: announcements left
    for a later run; ``error``: why delivery stopped early (None when it did not);
    ``problem``: a standing configuration problem ("no channel set", or the channel
    problem stored on the guild).
    """

    guild_id: int
    posted: int = 0
    folded: int = 0
    skipped: int = 0
    messages: int = 0
    pending: int = 0
    error: str | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """True when nothing went wrong (pending releases for want of a channel count as ok)."""
        return self.error is None


def make_nonce(guild_id: int, release_ids: Sequence[str]) -> str:
    """Deterministic message nonce (25 hex chars) from the guild id and the message's release ids (order-free)."""
    text = f"{guild_id}:{','.join(sorted(release_ids))}"
    return hashlib.sha256(text.encode()).hexdigest()[:NONCE_LENGTH]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Deliverer:
    """Sends each guild its pending announcements through ``sender``, recording them in the ledger.

    ``db``: :class:`storage.db.Database`; ``sender``: a :class:`Sender`; ``clock``:
    returns the current aware UTC datetime. Deliveries to one guild are serialised in
    the process; across processes the ledger's unique constraint decides.
    """

    def __init__(self, db: Database, sender: Sender, *, clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self.db = db
        self.sender = sender
        self.clock = clock
        self._guild_locks: dict[int, asyncio.Lock] = {}

    async def deliver(self, guild_id: int, *, run_id: int | None = None) -> DeliveryResult:
        """Post guild ``guild_id``'s pending announcements, oldest first; never raises for a send failure.

        A guild without a channel sends nothing (``problem="no channel set"``, all stay
        pending). On :class:`ChannelUnavailable` the claims are removed,
        ``guilds.channel_problem`` is set to its reason and the guild stops; any other
        send error removes the claims and stops too. A successful send clears
        ``channel_problem``. Store errors propagate.
        """
        lock = self._guild_locks.setdefault(guild_id, asyncio.Lock())
        async with lock:
            return await self._deliver(guild_id, run_id)

    async def _deliver(self, guild_id: int, run_id: int | None) -> DeliveryResult:
        result = DeliveryResult(guild_id)
        async with self.db.sessions() as session:
            guild = await session.get(Guild, guild_id)
            if guild is None:
                result.error = "unknown guild"
                return result
            channel_id = guild.channel_id
            result.problem = guild.channel_problem
            wanted, unwanted = await split_pending(session, guild_id)
            announcements = fold_twins(wanted)
        if unwanted:
            result.skipped = await self._skip(guild_id, [r.id for r in unwanted], run_id)
        result.pending = len(announcements)
        if channel_id is None:
            result.problem = "no channel set"
            return result
        if not announcements:
            return result

        embeds = [announcement_embed(a) for a in announcements]
        for indices in pack_indices(embeds):
            batch = [announcements[i] for i in indices]
            release_ids = [rid for a in batch for rid in a.release_ids]
            if not await self._claim(guild_id, channel_id, batch, run_id):
                result.error = "releases already claimed by another delivery"
                break
            try:
                message_id = await self.sender.send(
                    channel_id, [embeds[i] for i in indices], nonce=make_nonce(guild_id, release_ids)
                )
            except ChannelUnavailable as exc:
                await self._unclaim(guild_id, release_ids)
                await self._set_channel_problem(guild_id, exc.reason)
                result.error = result.problem = f"channel unavailable: {exc.reason}"
                log.warning("guild %s: channel %s unavailable: %s", guild_id, channel_id, exc.reason)
                break
            except Exception as exc:
                await self._unclaim(guild_id, release_ids)
                result.error = f"send failed: {type(exc).__name__}: {exc}"[:300]
                log.warning("guild %s: send failed, %d releases stay pending", guild_id, len(release_ids), exc_info=True)
                break
            result.problem = None
            result.messages += 1
            result.posted += len(batch)
            result.folded += sum(len(a.twins) for a in batch)
            result.pending -= len(batch)
            try:
                await self._confirm(guild_id, release_ids, message_id)
            except Exception as exc:  # sent but not confirmed: the claims stay, nothing is re-sent
                log.exception("guild %s: message %s sent but not confirmed in the ledger", guild_id, message_id)
                result.error = f"sent but not confirmed: {type(exc).__name__}"
                break
        return result

    async def _claim(self, guild_id: int, channel_id: int, batch: list[Announcement], run_id: int | None) -> bool:
        now = self.clock()
        try:
            async with self.db.sessions() as session:
                for a in batch:
                    session.add(
                        Delivery(guild_id=guild_id, release_id=a.release.id, status="claimed",
                                 channel_id=channel_id, claimed_at=now, run_id=run_id)
                    )
                    for twin in a.twins:
                        session.add(
                            Delivery(guild_id=guild_id, release_id=twin.id, status="claimed", channel_id=channel_id,
                                     folded_into=a.release.id, claimed_at=now, run_id=run_id)
                        )
                await session.commit()
        except IntegrityError:
            log.warning("guild %s: a release of this message is already in the ledger; skipping", guild_id)
            return False
        return True

    async def _skip(self, guild_id: int, release_ids: list[str], run_id: int | None) -> int:
        """Record releases of unwanted album groups as ``skipped`` (never posted); returns how many."""
        now = self.clock()
        try:
            async with self.db.sessions() as session:
                session.add_all(
                    Delivery(guild_id=guild_id, release_id=rid, status="skipped", claimed_at=now, run_id=run_id)
                    for rid in release_ids
                )
                await session.commit()
        except IntegrityError:
            log.warning("guild %s: a skipped release is already in the ledger", guild_id)
            return 0
        return len(release_ids)

    async def _unclaim(self, guild_id: int, release_ids: list[str]) -> None:
        async with self.db.sessions() as session:
            await session.execute(
                delete(Delivery).where(
                    Delivery.guild_id == guild_id, Delivery.release_id.in_(release_ids), Delivery.status == "claimed"
                )
            )
            await session.commit()

    async def _confirm(self, guild_id: int, release_ids: list[str], message_id: int) -> None:
        now = self.clock()
        async with self.db.sessions() as session:
            await session.execute(
                update(Delivery)
                .where(Delivery.guild_id == guild_id, Delivery.release_id.in_(release_ids))
                .values(status="sent", message_id=message_id, sent_at=now)
            )
            guild = await session.get(Guild, guild_id)
            if guild is not None and guild.channel_problem is not None:
                guild.channel_problem = None
            await session.commit()

    async def _set_channel_problem(self, guild_id: int, reason: str) -> None:
        async with self.db.sessions() as session:
            guild = await session.get(Guild, guild_id)
            if guild is not None:
                guild.channel_problem = reason
                await session.commit()
