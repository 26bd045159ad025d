"""The ListenBrainz emulator against the real service's captured responses and documented rules.

Contract tests read ``../shared/musicdata/listenbrainz/…`` at test time (README sections 1 and 2):
the sitewide fresh-releases capture, the recorded 429 exchange, the top-artists capture and the
server's stored statistics row. Behaviour tests check the validation messages, the window rule,
the epoch-aligned rate-limit window (on an injected clock), the User-Agent block and data changes.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fakes.listenbrainz_emulator import ListenBrainzEmulator
from tests.conftest import FakeClock

REPO = Path(__file__).resolve().parents[2]
MUSICDATA = REPO.parent / "shared" / "musicdata"
USER_AGENT = "release-bot-tests/1.0 ( https://example.invalid/release-bot )"
FRESH = "/1/explore/fresh-releases/"
RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Reset-In")


@pytest.fixture
def musicdata() -> Path:
    """``../shared/musicdata``; skipped when absent, except under ``CI=true`` where that is a failure."""
    if not MUSICDATA.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{MUSICDATA} is missing: CI must provide ../shared/musicdata beside the checkout")
        pytest.skip("../shared/musicdata is not present beside the checkout")
    return MUSICDATA


def load(musicdata: Path, name: str) -> Any:
    return json.loads((musicdata / "listenbrainz" / name).read_text(encoding="utf-8"))


def recorded_429(musicdata: Path) -> tuple[int, dict[str, str], Any]:
    """``error_429_recorded.http``: ``(status, headers, json body)``."""
    text = (musicdata / "listenbrainz" / "error_429_recorded.http").read_text()
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    status = int(lines[0].split()[1])
    blank = lines.index("")
    headers = dict(line.split(": ", 1) for line in lines[1:blank])
    return status, headers, json.loads("\n".join(lines[blank + 1 :]))


@pytest.fixture
async def lb(clock: FakeClock) -> AsyncIterator[ListenBrainzEmulator]:
    async with ListenBrainzEmulator(clock=clock) as emulator:
        yield emulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}) as client:
        yield client


async def get(
    session: aiohttp.ClientSession, lb: ListenBrainzEmulator, path: str, **params: str
) -> tuple[int, Any, Any]:
    """``(status, headers, json or None)`` without following redirects."""
    async with session.get(lb.base_url + path, params=params, allow_redirects=False) as response:
        raw = await response.read()
        return response.status, response.headers, json.loads(raw) if raw else None


def mbid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def add_group(lb: ListenBrainzEmulator, n: int, date: str, **fields: Any) -> str:
    """A release group numbered ``n`` first released on ``date``."""
    defaults: dict[str, Any] = {
        "release_mbid": mbid(100_000 + n),
        "release_name": f"Release {n:03d}",
        "artist_credit_name": f"Artist {n:03d}",
        "artist_mbids": [mbid(200_000 + n)],
        "primary_type": "Album",
    }
    return lb.add_release_group(mbid(n), first_release_date=date, **{**defaults, **fields})


async def fresh(session, lb, **params: str) -> list[dict[str, Any]]:
    status, _, body = await get(session, lb, FRESH, **params)
    assert status == 200, body
    assert body["payload"]["total_count"] == len(body["payload"]["releases"])
    return body["payload"]["releases"]


# --------------------------------------------------------------------------- contract


async def test_fresh_release_items_match_the_sitewide_capture(lb, session, musicdata):
    recorded = load(musicdata, "fresh_releases_sitewide.json")
    items = recorded["payload"]["releases"]
    for item in items:
        secondary = item.get("release_group_secondary_type")
        lb.add_release_group(
            item["release_group_mbid"],
            release_mbid=item["release_mbid"],
            release_name=item["release_name"],
            artist_credit_name=item["artist_credit_name"],
            artist_mbids=item["artist_mbids"],
            first_release_date=item["release_date"],
            primary_type=item.get("release_group_primary_type"),
            secondary_types=[secondary] if secondary else [],
            caa_id=item["caa_id"],
            caa_release_mbid=item["caa_release_mbid"],
            listen_count=item["listen_count"],
            release_tags=item["release_tags"],
        )
    # The capture spans 2023-07-26 .. 2024-01-05: days=90 around 2023-10-16 covers it.
    status, headers, body = await get(session, lb, FRESH, days="90", release_date="2023-10-16")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert set(body) == set(recorded) and set(body["payload"]) == set(recorded["payload"])
    assert body["payload"]["releases"] == items  # same items, keys, omissions, order
    # The capture kept the source's total_count (102) for 6 trimmed items; the server counts what it returns.
    assert body["payload"]["total_count"] == len(items)


async def test_null_types_are_omitted_sitewide_unlike_the_per_user_shape(lb, session, musicdata, clock):
    user_item = load(musicdata, "fresh_releases_user.json")["payload"]["releases"][0]
    assert user_item["release_group_secondary_type"] is None  # per-user: null is sent
    add_group(lb, 1, clock().date().isoformat(), primary_type=None)
    (item,) = await fresh(session, lb)
    sitewide_keys = set(load(musicdata, "fresh_releases_sitewide.json")["payload"]["releases"][0])
    assert set(item) == sitewide_keys - {"release_group_primary_type"}
    assert "release_group_secondary_type" not in item


async def test_rate_limited_response_matches_the_recording(clock, session, musicdata):
    status, headers, body = recorded_429(musicdata)
    limit = int(headers["X-RateLimit-Limit"])  # 3: the maintainer's local setting
    clock.now = email.utils.parsedate_to_datetime(headers["Date"])  # 10:48:59, one second before reset
    async with ListenBrainzEmulator(clock=clock, rate_limit=(limit, 10)) as lb:
        for _ in range(limit):
            assert (await get(session, lb, FRESH))[0] == 200
        got_status, got_headers, got_body = await get(session, lb, FRESH)
    assert got_status == status == 429
    assert got_body == body
    assert got_headers["Content-Type"] == headers["Content-Type"]
    assert got_headers["Access-Control-Expose-Headers"] == headers["Access-Control-Expose-Headers"]
    for name in RATE_LIMIT_HEADERS:
        assert got_headers[name] == headers[name], name


async def test_error_bodies_have_the_recorded_error_shape(lb, session, musicdata):
    _, _, recorded = recorded_429(musicdata)
    for path, params, code in [(FRESH, {"days": "0"}, 400), ("/1/stats/user/nobody/artists", {}, 404)]:
        status, _, body = await get(session, lb, path, **params)
        assert status == code
        assert set(body) == set(recorded)
        assert body["code"] == code
        assert isinstance(body["error"], str)


async def test_stats_payload_matches_the_capture(lb, session, musicdata):
    recorded = load(musicdata, "stats_user_artists.json")["payload"]
    user = lb.add_user(recorded["user_id"])
    # The capture is trimmed to 5 of its 25 artists: pad with 20 more to ask for the same 25.
    padding = [{"artist_mbid": None, "artist_name": f"Filler {n}", "listen_count": 30 - n} for n in range(20)]
    lb.set_artist_stats(
        user,
        recorded["artists"] + padding,
        from_ts=recorded["from_ts"],
        to_ts=recorded["to_ts"],
        last_updated=recorded["last_updated"],
        total_artist_count=recorded["total_artist_count"],
    )
    status, _, body = await get(session, lb, f"/1/stats/user/{user}/artists", count=str(recorded["count"]))
    assert status == 200
    payload = body["payload"]
    assert {**payload, "artists": payload["artists"][: len(recorded["artists"])]} == recorded


async def test_stats_serve_the_stored_row_verbatim(lb, session, musicdata):
    (row,) = load(musicdata, "stats_user_artists_server_db_fixture.json")
    lb.add_user("rob")
    lb.set_artist_stats("rob", row["data"], from_ts=0, to_ts=1, last_updated=2, total_artist_count=row["count"])
    status, _, body = await get(session, lb, "/1/stats/user/rob/artists", offset="1", count="2")
    assert status == 200
    payload = body["payload"]
    assert payload["artists"] == row["data"][1:3]
    assert all(set(a) == {"artist_mbid", "artist_name", "listen_count"} for a in payload["artists"])
    assert (payload["count"], payload["offset"], payload["total_artist_count"]) == (2, 1, row["count"])


# ---------------------------------------------------------------------- fresh releases


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"days": "0"}, "days must be between 1 and 90."),
        ({"days": "91"}, "days must be between 1 and 90."),
        ({"days": "abc"}, "Invalid days argument: abc"),
        ({"days": "1.5"}, "Invalid days argument: 1.5"),
        ({"sort": "confidence"}, "sort must be one of 'release_date', 'artist_credit_name' or 'release_name'."),
        ({"past": "yes"}, "Invalid past argument: yes"),
        ({"future": "1"}, "Invalid future argument: 1"),
        ({"release_date": "2026/11/20"}, "Cannot parse date. Must be in YYYY-MM-DD format."),
        ({"release_date": "2026-02-30"}, "Cannot parse date. Must be in YYYY-MM-DD format."),
    ],
)
async def test_fresh_release_validation(lb, session, params, message):
    status, headers, body = await get(session, lb, FRESH, **params)
    assert (status, body) == (400, {"code": 400, "error": message})
    assert all(name in headers for name in RATE_LIMIT_HEADERS)


async def test_lenient_forms_are_accepted(lb, session):
    add_group(lb, 1, "2026-07-05")
    for params in ({"past": "TRUE", "future": "False"}, {"release_date": "2026-7-5", "days": "1"}, {"days": ""}):
        assert (await get(session, lb, FRESH, **params))[0] == 200


async def test_window_around_the_pivot(lb, session):
    for n, date in enumerate(["2026-10-31", "2026-11-01", "2026-11-10", "2026-11-19", "2026-11-20"]):
        add_group(lb, n, date)

    async def dates(**params: str) -> list[str]:
        return [r["release_date"] for r in await fresh(session, lb, release_date="2026-11-10", days="9", **params)]

    assert await dates() == ["2026-11-01", "2026-11-10", "2026-11-19"]  # both ends included
    assert await dates(past="false") == ["2026-11-10", "2026-11-19"]
    assert await dates(future="false") == ["2026-11-01", "2026-11-10"]
    assert await dates(past="false", future="false") == ["2026-11-10"]


async def test_default_pivot_is_the_clock_today_and_reaches_90_days_ahead(lb, session, clock):
    today = clock().date()
    add_group(lb, 1, (today + dt.timedelta(days=90)).isoformat())
    add_group(lb, 2, (today + dt.timedelta(days=91)).isoformat())
    add_group(lb, 3, (today - dt.timedelta(days=15)).isoformat())
    assert [r["release_group_mbid"] for r in await fresh(session, lb, days="90")] == [mbid(3), mbid(1)]
    assert await fresh(session, lb) == []  # default 14 days
    clock.advance(days=1)
    assert [r["release_group_mbid"] for r in await fresh(session, lb, days="90")] == [mbid(3), mbid(1), mbid(2)]


async def test_only_full_dates_appear(lb, session, clock):
    today = clock().date()
    add_group(lb, 1, today.isoformat())
    add_group(lb, 2, today.isoformat()[:7])
    add_group(lb, 3, today.isoformat()[:4])
    add_group(lb, 4, "")
    assert [r["release_group_mbid"] for r in await fresh(session, lb)] == [mbid(1)]


async def test_sort_keys_rotate_tie_breaks(lb, session):
    add_group(lb, 1, "2026-11-20", artist_credit_name="B", release_name="A")
    add_group(lb, 2, "2026-11-19", artist_credit_name="A", release_name="B")
    add_group(lb, 3, "2026-11-18", artist_credit_name="A", release_name="B")
    add_group(lb, 4, "2026-11-18", artist_credit_name="C", release_name="A")

    async def order(sort: str) -> list[int]:
        return [int(r["release_group_mbid"][-3:]) for r in await fresh(session, lb, sort=sort)]

    assert await order("release_date") == [3, 4, 2, 1]  # then artist_credit_name
    assert await order("artist_credit_name") == [3, 2, 1, 4]  # then release_name, then release_date
    assert await order("release_name") == [4, 1, 3, 2]  # then release_date, then artist_credit_name


async def test_one_response_holds_the_whole_window(lb, session):
    for n in range(300):
        add_group(lb, n, (dt.date(2026, 11, 20) + dt.timedelta(days=n % 90)).isoformat())
    assert len(await fresh(session, lb, days="90", past="false")) == 300


async def test_items_list_artists_and_tags_sorted_once(lb, session):
    add_group(lb, 1, "2026-11-20", artist_mbids=[mbid(9), mbid(3), mbid(9)], release_tags=["rock", "metal", "rock"])
    (item,) = await fresh(session, lb)
    assert item["artist_mbids"] == [mbid(3), mbid(9)]
    assert item["release_tags"] == ["metal", "rock"]


async def test_changes_are_visible_in_later_responses(lb, session):
    add_group(lb, 1, "2026-11-25")
    add_group(lb, 2, "2026-11-26", secondary_types=["Live", "Compilation"])
    assert [r["release_group_mbid"] for r in await fresh(session, lb)] == [mbid(1), mbid(2)]
    lb.update_release_group(mbid(1), first_release_date="2027-03-01")  # postponed out of the window
    lb.update_release_group(mbid(2), release_name="Live at Reading", primary_type=None)
    (item,) = await fresh(session, lb)
    assert (item["release_name"], item["release_group_secondary_type"]) == ("Live at Reading", "Live")
    assert "release_group_primary_type" not in item
    lb.remove_release_group(mbid(2))
    add_group(lb, 3, "2026-11-21")  # announced late
    assert [r["release_group_mbid"] for r in await fresh(session, lb)] == [mbid(3)]


async def test_missing_trailing_slash_redirects(lb, session):
    status, headers, _ = await get(session, lb, FRESH.rstrip("/"), days="3")
    assert status == 308
    assert headers["Location"] == f"{lb.base_url}{FRESH}?days=3"
    assert "X-RateLimit-Limit" not in headers


def test_injection_validates_values():
    lb = ListenBrainzEmulator()
    with pytest.raises(ValueError, match="first_release_date"):
        add_group(lb, 1, "2026/11/20")
    with pytest.raises(ValueError, match="secondary"):
        add_group(lb, 1, "2026-11-20", secondary_types=["Bootleg"])
    with pytest.raises(ValueError, match="MBID"):
        add_group(lb, 1, "2026-11-20", artist_mbids=["Nirvana"])


# -------------------------------------------------------------------------- rate limit


async def test_rate_limit_window_is_aligned_to_epoch_multiples(lb, session, clock):
    clock.advance(seconds=5)  # 12:00:05: the window closes at 12:00:10
    reset = int(clock().timestamp()) + 5
    remaining = []
    for _ in range(30):
        status, headers, _ = await get(session, lb, FRESH)
        assert status == 200
        assert (headers["X-RateLimit-Limit"], headers["X-RateLimit-Reset"]) == ("30", str(reset))
        assert headers["X-RateLimit-Reset-In"] == "5"
        remaining.append(int(headers["X-RateLimit-Remaining"]))
    assert remaining == list(range(29, -1, -1))
    status, headers, body = await get(session, lb, FRESH, days="0")  # limit before validation
    assert status == 429
    assert body["code"] == 429
    assert headers["X-RateLimit-Remaining"] == "0"
    clock.advance(seconds=4.9)
    assert (await get(session, lb, FRESH))[0] == 429
    clock.advance(seconds=0.1)  # 12:00:10: a new window
    status, headers, _ = await get(session, lb, FRESH)
    assert (status, headers["X-RateLimit-Remaining"], headers["X-RateLimit-Reset-In"]) == (200, "29", "10")


async def test_limit_is_configurable_and_shared_by_the_endpoints(clock, session):
    async with ListenBrainzEmulator(clock=clock, rate_limit=(2, 60)) as lb:
        lb.add_user("rob")
        assert (await get(session, lb, FRESH))[0] == 200
        status, headers, _ = await get(session, lb, "/1/stats/user/rob/artists")
        assert (status, headers["X-RateLimit-Remaining"]) == (204, "0")
        assert (await get(session, lb, "/1/stats/user/rob/artists"))[0] == 429


async def test_unknown_paths_are_not_rate_limited(lb, session):
    status, headers, body = await get(session, lb, "/1/explore/lb-radio")
    assert (status, body["code"]) == (404, 404)
    assert "X-RateLimit-Limit" not in headers


# -------------------------------------------------------------------------- User-Agent


@pytest.mark.parametrize("user_agent", [None, "python-requests/2.32.3"])
async def test_requests_without_a_meaningful_user_agent_get_the_ip_blocked(lb, session, clock, user_agent):
    headers = {} if user_agent is None else {"User-Agent": user_agent}
    async with (
        aiohttp.ClientSession(skip_auto_headers=["User-Agent"]) as anonymous,
        anonymous.get(lb.base_url + FRESH, headers=headers) as response,
    ):
        assert response.status == 200  # answered, then blocked (jellyfin-plugin-listenbrainz#179)
    assert lb.is_blocked()
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await get(session, lb, FRESH)  # even with a good User-Agent: the IP is blocked
    first, *dropped = [r.status for r in lb.requests_to(FRESH)]
    assert (first, set(dropped)) == (200, {0})  # aiohttp retries once on a dropped keep-alive connection
    clock.advance(seconds=300)
    assert (await get(session, lb, FRESH))[0] == 200


# -------------------------------------------------------------------------------- stats


async def test_stats_errors_and_no_content(lb, session):
    status, _, body = await get(session, lb, "/1/stats/user/Nobody/artists")
    assert (status, body["error"]) == (404, "Cannot find user: Nobody")
    lb.add_user("Rob")
    status, headers, body = await get(session, lb, "/1/stats/user/rob/artists")
    assert (status, body) == (204, None)
    assert "X-RateLimit-Remaining" in headers
    for params, message in [
        ({"range": "decade"}, "Invalid range: decade"),
        ({"count": "-1"}, "'count' should be a non-negative integer"),
        ({"offset": "x"}, "'offset' should be a non-negative integer"),
    ]:
        status, _, body = await get(session, lb, "/1/stats/user/rob/artists", **params)
        assert (status, body) == (400, {"code": 400, "error": message})


async def test_stats_ranges_count_cap_and_user_name_echo(lb, session):
    lb.add_user("Rob")
    artists = [{"artist_mbid": mbid(n), "artist_name": f"Artist {n}", "listen_count": 5000 - n} for n in range(1500)]
    lb.set_artist_stats("Rob", artists, from_ts=0, to_ts=10, last_updated=20)
    lb.set_artist_stats("rob", artists[:3], stats_range="week", from_ts=5, to_ts=10, last_updated=20)
    status, _, body = await get(session, lb, "/1/stats/user/ROB/artists", count="5000")
    payload = body["payload"]
    assert status == 200
    assert (payload["user_id"], payload["count"], payload["total_artist_count"]) == ("ROB", 1000, 1500)
    assert payload["artists"] == artists[:1000]
    status, _, body = await get(session, lb, "/1/stats/user/rob/artists", range="week")
    assert (body["payload"]["range"], body["payload"]["count"], body["payload"]["from_ts"]) == ("week", 3, 5)
    status, _, body = await get(session, lb, "/1/stats/user/rob/artists")
    assert body["payload"]["count"] == 25  # default
    lb.clear_artist_stats("rob", stats_range="week")
    assert (await get(session, lb, "/1/stats/user/rob/artists", range="week"))[0] == 204
