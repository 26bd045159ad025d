"""A loopback emulator of the Last.fm API method ``user.getTopArtists`` (JSON).

Follows ``../shared/musicdata/README.md`` section 4 ("Last.fm ``user.getTopArtists``") and the
community documentation it cites (lastfm-docs ``docs/user/getTopArtists.md``, ``docs/codes.md``).
An ``aiohttp.web`` server on loopback; the test injects users, their top artists per period and
API keys.

Implemented — ``GET /2.0/?method=user.gettopartists&user=U&period=P&limit=L&page=N&api_key=K&format=json``:

* Success: ``{"topartists": {"artist": [...], "@attr": {"page", "total", "user", "perPage",
  "totalPages"}}}``; each artist ``{"@attr": {"rank"}, "mbid" ("" when unknown), "url",
  "playcount", "image": [small, medium, large, extralarge, mega], "name", "streamable": "0"}``.
  **Every number is a string.** ``rank`` counts from the first artist of page 1; ``totalPages`` is
  ``ceil(total / limit)``; a page past the end is empty. ``period``: ``overall`` (default),
  ``7day``, ``1month``, ``3month``, ``6month``, ``12month``; ``limit`` default 50, ``page`` default 1.
  User names match case-insensitively and ``@attr.user`` is the stored spelling. Method names are
  case-insensitive. By default artists get the placeholder star image Last.fm serves for every
  artist (as in the recorded example) and ``https://www.last.fm/music/{name}`` URLs.
* Errors ``{"error": <int>, "message": <str>}``: unknown user → 6 ``"User not found"`` with HTTP 404
  (recorded docs example); missing or unknown ``api_key`` → 10 ``"Invalid API key - You must be
  granted a valid key by last.fm"``; a suspended key → 26; missing ``user``, unknown ``period`` or a
  ``limit``/``page`` that is not a positive integer → 6 ``"Invalid parameters - …"`` (the docs'
  text); unknown ``method`` → 3; over the optional rate limit → 29 ``"Rate limit exceeded - Your IP
  has made too many requests in a short period"`` with HTTP 429 (community docs).

Not documented, so chosen here and open to correction by a recording: HTTP 403 for errors 10 and
26, HTTP 400 for errors 3 and 6-invalid-parameters, the exact text of error 3, the order of the
checks (rate limit, key, method, parameters, user), and the rate limit itself (Last.fm publishes
none: ``rate_limit=(requests, window_seconds)`` per IP, rolling, off by default). ``limit`` is not
capped (the maximum is undocumented). Not implemented: XML (a request without ``format=json``
answers 406), other methods (error 3), POST, session/signature methods, the ``Content-Type`` of
the real service (sent here as ``application/json; charset=utf-8``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from aiohttp import web

from bot.clock import Clock, utcnow
from fakes.loopback import LoopbackServer

__all__ = ["PERIODS", "LastFmEmulator", "LoggedRequest"]

#: ``period`` values of ``user.getTopArtists`` (README section 4).
PERIODS = ("overall", "7day", "1month", "3month", "6month", "12month")
_METHOD = "user.gettopartists"
_DEFAULT_LIMIT = 50
#: The image hash Last.fm answers for every artist (its star placeholder).
_PLACEHOLDER_IMAGE = "2a96cbd8b46e442fc41c2b86b821562f"
_IMAGE_SIZES = (("small", "34s"), ("medium", "64s"), ("large", "174s"), ("extralarge", "300x300"), ("mega", "300x300"))
_USER_NOT_FOUND = (6, "User not found", 404)
_INVALID_PARAMETERS = (
    6,
    "Invalid parameters - Your request was either missing a required parameter, the parameter was not found, "
    "or had 0 results",
    400,
)
_INVALID_METHOD = (3, "Invalid Method - No method with that name in this package", 400)
_INVALID_API_KEY = (10, "Invalid API key - You must be granted a valid key by last.fm", 403)
_SUSPENDED_API_KEY = (26, "Suspended API key - Access for your account has been suspended, please contact Last.fm", 403)
_RATE_LIMITED = (29, "Rate limit exceeded - Your IP has made too many requests in a short period", 429)


@dataclass(frozen=True)
class LoggedRequest:
    """One request the emulator answered; ``query`` as a dict (last value wins), ``at`` the clock's time."""

    method: str
    path: str
    query: dict[str, str]
    user_agent: str | None
    status: int
    at: dt.datetime


@dataclass(frozen=True)
class _Artist:
    name: str
    playcount: int
    mbid: str
    url: str
    image: list[dict[str, str]]


class _LastFmError(Exception):
    """Raised in the handler: answer ``{"error": code, "message": message}`` with HTTP ``status``."""

    def __init__(self, error: tuple[int, str, int]) -> None:
        code, message, status = error
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _json_response(payload: Any, status: int = 200) -> web.Response:
    response = web.Response(text=json.dumps(payload, ensure_ascii=False), status=status)
    response.headers["Content-Type"] = "application/json; charset=utf-8"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _positive_int(q: Mapping[str, str], name: str, default: int) -> int:
    value = q.get(name)
    if value is None or value == "":
        return default
    if not value.isdigit() or int(value) < 1:
        raise _LastFmError(_INVALID_PARAMETERS)
    return int(value)


class LastFmEmulator(LoopbackServer):
    """An in-process Last.fm API (``user.getTopArtists``) on loopback — see the module docstring.

    Parameters (keyword-only):

    * ``api_keys`` — the keys accepted as valid.
    * ``clock`` — aware UTC ``datetime`` source for the rate limit and :attr:`request_log`.
    * ``rate_limit`` — ``(requests, window_seconds)`` per client IP, rolling; ``None`` (default) off.
    * ``latency`` — seconds slept (real time) before answering each request.

    ``base_url`` (``http://127.0.0.1:PORT/2.0/``, like ``https://ws.audioscrobbler.com/2.0/``) after
    :meth:`start`.
    """

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = ("emulator-api-key",),
        clock: Clock = utcnow,
        rate_limit: tuple[int, float] | None = None,
        latency: float = 0.0,
    ) -> None:
        self.api_keys = set(api_keys)
        self.clock = clock
        self.rate_limit = rate_limit
        self.latency = latency
        #: Every request answered, oldest first.
        self.request_log: list[LoggedRequest] = []
        self._suspended: set[str] = set()
        self._users: dict[str, str] = {}  # lowercased name -> name
        self._top_artists: dict[tuple[str, str], list[_Artist]] = {}  # (lowercased user, period) -> ranked
        self._windows: dict[str, deque[float]] = {}
        self._runner: web.AppRunner | None = None
        self._base: str | None = None

    # ------------------------------------------------------------------ data

    def add_user(self, name: str) -> str:
        """Register a Last.fm user (unique case-insensitively); returns ``name``."""
        self._users[name.lower()] = name
        return name

    def set_top_artists(self, user: str, artists: Iterable[Mapping[str, Any]], *, period: str = "overall") -> None:
        """Store a user's ranked top artists for ``period``.

        Entries: ``{"name": str, "playcount": int}`` plus optional ``"mbid"`` (default ``""``),
        ``"url"`` (default ``https://www.last.fm/music/{quote_plus(name)}``) and ``"image"``
        (default the placeholder in five sizes). Raises ``KeyError`` for an unknown user,
        ``ValueError`` for an unknown period or entry key.
        """
        if user.lower() not in self._users:
            raise KeyError(f"unknown user {user!r}; add_user() it first")
        if period not in PERIODS:
            raise ValueError(f"period must be one of {PERIODS}, not {period!r}")
        ranked = []
        for entry in artists:
            unknown = set(entry) - {"name", "playcount", "mbid", "url", "image"}
            if unknown:
                raise ValueError(f"unknown artist fields {sorted(unknown)}")
            name = entry["name"]
            ranked.append(
                _Artist(
                    name=name,
                    playcount=int(entry["playcount"]),
                    mbid=entry.get("mbid", ""),
                    url=entry.get("url") or f"https://www.last.fm/music/{quote_plus(name)}",
                    image=[dict(image) for image in entry.get("image") or self._placeholder_images()],
                )
            )
        self._top_artists[(user.lower(), period)] = ranked

    @staticmethod
    def _placeholder_images() -> list[dict[str, str]]:
        return [
            {"size": size, "#text": f"https://lastfm.freetls.fastly.net/i/u/{segment}/{_PLACEHOLDER_IMAGE}.png"}
            for size, segment in _IMAGE_SIZES
        ]

    def suspend_api_key(self, api_key: str) -> None:
        """Make ``api_key`` answer error 26 (suspended) from now on."""
        self._suspended.add(api_key)

    def reset_rate_limit(self) -> None:
        """Forget the requests counted in every rolling window."""
        self._windows.clear()

    # ------------------------------------------------------------ observation

    def requests_to(self, method: str) -> list[LoggedRequest]:
        """Logged requests whose ``method`` parameter equals ``method`` (case-insensitive)."""
        return [r for r in self.request_log if r.query.get("method", "").lower() == method.lower()]

    def clear_log(self) -> None:
        """Empty :attr:`request_log`."""
        self.request_log.clear()

    # -------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/2.0/`` (after :meth:`start`)."""
        if self._base is None:
            raise RuntimeError("LastFmEmulator is not started")
        return f"{self._base}/2.0/"

    # ---------------------------------------------------------------- handlers

    async def _handle(self, request: web.Request) -> web.Response:
        at = self.clock()
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        response = self._respond(request, at)
        self.request_log.append(
            LoggedRequest(
                request.method,
                request.path,
                dict(request.query),
                request.headers.get("User-Agent"),
                response.status,
                at,
            )
        )
        return response

    def _within_rate_limit(self, ip: str, at: dt.datetime) -> bool:
        if self.rate_limit is None:
            return True
        limit, window = self.rate_limit
        now = at.timestamp()
        requests = self._windows.setdefault(ip, deque())
        while requests and requests[0] <= now - window:
            requests.popleft()
        if len(requests) >= limit:
            return False
        requests.append(now)
        return True

    def _respond(self, request: web.Request, at: dt.datetime) -> web.Response:
        if request.path not in ("/2.0", "/2.0/"):
            return web.Response(status=404, text="Not Found")
        if request.method != "GET":
            return web.Response(status=405, text="LastFmEmulator serves GET only")
        q = request.query
        if q.get("format", "").lower() != "json":
            return web.Response(status=406, text="LastFmEmulator serves JSON only: send format=json")
        try:
            if not self._within_rate_limit(request.remote or "", at):
                raise _LastFmError(_RATE_LIMITED)
            api_key = q.get("api_key", "")
            if api_key not in self.api_keys:
                raise _LastFmError(_INVALID_API_KEY)
            if api_key in self._suspended:
                raise _LastFmError(_SUSPENDED_API_KEY)
            if q.get("method", "").lower() != _METHOD:
                raise _LastFmError(_INVALID_METHOD)
            return _json_response(self._top_artists_page(q))
        except _LastFmError as exc:
            return _json_response({"error": exc.code, "message": exc.message}, exc.status)

    def _top_artists_page(self, q: Mapping[str, str]) -> dict[str, Any]:
        """``user.getTopArtists``: one page of the user's ranked artists, numbers as strings."""
        user_param = q.get("user", "")
        if not user_param:
            raise _LastFmError(_INVALID_PARAMETERS)
        period = q.get("period") or "overall"
        if period not in PERIODS:
            raise _LastFmError(_INVALID_PARAMETERS)
        limit = _positive_int(q, "limit", _DEFAULT_LIMIT)
        page = _positive_int(q, "page", 1)
        user = self._users.get(user_param.lower())
        if user is None:
            raise _LastFmError(_USER_NOT_FOUND)
        ranked = self._top_artists.get((user.lower(), period), [])
        start = (page - 1) * limit
        artists = [
            {
                "@attr": {"rank": str(rank)},
                "mbid": artist.mbid,
                "url": artist.url,
                "playcount": str(artist.playcount),
                "image": [dict(image) for image in artist.image],
                "name": artist.name,
                "streamable": "0",
            }
            for rank, artist in enumerate(ranked[start : start + limit], start=start + 1)
        ]
        return {
            "topartists": {
                "artist": artists,
                "@attr": {
                    "page": str(page),
                    "total": str(len(ranked)),
                    "user": user,
                    "perPage": str(limit),
                    "totalPages": str(math.ceil(len(ranked) / limit)),
                },
            }
        }
