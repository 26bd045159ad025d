"""Async client for ListenBrainz's sitewide fresh releases.

Source: ``../shared/musicdata/README.md`` section 1 — ``GET /1/explore/fresh-releases/`` (the
trailing slash is part of the route) with ``days`` (1–90), ``past`` / ``future`` (``true`` |
``false``) and ``release_date`` (the pivot day, ``YYYY-MM-DD``); no auth, no paging: the whole
window in ``{"payload": {"releases": […], "total_count": N}}``. Rate limiting: every answer carries
``X-RateLimit-Limit``, ``X-RateLimit-Remaining``, ``X-RateLimit-Reset`` (epoch) and
``X-RateLimit-Reset-In`` (seconds); over the limit → 429. A meaningful User-Agent is required
(clients without one are IP-blocked).

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

import aiohttp

from bot.clock import Clock, utcnow
from bot.musicdata.errors import MusicDataError
from bot.musicdata.models import FreshRelease
from bot.musicdata.pacing import Sleep

log = logging.getLogger(__name__)

SERVICE = "ListenBrainz"
MAX_DAYS = 90
"""The largest ``days`` fresh releases accepts."""


def _seconds(headers: Mapping[str, str], name: str) -> float | None:
    """A header's value as a number of seconds (≥ 0), or None when absent or not a number."""
    try:
        return max(0.0, float(headers[name]))
    except (KeyError, ValueError):
        return None


class ListenBrainzClient:
    """ListenBrainz API: fresh releases around a day.

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
        items = (body.get("payload") or {}).get("releases") or []
        parsed = [FreshRelease.from_api(item) for item in items]
        return [r for r in parsed if r is not None]

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

    async def _get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        """``GET {base_url}{path}?params``: the JSON body; retries as the module docstring says."""
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
