"""``bot.musicdata.lastfm``: ``user.getTopArtists`` from the Last.fm emulator — the request (method, period,
paging, format, key, User-Agent), string numbers parsed, an empty ``mbid`` read as unknown, pages spaced,
the refusals Last.fm answers (unknown user, bad or suspended key) raised as such and never retried, the
rate limit (error 29) waited out a bounded number of times, and the key kept out of every message."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from importlib.metadata import version

import pytest

from bot.musicdata import InvalidApiKey, LastFmClient, MusicDataError, UnknownUser, user_agent
from bot.musicdata.models import ListenedArtist
from fakes.lastfm_emulator import LastFmEmulator

KEY = "lastfm-test-key"


def mbid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


class Monotonic:
    """Seconds that the simulated sleep moves along."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def lastfm(clock) -> AsyncIterator[LastFmEmulator]:
    async with LastFmEmulator(api_keys=[KEY], clock=clock) as emulator:
        emulator.add_user("Alice")
        emulator.set_top_artists(
            "Alice",
            [
                {"name": "Nova Lights", "playcount": 120, "mbid": mbid("nova")},
                {"name": "The Quiet Harbour", "playcount": 40},
                {"name": "Air", "playcount": 3, "mbid": mbid("air")},
            ],
        )
        emulator.set_top_artists("Alice", [{"name": "Air", "playcount": 9}], period="7day")
        yield emulator


def client_for(lastfm: LastFmEmulator, http, *, key: str = KEY, contact: str = "ops@example.org", **kwargs):
    monotonic = Monotonic()
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        monotonic.now += seconds

    client = LastFmClient(
        base_url=lastfm.base_url,
        api_key=key,
        user_agent=user_agent(contact),
        http=http,
        sleep=sleep,
        monotonic=monotonic,
        **kwargs,
    )
    return client, waits


async def test_top_artists_are_read_and_parsed_with_the_user_agent(lastfm, http):
    client, _ = client_for(lastfm, http)
    page = await client.top_artists("alice", period="overall", limit=100)
    assert page.artists == [
        ListenedArtist("Nova Lights", mbid("nova"), 120),
        ListenedArtist("The Quiet Harbour", None, 40),  # "mbid": "" is unknown
        ListenedArtist("Air", mbid("air"), 3),
    ]
    assert (page.page, page.total_pages, page.total) == (1, 1, 3)
    (request,) = lastfm.requests_to("user.gettopartists")
    assert request.query == {
        "method": "user.gettopartists",
        "user": "alice",
        "period": "overall",
        "limit": "100",
        "page": "1",
        "api_key": KEY,
        "format": "json",
    }
    assert request.user_agent == f"release-bot/{version('release-bot')} ( ops@example.org )"
    week = await client.top_artists("Alice", period="7day")
    assert week.artists == [ListenedArtist("Air", None, 9)]
    with pytest.raises(ValueError, match="period"):
        await client.top_artists("Alice", period="week")


async def test_pages_are_spaced_a_second_apart(lastfm, http):
    client, waits = client_for(lastfm, http)
    first = await client.top_artists("Alice", limit=2, page=1)
    second = await client.top_artists("Alice", limit=2, page=2)
    assert [a.name for a in first.artists + second.artists] == ["Nova Lights", "The Quiet Harbour", "Air"]
    assert (first.total_pages, second.page) == (2, 2)
    assert waits == [1.0]  # the second request waited for the first's second


async def test_without_a_contact_the_user_agent_still_names_the_bot(lastfm, http):
    client, _ = client_for(lastfm, http, contact="")
    await client.top_artists("Alice")
    assert lastfm.request_log[-1].user_agent == f"release-bot/{version('release-bot')}"


async def test_an_unknown_user_is_error_6_and_not_retried(lastfm, http):
    client, waits = client_for(lastfm, http)
    with pytest.raises(UnknownUser) as caught:
        await client.top_artists("nobody")
    assert caught.value.status == 404 and len(lastfm.request_log) == 1 and waits == []


@pytest.mark.parametrize("suspend", [False, True])
async def test_a_bad_or_suspended_key_is_refused_without_showing_it(lastfm, http, caplog, suspend):
    key = KEY if suspend else "not-a-key"
    if suspend:
        lastfm.suspend_api_key(KEY)
    client, _ = client_for(lastfm, http, key=key)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(InvalidApiKey) as caught:
        await client.top_artists("Alice")
    assert ("error 26" if suspend else "error 10") in str(caught.value)
    assert len(lastfm.request_log) == 1
    assert key not in str(caught.value) and key not in repr(client) and key not in caplog.text


async def test_the_rate_limit_is_waited_out_a_bounded_number_of_times(clock, http):
    async with LastFmEmulator(api_keys=[KEY], clock=clock, rate_limit=(1, 3600)) as lastfm:
        lastfm.add_user("Alice")
        client, waits = client_for(lastfm, http, max_retries=2)
        await client.top_artists("Alice")
        with pytest.raises(MusicDataError) as caught:
            await client.top_artists("Alice")  # 29, 29, 29: given up after two retries
        assert caught.value.status == 429
        assert [r.status for r in lastfm.request_log] == [200, 429, 429, 429]
        assert waits[-2:] == [2.0, 4.0]  # backing off, doubled
        lastfm.reset_rate_limit()
        client, _ = client_for(lastfm, http)
        assert (await client.top_artists("Alice")).artists == []
