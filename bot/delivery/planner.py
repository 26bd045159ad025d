"""What to post to a guild: its pending releases, clean/explicit twins folded (docs/design.md, "What new means").

A release is **new for a guild** when it is linked to an artist the guild follows,
the link is not a baseline link, the link was first seen strictly after the guild's
``followed_at`` for that artist, and the guild's ledger (``deliveries``) has no row
for it (claimed, sent or skipped). Only releases linked in one of the guild's
``album_groups`` (album, single, compilation, appears_on) and passing the guild's
filters (title keywords, muted appearances: :class:`GuildFilters`) are posted; the
others are recorded as ``skipped`` by the deliverer.

The reads are storage's (:func:`storage.ledger.pending_releases`,
:func:`storage.guilds.delivery_settings`); this module keeps the rules: :func:`skip_reason`,
:func:`plan_releases` and :func:`fold_twins`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.tracking.editions import are_twins, edition_marker
from storage import guilds, ledger
from storage.db import Session
from storage.ledger import PendingRelease
from storage.models import Release

DEFAULT_ALBUM_GROUPS = guilds.DEFAULT_ALBUM_GROUPS
"""The album groups a guild gets posted until it picks its own (``/settings types``)."""


@dataclass
class Announcement:
    """One post: ``release`` (the main edition) and ``twins`` folded into it (e.g. its "Clean" edition)."""

    release: Release
    twins: list[Release] = field(default_factory=list)

    @property
    def release_ids(self) -> list[str]:
        """The main release id, then the twins' ids."""
        return [self.release.id, *(t.id for t in self.twins)]


def _main_rank(release: Release) -> int:
    """Lower ranks are preferred as the announced edition: explicit / plain title first, clean last."""
    return 1 if edition_marker(release.name)[1] == "clean" else 0


def _folded_pair(a: Release, b: Release) -> bool:
    """One of ``a``/``b`` was recorded by tracking as another edition of the other (``folded_into``)."""
    return a.folded_into == b.id or b.folded_into == a.id


def fold_twins(releases: Sequence[Release]) -> list[Announcement]:
    """Group ``releases`` (in order) into announcements, folding clean/explicit twins.

    An announcement keeps the position of its earliest member; its main release is
    the explicit or plainly titled edition (the first one when several qualify).
    """
    announcements: list[Announcement] = []
    used: set[str] = set()
    for i, release in enumerate(releases):
        if release.id in used:
            continue
        used.add(release.id)
        group = [release]
        for other in releases[i + 1 :]:
            if other.id not in used and (are_twins(release, other) or _folded_pair(release, other)):
                used.add(other.id)
                group.append(other)
        main = min(group, key=_main_rank)  # min is stable: first of the best rank
        announcements.append(Announcement(release=main, twins=[r for r in group if r is not main]))
    return announcements


# --- filters (/settings filters) -----------------------------------------------------------
#
# Title keywords, case-insensitive, matched as whole words in the release title. A release
# whose title matches a kind the guild skips is recorded as ``skipped`` (never posted).
FILTER_KEYWORDS: dict[str, tuple[str, ...]] = {
    "remix": ("remix", "remixes", "remixed", "rmx"),
    "live": ("(live…)", "[live…]", "- live…", "live at", "live from", "live in", "unplugged"),
    "sped_up": ("sped up", "sped-up", "speed up", "nightcore", "slowed", "slowed + reverb"),
    "instrumental": ("instrumental", "instrumentals", "karaoke"),
}
FILTER_NAMES = {
    "remix": "remixes",
    "live": "live versions",
    "sped_up": "sped-up / slowed versions",
    "instrumental": "instrumental versions",
}
_FILTER_RES: dict[str, re.Pattern[str]] = {
    "remix": re.compile(r"\b(?:remix(?:es|ed)?|rmx)\b", re.IGNORECASE),
    "live": re.compile(r"[(\[]\s*live\b|\s-\s*live\b|\blive\s+(?:at|from|in)\b|\bunplugged\b", re.IGNORECASE),
    "sped_up": re.compile(r"\b(?:sped[\s-]*up|speed[\s-]*up|nightcore|slowed)\b", re.IGNORECASE),
    "instrumental": re.compile(r"\b(?:instrumentals?|karaoke)\b", re.IGNORECASE),
}


@dataclass(frozen=True)
class GuildFilters:
    """A guild's ``/settings filters``: ``skip`` (kinds of :data:`FILTER_KEYWORDS`) and ``mute_appearances``.

    ``mute_appearances``: Spotify ids of followed artists whose *appearances* are muted: a
    release that reaches the guild only through those artists' appearances (their
    ``appears_on`` listing, or a release whose own artists do not include them) is not posted (their own albums, singles and compilations still are, and a release that
    another followed artist lists as their own is posted too).
    """

    skip: frozenset[str] = frozenset()
    mute_appearances: frozenset[str] = frozenset()

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> GuildFilters:
        """From ``guilds.filters`` (unknown kinds are ignored)."""
        data = data or {}
        return cls(
            frozenset(k for k in data.get("skip") or () if k in FILTER_KEYWORDS),
            frozenset(str(a) for a in data.get("mute_appearances") or ()),
        )

    def to_json(self) -> dict[str, list[str]]:
        """For ``guilds.filters``: sorted, stable lists."""
        return {
            "skip": [k for k in FILTER_KEYWORDS if k in self.skip],
            "mute_appearances": sorted(self.mute_appearances),
        }


def title_filter(release: Release, skip: frozenset[str] | set[str]) -> str | None:
    """The first kind of ``skip`` that ``release``'s title matches (a ``remix_of`` label counts as ``remix``), else None."""
    for kind in FILTER_KEYWORDS:
        if kind not in skip:
            continue
        if _FILTER_RES[kind].search(release.name or ""):
            return kind
        if kind == "remix" and any(label.get("kind") == "remix_of" for label in release.labels or ()):
            return kind
    return None


@dataclass
class PendingPlan:
    """A guild's pending releases split by :func:`plan_pending`.

    ``wanted``: to post (oldest first seen first); ``skipped``: ``(release, reason)`` never to
    post, reason ``"type"`` (album group not wanted), ``"muted"`` (a muted artist's
    appearance), ``"edition"`` (another edition of a release not in this post: tracking's
    ``folded_into``) or a :data:`FILTER_KEYWORDS` kind.
    """

    wanted: list[Release] = field(default_factory=list)
    skipped: list[tuple[Release, str]] = field(default_factory=list)


async def guild_album_groups(session: Session, guild_id: int) -> list[str]:
    """The album groups guild ``guild_id`` wants posted (``guilds.album_groups``; the default when unset)."""
    settings = await guilds.delivery_settings(session, guild_id)
    return list(settings.album_groups if settings is not None else DEFAULT_ALBUM_GROUPS)


def skip_reason(release: Release, links: set[tuple[str, str]], groups: set[str], filters: GuildFilters) -> str | None:
    """Why ``release`` (with its qualifying ``links``) is not posted to a guild, or None to post it.

    ``"type"``: no link in a wanted album group; ``"muted"``: every wanted link is an
    appearance (``appears_on``, or the artist is not among ``release.artists``) of a muted artist; else the title filter kind (:func:`title_filter`).
    """
    wanted_links = {(a, g) for a, g in links if g in groups}
    if not wanted_links:
        return "type"
    if filters.mute_appearances:
        main_artists = {str(artist.get("id")) for artist in release.artists or ()}
        # An appearance: listed in the artist's appears_on group, or the artist is not one of the
        # release's own artists (Spotify's 2026 listings carry no album_group, so the stored group
        # of a combined listing can say "single" for what is really an appearance).
        if all(
            a in filters.mute_appearances and (g == "appears_on" or (main_artists and a not in main_artists))
            for a, g in wanted_links
        ):
            return "muted"
    return title_filter(release, filters.skip)


async def plan_pending(
    session: Session, guild_id: int, album_groups: Sequence[str] | None = None, filters: GuildFilters | None = None
) -> PendingPlan:
    """Split the guild's new releases into what to post and what to skip for good (:class:`PendingPlan`).

    ``album_groups`` / ``filters`` default to the guild's stored settings (an unknown guild: the
    default groups, no filters). Reads only.
    """
    if album_groups is None or filters is None:
        settings = await guilds.delivery_settings(session, guild_id)
        if album_groups is None:
            album_groups = settings.album_groups if settings is not None else DEFAULT_ALBUM_GROUPS
        if filters is None:
            filters = GuildFilters.from_json(settings.filters if settings is not None else None)
    return plan_releases(await ledger.pending_releases(session, guild_id), set(album_groups), filters)


def plan_releases(pending: Sequence[PendingRelease], groups: set[str], filters: GuildFilters) -> PendingPlan:
    """The pure part of :func:`plan_pending`: ``pending`` (oldest first seen first) split by
    :func:`skip_reason`, then every later edition whose release is not in this post skipped as
    ``"edition"``."""
    plan = PendingPlan()
    for item in pending:
        reason = skip_reason(item.release, item.links, groups, filters)
        if reason is None:
            plan.wanted.append(item.release)
        else:
            plan.skipped.append((item.release, reason))
    # Another edition of a release known before it (tracking's ``folded_into``: a clean/explicit
    # twin or a re-issue arriving later) is posted only folded into that release's own post; when
    # that one is not in this post (already posted, skipped, or older than the follow) it is
    # skipped for good, so a late edition never announces a release a second time.
    wanted_ids = {r.id for r in plan.wanted}
    editions = [r for r in plan.wanted if r.folded_into is not None and r.folded_into not in wanted_ids]
    if editions:
        plan.wanted = [r for r in plan.wanted if r not in editions]
        plan.skipped.extend((r, "edition") for r in editions)
    return plan


async def split_pending(
    session: Session, guild_id: int, album_groups: Sequence[str] | None = None
) -> tuple[list[Release], list[Release]]:
    """(:func:`pending_releases`, :func:`unwanted_releases`) from one query (see :func:`plan_pending`)."""
    plan = await plan_pending(session, guild_id, album_groups)
    return plan.wanted, [r for r, _reason in plan.skipped]


async def pending_releases(session: Session, guild_id: int, album_groups: Sequence[str] | None = None) -> list[Release]:
    """Releases new for guild ``guild_id`` (see module docstring) that it wants posted, oldest first seen first.

    Only releases with a qualifying link in one of ``album_groups`` (default: the
    guild's ``album_groups``) that pass the guild's filters count. Ties are ordered by
    release date, then id, so the order is stable.
    """
    return (await split_pending(session, guild_id, album_groups))[0]


async def unwanted_releases(
    session: Session, guild_id: int, album_groups: Sequence[str] | None = None
) -> list[Release]:
    """Releases new for the guild that are not to be posted: every qualifying link is in a group it
    does not want, or the guild's filters (``/settings filters``) exclude it.

    The deliverer records them in the ledger as ``skipped`` (never posted), so turning a
    group on (or a filter off) later does not post its past.
    """
    return (await split_pending(session, guild_id, album_groups))[1]


async def pending_announcements(
    session: Session, guild_id: int, album_groups: Sequence[str] | None = None
) -> list[Announcement]:
    """What guild ``guild_id`` has not been told yet: :func:`pending_releases` folded by :func:`fold_twins`.

    Oldest first seen first. Reads only; the ledger is written by the deliverer.
    """
    return fold_twins(await pending_releases(session, guild_id, album_groups))
