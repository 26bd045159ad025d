"""What to post to a guild and where: its pending releases, clean/explicit twins folded, filters applied,
each routed to one channel (docs/design.md, "What new means", "Routing and block lists").

A release is **new for a guild** when it is linked to an artist the guild follows,
the link is not a baseline link, the link was first seen strictly after the guild's
``followed_at`` for that artist, and the guild's ledger (``deliveries``) has no row
for it (claimed, sent or skipped). Only releases of a release type the guild posts
(``guilds.album_groups``: album, single, ep, compilation, appears_on, each link classified by
:func:`bot.delivery.types.release_type`) and passing the guild's filters (muted appearances,
blocked artists, title keywords, the title block list: :class:`GuildFilters`) are posted; the
others are recorded as ``skipped`` by the deliverer. Where a posted release goes is
:func:`destination_of`: an artist route, else a type route, else the default channel.

The reads are storage's (:func:`storage.ledger.pending_releases`,
:func:`storage.guilds.delivery_settings`); this module keeps the rules: :func:`skip_reason`,
:func:`plan_releases`, :func:`fold_twins` and :func:`destination_of`, all pure.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import re2

from bot.delivery.types import DEFAULT_RELEASE_TYPES, release_type
from bot.tracking.editions import are_twins, edition_marker
from storage import guilds, ledger
from storage.db import Session
from storage.ledger import PendingRelease
from storage.models import Release
from storage.routes import GuildRoutes

DEFAULT_ALBUM_GROUPS = DEFAULT_RELEASE_TYPES
"""The release types (``guilds.album_groups``) a guild gets posted until it picks its own (``/settings types``)."""


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

# The block lists' bounds: a guild's filters stay small (one JSON value on its row) and each title is
# matched against at most MAX_BLOCK_KEYWORDS short literals and MAX_BLOCK_PATTERNS small RE2 programs.
MAX_BLOCK_KEYWORDS = 50
"""Title keywords a guild may block."""
MAX_KEYWORD_LENGTH = 100
"""Characters of one blocked keyword."""
MAX_BLOCK_PATTERNS = 20
"""Title patterns a guild may block."""
MAX_PATTERN_LENGTH = 200
"""Characters of one blocked pattern."""
MAX_BLOCK_ARTISTS = 100
"""Artists a guild may block."""
PATTERN_MAX_MEM = 1 << 20
"""Bytes of memory RE2 may use for one compiled pattern (RE2's ``max_mem``: bigger programs are refused)."""


class PatternError(ValueError):
    """A title pattern RE2 refuses; ``str()`` is RE2's reason (e.g. ``missing ): (``)."""


def _pattern_options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # a refused pattern is the user's to read, not the log's
    options.max_mem = PATTERN_MAX_MEM
    return options


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> re2._Regexp[str]:
    """``pattern`` compiled by RE2 (Google's linear-time engine: no backtracking, so no pattern —
    ``(a+)+$`` included — takes more than time linear in the title), case-insensitive.

    RE2 syntax (https://github.com/google/re2/wiki/Syntax): no backreferences, no look-around.
    Raises :class:`PatternError` with RE2's reason for a pattern it refuses (bad syntax, a
    repetition over 1,000, a program over :data:`PATTERN_MAX_MEM`). Cached per pattern.
    """
    try:
        return re2.compile(pattern, _pattern_options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid pattern"
        raise PatternError(reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)) from None


def _normal(text: str) -> str:
    """``text`` in Unicode NFKC form (full-width letters and ligatures as plain ones)."""
    return unicodedata.normalize("NFKC", text)


@functools.lru_cache(maxsize=1024)
def _keyword_re(keyword: str) -> re.Pattern[str] | None:
    """Whole-word, case-insensitive search for ``keyword`` (NFKC, case-folded; its words separated by
    any whitespace); None for a keyword with no word. Built from escaped literals only, so it runs in
    time linear in the title."""
    words = _normal(keyword).casefold().split()
    if not words:
        return None
    return re.compile(r"(?<!\w)" + r"\s+".join(re.escape(w) for w in words) + r"(?!\w)")


def keyword_matches(keyword: str, title: str) -> bool:
    """True when ``keyword`` occurs in ``title`` as whole words: case-insensitive (Unicode case folding,
    so "STRASSE" matches "straße"), Unicode-aware (NFKC; a word boundary is any character that is not
    a Unicode letter, digit or underscore), any run of whitespace matching a space of the keyword.
    "live" matches "Afterglow (Live)" and "LIVE at Home", not "Alive" or "Lively"."""
    found = _keyword_re(keyword)
    return found is not None and found.search(_normal(title).casefold()) is not None


def pattern_matches(pattern: str, title: str) -> bool:
    """True when RE2 ``pattern`` (:func:`compile_pattern`) matches anywhere in ``title`` (NFKC); a
    stored pattern RE2 no longer accepts matches nothing."""
    try:
        compiled = compile_pattern(pattern)
    except PatternError:
        return False
    return compiled.search(_normal(title)) is not None


@dataclass(frozen=True)
class BlockedArtist:
    """An artist on a guild's block list: Spotify ``id`` and the ``name`` shown ("" when unknown)."""

    id: str
    name: str = ""


@dataclass(frozen=True)
class GuildFilters:
    """A guild's ``/settings filters`` (the ``guilds.filters`` JSON).

    ``skip``: kinds of :data:`FILTER_KEYWORDS`. ``mute_appearances``: Spotify ids of followed artists
    whose *appearances* are muted: a release that reaches the guild only through those artists'
    appearances (their ``appears_on`` listing, or a release whose own artists do not include them)
    is not posted (their own albums, singles and compilations still are, and a release that
    another followed artist lists as their own is posted too). ``block_keywords``: words never to
    post in a title (:func:`keyword_matches`); ``block_patterns``: RE2 patterns never to post in
    a title (:func:`pattern_matches`); ``block_artists``: artists whose releases are never posted,
    whoever else is credited (:func:`blocked_artist`).
    """

    skip: frozenset[str] = frozenset()
    mute_appearances: frozenset[str] = frozenset()
    block_keywords: tuple[str, ...] = ()
    block_patterns: tuple[str, ...] = ()
    block_artists: tuple[BlockedArtist, ...] = ()

    @property
    def blocked_artist_ids(self) -> frozenset[str]:
        """The Spotify ids of :attr:`block_artists`."""
        return frozenset(a.id for a in self.block_artists)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> GuildFilters:
        """From ``guilds.filters`` (unknown kinds and malformed entries are ignored)."""
        data = data or {}
        return cls(
            frozenset(k for k in data.get("skip") or () if k in FILTER_KEYWORDS),
            frozenset(str(a) for a in data.get("mute_appearances") or ()),
            tuple(str(k) for k in data.get("block_keywords") or () if str(k).strip()),
            tuple(str(p) for p in data.get("block_patterns") or () if str(p)),
            tuple(
                BlockedArtist(str(a["id"]), str(a.get("name") or ""))
                for a in data.get("block_artists") or ()
                if isinstance(a, dict) and a.get("id")
            ),
        )

    def to_json(self) -> dict[str, Any]:
        """For ``guilds.filters``: sorted, stable lists (the block lists in the order they were added,
        and only when not empty)."""
        data: dict[str, Any] = {
            "skip": [k for k in FILTER_KEYWORDS if k in self.skip],
            "mute_appearances": sorted(self.mute_appearances),
        }
        if self.block_keywords:
            data["block_keywords"] = list(self.block_keywords)
        if self.block_patterns:
            data["block_patterns"] = list(self.block_patterns)
        if self.block_artists:
            data["block_artists"] = [{"id": a.id, "name": a.name} for a in self.block_artists]
        return data


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


def title_blocked(title: str, keywords: Iterable[str], patterns: Iterable[str]) -> bool:
    """True when ``title`` holds one of the blocked ``keywords`` (:func:`keyword_matches`) or matches one
    of the blocked ``patterns`` (:func:`pattern_matches`)."""
    return any(keyword_matches(k, title) for k in keywords) or any(pattern_matches(p, title) for p in patterns)


def credited_artists(release: Release, links: Iterable[tuple[str, str]]) -> list[str]:
    """Spotify ids of the artists ``release`` credits, each once: its own artists in their order, then
    the artists whose listing links it (``links``: ``(artist id, album group)``; e.g. a featured
    artist's ``appears_on``), by id."""
    own = [str(a.get("id")) for a in release.artists or () if a.get("id")]
    others = sorted({a for a, _group in links} - set(own))
    return list(dict.fromkeys(own)) + others


def blocked_artist(release: Release, links: Iterable[tuple[str, str]], blocked: Collection[str]) -> bool:
    """True when ``release`` credits (:func:`credited_artists`) an artist of ``blocked`` (Spotify ids)."""
    return bool(blocked) and any(a in blocked for a in credited_artists(release, links))


@dataclass
class PendingPlan:
    """A guild's pending releases split by :func:`plan_pending`.

    ``wanted``: to post (oldest first seen first); ``skipped``: ``(release, reason)`` never to
    post, reason ``"type"`` (a release type not posted), ``"muted"`` (a muted artist's
    appearance), ``"block_artist"`` (credits a blocked artist), a :data:`FILTER_KEYWORDS` kind,
    ``"block_title"`` (a blocked keyword or pattern in the title) or ``"edition"`` (another edition
    of a release not in this post: tracking's ``folded_into``). For each wanted release:
    ``types[release id]``, the release type it is posted as (:func:`posted_type`), and
    ``linked[release id]``, the followed artists whose listing brought it as a type the guild posts
    (Spotify ids, sorted).
    """

    wanted: list[Release] = field(default_factory=list)
    skipped: list[tuple[Release, str]] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)
    linked: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def destination(
        self, announcement: Announcement, routes: GuildRoutes, default_channel_id: int | None
    ) -> int | None:
        """Where ``announcement`` goes (:func:`destination_of` for its main release)."""
        release = announcement.release
        return destination_of(
            release, self.types.get(release.id), routes, default_channel_id, linked=self.linked.get(release.id, ())
        )

    def by_destination(
        self, announcements: Sequence[Announcement], routes: GuildRoutes, default_channel_id: int | None
    ) -> list[tuple[int | None, list[Announcement]]]:
        """``announcements`` grouped by :meth:`destination`, each group and the groups in the order of their
        first announcement (None: no route and no default channel)."""
        groups: dict[int | None, list[Announcement]] = {}
        for announcement in announcements:
            groups.setdefault(self.destination(announcement, routes, default_channel_id), []).append(announcement)
        return list(groups.items())


async def guild_album_groups(session: Session, guild_id: int) -> list[str]:
    """The release types guild ``guild_id`` wants posted (``guilds.album_groups``; the default when unset)."""
    settings = await guilds.delivery_settings(session, guild_id)
    return list(settings.album_groups if settings is not None else DEFAULT_ALBUM_GROUPS)


def link_types(release: Release, links: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """``{(artist id, release type)}`` of ``release``'s ``links`` (``(artist id, album group)``):
    :func:`bot.delivery.types.release_type` of its ``album_type`` and ``total_tracks`` and each
    link's album group (``appears_on`` for an appearance, ``ep`` for a 4–6-track single)."""
    return {(a, release_type(release.album_type, release.total_tracks, album_group=g)) for a, g in links}


def posted_type(release: Release, links: Iterable[tuple[str, str]], types: Collection[str]) -> str | None:
    """The release type ``release`` is posted as to a guild posting ``types``: its own type (album,
    single, ep, compilation) when one of its links gives it and the guild posts it, else
    ``appears_on`` when only appearances are wanted; None when the guild posts none of them."""
    chosen = {t for _a, t in link_types(release, links) if t in types}
    own = sorted(chosen - {"appears_on"})
    return own[0] if own else ("appears_on" if chosen else None)


def skip_reason(release: Release, links: set[tuple[str, str]], groups: set[str], filters: GuildFilters) -> str | None:
    """Why ``release`` (with its qualifying ``links``: ``(artist id, album group)``) is not posted to a
    guild posting release types ``groups``, or None to post it.

    ``"type"``: no link of a wanted release type (:func:`link_types`); ``"muted"``: every wanted
    link is an appearance (``appears_on``, or the artist is not among ``release.artists``) of a
    muted artist; ``"block_artist"``: it credits a blocked artist (:func:`blocked_artist`); else
    the title filter kind (:func:`title_filter`); else ``"block_title"`` for a blocked keyword or
    pattern (:func:`title_blocked`).
    """
    wanted_links = {
        (a, g) for a, g in links if release_type(release.album_type, release.total_tracks, album_group=g) in groups
    }
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
    if blocked_artist(release, links, filters.blocked_artist_ids):
        return "block_artist"
    kind = title_filter(release, filters.skip)
    if kind is not None:
        return kind
    if title_blocked(release.name or "", filters.block_keywords, filters.block_patterns):
        return "block_title"
    return None


def destination_of(
    release: Release,
    release_type: str | None,
    routes: GuildRoutes,
    default_channel_id: int | None,
    *,
    linked: Iterable[str] = (),
) -> int | None:
    """The one channel of a guild that ``release`` (posted as ``release_type``) goes to.

    The rule, in order: an **artist route** for one of the artists it credits — its own artists in
    the release's order first, then ``linked`` (the followed artists whose listing brought it, e.g.
    an appearance), the first with a route wins; else the **type route** of ``release_type``; else
    ``default_channel_id`` (None: no channel set, the release waits). ``routes``: the guild's
    :class:`storage.routes.GuildRoutes`. Pure: the deliverer, ``/preview`` and ``/status`` use it.
    """
    for artist_id in credited_artists(release, ((a, "") for a in linked)):
        channel_id = routes.by_artist.get(artist_id)
        if channel_id is not None:
            return channel_id
    if release_type is not None and release_type in routes.by_type:
        return routes.by_type[release_type]
    return default_channel_id


async def plan_pending(
    session: Session, guild_id: int, album_groups: Sequence[str] | None = None, filters: GuildFilters | None = None
) -> PendingPlan:
    """Split the guild's new releases into what to post and what to skip for good (:class:`PendingPlan`).

    ``album_groups`` (release types) / ``filters`` default to the guild's stored settings (an unknown
    guild: the default types, no filters). Reads only.
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
    :func:`skip_reason` for a guild posting release types ``groups``, then every later edition whose
    release is not in this post skipped as ``"edition"``; each wanted release's posted type and
    linked artists noted."""
    plan = PendingPlan()
    for item in pending:
        reason = skip_reason(item.release, item.links, groups, filters)
        kind = posted_type(item.release, item.links, groups)  # None exactly when the reason is "type"
        if reason is not None or kind is None:
            plan.skipped.append((item.release, reason or "type"))
            continue
        plan.wanted.append(item.release)
        plan.types[item.release.id] = kind
        plan.linked[item.release.id] = tuple(
            sorted({a for a, t in link_types(item.release, item.links) if t in groups})
        )
    # Another edition of a release known before it (tracking's ``folded_into``: a clean/explicit
    # twin or a re-issue arriving later) is posted only folded into that one's post; when
    # that one is not in this post (already posted, skipped, or older than the follow) it is
    # skipped for good, so a late edition never announces a release a second time.
    wanted_ids = {r.id for r in plan.wanted}
    editions = [r for r in plan.wanted if r.folded_into is not None and r.folded_into not in wanted_ids]
    for edition in editions:
        plan.wanted.remove(edition)
        plan.skipped.append((edition, "edition"))
        plan.types.pop(edition.id, None)
        plan.linked.pop(edition.id, None)
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
