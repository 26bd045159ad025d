"""A release's type as a guild chooses and routes it: album, single, ep, compilation or appears_on.

Spotify labels an EP ``album_type: "single"`` (Web API, "Get Artist's Albums": ``album_type`` is
``album``, ``single`` or ``compilation``). Spotify's published rule for what it lists as a single or
an EP ("Spotify for Artists" › "Release types": singles have 1–3 tracks, EPs 4–6 tracks, each
under 30 minutes in all) tells them apart by the track count, which every listing carries
(``total_tracks``), so classifying costs no request. A release that reaches a guild only through
an artist's ``appears_on`` listing is of type ``appears_on`` whatever Spotify calls it.
"""

from __future__ import annotations

from collections.abc import Iterable

from storage.models import DEFAULT_RELEASE_TYPES

__all__ = [
    "DEFAULT_RELEASE_TYPES",
    "EP_TRACKS",
    "RELEASE_TYPES",
    "SPOTIFY_GROUP_OF_TYPE",
    "ordered_types",
    "release_type",
    "spotify_groups",
]

RELEASE_TYPES = ("album", "single", "ep", "compilation", "appears_on")
"""Every release type, in the order they are shown."""

# DEFAULT_RELEASE_TYPES (album, single, ep, compilation: everything but appearances) is what a new
# guild posts; it is the default of the column that stores a guild's types (storage.models), so it is
# defined there, once.

SPOTIFY_GROUP_OF_TYPE = {
    "album": "album",
    "single": "single",
    "ep": "single",
    "compilation": "compilation",
    "appears_on": "appears_on",
}
"""The Spotify ``include_groups`` value that lists each type (an EP is listed among singles)."""

EP_TRACKS = range(4, 7)
"""Track counts of an EP that Spotify labels ``single`` (4–6)."""


def release_type(album_type: str, total_tracks: int | None, *, album_group: str | None = None) -> str:
    """The type of a release: ``appears_on`` when ``album_group`` is ``appears_on``; ``ep`` for a
    Spotify ``single`` with 4–6 tracks; else Spotify's ``album_type`` (album, single, compilation).
    ``total_tracks`` None (unknown) keeps a single a single."""
    if album_group == "appears_on":
        return "appears_on"
    if album_type == "single" and total_tracks is not None and total_tracks in EP_TRACKS:
        return "ep"
    return album_type


def ordered_types(types: Iterable[str]) -> tuple[str, ...]:
    """``types`` deduplicated, in :data:`RELEASE_TYPES` order; names that are no release type are dropped."""
    wanted = set(types)
    return tuple(t for t in RELEASE_TYPES if t in wanted)


def spotify_groups(types: Iterable[str]) -> tuple[str, ...]:
    """The Spotify album groups to fetch for release ``types``, in Spotify's order (album, single,
    compilation, appears_on): ``ep`` needs ``single``."""
    wanted = {SPOTIFY_GROUP_OF_TYPE[t] for t in types if t in SPOTIFY_GROUP_OF_TYPE}
    return tuple(g for g in ("album", "single", "compilation", "appears_on") if g in wanted)


TYPE_NAMES = {
    "album": "Album",
    "single": "Single",
    "ep": "EP",
    "compilation": "Compilation",
    "appears_on": "Appears on",
}
"""Each type's name as shown to people, and the name of its forum tag (≤ 20 characters)."""


def guild_release_type(
    album_type: str, total_tracks: int | None, link_groups: set[str] | frozenset[str] | list[str] | tuple[str, ...]
) -> str:
    """The type of a release as a guild gets it (:func:`release_type`), from the album groups of the
    links that make it new for that guild (``link_groups``: Spotify ``album_group`` values): an
    ``appears_on`` release when every such link is an appearance, else its own type (an artist the
    guild follows lists it as their own). Used to route it (``/settings route type:``) and to tag a
    forum post."""
    groups = set(link_groups)
    appearance = bool(groups) and groups <= {"appears_on"}
    return release_type(album_type, total_tracks, album_group="appears_on" if appearance else None)
