"""Posting a guild's pending announcements, exactly once, through the delivery ledger.

Per message: **claim** (insert ``deliveries`` rows, ``status="claimed"``, twins with
``folded_into``; commit) → **send** (with a nonce derived from the guild and the
message's release ids, so Discord's ``enforce_nonce`` folds a quick retry into the
earlier message) → **confirm** (``status="sent"``, ``message_id``, ``sent_at``).
The unique (guild_id, release_id) constraint makes a second claim of the same
release fail, so no release is ever posted twice to one guild.

A 403/404 deletes that message's claims (the releases stay pending for the next run)
and stops the guild for this run. Any other send failure (5xx after discord.py's own
retries, a timeout) may or may not have created the message, so the channel's recent
messages are read first (``Sender.find_posted``): found → confirmed with that message
id; absent → the claims are deleted and the releases posted next run.

**Crash recovery.** A process killed between claim and confirm leaves ``claimed`` rows
without a message id. :meth:`Deliverer.recover` (called at start-up, before the bot
connects to the gateway, and again at the start of every delivery to a guild that still
has such rows) resolves them the same way: the bot's recent messages in the claim's
channel are searched for the release's Spotify album URL (the embed ``url``); found →
``sent`` with that message id; absent (or the channel is gone, 404) → the claim is
deleted and the release is posted by the next run — not resent at once, so recovery
never posts and start-up stays quick. When the channel cannot be read (403, a transient
error) the claims stay and are tried again before the next delivery to that guild.
This holds whether or not Discord's nonce window has passed; the nonce
additionally folds discord.py's own retries of one request into one message. One bot
process per database: a claim is only taken for stale when it predates this process
(or this process itself could not settle it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from bot.clock import utcnow
from bot.coordination.coordinator import LeaseBusy
from bot.delivery import render as _render
from bot.delivery.planner import Announcement, fold_twins, split_pending
from bot.delivery.render import ALBUM_URL, announcement_embed, pack_indices
from storage import guilds, leases
from storage.db import Database
from storage.models import Delivery, Guild

log = logging.getLogger(__name__)

NONCE_LENGTH = 25  # Discord: nonce ≤ 25 characters
HISTORY_LIMIT = 100  # recent channel messages read to settle an unconfirmed claim (one request)


class ChannelUnavailable(Exception):
    """The channel cannot be posted to (HTTP 403 Missing Access/Permissions or 404 Unknown Channel).

    ``reason`` is a short text fit to show an admin; ``status`` the HTTP status if known.
    """

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class Sender(Protocol):
    """Posts one message of embeds (the Discord side, e.g. ``DiscordSender``).

    Optionally also ``async find_posted(channel_id, album_urls, *, limit) -> dict[str, int]``:
    among the bot's own ``limit`` most recent messages in the channel, the id of the message
    whose embed ``url`` is each of ``album_urls`` (absent keys: not found); raises
    :class:`ChannelUnavailable` for 403/404. Without it, unconfirmed claims are never
    re-sent (at most once) and a failed send is taken as not posted.
    """

    async def send(
        self,
        channel_id: int,
        embeds: list[dict],
        *,
        nonce: str,
        components: list[dict] | None = None,
        content: str | None = None,
        allowed_mentions: dict | None = None,
    ) -> int:
        """Post ``embeds`` (≤ 10 embed dicts) to ``channel_id``; return the message id.

        ``nonce`` (≤ 25 chars) should be sent with ``enforce_nonce``. ``components``: Discord
        message component dicts (action rows of buttons/selects with ``custom_id`` s), passed
        only when there are some. ``content`` + ``allowed_mentions`` (Discord's Allowed
        Mentions object): the guild's role mention, passed only on the first message of a
        delivery to a guild that set one. Raises :class:`ChannelUnavailable` for 403/404, any
        other exception for a transient failure.
        """
        ...


@dataclass
class RecoveryResult:
    """What :meth:`Deliverer.recover` did with unconfirmed claims: ``confirmed`` (found posted,
    now ``sent``), ``released`` (not found: claim deleted, posted next run), ``unresolved``
    (channel unreadable: left claimed, tried again before the next delivery)."""

    confirmed: int = 0
    released: int = 0
    unresolved: int = 0
    confirmed_ids: set[str] = field(default_factory=set)

    def add(self, other: RecoveryResult) -> None:
        self.confirmed += other.confirmed
        self.released += other.released
        self.unresolved += other.unresolved
        self.confirmed_ids |= other.confirmed_ids


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


class Deliverer:
    """Sends each guild its pending announcements through ``sender``, recording them in the ledger.

    ``db``: :class:`storage.db.Database`; ``sender``: a :class:`Sender`; ``clock``:
    returns the current aware UTC datetime. Deliveries to one guild are serialised in
    the process, and across processes by the named lease ``deliver:<guild id>`` when a
    ``coordinator`` (``bot.coordination.Coordinator``) is given; the ledger's unique
    constraint is the last word either way. With a coordinator, ledger claims carry their
    owner and only a dead process's unconfirmed claims are settled by another.
    """

    #: seconds a delivery waits for another process's delivery to the same guild
    lease_wait_seconds = 15.0

    def __init__(
        self, db: Database, sender: Sender, *, clock: Callable[[], dt.datetime] = utcnow, coordinator: Any = None
    ) -> None:
        self.db = db
        self.sender = sender
        self.clock = clock
        self.coordinator = coordinator
        self._guild_locks: dict[int, asyncio.Lock] = {}
        #: claims older than this belong to an earlier process (see the module docstring)
        self.started_at = clock()
        #: (guild id, release id) claims this process could not settle after a failed send
        self._unsettled: set[tuple[int, str]] = set()

    def _accepted(self, kwargs: dict) -> dict:
        """``kwargs`` less the optional ones (components, content, allowed_mentions) an older
        ``Sender.send`` does not take (one without them posts plain embeds, as before)."""
        try:
            params = inspect.signature(self.sender.send).parameters.values()
        except (TypeError, ValueError):  # pragma: no cover - not introspectable: pass everything
            return kwargs
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return kwargs
        names = {p.name for p in params}
        return {k: v for k, v in kwargs.items() if k == "nonce" or k in names}

    def _lock(self, guild_id: int) -> asyncio.Lock:
        return self._guild_locks.setdefault(guild_id, asyncio.Lock())

    async def recover(self, guild_ids: Sequence[int] | None = None) -> RecoveryResult:
        """Resolve the unconfirmed claims left by an earlier process (every guild, or ``guild_ids``).

        Never raises for a Discord failure (those claims stay for later); store errors propagate.
        """
        live = await self._live()
        async with self.db.sessions() as session:
            query = select(Delivery.guild_id).where(Delivery.status == "claimed").distinct()
            if live is not None:  # only claims a dead process left; a live one's are in flight
                query = query.where(leases.dead_owner(Delivery.owner, live))
            if guild_ids is not None:
                query = query.where(Delivery.guild_id.in_(list(guild_ids)))
            gids = list((await session.scalars(query)).all())
        total = RecoveryResult()
        for gid in gids:
            async with self._lock(gid):
                total.add(await self._recover_guild(gid))
        if total.confirmed or total.released or total.unresolved:
            log.info(
                "recovered unconfirmed deliveries: %d confirmed, %d released, %d unresolved",
                total.confirmed,
                total.released,
                total.unresolved,
            )
        return total

    async def _live(self) -> set[str] | None:
        """Owner ids of the live processes (None without a coordinator: this process is alone)."""
        return None if self.coordinator is None else await self.coordinator.live_owners()

    async def _stale_claims(self, guild_id: int) -> list[Delivery]:
        """Unconfirmed claims to settle: an earlier (or, with a coordinator, a dead) process's, or
        this process's own after a failed send. A live process's in-flight claim is never one."""
        live = await self._live()
        async with self.db.sessions() as session:
            rows = (
                await session.scalars(
                    select(Delivery)
                    .where(Delivery.guild_id == guild_id, Delivery.status == "claimed", Delivery.message_id.is_(None))
                    .order_by(Delivery.id)
                )
            ).all()
        if live is not None:
            me = self.coordinator.owner
            return [
                r
                for r in rows
                if (r.owner is None and r.claimed_at < self.started_at)
                or (r.owner is not None and r.owner not in live)
                or (r.owner == me and (guild_id, r.release_id) in self._unsettled)
            ]
        return [r for r in rows if r.claimed_at < self.started_at or (guild_id, r.release_id) in self._unsettled]

    async def _recover_guild(self, guild_id: int) -> RecoveryResult:
        rows = await self._stale_claims(guild_id)
        result = RecoveryResult()
        by_channel: dict[int | None, list[Delivery]] = {}
        for row in rows:
            by_channel.setdefault(row.channel_id, []).append(row)
        for channel_id, claims in by_channel.items():
            result.add(
                await self._settle(
                    guild_id,
                    channel_id,
                    [r.release_id for r in claims],
                    {r.release_id: r.folded_into or r.release_id for r in claims},
                    after_failure=False,
                )
            )
        return result

    async def _settle(
        self,
        guild_id: int,
        channel_id: int | None,
        release_ids: list[str],
        main_of: dict[str, str],
        *,
        after_failure: bool,
    ) -> RecoveryResult:
        """Look for these claimed releases in the channel; confirm what is there, release the rest.

        ``main_of``: release id → the release whose embed announces it (itself, or the main
        release a twin is folded into). ``after_failure``: settling right after a failed send
        of this process (without ``find_posted`` the claims are then released: not posted).
        """
        find = getattr(self.sender, "find_posted", None)
        result = RecoveryResult()
        if find is None or channel_id is None:
            if after_failure or channel_id is None:
                await self._unclaim(guild_id, release_ids)
                result.released = len(release_ids)
            else:  # cannot tell: at most once
                result.unresolved = len(release_ids)
            return result
        urls = {ALBUM_URL.format(main): main for main in set(main_of.values())}
        try:
            found_by_url: dict[str, int] = await find(channel_id, list(urls), limit=HISTORY_LIMIT)
        except ChannelUnavailable as exc:
            if exc.status == 404:  # the channel is gone, and any message with it: post again elsewhere
                found_by_url = {}
            else:
                log.warning(
                    "guild %s: cannot read channel %s to settle %d claims: %s",
                    guild_id,
                    channel_id,
                    len(release_ids),
                    exc.reason,
                )
                self._unsettled.update((guild_id, rid) for rid in release_ids)
                result.unresolved = len(release_ids)
                return result
        except Exception:
            log.warning(
                "guild %s: reading channel %s to settle %d claims failed",
                guild_id,
                channel_id,
                len(release_ids),
                exc_info=True,
            )
            self._unsettled.update((guild_id, rid) for rid in release_ids)
            result.unresolved = len(release_ids)
            return result
        found = {urls[u]: mid for u, mid in (found_by_url or {}).items() if u in urls}
        by_message: dict[int, list[str]] = {}
        missing: list[str] = []
        for rid in release_ids:
            mid = found.get(main_of.get(rid, rid))
            if mid is None:
                missing.append(rid)
            else:
                by_message.setdefault(int(mid), []).append(rid)
        for mid, rids in by_message.items():
            await self._confirm(guild_id, rids, mid)
            result.confirmed += len(rids)
            result.confirmed_ids.update(rids)
        if missing:
            await self._unclaim(guild_id, missing)
            result.released += len(missing)
        self._unsettled.difference_update((guild_id, rid) for rid in release_ids)
        return result

    async def deliver(self, guild_id: int, *, run_id: int | None = None) -> DeliveryResult:
        """Post guild ``guild_id``'s pending announcements, oldest first; never raises for a send failure.

        A guild without a channel sends nothing (``problem="no channel set"``, all stay
        pending). On :class:`ChannelUnavailable` the claims are removed,
        ``guilds.channel_problem`` is set to its reason and the guild stops; any other
        send error removes the claims and stops too. A successful send clears
        ``channel_problem``. Store errors propagate.
        """
        async with self._lock(guild_id):
            if self.coordinator is None:
                return await self._deliver(guild_id, run_id)
            try:
                async with self.coordinator.lease(f"deliver:{guild_id}", wait_seconds=self.lease_wait_seconds):
                    return await self._deliver(guild_id, run_id)
            except LeaseBusy:  # another process is posting to this guild now: it posts what is pending
                result = DeliveryResult(guild_id)
                result.problem = "another bot process is posting to this server right now"
                return result

    async def _deliver(self, guild_id: int, run_id: int | None) -> DeliveryResult:
        result = DeliveryResult(guild_id)
        await self._recover_guild(guild_id)  # claims an earlier process (or a failed send) left unsettled
        async with self.db.sessions() as session:
            guild = await session.get(Guild, guild_id)
            if guild is None:
                result.error = "unknown guild"
                return result
            channel_id = guild.channel_id
            mention_role_id = getattr(guild, "mention_role_id", None)
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
            kwargs: dict = {"nonce": make_nonce(guild_id, release_ids)}
            components = _components(batch)
            if components:
                kwargs["components"] = components
            if mention_role_id and result.messages == 0 and hasattr(_render, "role_mention"):
                kwargs["content"], kwargs["allowed_mentions"] = _render.role_mention(mention_role_id)
            kwargs = self._accepted(kwargs)
            try:
                message_id = await self.sender.send(channel_id, [embeds[i] for i in indices], **kwargs)
            except ChannelUnavailable as exc:
                await self._unclaim(guild_id, release_ids)
                await self._set_channel_problem(guild_id, exc.reason)
                result.error = result.problem = f"channel unavailable: {exc.reason}"
                log.warning("guild %s: channel %s unavailable: %s", guild_id, channel_id, exc.reason)
                break
            except Exception as exc:
                log.warning(
                    "guild %s: send failed; settling %d releases from the channel",
                    guild_id,
                    len(release_ids),
                    exc_info=True,
                )
                settled = await self._settle(
                    guild_id,
                    channel_id,
                    release_ids,
                    {rid: a.release.id for a in batch for rid in a.release_ids},
                    after_failure=True,
                )
                if settled.confirmed:  # Discord had created the message after all
                    done = [a for a in batch if a.release.id in settled.confirmed_ids]
                    result.messages += 1
                    result.posted += len(done)
                    result.folded += sum(len(a.twins) for a in done)
                    result.pending -= len(done)
                result.error = f"send failed: {type(exc).__name__}: {exc}"[:300]
                break
            result.problem = None
            result.messages += 1
            result.posted += len(batch)
            result.folded += sum(len(a.twins) for a in batch)
            result.pending -= len(batch)
            try:
                await self._confirm(guild_id, release_ids, message_id)
            except Exception as exc:  # sent but not confirmed: the claims stay, settled from the channel later
                log.exception("guild %s: message %s sent but not confirmed in the ledger", guild_id, message_id)
                self._unsettled.update((guild_id, rid) for rid in release_ids)
                result.error = f"sent but not confirmed: {type(exc).__name__}"
                break
        return result

    async def _claim(self, guild_id: int, channel_id: int, batch: list[Announcement], run_id: int | None) -> bool:
        now = self.clock()
        try:
            async with self.db.sessions() as session:
                for a in batch:
                    session.add(
                        Delivery(
                            guild_id=guild_id,
                            release_id=a.release.id,
                            status="claimed",
                            channel_id=channel_id,
                            claimed_at=now,
                            run_id=run_id,
                            owner=self._owner,
                        )
                    )
                    for twin in a.twins:
                        session.add(
                            Delivery(
                                guild_id=guild_id,
                                release_id=twin.id,
                                status="claimed",
                                channel_id=channel_id,
                                folded_into=a.release.id,
                                claimed_at=now,
                                run_id=run_id,
                                owner=self._owner,
                            )
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

    @property
    def _owner(self) -> str | None:
        return None if self.coordinator is None else self.coordinator.owner

    async def _confirm(self, guild_id: int, release_ids: list[str], message_id: int) -> int:
        """Mark claimed rows sent with ``message_id``; returns how many rows it confirmed.

        Fewer than ``release_ids`` means a claim vanished meanwhile (settled by another process
        that took it for a dead one's): logged as an error, since the release may be posted twice.
        """
        now = self.clock()
        async with self.db.sessions() as session:
            confirmed = (
                await session.execute(
                    update(Delivery)
                    .where(
                        Delivery.guild_id == guild_id,
                        Delivery.release_id.in_(release_ids),
                        Delivery.status == "claimed",
                    )
                    .values(status="sent", message_id=message_id, sent_at=now)
                )
            ).rowcount or 0
            if confirmed < len(set(release_ids)):
                log.error(
                    "guild %s: message %s confirmed %d of %d claimed releases (a claim was settled "
                    "elsewhere meanwhile)",
                    guild_id,
                    message_id,
                    confirmed,
                    len(set(release_ids)),
                )
            guild = await session.get(Guild, guild_id)
            if guild is not None and guild.channel_problem is not None:
                guild.channel_problem = None
                await guilds.forget_channel_notice(session, guild_id)
            await session.commit()
        return confirmed

    async def _set_channel_problem(self, guild_id: int, reason: str) -> None:
        async with self.db.sessions() as session:
            guild = await session.get(Guild, guild_id)
            if guild is not None:
                if guild.channel_problem is None:  # a new problem: the next command says so once
                    await guilds.forget_channel_notice(session, guild_id)
                guild.channel_problem = reason
                await session.commit()


def _render_components_function() -> Callable | None:
    found = getattr(_render, "render_components", None)
    if found is None:
        try:
            from bot.delivery import (
                components as module,  # the post buttons, when present
            )
        except ImportError:
            return None
        found = getattr(module, "render_components", None)
    return found


def _components(batch: Sequence[Announcement]) -> list[dict] | None:
    """The message's component rows from ``render_components(announcements)`` when it exists
    (``bot.delivery.render``, else ``bot.delivery.components``).

    A failure there never stops a post: the message goes out without components.
    """
    render_components = _render_components_function()
    if render_components is None:
        return None
    try:
        return list(render_components(list(batch)) or []) or None
    except Exception:
        log.exception("render_components failed; posting without components")
        return None
