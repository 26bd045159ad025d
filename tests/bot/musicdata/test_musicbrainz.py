"""``bot.musicdata.musicbrainz``: the MusicBrainz client against the ws/2 emulator — the User-Agent on every
request, URL lookups of at most 100 resources matched back by ``resource``, every linked artist kept,
barcodes, and the back-off after a 503 (the emulator answers 503 above one request a second)."""

from __future__ import annotations

import itertools
import uuid
from importlib.metadata import version

import pytest

from bot.musicdata import MusicBrainzClient, MusicDataError, SharedRateLimit, user_agent
from bot.musicdata.musicbrainz import spotify_artist_url
from fakes.musicbrainz_emulator import MusicBrainzEmulator

CONTACT = "ops@example.org"


def mbid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def spotify_id(n: int) -> str:
    """A 22-character Spotify-like id; ``n`` decides where it sorts."""
    return f"{n:04d}" + "x" * 18


@pytest.fixture
def client(db, mb, http, clock, sleep) -> MusicBrainzClient:
    pacing = SharedRateLimit(db, "musicbrainz", clock=clock, sleep=sleep)
    return MusicBrainzClient(base_url=mb.base_url, user_agent=user_agent(CONTACT), http=http, rate_limit=pacing)


def lookups(mb: MusicBrainzEmulator) -> list[list[str]]:
    """The ``resource`` values of each URL lookup the emulator answered, in order."""
    return [r.query.get("resource", []) for r in mb.requests_to("/ws/2/url")]


async def test_the_user_agent_names_the_bot_its_version_and_the_contact_on_every_request(client, mb):
    artist = mb.add_artist(mbid("a"), "A", spotify_id=spotify_id(1))
    group = mb.add_release_group(mbid("g"), "G", artist_mbids=[artist])
    mb.add_release(mbid("r"), group, "G", barcode="123")
    await client.artist_mbids([spotify_id(1), spotify_id(2)])
    await client.release_barcodes(group)
    agents = {r.user_agent for r in mb.request_log}
    assert agents == {f"release-bot/{version('release-bot')} ( ops@example.org )"}
    assert all(r.status == 200 for r in mb.request_log)


async def test_250_artists_take_three_lookups_of_at_most_100_paced_a_second_apart(client, mb, clock):
    linked = {spotify_id(n): mb.add_artist(mbid(f"a{n}"), f"A{n}", spotify_id=spotify_id(n)) for n in range(0, 250, 2)}
    start = clock()
    found = await client.artist_mbids([spotify_id(n) for n in range(250)])
    assert [len(resources) for resources in lookups(mb)] == [100, 100, 50]
    assert {i: m for i, m in found.items() if m} == {i: (m,) for i, m in linked.items()}
    assert len(found) == 250 and all(found[spotify_id(n)] == () for n in range(1, 250, 2))
    assert [r.status for r in mb.request_log] == [200, 200, 200]  # paced: never above one a second
    times = [r.at for r in mb.request_log]
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(times)] == [1.0, 1.0]
    assert times[0] == start and client.request_count == 3


async def test_urls_are_matched_back_by_resource_not_by_position(client, mb):
    """The server orders the answer by URL: asked in descending order, the list comes back ascending."""
    ids = [spotify_id(n) for n in (9, 5, 1)]
    for n in (9, 5, 1):
        mb.add_artist(mbid(f"a{n}"), f"A{n}", spotify_id=spotify_id(n))
    found = await client.artist_mbids(ids)
    assert found == {spotify_id(n): (mbid(f"a{n}"),) for n in (9, 5, 1)}
    assert lookups(mb) == [[spotify_artist_url(i) for i in ids]]


async def test_one_artist_is_one_lookup_in_the_single_form_and_a_404_means_no_link(client, mb):
    mb.add_artist(mbid("a"), "A", spotify_id=spotify_id(1))
    assert await client.artist_mbids([spotify_id(1)]) == {spotify_id(1): (mbid("a"),)}
    assert await client.artist_mbids([spotify_id(2)]) == {spotify_id(2): ()}
    assert [r.status for r in mb.request_log] == [200, 404]


async def test_every_artist_linked_to_the_url_is_kept_and_an_ended_link_is_not(client, mb):
    url = spotify_artist_url(spotify_id(1))
    first = mb.add_artist(mbid("first"), "Duplicate", spotify_id=spotify_id(1))
    second = mb.add_artist(mbid("second"), "Duplicate")
    mb.link_url(url, artist=second)
    old = mb.add_artist(mbid("old"), "Old")
    mb.link_url(url, artist=old, ended=True)
    found = await client.artist_mbids([spotify_id(1), spotify_id(2)])
    assert found[spotify_id(1)] == tuple(sorted([first, second]))


async def test_release_barcodes_leave_out_unknown_and_none(client, mb):
    artist = mb.add_artist(mbid("a"), "A")
    group = mb.add_release_group(mbid("g"), "G", artist_mbids=[artist], first_release_date="2026-12-04")
    mb.add_release(mbid("r1"), group, "G", barcode="0602445791234", date="2026-12-04")
    mb.add_release(mbid("r2"), group, "G", barcode="", date="2026-12-05")
    mb.add_release(mbid("r3"), group, "G", barcode=None, date="2026-12-06")
    mb.add_release(mbid("r4"), group, "G", barcode="0602445791234", date="2026-12-07")
    assert await client.release_barcodes(group) == ["0602445791234"]
    assert await client.release_barcodes(mbid("unknown")) == []
    (browse, _) = mb.requests_to("/ws/2/release")
    assert browse.query["release-group"] == [group] and browse.query["limit"] == ["100"]


async def test_a_503_holds_every_process_off_doubling_and_the_request_is_retried(client, mb, sleep):
    mb.add_artist(mbid("a"), "A", spotify_id=spotify_id(1))
    mb.fail_next(2)
    assert await client.artist_mbids([spotify_id(1)]) == {spotify_id(1): (mbid("a"),)}
    assert [r.status for r in mb.request_log] == [503, 503, 200]
    assert sleep.calls == [2.0, 4.0]  # the hold-offs, through the shared slot
    assert (client.request_count, client.unavailable) == (3, 2)


async def test_after_its_retries_a_request_fails_and_is_not_sent_again(client, mb, sleep):
    mb.fail_next(100)
    with pytest.raises(MusicDataError) as raised:
        await client.artist_mbids([spotify_id(1)])
    assert raised.value.status == 503 and raised.value.service == "MusicBrainz"
    assert len(mb.request_log) == 4  # the first attempt and max_retries = 3
    assert sleep.calls == [2.0, 4.0, 8.0]


async def test_a_refused_request_is_an_error_at_once(client, mb):
    with pytest.raises(MusicDataError) as raised:
        await client.release_barcodes("not-an-mbid")
    assert raised.value.status == 400 and len(mb.request_log) == 1


# --- an artist's Spotify links (/import from a listening history) -------------------------------


async def test_an_artists_spotify_links_are_its_live_spotify_url_relations(client, mb):
    artist = mb.add_artist(mbid("a"), "A", spotify_id=spotify_id(1))
    mb.link_url(spotify_artist_url(spotify_id(2)), artist=artist, ended=True)  # an ended link: not kept
    mb.link_url(
        "https://www.discogs.com/artist/1", artist=artist, link_type="discogs", link_type_id=mbid("discogs-type")
    )
    mb.link_url(spotify_artist_url(spotify_id(3)), artist=artist)
    assert await client.spotify_artists(artist) == (spotify_id(1), spotify_id(3))
    (request,) = mb.requests_to("/ws/2/artist/")
    assert request.path == f"/ws/2/artist/{artist}" and request.query["inc"] == ["url-rels"]
    assert request.user_agent == user_agent(CONTACT)


async def test_an_artist_without_spotify_link_or_unknown_has_none(client, mb):
    artist = mb.add_artist(mbid("b"), "B")
    assert await client.spotify_artists(artist) == ()
    assert await client.spotify_artists(mbid("unknown")) == ()  # 404
    assert [r.status for r in mb.request_log] == [200, 404]
