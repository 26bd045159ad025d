"""Async client for ListenBrainz: sitewide fresh releases, and a user's top artists (``/import``).

Source: ``../shared/musicdata/README.md`` section 1 — ``GET /1/explore/fresh-releases/`` (the
trailing slash is part of the route) with ``days`` (1–90), ``past`` / ``future`` (``true`` |
``false``) and ``release_date`` (the pivot day, ``YYYY-MM-DD``); no auth, no paging: the whole
window in ``{"payload": {"releases": […], "total_count": N}}``. Rate limiting: every answer carries
``X-RateLimit-Limit``, ``X-RateLimit-Remaining``, ``X-RateLimit-Reset`` (epoch) and
``X-RateLimit-Reset-In`` (seconds); over the limit → 429. A meaningful User-Agent is required
(clients without one are IP-blocked).

Section 2 — ``GET /1/stats/user/{user}/artists`` with ``range`` (``this_week`` … ``all_time``),
``count`` (≤ 1000) and ``offset``: ``{"payload": {"artists": [{"artist_mbid", "artist_name",
"listen_count"}], "total_artist_count", …}}``, most listened first; an unknown user → 404, statistics
not computed yet → 204 without a body. (Before 2023-01-28 each entry had an ``artist_mbids`` list;
both forms are read.)

The client honours the headers: when an answer says ``Remaining: 0`` the next request waits
``Reset-In`` seconds; a 429 waits ``Reset-In`` (1 s when absent) and is retried, a 5xx or a failed
connection backs off, each at most ``max_retries`` times, then :class:`MusicDataError`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp

from bot.clock import Clock, utcnow
from bot.musicdata.errors import MusicDataError, NoStatistics, UnknownUser
from bot.musicdata.models import FreshRelease, ListenedArtist, parse_mbid
from bot.musicdata.pacing import Sleep

log = logging.getLogger(__name__)

SERVICE = "ListenBrainz"
MAX_DAYS = 90
"""The largest ``days`` fresh releases accepts."""
STATS_RANGES = ("this_week", "this_month", "this_year", "week", "month", "quarter", "year", "half_yearly", "all_time")
"""The ``range`` values of the user statistics (README section 2)."""
MAX_STATS_COUNT = 1000
"""The largest ``count`` the statistics serve (larger values are capped)."""


def _seconds(headers: Mapping[str, str], name: str) -> float | None:
    """A header's value as a number of seconds (≥ 0), or None when absent or not a number."""
    try:
        return max(0.0, float(headers[name]))
    except (KeyError, ValueError):
        return None


class ListenBrainzClient:
    """ListenBrainz API: fresh releases around a day, a user's top artists.

    ``base_url``: the API root above ``/1/`` (``https://api.listenbrainz.org``; an emulator's in
    tests); ``user_agent``: sent on every request; ``http``: the process's aiohttp session (not
    closed here); ``clock``: aware UTC now (rate-limit waits); ``sleep``: the waits; ``max_retries``:
    retries after a 429, a 5xx or no answer; ``backoff_seconds``: first back-off after a 5xx
    (doubled each time); ``timeout``: seconds allowed for one request (the answer can be large).

    Counters: ``request_count`` (requests sent), ``rate_limited`` (429 answers).
    """

    def __init__(
        self,
        *,
        base_url: str,
        user_agent: str,
        http: aiohttp.ClientSession,
        clock: Clock = utcnow,
        sleep: Sleep = asyncio.sleep,
        max_retries: int = 3,
        backoff_seconds: float = 5.0,
        timeout: float = 120.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.user_agent = user_agent
        self.http = http
        self.clock = clock
        self.sleep = sleep
        self.max_retries = max(0, int(max_retries))
        self.backoff_seconds = float(backoff_seconds)
        self._timeout = aiohttp.ClientTimeout(total=float(timeout))
        self.request_count = 0
        self.rate_limited = 0
        self._not_before: dt.datetime | None = None

    async def fresh_releases(
        self, *, days: int, pivot: dt.date, past: bool = True, future: bool = True
    ) -> list[FreshRelease]:
        """The release groups dated from ``pivot - days`` (``past``) to ``pivot + days`` (``future``),
        both included: ``GET /1/explore/fresh-releases/?days=&past=&future=&release_date=``.

        ``days``: 1 to :data:`MAX_DAYS` (``ValueError`` otherwise). Items without a release group id
        or a full date are left out. Raises :class:`MusicDataError` when the request fails.
        """
        if not 1 <= days <= MAX_DAYS:
            raise ValueError(f"days must be from 1 to {MAX_DAYS}, got {days}")
        params = {
            "days": str(days),
            "past": "true" if past else "false",
            "future": "true" if future else "false",
            "release_date": pivot.isoformat(),
        }
        body = await self._get("/1/explore/fresh-releases/", params)
        items = ((body or {}).get("payload") or {}).get("releases") or []
        parsed = [FreshRelease.from_api(item) for item in items]
        return [r for r in parsed if r is not None]

    async def user_artists(
        self, user: str, *, stats_range: str = "all_time", count: int = 100, offset: int = 0
    ) -> tuple[list[ListenedArtist], int]:
        """One page of ``user``'s top artists over ``stats_range`` (:data:`STATS_RANGES`), most listened
        first, and the user's number of artists in all: ``GET /1/stats/user/{user}/artists?range=&count=
        &offset=``. ``count``: 1 to :data:`MAX_STATS_COUNT`.

        An entry's ``mbid`` is its ``artist_mbid`` (the first of ``artist_mbids`` in older answers), None
        when unknown. Raises ``ValueError`` for a bad range or count, :class:`UnknownUser` (404),
        :class:`NoStatistics` (204: not computed yet), :class:`MusicDataError` for other failures.
        """
        if stats_range not in STATS_RANGES:
            raise ValueError(f"stats_range must be one of {STATS_RANGES}, got {stats_range!r}")
        if not 1 <= count <= MAX_STATS_COUNT:
            raise ValueError(f"count must be from 1 to {MAX_STATS_COUNT}, got {count}")
        path = f"/1/stats/user/{quote(user, safe='')}/artists"
        params = {"range": stats_range, "count": str(count), "offset": str(max(0, offset))}
        try:
            body = await self._get(path, params)
        except MusicDataError as exc:
            if exc.status == 404:
                raise UnknownUser(SERVICE, f"no user {user!r}", 404) from None
            raise
        if body is None:
            raise NoStatistics(SERVICE, f"no statistics for {user!r} yet", 204)
        payload = body.get("payload") or {}
        artists = []
        for item in payload.get("artists") or ():
            mbids = item.get("artist_mbids") or ()
            mbid = parse_mbid(item.get("artist_mbid") or (mbids[0] if mbids else None))
            artists.append(ListenedArtist(str(item.get("artist_name") or ""), mbid, int(item.get("listen_count") or 0)))
        return artists, int(payload.get("total_artist_count") or len(artists))

    async def _wait_for_window(self) -> None:
        """Wait until the rate-limit window an earlier answer exhausted has reset."""
        if self._not_before is None:
            return
        wait = (self._not_before - self.clock()).total_seconds()
        self._not_before = None
        if wait > 0:
            await self.sleep(wait)

    def _note_headers(self, headers: Mapping[str, str]) -> float | None:
        """Remember the window's reset when ``Remaining`` is 0; returns ``Reset-In`` (seconds) or None."""
        reset_in = _seconds(headers, "X-RateLimit-Reset-In")
        if headers.get("X-RateLimit-Remaining") == "0" and reset_in is not None:
            self._not_before = self.clock() + dt.timedelta(seconds=reset_in)
        return reset_in

    async def _get(self, path: str, params: Mapping[str, str]) -> dict[str, Any] | None:
        """``GET {base_url}{path}?params``: the JSON body, None for a 204 (no content); retries as the
        module docstring says; another 4xx raises :class:`MusicDataError` with its status at once."""
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        status: int | None = None
        for attempt in range(self.max_retries + 1):
            await self._wait_for_window()
            self.request_count += 1
            wait: float
            try:
                async with self.http.get(
                    f"{self.base_url}{path}", params=params, headers=headers, timeout=self._timeout
                ) as response:
                    status = response.status
                    reset_in = self._note_headers(response.headers)
                    if status == 200:
                        body: dict[str, Any] = await response.json(content_type=None)
                        return body
                    if status == 204:
                        return None
                    if status == 429:
                        self.rate_limited += 1
                        wait = 1.0 if reset_in is None else reset_in
                        self._not_before = None  # waited for below
                    elif status >= 500:
                        wait = self.backoff_seconds * 2**attempt
                    else:
                        text = await response.text()
                        raise MusicDataError(SERVICE, f"{path} answered {status}: {text[:200]}", status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = None
                wait = self.backoff_seconds * 2**attempt
                log.info("ListenBrainz request failed (%s)", exc)
            if attempt == self.max_retries:
                break
            log.info("ListenBrainz answered %s: retrying in %.0f s", status or "nothing", wait)
            await self.sleep(wait)
        raise MusicDataError(SERVICE, f"{path} failed after {self.max_retries + 1} attempts", status)
