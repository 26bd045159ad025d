"""Plain data parsed from Spotify Web API responses (2026 Development Mode shapes).

Parsing is lenient: fields Spotify removed in 2026 (``album_group``,
``available_markets``, ``popularity``, ``label``) are optional. The classes are frozen
slotted dataclasses (no per-object ``__dict__``): a baseline parses every release of
every followed artist. Source: Spotify Web
API reference, "Get Artist's Albums", "Get Album", "Get Artist", "Search".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

ALBUM_GROUPS = ("album", "single", "compilation", "appears_on")

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ArtistRef:
    """A simplified artist: Spotify ``id`` and ``name``."""

    id: str
    name: str

    @property
    def url(self) -> str:
        """``https://open.spotify.com/artist/<id>``."""
        return f"https://open.spotify.com/artist/{self.id}"


@dataclass(frozen=True, slots=True)
class Artist:
    """A full artist object (``GET /artists/{id}``, search items)."""

    id: str
    name: str
    image_url: str | None = None
    genres: tuple[str, ...] = ()
    followers: int | None = None

    @property
    def url(self) -> str:
        """``https://open.spotify.com/artist/<id>``."""
        return f"https://open.spotify.com/artist/{self.id}"

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Artist:
        """Parse an artist object. Raises ``KeyError`` when ``id``/``name`` are missing."""
        images = data.get("images") or []
        followers = (data.get("followers") or {}).get("total")
        return cls(
            id=data["id"],
            name=data["name"],
            image_url=_largest_image(images),
            genres=tuple(data.get("genres") or ()),
            followers=followers,
        )


@dataclass(frozen=True, slots=True)
class Track:
    """A simplified track of an album (``GET /albums/{id}`` ``tracks.items``); ``duration_ms`` in ms."""

    id: str
    name: str
    duration_ms: int
    isrc: str | None = None


@dataclass(frozen=True, slots=True)
class Album:
    """A simplified album object as listed by artist albums, or a full album.

    ``release_date`` is the raw string; ``release_date_precision`` is
    ``year`` | ``month`` | ``day``. ``album_group`` is only present where the API
    (or the request's single ``include_groups`` value) says it. ``tracks`` and
    ``upc`` are only filled by ``GET /albums/{id}``.
    """

    id: str
    name: str
    album_type: str
    release_date: str
    release_date_precision: str
    total_tracks: int | None
    artists: tuple[ArtistRef, ...]
    image_url: str | None = None
    album_group: str | None = None
    upc: str | None = None
    tracks: tuple[Track, ...] = field(default=())

    @property
    def url(self) -> str:
        """``https://open.spotify.com/album/<id>``."""
        return f"https://open.spotify.com/album/{self.id}"

    @classmethod
    def from_api(cls, data: dict[str, Any], album_group: str | None = None) -> Album:
        """Parse an album object; ``album_group`` fills in when the payload lacks it.

        Raises ``KeyError`` when ``id``/``name`` are missing.
        """
        precision = data.get("release_date_precision") or _precision_of(data.get("release_date") or "")
        tracks_obj = data.get("tracks") or {}
        tracks = tuple(
            Track(
                id=t.get("id") or "",
                name=t.get("name") or "",
                duration_ms=int(t.get("duration_ms") or 0),
                isrc=(t.get("external_ids") or {}).get("isrc"),
            )
            for t in (tracks_obj.get("items") or [])
            if t
        )
        return cls(
            id=data["id"],
            name=data["name"],
            album_type=(data.get("album_type") or "album").lower(),
            release_date=data.get("release_date") or "",
            release_date_precision=precision,
            total_tracks=data.get("total_tracks"),
            artists=tuple(ArtistRef(a["id"], a.get("name") or "") for a in data.get("artists") or [] if a.get("id")),
            image_url=_largest_image(data.get("images") or []),
            album_group=data.get("album_group") or album_group,
            upc=(data.get("external_ids") or {}).get("upc"),
            tracks=tracks,
        )


@dataclass(frozen=True, slots=True)
class Page(Generic[_T]):
    """One page of a paging object: ``items``, ``total``, ``offset``, ``limit``, ``next`` URL or None.

    ``Page[Album]`` for artist albums, ``Page[PlaylistEntry]`` for playlist items. Build it as
    ``Page(...)``: ``Page[Album](...)`` fails on Python 3.11 (a frozen slotted dataclass cannot
    take the ``__orig_class__`` attribute ``typing`` sets).
    """

    items: tuple[_T, ...]
    total: int
    offset: int
    limit: int
    next: str | None


def _largest_image(images: list[dict[str, Any]]) -> str | None:
    best = None
    best_size = -1
    for img in images:
        if not img or not img.get("url"):
            continue
        size = (img.get("width") or 0) * (img.get("height") or 0)
        if size > best_size:
            best, best_size = img["url"], size
    return best


def _precision_of(date: str) -> str:
    return {4: "year", 7: "month"}.get(len(date), "day")


@dataclass(frozen=True, slots=True)
class PlaylistEntry:
    """One entry of a playlist (a "PlaylistTrackObject").

    ``kind``: ``"track"`` (a catalogue track: ``artists`` filled), ``"local"`` (a local
    file: no Spotify artist ids), ``"episode"`` (a podcast episode) or ``"unavailable"``
    (Spotify sent a null item). Source: "Get Playlist Items" (2026 shape: ``item``,
    with the deprecated ``track`` duplicate still sent).
    """

    kind: str
    track_id: str | None = None
    name: str = ""
    artists: tuple[ArtistRef, ...] = ()

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> PlaylistEntry:
        """Parse a playlist entry; never raises on a partial object (it becomes ``unavailable``)."""
        item = data.get("item") or data.get("track")
        if not isinstance(item, dict):
            return cls("unavailable")
        if data.get("is_local") or item.get("is_local"):
            return cls("local", None, item.get("name") or "")
        if (item.get("type") or "track") != "track" or item.get("episode") is True:
            return cls("episode", item.get("id"), item.get("name") or "")
        artists = tuple(
            ArtistRef(a["id"], a.get("name") or "")
            for a in item.get("artists") or []
            if isinstance(a, dict) and a.get("id")
        )
        if not item.get("id") and not artists:
            return cls("unavailable")
        return cls("track", item.get("id"), item.get("name") or "", artists)


@dataclass(frozen=True, slots=True)
class Playlist:
    """A playlist ("Get Playlist"): ``total`` entries (None when Spotify did not say) and,
    when the response embedded it, the first page of entries (``first_page``)."""

    id: str
    name: str
    owner_name: str = ""
    public: bool | None = None
    total: int | None = None
    first_page: Page[PlaylistEntry] | None = None

    @property
    def url(self) -> str:
        """``https://open.spotify.com/playlist/<id>``."""
        return f"https://open.spotify.com/playlist/{self.id}"
