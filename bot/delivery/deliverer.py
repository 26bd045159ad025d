"""Posting a guild's pending announcements, exactly once, through the delivery ledger.

Per message: **claim** (insert ``deliveries`` rows, ``status="claimed"``, twins with
``folded_into``; commit) → **send** (with a nonce derived from the guild and the
message's release ids, so Discord's ``enforce_nonce`` folds a quick retry into the
earlier message) → **confirm** (``status="sent"``, ``message_id``, ``sent_at``).
The unique (guild_id, release_id) constraint makes a second claim of the same
release fail, so no release is ever posted twice to one guild. The ledger's statements
are in :mod:`storage.ledger`.

A 403/404 deletes that message's claims (the releases stay pending for the next run)
and stops the guild for this run. Any other send failure (5xx after discord.py's own
retries, a timeout) may or may not have created the message, so the channel's recent
messages are read first (:meth:`Sender.find_posted`): found → confirmed with that message
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
additionally folds discord.py's own retries of one request into one message. Without a
coordinator (one process per database) a claim is only taken for stale when it predates
this process (or this process itself could not settle it); with one, when its owner is
dead (docs/multiprocess.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.clock import Clock, utcnow
from bot.coordination.coordinator import Coordinator, LeaseBusy
from bot.delivery import components
from bot.delivery.components import PostButtons
from bot.delivery.planner import Announcement, GuildFilters, fold_twins, plan_pending
from bot.delivery.render import ALBUM_URL, AllowedMentions, announcement_embed, pack_indices, role_mention
from storage import guilds, ledger
from storage.db import Database
from storage.ledger import LedgerConflict
from storage.models import Delivery

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
    """The Discord side of delivery (``bot.discord_app.sender.DiscordSender``; tests pass fakes)."""

    async def send(
        self,
        channel_id: int,
        embeds: list[dict[str, Any]],
        *,
        nonce: str,
        buttons: PostButtons | None = None,
        content: str | None = None,
        allowed_mentions: AllowedMentions | None = None,
    ) -> int:
        """Post ``embeds`` (≤ 10 embed dicts) to ``channel_id`` as one message; return the message id.

        ``nonce`` (≤ 25 chars) should be sent with ``enforce_nonce``. ``buttons``: the post's
        buttons (:mod:`bot.delivery.components`; their interactions are answered by ``custom_id``),
        None when there are none. ``content`` + ``allowed_mentions`` (Discord's Allowed Mentions
        object): the guild's role mention, given only on the first message of a delivery to a
        guild that set one (None otherwise: nobody is mentioned). Raises
        :class:`ChannelUnavailable` for 403/404, any other exception for a transient failure.
        """
        ...

    async def find_posted(
        self, channel_id: int, album_urls: list[str], *, limit: int = HISTORY_LIMIT
    ) -> dict[str, int]:
        """Among the bot's own ``limit`` most recent messages in the channel, the id of the message
        whose embed ``url`` is each of ``album_urls`` (absent keys: not found).

        Raises :class:`ChannelUnavailable` for 403/404, any other exception for a transient failure.
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
        """Add ``other``'s counts and confirmed release ids to these."""
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

    def count_message(self, announcements: Sequence[Announcement]) -> None:
        """One message carrying ``announcements`` reached the channel."""
        self.messages += 1
        self.posted += len(announcements)
        self.folded += sum(len(a.twins) for a in announcements)
        self.pending -= len(announcements)


@dataclass
class GuildPlan:
    """What a delivery to one guild is to do, read in one transaction (:meth:`Deliverer._plan`).

    ``channel_id``: where to post (None: no channel set); ``mention_role_id``: the role the
    first message mentions (None: nobody); ``channel_problem``: the stored channel problem;
    ``announcements``: what to post, in order; ``unwanted``: release ids to record ``skipped``.
    """

    channel_id: int | None
    mention_role_id: int | None
    channel_problem: str | None
    announcements: list[Announcement]
    unwanted: list[str]


def make_nonce(guild_id: int, release_ids: Sequence[str]) -> str:
    """Deterministic message nonce (25 hex chars) from the guild id and the message's release ids (order-free)."""
    text = f"{guild_id}:{','.join(sorted(release_ids))}"
    return hashlib.sha256(text.encode()).hexdigest()[:NONCE_LENGTH]


class Deliverer:
    """Sends each guild its pending announcements through ``sender``, recording them in the ledger.

    ``db``: :class:`storage.db.Database`; ``sender``: a :class:`Sender`; ``clock``:
    returns the current aware UTC datetime. Deliveries to one guild are serialised in
    the process, and across processes by the named lease ``deliver:<guild id>`` when a
    ``coordinator`` is given; the ledger's unique constraint is the last word either way.
    With a coordinator, ledger claims carry their owner and only a dead process's
    unconfirmed claims are settled by another.
    """

    #: seconds a delivery waits for another process's delivery to the same guild
    lease_wait_seconds = 15.0

    def __init__(
        self, db: Database, sender: Sender, *, clock: Clock = utcnow, coordinator: Coordinator | None = None
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

    @property
    def _owner(self) -> str | None:
        """The owner id written on this process's claims (None without a coordinator)."""
        return None if self.coordinator is None else self.coordinator.owner

    def _lock(self, guild_id: int) -> asyncio.Lock:
        return self._guild_locks.setdefault(guild_id, asyncio.Lock())

    async def _live(self) -> set[str] | None:
        """Owner ids of the live processes (None without a coordinator: this process is alone)."""
        return None if self.coordinator is None else await self.coordinator.live_owners()

    # --- recovery of unconfirmed claims ---------------------------------------------------------

    async def recover(self, guild_ids: Sequence[int] | None = None) -> RecoveryResult:
        """Resolve the unconfirmed claims left by an earlier process (every guild, or ``guild_ids``).

        Never raises for a Discord failure (those claims stay for later); store errors propagate.
        """
        live = await self._live()  # with a coordinator: only claims a dead process left
        async with self.db.transaction() as session:
            gids = await ledger.guilds_with_claims(session, live=live, guild_ids=guild_ids)
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

    async def _stale_claims(self, guild_id: int) -> list[Delivery]:
        """Unconfirmed claims to settle: an earlier (or, with a coordinator, a dead) process's, or
        this process's own after a failed send. A live process's in-flight claim is never one."""
        live = await self._live()
        async with self.db.transaction() as session:
            rows = await ledger.unconfirmed_claims(session, guild_id)
        if live is not None:
            me = self._owner
            return [
                r
                for r in rows
                if (r.owner is None and r.claimed_at < self.started_at)
                or (r.owner is not None and r.owner not in live)
                or (r.owner == me and (guild_id, r.release_id) in self._unsettled)
            ]
        return [r for r in rows if r.claimed_at < self.started_at or (guild_id, r.release_id) in self._unsettled]

    async def _recover_guild(self, guild_id: int) -> RecoveryResult:
        """Settle the guild's stale claims (:meth:`_stale_claims`), channel by channel."""
        by_channel: dict[int | None, list[Delivery]] = {}
        for row in await self._stale_claims(guild_id):
            by_channel.setdefault(row.channel_id, []).append(row)
        result = RecoveryResult()
        for channel_id, claims in by_channel.items():
            main_of = {r.release_id: r.folded_into or r.release_id for r in claims}
            result.add(await self._settle(guild_id, channel_id, [r.release_id for r in claims], main_of))
        return result

    async def _settle(
        self, guild_id: int, channel_id: int | None, release_ids: list[str], main_of: dict[str, str]
    ) -> RecoveryResult:
        """Look for these claimed releases in the channel; confirm what is there, release the rest.

        ``main_of``: release id → the release whose embed announces it (itself, or the main
        release a twin is folded into). A claim without a channel is released. When the channel
        cannot be read the claims stay (``unresolved``) and are settled before the next delivery.
        """
        result = RecoveryResult()
        if channel_id is None:
            await self._unclaim(guild_id, release_ids)
            result.released = len(release_ids)
            return result
        urls = {ALBUM_URL.format(main): main for main in set(main_of.values())}
        found_by_url = await self._read_channel(guild_id, channel_id, list(urls), len(release_ids))
        if found_by_url is None:
            self._unsettled.update((guild_id, rid) for rid in release_ids)
            result.unresolved = len(release_ids)
            return result
        found = {urls[url]: mid for url, mid in found_by_url.items() if url in urls}
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

    async def _read_channel(
        self, guild_id: int, channel_id: int, urls: list[str], claims: int
    ) -> dict[str, int] | None:
        """``{album url: message id}`` of ``urls`` found among the channel's recent messages; ``{}``
        when the channel is gone (404: any message went with it); None when it cannot be read now
        (403 or a transient failure; ``claims``: how many claims wait on it, for the log)."""
        try:
            return await self.sender.find_posted(channel_id, urls, limit=HISTORY_LIMIT)
        except ChannelUnavailable as exc:
            if exc.status == 404:  # the channel is gone, and any message with it: post again elsewhere
                return {}
            log.warning(
                "guild %s: cannot read channel %s to settle %d claims: %s", guild_id, channel_id, claims, exc.reason
            )
        except Exception:
            log.warning(
                "guild %s: reading channel %s to settle %d claims failed", guild_id, channel_id, claims, exc_info=True
            )
        return None

    # --- delivery -------------------------------------------------------------------------------

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
        """One delivery, under the guild's lock (and lease): settle stale claims, plan, record the
        unwanted releases ``skipped``, then post the announcements message by message."""
        result = DeliveryResult(guild_id)
        await self._recover_guild(guild_id)  # claims an earlier process (or a failed send) left unsettled
        plan = await self._plan(guild_id)
        if plan is None:
            result.error = "unknown guild"
            return result
        result.problem = plan.channel_problem
        if plan.unwanted:
            result.skipped = await self._skip(guild_id, plan.unwanted, run_id)
        result.pending = len(plan.announcements)
        if plan.channel_id is None:
            result.problem = "no channel set"
            return result
        embeds = [announcement_embed(a) for a in plan.announcements]
        for indices in pack_indices(embeds):
            batch = [plan.announcements[i] for i in indices]
            mention = plan.mention_role_id if result.messages == 0 else None
            message_embeds = [embeds[i] for i in indices]
            if not await self._post_message(guild_id, plan.channel_id, batch, message_embeds, mention, run_id, result):
                break
        return result

    async def _plan(self, guild_id: int) -> GuildPlan | None:
        """The guild's settings and pending releases (:func:`bot.delivery.planner.plan_pending`), twins
        folded; None for an unknown guild."""
        async with self.db.transaction() as session:
            settings = await guilds.delivery_settings(session, guild_id)
            if settings is None:
                return None
            plan = await plan_pending(
                session, guild_id, settings.album_groups, GuildFilters.from_json(settings.filters)
            )
        return GuildPlan(
            channel_id=settings.channel_id,
            mention_role_id=settings.mention_role_id,
            channel_problem=settings.channel_problem,
            announcements=fold_twins(plan.wanted),
            unwanted=[release.id for release, _reason in plan.skipped],
        )

    async def _post_message(
        self,
        guild_id: int,
        channel_id: int,
        batch: list[Announcement],
        embeds: list[dict[str, Any]],
        mention_role_id: int | None,
        run_id: int | None,
        result: DeliveryResult,
    ) -> bool:
        """Claim → send → confirm one message of ``batch`` (``embeds`` rendered); counts it in
        ``result``. Returns False when the guild stops for this run (``result.error`` says why).

        ``mention_role_id``: the role this message mentions (the first message of a delivery only).
        """
        release_ids = [rid for a in batch for rid in a.release_ids]
        if not await self._claim(guild_id, channel_id, batch, run_id):
            result.error = "releases already claimed by another delivery"
            return False
        content, allowed_mentions = role_mention(mention_role_id) if mention_role_id else (None, None)
        try:
            message_id = await self.sender.send(
                channel_id,
                embeds,
                nonce=make_nonce(guild_id, release_ids),
                buttons=_buttons(batch),
                content=content,
                allowed_mentions=allowed_mentions,
            )
        except ChannelUnavailable as exc:
            await self._unclaim(guild_id, release_ids)
            await self._set_channel_problem(guild_id, exc.reason)
            result.error = result.problem = f"channel unavailable: {exc.reason}"
            log.warning("guild %s: channel %s unavailable: %s", guild_id, channel_id, exc.reason)
            return False
        except Exception as exc:
            await self._send_failed(guild_id, channel_id, batch, exc, result)
            result.error = f"send failed: {type(exc).__name__}: {exc}"[:300]
            return False
        result.problem = None
        result.count_message(batch)
        try:
            await self._confirm(guild_id, release_ids, message_id)
        except Exception as exc:  # sent but not confirmed: the claims stay, settled from the channel later
            log.exception("guild %s: message %s sent but not confirmed in the ledger", guild_id, message_id)
            self._unsettled.update((guild_id, rid) for rid in release_ids)
            result.error = f"sent but not confirmed: {type(exc).__name__}"
            return False
        return True

    async def _send_failed(
        self, guild_id: int, channel_id: int, batch: list[Announcement], exc: Exception, result: DeliveryResult
    ) -> None:
        """After a transient send failure (``exc``): settle the message's claims from the channel (Discord
        may have created the message after all: then it counts as sent)."""
        release_ids = [rid for a in batch for rid in a.release_ids]
        log.warning(
            "guild %s: send failed; settling %d releases from the channel", guild_id, len(release_ids), exc_info=exc
        )
        main_of = {rid: a.release.id for a in batch for rid in a.release_ids}
        settled = await self._settle(guild_id, channel_id, release_ids, main_of)
        if settled.confirmed:
            result.count_message([a for a in batch if a.release.id in settled.confirmed_ids])

    # --- the ledger -----------------------------------------------------------------------------

    async def _claim(self, guild_id: int, channel_id: int, batch: list[Announcement], run_id: int | None) -> bool:
        """Claim every release of ``batch`` (twins folded into their main release); False when one
        already has a ledger row for the guild (nothing is claimed then)."""
        releases = [(rid, None if rid == a.release.id else a.release.id) for a in batch for rid in a.release_ids]
        try:
            async with self.db.transaction() as session:
                await ledger.claim(
                    session, guild_id, channel_id, releases, now=self.clock(), run_id=run_id, owner=self._owner
                )
        except LedgerConflict:
            log.warning("guild %s: a release of this message is already in the ledger; skipping", guild_id)
            return False
        return True

    async def _skip(self, guild_id: int, release_ids: list[str], run_id: int | None) -> int:
        """Record releases of unwanted album groups as ``skipped`` (never posted); returns how many."""
        try:
            async with self.db.transaction() as session:
                await ledger.record_skipped(session, guild_id, release_ids, now=self.clock(), run_id=run_id)
        except LedgerConflict:
            log.warning("guild %s: a skipped release is already in the ledger", guild_id)
            return 0
        return len(release_ids)

    async def _unclaim(self, guild_id: int, release_ids: list[str]) -> None:
        async with self.db.transaction() as session:
            await ledger.unclaim(session, guild_id, release_ids)

    async def _confirm(self, guild_id: int, release_ids: list[str], message_id: int) -> int:
        """Mark claimed rows sent with ``message_id`` and clear the guild's channel problem; returns
        how many rows it confirmed.

        Fewer than ``release_ids`` means a claim vanished meanwhile (settled by another process
        that took it for a dead one's): logged as an error, since the release may be posted twice.
        """
        async with self.db.transaction() as session:
            confirmed = await ledger.confirm(session, guild_id, release_ids, message_id=message_id, now=self.clock())
            if confirmed < len(set(release_ids)):
                log.error(
                    "guild %s: message %s confirmed %d of %d claimed releases (a claim was settled "
                    "elsewhere meanwhile)",
                    guild_id,
                    message_id,
                    confirmed,
                    len(set(release_ids)),
                )
            await guilds.clear_channel_problem(session, guild_id)
        return confirmed

    async def _set_channel_problem(self, guild_id: int, reason: str) -> None:
        async with self.db.transaction() as session:
            await guilds.set_channel_problem(session, guild_id, reason)


def _buttons(batch: Sequence[Announcement]) -> PostButtons | None:
    """The message's post buttons (:func:`bot.delivery.components.post_buttons`), None when there are none.

    A failure there never stops a post: the message goes out without buttons.
    """
    try:
        return components.post_buttons(batch) or None
    except Exception:
        log.exception("post_buttons failed; posting without buttons")
        return None
