"""An in-memory stand-in for ``bot.spotify.client.SpotifyClient`` (contract in docs/design.md).

Catalogue: artist id → list of :class:`Album`. ``artist_albums`` answers like the
2026 API: ``limit`` ≤ 10 (``SpotifyError`` 400 above), items grouped in the order
album, single, compilation, appears_on and newest first inside a group, ``total``
counting every item matching ``include_groups``, ``next`` a URL while more remain.
Every API call counts one request (``request_count``, ``requests_by_endpoint``); no call
answers a 429 (``rate_limited`` stays 0).
Failures: ``fail(artist_id, exc)`` makes that artist's calls raise ``exc``;
``cooldown_after(n, until)`` makes the (n+1)-th request raise ``SpotifyCooldown``
and sets ``cooldown_until``; while ``cooldown_until`` is in the future (by the
injected clock) every call raises ``SpotifyCooldown`` without counting a request.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from collections.abc import Callable
from urllib.parse import parse_qs, urlencode, urlparse

from bot.spotify.errors import SpotifyCooldown, SpotifyError, SpotifyNotFound
from bot.spotify.models import ALBUM_GROUPS, Album, Artist, ArtistRef, Page

_ids = itertools.count(1)


def make_id(prefix: str = "r") -> str:
    """A fresh 22-character Spotify-like id."""
    return f"{prefix}{next(_ids):0>21}"[-22:]


class FakeSpotify:
    """The ``SpotifyClient`` contract over an in-memory catalogue (see module docstring)."""

    def __init__(self, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.artists: dict[str, Artist] = {}
        self.catalogue: dict[str, list[tuple[int, str, Album]]] = {}
        self.request_count = 0
        self.requests_by_endpoint: Counter[str] = Counter()
        self.rate_limited = 0
        self.requested_artists: list[str] = []
        self.cooldown_until: dt.datetime | None = None
        self._failures: dict[str, BaseException] = {}
        self._cooldown_after: tuple[int, dt.datetime, str] | None = None
        self._seq = itertools.count()

    # --- catalogue -----------------------------------------------------------------
    def add_artist(self, artist_id: str | None = None, name: str | None = None) -> str:
        """Add an artist (id made up when None); returns its id."""
        artist_id = artist_id or make_id("a")
        self.artists[artist_id] = Artist(id=artist_id, name=name or f"Artist {artist_id[-4:]}")
        self.catalogue.setdefault(artist_id, [])
        return artist_id

    def release(
        self,
        artist_id: str,
        name: str | None = None,
        *,
        group: str = "single",
        date: str = "2026-11-20",
        album_id: str | None = None,
        artists: list[str] | None = None,
        tracks: int = 1,
        image_url: str | None = "https://i.scdn.co/image/cover",
    ) -> Album:
        """Publish a release under ``artist_id`` in ``group``; newer than any earlier one of the same date.

        ``artists``: the album's artist ids (default: just ``artist_id``). The same
        ``album_id`` may be published under several artists (a collaboration).
        """
        ids = artists or [artist_id]
        album = Album(
            id=album_id or make_id("r"),
            name=name or f"Song {next(_ids)}",
            album_type="compilation" if group == "compilation" else ("album" if group == "album" else "single"),
            release_date=date,
            release_date_precision={4: "year", 7: "month"}.get(len(date), "day"),
            total_tracks=tracks,
            artists=tuple(ArtistRef(i, self.artists[i].name if i in self.artists else i) for i in ids),
            image_url=image_url,
        )
        self.catalogue.setdefault(artist_id, []).append((next(self._seq), group, album))
        return album

    def remove(self, artist_id: str, album_id: str) -> None:
        """Take a release off an artist's listing."""
        self.catalogue[artist_id] = [e for e in self.catalogue[artist_id] if e[2].id != album_id]

    def fail(self, artist_id: str, exc: BaseException | None) -> None:
        """Make every call about ``artist_id`` raise ``exc`` (None heals it)."""
        if exc is None:
            self._failures.pop(artist_id, None)
        else:
            self._failures[artist_id] = exc

    def cooldown_after(self, requests: int, until: dt.datetime, reason: str = "QUOTA_EXCEEDED") -> None:
        """After ``requests`` more requests, the next one answers a quota 429 (``SpotifyCooldown``)."""
        self._cooldown_after = (self.request_count + requests, until, reason)

    # --- the client contract ---------------------------------------------------------
    def _request(self, endpoint: str, artist_id: str) -> None:
        if self.cooldown_until is not None and self.clock() < self.cooldown_until:
            raise SpotifyCooldown(self.cooldown_until, "cooldown in force")
        if self._cooldown_after is not None and self.request_count >= self._cooldown_after[0]:
            _, until, reason = self._cooldown_after
            self._cooldown_after = None
            self.request_count += 1
            self.requests_by_endpoint[endpoint] += 1
            self.cooldown_until = until
            raise SpotifyCooldown(until, reason)
        self.request_count += 1
        self.requests_by_endpoint[endpoint] += 1
        self.requested_artists.append(artist_id)
        if artist_id in self._failures:
            raise self._failures[artist_id]

    async def get_artist(self, artist_id: str) -> Artist:
        """The artist, or ``SpotifyNotFound``."""
        self._request("artist", artist_id)
        if artist_id not in self.artists:
            raise SpotifyNotFound(f"artist {artist_id} not found", status=404)
        return self.artists[artist_id]

    async def artist_albums(self, artist_id: str, *, include_groups, limit: int = 10, offset: int = 0) -> Page:
        """One page of the artist's albums (grouped, newest first inside a group)."""
        self._request("artist_albums", artist_id)
        if not 1 <= limit <= 10:
            raise SpotifyError("Invalid limit", status=400)
        groups = include_groups.split(",") if isinstance(include_groups, str) else list(include_groups)
        if artist_id not in self.catalogue:
            raise SpotifyNotFound(f"artist {artist_id} not found", status=404)
        items: list[Album] = []
        for group in ALBUM_GROUPS:
            if group not in groups:
                continue
            entries = [e for e in self.catalogue[artist_id] if e[1] == group]
            entries.sort(key=lambda e: (e[2].release_date, e[0]), reverse=True)
            items.extend(_with_group(e[2], group) for e in entries)
        chunk = items[offset : offset + limit]
        nxt = None
        if offset + limit < len(items):
            query = urlencode({"include_groups": ",".join(groups), "limit": limit, "offset": offset + limit})
            nxt = f"https://api.spotify.com/v1/artists/{artist_id}/albums?{query}"
        return Page(items=tuple(chunk), total=len(items), offset=offset, limit=limit, next=nxt)

    async def artist_albums_next(self, page: Page) -> Page | None:
        """The page after ``page`` (None, without a request, when there is none)."""
        if not page.next:
            return None
        url = urlparse(page.next)
        artist_id = url.path.rstrip("/").split("/")[-2]
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        return await self.artist_albums(
            artist_id, include_groups=q["include_groups"], limit=int(q["limit"]), offset=int(q["offset"])
        )

    async def close(self) -> None:
        """Nothing to release."""


def _with_group(album: Album, group: str) -> Album:
    from dataclasses import replace

    return replace(album, album_group=group)
