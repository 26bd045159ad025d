"""Async client for Last.fm's ``user.getTopArtists`` (``/import lastfm:``).

Source: ``../shared/musicdata/README.md`` section 4 — ``GET https://ws.audioscrobbler.com/2.0/?method=
user.gettopartists&user=U&period=P&limit=L&page=N&api_key=K&format=json``; ``period`` ``overall``,
``7day``, ``1month``, ``3month``, ``6month`` or ``12month``; the answer ``{"topartists": {"artist":
[{"name", "mbid" ("" when unknown), "playcount", …}], "@attr": {"page", "total", "totalPages", …}}}``
with **every number a string**, most played first. Errors are ``{"error": <int>, "message"}``, some
with HTTP 200: 6 user not found (HTTP 404; 6 is also "invalid parameters"), 10 invalid API key, 26
suspended key, 29 rate limit exceeded (HTTP 429).

Last.fm publishes no rate limit but suspends applications "continuously making several calls per
second": this client sends at most one request per ``min_interval`` seconds (per process; an import
reads a few pages, once), retries a 29, a 5xx or no answer after ``backoff_seconds`` (doubled each
time) at most ``max_retries`` times, and sends an identifiable User-Agent. The API key is a secret:
it goes in the query string only, and never into a log record or an error message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.musicdata.errors import InvalidApiKey, MusicDataError, UnknownUser
from bot.musicdata.models import ListenedArtist, parse_mbid
from bot.musicdata.pacing import Sleep

log = logging.getLogger(__name__)

SERVICE = "Last.fm"
PERIODS = ("overall", "7day", "1month", "3month", "6month", "12month")
"""The ``period`` values of ``user.getTopArtists``."""
USER_NOT_FOUND = 6
INVALID_API_KEY = 10
SUSPENDED_API_KEY = 26
RATE_LIMIT_EXCEEDED = 29


@dataclass(frozen=True)
class TopArtistsPage:
    """One page of ``user.getTopArtists``: ``artists`` most played first, ``page`` (from 1) of
    ``total_pages``, ``total`` artists in all."""

    artists: list[ListenedArtist]
    page: int
    total_pages: int
    total: int


def _int(value: object) -> int:
    """A Last.fm number (a string) as an int; 0 for anything else."""
    try:
        return int(str(value))
    except ValueError:
        return 0


class LastFmClient:
    """Last.fm API 2.0 (JSON): a user's top artists.

    ``base_url``: the API root (``https://ws.audioscrobbler.com/2.0/``; an emulator's in tests);
    ``api_key``: the application's key (``[lastfm] api_key``, a secret); ``user_agent``: sent on every
    request; ``http``: the process's aiohttp session (not closed here); ``sleep``: the waits;
    ``monotonic``: seconds, for the spacing; ``min_interval``: seconds between two requests;
    ``max_retries`` and ``backoff_seconds``: as the module docstring says; ``timeout``: seconds
    allowed for one request. ``request_count``: requests sent.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        user_agent: str,
        http: aiohttp.ClientSession,
        sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        min_interval: float = 1.0,
        max_retries: int = 2,
        backoff_seconds: float = 2.0,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self._api_key = api_key
        self.user_agent = user_agent
        self.http = http
        self.sleep = sleep
        self.monotonic = monotonic
        self.min_interval = float(min_interval)
        self.max_retries = max(0, int(max_retries))
        self.backoff_seconds = float(backoff_seconds)
        self._timeout = aiohttp.ClientTimeout(total=float(timeout))
        self.request_count = 0
        self._last_at: float | None = None

    def __repr__(self) -> str:
        return f"LastFmClient(base_url={self.base_url!r})"

    async def top_artists(
        self, user: str, *, period: str = "overall", limit: int = 100, page: int = 1
    ) -> TopArtistsPage:
        """Page ``page`` of ``user``'s top artists over ``period`` (:data:`PERIODS`), ``limit`` a page.

        An artist's ``mbid`` is None when Last.fm gives ``""``. Raises ``ValueError`` for a bad period,
        :class:`UnknownUser` (error 6 with HTTP 404, or "User not found"), :class:`InvalidApiKey`
        (errors 10 and 26), :class:`MusicDataError` for anything else (after the retries).
        """
        if period not in PERIODS:
            raise ValueError(f"period must be one of {PERIODS}, got {period!r}")
        params = {
            "method": "user.gettopartists",
            "user": user,
            "period": period,
            "limit": str(max(1, limit)),
            "page": str(max(1, page)),
            "api_key": self._api_key,
            "format": "json",
        }
        body = await self._get(params)
        top = body.get("topartists") or {}
        attr = top.get("@attr") or {}
        items = top.get("artist") or []
        if isinstance(items, dict):  # a single artist may come as an object
            items = [items]
        artists = [
            ListenedArtist(str(item.get("name") or ""), parse_mbid(item.get("mbid")), _int(item.get("playcount")))
            for item in items
        ]
        return TopArtistsPage(
            artists=artists,
            page=_int(attr.get("page")) or page,
            total_pages=_int(attr.get("totalPages")),
            total=_int(attr.get("total")),
        )

    async def _space(self) -> None:
        """Wait until ``min_interval`` has passed since the last request."""
        if self._last_at is not None:
            wait = self._last_at + self.min_interval - self.monotonic()
            if wait > 0:
                await self.sleep(wait)
        self._last_at = self.monotonic()

    async def _get(self, params: dict[str, str]) -> dict[str, Any]:
        """``GET {base_url}?params``: the JSON body; Last.fm's errors raised as the module docstring says."""
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        status: int | None = None
        for attempt in range(self.max_retries + 1):
            await self._space()
            self.request_count += 1
            try:
                async with self.http.get(
                    self.base_url, params=params, headers=headers, timeout=self._timeout
                ) as response:
                    status = response.status
                    try:
                        body: Any = await response.json(content_type=None)
                    except ValueError:
                        body = None
                    error = body.get("error") if isinstance(body, dict) else None
                    if status == 200 and error is None and isinstance(body, dict):
                        return body
                    message = str(body.get("message") or "") if isinstance(body, dict) else ""
                    if error == USER_NOT_FOUND and (status == 404 or "not found" in message.lower()):
                        raise UnknownUser(SERVICE, message or "User not found", status)
                    if error in (INVALID_API_KEY, SUSPENDED_API_KEY):
                        raise InvalidApiKey(SERVICE, f"error {error}: {message}", status)
                    if error != RATE_LIMIT_EXCEEDED and status < 500:
                        raise MusicDataError(SERVICE, f"error {error} (HTTP {status}): {message[:200]}", status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = None
                log.info("Last.fm request failed (%s)", type(exc).__name__)
            if attempt == self.max_retries:
                break
            wait = self.backoff_seconds * 2**attempt
            log.info("Last.fm answered %s: retrying in %.0f s", status or "nothing", wait)
            await self.sleep(wait)
        raise MusicDataError(SERVICE, f"no answer after {self.max_retries + 1} attempts", status)
