"""The Last.fm ``user.getTopArtists`` emulator against the recorded documentation examples.

Contract tests read ``../shared/musicdata/lastfm/…`` at test time (README section 4): the complete
``limit=3`` response for ``aidan-`` and the error 6 "User not found" body. Behaviour tests check
the documented errors (10, 6, 29), paging with string-typed numbers, and the optional rate limit
on an injected clock.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fakes.lastfm_emulator import LastFmEmulator
from tests.conftest import FakeClock

REPO = Path(__file__).resolve().parents[2]
MUSICDATA = REPO.parent / "shared" / "musicdata"
USER_AGENT = "release-bot-tests/1.0 ( https://example.invalid/release-bot )"
API_KEY = "test-api-key"
# Messages as the README (section 4) quotes the Last.fm docs.
INVALID_API_KEY = {"error": 10, "message": "Invalid API key - You must be granted a valid key by last.fm"}
RATE_LIMITED = {"error": 29, "message": "Rate limit exceeded - Your IP has made too many requests in a short period"}


@pytest.fixture
def musicdata() -> Path:
    """``../shared/musicdata``; skipped when absent, except under ``CI=true`` where that is a failure."""
    if not MUSICDATA.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{MUSICDATA} is missing: CI must provide ../shared/musicdata beside the checkout")
        pytest.skip("../shared/musicdata is not present beside the checkout")
    return MUSICDATA


def load(musicdata: Path, name: str) -> Any:
    return json.loads((musicdata / "lastfm" / name).read_text(encoding="utf-8"))


@pytest.fixture
async def lastfm(clock: FakeClock) -> AsyncIterator[LastFmEmulator]:
    async with LastFmEmulator(api_keys=[API_KEY], clock=clock) as emulator:
        yield emulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}) as client:
        yield client


async def call(session: aiohttp.ClientSession, lastfm: LastFmEmulator, **params: str | None) -> tuple[int, Any]:
    """``user.getTopArtists`` with ``api_key`` and ``format=json`` unless overridden (``None`` leaves a
    parameter out); ``(status, json or text)``."""
    query = {"method": "user.getTopArtists", "api_key": API_KEY, "format": "json", **params}
    async with session.get(lastfm.base_url, params={k: v for k, v in query.items() if v is not None}) as response:
        if response.content_type != "application/json":
            return response.status, await response.text()
        return response.status, await response.json()


def strings_only(value: Any) -> bool:
    """Whether every scalar in ``value`` is a string (Last.fm's JSON is converted XML)."""
    if isinstance(value, dict):
        return all(strings_only(v) for v in value.values())
    if isinstance(value, list):
        return all(strings_only(v) for v in value)
    return isinstance(value, str)


def seed(lastfm: LastFmEmulator, user: str, count: int, *, period: str = "overall") -> None:
    lastfm.add_user(user)
    lastfm.set_top_artists(user, [{"name": f"Artist {n}", "playcount": 1000 - n} for n in range(count)], period=period)


# --------------------------------------------------------------------------- contract


async def test_top_artists_page_matches_the_recorded_example(lastfm, session, musicdata):
    recorded = load(musicdata, "user_getTopArtists_aidan-_limit3.json")
    attr = recorded["topartists"]["@attr"]
    user = lastfm.add_user(attr["user"])
    top = [
        {"name": a["name"], "playcount": int(a["playcount"]), "mbid": a["mbid"]}
        for a in recorded["topartists"]["artist"]
    ]
    # The rest of the user's artists, down to the recorded total.
    lowest = int(top[-1]["playcount"])
    rest = [{"name": f"Artist {n}", "playcount": lowest - 1 - n // 10} for n in range(int(attr["total"]) - len(top))]
    lastfm.set_top_artists(user, top + rest)
    status, body = await call(lastfm=lastfm, session=session, user=user, limit=attr["perPage"])
    # URLs and the placeholder images are the emulator's defaults: they match the recording too.
    assert (status, body) == (200, recorded)


async def test_unknown_user_answers_the_recorded_error(lastfm, session, musicdata):
    status, body = await call(session, lastfm, user="nobody-at-all")
    assert (status, body) == (404, load(musicdata, "error_6_user_not_found.json"))


async def test_every_number_is_a_string_as_recorded(lastfm, session, musicdata):
    assert strings_only(load(musicdata, "user_getTopArtists_aidan-_limit3.json"))
    seed(lastfm, "rj", 7)
    status, body = await call(session, lastfm, user="rj", limit="3", page="3")
    assert status == 200
    assert strings_only(body)
    assert body["topartists"]["@attr"] == {"page": "3", "total": "7", "user": "rj", "perPage": "3", "totalPages": "3"}
    assert [(a["@attr"]["rank"], a["name"]) for a in body["topartists"]["artist"]] == [("7", "Artist 6")]


# --------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("api_key", [None, "", "not-a-key"])
async def test_missing_or_invalid_api_key_is_error_10(lastfm, session, api_key):
    seed(lastfm, "rj", 1)
    status, body = await call(session, lastfm, user="rj", api_key=api_key)
    assert (status, body) == (403, INVALID_API_KEY)


async def test_suspended_api_key_is_error_26(lastfm, session):
    seed(lastfm, "rj", 1)
    lastfm.suspend_api_key(API_KEY)
    status, body = await call(session, lastfm, user="rj")
    assert (status, body["error"]) == (403, 26)


@pytest.mark.parametrize(
    "params",
    [{"period": "1week"}, {"period": "OVERALL"}, {"user": None}, {"limit": "0"}, {"limit": "ten"}, {"page": "-1"}],
)
async def test_invalid_parameters_are_error_6(lastfm, session, params):
    seed(lastfm, "rj", 1)
    status, body = await call(session, lastfm, **{"user": "rj", **params})
    assert status == 400
    assert body["error"] == 6
    assert body["message"].startswith("Invalid parameters")


async def test_unknown_method_is_error_3(lastfm, session):
    status, body = await call(session, lastfm, method="user.getTopAlbums", user="rj")
    assert (status, body["error"]) == (400, 3)


async def test_periods_paging_and_user_spelling(lastfm, session):
    seed(lastfm, "RJ", 120)
    lastfm.set_top_artists("rj", [{"name": "Weekly Pick", "playcount": 9}], period="7day")
    status, body = await call(session, lastfm, user="rj")
    attr = body["topartists"]["@attr"]
    assert (status, attr["user"], attr["perPage"], attr["totalPages"]) == (200, "RJ", "50", "3")
    assert len(body["topartists"]["artist"]) == 50
    _, body = await call(session, lastfm, user="rj", page="3")
    assert [a["@attr"]["rank"] for a in body["topartists"]["artist"]][:2] == ["101", "102"]
    _, body = await call(session, lastfm, user="rj", page="4")
    assert body["topartists"]["artist"] == []
    _, body = await call(session, lastfm, user="rj", period="7day")
    assert [a["name"] for a in body["topartists"]["artist"]] == ["Weekly Pick"]
    _, body = await call(session, lastfm, user="rj", period="12month")
    assert body["topartists"]["@attr"]["total"] == "0"
    assert body["topartists"]["@attr"]["totalPages"] == "0"


async def test_injected_artist_fields_are_served(lastfm, session):
    lastfm.add_user("rj")
    lastfm.set_top_artists(
        "rj",
        [{"name": "Guns N' Roses", "playcount": 12, "mbid": "eeb1195b-f213-4ce1-b28c-8565211f8e43"}],
    )
    _, body = await call(session, lastfm, user="rj")
    (artist,) = body["topartists"]["artist"]
    assert artist["url"] == "https://www.last.fm/music/Guns+N%27+Roses"
    assert artist["mbid"] == "eeb1195b-f213-4ce1-b28c-8565211f8e43"
    assert [image["size"] for image in artist["image"]] == ["small", "medium", "large", "extralarge", "mega"]


async def test_optional_rate_limit_is_error_29(clock, session):
    async with LastFmEmulator(api_keys=[API_KEY], clock=clock, rate_limit=(2, 1.0)) as lastfm:
        seed(lastfm, "rj", 1)
        assert [(await call(session, lastfm, user="rj"))[0] for _ in range(2)] == [200, 200]
        assert await call(session, lastfm, user="rj") == (429, RATE_LIMITED)
        clock.advance(seconds=1)
        assert (await call(session, lastfm, user="rj"))[0] == 200


async def test_json_only_and_request_log(lastfm, session):
    seed(lastfm, "rj", 1)
    status, _ = await call(session, lastfm, user="rj", format=None)  # XML by default: not emulated
    assert status == 406
    await call(session, lastfm, user="rj")
    (logged,) = [r for r in lastfm.requests_to("user.getTopArtists") if r.status == 200]
    assert (logged.query["user"], logged.user_agent) == ("rj", USER_AGENT)


def test_injection_validates_values():
    lastfm = LastFmEmulator()
    with pytest.raises(KeyError):
        lastfm.set_top_artists("ghost", [])
    lastfm.add_user("rj")
    with pytest.raises(ValueError, match="period"):
        lastfm.set_top_artists("rj", [], period="week")
    with pytest.raises(ValueError, match="fields"):
        lastfm.set_top_artists("rj", [{"name": "X", "playcount": 1, "listeners": 3}])
