"""Posting a guild's pending announcements, exactly once, through the delivery ledger.

**Destinations.** Each pending release goes to one channel (:mod:`bot.delivery.destinations`: an
artist route, else a type route, else the default channel). Releases bound for one channel are
posted together, as the channel's kind asks (:meth:`Sender.destination`):

* a **text** channel gets digest messages (≤ 10 embeds, ≤ 6,000 characters each, with the post
  buttons);
* an **announcement** channel the same, each message then crossposted when the guild publishes
  (:mod:`bot.delivery.publisher`);
* a **forum** gets one post per release, titled "Artist — Title", the embed and buttons as its
  starter message, tagged Album / Single / EP / Compilation / Appears on when the forum has that tag
  (created first when the bot has Manage Channels and the forum has room: 20 tags).

**Mentions.** Each message or post mentions the members subscribed in ``mention`` mode to the
artists of its releases, plus the guild's role on the first post of each channel
(:mod:`bot.delivery.mentions`); mentions past Discord's limits go into follow-up messages, each
posted once (``storage.mention_ledger``: written ``waiting`` with the post's claim, ``pending`` once
the post is confirmed, then claimed, sent, confirmed). **DMs**: confirming a post enqueues one DM per
DM-mode subscriber of its releases (``storage.dm_ledger``), sent by :mod:`bot.delivery.dm_outbox`.

Per post: **claim** (insert ``deliveries`` rows, ``status="claimed"``, twins with ``folded_into``,
``destination`` ``message`` or ``forum``, and the post's follow-ups; commit) → **send** (a message
with a nonce derived from the guild and its release ids, so Discord's ``enforce_nonce`` folds a quick
retry into the earlier message; a forum post takes no nonce) → **confirm** (``status="sent"``,
``message_id`` — a forum post's thread id —, ``sent_at``; its follow-ups released, its DMs enqueued,
its crosspost due, in the same transaction). The unique (guild_id, release_id) constraint makes a
second claim of the same release fail, so no release is ever posted twice to one guild. The ledger's
statements are in :mod:`storage.ledger`.

A 403/404 deletes that post's claims (the releases stay pending for the next run), stores the
channel's problem on the guild (``channel_problem``, naming a route's channel) and stops posting to
that channel for this run; the guild's other channels go on. Any other send failure (5xx after
discord.py's own retries, a timeout) may or may not have created the post, so the channel is read
first (:meth:`Sender.find_posted`, :meth:`Sender.find_forum_posts`): found → confirmed; absent → the
claims are deleted and the releases posted next run.

**Crash recovery.** A process killed between claim and confirm leaves ``claimed`` rows
without a message id. :meth:`Deliverer.recover` (called at start-up, before the bot
connects to the gateway, and again at the start of every delivery to a guild that still
has such rows) resolves them the same way: a message is looked for among the bot's recent messages
in the claim's channel (the release's Spotify album URL as an embed ``url``), a forum post among the
forum's active and archived threads (its starter message's embed ``url``); found → ``sent`` with that
message id; absent (or the channel is gone, 404) → the claim is deleted and the release is posted by
the next run — not resent at once, so recovery never posts and start-up stays quick. When the channel
cannot be read (403, a transient error) the claims stay and are tried again before the next delivery
to that guild. A follow-up left ``claimed`` is settled by finding its exact content among the bot's
recent messages there (found → ``sent``, else ``pending``: sent by the next delivery). This holds
whether or not Discord's nonce window has passed; the nonce additionally folds discord.py's own
retries of one request into one message. Without a coordinator (one process per database) a claim is
only taken for stale when it predates this process (or this process itself could not settle it);
with one, when its owner is dead (docs/multiprocess.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.clock import Clock, utcnow
from bot.coordination.coordinator import Coordinator, LeaseBusy
from bot.delivery import components
from bot.delivery.components import PostButtons
from bot.delivery.destinations import RoutedAnnouncement, followed_artists, group_by_channel, route
from bot.delivery.mentions import (
    CONTENT_LIMIT,
    Mentions,
    dm_users,
    mention_users,
    part_allowed_mentions,
    plan_mentions,
)
from bot.delivery.planner import Announcement, GuildFilters, PendingPlan, fold_twins, plan_pending
from bot.delivery.publisher import Publisher
from bot.delivery.render import ALBUM_URL, announcement_embed, forum_post_title, pack_indices
from bot.delivery.sending import (
    HISTORY_LIMIT,
    ChannelUnavailable,
    Destination,
    DmClosed,
    RateLimited,
    Sender,
    UnknownMember,
    UnknownUser,
)
from bot.delivery.types import TYPE_NAMES
from bot.ops.logs import log_context
from storage import catalog, dm_ledger, guilds, ledger, members, mention_ledger, upcoming
from storage.db import Database, Session
from storage.ledger import LedgerConflict
from storage.members import Subscriber
from storage.mention_ledger import PartConflict
from storage.models import Delivery, MentionPost
from storage.upcoming import PostedAnnouncement

__all__ = [
    "HISTORY_LIMIT",
    "ChannelUnavailable",
    "Deliverer",
    "DeliveryResult",
    "Destination",
    "DmClosed",
    "GuildPlan",
    "RateLimited",
    "RecoveryResult",
    "Sender",
    "UnknownMember",
    "UnknownUser",
    "failure_text",
    "make_nonce",
    "retry_delay",
]

log = logging.getLogger(__name__)

NONCE_LENGTH = 25  # Discord: nonce ≤ 25 characters
MAX_FORUM_TAGS = 20  # Discord: a forum has at most 20 tags
#: seconds between a delivery Discord failed and its retry, by failures in a row (the last repeats):
#: 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, then every 6 h (``[delivery] retry_backoff_seconds``)
RETRY_BACKOFF: tuple[float, ...] = (120.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 21600.0)
OUT_NOW = "Out now!"
"""The content of a release's post that replies to its announcement (:mod:`bot.delivery.upcoming`)."""


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
    recorded as ``skipped`` and never posted; ``messages``: messages and forum posts sent;
    ``first_seen``: when each posted announcement's release was first seen (aware UTC);
    ``pending``: announcements left for a later run; ``mention_parts``: mention follow-ups sent;
    ``dms``: DMs enqueued for DM-mode subscribers; ``error``: why delivery stopped early in some
    channel (None when it did not); ``problem``: a standing configuration problem ("no channel
    set", or the channel problem stored on the guild). ``failure``: what Discord answered when it
    failed a post (a 5xx after discord.py's retries, a long or global 429, a network error: e.g.
    ``"Discord failed: 503"``), ``retry_at`` (aware UTC): when the due scan tries the ``pending``
    releases again then (:func:`retry_delay`); ``stopped``: the bot began shutting down, so the
    delivery stopped before its next post (the rest stays pending for the next run).
    """

    guild_id: int
    posted: int = 0
    folded: int = 0
    skipped: int = 0
    messages: int = 0
    pending: int = 0
    mention_parts: int = 0
    dms: int = 0
    error: str | None = None
    problem: str | None = None
    first_seen: list[dt.datetime] = field(default_factory=list)
    failure: str | None = None
    retry_at: dt.datetime | None = None
    stopped: bool = False
    retry_after: float | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """True when nothing went wrong (pending releases for want of a channel count as ok)."""
        return self.error is None

    def count_message(self, announcements: Sequence[Announcement]) -> None:
        """One message (or forum post) carrying ``announcements`` reached the channel."""
        self.messages += 1
        self.posted += len(announcements)
        self.first_seen.extend(a.release.first_seen_at for a in announcements)
        self.folded += sum(len(a.twins) for a in announcements)
        self.pending -= len(announcements)


@dataclass
class GuildPlan:
    """What a delivery to one guild is to do, read in one transaction (:meth:`Deliverer._plan`).

    ``channel_id``: the default channel (None: none set); ``mention_role_id``: the role the first
    post of each channel mentions (None: nobody); ``channel_problem``: the stored channel problem;
    ``publish``: crosspost in announcement channels; ``routed``: what to post, in order, each with
    its destination; ``unwanted``: release ids to record ``skipped``; ``subscribers``: the guild's
    subscribers of the artists of ``routed`` (``{artist id: [Subscriber]}``); ``announced``: the posted
    announcement (:mod:`bot.delivery.upcoming`) of each routed main release that had one
    (``{release id: PostedAnnouncement}``).
    """

    channel_id: int | None
    mention_role_id: int | None
    channel_problem: str | None
    publish: bool
    routed: list[RoutedAnnouncement]
    unwanted: list[str]
    subscribers: dict[str, list[Subscriber]] = field(default_factory=dict)
    announced: dict[str, PostedAnnouncement] = field(default_factory=dict)


@dataclass
class _Post:
    """One message or forum post about to be claimed: its announcements, ``post_key`` (the first main
    release id: names its follow-ups), mentions, the DM subscribers per main release, and whether it is
    to be crossposted."""

    items: list[RoutedAnnouncement]
    mentions: Mentions
    dm_users: dict[str, list[int]]
    publish: bool = False
    announced: bool = False

    @property
    def announcements(self) -> list[Announcement]:
        return [i.announcement for i in self.items]

    @property
    def release_ids(self) -> list[str]:
        return [rid for a in self.announcements for rid in a.release_ids]

    @property
    def post_key(self) -> str:
        return self.items[0].announcement.release.id


def failure_text(exc: BaseException) -> str:
    """What Discord (or the network) answered to a failed post, short, for ``/status`` and ``/refresh``:
    ``"Discord failed: 503"`` (an HTTP status: discord.py's ``HTTPException.status``), ``"Discord rate
    limit: retry after 120 s"`` (:class:`RateLimited`), ``"network error: ClientConnectorError"``."""
    if isinstance(exc, RateLimited):
        return f"Discord rate limit: retry after {exc.retry_after:.0f} s"
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return f"Discord failed: {status}"
    if isinstance(exc, (TimeoutError, OSError)) or type(exc).__module__.split(".")[0] == "aiohttp":
        return f"network error: {type(exc).__name__}"
    return type(exc).__name__


def retry_delay(failures: int, backoff: Sequence[float] = RETRY_BACKOFF, retry_after: float | None = None) -> float:
    """Seconds until the retry of a delivery that failed ``failures`` times in a row (≥ 1):
    ``backoff[failures - 1]``, the last step repeating, and never before Discord's ``retry_after``
    (seconds, a 429's)."""
    step = backoff[min(max(failures, 1), len(backoff)) - 1] if backoff else 0.0
    return max(step, retry_after or 0.0)


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
    unconfirmed claims are settled by another. ``publisher``: crossposts confirmed messages at once
    (one on ``db`` and ``sender`` when None); ``on_dms``: called after DMs were enqueued (the DM
    outbox's ``wake``). ``retry_backoff``: seconds from a delivery Discord failed to its retry, by
    failures in a row (:data:`RETRY_BACKOFF`).
    """

    #: seconds a delivery waits for another process's delivery to the same guild
    lease_wait_seconds = 15.0

    def __init__(
        self,
        db: Database,
        sender: Sender,
        *,
        clock: Clock = utcnow,
        coordinator: Coordinator | None = None,
        publisher: Publisher | None = None,
        on_dms: Callable[[], None] | None = None,
        retry_backoff: Sequence[float] = RETRY_BACKOFF,
    ) -> None:
        self.db = db
        self.retry_backoff = tuple(retry_backoff) or RETRY_BACKOFF
        #: set by :meth:`stop`: no new post is claimed (a post being sent finishes and is confirmed)
        self.stopping = False
        self.sender = sender
        self.clock = clock
        self.coordinator = coordinator
        self.publisher = publisher if publisher is not None else Publisher(db, sender, clock=clock)
        self.on_dms = on_dms
        #: called with each guild's :class:`DeliveryResult` as its delivery ends (the metrics)
        self.on_result: Callable[[DeliveryResult], object] | None = None
        #: called with the number of unconfirmed claims found posted and confirmed by a recovery
        self.on_settled: Callable[[int], object] | None = None
        self._guild_locks: dict[int, asyncio.Lock] = {}
        #: claims older than this belong to an earlier process (see the module docstring)
        self.started_at = clock()
        #: (guild id, release id) claims this process could not settle after a failed send
        self._unsettled: set[tuple[int, str]] = set()
        #: mention follow-up ids this process could not settle after a failed send
        self._unsettled_parts: set[int] = set()

    def stop(self) -> None:
        """Shutting down: claim no new post from now on. A post being sent finishes and is confirmed
        (or, cancelled after the shutdown's grace, is left claimed for recovery to settle); what is
        not posted stays pending for the next run."""
        self.stopping = True

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
        """Resolve the unconfirmed claims (posts and mention follow-ups) left by an earlier process
        (every guild, or ``guild_ids``).

        Never raises for a Discord failure (those claims stay for later); store errors propagate.
        """
        live = await self._live()  # with a coordinator: only claims a dead process left
        async with self.db.transaction() as session:
            gids = set(await ledger.guilds_with_claims(session, live=live, guild_ids=guild_ids))
            parts = await mention_ledger.claimed_parts(session, live=live, guild_ids=guild_ids)
        gids.update(p.guild_id for p in parts)
        total = RecoveryResult()
        for gid in sorted(gids):
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

    def _stale(self, rows: Sequence[Delivery], guild_id: int, live: set[str] | None) -> list[Delivery]:
        """The rows of ``rows`` to settle: an earlier (or, with a coordinator, a dead) process's, or this
        process's own after a failed send. A live process's in-flight claim is never one."""
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

    def _stale_parts(self, rows: Sequence[MentionPost], live: set[str] | None) -> list[MentionPost]:
        """As :meth:`_stale` for claimed mention follow-ups."""
        if live is not None:
            me = self._owner
            return [
                r
                for r in rows
                if (r.owner is None and r.claimed_at < self.started_at)
                or (r.owner is not None and r.owner not in live)
                or (r.owner == me and r.id in self._unsettled_parts)
            ]
        return [r for r in rows if r.claimed_at < self.started_at or r.id in self._unsettled_parts]

    async def _recover_guild(self, guild_id: int) -> RecoveryResult:
        """Settle the guild's stale post claims channel by channel, then its stale follow-up claims."""
        live = await self._live()
        async with self.db.transaction() as session:
            rows = await ledger.unconfirmed_claims(session, guild_id)
            parts = await mention_ledger.claimed_parts(session, live=None, guild_ids=[guild_id])
        by_channel: dict[tuple[int | None, str], list[Delivery]] = {}
        for row in self._stale(rows, guild_id, live):
            by_channel.setdefault((row.channel_id, row.destination or "message"), []).append(row)
        result = RecoveryResult()
        for (channel_id, destination), claims in by_channel.items():
            main_of = {r.release_id: r.folded_into or r.release_id for r in claims}
            result.add(await self._settle(guild_id, channel_id, destination, [r.release_id for r in claims], main_of))
        for part in self._stale_parts(parts, live):
            await self._settle_part(part)
        if result.confirmed and self.on_settled is not None:
            try:
                self.on_settled(result.confirmed)
            except Exception:
                log.warning("guild %s: on_settled failed", guild_id, exc_info=True)
        return result

    async def _settle(
        self,
        guild_id: int,
        channel_id: int | None,
        destination: str,
        release_ids: list[str],
        main_of: dict[str, str],
    ) -> RecoveryResult:
        """Look for these claimed releases in the channel; confirm what is there, release the rest.

        ``destination``: ``message`` (a message among the channel's recent ones) or ``forum`` (a post
        among the forum's threads). ``main_of``: release id → the release whose embed announces it
        (itself, or the main release a twin is folded into). A claim without a channel is released.
        When the channel cannot be read the claims stay (``unresolved``) and are settled before the
        next delivery.
        """
        result = RecoveryResult()
        if channel_id is None:
            await self._unclaim(guild_id, release_ids, set(main_of.values()))
            result.released = len(release_ids)
            return result
        urls = {ALBUM_URL.format(main): main for main in set(main_of.values())}
        if destination == "forum":
            found_by_url = await self._read_forum(guild_id, channel_id, urls, len(release_ids))
        else:
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
            mains = [r for r in rids if main_of.get(r, r) == r]
            thread = mid if destination == "forum" else None
            await self._confirm(guild_id, rids, mid, posts=dict.fromkeys(mains, thread), dms=None)
            result.confirmed += len(rids)
            result.confirmed_ids.update(rids)
        if missing:
            await self._unclaim(guild_id, missing, {main_of.get(r, r) for r in missing})
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

    async def _read_forum(
        self, guild_id: int, forum_id: int, urls: Mapping[str, str], claims: int
    ) -> dict[str, int] | None:
        """``{album url: thread id}`` of the forum posts announcing ``urls`` (``{url: main release id}``),
        as :meth:`_read_channel` answers for a channel."""
        async with self.db.transaction() as session:
            releases = await catalog.releases_by_id(session, set(urls.values()))
        wanted = {url: forum_post_title(releases[rid]) for url, rid in urls.items() if rid in releases}
        try:
            return await self.sender.find_forum_posts(forum_id, wanted)
        except ChannelUnavailable as exc:
            if exc.status == 404:
                return {}
            log.warning(
                "guild %s: cannot read forum %s to settle %d claims: %s", guild_id, forum_id, claims, exc.reason
            )
        except Exception:
            log.warning(
                "guild %s: reading forum %s to settle %d claims failed", guild_id, forum_id, claims, exc_info=True
            )
        return None

    async def _settle_part(self, part: MentionPost) -> None:
        """Settle a claimed follow-up: its exact content among the bot's recent messages in its channel →
        ``sent``; absent → ``pending`` (sent by the next delivery); unreadable → left for later. A message
        already recorded for another follow-up (an earlier post's, word for word the same) is not it."""
        async with self.db.transaction() as session:
            taken = await mention_ledger.sent_message_ids(session, part.channel_id, part.content)
        try:
            found = await self.sender.find_content(part.channel_id, part.content, limit=HISTORY_LIMIT, exclude=taken)
        except Exception:
            log.warning(
                "cannot read channel %s to settle mention follow-up %s", part.channel_id, part.id, exc_info=True
            )
            self._unsettled_parts.add(part.id)
            return
        async with self.db.transaction() as session:
            if found is not None:
                await mention_ledger.confirm_part(session, part.id, message_id=found, now=self.clock())
            else:
                await mention_ledger.unclaim_part(session, part.id)
        self._unsettled_parts.discard(part.id)

    # --- delivery -------------------------------------------------------------------------------

    async def deliver(
        self, guild_id: int, *, run_id: int | None = None, release_ids: Collection[str] | None = None
    ) -> DeliveryResult:
        """Post guild ``guild_id``'s pending announcements, oldest first; never raises for a send failure.

        ``release_ids`` (a release-day delivery, :mod:`bot.scheduling.release_day`): only the pending
        announcements carrying one of them (with their folded twins) are posted or recorded skipped; the
        rest stay pending for the weekly run.

        Releases without a channel (no route, no default channel) stay pending (``problem="no
        channel set"``). On :class:`ChannelUnavailable` a channel's claims are removed,
        ``guilds.channel_problem`` says which channel failed and why, and posting to that channel
        stops; any other send error stops that channel too. A delivery that posted and met no
        channel problem clears ``channel_problem``. Store errors propagate.
        """
        result = await self._deliver_locked(guild_id, run_id, release_ids)
        if self.on_result is not None:
            try:
                self.on_result(result)
            except Exception:
                log.warning("guild %s: on_result failed", guild_id, exc_info=True)
        return result

    async def _deliver_locked(
        self, guild_id: int, run_id: int | None, release_ids: Collection[str] | None
    ) -> DeliveryResult:
        """:meth:`deliver` under the guild's lock, and its lease with a coordinator."""
        async with log_context(guild_id=guild_id, run_id=run_id), self._lock(guild_id):
            if self.coordinator is None:
                return await self._deliver(guild_id, run_id, release_ids)
            try:
                async with self.coordinator.lease(f"deliver:{guild_id}", wait_seconds=self.lease_wait_seconds):
                    return await self._deliver(guild_id, run_id, release_ids)
            except LeaseBusy:  # another process is posting to this guild now: it posts what is pending
                result = DeliveryResult(guild_id)
                result.problem = "another bot process is posting to this server right now"
                return result

    async def _deliver(
        self, guild_id: int, run_id: int | None, release_ids: Collection[str] | None = None
    ) -> DeliveryResult:
        """One delivery, under the guild's lock (and lease): settle stale claims, send the follow-ups and
        crossposts earlier posts still owe, plan, record the unwanted releases ``skipped``, then post to
        each destination channel in turn."""
        result = DeliveryResult(guild_id)
        await self._recover_guild(guild_id)  # claims an earlier process (or a failed send) left unsettled
        await self._send_parts(guild_id, result)
        await self.publisher.run_due(guild_id=guild_id)
        plan = await self._plan(guild_id, release_ids)
        if plan is None:
            result.error = "unknown guild"
            return result
        result.problem = plan.channel_problem
        if plan.unwanted:
            result.skipped = await self._skip(guild_id, plan.unwanted, run_id)
        result.pending = len(plan.routed)
        problems: dict[int, str] = {}
        for channel_id, items in group_by_channel(plan.routed).items():
            if channel_id is None:
                result.problem = "no channel set"
                continue
            reason = await self._deliver_to(guild_id, channel_id, items, plan, run_id, result)
            if reason is not None:
                problems[channel_id] = (
                    reason if channel_id == plan.channel_id else f"route to <#{channel_id}>: {reason}"
                )
                result.error = f"channel unavailable: {problems[channel_id]}"
        await self._record_problems(guild_id, problems, result, default_channel_id=plan.channel_id)
        await self._record_retry(guild_id, result)
        return result

    async def _record_retry(self, guild_id: int, result: DeliveryResult) -> None:
        """Discord failed a post and releases still wait: count the failure and set the guild's retry
        time on the back-off (the due scan then delivers again, without asking Spotify anything).
        Otherwise (posted, nothing waiting, or a stop): a retry that was waiting is cleared."""
        if result.stopped:
            return
        now = self.clock()
        async with self.db.transaction() as session:
            if result.failure is None or result.pending <= 0:
                await guilds.clear_delivery_retry(session, guild_id)
                return
            failures = await guilds.record_delivery_failure(session, guild_id, error=result.failure)
            delay = retry_delay(failures, self.retry_backoff, result.retry_after)
            result.retry_at = now + dt.timedelta(seconds=delay)
            await guilds.set_delivery_retry(session, guild_id, result.retry_at)
        log.warning(
            "guild %s: %d releases wait for a retry in %.0f s (failure %d in a row: %s)",
            guild_id,
            result.pending,
            delay,
            failures,
            result.failure,
        )

    async def _record_problems(
        self, guild_id: int, problems: dict[int, str], result: DeliveryResult, *, default_channel_id: int | None
    ) -> None:
        """Store the channel problems this delivery met on the guild (the default channel's first), or
        clear the stored one when it posted without meeting any."""
        if problems:
            text = "; ".join(p for cid, p in sorted(problems.items(), key=lambda kv: kv[0] != default_channel_id))
            async with self.db.transaction() as session:
                await guilds.set_channel_problem(session, guild_id, text)
            result.problem = text
        elif result.messages:
            async with self.db.transaction() as session:
                await guilds.clear_channel_problem(session, guild_id)
            if result.problem != "no channel set":
                result.problem = None

    async def _plan(self, guild_id: int, only: Collection[str] | None = None) -> GuildPlan | None:
        """The guild's settings, routes and pending releases (:func:`bot.delivery.planner.plan_pending`),
        twins folded, each routed (:func:`bot.delivery.destinations.route`), and the subscribers of
        their artists; None for an unknown guild. With ``only``, just the announcements carrying one of
        those release ids, and just those releases recorded skipped."""
        async with self.db.transaction() as session:
            settings = await guilds.delivery_settings(session, guild_id)
            if settings is None:
                return None
            pending = await plan_pending(
                session, guild_id, settings.album_groups, GuildFilters.from_json(settings.filters)
            )
            announcements = fold_twins(pending.wanted)
            unwanted = [release.id for release, _reason in pending.skipped]
            if only is not None:
                keep = set(only)
                announcements = [a for a in announcements if not keep.isdisjoint(a.release_ids)]
                unwanted = [rid for rid in unwanted if rid in keep]
            routed = await self._route(session, guild_id, announcements, settings, pending)
            artist_ids = list(dict.fromkeys(a for item in routed for a in item.artist_ids))
            subscribers = await members.subscribers(session, guild_id, artist_ids) if artist_ids else {}
            announced = (
                await upcoming.announcement_messages(session, guild_id, [i.announcement.release.id for i in routed])
                if routed
                else {}
            )
        return GuildPlan(
            channel_id=settings.channel_id,
            mention_role_id=settings.mention_role_id,
            channel_problem=settings.channel_problem,
            publish=settings.publish,
            routed=routed,
            unwanted=unwanted,
            subscribers=subscribers,
            announced=announced,
        )

    @staticmethod
    async def _route(
        session: Session,
        guild_id: int,
        announcements: list[Announcement],
        settings: guilds.DeliverySettings,
        pending: PendingPlan,
    ) -> list[RoutedAnnouncement]:
        """Route each announcement by the guild's routes (reads its follows and the releases' links)."""
        if not announcements:
            return []
        followed = set(await guilds.followed_artist_ids(session, [guild_id]))
        links = await ledger.release_links(session, guild_id, [rid for a in announcements for rid in a.release_ids])
        routed: list[RoutedAnnouncement] = []
        for a in announcements:
            own: set[tuple[str, str]] = set()
            for rid in a.release_ids:
                own |= links.get(rid, set())
            routed.append(
                route(
                    a,
                    links=own,
                    followed=followed,
                    routes=settings.routes,
                    default_channel_id=settings.channel_id,
                    posted_type=pending.types.get(a.release.id),
                )
            )
        return routed

    async def _deliver_to(
        self,
        guild_id: int,
        channel_id: int,
        items: list[RoutedAnnouncement],
        plan: GuildPlan,
        run_id: int | None,
        result: DeliveryResult,
    ) -> str | None:
        """Post ``items`` to ``channel_id`` as its kind asks; returns the channel's problem (403/404)
        when it has one, else None (a transient failure is in ``result.error``)."""
        try:
            destination = await self.sender.destination(channel_id)
        except ChannelUnavailable as exc:
            log.warning("guild %s: channel %s unavailable: %s", guild_id, channel_id, exc.reason)
            return exc.reason
        except Exception as exc:
            log.warning("guild %s: cannot look channel %s up", guild_id, channel_id, exc_info=True)
            result.error = f"channel lookup failed: {type(exc).__name__}: {exc}"[:300]
            _note_failure(result, exc)
            return None
        replies = {i.announcement.release.id: t for i in items if (t := _reply_target(i, destination, plan))}
        role = True
        for item in [i for i in items if i.announcement.release.id in replies]:
            outcome = await self._post_reply(
                guild_id, destination, item, replies[item.announcement.release.id], plan, run_id, result, role=role
            )
            role = False
            if outcome is not True:
                return outcome if isinstance(outcome, str) else None
        rest = [i for i in items if i.announcement.release.id not in replies]
        if not rest:
            return None
        if destination.kind == "forum":
            return await self._post_forum(guild_id, destination, rest, plan, run_id, result, role=role)
        return await self._post_messages(guild_id, destination, rest, plan, run_id, result, role=role)

    async def _post_reply(
        self,
        guild_id: int,
        destination: Destination,
        item: RoutedAnnouncement,
        target: PostedAnnouncement,
        plan: GuildPlan,
        run_id: int | None,
        result: DeliveryResult,
        *,
        role: bool,
    ) -> bool | str:
        """A release whose announcement was posted in this channel: its own message, "Out now!", replying
        to the announcement (in a forum: posted in the announcement's thread), on the ledger as any post
        (claimed with the channel or thread it goes to, settled from there)."""
        publish = destination.kind == "announcement" and plan.publish
        post = self._post(plan, [item], role=role, publish=publish)
        post.announced = True
        if target.thread_id is not None:  # a forum post: the release goes into its thread
            channel_id, reply_to = target.thread_id, None
        else:
            channel_id, reply_to = target.channel_id, target.message_id
        embeds = [announcement_embed(item.announcement)]
        return await self._post_message(guild_id, channel_id, post, embeds, run_id, result, reply_to=reply_to)

    def _stopped(self, result: DeliveryResult) -> bool:
        """True (and ``result.stopped`` set) when the bot is shutting down: no new post is claimed."""
        if self.stopping:
            result.stopped = True
        return result.stopped

    def _post(self, plan: GuildPlan, items: list[RoutedAnnouncement], *, role: bool, publish: bool) -> _Post:
        """The post of ``items``: its mentions (with the guild's role when ``role``) and DM subscribers."""
        artists = list(dict.fromkeys(a for item in items for a in item.artist_ids))
        mentions = plan_mentions(mention_users(artists, plan.subscribers), plan.mention_role_id if role else None)
        dms = {i.announcement.release.id: dm_users(i.artist_ids, plan.subscribers) for i in items}
        return _Post(items, mentions, {rid: users for rid, users in dms.items() if users}, publish=publish)

    # --- text and announcement channels ---------------------------------------------------------

    async def _post_messages(
        self,
        guild_id: int,
        destination: Destination,
        items: list[RoutedAnnouncement],
        plan: GuildPlan,
        run_id: int | None,
        result: DeliveryResult,
        *,
        role: bool = True,
    ) -> str | None:
        """Digest messages of ``items`` in a text or announcement channel; the first mentions the role (when
        ``role``: no earlier post of this delivery in the channel did)."""
        embeds = [announcement_embed(i.announcement) for i in items]
        publish = destination.kind == "announcement" and plan.publish
        for n, indices in enumerate(pack_indices(embeds)):
            post = self._post(plan, [items[i] for i in indices], role=role and n == 0, publish=publish)
            outcome = await self._post_message(
                guild_id, destination.channel_id, post, [embeds[i] for i in indices], run_id, result
            )
            if outcome is not True:
                return outcome if isinstance(outcome, str) else None
        return None

    async def _post_message(
        self,
        guild_id: int,
        channel_id: int,
        post: _Post,
        embeds: list[dict[str, Any]],
        run_id: int | None,
        result: DeliveryResult,
        *,
        reply_to: int | None = None,
    ) -> bool | str:
        """Claim → send → confirm one message (``embeds`` rendered), then its follow-ups and crosspost.
        ``reply_to``: the announcement it replies to (its content then starts with :data:`OUT_NOW`).

        Returns True to go on with the channel, the channel's problem (403/404), or False when posting
        to it stops for this run (``result.error`` says why).
        """
        release_ids = post.release_ids
        if self._stopped(result):
            return False
        if not await self._claim(guild_id, channel_id, post, run_id, destination="message"):
            result.error = "releases already claimed by another delivery"
            return False
        try:
            message_id = await self.sender.send(
                channel_id,
                embeds,
                nonce=make_nonce(guild_id, release_ids),
                buttons=_buttons(post.announcements),
                content=_out_now(post.mentions.content) if post.announced else post.mentions.content,
                allowed_mentions=post.mentions.allowed_mentions,
                reply_to=reply_to,
            )
        except ChannelUnavailable as exc:
            await self._unclaim(guild_id, release_ids, {post.post_key})
            log.warning("guild %s: channel %s unavailable: %s", guild_id, channel_id, exc.reason)
            return exc.reason
        except Exception as exc:
            await self._send_failed(guild_id, channel_id, "message", post, exc, result)
            result.error = f"send failed: {type(exc).__name__}: {exc}"[:300]
            _note_failure(result, exc)
            return False
        return await self._sent(guild_id, channel_id, post, message_id, result, thread_id=None)

    async def _sent(
        self,
        guild_id: int,
        channel_id: int,
        post: _Post,
        message_id: int,
        result: DeliveryResult,
        *,
        thread_id: int | None,
    ) -> bool:
        """After a successful send: count it, confirm it (follow-ups released, DMs enqueued, crosspost
        due), then send its follow-ups and crosspost it. False when the confirmation failed."""
        result.count_message(post.announcements)
        try:
            result.dms += await self._confirm(
                guild_id, post.release_ids, message_id, posts={post.post_key: thread_id}, dms=post.dm_users
            )
        except Exception as exc:  # sent but not confirmed: the claims stay, settled from the channel later
            log.exception("guild %s: post %s sent but not confirmed in the ledger", guild_id, message_id)
            self._unsettled.update((guild_id, rid) for rid in post.release_ids)
            result.error = f"sent but not confirmed: {type(exc).__name__}"
            return False
        await self._send_parts(guild_id, result)
        if post.publish:
            await self.publisher.publish(guild_id, channel_id, message_id)
        return True

    async def _send_failed(
        self, guild_id: int, channel_id: int, destination: str, post: _Post, exc: Exception, result: DeliveryResult
    ) -> None:
        """After a transient send failure (``exc``): settle the post's claims from the channel (Discord
        may have created it after all: then it counts as sent)."""
        release_ids = post.release_ids
        failure = failure_text(exc)
        log.warning(
            "guild %s: send failed (%s); settling %d releases from the channel",
            guild_id,
            failure,
            len(release_ids),
            exc_info=None if failure != type(exc).__name__ else exc,  # a known Discord or network failure: one line
        )
        main_of = {rid: a.release.id for a in post.announcements for rid in a.release_ids}
        settled = await self._settle(guild_id, channel_id, destination, release_ids, main_of)
        if settled.confirmed:
            result.count_message([a for a in post.announcements if a.release.id in settled.confirmed_ids])

    # --- forums ---------------------------------------------------------------------------------

    async def _post_forum(
        self,
        guild_id: int,
        destination: Destination,
        items: list[RoutedAnnouncement],
        plan: GuildPlan,
        run_id: int | None,
        result: DeliveryResult,
        *,
        role: bool = True,
    ) -> str | None:
        """One forum post per announcement, tagged with its type (the tags created first when missing and
        allowed); the first post mentions the role (when ``role``: no earlier post of this delivery in the
        forum did)."""
        tags = await self._forum_tags(guild_id, destination, {TYPE_NAMES[i.release_type] for i in items})
        for n, item in enumerate(items):
            post = self._post(plan, [item], role=role and n == 0, publish=False)
            tag = tags.get(TYPE_NAMES[item.release_type])
            outcome = await self._post_forum_post(
                guild_id, destination.channel_id, post, [] if tag is None else [tag], run_id, result
            )
            if outcome is not True:
                return outcome if isinstance(outcome, str) else None
        return None

    async def _forum_tags(self, guild_id: int, destination: Destination, needed: set[str]) -> dict[str, int]:
        """The forum's tags ``{name: id}``, the ``needed`` ones it lacks created first when the bot has
        Manage Channels there and the forum has room (≤ 20 tags; in type order while room lasts). A
        failure to create them never stops the posts: they go out untagged."""
        tags = dict(destination.tags)
        missing = [name for name in TYPE_NAMES.values() if name in needed and name not in tags]
        room = MAX_FORUM_TAGS - destination.tag_count
        if not missing or not destination.may_manage or room <= 0:
            return tags
        try:
            return await self.sender.create_forum_tags(destination.channel_id, missing[:room])
        except Exception:
            log.warning(
                "guild %s: could not add tags %s to forum %s", guild_id, missing, destination.channel_id, exc_info=True
            )
            return tags

    async def _post_forum_post(
        self,
        guild_id: int,
        forum_id: int,
        post: _Post,
        tag_ids: list[int],
        run_id: int | None,
        result: DeliveryResult,
    ) -> bool | str:
        """Claim → create → confirm one forum post, then its follow-ups (in its thread). Returns as
        :meth:`_post_message`."""
        announcement = post.announcements[0]
        if self._stopped(result):
            return False
        if not await self._claim(guild_id, forum_id, post, run_id, destination="forum"):
            result.error = "releases already claimed by another delivery"
            return False
        try:
            thread_id = await self.sender.create_forum_post(
                forum_id,
                name=forum_post_title(announcement.release),
                embeds=[announcement_embed(announcement)],
                tag_ids=tag_ids,
                buttons=_buttons(post.announcements),
                content=post.mentions.content,
                allowed_mentions=post.mentions.allowed_mentions,
            )
        except ChannelUnavailable as exc:
            await self._unclaim(guild_id, post.release_ids, {post.post_key})
            log.warning("guild %s: forum %s unavailable: %s", guild_id, forum_id, exc.reason)
            return exc.reason
        except Exception as exc:
            await self._send_failed(guild_id, forum_id, "forum", post, exc, result)
            result.error = f"forum post failed: {type(exc).__name__}: {exc}"[:300]
            _note_failure(result, exc)
            return False
        return await self._sent(guild_id, forum_id, post, thread_id, result, thread_id=thread_id)

    # --- mention follow-ups ---------------------------------------------------------------------

    async def _send_parts(self, guild_id: int, result: DeliveryResult) -> None:
        """Send the guild's ``pending`` mention follow-ups in order, each claimed → sent → confirmed.

        A gone channel or thread (404) ends a follow-up for good (its post went with it); 403 or a
        transient failure stops for this delivery (a failed send is settled from the channel first).
        """
        async with self.db.transaction() as session:
            parts = await mention_ledger.pending_parts(session, guild_id)
        for part in parts:
            async with self.db.transaction() as session:
                if not await mention_ledger.claim_part(session, part.id, owner=self._owner, now=self.clock()):
                    continue
            try:
                message_id = await self.sender.send(
                    part.channel_id,
                    [],
                    nonce=make_nonce(guild_id, [f"{part.post_key}#{part.part}"]),
                    content=part.content,
                    allowed_mentions=part_allowed_mentions(
                        mention_ledger.Part(part.part, part.content, tuple(part.user_ids))
                    ),
                )
            except ChannelUnavailable as exc:
                async with self.db.transaction() as session:
                    if exc.status == 404:
                        await mention_ledger.drop_part(session, part.id)
                    else:
                        await mention_ledger.unclaim_part(session, part.id)
                log.warning("guild %s: mention follow-up %s not sent: %s", guild_id, part.id, exc.reason)
                if exc.status != 404:
                    return
                continue
            except Exception:
                log.warning("guild %s: sending mention follow-up %s failed", guild_id, part.id, exc_info=True)
                self._unsettled_parts.add(part.id)
                await self._settle_part(part)
                return
            async with self.db.transaction() as session:
                await mention_ledger.confirm_part(session, part.id, message_id=message_id, now=self.clock())
            result.mention_parts += 1

    # --- the ledger -----------------------------------------------------------------------------

    async def _claim(
        self, guild_id: int, channel_id: int, post: _Post, run_id: int | None, *, destination: str
    ) -> bool:
        """Claim every release of ``post`` (twins folded into their main release) and write its mention
        follow-ups ``waiting``, in one transaction; False when a release already has a ledger row for
        the guild (nothing is claimed then)."""
        releases = [
            (rid, None if rid == a.release.id else a.release.id) for a in post.announcements for rid in a.release_ids
        ]
        now = self.clock()
        try:
            async with self.db.transaction() as session:
                await ledger.claim(
                    session,
                    guild_id,
                    channel_id,
                    releases,
                    now=now,
                    run_id=run_id,
                    owner=self._owner,
                    destination=destination,
                    publish=post.publish,
                )
                if post.mentions.parts:
                    await mention_ledger.add_parts(
                        session, guild_id, post.post_key, channel_id, post.mentions.parts, now=now, owner=self._owner
                    )
        except (LedgerConflict, PartConflict):
            log.warning("guild %s: a release of this post is already in the ledger; skipping", guild_id)
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

    async def _unclaim(self, guild_id: int, release_ids: list[str], post_keys: set[str]) -> None:
        """Delete the claims of ``release_ids`` (pending again) and the follow-ups waiting on ``post_keys``."""
        async with self.db.transaction() as session:
            await ledger.unclaim(session, guild_id, release_ids)
            await mention_ledger.drop_waiting(session, guild_id, post_keys)

    async def _confirm(
        self,
        guild_id: int,
        release_ids: list[str],
        message_id: int,
        *,
        posts: Mapping[str, int | None],
        dms: Mapping[str, list[int]] | None,
    ) -> int:
        """Mark claimed rows sent with ``message_id``, release the follow-ups of ``posts``
        (``{post_key: thread id or None}``) and enqueue the DMs — ``dms`` (``{main release id: [user
        id]}``), or, None, the release's DM subscribers read now (a post settled after a crash) — in
        one transaction. Returns how many DMs were enqueued.

        Fewer confirmed rows than ``release_ids`` means a claim vanished meanwhile (settled by another
        process that took it for a dead one's): logged as an error, since the release may be posted
        twice.
        """
        now = self.clock()
        async with self.db.transaction() as session:
            confirmed = await ledger.confirm(session, guild_id, release_ids, message_id=message_id, now=now)
            if confirmed < len(set(release_ids)):
                log.error(
                    "guild %s: message %s confirmed %d of %d claimed releases (a claim was settled "
                    "elsewhere meanwhile)",
                    guild_id,
                    message_id,
                    confirmed,
                    len(set(release_ids)),
                )
            await mention_ledger.release_parts(session, guild_id, posts, now=now)
            if dms is None:
                dms = await self._dm_subscribers(session, guild_id, list(posts))
            enqueued = await dm_ledger.enqueue(session, guild_id, dict(dms), now=now) if dms else 0
        if enqueued and self.on_dms is not None:
            self.on_dms()
        return enqueued

    @staticmethod
    async def _dm_subscribers(session: Session, guild_id: int, release_ids: list[str]) -> dict[str, list[int]]:
        """``{release id: [user id]}``: the guild's DM-mode subscribers of each release's artists that it
        follows (as :meth:`_route` finds them)."""
        releases = await catalog.releases_by_id(session, release_ids)
        if not releases:
            return {}
        links = await ledger.release_links(session, guild_id, list(releases))
        followed = set(await guilds.followed_artist_ids(session, [guild_id]))
        artists = {
            rid: followed_artists(Announcement(release), followed, (a for a, _group in links.get(rid, set())))
            for rid, release in releases.items()
        }
        subscribers = await members.subscribers(session, guild_id, {a for ids in artists.values() for a in ids})
        out = {rid: dm_users(ids, subscribers) for rid, ids in artists.items()}
        return {rid: users for rid, users in out.items() if users}


def _note_failure(result: DeliveryResult, exc: BaseException) -> None:
    """Record on ``result`` what Discord answered to a failed post (:func:`failure_text`) and a 429's
    ``retry_after``, for the retry of the releases left pending."""
    result.failure = failure_text(exc)
    if isinstance(exc, RateLimited):
        result.retry_after = max(result.retry_after or 0.0, exc.retry_after)


def _reply_target(item: RoutedAnnouncement, destination: Destination, plan: GuildPlan) -> PostedAnnouncement | None:
    """The posted announcement ``item``'s post replies to: one made for its main release in the channel it
    goes to (a message in a text or announcement channel; a post of the forum it goes to), else None."""
    target = plan.announced.get(item.announcement.release.id)
    if target is None or target.channel_id != destination.channel_id:
        return None
    if destination.kind == "forum":
        return target if target.destination == "forum" and target.thread_id is not None else None
    return target if target.destination == "message" else None


def _out_now(mentions: str | None) -> str:
    """A reply's content: :data:`OUT_NOW`, then the post's mentions when they fit Discord's 2,000 characters
    (else the mentions alone: they are what must reach people)."""
    if not mentions:
        return OUT_NOW
    text = f"{OUT_NOW} {mentions}"
    return text if len(text) <= CONTENT_LIMIT else mentions


def _buttons(batch: Sequence[Announcement]) -> PostButtons | None:
    """The message's post buttons (:func:`bot.delivery.components.post_buttons`), None when there are none.

    A failure there never stops a post: the message goes out without buttons.
    """
    try:
        return components.post_buttons(batch) or None
    except Exception:
        log.exception("post_buttons failed; posting without buttons")
        return None
