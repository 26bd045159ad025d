"""Announced releases (docs/musicdata.md, "Announcements"): one post per (guild, MusicBrainz release group)
that MusicBrainz lists ahead of its date, edited when the date moves or the group disappears.

**What is announced.** In a guild with ``/settings upcoming enabled:True``, each stored release group
(``storage.musicdata``) of an artist the guild follows that was first seen with a future date
(:attr:`storage.upcoming.AnnouncedGroup.announced_ahead`), is dated today or later, is not gone and not
matched to a Spotify release yet. Its type (:func:`group_release_type`: MusicBrainz primary type Album,
Single, EP; secondary type Compilation) must be one of the guild's release types, and the guild's filters
apply as to posts (:func:`skip_reason`); a group left out is recorded ``skipped`` for good. It goes where a
post of that type by that artist would go (:func:`bot.delivery.planner.destination_of`); no channel: it
waits.

**Exactly once.** claim (``storage.upcoming.claim``: ``INSERT … ON CONFLICT DO NOTHING``, the message's
content stored) → send (a message with a nonce, or a forum post) → confirm (``posted``, the message id).
A 403/404 deletes the claim (announced later). A claim whose send failed, or that a crashed (with a
coordinator: dead) process left, is settled from the channel: a message is found by its exact content
among the bot's recent messages there (:meth:`Sender.find_content`), a forum post by the MusicBrainz URL
of its embed (:meth:`Sender.find_forum_posts`); found → confirmed, absent → the claim is deleted and the
next look posts it, unreadable → left for the next look. One process announces to a guild at a time (the
named lease ``upcoming:<guild id>``); the ledger makes it exactly once regardless.

**Edits.** A posted announcement whose group's date changed is edited once to say "postponed to <date>"
("moved to" when earlier); a group that disappeared (``gone_at``) to say it is no longer listed (and back,
should it return). Each edit is taken by one conditional ``UPDATE`` of ``shown_date`` / ``shown_state``
(``storage.upcoming.mark_shown``), so two processes never both make it; a failed edit is given back and
made at the next look. A group matched to a Spotify release is not edited any more: the release's own post
replies to the announcement (:mod:`bot.delivery.deliverer`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.clock import Clock, utcnow
from bot.coordination.coordinator import Coordinator, LeaseBusy
from bot.delivery.deliverer import make_nonce
from bot.delivery.planner import GuildFilters, destination_of, title_blocked, title_filter
from bot.delivery.render import FORUM_TITLE_LIMIT, TITLE_LIMIT, escape_markdown
from bot.delivery.sending import HISTORY_LIMIT, ChannelUnavailable, Destination, Sender
from bot.delivery.types import TYPE_NAMES
from storage import guilds, musicdata, upcoming
from storage.db import Database
from storage.models import Release, UpcomingPost
from storage.routes import GuildRoutes
from storage.upcoming import AnnouncedGroup, PostedAnnouncement

log = logging.getLogger(__name__)

RELEASE_GROUP_URL = "https://musicbrainz.org/release-group/{}"
"""A release group's MusicBrainz page: the announcement embed's ``url`` (a forum post is found by it)."""

COVER_ART_URL = "https://coverartarchive.org/release/{release}/{image}-250.jpg"
"""The Cover Art Archive's 250 px thumbnail of image ``caa_id`` of release ``caa_release_mbid`` (Cover Art
Archive API, ``/release/{mbid}/{id}-(250|500|1200)``; the ids ListenBrainz's fresh releases give)."""

MUSICBRAINZ_ORANGE = 0xEB743B

MB_PRIMARY_TYPES = {"Album": "album", "Single": "single", "EP": "ep"}
"""MusicBrainz primary types as the guild's release types (Other, Broadcast and none have none)."""

MB_SECONDARY_FILTERS = {"Remix": "remix", "Live": "live"}
"""MusicBrainz secondary types that a ``/settings filters`` kind leaves out, whatever the title says."""

NAME_LIMIT = 200
"""Characters of a title or an artist credit shown in an announcement's content."""


def group_release_type(primary_type: str | None, secondary_types: Iterable[str]) -> str | None:
    """The release type (:data:`bot.delivery.types.RELEASE_TYPES`) of a MusicBrainz release group:
    ``compilation`` for a Compilation secondary type, else its primary type Album / Single / EP; None for
    Other, Broadcast or no type (never announced)."""
    if "Compilation" in secondary_types:
        return "compilation"
    return MB_PRIMARY_TYPES.get(primary_type or "")


def _as_release(group: AnnouncedGroup) -> Release:
    """A transient ``Release`` with the group's title and followed artists, for the planner's pure rules."""
    return Release(
        id=f"mb:{group.mbid}",
        name=group.title,
        artists=[{"id": a, "name": ""} for a in group.spotify_ids],
        labels=[],
    )


def skip_reason(group: AnnouncedGroup, types: Iterable[str], filters: GuildFilters) -> str | None:
    """Why ``group`` is not announced to a guild posting release ``types`` with ``filters``, or None to
    announce it: ``"type"`` (:func:`group_release_type` not among ``types``), ``"block_artist"`` (by a
    blocked artist), a ``/settings filters`` kind (the title, as for posts, or a Remix / Live secondary
    type), ``"block_title"`` (a blocked keyword or pattern in the title)."""
    kind = group_release_type(group.primary_type, group.secondary_types)
    if kind is None or kind not in set(types):
        return "type"
    if set(group.spotify_ids) & filters.blocked_artist_ids:
        return "block_artist"
    for secondary in group.secondary_types:
        kind_filter = MB_SECONDARY_FILTERS.get(secondary)
        if kind_filter is not None and kind_filter in filters.skip:
            return kind_filter
    kind_filter = title_filter(_as_release(group), filters.skip)
    if kind_filter is not None:
        return kind_filter
    if title_blocked(group.title, filters.block_keywords, filters.block_patterns):
        return "block_title"
    return None


def destination(group: AnnouncedGroup, routes: GuildRoutes, default_channel_id: int | None) -> int | None:
    """Where ``group``'s announcement goes: as a post of its type by its artists would
    (:func:`bot.delivery.planner.destination_of`); None: no channel set."""
    return destination_of(
        _as_release(group), group_release_type(group.primary_type, group.secondary_types), routes, default_channel_id
    )


def spoken_date(day: dt.date, today: dt.date) -> str:
    """``day`` in words, "Friday 12 December" ("Friday 8 January 2027" in another year than ``today``)."""
    text = f"{day:%A} {day.day} {day:%B}"
    return text if day.year == today.year else f"{text} {day.year}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def state_text(state: str, day: dt.date, first_date: dt.date, today: dt.date) -> str:
    """What an announcement says of its date: "out Friday 12 December", "postponed to …" (a later date
    than ``first_date``; "moved to …" for an earlier one) or "no longer listed on MusicBrainz"."""
    spoken = spoken_date(day, today)
    if state == "gone":
        return f"~~out {spoken}~~ no longer listed on MusicBrainz"
    if state == "postponed":
        return f"{'postponed' if day > first_date else 'moved'} to {spoken}"
    return f"out {spoken}"


def notice_content(group: AnnouncedGroup, state: str, day: dt.date, today: dt.date) -> str:
    """The announcement's content: "Announced: *Title* — Artist · out Friday 12 December" (title and artist
    markdown-escaped and cut to :data:`NAME_LIMIT`; the date part as :func:`state_text`)."""
    title = escape_markdown(_cut(group.title, NAME_LIMIT))
    artist = escape_markdown(_cut(group.artist_credit_name, NAME_LIMIT))
    return f"Announced: *{title}* — {artist} · {state_text(state, day, group.first_date, today)}"


def notice_embed(group: AnnouncedGroup, state: str, day: dt.date, today: dt.date) -> dict[str, Any]:
    """The announcement's embed: the title linking to the MusicBrainz release group, the artist and the date
    part, the type, and the cover art (Cover Art Archive) when the group has one (``caa_id``)."""
    kind = group_release_type(group.primary_type, group.secondary_types)
    embed: dict[str, Any] = {
        "title": _cut(group.title, TITLE_LIMIT),
        "url": RELEASE_GROUP_URL.format(group.mbid),
        "description": (
            f"{escape_markdown(_cut(group.artist_credit_name, NAME_LIMIT))}\n"
            f"{TYPE_NAMES.get(kind or '', 'Release')} · {state_text(state, day, group.first_date, today)}"
        ),
        "color": MUSICBRAINZ_ORANGE,
        "footer": {"text": "Announced on MusicBrainz"},
    }
    if group.caa_id is not None and group.caa_release_mbid:
        embed["thumbnail"] = {"url": COVER_ART_URL.format(release=group.caa_release_mbid, image=group.caa_id)}
    return embed


def forum_title(title: str, artist_credit_name: str) -> str:
    """A forum post's title for an announcement: "Artist — Title", at most 100 characters."""
    return _cut(f"{artist_credit_name} — {title}", FORUM_TITLE_LIMIT)


def wanted_shown(post: PostedAnnouncement, group: AnnouncedGroup) -> tuple[dt.date | None, str]:
    """What ``post`` should say now of ``group``: gone (the date it showed), a new date (``postponed``),
    back from gone, or what it says already."""
    if group.gone:
        return post.shown_date, "gone"
    if group.release_date != post.shown_date:
        return group.release_date, "postponed"
    if post.shown_state == "gone":
        return group.release_date, "postponed" if group.release_date != group.first_date else "announced"
    return post.shown_date, post.shown_state


@dataclass
class AnnounceResult:
    """What :meth:`Announcer.announce` did in one guild: announcements ``posted``, groups ``skipped`` (types,
    filters), messages ``edited``, claims ``settled`` (found posted or released), ``busy`` (another process
    holds the guild's lease), ``errors`` (one line each)."""

    guild_id: int
    posted: int = 0
    skipped: int = 0
    edited: int = 0
    settled: int = 0
    busy: bool = False
    errors: list[str] = field(default_factory=list)


class Announcer:
    """Posts and edits announced releases (see the module docstring) through ``sender``.

    ``db``: the store; ``clock``: aware UTC now; ``coordinator``: this process's (the lease
    ``upcoming:<guild id>``, the owner written on claims, the live processes); None: one process alone.
    """

    def __init__(
        self, db: Database, sender: Sender, *, clock: Clock = utcnow, coordinator: Coordinator | None = None
    ) -> None:
        self.db = db
        self.sender = sender
        self.clock = clock
        self.coordinator = coordinator
        self.started_at = clock()
        self._locks: dict[int, asyncio.Lock] = {}
        #: (guild id, release group MBID) claims of this process whose send failed and are not settled yet
        self._unsettled: set[tuple[int, str]] = set()

    @property
    def _owner(self) -> str | None:
        return None if self.coordinator is None else self.coordinator.owner

    async def run(self) -> list[AnnounceResult]:
        """Announce in every guild with ``upcoming`` on, and settle the claims of the others (turned off
        meanwhile). Never raises for a Discord failure; store errors propagate."""
        async with self.db.transaction() as session:
            gids = set(await upcoming.upcoming_guilds(session)) | set(await upcoming.guilds_with_claims(session))
        return [await self.announce(gid) for gid in sorted(gids)]

    async def announce(self, guild_id: int) -> AnnounceResult:
        """Settle the guild's stale claims, then (``upcoming`` on) post its new announcements and make the
        edits its posted ones owe, under the guild's lease (busy: nothing done)."""
        result = AnnounceResult(guild_id)
        async with self._locks.setdefault(guild_id, asyncio.Lock()):
            if self.coordinator is None:
                await self._announce(guild_id, result)
                return result
            try:
                async with self.coordinator.lease(f"upcoming:{guild_id}"):
                    await self._announce(guild_id, result)
            except LeaseBusy:
                result.busy = True
        return result

    async def _announce(self, guild_id: int, result: AnnounceResult) -> None:
        await self._settle(guild_id, result)
        async with self.db.transaction() as session:
            enabled = await upcoming.upcoming_enabled(session, guild_id)
        if enabled:
            await self._post_new(guild_id, result)
            await self._edit(guild_id, result)

    # --- settling unconfirmed claims ------------------------------------------------------------

    async def _stale(self, rows: Sequence[UpcomingPost], guild_id: int) -> list[UpcomingPost]:
        """The claims to settle: an earlier (with a coordinator: a dead) process's, or this one's after a
        failed send; never a live process's claim in flight."""
        if self.coordinator is None:
            return [
                r for r in rows if r.claimed_at < self.started_at or (guild_id, r.release_group_mbid) in self._unsettled
            ]
        live = await self.coordinator.live_owners()
        return [
            r
            for r in rows
            if (r.owner is None and r.claimed_at < self.started_at)
            or (r.owner is not None and r.owner not in live)
            or (r.owner == self._owner and (guild_id, r.release_group_mbid) in self._unsettled)
        ]

    async def _settle(self, guild_id: int, result: AnnounceResult) -> None:
        async with self.db.transaction() as session:
            rows = await upcoming.claims(session, guild_id)
        for row in await self._stale(rows, guild_id):
            if await self._settle_one(guild_id, row) is not None:
                result.settled += 1

    async def _settle_one(self, guild_id: int, row: UpcomingPost) -> str | None:
        """Find the claimed announcement in its channel: found → confirmed (``"confirmed"``), absent (or the
        channel gone) → the claim deleted (``"released"``); unreadable → left (None)."""
        mbid = row.release_group_mbid
        found: int | None = None
        try:
            if row.channel_id is None:
                found = None
            elif row.destination == "forum":
                async with self.db.transaction() as session:
                    group = await musicdata.release_group(session, mbid)
                title = forum_title(group.title, group.artist_credit_name) if group is not None else ""
                url = RELEASE_GROUP_URL.format(mbid)
                found = (await self.sender.find_forum_posts(row.channel_id, {url: title})).get(url)
            else:
                found = await self.sender.find_content(row.channel_id, row.content or "", limit=HISTORY_LIMIT)
        except ChannelUnavailable as exc:
            if exc.status != 404:
                log.warning(
                    "guild %s: cannot read channel %s to settle announcement %s", guild_id, row.channel_id, mbid
                )
                self._unsettled.add((guild_id, mbid))
                return None
        except Exception:
            log.warning("guild %s: settling announcement %s failed", guild_id, mbid, exc_info=True)
            self._unsettled.add((guild_id, mbid))
            return None
        async with self.db.transaction() as session:
            if found is None:
                await upcoming.unclaim(session, guild_id, mbid)
            else:
                thread = found if row.destination == "forum" else None
                await upcoming.confirm(session, guild_id, mbid, message_id=found, thread_id=thread, now=self.clock())
        self._unsettled.discard((guild_id, mbid))
        return "released" if found is None else "confirmed"

    # --- new announcements ----------------------------------------------------------------------

    async def _post_new(self, guild_id: int, result: AnnounceResult) -> None:
        today = self.clock().date()
        async with self.db.transaction() as session:
            settings = await guilds.delivery_settings(session, guild_id)
            groups = await upcoming.unannounced_groups(session, guild_id, since=today)
        if settings is None:
            return
        filters = GuildFilters.from_json(settings.filters)
        ahead = [g for g in groups if g.announced_ahead]
        skipped = [g.mbid for g in ahead if skip_reason(g, settings.album_groups, filters) is not None]
        if skipped:
            async with self.db.transaction() as session:
                await upcoming.record_skipped(session, guild_id, skipped, now=self.clock())
            result.skipped += len(skipped)
        destinations: dict[int, Destination | None] = {}
        for group in ahead:
            if group.mbid in skipped:
                continue
            channel_id = destination(group, settings.routes, settings.channel_id)
            if channel_id is None:
                continue  # no channel set: it waits
            if channel_id not in destinations:
                destinations[channel_id] = await self._destination(guild_id, channel_id, result)
            target = destinations[channel_id]
            if target is None:
                continue
            if not await self._post_one(guild_id, target, group, today, result):
                destinations[channel_id] = None  # this channel failed: the rest wait for the next look

    async def _destination(self, guild_id: int, channel_id: int, result: AnnounceResult) -> Destination | None:
        try:
            return await self.sender.destination(channel_id)
        except Exception as exc:
            log.warning("guild %s: channel %s unavailable for announcements: %s", guild_id, channel_id, exc)
            result.errors.append(f"channel {channel_id}: {exc}")
            return None

    async def _post_one(
        self, guild_id: int, target: Destination, group: AnnouncedGroup, today: dt.date, result: AnnounceResult
    ) -> bool:
        """Claim → send → confirm one announcement; False when the channel failed."""
        content = notice_content(group, "announced", group.release_date, today)
        embed = notice_embed(group, "announced", group.release_date, today)
        forum = target.kind == "forum"
        async with self.db.transaction() as session:
            claimed = await upcoming.claim(
                session,
                guild_id,
                group.mbid,
                channel_id=target.channel_id,
                destination="forum" if forum else "message",
                content=content,
                shown_date=group.release_date,
                owner=self._owner,
                now=self.clock(),
            )
        if not claimed:
            return True
        try:
            if forum:
                kind = group_release_type(group.primary_type, group.secondary_types)
                tag = target.tags.get(TYPE_NAMES.get(kind or "", ""))
                message_id = await self.sender.create_forum_post(
                    target.channel_id,
                    name=forum_title(group.title, group.artist_credit_name),
                    embeds=[embed],
                    tag_ids=[] if tag is None else [tag],
                    content=content,
                )
            else:
                message_id = await self.sender.send(
                    target.channel_id, [embed], nonce=make_nonce(guild_id, [f"mb:{group.mbid}"]), content=content
                )
        except ChannelUnavailable as exc:
            async with self.db.transaction() as session:
                await upcoming.unclaim(session, guild_id, group.mbid)
            result.errors.append(f"channel {target.channel_id}: {exc.reason}")
            return False
        except Exception as exc:
            log.warning(
                "guild %s: announcing %s failed; settling from the channel", guild_id, group.mbid, exc_info=True
            )
            result.errors.append(f"send failed: {type(exc).__name__}")
            self._unsettled.add((guild_id, group.mbid))
            async with self.db.transaction() as session:
                rows = [r for r in await upcoming.claims(session, guild_id) if r.release_group_mbid == group.mbid]
            if rows and await self._settle_one(guild_id, rows[0]) == "confirmed":
                result.posted += 1
            return False
        try:
            async with self.db.transaction() as session:
                await upcoming.confirm(
                    session,
                    guild_id,
                    group.mbid,
                    message_id=message_id,
                    thread_id=message_id if forum else None,
                    now=self.clock(),
                )
        except Exception:
            log.exception("guild %s: announcement %s sent but not confirmed", guild_id, message_id)
            self._unsettled.add((guild_id, group.mbid))
            result.errors.append("sent but not confirmed")
            return False
        result.posted += 1
        return True

    # --- edits ----------------------------------------------------------------------------------

    async def _edit(self, guild_id: int, result: AnnounceResult) -> None:
        today = self.clock().date()
        async with self.db.transaction() as session:
            posted = await upcoming.posted_announcements(session, guild_id)
        for post, group in posted:
            if group.spotify_release_id is not None:
                continue  # out: the release's post replies to the announcement
            want = wanted_shown(post, group)
            was = (post.shown_date, post.shown_state)
            if want == was:
                continue
            async with self.db.transaction() as session:
                took = await upcoming.mark_shown(
                    session, guild_id, group.mbid, was=was, now_shown=want, now=self.clock()
                )
            if not took:
                continue  # another process made this edit
            day, state = want
            shown = day or group.release_date
            try:
                await self.sender.edit_message(
                    post.message_channel_id,
                    post.message_id,
                    content=notice_content(group, state, shown, today),
                    embeds=[notice_embed(group, state, shown, today)],
                )
            except Exception as exc:
                if isinstance(exc, ChannelUnavailable) and exc.status == 404:
                    continue  # the message is gone: nothing left to edit
                log.warning("guild %s: editing announcement %s failed", guild_id, post.message_id, exc_info=True)
                result.errors.append(f"edit failed: {type(exc).__name__}")
                async with self.db.transaction() as session:  # given back: the next look edits it
                    await upcoming.mark_shown(session, guild_id, group.mbid, was=want, now_shown=was, now=None)
                continue
            result.edited += 1
