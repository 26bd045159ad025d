"""Async HTTP client for the Spotify Web API (2026 Development Mode).

One :class:`SpotifyClient` owns one ``aiohttp.ClientSession``, a client-credentials
access token, retries and the quota cooldown. It sends only the single-object
endpoints Development Mode still allows (no ``?ids=`` batch endpoints) and never asks
for more than 10 items per page.

Spotify Web API documentation sections followed:

* Authorization → Client Credentials Flow (``POST {accounts}/api/token``)
* Get Artist (``GET /artists/{id}``)
* Search for Item (``GET /search?type=artist``)
* Get Artist's Albums (``GET /artists/{id}/albums``)
* Get Album (``GET /albums/{id}``)
* Get Playlist (``GET /playlists/{id}``) and Get Playlist Items (``GET /playlists/{id}/items``,
  ``limit`` ≤ 50; the deprecated ``/tracks`` is not used)
* Rate Limits (429 with ``Retry-After`` in seconds)

Turning what a user pasted into an id is :mod:`bot.spotify.links`'s job.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import datetime as dt
import email.utils
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

import aiohttp
import yarl
from aiolimiter import AsyncLimiter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from bot.clock import utcnow
from bot.spotify.errors import (
    SpotifyAuthError,
    SpotifyCooldown,
    SpotifyError,
    SpotifyNotFound,
)
from bot.spotify.models import Album, Artist, Page, Playlist, PlaylistEntry

_T = TypeVar("_T")

__all__ = [
    "DEFAULT_QUOTA_RETRY_AFTER",
    "MAX_PAGE_LIMIT",
    "MAX_PLAYLIST_PAGE_LIMIT",
    "SpotifyClient",
]

log = logging.getLogger(__name__)

MAX_PAGE_LIMIT = 10
"""Largest ``limit`` Development Mode accepts on search and artist albums."""

MAX_PLAYLIST_PAGE_LIMIT = 50
"""Largest ``limit`` of ``GET /playlists/{id}/items`` (the spec's ``QueryLimit``: 1–50)."""

DEFAULT_QUOTA_RETRY_AFTER = 86400.0
"""Seconds of cooldown assumed for a ``QUOTA_EXCEEDED`` 429 that carries no ``Retry-After``."""

_DEFAULT_RATE_LIMIT_RETRY_AFTER = 1.0  # seconds, for a short 429 without Retry-After
_TOKEN_EARLY_EXPIRY = 60.0  # seconds before expires_in at which a token is renewed
_QUOTA_REASON = "QUOTA_EXCEEDED"


class _Retryable(Exception):
    """Internal: a failure worth another attempt (5xx, connection error, timeout, short 429)."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def rolling_window_limiter(per_30s: int) -> AsyncLimiter | None:
    """An ``AsyncLimiter`` that never exceeds ``per_30s`` requests in *any* 30-second window.

    Spotify counts requests in a rolling 30 s window (Web API "Rate Limits"). A leaky
    bucket of ``per_30s`` tokens per 30 s would allow a burst of ``per_30s`` and then
    refill, i.e. up to about twice the limit in one window. Here the bucket holds
    ``c = max(1, per_30s // 31)`` tokens and refills strictly slower than ``per_30s - c``
    per 30 s, so any window sees at most ``c + (per_30s - c) = per_30s`` requests.
    None when ``per_30s`` is 0.
    """
    if per_30s <= 0:
        return None
    capacity = max(1, per_30s // 31)
    refill_per_second = max(per_30s - capacity, 1) / 30.5
    return AsyncLimiter(capacity, capacity / refill_per_second)


class SpotifyClient:
    """Client-credentials client for the few Spotify Web API endpoints the bot uses.

    Keyword arguments:

    * ``client_id`` / ``client_secret`` — the app's credentials (the secret is never
      logged nor put in an exception message).
    * ``api_base_url`` / ``accounts_base_url`` — Web API and accounts roots (an
      emulator's in tests).
    * ``market`` — ISO 3166-1 alpha-2 country sent on search, artist albums and album
      requests; ``None`` leaves it out.
    * ``session`` — an ``aiohttp.ClientSession`` to use; when ``None`` one is created
      lazily and :meth:`close` closes it. An injected session is never closed here.
    * ``clock`` — returns the current aware UTC ``datetime``; used for token expiry and
      the cooldown.
    * ``sleep`` — ``async sleep(seconds)``; every wait (Retry-After, backoff) goes
      through it.
    * ``max_retry_after`` — seconds; a 429 asking for a longer wait starts a cooldown
      instead of waiting.
    * ``max_retries`` — retries after the first attempt for 5xx, connection errors,
      timeouts and short 429s (so at most ``max_retries + 1`` requests per call).
    * ``timeout`` — seconds, total time allowed for one HTTP request.
    * ``cooldown_until`` — a cooldown restored from storage (UTC; a naive value is
      taken as UTC).
    * ``rate_limit_per_30s`` — client-side limit (an ``aiolimiter.AsyncLimiter`` shared by
      every API request of this client, retries included): at most this many requests
      in any 30-second window; 0 disables it. Spotify's own limit is a rolling 30 s window.

    Counters: ``request_count`` (API requests sent, retries included, token requests
    excluded), ``token_requests``, ``requests_by_endpoint`` (``"artist"``,
    ``"search"``, ``"artist_albums"``, ``"album"``, ``"playlist"``, ``"playlist_items"``) and ``rate_limited`` (429 answers seen).
    """

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        api_base_url: str = "https://api.spotify.com/v1",
        accounts_base_url: str = "https://accounts.spotify.com",
        market: str | None = "US",
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        max_retry_after: float = 60.0,
        max_retries: int = 4,
        timeout: float = 10.0,
        cooldown_until: dt.datetime | None = None,
        rate_limit_per_30s: int = 0,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._api_base_url = api_base_url.rstrip("/")
        self._accounts_base_url = accounts_base_url.rstrip("/")
        self.market = market
        self._session = session
        self._owns_session = session is None
        self._clock = clock
        self._sleep = sleep
        self.max_retry_after = float(max_retry_after)
        self.max_retries = max(0, int(max_retries))
        self.timeout = float(timeout)
        self._client_timeout = aiohttp.ClientTimeout(total=self.timeout)

        self._token: str | None = None
        self._token_expires_at: dt.datetime | None = None
        self._token_lock = asyncio.Lock()

        self._cooldown_until: dt.datetime | None = None
        self._cooldown_reason = "cooldown"
        self.cooldown_until = cooldown_until

        self.request_count = 0
        self.token_requests = 0
        self.rate_limited = 0
        self.requests_by_endpoint: collections.Counter[str] = collections.Counter()
        self.rate_limit_per_30s = max(0, int(rate_limit_per_30s))
        self.limiter: AsyncLimiter | None = rolling_window_limiter(self.rate_limit_per_30s)
        self.rate_share = 1
        #: awaited with the :class:`SpotifyCooldown` when a 429 starts one (the bot persists it at once,
        #: so every process sharing the developer account's quota stops too)
        self.on_cooldown: Callable[[SpotifyCooldown], Awaitable[object]] | None = None
        #: called with ``(endpoint, answer)`` after every HTTP request (API and token): ``answer`` is the
        #: HTTP status as text, or ``timeout`` / ``error`` when none came (the metrics count them)
        self.on_response: Callable[[str, str], object] | None = None
        self._new_cooldown: SpotifyCooldown | None = None

    def share_rate_limit(self, processes: int) -> None:
        """Split the rolling-window limit between ``processes`` live bot processes (≥ 1).

        Spotify's rate limit is per app, not per process: each of N processes may send
        ``rate_limit_per_30s // N`` requests in any 30 s window, so together they stay
        within the limit. Called by the coordinator's heartbeat when N changes.
        """
        n = max(1, int(processes))
        if n == self.rate_share or self.rate_limit_per_30s <= 0:
            self.rate_share = n
            return
        self.rate_share = n
        self.limiter = rolling_window_limiter(max(1, self.rate_limit_per_30s // n))

    def __repr__(self) -> str:
        return (
            f"SpotifyClient(client_id={self._client_id!r}, api_base_url={self._api_base_url!r}, market={self.market!r})"
        )

    async def __aenter__(self) -> SpotifyClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- cooldown --------------------------------------------------------------------

    @property
    def cooldown_until(self) -> dt.datetime | None:
        """UTC time before which no request is sent (every call raises ``SpotifyCooldown``), or None."""
        return self._cooldown_until

    @cooldown_until.setter
    def cooldown_until(self, value: dt.datetime | None) -> None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        self._cooldown_until = value

    def _check_cooldown(self) -> None:
        until = self._cooldown_until
        if until is not None and self._clock() < until:
            raise SpotifyCooldown(until, self._cooldown_reason)

    def _start_cooldown(self, seconds: float, reason: str) -> SpotifyCooldown:
        until = self._clock() + dt.timedelta(seconds=seconds)
        if self._cooldown_until is None or until > self._cooldown_until or self._clock() >= self._cooldown_until:
            self._cooldown_until = until
            self._cooldown_reason = reason
        log.warning("Spotify cooldown until %s (%s)", self._cooldown_until.isoformat(), reason)
        self._new_cooldown = SpotifyCooldown(self._cooldown_until, self._cooldown_reason)
        return self._new_cooldown

    # -- public API --------------------------------------------------------------------

    async def get_artist(self, artist_id: str) -> Artist:
        """Get Artist: ``GET /artists/{id}``.

        Returns the parsed :class:`Artist`. Raises ``SpotifyNotFound`` for an unknown id
        (404, or 400 "invalid id"), ``SpotifyCooldown`` during a cooldown or on a quota
        429, ``SpotifyAuthError`` when the credentials are refused, ``SpotifyError``
        otherwise.
        """
        data = await self._api("artist", f"{self._api_base_url}/artists/{_path_id(artist_id)}")
        return _parse(Artist.from_api, data, "artist")

    async def search_artists(self, query: str, limit: int = 10) -> list[Artist]:
        """Search for Item: ``GET /search?type=artist&q=…&limit=…&market=…``.

        ``limit`` is clamped to 1..10 (the Development Mode maximum). Returns the
        artists in Spotify's relevance order; a blank query returns ``[]`` without a
        request. Raises ``SpotifyCooldown`` / ``SpotifyAuthError`` / ``SpotifyError``.
        """
        if not query or not query.strip():
            return []
        params = {"q": query.strip(), "type": "artist", "limit": str(_clamp_limit(limit))}
        self._add_market(params)
        data = await self._api("search", f"{self._api_base_url}/search", params)
        items = (data.get("artists") or {}).get("items") or []
        return _parse_items(Artist.from_api, items, "search artist")

    async def artist_albums(
        self,
        artist_id: str,
        *,
        include_groups: Sequence[str],
        limit: int = 10,
        offset: int = 0,
    ) -> Page[Album]:
        """Get Artist's Albums: ``GET /artists/{id}/albums``.

        ``include_groups`` are album groups (``album``, ``single``, ``compilation``,
        ``appears_on``; a comma-separated string is accepted too). ``limit`` is clamped
        to 1..10, ``offset`` to ≥ 0. Returns a :class:`Page` whose ``items`` are
        :class:`Album` (simplified: no tracks/upc), newest first inside each group;
        when exactly one group is requested each album's ``album_group`` is that group
        (Development Mode no longer sends the field). Raises ``SpotifyNotFound`` for an
        unknown artist, ``SpotifyCooldown`` / ``SpotifyAuthError`` / ``SpotifyError``.
        """
        groups = _normalize_groups(include_groups)
        params = {"limit": str(_clamp_limit(limit)), "offset": str(max(0, int(offset)))}
        if groups:
            params["include_groups"] = ",".join(groups)
        self._add_market(params)
        data = await self._api("artist_albums", f"{self._api_base_url}/artists/{_path_id(artist_id)}/albums", params)
        return _album_page(data, groups[0] if len(groups) == 1 else None)

    async def artist_albums_next(self, page: Page[Album]) -> Page[Album] | None:
        """Follow ``page.next`` of an artist albums page; ``None`` when it is the last page.

        The next URL is used as Spotify gave it (it carries ``include_groups``,
        ``limit``, ``offset`` and ``market``); it must point at ``api_base_url``
        (the bearer token is never sent elsewhere), else ``SpotifyError``. Raises as
        :meth:`artist_albums`.
        """
        if not page.next:
            return None
        url = yarl.URL(page.next, encoded=True)
        base = yarl.URL(self._api_base_url)
        if url.origin() != base.origin() or not url.path.startswith(base.path.rstrip("/") + "/"):
            raise SpotifyError(f"refusing to follow a next URL outside {self._api_base_url}")
        groups = _normalize_groups(",".join(parse_qs(urlsplit(page.next).query).get("include_groups", [])))
        data = await self._api("artist_albums", url)
        return _album_page(data, groups[0] if len(groups) == 1 else None)

    async def get_album(self, album_id: str) -> Album:
        """Get Album: ``GET /albums/{id}?market=…``.

        Returns the full :class:`Album` with ``upc`` (``external_ids.upc``) and the
        tracks of the response's first tracks page (Spotify embeds up to 50; no extra
        requests are made for more). Raises ``SpotifyNotFound`` for an unknown id,
        ``SpotifyCooldown`` / ``SpotifyAuthError`` / ``SpotifyError``.
        """
        params: dict[str, str] = {}
        self._add_market(params)
        data = await self._api("album", f"{self._api_base_url}/albums/{_path_id(album_id)}", params)
        return _parse(Album.from_api, data, "album")

    async def get_playlist(self, playlist_id: str) -> Playlist:
        """Get Playlist: ``GET /playlists/{id}?market=…``.

        Returns the :class:`Playlist`; its ``first_page`` holds the entries Spotify embedded
        (``items``, or the deprecated ``tracks``; up to 100), or None when the response has
        none — Development Mode embeds them only for playlists the token's user owns, and a
        client-credentials token has no user. Raises ``SpotifyNotFound`` for an unknown or
        private playlist (404), ``SpotifyError`` with ``status == 403`` when Spotify refuses
        it, ``SpotifyCooldown`` / ``SpotifyAuthError`` / ``SpotifyError``.
        """
        params: dict[str, str] = {}
        self._add_market(params)
        data = await self._api("playlist", f"{self._api_base_url}/playlists/{_path_id(playlist_id)}", params)
        try:
            embedded = data.get("items") if isinstance(data.get("items"), dict) else data.get("tracks")
            first_page = _playlist_page(embedded) if isinstance(embedded, dict) and "items" in embedded else None
            total = embedded.get("total") if isinstance(embedded, dict) else None
            return Playlist(
                id=data["id"],
                name=data.get("name") or "",
                owner_name=(data.get("owner") or {}).get("display_name") or (data.get("owner") or {}).get("id") or "",
                public=data.get("public"),
                total=int(total) if total is not None else None,
                first_page=first_page,
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise SpotifyError(f"Spotify playlist: malformed object ({exc!r})") from None

    async def playlist_items(
        self, playlist_id: str, *, limit: int = MAX_PLAYLIST_PAGE_LIMIT, offset: int = 0
    ) -> Page[PlaylistEntry]:
        """Get Playlist Items: ``GET /playlists/{id}/items?limit=…&offset=…&market=…``.

        ``limit`` is clamped to 1..50 (the spec's limit for this endpoint), ``offset`` to
        ≥ 0. Returns a :class:`Page` of :class:`PlaylistEntry` (local files, episodes and
        null items included, marked by ``kind``). Raises ``SpotifyNotFound`` (404),
        ``SpotifyError`` with ``status == 403`` when Spotify refuses the playlist's items
        (Development Mode: playlists not owned by the token's user), ``SpotifyCooldown`` /
        ``SpotifyAuthError`` / ``SpotifyError``.
        """
        params = {"limit": str(max(1, min(MAX_PLAYLIST_PAGE_LIMIT, int(limit)))), "offset": str(max(0, int(offset)))}
        self._add_market(params)
        data = await self._api(
            "playlist_items", f"{self._api_base_url}/playlists/{_path_id(playlist_id)}/items", params
        )
        return _playlist_page(data)

    async def playlist_items_next(self, page: Page[PlaylistEntry]) -> Page[PlaylistEntry] | None:
        """Follow ``page.next`` of a playlist items page (also the one embedded by
        :meth:`get_playlist`); ``None`` when it is the last page. The URL must point at
        ``api_base_url``. Raises as :meth:`playlist_items`."""
        if not page.next:
            return None
        url = yarl.URL(page.next, encoded=True)
        base = yarl.URL(self._api_base_url)
        if url.origin() != base.origin() or not url.path.startswith(base.path.rstrip("/") + "/"):
            raise SpotifyError(f"refusing to follow a next URL outside {self._api_base_url}")
        return _playlist_page(await self._api("playlist_items", url))

    async def close(self) -> None:
        """Close the HTTP session if this client created it (an injected one is left open)."""
        session, self._session = self._session, (None if self._owns_session else self._session)
        if self._owns_session and session is not None and not session.closed:
            await session.close()

    # -- plumbing ---------------------------------------------------------------------

    def _add_market(self, params: dict[str, str]) -> None:
        if self.market:
            params["market"] = self.market

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or (self._owns_session and self._session.closed):
            self._session = aiohttp.ClientSession(timeout=self._client_timeout)
            self._owns_session = True
        return self._session

    async def _with_retries(self, what: str, attempt: Callable[[], Awaitable[_T]]) -> _T:
        retrying = AsyncRetrying(
            sleep=self._pause,
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            before_sleep=_log_retry(what),
            reraise=True,
        )
        try:
            return await retrying(attempt)
        except _Retryable as exc:
            raise SpotifyError(
                f"Spotify {what} failed after {self.max_retries + 1} attempts: {exc}", status=exc.status
            ) from None

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` between two attempts through the injected ``sleep``."""
        await self._sleep(seconds)

    _backoff = wait_exponential_jitter(multiplier=0.5, max=8.0, jitter=0.5)

    def _wait(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return exc.retry_after
        return self._backoff(retry_state)

    async def _api(self, endpoint: str, url: str | yarl.URL, params: dict[str, str] | None = None) -> dict[str, Any]:
        """One API call: cooldown check, token, retries, 401 refresh, status mapping."""
        self._check_cooldown()
        refreshed = False

        async def attempt() -> dict[str, Any]:
            nonlocal refreshed
            while True:
                self._check_cooldown()
                token = await self._get_token()
                if self.limiter is not None:
                    await self.limiter.acquire()
                    self._check_cooldown()
                self.request_count += 1
                self.requests_by_endpoint[endpoint] += 1
                status, headers, body = await self._send(
                    "GET", url, what=endpoint, params=params, headers={"Authorization": f"Bearer {token}"}
                )
                if status == 401 and not refreshed:
                    refreshed = True
                    self._drop_token(token)
                    log.debug("Spotify %s: 401, renewing the access token once", endpoint)
                    continue
                return self._handle(endpoint, status, headers, body, token)

        try:
            return await self._with_retries(endpoint, attempt)
        except SpotifyCooldown:
            new, self._new_cooldown = self._new_cooldown, None
            if new is not None and self.on_cooldown is not None:
                try:
                    await self.on_cooldown(new)
                except Exception:  # persisting is best effort; the caller still gets the cooldown
                    log.exception("could not persist the Spotify cooldown")
            raise

    async def _send(
        self,
        method: str,
        url: str | yarl.URL,
        *,
        what: str,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """Send one HTTP request; connection errors and timeouts become ``_Retryable``."""
        session = self._get_session()
        started = time.monotonic()
        try:
            async with session.request(
                method,
                url,
                params=params,
                headers=headers,
                data=data,
                timeout=self._client_timeout,
                raise_for_status=False,
                allow_redirects=False,
            ) as resp:
                body = await resp.read()
                status, resp_headers = resp.status, resp.headers
        except TimeoutError:
            log.debug("Spotify %s: timed out after %.1f s", what, self.timeout)
            self._answered(what, "timeout")
            raise _Retryable(f"timed out after {self.timeout:g} s") from None
        except aiohttp.ClientError as exc:
            log.debug("Spotify %s: connection error %s", what, type(exc).__name__)
            self._answered(what, "error")
            raise _Retryable(f"connection error ({type(exc).__name__})") from None
        self._answered(what, str(status))
        log.debug("Spotify %s %s -> %d (%.0f ms)", what, method, status, (time.monotonic() - started) * 1000)
        return status, resp_headers, body

    def _answered(self, what: str, answer: str) -> None:
        if self.on_response is not None:
            try:
                self.on_response(what, answer)
            except Exception:  # counting is never worth a failed request
                log.warning("Spotify on_response failed", exc_info=True)

    def _handle(
        self, endpoint: str, status: int, headers: Mapping[str, str], body: bytes, token: str | None
    ) -> dict[str, Any]:
        """Map a response to its JSON object or to the right exception."""
        if 200 <= status < 300:
            try:
                data: object = json.loads(body) if body else {}
            except ValueError:
                raise SpotifyError(f"Spotify {endpoint}: response is not JSON", status=status) from None
            if not isinstance(data, dict):
                raise SpotifyError(f"Spotify {endpoint}: unexpected response shape", status=status)
            return data
        message, reason = _error_details(body)
        message = self._scrub(message, token)
        if status == 429:
            if endpoint != "token":
                self.rate_limited += 1
            retry_after = _retry_after_seconds(headers.get("Retry-After"), self._clock())
            if reason == _QUOTA_REASON:
                raise self._start_cooldown(
                    retry_after if retry_after is not None else DEFAULT_QUOTA_RETRY_AFTER, reason
                )
            if retry_after is None:
                retry_after = _DEFAULT_RATE_LIMIT_RETRY_AFTER
            if retry_after > self.max_retry_after:
                raise self._start_cooldown(retry_after, reason or "rate limit")
            raise _Retryable(f"429 rate limited ({message or 'no message'})", status=429, retry_after=retry_after)
        if status >= 500:
            raise _Retryable(f"HTTP {status} {message}".rstrip(), status=status)
        if status == 404 or (status == 400 and _INVALID_ID_RE.search(message or "")):
            raise SpotifyNotFound(
                f"Spotify {endpoint}: not found (HTTP {status}{': ' + message if message else ''})", status=status
            )
        if status == 401:
            raise SpotifyAuthError(f"Spotify {endpoint}: HTTP 401 with a fresh access token ({message})", status=401)
        raise SpotifyError(f"Spotify {endpoint}: HTTP {status}{': ' + message if message else ''}", status=status)

    def _scrub(self, text: str, token: str | None = None) -> str:
        for secret in (self._client_secret, token, self._token):
            if secret:
                text = text.replace(secret, "***")
        return text

    # -- token (Authorization → Client Credentials Flow) ---------------------------------

    def _valid_token(self) -> str | None:
        """The access token while it has not expired, else None."""
        if self._token is None or self._token_expires_at is None or self._clock() >= self._token_expires_at:
            return None
        return self._token

    def _drop_token(self, token: str) -> None:
        if self._token == token:
            self._token = None
            self._token_expires_at = None

    async def _get_token(self) -> str:
        token = self._valid_token()
        if token is not None:
            return token
        async with self._token_lock:
            token = self._valid_token()
            if token is not None:
                return token
            new_token, expires_in = await self._with_retries("token", self._request_token)
            lifetime = expires_in - _TOKEN_EARLY_EXPIRY if expires_in > 2 * _TOKEN_EARLY_EXPIRY else expires_in / 2
            self._token = new_token
            self._token_expires_at = self._clock() + dt.timedelta(seconds=max(0.0, lifetime))
            return new_token

    def _basic_auth(self) -> str:
        raw = f"{self._client_id}:{self._client_secret}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    async def _request_token(self) -> tuple[str, float]:
        self._check_cooldown()
        self.token_requests += 1
        status, headers, body = await self._send(
            "POST",
            f"{self._accounts_base_url}/api/token",
            what="token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": self._basic_auth()},
        )
        if status in (400, 401):
            raise SpotifyAuthError(
                f"Spotify token endpoint refused the client credentials (HTTP {status}: {self._scrub(_token_error(body))})",
                status=status,
            )
        if not 200 <= status < 300:
            self._handle("token", status, headers, body, None)  # raises
        try:
            data = json.loads(body)
            token = data["access_token"]
            expires_in = float(data.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError):
            raise SpotifyAuthError("Spotify token endpoint sent no usable access token", status=status) from None
        if not isinstance(token, str) or not token:
            raise SpotifyAuthError("Spotify token endpoint sent no usable access token", status=status)
        return token, expires_in


# -- helpers -----------------------------------------------------------------------------

_INVALID_ID_RE = re.compile(r"\binvalid\b.*\bid\b|\bnon existing id\b", re.IGNORECASE)


def _log_retry(what: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.info("Spotify %s: %s; retry %d in %.2f s", what, exc, state.attempt_number, wait)

    return before_sleep


def _clamp_limit(limit: int) -> int:
    return max(1, min(MAX_PAGE_LIMIT, int(limit)))


def _normalize_groups(include_groups: Sequence[str] | str) -> list[str]:
    if isinstance(include_groups, str):
        include_groups = include_groups.split(",")
    groups: list[str] = []
    for group in include_groups:
        for part in str(group).split(","):
            part = part.strip().lower()
            if part and part not in groups:
                groups.append(part)
    return groups


def _path_id(spotify_id: str) -> str:
    if not spotify_id or not str(spotify_id).strip():
        raise SpotifyNotFound("empty Spotify id")
    return quote(str(spotify_id).strip(), safe="")


def _parse(parser: Callable[[dict[str, Any]], _T], data: dict[str, Any], what: str) -> _T:
    try:
        return parser(data)
    except (KeyError, TypeError, AttributeError) as exc:
        raise SpotifyError(f"Spotify {what}: malformed object (missing {exc})") from None


def _parse_items(parser: Callable[[dict[str, Any]], _T], items: list[Any], what: str) -> list[_T]:
    parsed: list[_T] = []
    for item in items:
        if not isinstance(item, dict):
            continue  # Spotify sends null items now and then
        try:
            parsed.append(parser(item))
        except (KeyError, TypeError, AttributeError) as exc:
            log.warning("Spotify %s: skipping a malformed item (missing %s)", what, exc)
    return parsed


def _album_page(data: dict[str, Any], album_group: str | None) -> Page[Album]:
    items = _parse_items(lambda d: Album.from_api(d, album_group=album_group), data.get("items") or [], "album")
    return Page(
        items=tuple(items),
        total=int(data.get("total") or 0),
        offset=int(data.get("offset") or 0),
        limit=int(data.get("limit") or 0),
        next=data.get("next") or None,
    )


def _playlist_page(data: dict[str, Any]) -> Page[PlaylistEntry]:
    entries = tuple(
        PlaylistEntry.from_api(e) if isinstance(e, dict) else PlaylistEntry("unavailable")
        for e in data.get("items") or []
    )
    return Page(
        items=entries,
        total=int(data.get("total") or 0),
        offset=int(data.get("offset") or 0),
        limit=int(data.get("limit") or 0),
        next=data.get("next") or None,
    )


def _error_details(body: bytes) -> tuple[str, str | None]:
    """``(message, reason)`` from a Web API error body ``{"error": {"status", "message", "reason"}}``."""
    try:
        data = json.loads(body)
    except ValueError:
        return "", None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        reason = error.get("reason")
        return (str(message) if message else ""), (str(reason) if reason else None)
    if isinstance(error, str):
        return error, None
    return "", None


def _token_error(body: bytes) -> str:
    """The accounts service's ``error`` / ``error_description`` (OAuth 2 error body)."""
    try:
        data = json.loads(body)
    except ValueError:
        return "no details"
    if not isinstance(data, dict):
        return "no details"
    parts = [str(data[key]) for key in ("error", "error_description") if data.get(key) and isinstance(data[key], str)]
    return ": ".join(parts) or "no details"


def _retry_after_seconds(value: str | None, now: dt.datetime) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())
