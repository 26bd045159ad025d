"""Async client for the MusicBrainz web service (ws/2, JSON) requests the bot makes: the two of the
free signal, and the artist lookup ``/import`` maps listening histories with.

Sources: ``../shared/musicdata/README.md`` section 3 — (a) URL lookup ``GET /ws/2/url?resource=…
&inc=artist-rels`` (up to 100 ``resource`` values, the answer ordered by URL, unknown URLs absent;
one value answers one URL object or 404), (c) browse releases ``GET /ws/2/release?release-group=
MBID`` (``barcode``: null unknown, ``""`` none) — ``inc=url-rels`` relations (``target-type: "url"``,
``url{id,resource}``, ``ended``) are written the same way on an artist lookup ``GET /ws/2/artist/
MBID?inc=url-rels`` —, (d) about one request a second per IP, a 503 above
it, and a meaningful User-Agent ``AppName/version ( contact )`` on every request.

Every request waits for its turn on a :class:`RateLimit` shared by every process
(:class:`bot.musicdata.pacing.SharedRateLimit`). A 503 (or another 5xx, a 429, or no answer) makes every
process hold off for ``backoff_seconds``, doubled at each retry, and the request is retried at most
``max_retries`` times before :class:`MusicDataError` is raised: the client never hammers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import aiohttp

from bot.musicdata.errors import MusicDataError
from bot.spotify.links import parse_spotify_id

log = logging.getLogger(__name__)

SERVICE = "MusicBrainz"
MAX_RESOURCES = 100
"""``resource`` values one URL lookup reads (``$MAX_RESOURCE_PARAMS``; extra ones are silently dropped)."""

MAX_BROWSE_LIMIT = 100
"""Largest ``limit`` of a ws/2 browse."""


def spotify_artist_url(spotify_id: str) -> str:
    """The form in which MusicBrainz stores a Spotify artist link: ``https://open.spotify.com/artist/{id}``
    (no query, no ``intl-xx`` segment: README 3(a), ``URLCleanup.js``)."""
    return f"https://open.spotify.com/artist/{spotify_id}"


class RateLimit(Protocol):
    """The pacing every request waits for (:class:`bot.musicdata.pacing.SharedRateLimit`)."""

    async def wait_turn(self) -> None:
        """Wait until this process may send its next request."""
        ...

    async def hold_off(self, seconds: float) -> None:
        """Make every process wait ``seconds`` (seconds) before its next request."""
        ...


class MusicBrainzClient:
    """MusicBrainz ws/2 (JSON): Spotify artist URLs → artist MBIDs, and a release group's barcodes.

    ``base_url``: the ws/2 root (``https://musicbrainz.org/ws/2``; an emulator's in tests);
    ``user_agent``: sent on every request (:func:`bot.musicdata.user_agent`); ``http``: the
    process's aiohttp session (not closed here); ``rate_limit``: shared pacing; ``max_retries``:
    retries of a request after a 5xx, a 429 or no answer; ``backoff_seconds``: the first hold-off (seconds),
    doubled at each retry; ``timeout``: seconds allowed for one request.

    Counters: ``request_count`` (requests sent, retries included), ``unavailable`` (5xx and 429 answers and
    failed connections).
    """

    def __init__(
        self,
        *,
        base_url: str,
        user_agent: str,
        http: aiohttp.ClientSession,
        rate_limit: RateLimit,
        max_retries: int = 3,
        backoff_seconds: float = 2.0,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.user_agent = user_agent
        self.http = http
        self.rate_limit = rate_limit
        self.max_retries = max(0, int(max_retries))
        self.backoff_seconds = float(backoff_seconds)
        self._timeout = aiohttp.ClientTimeout(total=float(timeout))
        self.request_count = 0
        self.unavailable = 0

    async def artist_mbids(self, spotify_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """``{Spotify artist id: (MusicBrainz artist ids, sorted)}`` for every id given (empty: no link).

        URL lookups with ``inc=artist-rels``, :data:`MAX_RESOURCES` Spotify artist URLs per request.
        Each URL object in the answer is matched back by its ``resource`` (the server orders them by
        URL, not as asked); an artist is every relation's ``artist`` whose relationship has not
        ended (MusicBrainz rarely links one Spotify URL to two artists: both are kept). Raises
        :class:`MusicDataError` when a request fails after its retries.
        """
        ids = list(dict.fromkeys(spotify_ids))
        found: dict[str, tuple[str, ...]] = dict.fromkeys(ids, ())
        for start in range(0, len(ids), MAX_RESOURCES):
            by_url = {spotify_artist_url(i): i for i in ids[start : start + MAX_RESOURCES]}
            params = [("resource", url) for url in by_url] + [("inc", "artist-rels"), ("fmt", "json")]
            body = await self._get("url", params)
            if body is None:  # one resource, unknown: 404
                continue
            objects = body.get("urls", [body])  # several resources: a list; one: the URL object
            for obj in objects:
                spotify_id = by_url.get(obj.get("resource", ""))
                if spotify_id is None:
                    log.warning("MusicBrainz answered a URL not asked for: %r", obj.get("resource"))
                    continue
                found[spotify_id] = tuple(
                    sorted(
                        {
                            rel["artist"]["id"]
                            for rel in obj.get("relations") or ()
                            if rel.get("target-type") == "artist" and not rel.get("ended") and rel.get("artist")
                        }
                    )
                )
        return found

    async def spotify_artists(self, artist_mbid: str) -> tuple[str, ...]:
        """The Spotify artist ids MusicBrainz links artist ``artist_mbid`` to, in the answer's order
        (``()``: none, or no such artist).

        One artist lookup ``GET /ws/2/artist/{mbid}?inc=url-rels``: every URL relation that has not
        ended whose ``resource`` is an ``https://open.spotify.com/artist/{id}`` link (MusicBrainz stores
        them in that form, README 3(a)). Raises :class:`MusicDataError` when the request fails after
        its retries (a 400 for a malformed MBID included).
        """
        body = await self._get(f"artist/{artist_mbid}", [("inc", "url-rels"), ("fmt", "json")])
        if body is None:
            return ()
        found: list[str] = []
        for rel in body.get("relations") or ():
            if rel.get("target-type") != "url" or rel.get("ended"):
                continue
            spotify_id = parse_spotify_id(str((rel.get("url") or {}).get("resource") or ""), "artist")
            if spotify_id is not None and spotify_id not in found:
                found.append(spotify_id)
        return tuple(found)

    async def release_barcodes(self, release_group_mbid: str) -> list[str]:
        """The barcodes (UPC/EAN digits) of release group ``release_group_mbid``'s releases, in the
        server's order, without the unknown (null) and the "none" (``""``) ones; ``[]`` for an unknown
        group. One browse of up to :data:`MAX_BROWSE_LIMIT` releases. Raises :class:`MusicDataError`."""
        params = [("release-group", release_group_mbid), ("limit", str(MAX_BROWSE_LIMIT)), ("fmt", "json")]
        body = await self._get("release", params)
        if body is None:
            return []
        barcodes = [str(r.get("barcode") or "").strip() for r in body.get("releases") or ()]
        return list(dict.fromkeys(b for b in barcodes if b))

    async def _get(self, resource: str, params: list[tuple[str, str]]) -> dict[str, Any] | None:
        """``GET {base_url}/{resource}?params``: the JSON body, or None for a 404.

        Retries 5xx and 429 answers and failed connections (holding every process off first); raises
        :class:`MusicDataError` for any other status, or when the retries are spent.
        """
        url = f"{self.base_url}/{resource}"
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        status: int | None = None
        for attempt in range(self.max_retries + 1):
            await self.rate_limit.wait_turn()
            self.request_count += 1
            try:
                async with self.http.get(url, params=params, headers=headers, timeout=self._timeout) as response:
                    status = response.status
                    if status == 200:
                        body: dict[str, Any] = await response.json(content_type=None)
                        return body
                    if status == 404:
                        return None
                    if status < 500 and status != 429:
                        text = await response.text()
                        raise MusicDataError(SERVICE, f"{resource} answered {status}: {text[:200]}", status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = None
                log.info("MusicBrainz request failed (%s)", exc)
            self.unavailable += 1
            if attempt == self.max_retries:
                break
            delay = self.backoff_seconds * 2**attempt
            log.info("MusicBrainz unavailable (%s): every process holds off %.0f s", status or "no answer", delay)
            await self.rate_limit.hold_off(delay)
        raise MusicDataError(SERVICE, f"unavailable after {self.max_retries + 1} attempts", status)
