"""Tests for ``bot.spotify.client``.

The first part runs the client against a small purpose-built ``aiohttp.web`` server
(``FakeSpotify``) that gives precise control over tokens, 401s, 429s, 5xx and hung
requests. The last part runs it against the Spotify emulator (``fakes/spotify_emulator.py``), and
checks the client-side rate limiter (aiolimiter) and the 429 counter.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.spotify import (
    Album,
    Artist,
    Page,
    SpotifyAuthError,
    SpotifyClient,
    SpotifyCooldown,
    SpotifyError,
    SpotifyNotFound,
)
from fakes.spotify_emulator import SpotifyEmulator
from tests.conftest import FakeClock

CLIENT_ID = "test-client-id"
CLIENT_SECRET = "s3cr3t-VALUE-never-shown"
ARTIST_ID = "0TnOYISbd1XYRBk9myaseg"
ALBUM_ID = "3IqzqH6ShrRtie9Yd2ODyG"

# --------------------------------------------------------------------------------------
# Purpose-built fake Spotify
# --------------------------------------------------------------------------------------


def _artist_json(artist_id: str, name: str) -> dict[str, Any]:
    return {
        "id": artist_id,
        "name": name,
        "type": "artist",
        "genres": ["pop"],
        "followers": {"href": None, "total": 42},
        "images": [
            {"url": "https://i.scdn.co/small", "width": 64, "height": 64},
            {"url": "https://i.scdn.co/big", "width": 640, "height": 640},
        ],
    }


def _album_json(index: int, artist_id: str = ARTIST_ID) -> dict[str, Any]:
    # Development Mode shape: no album_group, available_markets, label, popularity.
    dates = ["2024", "2023-05", "2022-01-02"]
    return {
        "id": f"album{index:017d}",
        "name": f"Album {index}",
        "album_type": "single" if index % 2 else "album",
        "release_date": dates[index % 3],
        "release_date_precision": None,
        "total_tracks": 3,
        "artists": [{"id": artist_id, "name": "Artist"}],
        "images": [],
    }


class FakeSpotify:
    """A tiny Spotify: token endpoint plus the four API endpoints, with scripted failures."""

    def __init__(self) -> None:
        self.client_id = CLIENT_ID
        self.client_secret = CLIENT_SECRET
        self.expires_in = 3600
        self.token_delay = 0.0
        self.token_error_description = "Invalid client secret"
        self.tokens: set[str] = set()
        self.issued = 0
        self.token_log: list[dict[str, Any]] = []
        self.api_log: list[dict[str, Any]] = []
        self.script: list[tuple[str, Any]] = []  # consumed by API requests, one entry each
        self.token_script: list[tuple[str, Any]] = []
        self.always_401 = False
        self.album_count = 23
        self.release = asyncio.Event()
        self.server: TestServer | None = None

    # scripting
    def fail_next(self, count: int, status: int, headers: dict[str, str] | None = None, body: Any = None) -> None:
        for _ in range(count):
            self.script.append(("status", (status, headers or {}, body)))

    def hang_next(self, count: int) -> None:
        for _ in range(count):
            self.script.append(("hang", None))

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    @property
    def api_base_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/v1"))

    @property
    def accounts_base_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/token", self.token)
        app.router.add_get("/v1/artists/{id}", self.artist)
        app.router.add_get("/v1/artists/{id}/albums", self.artist_albums)
        app.router.add_get("/v1/albums/{id}", self.album)
        app.router.add_get("/v1/search", self.search)
        return app

    # handlers
    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.token_log.append({"authorization": request.headers.get("Authorization"), "form": dict(form)})
        if self.token_delay:
            await asyncio.sleep(self.token_delay)
        if self.token_script:
            _kind, value = self.token_script.pop(0)
            status, headers, body = value
            return web.json_response(body or {}, status=status, headers=headers)
        expected = "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("Authorization") != expected or form.get("grant_type") != "client_credentials":
            return web.json_response(
                {"error": "invalid_client", "error_description": self.token_error_description}, status=400
            )
        self.issued += 1
        token = f"tok-{self.issued}-ZZZ"
        self.tokens.add(token)
        return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in})

    async def _gate(self, request: web.Request) -> web.Response | None:
        self.api_log.append(
            {
                "path": request.path,
                "raw_path": request.raw_path,
                "query": dict(request.query),
                "authorization": request.headers.get("Authorization"),
            }
        )
        if self.script:
            kind, value = self.script.pop(0)
            if kind == "hang":
                try:
                    await asyncio.wait_for(self.release.wait(), 5)
                except TimeoutError:
                    pass
                return web.json_response({"error": {"status": 500, "message": "late"}}, status=500)
            status, headers, body = value
            if body is None:
                body = {"error": {"status": status, "message": f"scripted {status}"}}
            return web.json_response(body, status=status, headers=headers)
        auth = request.headers.get("Authorization", "")
        if self.always_401 or not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return web.json_response({"error": {"status": 401, "message": "The access token expired"}}, status=401)
        return None

    async def artist(self, request: web.Request) -> web.Response:
        if (resp := await self._gate(request)) is not None:
            return resp
        artist_id = request.match_info["id"]
        if artist_id == "missing":
            return web.json_response({"error": {"status": 404, "message": "Resource not found"}}, status=404)
        if artist_id == "bad":
            return web.json_response({"error": {"status": 400, "message": "Invalid base62 id"}}, status=400)
        return web.json_response(_artist_json(artist_id, f"Artist {artist_id[:4]}"))

    async def search(self, request: web.Request) -> web.Response:
        if (resp := await self._gate(request)) is not None:
            return resp
        limit = int(request.query.get("limit", 10))
        if limit > 10:
            return web.json_response({"error": {"status": 400, "message": "Invalid limit"}}, status=400)
        items: list[dict[str, Any] | None] = [
            _artist_json(f"{i:022d}", f"{request.query['q']} {i}") for i in range(limit)
        ]
        items.insert(1, None)  # Spotify sends null items now and then
        return web.json_response({"artists": {"items": items, "total": 100, "limit": limit, "offset": 0}})

    async def artist_albums(self, request: web.Request) -> web.Response:
        if (resp := await self._gate(request)) is not None:
            return resp
        limit = int(request.query.get("limit", 5))
        offset = int(request.query.get("offset", 0))
        if limit > 10:
            return web.json_response({"error": {"status": 400, "message": "Invalid limit"}}, status=400)
        total = self.album_count
        items = [_album_json(i) for i in range(offset, min(total, offset + limit))]
        nxt = None
        if offset + limit < total:
            nxt = str(request.url.update_query(offset=str(offset + limit), limit=str(limit)))
        return web.json_response(
            {"href": str(request.url), "items": items, "total": total, "limit": limit, "offset": offset, "next": nxt}
        )

    async def album(self, request: web.Request) -> web.Response:
        if (resp := await self._gate(request)) is not None:
            return resp
        data = _album_json(1)
        data["id"] = request.match_info["id"]
        data["external_ids"] = {"upc": "00602435555555"}
        data["tracks"] = {
            "items": [
                {"id": f"trk{i:019d}", "name": f"Track {i}", "duration_ms": 180000 + i, "track_number": i + 1}
                for i in range(3)
            ],
            "total": 3,
            "next": None,
        }
        return web.json_response(data)


class Sleeps(list):
    """The injected sleep: records every requested wait (seconds) and returns at once."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSpotify]:
    spotify = FakeSpotify()
    server = TestServer(spotify.app(), host="127.0.0.1")
    await server.start_server()
    spotify.server = server
    try:
        yield spotify
    finally:
        spotify.release.set()
        await server.close()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def make_client(fake: FakeSpotify, clock: FakeClock, sleeps: Sleeps):
    clients: list[SpotifyClient] = []

    def make(**kwargs: Any) -> SpotifyClient:
        options: dict[str, Any] = dict(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            api_base_url=fake.api_base_url,
            accounts_base_url=fake.accounts_base_url,
            clock=clock,
            sleep=sleeps,
            timeout=2.0,
        )
        options.update(kwargs)
        client = SpotifyClient(**options)
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            await client.close()


@pytest.fixture
def client(make_client) -> SpotifyClient:
    return make_client()


# --------------------------------------------------------------------------------------
# Endpoints and parsing
# --------------------------------------------------------------------------------------


async def test_get_artist_parses_and_counts(client: SpotifyClient, fake: FakeSpotify) -> None:
    artist = await client.get_artist(ARTIST_ID)

    assert isinstance(artist, Artist)
    assert artist.id == ARTIST_ID
    assert artist.image_url == "https://i.scdn.co/big"
    assert artist.followers == 42
    assert client.request_count == 1
    assert client.token_requests == 1
    assert client.requests_by_endpoint == {"artist": 1}
    # Client Credentials Flow: HTTP Basic auth and the grant type as a form field.
    expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert fake.token_log == [{"authorization": expected, "form": {"grant_type": "client_credentials"}}]
    assert fake.api_log[0]["path"] == f"/v1/artists/{ARTIST_ID}"
    assert fake.api_log[0]["authorization"] == "Bearer tok-1-ZZZ"


async def test_search_artists_sends_type_market_and_clamps_limit(client: SpotifyClient, fake: FakeSpotify) -> None:
    many = await client.search_artists("Pitbull", limit=50)
    one = await client.search_artists("Pitbull", limit=0)

    assert [a.name for a in many][:2] == ["Pitbull 0", "Pitbull 1"]  # the null item is skipped
    assert len(many) == 10
    assert len(one) == 1
    assert fake.api_log[0]["query"] == {"q": "Pitbull", "type": "artist", "limit": "10", "market": "US"}
    assert fake.api_log[1]["query"]["limit"] == "1"
    assert client.requests_by_endpoint == {"search": 2}


async def test_blank_search_makes_no_request(client: SpotifyClient, fake: FakeSpotify) -> None:
    assert await client.search_artists("   ") == []
    assert client.request_count == 0 and fake.api_log == []


async def test_artist_albums_single_group_fills_album_group(client: SpotifyClient, fake: FakeSpotify) -> None:
    page = await client.artist_albums(ARTIST_ID, include_groups=["single"], limit=50, offset=-3)

    assert isinstance(page, Page)
    assert fake.api_log[0]["query"] == {"include_groups": "single", "limit": "10", "offset": "0", "market": "US"}
    assert len(page.items) == 10 and page.total == 23 and page.offset == 0 and page.limit == 10
    assert all(isinstance(a, Album) and a.album_group == "single" for a in page.items)
    precisions = {a.release_date: a.release_date_precision for a in page.items}
    assert precisions == {"2024": "year", "2023-05": "month", "2022-01-02": "day"}
    assert page.next is not None


async def test_artist_albums_several_groups_leave_album_group_empty(client: SpotifyClient, fake: FakeSpotify) -> None:
    page = await client.artist_albums(ARTIST_ID, include_groups=("album", "single"), limit=5)

    assert fake.api_log[0]["query"]["include_groups"] == "album,single"
    assert all(a.album_group is None for a in page.items)
    nxt = await client.artist_albums_next(page)
    assert nxt is not None and all(a.album_group is None for a in nxt.items)


async def test_paging_with_next_collects_every_item_once(client: SpotifyClient, fake: FakeSpotify) -> None:
    page = await client.artist_albums(ARTIST_ID, include_groups=["album"])
    ids = [a.id for a in page.items]
    while (nxt := await client.artist_albums_next(page)) is not None:
        assert all(a.album_group == "album" for a in nxt.items)  # group recovered from the next URL
        ids.extend(a.id for a in nxt.items)
        page = nxt

    assert ids == [f"album{i:017d}" for i in range(23)]
    assert client.requests_by_endpoint == {"artist_albums": 3}
    assert all(entry["query"]["market"] == "US" for entry in fake.api_log)


async def test_artist_albums_next_at_end_makes_no_request(client: SpotifyClient) -> None:
    assert await client.artist_albums_next(Page(items=(), total=0, offset=0, limit=10, next=None)) is None
    assert client.request_count == 0


async def test_artist_albums_next_refuses_foreign_host(client: SpotifyClient, fake: FakeSpotify) -> None:
    page: Page[Album] = Page(
        items=(), total=20, offset=0, limit=10, next="https://evil.example/v1/artists/x/albums?offset=10"
    )
    with pytest.raises(SpotifyError):
        await client.artist_albums_next(page)
    assert client.request_count == 0 and fake.token_log == []


async def test_get_album_has_tracks_and_upc(client: SpotifyClient, fake: FakeSpotify) -> None:
    album = await client.get_album(ALBUM_ID)

    assert album.id == ALBUM_ID
    assert album.upc == "00602435555555"
    assert [t.name for t in album.tracks] == ["Track 0", "Track 1", "Track 2"]
    assert album.tracks[0].duration_ms == 180000
    assert fake.api_log[0]["query"] == {"market": "US"}
    assert client.requests_by_endpoint == {"album": 1}


async def test_market_none_is_left_out(make_client, fake: FakeSpotify) -> None:
    client = make_client(market=None)
    await client.get_album(ALBUM_ID)
    assert fake.api_log[0]["query"] == {}


async def test_ids_are_path_quoted(client: SpotifyClient, fake: FakeSpotify) -> None:
    await client.get_artist("x/albums?a=b")  # must not reach /artists/x/albums
    assert fake.api_log[0]["raw_path"].startswith("/v1/artists/x%2Falbums%3Fa")
    assert fake.api_log[0]["query"] == {}
    assert client.requests_by_endpoint == {"artist": 1}


# --------------------------------------------------------------------------------------
# Token
# --------------------------------------------------------------------------------------


async def test_token_is_cached_and_reused(client: SpotifyClient, fake: FakeSpotify) -> None:
    for _ in range(3):
        await client.get_artist(ARTIST_ID)
    await client.search_artists("x")
    await client.get_album(ALBUM_ID)
    await client.artist_albums(ARTIST_ID, include_groups=["album"])

    assert client.token_requests == 1 and len(fake.token_log) == 1
    assert client.request_count == 6
    assert client.requests_by_endpoint == {"artist": 3, "search": 1, "album": 1, "artist_albums": 1}


async def test_concurrent_callers_share_one_token_request(client: SpotifyClient, fake: FakeSpotify) -> None:
    fake.token_delay = 0.05
    artists = await asyncio.gather(*(client.get_artist(ARTIST_ID) for _ in range(10)))

    assert len(artists) == 10
    assert client.token_requests == 1 and len(fake.token_log) == 1


async def test_token_refreshed_after_expiry(client: SpotifyClient, fake: FakeSpotify, clock: FakeClock) -> None:
    await client.get_artist(ARTIST_ID)
    clock.advance(seconds=3600 - 60 - 1)  # still inside the 60 s safety margin
    await client.get_artist(ARTIST_ID)
    assert client.token_requests == 1

    clock.advance(seconds=2)  # 59 s before expires_in: renew
    await client.get_artist(ARTIST_ID)
    assert client.token_requests == 2
    assert fake.api_log[-1]["authorization"] == "Bearer tok-2-ZZZ"


async def test_401_drops_token_and_retries_once(client: SpotifyClient, fake: FakeSpotify) -> None:
    await client.get_artist(ARTIST_ID)
    fake.revoke_tokens()  # the API now rejects the cached token

    artist = await client.get_artist(ARTIST_ID)

    assert artist.id == ARTIST_ID
    assert client.token_requests == 2
    assert client.request_count == 3  # 1 + (401, retry)
    assert [e["authorization"] for e in fake.api_log] == ["Bearer tok-1-ZZZ", "Bearer tok-1-ZZZ", "Bearer tok-2-ZZZ"]


async def test_401_twice_gives_auth_error_after_one_refresh(client: SpotifyClient, fake: FakeSpotify) -> None:
    fake.always_401 = True
    with pytest.raises(SpotifyAuthError) as info:
        await client.get_artist(ARTIST_ID)

    assert info.value.status == 401
    assert client.request_count == 2
    assert client.token_requests == 2
    assert "tok-" not in str(info.value)


async def test_bad_credentials_raise_auth_error_without_secret(make_client, fake: FakeSpotify) -> None:
    client = make_client(client_secret="wrong-secret-123")
    with pytest.raises(SpotifyAuthError) as info:
        await client.get_artist(ARTIST_ID)

    assert info.value.status == 400
    assert "invalid_client" in str(info.value)
    assert "wrong-secret-123" not in str(info.value)
    assert "wrong-secret-123" not in repr(client)
    assert client.request_count == 0  # no API request without a token
    assert client.token_requests == 1  # refused credentials are not retried


async def test_auth_error_message_scrubs_an_echoed_secret(make_client, fake: FakeSpotify) -> None:
    fake.token_error_description = "bad secret wrong-secret-123 for client"
    client = make_client(client_secret="wrong-secret-123")
    with pytest.raises(SpotifyAuthError) as info:
        await client.search_artists("x")
    assert "wrong-secret-123" not in str(info.value)


async def test_token_endpoint_5xx_is_retried(client: SpotifyClient, fake: FakeSpotify, sleeps: Sleeps) -> None:
    fake.token_script.append(("status", (503, {}, {"error": "server_error"})))
    await client.get_artist(ARTIST_ID)
    assert client.token_requests == 2
    assert len(sleeps) == 1
    assert client.request_count == 1


async def test_secret_and_token_never_logged(
    client: SpotifyClient, fake: FakeSpotify, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await client.get_artist(ARTIST_ID)
    fake.revoke_tokens()
    fake.fail_next(1, 503)
    await client.get_album(ALBUM_ID)

    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "artist" in text and "200" in text  # endpoint and status are logged
    assert CLIENT_SECRET not in text
    assert "tok-1-ZZZ" not in text and "tok-2-ZZZ" not in text


# --------------------------------------------------------------------------------------
# Rate limits, cooldown, retries
# --------------------------------------------------------------------------------------


async def test_short_429_is_waited_out(client: SpotifyClient, fake: FakeSpotify, sleeps: Sleeps) -> None:
    fake.fail_next(1, 429, {"Retry-After": "3"}, {"error": {"status": 429, "message": "API rate limit exceeded"}})

    artist = await client.get_artist(ARTIST_ID)

    assert artist.id == ARTIST_ID
    assert sleeps == [3.0]
    assert client.request_count == 2
    assert client.cooldown_until is None


async def test_short_429s_count_toward_max_retries(make_client, fake: FakeSpotify, sleeps: Sleeps) -> None:
    client = make_client(max_retries=2)
    fake.fail_next(5, 429, {"Retry-After": "1"})
    with pytest.raises(SpotifyError) as info:
        await client.get_artist(ARTIST_ID)
    assert info.value.status == 429
    assert not isinstance(info.value, SpotifyCooldown)
    assert client.request_count == 3
    assert sleeps == [1.0, 1.0]


async def test_quota_exceeded_starts_cooldown(
    client: SpotifyClient, fake: FakeSpotify, clock: FakeClock, sleeps: Sleeps
) -> None:
    fake.fail_next(
        1,
        429,
        {"Retry-After": "86400"},
        {"error": {"status": 429, "message": "Quota exceeded", "reason": "QUOTA_EXCEEDED"}},
    )
    start = clock()

    with pytest.raises(SpotifyCooldown) as info:
        await client.artist_albums(ARTIST_ID, include_groups=["album"])

    assert info.value.until == start + dt.timedelta(seconds=86400)
    assert info.value.reason == "QUOTA_EXCEEDED"
    assert client.cooldown_until == info.value.until
    assert sleeps == []
    requests_before = (client.request_count, len(fake.api_log), len(fake.token_log))

    clock.advance(hours=23)
    for call in (
        client.get_artist(ARTIST_ID),
        client.search_artists("x"),
        client.get_album(ALBUM_ID),
        client.artist_albums(ARTIST_ID, include_groups=["single"]),
    ):
        with pytest.raises(SpotifyCooldown) as again:
            await call
        assert again.value.until == info.value.until
    assert (client.request_count, len(fake.api_log), len(fake.token_log)) == requests_before

    clock.advance(hours=1, seconds=1)  # the cooldown has passed
    assert (await client.get_artist(ARTIST_ID)).id == ARTIST_ID


async def test_quota_exceeded_without_retry_after_defaults_to_a_day(
    client: SpotifyClient, fake: FakeSpotify, clock: FakeClock
) -> None:
    fake.fail_next(1, 429, {}, {"error": {"status": 429, "message": "Quota", "reason": "QUOTA_EXCEEDED"}})
    with pytest.raises(SpotifyCooldown) as info:
        await client.get_artist(ARTIST_ID)
    assert info.value.until == clock() + dt.timedelta(days=1)


async def test_long_retry_after_starts_cooldown(
    make_client, fake: FakeSpotify, clock: FakeClock, sleeps: Sleeps
) -> None:
    client = make_client(max_retry_after=60)
    fake.fail_next(1, 429, {"Retry-After": "61"})
    with pytest.raises(SpotifyCooldown) as info:
        await client.get_artist(ARTIST_ID)
    assert info.value.until == clock() + dt.timedelta(seconds=61)
    assert info.value.reason == "rate limit"
    assert sleeps == []
    assert client.request_count == 1


async def test_restored_cooldown_blocks_without_any_request(make_client, fake: FakeSpotify, clock: FakeClock) -> None:
    until = clock() + dt.timedelta(hours=5)
    client = make_client(cooldown_until=until.replace(tzinfo=None))  # naive values are UTC
    with pytest.raises(SpotifyCooldown) as info:
        await client.search_artists("x")
    assert info.value.until == until
    assert client.request_count == 0 and client.token_requests == 0
    assert fake.api_log == [] and fake.token_log == []


async def test_503_twice_then_success(client: SpotifyClient, fake: FakeSpotify, sleeps: Sleeps) -> None:
    fake.fail_next(2, 503)

    album = await client.get_album(ALBUM_ID)

    assert album.id == ALBUM_ID
    assert client.request_count == 3
    assert client.requests_by_endpoint == {"album": 3}
    assert len(sleeps) == 2
    assert all(0 < s <= 10 for s in sleeps)  # exponential backoff with jitter, through the injected sleep


@pytest.mark.parametrize("max_retries", [0, 2, 4])
async def test_503_forever_gives_up_after_max_retries(
    make_client, fake: FakeSpotify, sleeps: Sleeps, max_retries: int
) -> None:
    client = make_client(max_retries=max_retries)
    fake.fail_next(50, 503)

    with pytest.raises(SpotifyError) as info:
        await client.get_artist(ARTIST_ID)

    assert type(info.value) is SpotifyError
    assert info.value.status == 503
    assert client.request_count == max_retries + 1
    assert len(fake.api_log) == max_retries + 1
    assert len(sleeps) == max_retries


async def test_hung_request_times_out_and_is_retried(make_client, fake: FakeSpotify, sleeps: Sleeps) -> None:
    client = make_client(timeout=0.2)
    fake.hang_next(1)
    started = time.monotonic()

    artist = await client.get_artist(ARTIST_ID)

    assert artist.id == ARTIST_ID
    assert client.request_count == 2
    assert len(sleeps) == 1
    assert time.monotonic() - started < 2


async def test_hung_forever_gives_spotify_error(make_client, fake: FakeSpotify) -> None:
    client = make_client(timeout=0.1, max_retries=1)
    fake.hang_next(2)
    with pytest.raises(SpotifyError, match="timed out"):
        await client.get_artist(ARTIST_ID)
    assert client.request_count == 2


async def test_connection_error_is_retried_then_fails(clock: FakeClock, sleeps: Sleeps, fake: FakeSpotify) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    client = SpotifyClient(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        api_base_url=f"http://127.0.0.1:{port}/v1",
        accounts_base_url=fake.accounts_base_url,
        clock=clock,
        sleep=sleeps,
        max_retries=2,
        timeout=2,
    )
    try:
        with pytest.raises(SpotifyError, match="connection error"):
            await client.get_artist(ARTIST_ID)
        assert client.request_count == 3
        assert len(sleeps) == 2
    finally:
        await client.close()


async def test_404_is_not_found_without_retry(client: SpotifyClient, sleeps: Sleeps) -> None:
    with pytest.raises(SpotifyNotFound) as info:
        await client.get_artist("missing")
    assert info.value.status == 404
    assert client.request_count == 1 and sleeps == []


async def test_400_invalid_id_is_not_found(client: SpotifyClient) -> None:
    with pytest.raises(SpotifyNotFound) as info:
        await client.get_artist("bad")
    assert info.value.status == 400


async def test_other_4xx_is_error_with_message_and_no_retry(
    client: SpotifyClient, fake: FakeSpotify, sleeps: Sleeps
) -> None:
    fake.fail_next(1, 403, body={"error": {"status": 403, "message": "Active premium subscription required"}})
    with pytest.raises(SpotifyError) as info:
        await client.get_album(ALBUM_ID)
    assert type(info.value) is SpotifyError
    assert info.value.status == 403
    assert "403" in str(info.value) and "Active premium subscription required" in str(info.value)
    assert client.request_count == 1 and sleeps == []


# --------------------------------------------------------------------------------------
# Session ownership
# --------------------------------------------------------------------------------------


async def test_close_closes_only_an_owned_session(fake: FakeSpotify, clock: FakeClock, sleeps: Sleeps) -> None:
    async with aiohttp.ClientSession() as session:
        injected = SpotifyClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            api_base_url=fake.api_base_url,
            accounts_base_url=fake.accounts_base_url,
            session=session,
            clock=clock,
            sleep=sleeps,
        )
        await injected.get_artist(ARTIST_ID)
        await injected.close()
        assert not session.closed

    owned = SpotifyClient(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        api_base_url=fake.api_base_url,
        accounts_base_url=fake.accounts_base_url,
        clock=clock,
        sleep=sleeps,
    )
    await owned.get_artist(ARTIST_ID)
    own_session = owned._session
    assert own_session is not None
    await owned.close()
    assert own_session.closed
    await owned.close()  # idempotent


async def test_close_without_any_request_is_fine() -> None:
    client = SpotifyClient(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    await client.close()


# --------------------------------------------------------------------------------------
# Integration: the client against the shared Spotify emulator
# --------------------------------------------------------------------------------------


@pytest.fixture
async def emulator():
    spotify = SpotifyEmulator()
    await spotify.start()
    try:
        yield spotify
    finally:
        await spotify.stop()


@pytest.fixture
async def emu_client(emulator, clock: FakeClock, sleeps: Sleeps):
    clients: list[SpotifyClient] = []

    def make(**kwargs: Any) -> SpotifyClient:
        options: dict[str, Any] = dict(
            client_id=emulator.client_id,
            client_secret=emulator.client_secret,
            api_base_url=emulator.api_base_url,
            accounts_base_url=emulator.accounts_base_url,
            clock=clock,
            sleep=sleeps,
            timeout=2.0,
        )
        options.update(kwargs)
        client = SpotifyClient(**options)
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            await client.close()


def _api_requests(emulator, part: str = "/v1/") -> list[Any]:
    return [r for r in emulator.request_log if part in r.path]


async def test_emulator_search_and_get_artist(emulator, emu_client) -> None:
    pitbull = emulator.add_artist("Pitbull", followers=12_000_000)
    emulator.add_artist("Pitbull Tribute Band", followers=10)
    for i in range(14):
        emulator.add_artist(f"Band {i}", followers=i)
    client = emu_client()

    found = await client.search_artists("pitbull")
    bands = await client.search_artists("band", limit=50)
    artist = await client.get_artist(pitbull)

    assert [a.name for a in found] == ["Pitbull", "Pitbull Tribute Band"]
    assert found[0].id == pitbull and found[0].followers == 12_000_000
    assert len(bands) == 10
    searches = _api_requests(emulator, "/v1/search")
    assert [r.query["limit"] for r in searches] == ["10", "10"]
    assert all(r.query["type"] == "artist" and r.query["market"] == "US" for r in searches)
    assert artist.id == pitbull and artist.name == "Pitbull"
    assert artist.image_url is not None
    assert client.token_requests == 1
    assert client.requests_by_endpoint == {"search": 2, "artist": 1}


async def test_emulator_not_found(emulator, emu_client) -> None:
    client = emu_client()
    with pytest.raises(SpotifyNotFound) as unknown:
        await client.get_artist("0" * 22)
    with pytest.raises(SpotifyNotFound) as invalid:
        await client.get_album("not-an-id")
    assert unknown.value.status == 404
    assert invalid.value.status == 400


async def test_emulator_paging_collects_every_item_once(emulator, emu_client) -> None:
    artist = emulator.add_artist("Prolific")
    other = emulator.add_artist("Guest")
    for i in range(23):
        emulator.add_album([artist], f"LP {i}", album_type="album", release_date=f"{2000 + i}-03-01")
    for i in range(7):
        emulator.add_album(
            [artist, other],
            f"Single {i}",
            album_type="single",
            release_date=f"2024-0{i + 1}",
            release_date_precision="month",
        )
    emulator.add_album([artist], "Hits", album_type="compilation", release_date="2019", release_date_precision="year")
    emulator.add_album([other], "Feature", album_type="album", appears_on=[artist])
    client = emu_client()

    for group in ("album", "single", "compilation"):
        page = await client.artist_albums(artist, include_groups=[group])
        seen: list[Album] = list(page.items)
        pages = 1
        while (page := await client.artist_albums_next(page)) is not None:
            seen.extend(page.items)
            pages += 1
        expected = [album_id for _, album_id in emulator.artist_listing(artist, (group,))]
        assert [a.id for a in seen] == expected
        assert len({a.id for a in seen}) == len(seen)
        assert all(a.album_group == group and a.album_type == group for a in seen)
        assert pages == max(1, -(-len(expected) // 10))

    listing = _api_requests(emulator, "/albums")
    assert listing and all(r.query["limit"] == "10" and r.query["market"] == "US" for r in listing)
    newest = (await client.artist_albums(artist, include_groups=["album"])).items[0]
    assert newest.name == "LP 22" and newest.release_date == "2022-03-01"

    # Several groups at once: still every item exactly once, album_group left unknown.
    page = await client.artist_albums(artist, include_groups=["album", "single", "compilation", "appears_on"])
    seen = list(page.items)
    while (page := await client.artist_albums_next(page)) is not None:
        seen.extend(page.items)
    assert [a.id for a in seen] == [album_id for _, album_id in emulator.artist_listing(artist)]
    assert len(seen) == 23 + 7 + 1 + 1


async def test_emulator_get_album_with_tracks(emulator, emu_client) -> None:
    artist = emulator.add_artist("Pitbull")
    album_id = emulator.add_album(
        [artist],
        "Trackhouse",
        release_date="2023-10-06",
        upc="196871526013",
        tracks=[{"name": "Me Pone Mal", "duration_ms": 190_000}, {"name": "Jumpin", "duration_ms": 201_000}],
    )
    client = emu_client()

    album = await client.get_album(album_id)

    assert album.id == album_id and album.name == "Trackhouse"
    assert album.upc == "196871526013"
    assert [t.name for t in album.tracks] == ["Me Pone Mal", "Jumpin"]
    assert album.tracks[1].duration_ms == 201_000
    assert album.artists[0].id == artist
    assert album.release_date_precision == "day"
    assert _api_requests(emulator, "/v1/albums")[0].query == {"market": "US"}


async def test_emulator_token_reuse_and_expiry(emulator, emu_client) -> None:
    artist = emulator.add_artist("A")
    client = emu_client()
    for _ in range(5):
        await client.get_artist(artist)
    assert client.token_requests == 1

    emulator.expire_tokens()  # the API answers 401 "The access token expired"
    await client.get_artist(artist)
    assert client.token_requests == 2
    assert client.request_count == 7
    assert [r.status for r in _api_requests(emulator)][-2:] == [401, 200]


async def test_emulator_bad_credentials(emulator, emu_client) -> None:
    client = emu_client(client_secret="not-the-emulator-secret")
    with pytest.raises(SpotifyAuthError) as info:
        await client.search_artists("x")
    assert "not-the-emulator-secret" not in str(info.value)
    assert _api_requests(emulator) == []


async def test_emulator_faults(emulator, emu_client, sleeps: Sleeps, clock: FakeClock) -> None:
    artist = emulator.add_artist("A")
    client = emu_client(timeout=0.2)

    emulator.fail_next(2, status=503)
    assert (await client.get_artist(artist)).id == artist
    assert client.request_count == 3 and len(sleeps) == 2

    emulator.fail_next(1, status=429, retry_after=2)
    await client.get_artist(artist)
    assert sleeps[-1] == 2.0

    emulator.hang_next(1, seconds=5)
    await client.get_artist(artist)
    assert client.request_count == 3 + 2 + 2

    emulator.fail_next(1, status=429, retry_after=86400, reason="QUOTA_EXCEEDED")
    with pytest.raises(SpotifyCooldown) as info:
        await client.artist_albums(artist, include_groups=["album"])
    assert info.value.until == clock() + dt.timedelta(days=1)
    assert info.value.reason == "QUOTA_EXCEEDED"
    logged = len(emulator.request_log)
    with pytest.raises(SpotifyCooldown):
        await client.get_artist(artist)
    assert len(emulator.request_log) == logged


async def test_emulator_groups_newest_first_with_real_paging(emulator, emu_client) -> None:
    """What the tracker relies on: groups in the order album, single; newest first inside a group; ``total``
    counts every item of the groups asked; ``next`` while more remain; ``album_group`` for one group."""
    artist = emulator.add_artist("A")
    emulator.add_album([artist], "Old LP", release_date="2010-01-01")
    singles = [
        emulator.add_album([artist], f"S{i}", album_type="single", release_date=f"2020-01-{i + 1:02d}")
        for i in range(12)
    ]
    emulator.add_album([artist], "New LP", release_date="2026-01-01")
    client = emu_client()
    page = await client.artist_albums(artist, include_groups="album,single", limit=10)
    assert [x.name for x in page.items[:3]] == ["New LP", "Old LP", "S11"]
    assert page.total == 14 and page.next
    page2 = await client.artist_albums_next(page)
    assert page2 is not None
    assert [x.id for x in page2.items] == list(reversed(singles))[8:]
    assert page2.next is None and await client.artist_albums_next(page2) is None
    assert client.request_count == 2
    only = await client.artist_albums(artist, include_groups="single", limit=5)
    assert {x.album_group for x in only.items} == {"single"}
    clamped = await client.artist_albums(artist, include_groups="single", limit=11)  # Spotify's maximum is 10
    assert clamped.limit == 10 and _api_requests(emulator, "/albums")[-1].query["limit"] == "10"


async def test_emulator_failures_and_cooldown(emulator, emu_client, clock: FakeClock) -> None:
    artist = emulator.add_artist("A")
    client = emu_client(max_retries=0)
    with pytest.raises(SpotifyNotFound):
        await client.get_artist("0" * 22)
    emulator.fail_next(status=500, path_contains=artist)
    with pytest.raises(SpotifyError) as failed:
        await client.artist_albums(artist, include_groups="single")
    assert failed.value.status == 500
    await client.artist_albums(artist, include_groups="single")
    emulator.fail_next(status=429, retry_after=3600, reason="QUOTA_EXCEEDED")
    with pytest.raises(SpotifyCooldown):
        await client.artist_albums(artist, include_groups="single")
    count = client.request_count
    with pytest.raises(SpotifyCooldown):
        await client.get_artist(artist)
    assert client.request_count == count  # refused locally, not sent
    clock.advance(hours=1)
    assert (await client.get_artist(artist)).id == artist


async def test_emulator_recorded_pitbull_listing(emulator, emu_client, shared_spotify: Path) -> None:
    listing = json.loads((shared_spotify / "fixtures" / "artist_albums.json").read_text())
    artist_json = json.loads((shared_spotify / "fixtures" / "artist.json").read_text())
    artist_id = emulator.load_recorded_catalogue(listing, artist_json)
    client = emu_client()

    albums: list[Album] = []
    for group in ("album", "single", "compilation"):
        page = await client.artist_albums(artist_id, include_groups=[group])
        albums.extend(page.items)
        while (page := await client.artist_albums_next(page)) is not None:
            albums.extend(page.items)

    recorded = {item["id"] for item in listing["items"] if item.get("album_group") != "appears_on"}
    assert {a.id for a in albums} == recorded
    assert len(albums) == len(recorded)
    assert {a.release_date_precision for a in albums} >= {"day", "year"}


@pytest.mark.parametrize("per_30s", [1, 10, 30, 31, 150, 9000])
def test_rate_limiter_never_exceeds_the_rolling_window(per_30s):
    import math

    from bot.spotify.client import rolling_window_limiter

    limiter = rolling_window_limiter(per_30s)
    assert limiter is not None
    capacity = limiter.max_rate
    refill_per_second = limiter.max_rate / limiter.time_period
    assert capacity >= 1
    # Worst case in any 30 s window: a full bucket at its start plus the whole tokens refilled in 30 s.
    assert capacity + math.floor(30 * refill_per_second) <= per_30s
    # …and it is not needlessly slow: at least 90 % of the limit (or one request) per window.
    assert capacity + math.floor(30 * refill_per_second) >= max(1, int(0.9 * per_30s))
    assert rolling_window_limiter(0) is None


async def no_wait(_seconds: float) -> None:
    return None


async def test_429s_are_counted_and_the_limiter_is_shared():
    async with SpotifyEmulator(seed="limits") as emu:
        artist = emu.add_artist("Limited")
        client = SpotifyClient(
            client_id=emu.client_id,
            client_secret=emu.client_secret,
            api_base_url=emu.api_base_url,
            accounts_base_url=emu.accounts_base_url,
            sleep=no_wait,
            rate_limit_per_30s=62,
        )
        try:
            emu.fail_next(status=429, retry_after=1)
            await client.get_artist(artist)  # 429, then the retry succeeds
            assert client.rate_limited == 1 and client.request_count == 2
            # 62 per rolling 30 s: a bucket of 2, refilled at 60 per 30.5 s (see rolling_window_limiter).
            assert client.limiter is not None and client.limiter.max_rate == 2
            assert abs(client.limiter.time_period - 2 / (60 / 30.5)) < 1e-9
            await client.artist_albums(artist, include_groups=["single"])
            assert client.request_count == 3  # the third request waited for a token, then went through
        finally:
            await client.close()
    unlimited = SpotifyClient(client_id="x", client_secret="y")
    assert unlimited.limiter is None and unlimited.rate_limited == 0


def test_the_rate_limit_is_split_between_live_processes():
    client = SpotifyClient(client_id="x", client_secret="y", rate_limit_per_30s=150)
    assert client.limiter is not None and client.rate_share == 1
    whole = client.limiter.max_rate
    client.share_rate_limit(3)
    assert client.rate_share == 3 and client.limiter.max_rate < whole
    client.share_rate_limit(1)
    assert client.limiter.max_rate == whole
