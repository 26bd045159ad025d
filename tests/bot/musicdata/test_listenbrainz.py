"""``bot.musicdata.listenbrainz``: fresh releases from the ListenBrainz emulator — the window asked, the items
parsed, the User-Agent, and the ``X-RateLimit-*`` headers honoured (a spent window waited for, a 429 waited
out as told), retries bounded."""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from importlib.metadata import version

import pytest

from bot.musicdata import FreshRelease, ListenBrainzClient, MusicDataError, NoStatistics, UnknownUser, user_agent
from fakes.listenbrainz_emulator import ListenBrainzEmulator

PIVOT = dt.date(2026, 11, 20)


def mbid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def client_for(base_url: str, http, clock, sleep) -> ListenBrainzClient:
    return ListenBrainzClient(
        base_url=base_url, user_agent=user_agent("https://example.org/ops"), http=http, clock=clock, sleep=sleep
    )


def add(lb: ListenBrainzEmulator, name: str, date: str, **fields) -> str:
    return lb.add_release_group(
        mbid(name),
        release_mbid=mbid(name + "/release"),
        release_name=name,
        artist_credit_name="Artist",
        artist_mbids=[mbid("artist")],
        first_release_date=date,
        **fields,
    )


async def test_the_window_around_the_pivot_is_asked_with_the_user_agent_and_parsed(lb, http, clock, sleep):
    for name, date in [
        ("too early", "2026-10-20"),
        ("first day", "2026-10-21"),
        ("today", "2026-11-20"),
        ("last day", "2026-12-20"),
        ("too late", "2026-12-21"),
        ("month only", "2026-12"),
    ]:
        add(lb, name, date)
    add(
        lb,
        "typed",
        "2026-11-27",
        primary_type="EP",
        secondary_types=["Live"],
        caa_id=12345678901,
        caa_release_mbid=mbid("caa"),
    )
    client = client_for(lb.base_url, http, clock, sleep)
    releases = await client.fresh_releases(days=30, pivot=PIVOT)
    assert sorted(r.title for r in releases) == ["first day", "last day", "today", "typed"]
    (request,) = lb.request_log
    assert request.path == "/1/explore/fresh-releases/"
    assert request.query == {"days": ["30"], "past": ["true"], "future": ["true"], "release_date": ["2026-11-20"]}
    assert request.user_agent == f"release-bot/{version('release-bot')} ( https://example.org/ops )"
    typed = next(r for r in releases if r.title == "typed")
    assert typed == FreshRelease(
        release_group_mbid=mbid("typed"),
        release_mbid=mbid("typed/release"),
        title="typed",
        artist_credit_name="Artist",
        artist_mbids=(mbid("artist"),),
        primary_type="EP",
        secondary_types=("Live",),
        release_date=dt.date(2026, 11, 27),
        caa_id=12345678901,
        caa_release_mbid=mbid("caa"),
    )
    today = next(r for r in releases if r.title == "today")
    assert (today.primary_type, today.secondary_types, today.caa_id) == (None, (), None)  # omitted keys


async def test_past_and_future_can_be_left_out(lb, http, clock, sleep):
    add(lb, "before", "2026-11-10")
    add(lb, "after", "2026-11-30")
    client = client_for(lb.base_url, http, clock, sleep)
    assert [r.title for r in await client.fresh_releases(days=30, pivot=PIVOT, past=False)] == ["after"]
    assert [r.title for r in await client.fresh_releases(days=30, pivot=PIVOT, future=False)] == ["before"]


async def test_a_spent_window_is_waited_for_before_the_next_request(http, clock, sleep):
    async with ListenBrainzEmulator(clock=clock, rate_limit=(2, 10)) as lb:
        client = client_for(lb.base_url, http, clock, sleep)
        for _ in range(3):
            await client.fresh_releases(days=7, pivot=PIVOT)
        assert [r.status for r in lb.request_log] == [200, 200, 200]  # never a 429
        assert sleep.calls == [10.0]  # the second answer said Remaining 0, Reset-In 10


async def test_a_429_is_waited_out_as_the_headers_say_then_retried(http, clock, sleep):
    async with ListenBrainzEmulator(clock=clock, rate_limit=(1, 10)) as lb:
        clock.advance(seconds=4)  # 6 s left in the window
        headers = {"User-Agent": "another-client/1.0 ( https://example.org )"}
        async with http.get(f"{lb.base_url}/1/explore/fresh-releases/", headers=headers) as response:
            assert response.status == 200  # another client on this IP spent the window
        client = client_for(lb.base_url, http, clock, sleep)
        assert await client.fresh_releases(days=7, pivot=PIVOT) == []
        assert [r.status for r in lb.request_log] == [200, 429, 200]
        assert sleep.calls == [6.0] and client.rate_limited == 1


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_service_that_does_not_answer_is_retried_a_bounded_number_of_times(http, clock, sleep):
    client = client_for(f"http://127.0.0.1:{unused_port()}", http, clock, sleep)
    with pytest.raises(MusicDataError) as raised:
        await client.fresh_releases(days=7, pivot=PIVOT)
    assert raised.value.service == "ListenBrainz" and raised.value.status is None
    assert client.request_count == 4 and sleep.calls == [5.0, 10.0, 20.0]


async def test_days_outside_what_listenbrainz_serves_are_refused_without_a_request(lb, http, clock, sleep):
    client = client_for(lb.base_url, http, clock, sleep)
    for days in (0, 91):
        with pytest.raises(ValueError):
            await client.fresh_releases(days=days, pivot=PIVOT)
    assert lb.request_log == []


# --- a user's top artists (/import listenbrainz:) ----------------------------------------------


def stats(lb: ListenBrainzEmulator, user: str, artists: list[tuple[str | None, str, int]], **kwargs) -> None:
    lb.add_user(user)
    lb.set_artist_stats(
        user,
        [{"artist_mbid": m, "artist_name": n, "listen_count": c} for m, n, c in artists],
        from_ts=0,
        to_ts=1,
        last_updated=1,
        **kwargs,
    )


async def test_user_artists_are_read_with_their_range_and_mbids(lb, http, clock, sleep):
    stats(lb, "Alice", [(mbid("nova"), "Nova Lights", 50), (None, "Unknown Band", 7)], stats_range="month")
    client = client_for(lb.base_url, http, clock, sleep)
    artists, total = await client.user_artists("alice", stats_range="month", count=100)
    assert [(a.name, a.mbid, a.plays) for a in artists] == [
        ("Nova Lights", mbid("nova"), 50),
        ("Unknown Band", None, 7),
    ]
    assert total == 2
    (request,) = lb.requests_to("/1/stats/user/")
    assert request.path == "/1/stats/user/alice/artists"
    assert request.query == {"range": ["month"], "count": ["100"], "offset": ["0"]}
    assert request.user_agent == user_agent("https://example.org/ops")
    with pytest.raises(ValueError, match="stats_range"):
        await client.user_artists("alice", stats_range="7day")


async def test_an_unknown_user_and_missing_statistics_are_told_apart(lb, http, clock, sleep):
    lb.add_user("Fresh")
    client = client_for(lb.base_url, http, clock, sleep)
    with pytest.raises(UnknownUser) as unknown:
        await client.user_artists("nobody")
    assert unknown.value.status == 404
    with pytest.raises(NoStatistics) as none:
        await client.user_artists("Fresh")
    assert none.value.status == 204
    assert [r.status for r in lb.request_log] == [404, 204]  # neither is retried
