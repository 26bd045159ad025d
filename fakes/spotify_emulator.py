"""A loopback emulator of the 2026 Development Mode Spotify Web API.

Used by the test suite, the benchmarks and the offline demo. It is an
``aiohttp.web`` server that answers like the real service does for a
Development Mode app using the client-credentials flow:

* ``POST {accounts_base_url}/api/token`` — Spotify doc "Client Credentials Flow".
* ``GET {api_base_url}/artists/{id}`` — "Get Artist" (no ``popularity``, removed 2026).
* ``GET {api_base_url}/artists/{id}/albums`` — "Get Artist's Albums" (``limit`` ≤ 10,
  no ``album_group``/``available_markets``, removed 2026).
* ``GET {api_base_url}/albums/{id}`` — "Get Album" (``external_ids.upc``, first 50
  tracks; no ``label``/``popularity``).
* ``GET {api_base_url}/albums/{id}/tracks`` — "Get Album Tracks".
* ``GET {api_base_url}/tracks/{id}`` — "Get Track" (``external_ids.isrc``).
* ``GET {api_base_url}/search`` — "Search for Item" (``limit`` ≤ 10).
* ``GET {api_base_url}/playlists/{id}`` — "Get Playlist" (first 100 entries embedded as
  ``items`` and the deprecated ``tracks``), ``GET …/playlists/{id}/items`` — "Get Playlist
  Items" (``limit`` default 20, 1–50) and the deprecated ``…/tracks`` (``limit`` 1–100).
  A private or unknown playlist answers 404. ``playlist_items_owner_only = True`` plays
  the Development Mode rule that items are only served for playlists the token's user
  owns (a client-credentials token has none): ``…/items`` and ``…/tracks`` answer 403,
  and "Get Playlist" embeds no entries.
* The endpoints removed for Development Mode apps in February 2026 ("Web API changes,
  February 2026": several albums/artists/tracks, new releases, top tracks, related
  artists, markets, …) answer ``403 {"error": {"status": 403, "message": "Forbidden"}}``
  — what the live API answers (reported e.g. in jjdenhertog/spotify-to-plex#131 for
  ``/v1/tracks?ids=``, LargeModGames/spotatui#517 for top tracks / related artists).

Errors follow "Web API → Concepts → API calls → Response status codes": a JSON body
``{"error": {"status": <int>, "message": <str>}}`` (plus ``"reason"`` for quota
exhaustion, as reported since 2026-07) and ``Content-Type: application/json;
charset=utf-8``. Rate limiting follows "Concepts → Rate limits": ``429`` with a
``Retry-After`` header in whole seconds.

Everything is deterministic: ids are generated from a counter and a seed, so the
same sequence of ``add_*`` calls gives the same catalogue. All durations are in
seconds; times are taken from the injectable ``monotonic`` clock (except the
real-time ``latency`` and ``hang_next`` waits).

Example::

    async with SpotifyEmulator() as spotify:
        artist = spotify.add_artist("Pitbull", followers=12_000_000)
        spotify.add_album([artist], "Trackhouse", release_date="2023-10-06")
        client = SpotifyClient(client_id=spotify.client_id,
                               client_secret=spotify.client_secret,
                               api_base_url=spotify.api_base_url,
                               accounts_base_url=spotify.accounts_base_url)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import json
import math
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web

__all__ = ["ALBUM_GROUPS", "LoggedRequest", "SpotifyEmulator"]

#: Album groups in the order Spotify lists them in an artist's albums.
ALBUM_GROUPS = ("album", "single", "compilation", "appears_on")

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_RE = re.compile(r"^[0-9A-Za-z]{22}$")
_MARKET_RE = re.compile(r"^[A-Z]{2}$")
_JSON_CONTENT_TYPE = "application/json; charset=utf-8"

#: Default HTTP error messages, as the real API words them.
_MESSAGES = {
    400: "Bad request",
    401: "Invalid access token",
    403: "Forbidden",
    404: "Resource not found",
    405: "Method not allowed",
    429: "API rate limit exceeded",
    500: "Server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}

#: Paths (below /v1) removed for Development Mode apps (February 2026, and the
#: November 2024 removals for new apps). Matched against the path below ``/v1``.
_REMOVED_PATHS = [
    re.compile(p)
    for p in (
        r"^/albums/?$",  # Get Several Albums (GET /albums?ids=)
        r"^/artists/?$",  # Get Several Artists
        r"^/tracks/?$",  # Get Several Tracks
        r"^/browse(/.*)?$",  # new-releases, categories, featured playlists
        r"^/artists/[^/]+/top-tracks/?$",
        r"^/artists/[^/]+/related-artists/?$",
        r"^/markets/?$",
        r"^/recommendations(/.*)?$",
        r"^/audio-features(/.*)?$",
        r"^/audio-analysis(/.*)?$",
    )
]


@dataclass
class LoggedRequest:
    """One request the emulator answered.

    ``path`` is the URL path (``/v1/artists/…/albums`` or ``/api/token``), ``query``
    the query string as a dict (last value wins), ``status`` the HTTP status sent and
    ``at`` the emulator's ``monotonic()`` reading (seconds) when the request arrived.
    """

    method: str
    path: str
    query: dict[str, str]
    status: int
    at: float


@dataclass
class _Fault:
    """A queued fault: ``count`` more requests matching ``path_contains`` fail/hang — or, with
    ``until`` set, every matching request before that ``monotonic()`` time (``count`` unused)."""

    kind: str  # "fail" | "hang"
    count: int
    path_contains: str | None
    status: int = 503
    retry_after: float | None = None
    reason: str | None = None
    seconds: float = 0.0
    until: float | None = None

    def matches(self, path: str) -> bool:
        if self.path_contains is None:
            return path.startswith("/v1/") or path == "/v1"
        return self.path_contains in path


@dataclass
class _Artist:
    id: str
    name: str
    genres: list[str]
    followers: int
    images: list[dict[str, Any]]
    seq: int


@dataclass
class _Track:
    id: str
    name: str
    duration_ms: int
    isrc: str
    album_id: str
    artist_ids: list[str]
    track_number: int
    disc_number: int = 1
    explicit: bool = False


@dataclass
class _Album:
    id: str
    name: str
    album_type: str
    artist_ids: list[str]
    release_date: str
    release_date_precision: str
    total_tracks: int
    track_ids: list[str]
    upc: str
    appears_on: list[str]
    images: list[dict[str, Any]]
    seq: int
    copyrights: list[dict[str, str]] = field(default_factory=list)

    @property
    def sort_date(self) -> str:
        """``release_date`` padded to ``YYYY-MM-DD`` (missing parts as ``00``) for ordering."""
        parts = self.release_date.split("-")
        while len(parts) < 3:
            parts.append("00")
        return "-".join(p.zfill(2) for p in parts)


@dataclass
class _Playlist:
    id: str
    name: str
    public: bool
    owner: str
    description: str
    # Entries: ("track", track_id) | ("local", name, artist name) | ("episode", name) | ("null",)
    entries: list[tuple]
    snapshot: int = 1


class _ApiError(Exception):
    """Raised inside a handler to answer ``{"error": {...}}`` with ``status``."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message or _MESSAGES.get(status, "Error")
        self.headers = headers or {}
        self.reason = reason


def _json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response with the exact ``Content-Type`` the real API sends."""
    response = web.Response(body=json.dumps(payload).encode("utf-8"), status=status, headers=headers)
    response.headers["Content-Type"] = _JSON_CONTENT_TYPE
    return response


def _error_body(status: int, message: str, reason: str | None = None) -> dict[str, Any]:
    """``{"error": {"status", "message"[, "reason"]}}`` — Spotify "Error object"."""
    error: dict[str, Any] = {"status": status, "message": message}
    if reason is not None:
        error["reason"] = reason
    return {"error": error}


class SpotifyEmulator:
    """An in-process Spotify Web API (2026 Development Mode) on loopback.

    Parameters (all keyword-only):

    * ``client_id`` / ``client_secret`` — the only credentials ``POST /api/token`` accepts.
    * ``latency`` — seconds slept (``asyncio.sleep``) before answering every ``/v1`` request.
    * ``rate_limit`` — ``(max_requests, window_seconds)``: a rolling window over accepted,
      authenticated ``/v1`` requests; beyond it the answer is ``429`` with ``Retry-After`` =
      ceil(seconds until the oldest request leaves the window). ``None`` disables it.
    * ``token_expires_in`` — lifetime in seconds of issued access tokens (``expires_in``).
    * ``monotonic`` — clock (seconds) for token expiry, the rate-limit window and
      ``LoggedRequest.at``; inject a fake one to move time without sleeping.
    * ``seed`` — makes generated ids differ between catalogues; same seed, same ids.

    ``client_id``/``client_secret`` are readable attributes; ``api_base_url`` and
    ``accounts_base_url`` are available after :meth:`start`.
    """

    def __init__(
        self,
        *,
        client_id: str = "emulator-client",
        client_secret: str = "emulator-secret",
        latency: float = 0.0,
        rate_limit: tuple[int, float] | None = None,
        token_expires_in: int = 3600,
        monotonic: Callable[[], float] = time.monotonic,
        seed: str = "release-bot",
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.latency = latency
        self.rate_limit = rate_limit
        self.token_expires_in = token_expires_in
        self.monotonic = monotonic
        self.seed = seed
        #: Every answered request, oldest first (token requests included).
        self.request_log: list[LoggedRequest] = []
        #: Requests being handled right now (e.g. held by ``hang_next`` or ``latency``).
        self.in_flight = 0
        self._artists: dict[str, _Artist] = {}
        self._albums: dict[str, _Album] = {}
        self._tracks: dict[str, _Track] = {}
        self._counters: dict[str, int] = {}
        # Index artist id -> ids of the albums listing it (own or appears_on), so a listing
        # does not scan the whole catalogue (benchmarks use catalogues of ~10^5 albums).
        self._albums_of: dict[str, set[str]] = {}
        self._seq = 0
        self._tokens: dict[str, float] = {}  # token -> expiry (monotonic seconds)
        self._faults: list[_Fault] = []
        self._window: deque[float] = deque()
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._base: str | None = None
        self._playlists: dict[str, _Playlist] = {}
        #: Development Mode: playlist items only for playlists the token's user owns (403 otherwise).
        self.playlist_items_owner_only = False

    # ------------------------------------------------------------------ catalogue

    def _new_id(self, kind: str) -> str:
        """A deterministic 22-character base62 id from ``seed``, ``kind`` and a counter."""
        while True:
            n = self._counters.get(kind, 0)
            self._counters[kind] = n + 1
            value = int.from_bytes(hashlib.sha256(f"{self.seed}:{kind}:{n}".encode()).digest(), "big")
            chars = []
            for _ in range(22):
                value, rem = divmod(value, 62)
                chars.append(_BASE62[rem])
            new_id = "".join(chars)
            if new_id not in self._artists and new_id not in self._albums and new_id not in self._tracks:
                return new_id

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    @staticmethod
    def _check_id(value: str) -> None:
        if not _ID_RE.match(value):
            raise ValueError(f"not a 22-character base62 Spotify id: {value!r}")

    def add_artist(
        self,
        name: str,
        *,
        artist_id: str | None = None,
        genres=(),
        followers: int = 0,
        images: list[dict[str, Any]] | None = None,
    ) -> str:
        """Add (or replace) an artist; returns its 22-char base62 id.

        ``images`` defaults to three generated images (640, 320, 160 px) like real artists.
        """
        if artist_id is None:
            artist_id = self._new_id("artist")
        self._check_id(artist_id)
        if images is None:
            digest = hashlib.sha1(artist_id.encode()).hexdigest()
            images = [
                {"url": f"https://i.scdn.co/image/ab6761610000e5eb{digest[:24]}", "height": 640, "width": 640},
                {"url": f"https://i.scdn.co/image/ab67616100005174{digest[:24]}", "height": 320, "width": 320},
                {"url": f"https://i.scdn.co/image/ab6761610000f178{digest[:24]}", "height": 160, "width": 160},
            ]
        existing = self._artists.get(artist_id)
        self._artists[artist_id] = _Artist(
            id=artist_id,
            name=name,
            genres=list(genres),
            followers=int(followers),
            images=list(images),
            seq=existing.seq if existing else self._next_seq(),
        )
        return artist_id

    def add_album(
        self,
        artist_ids: list[str],
        name: str,
        *,
        album_type: str = "album",
        release_date: str = "2026-01-01",
        release_date_precision: str = "day",
        total_tracks: int | None = None,
        tracks: list[dict] | None = None,
        album_id: str | None = None,
        appears_on: Sequence[str] = (),
        upc: str | None = None,
        images: list[dict[str, Any]] | None = None,
    ) -> str:
        """Add (or replace) an album, single or compilation; returns its id.

        * ``artist_ids`` — the album's artists (must have been added with :meth:`add_artist`).
        * ``album_type`` — ``album`` | ``single`` | ``compilation``; the album is listed in
          that group for each of its artists.
        * ``release_date`` — ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` matching
          ``release_date_precision`` (``year`` | ``month`` | ``day``).
        * ``tracks`` — ``[{"name", "duration_ms", "isrc"}]`` (optional keys ``explicit``,
          ``artist_ids``, ``disc_number``); generated when ``None`` (``total_tracks`` of them,
          default 10 for albums, 1 for singles, 12 for compilations).
        * ``total_tracks`` — defaults to ``len(tracks)``.
        * ``appears_on`` — extra artist ids whose listing shows this album in ``appears_on``.
        * ``upc`` / ``images`` — generated when ``None`` (images 640/300/64 px).
        """
        if album_type not in ("album", "single", "compilation"):
            raise ValueError(f"album_type must be album, single or compilation, not {album_type!r}")
        if release_date_precision not in ("year", "month", "day"):
            raise ValueError(f"bad release_date_precision {release_date_precision!r}")
        expected_parts = {"year": 1, "month": 2, "day": 3}[release_date_precision]
        if len(release_date.split("-")) != expected_parts:
            raise ValueError(f"release_date {release_date!r} does not match precision {release_date_precision!r}")
        for artist in [*artist_ids, *appears_on]:
            if artist not in self._artists:
                raise KeyError(f"unknown artist id {artist!r}; add_artist() it first")
        if album_id is None:
            album_id = self._new_id("album")
        self._check_id(album_id)
        previous = self._albums.get(album_id)
        if previous is not None:
            self._drop_tracks(previous)
        if tracks is None:
            count = (
                total_tracks if total_tracks is not None else {"album": 10, "single": 1, "compilation": 12}[album_type]
            )
            tracks = [
                {"name": name if count == 1 else f"{name} - Track {i + 1}", "duration_ms": 180_000 + 7_919 * i}
                for i in range(count)
            ]
        if total_tracks is None:
            total_tracks = len(tracks)
        if upc is None:
            upc = str(int.from_bytes(hashlib.sha256(f"{self.seed}:upc:{album_id}".encode()).digest()[:8], "big"))[
                :12
            ].zfill(12)
        if images is None:
            digest = hashlib.sha1(album_id.encode()).hexdigest()
            images = [
                {"url": f"https://i.scdn.co/image/ab67616d0000b273{digest[:24]}", "height": 640, "width": 640},
                {"url": f"https://i.scdn.co/image/ab67616d00001e02{digest[:24]}", "height": 300, "width": 300},
                {"url": f"https://i.scdn.co/image/ab67616d00004851{digest[:24]}", "height": 64, "width": 64},
            ]
        year = release_date[:4]
        owner = self._artists[artist_ids[0]].name if artist_ids else "Unknown"
        track_ids = []
        for number, spec in enumerate(tracks, start=1):
            track_id = spec.get("id") or self._new_id("track")
            n = self._counters.get("isrc", 0)
            self._counters["isrc"] = n + 1
            self._tracks[track_id] = _Track(
                id=track_id,
                name=spec.get("name", f"{name} - Track {number}"),
                duration_ms=int(spec.get("duration_ms", 200_000)),
                isrc=spec.get("isrc") or f"QZEMU{year[2:]}{n % 100_000:05d}",
                album_id=album_id,
                artist_ids=list(spec.get("artist_ids") or artist_ids),
                track_number=int(spec.get("track_number", number)),
                disc_number=int(spec.get("disc_number", 1)),
                explicit=bool(spec.get("explicit", False)),
            )
            track_ids.append(track_id)
        if previous is not None:
            self._unindex(previous)
        self._albums[album_id] = album = _Album(
            id=album_id,
            name=name,
            album_type=album_type,
            artist_ids=list(artist_ids),
            release_date=release_date,
            release_date_precision=release_date_precision,
            total_tracks=int(total_tracks),
            track_ids=track_ids,
            upc=upc,
            appears_on=[a for a in appears_on if a not in artist_ids],
            images=list(images),
            seq=previous.seq if previous else self._next_seq(),
            copyrights=[{"text": f"{year} {owner}", "type": "C"}, {"text": f"{year} {owner}", "type": "P"}],
        )
        for artist in (*album.artist_ids, *album.appears_on):
            self._albums_of.setdefault(artist, set()).add(album_id)
        return album_id

    def _unindex(self, album: _Album) -> None:
        for artist in (*album.artist_ids, *album.appears_on):
            ids = self._albums_of.get(artist)
            if ids is not None:
                ids.discard(album.id)

    def _drop_tracks(self, album: _Album) -> None:
        for track_id in album.track_ids:
            self._tracks.pop(track_id, None)

    def remove_album(self, album_id: str) -> None:
        """Take an album down: it and its tracks disappear from every endpoint (404 after)."""
        album = self._albums.pop(album_id)
        self._unindex(album)
        self._drop_tracks(album)

    def load_recorded_catalogue(self, artist_albums_json: dict, artist_json: dict | None = None) -> str:
        """Seed from a recorded ``GET /artists/{id}/albums`` response; returns the artist id.

        The artist id comes from ``artist_json["id"]`` or the listing's ``href``. Every
        item becomes an album with the recorded id, name, type, dates, artists, images
        and ``total_tracks`` (tracks generated); items whose ``album_group`` is
        ``appears_on`` are listed under the artist's ``appears_on`` group. Items are added
        in recorded order, so same-date ties keep the recorded order. Artists named in
        items are added too (name only) so ``GET /artists/{id}`` answers for them.
        """
        if artist_json is not None:
            artist_id = artist_json["id"]
        else:
            match = re.search(r"/artists/([0-9A-Za-z]{22})/albums", artist_albums_json.get("href") or "")
            if not match:
                raise ValueError("cannot tell the artist id: pass artist_json or a listing with its href")
            artist_id = match.group(1)
        if artist_json is not None:
            self.add_artist(
                artist_json["name"],
                artist_id=artist_id,
                genres=artist_json.get("genres") or (),
                followers=(artist_json.get("followers") or {}).get("total") or 0,
                images=artist_json.get("images"),
            )
        for item in artist_albums_json.get("items", []):
            for ref in item.get("artists", []):
                if ref.get("id") and ref["id"] not in self._artists:
                    self.add_artist(ref.get("name", ""), artist_id=ref["id"])
        if artist_id not in self._artists:
            self.add_artist("Unknown artist", artist_id=artist_id)
        for item in artist_albums_json.get("items", []):
            artist_ids = [ref["id"] for ref in item.get("artists", []) if ref.get("id")]
            group = item.get("album_group") or item.get("album_type")
            appears = [artist_id] if group == "appears_on" and artist_id not in artist_ids else []
            self.add_album(
                artist_ids,
                item["name"],
                album_type=item.get("album_type", "album"),
                release_date=item["release_date"],
                release_date_precision=item.get("release_date_precision", "day"),
                total_tracks=item.get("total_tracks"),
                album_id=item["id"],
                appears_on=appears,
                images=item.get("images"),
            )
        return artist_id

    # ----------------------------------------------------------------- faults

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 503,
        retry_after: float | None = None,
        reason: str | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with an error ``status``.

        ``path_contains=None`` matches every ``/v1`` request (never the token endpoint; pass
        ``"/api/token"`` to fail that). ``retry_after`` (seconds, sent rounded up as an
        integer ``Retry-After`` header; a 429 always carries one, default 1) and ``reason``
        (added to the error object, e.g. ``"QUOTA_EXCEEDED"``). Examples:
        ``fail_next(status=429, retry_after=1)`` — plain rate limit;
        ``fail_next(status=429, retry_after=86400, reason="QUOTA_EXCEEDED")`` — quota
        exhaustion (Spotify, 2026-07-23). Faults are served before authentication.
        """
        self._faults.append(_Fault("fail", count, path_contains, status=status, retry_after=retry_after, reason=reason))

    def fail_for(
        self,
        seconds: float,
        *,
        status: int = 503,
        retry_after: float | None = None,
        reason: str | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Answer every matching request with an error ``status`` for the next ``seconds`` of the
        emulator's ``monotonic`` clock (an outage: inject a simulated clock to make an hour pass at once).

        Matching, ``retry_after`` and ``reason`` as :meth:`fail_next`; afterwards requests are answered
        normally again (the fault is dropped at the first request after its end).
        """
        self._faults.append(
            _Fault(
                "fail",
                0,
                path_contains,
                status=status,
                retry_after=retry_after,
                reason=reason,
                until=self.monotonic() + seconds,
            )
        )

    def hang_next(self, count: int = 1, *, seconds: float = 30.0, path_contains: str | None = None) -> None:
        """Stall the next ``count`` matching requests ``seconds`` (real time) before answering.

        For client timeouts. The request is answered normally afterwards (if the client is
        still there); :meth:`stop` releases hung requests at once.
        """
        self._faults.append(_Fault("hang", count, path_contains, seconds=seconds))

    def clear_faults(self) -> None:
        """Drop every queued ``fail_next``/``fail_for``/``hang_next`` fault."""
        self._faults.clear()

    def expire_tokens(self) -> None:
        """Make every issued access token expired (next API call answers 401 "The access token expired")."""
        now = self.monotonic()
        for token in self._tokens:
            self._tokens[token] = min(self._tokens[token], now)

    def _take_fault(self, kind: str, path: str) -> _Fault | None:
        now = self.monotonic()
        self._faults = [f for f in self._faults if f.until is None or now < f.until]
        for fault in self._faults:
            if fault.until is not None and fault.kind == kind and fault.matches(path):
                return fault
            if fault.kind == kind and fault.count > 0 and fault.matches(path):
                fault.count -= 1
                if fault.count == 0:
                    self._faults.remove(fault)
                return fault
        return None

    # ------------------------------------------------------------ observation

    def requests_to(self, path_contains: str) -> list[LoggedRequest]:
        """Logged requests whose path contains ``path_contains``, oldest first."""
        return [r for r in self.request_log if path_contains in r.path]

    def clear_log(self) -> None:
        """Empty :attr:`request_log`."""
        self.request_log.clear()

    def reset_rate_limit(self) -> None:
        """Forget the requests counted in the rolling rate-limit window (a fresh window)."""
        self._window.clear()

    # -------------------------------------------------------------- lifecycle

    @property
    def api_base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` (after :meth:`start`)."""
        if self._base is None:
            raise RuntimeError("SpotifyEmulator is not started")
        return f"{self._base}/v1"

    @property
    def accounts_base_url(self) -> str:
        """``http://127.0.0.1:PORT``; the token endpoint is ``POST {accounts_base_url}/api/token``."""
        if self._base is None:
            raise RuntimeError("SpotifyEmulator is not started")
        return self._base

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (``port=0`` picks a free port)."""
        if self._runner is not None:
            raise RuntimeError("SpotifyEmulator already started")
        app = web.Application()
        app.router.add_route("*", "/api/token", functools.partial(self._tracked, self._handle_token))
        app.router.add_route("*", "/{tail:.*}", functools.partial(self._tracked, self._handle_api))
        self._stopping = asyncio.Event()
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self._base = f"http://{bound_host}:{bound_port}"

    async def stop(self) -> None:
        """Release hung requests and close the server. Idempotent."""
        if self._runner is None:
            return
        assert self._stopping is not None
        self._stopping.set()
        runner, self._runner = self._runner, None
        await runner.cleanup()
        self._base = None

    async def __aenter__(self) -> SpotifyEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- handlers

    def _log(self, request: web.Request, status: int, at: float) -> None:
        self.request_log.append(LoggedRequest(request.method, request.path, dict(request.query), status, at))

    async def _apply_faults(self, path: str) -> web.Response | None:
        hang = self._take_fault("hang", path)
        if hang is not None and self._stopping is not None:
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=hang.seconds)
            except TimeoutError:
                pass
        fail = self._take_fault("fail", path)
        if fail is None:
            return None
        headers = {}
        retry_after = fail.retry_after
        if retry_after is None and fail.status == 429:
            retry_after = 1
        if retry_after is not None:
            headers["Retry-After"] = str(max(0, math.ceil(retry_after)))
        message = _MESSAGES.get(fail.status, "Error")
        return _json_response(_error_body(fail.status, message, fail.reason), fail.status, headers)

    async def _tracked(self, handler, request: web.Request) -> web.Response:
        self.in_flight += 1
        try:
            return await handler(request)
        finally:
            self.in_flight -= 1

    async def _handle_token(self, request: web.Request) -> web.Response:
        """``POST /api/token`` — Spotify doc "Client Credentials Flow".

        Form ``grant_type=client_credentials``; credentials by HTTP Basic auth (or
        ``client_id``/``client_secret`` form fields). Answers ``{"access_token",
        "token_type": "Bearer", "expires_in"}``; 400 ``unsupported_grant_type`` /
        ``invalid_client`` otherwise (OAuth 2.0 error shape, not the Web API one).
        """
        at = self.monotonic()
        response = await self._apply_faults(request.path)
        if response is None:
            response = await self._token(request)
        self._log(request, response.status, at)
        return response

    async def _token(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return _json_response({"error": "invalid_request", "error_description": "Only POST is supported"}, 405)
        form = await request.post()
        grant_type = form.get("grant_type")
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
                client_id, _, client_secret = decoded.partition(":")
            except (binascii.Error, UnicodeDecodeError):
                client_id = client_secret = None
        if grant_type is None:
            return _json_response(
                {"error": "unsupported_grant_type", "error_description": "grant_type parameter is missing"}, 400
            )
        if grant_type != "client_credentials":
            return _json_response(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant_type must be client_credentials, authorization_code or refresh_token",
                },
                400,
            )
        if client_id != self.client_id or client_secret != self.client_secret:
            return _json_response({"error": "invalid_client", "error_description": "Invalid client"}, 400)
        n = self._counters.get("token", 0)
        self._counters["token"] = n + 1
        token = "BQ" + hashlib.sha256(f"{self.seed}:token:{n}".encode()).hexdigest()
        self._tokens[token] = self.monotonic() + self.token_expires_in
        return _json_response({"access_token": token, "token_type": "Bearer", "expires_in": self.token_expires_in})

    async def _handle_api(self, request: web.Request) -> web.Response:
        at = self.monotonic()
        if self.latency > 0 and request.path.startswith("/v1"):
            await asyncio.sleep(self.latency)
        response = await self._apply_faults(request.path)
        if response is None:
            try:
                response = self._dispatch(request)
            except _ApiError as exc:
                response = _json_response(_error_body(exc.status, exc.message, exc.reason), exc.status, exc.headers)
        self._log(request, response.status, at)
        return response

    def _authenticate(self, request: web.Request) -> None:
        """Bearer check — Spotify doc "Access token": 401 "Invalid access token" / "The access token expired"."""
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            raise _ApiError(401, "No token provided" if not auth else "Invalid access token")
        expiry = self._tokens.get(auth[7:].strip())
        if expiry is None:
            raise _ApiError(401, "Invalid access token")
        if self.monotonic() >= expiry:
            raise _ApiError(401, "The access token expired")

    def _check_rate_limit(self) -> None:
        """Rolling window — Spotify doc "Rate limits": 429 + ``Retry-After`` (ceil seconds)."""
        if self.rate_limit is None:
            return
        max_requests, window = self.rate_limit
        now = self.monotonic()
        while self._window and self._window[0] <= now - window:
            self._window.popleft()
        if len(self._window) >= max_requests:
            wait = self._window[0] + window - now
            raise _ApiError(429, headers={"Retry-After": str(max(1, math.ceil(wait)))})
        self._window.append(now)

    def _dispatch(self, request: web.Request) -> web.Response:
        path = request.path
        if not (path == "/v1" or path.startswith("/v1/")):
            raise _ApiError(404, "Service not found")
        self._authenticate(request)
        self._check_rate_limit()
        sub = path[3:] or "/"
        if any(p.match(sub) for p in _REMOVED_PATHS):
            # Removed for Development Mode apps: the live API answers a bare 403.
            raise _ApiError(403, "Forbidden")
        if request.method != "GET":
            raise _ApiError(405, "Method not allowed")
        q = request.query
        market = q.get("market")
        if market is not None and market != "from_token" and not _MARKET_RE.match(market):
            raise _ApiError(400, "Invalid market code")
        playable = market is not None
        parts = [p for p in sub.split("/") if p]
        if len(parts) == 2 and parts[0] == "artists":
            return _json_response(self._artist_object(self._get_artist(parts[1])))
        if len(parts) == 3 and parts[0] == "artists" and parts[2] == "albums":
            return _json_response(self._artist_albums(parts[1], q))
        if len(parts) == 2 and parts[0] == "albums":
            return _json_response(self._album_object(self._get_album(parts[1]), playable))
        if len(parts) == 3 and parts[0] == "albums" and parts[2] == "tracks":
            return _json_response(self._album_tracks(self._get_album(parts[1]), q, playable))
        if len(parts) == 2 and parts[0] == "tracks":
            return _json_response(self._track_object(self._get_track(parts[1]), playable))
        if parts == ["search"]:
            return _json_response(self._search(q, playable))
        if parts and parts[0] == "playlists":
            return _json_response(self._playlist_route(parts, q, playable))
        raise _ApiError(404, "Service not found")

    # ------------------------------------------------------------- lookups

    def _get_artist(self, artist_id: str) -> _Artist:
        if not _ID_RE.match(artist_id):
            raise _ApiError(400, "invalid id")
        artist = self._artists.get(artist_id)
        if artist is None:
            raise _ApiError(404, "Resource not found")
        return artist

    def _get_album(self, album_id: str) -> _Album:
        if not _ID_RE.match(album_id):
            raise _ApiError(400, "invalid id")
        album = self._albums.get(album_id)
        if album is None:
            raise _ApiError(404, "Resource not found")
        return album

    def _get_track(self, track_id: str) -> _Track:
        if not _ID_RE.match(track_id):
            raise _ApiError(400, "invalid id")
        track = self._tracks.get(track_id)
        if track is None or track.album_id not in self._albums:
            raise _ApiError(404, "Resource not found")
        return track

    @staticmethod
    def _int_param(q, name: str, default: int, low: int, high: int | None, message: str) -> int:
        raw = q.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _ApiError(400, message) from None
        if value < low or (high is not None and value > high):
            raise _ApiError(400, message)
        return value

    # -------------------------------------------------------------- objects

    def _artist_ref(self, artist_id: str) -> dict[str, Any]:
        """Simplified artist object (Spotify "SimplifiedArtistObject")."""
        artist = self._artists[artist_id]
        return {
            "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist_id}"},
            "href": f"{self.api_base_url}/artists/{artist_id}",
            "id": artist_id,
            "name": artist.name,
            "type": "artist",
            "uri": f"spotify:artist:{artist_id}",
        }

    def _artist_object(self, artist: _Artist) -> dict[str, Any]:
        """Full artist ("Get Artist", "ArtistObject") without the 2026-removed ``popularity``."""
        return {
            "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist.id}"},
            "followers": {"href": None, "total": artist.followers},
            "genres": list(artist.genres),
            "href": f"{self.api_base_url}/artists/{artist.id}",
            "id": artist.id,
            "images": [dict(i) for i in artist.images],
            "name": artist.name,
            "type": "artist",
            "uri": f"spotify:artist:{artist.id}",
        }

    def _simplified_album(self, album: _Album, playable: bool = False) -> dict[str, Any]:
        """Spotify "SimplifiedAlbumObject" without ``album_group``/``available_markets`` (removed 2026).

        ``is_playable`` is added when the request named a ``market`` (track relinking).
        """
        obj: dict[str, Any] = {
            "album_type": album.album_type,
            "total_tracks": album.total_tracks,
            "external_urls": {"spotify": f"https://open.spotify.com/album/{album.id}"},
            "href": f"{self.api_base_url}/albums/{album.id}",
            "id": album.id,
            "images": [dict(i) for i in album.images],
            "name": album.name,
            "release_date": album.release_date,
            "release_date_precision": album.release_date_precision,
            "type": "album",
            "uri": f"spotify:album:{album.id}",
            "artists": [self._artist_ref(a) for a in album.artist_ids],
        }
        if playable:
            obj["is_playable"] = True
        return obj

    def _simplified_track(self, track: _Track, playable: bool = False) -> dict[str, Any]:
        """Spotify "SimplifiedTrackObject" without ``available_markets``/``linked_from`` (removed 2026); no ISRC."""
        obj: dict[str, Any] = {
            "artists": [self._artist_ref(a) for a in track.artist_ids if a in self._artists],
            "disc_number": track.disc_number,
            "duration_ms": track.duration_ms,
            "explicit": track.explicit,
            "external_urls": {"spotify": f"https://open.spotify.com/track/{track.id}"},
            "href": f"{self.api_base_url}/tracks/{track.id}",
            "id": track.id,
            "name": track.name,
            "preview_url": None,
            "track_number": track.track_number,
            "type": "track",
            "uri": f"spotify:track:{track.id}",
            "is_local": False,
        }
        if playable:
            obj["is_playable"] = True
        return obj

    def _track_object(self, track: _Track, playable: bool = False) -> dict[str, Any]:
        """Full track ("Get Track", "TrackObject"): + ``album``, ``external_ids.isrc``; no ``popularity``."""
        obj = self._simplified_track(track, playable)
        obj["album"] = self._simplified_album(self._albums[track.album_id], playable)
        obj["external_ids"] = {"isrc": track.isrc}
        return obj

    def _paging(
        self, path: str, items: list[Any], offset: int, limit: int, extra: Sequence[tuple[str, str]] = ()
    ) -> dict[str, Any]:
        """A Spotify "PagingObject"; ``href``/``next``/``previous`` point at this emulator."""

        def url(at: int) -> str:
            query = f"offset={at}&limit={limit}" + "".join(f"&{k}={v}" for k, v in extra)
            return f"{self.api_base_url}{path}?{query}"

        total = len(items)
        return {
            "href": url(offset),
            "items": items[offset : offset + limit],
            "limit": limit,
            "next": url(offset + limit) if offset + limit < total else None,
            "offset": offset,
            "previous": url(max(0, offset - limit)) if offset > 0 else None,
            "total": total,
        }

    def _album_object(self, album: _Album, playable: bool = False) -> dict[str, Any]:
        """Full album ("Get Album", "AlbumObject"): + first 50 ``tracks``, ``copyrights``,
        ``external_ids.upc``, ``genres: []``; no ``label``/``popularity`` (removed 2026)."""
        obj = self._simplified_album(album, playable)
        tracks = [self._simplified_track(self._tracks[t], playable) for t in album.track_ids]
        obj["tracks"] = self._paging(f"/albums/{album.id}/tracks", tracks, 0, 50)
        obj["copyrights"] = [dict(c) for c in album.copyrights]
        obj["external_ids"] = {"upc": album.upc}
        obj["genres"] = []
        return obj

    def _album_tracks(self, album: _Album, q, playable: bool) -> dict[str, Any]:
        """Spotify "Get Album Tracks": ``limit`` default 20, 1–50; paging of simplified tracks."""
        limit = self._int_param(q, "limit", 20, 1, 50, "Invalid limit")
        offset = self._int_param(q, "offset", 0, 0, None, "Invalid offset")
        tracks = [self._simplified_track(self._tracks[t], playable) for t in album.track_ids]
        extra = [("market", q["market"])] if "market" in q else []
        return self._paging(f"/albums/{album.id}/tracks", tracks, offset, limit, extra)

    def artist_listing(self, artist_id: str, include_groups: tuple[str, ...] = ALBUM_GROUPS) -> list[tuple[str, str]]:
        """The artist's albums as ``[(group, album_id)]`` in the order the API lists them.

        Groups come in the order album, single, compilation, appears_on (whatever order
        ``include_groups`` names them in). Inside album/single/compilation: newest
        ``release_date`` first (a ``year``/``month`` date sorts before any day of that
        year/month), ties in insertion order. ``appears_on`` is in a deterministic order
        unrelated to dates (by a hash of the album id), as Spotify reports it unordered.
        """
        listing: list[tuple[str, str]] = []
        candidates = [self._albums[i] for i in self._albums_of.get(artist_id, ())]
        for group in ALBUM_GROUPS:
            if group not in include_groups:
                continue
            if group == "appears_on":
                albums = [a for a in candidates if artist_id in a.appears_on and artist_id not in a.artist_ids]
                albums.sort(key=lambda a: hashlib.sha256(a.id.encode()).hexdigest())
            else:
                albums = [a for a in candidates if artist_id in a.artist_ids and a.album_type == group]
                albums.sort(key=lambda a: a.seq)
                albums.sort(key=lambda a: a.sort_date, reverse=True)
            listing.extend((group, a.id) for a in albums)
        return listing

    def _artist_albums(self, artist_id: str, q) -> dict[str, Any]:
        """Spotify "Get Artist's Albums" (2026): ``limit`` default 5, 1–10 (else 400 "Invalid limit"),
        ``include_groups`` ⊆ {album, single, compilation, appears_on} (default all)."""
        self._get_artist(artist_id)
        limit = self._int_param(q, "limit", 5, 1, 10, "Invalid limit")
        offset = self._int_param(q, "offset", 0, 0, None, "Invalid offset")
        raw_groups = q.get("include_groups")
        if raw_groups is None or raw_groups.strip() == "":
            groups = ALBUM_GROUPS
        else:
            groups = tuple(g.strip() for g in raw_groups.split(",") if g.strip())
            unknown = [g for g in groups if g not in ALBUM_GROUPS]
            if unknown:
                raise _ApiError(400, f"Invalid include_groups value: {unknown[0]}")
        listing = self.artist_listing(artist_id, groups)
        items = [self._simplified_album(self._albums[album_id]) for _, album_id in listing[offset : offset + limit]]
        extra = [("include_groups", ",".join(groups))]
        if "market" in q:
            extra.append(("market", q["market"]))
        page = self._paging(f"/artists/{artist_id}/albums", [None] * len(listing), offset, limit, extra)
        page["items"] = items
        return page

    def _search(self, q, playable: bool) -> dict[str, Any]:
        """Spotify "Search for Item": ``q`` (or ``query``, as Spotify's own paging links use) and
        ``type`` required; ``limit`` default 5, 1–10; ``offset`` 0–1000.

        Matching is a case-insensitive substring on the name (``artist:``/``album:``/
        ``track:`` filters are read as plain text). Ranking: exact name, then prefix,
        then other matches; followers (artists) descending, then insertion order.
        Types ``artist``, ``album`` and ``track`` are searched; the other valid types
        answer an empty page.
        """
        query = q.get("q", q.get("query"))
        if query is None or query.strip() == "":
            raise _ApiError(400, "No search query")
        raw_types = q.get("type")
        if not raw_types:
            raise _ApiError(400, "Missing parameter type")
        types = [t.strip() for t in raw_types.split(",") if t.strip()]
        valid = ("album", "artist", "playlist", "track", "show", "episode", "audiobook")
        if not types or any(t not in valid for t in types):
            raise _ApiError(400, "Bad search type field")
        limit = self._int_param(q, "limit", 5, 1, 10, "Invalid limit")
        offset = self._int_param(q, "offset", 0, 0, 1000, "Invalid offset")
        needle = re.sub(r"\b(artist|album|track):", " ", query).replace('"', " ")
        needle = " ".join(needle.split()).casefold()

        def rank(name: str) -> int | None:
            name = name.casefold()
            if name == needle:
                return 0
            if name.startswith(needle):
                return 1
            if needle in name:
                return 2
            return None

        result: dict[str, Any] = {}
        extra = [("query", quote(query, safe="")), ("type", ",".join(types))]
        if "market" in q:
            extra.append(("market", q["market"]))
        for kind in types:
            if kind == "artist":
                artist_hits = [(rank(a.name), -a.followers, a.seq, a) for a in self._artists.values()]
                objects = [
                    self._artist_object(h[-1])
                    for h in sorted((h for h in artist_hits if h[0] is not None), key=lambda h: h[:3])
                ]
            elif kind == "album":
                album_hits = [(rank(a.name), 0, a.seq, a) for a in self._albums.values()]
                objects = [
                    self._simplified_album(h[-1], playable)
                    for h in sorted((h for h in album_hits if h[0] is not None), key=lambda h: h[:3])
                ]
            elif kind == "track":
                tracks = [t for t in self._tracks.values() if t.album_id in self._albums]
                track_hits = [(rank(t.name), 0, i, t) for i, t in enumerate(tracks)]
                objects = [
                    self._track_object(h[-1], playable)
                    for h in sorted((h for h in track_hits if h[0] is not None), key=lambda h: h[:3])
                ]
            else:
                objects = []
            result[kind + "s"] = self._paging("/search", objects, offset, limit, extra)
        return result

    # ------------------------------------------------------------- playlists

    def add_playlist(
        self,
        name: str,
        items: list | None = None,
        *,
        public: bool = True,
        owner: str = "emulator-user",
        description: str = "",
        playlist_id: str | None = None,
    ) -> str:
        """Add (or replace) a playlist; returns its id.

        ``items``, in order: a track id (added with :meth:`add_album`), an album id (its
        first track), ``{"local": "<name>", "artist": "<name>"}`` (a local file),
        ``{"episode": "<name>"}`` (a podcast episode) or ``None`` (an entry Spotify sends
        as a null item). ``public=False`` makes it private: 404 for this app, as for an
        unknown id.
        """
        if playlist_id is None:
            playlist_id = self._new_id("playlist")
        self._check_id(playlist_id)
        entries: list[tuple] = []
        for item in items or []:
            if item is None:
                entries.append(("null",))
            elif isinstance(item, dict) and "local" in item:
                entries.append(("local", str(item["local"]), str(item.get("artist") or "")))
            elif isinstance(item, dict) and "episode" in item:
                entries.append(("episode", str(item["episode"])))
            elif isinstance(item, str) and item in self._tracks:
                entries.append(("track", item))
            elif isinstance(item, str) and item in self._albums:
                entries.append(("track", self._albums[item].track_ids[0]))
            else:
                raise KeyError(f"unknown playlist item {item!r}; add_album() its track first")
        previous = self._playlists.get(playlist_id)
        self._playlists[playlist_id] = _Playlist(
            id=playlist_id,
            name=name,
            public=public,
            owner=owner,
            description=description,
            entries=entries,
            snapshot=previous.snapshot + 1 if previous else 1,
        )
        return playlist_id

    def _get_playlist(self, playlist_id: str) -> _Playlist:
        if not _ID_RE.match(playlist_id):
            raise _ApiError(400, "Invalid base62 id")
        playlist = self._playlists.get(playlist_id)
        if playlist is None or not playlist.public:
            raise _ApiError(404, "Resource not found")
        return playlist

    def _playlist_entry(self, playlist: _Playlist, entry: tuple, playable: bool) -> dict[str, Any]:
        """A "PlaylistTrackObject": ``item`` and the deprecated ``track`` (the same object)."""
        user = {
            "external_urls": {"spotify": f"https://open.spotify.com/user/{playlist.owner}"},
            "href": f"{self.api_base_url}/users/{playlist.owner}",
            "id": playlist.owner,
            "type": "user",
            "uri": f"spotify:user:{playlist.owner}",
        }
        kind = entry[0]
        obj: dict[str, Any] | None
        if kind == "track":
            obj = dict(self._track_object(self._tracks[entry[1]], playable), episode=False, track=True)
        elif kind == "local":
            obj = {
                "album": {
                    "album_type": None,
                    "artists": [],
                    "available_markets": [],
                    "external_urls": {},
                    "href": None,
                    "id": None,
                    "images": [],
                    "name": "",
                    "release_date": None,
                    "release_date_precision": None,
                    "type": "album",
                    "uri": None,
                },
                "artists": [
                    {"external_urls": {}, "href": None, "id": None, "name": entry[2], "type": "artist", "uri": None}
                ],
                "disc_number": 0,
                "duration_ms": 0,
                "explicit": False,
                "external_ids": {},
                "external_urls": {},
                "href": None,
                "id": None,
                "is_local": True,
                "name": entry[1],
                "preview_url": None,
                "track_number": 0,
                "type": "track",
                "uri": f"spotify:local:::{quote(entry[1])}:0",
                "episode": False,
                "track": True,
            }
        elif kind == "episode":
            digest = hashlib.sha1(f"{playlist.id}:{entry[1]}".encode()).hexdigest()
            episode_id = "".join(_BASE62[int(c, 16)] for c in digest[:22])
            obj = {
                "audio_preview_url": None,
                "description": "",
                "html_description": "",
                "duration_ms": 1_800_000,
                "explicit": False,
                "external_urls": {"spotify": f"https://open.spotify.com/episode/{episode_id}"},
                "href": f"{self.api_base_url}/episodes/{episode_id}",
                "id": episode_id,
                "images": [],
                "is_externally_hosted": False,
                "is_playable": True,
                "languages": ["en"],
                "name": entry[1],
                "release_date": "2026-01-01",
                "release_date_precision": "day",
                "type": "episode",
                "uri": f"spotify:episode:{episode_id}",
                "episode": True,
                "track": False,
                "show": {
                    "copyrights": [],
                    "description": "",
                    "html_description": "",
                    "explicit": False,
                    "external_urls": {"spotify": f"https://open.spotify.com/show/{episode_id}"},
                    "href": f"{self.api_base_url}/shows/{episode_id}",
                    "id": episode_id,
                    "images": [],
                    "is_externally_hosted": False,
                    "languages": ["en"],
                    "media_type": "audio",
                    "name": "A show",
                    "publisher": "",
                    "total_episodes": 1,
                    "type": "show",
                    "uri": f"spotify:show:{episode_id}",
                },
            }
        else:
            obj = None
        return {
            "added_at": "2026-01-01T00:00:00Z",
            "added_by": user,
            "is_local": kind == "local",
            "primary_color": None,
            "item": obj,
            "track": obj,
            "video_thumbnail": {"url": None},
        }

    def _playlist_paging(
        self, playlist: _Playlist, path: str, offset: int, limit: int, playable: bool, extra: list[tuple[str, str]]
    ) -> dict[str, Any]:
        page = self._paging(path, list(range(len(playlist.entries))), offset, limit, extra)
        page["items"] = [self._playlist_entry(playlist, playlist.entries[i], playable) for i in page["items"]]
        return page

    def _playlist_route(self, parts: list[str], q, playable: bool) -> dict[str, Any]:
        """ "Get Playlist", "Get Playlist Items" (``/items``, limit 1–50) and the deprecated ``/tracks`` (1–100)."""
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("items", "tracks")):
            raise _ApiError(404, "Service not found")
        playlist = self._get_playlist(parts[1])
        extra = [("market", q["market"])] if "market" in q else []
        if len(parts) == 3:
            if self.playlist_items_owner_only:
                raise _ApiError(403, "Forbidden")
            limit = self._int_param(q, "limit", 20, 1, 50 if parts[2] == "items" else 100, "Invalid limit")
            offset = self._int_param(q, "offset", 0, 0, None, "Invalid offset")
            return self._playlist_paging(
                playlist, f"/playlists/{playlist.id}/{parts[2]}", offset, limit, playable, extra
            )
        obj: dict[str, Any] = {
            "collaborative": False,
            "description": playlist.description,
            "external_urls": {"spotify": f"https://open.spotify.com/playlist/{playlist.id}"},
            "followers": {"href": None, "total": 0},
            "href": f"{self.api_base_url}/playlists/{playlist.id}",
            "id": playlist.id,
            "images": [],
            "name": playlist.name,
            "owner": {
                "display_name": playlist.owner,
                "external_urls": {"spotify": f"https://open.spotify.com/user/{playlist.owner}"},
                "href": f"{self.api_base_url}/users/{playlist.owner}",
                "id": playlist.owner,
                "type": "user",
                "uri": f"spotify:user:{playlist.owner}",
            },
            "primary_color": None,
            "public": playlist.public,
            "snapshot_id": f"AAAA{playlist.snapshot:08d}",
            "type": "playlist",
            "uri": f"spotify:playlist:{playlist.id}",
        }
        if not self.playlist_items_owner_only:
            obj["items"] = self._playlist_paging(playlist, f"/playlists/{playlist.id}/items", 0, 100, playable, extra)
            obj["tracks"] = self._playlist_paging(playlist, f"/playlists/{playlist.id}/tracks", 0, 100, playable, extra)
        return obj
