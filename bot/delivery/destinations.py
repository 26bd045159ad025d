"""Where each release goes in a guild: routing (pure rules, no I/O).

Each pending release of a guild goes to exactly one channel (the ledger's unique (guild, release)
holds it to that):

1. an **artist route** (``/settings route artist:``) of one of the release's artists that the guild
   follows — when several have one, the first in the release's artist order (the release's own
   artists as Spotify lists them, then the followed artists it appears through);
2. else a **type route** (``/settings route type:``) of the release's type as the guild gets it
   (:func:`bot.delivery.types.guild_release_type`: album, single, ep, compilation or appears_on);
3. else the guild's default channel (``/settings channel``); none set: the release stays pending.

Releases bound for one channel are posted together (:func:`group_by_channel`), in their order.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from bot.delivery.planner import Announcement, destination_of
from bot.delivery.types import guild_release_type
from storage.routes import GuildRoutes


@dataclass(frozen=True)
class RoutedAnnouncement:
    """An announcement with what the guild's routing found: ``release_type`` (as the guild gets it),
    ``artist_ids`` (the release's artists the guild follows, in the release's order, then the followed
    artists it appears through), ``channel_id`` (its destination; None: no channel set) and ``routed``
    (a route, not the default channel, chose it)."""

    announcement: Announcement
    release_type: str
    artist_ids: tuple[str, ...]
    channel_id: int | None
    routed: bool = False


def followed_artists(announcement: Announcement, followed: Collection[str], linked: Iterable[str]) -> list[str]:
    """The artists of the announced release that the guild follows (``followed``), in the release's
    order, then the followed artists that list it without being credited (``linked``: the artists of
    the links that make it new for the guild, e.g. an appearance), sorted."""
    own = [str(a.get("id")) for a in announcement.release.artists or () if a.get("id")]
    ordered = [a for a in dict.fromkeys(own) if a in followed]
    extra = sorted({a for a in linked if a in followed and a not in ordered})
    return ordered + extra


def route(
    announcement: Announcement,
    *,
    links: set[tuple[str, str]],
    followed: Collection[str],
    routes: GuildRoutes,
    default_channel_id: int | None,
    posted_type: str | None = None,
) -> RoutedAnnouncement:
    """Route one announcement (see the module docstring) by the one rule
    :func:`bot.delivery.planner.destination_of` that ``/preview`` and ``/status`` show. ``links``:
    ``(artist id, album group)`` of the links that make its release new for the guild
    (``storage.ledger.release_links``); ``followed``: the guild's followed artist ids;
    ``posted_type``: the release type the planner posts it as (``PendingPlan.types``), else
    :func:`bot.delivery.types.guild_release_type` of the links."""
    release = announcement.release
    artists = followed_artists(announcement, followed, (a for a, _group in links))
    kind = posted_type or guild_release_type(release.album_type, release.total_tracks, {g for _a, g in links})
    linked = sorted({a for a, _group in links if a in followed})
    # a route left by an artist the guild no longer follows does not count (unfollowing removes it)
    live = GuildRoutes(by_type=routes.by_type, by_artist={a: c for a, c in routes.by_artist.items() if a in followed})
    channel_id = destination_of(release, kind, live, None, linked=linked)
    if channel_id is not None:
        return RoutedAnnouncement(announcement, kind, tuple(artists), channel_id, routed=True)
    return RoutedAnnouncement(announcement, kind, tuple(artists), default_channel_id)


def group_by_channel(routed: Sequence[RoutedAnnouncement]) -> dict[int | None, list[RoutedAnnouncement]]:
    """``{channel id: [routed announcement, …]}`` in order of first appearance, each list in order
    (None: the releases with no channel)."""
    out: dict[int | None, list[RoutedAnnouncement]] = {}
    for item in routed:
        out.setdefault(item.channel_id, []).append(item)
    return out
