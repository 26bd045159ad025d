"""The emulator's playlist endpoints against the shared OpenAPI spec and the recorded
``playlist_1.json`` / ``playlist_items.json``: shapes, paging limits (``/items`` 1–50, the
deprecated ``/tracks`` 1–100), 404 for private/unknown, the Development Mode 403."""

from __future__ import annotations

import json

import aiohttp
import pytest
from openapi_schema_validator import OAS30Validator

from bot.spotify.client import SpotifyClient
from bot.spotify.errors import SpotifyError, SpotifyNotFound
from bot.spotify.models import PlaylistEntry
from fakes.spotify_emulator import SpotifyEmulator
from tests.fakes.test_spotify_emulator import Api, _components, response_schema_ref

pytestmark = pytest.mark.timeout(60)


def validate(shared, body, ref: str) -> None:
    """Like the emulator tests' ``validate``; the spec's ``oneOf`` with a ``type`` discriminator
    (PlaylistTrackObject.item) names ``#/components/schemas/track``/``episode`` implicitly, which the
    spec does not define: they are aliased to TrackObject / EpisodeObject here."""
    components = dict(_components(str(shared / "openapi" / "fixed-spotify-open-api.yml")))
    components["schemas"] = dict(
        components["schemas"],
        track={"$ref": "#/components/schemas/TrackObject"},
        episode={"$ref": "#/components/schemas/EpisodeObject"},
    )
    validator = OAS30Validator({"components": components, "$ref": f"#/components/{ref}"})
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, errors[:10]


def catalogue(emu: SpotifyEmulator) -> dict:
    nova = emu.add_artist("Nova Lights")
    guest = emu.add_artist("Guest Star")
    albums = [
        emu.add_album([nova], f"Single {i}", album_type="single", release_date=f"2025-01-{i + 1:02d}")
        for i in range(60)
    ]
    duet = emu.add_album([nova, guest], "Duet", album_type="single")
    items = [*albums, duet, {"local": "tape.mp3", "artist": "Uncle"}, {"episode": "A podcast"}, None]
    return {
        "nova": nova,
        "guest": guest,
        "items": items,
        "big": emu.add_playlist("Big", items),
        "small": emu.add_playlist("Small", [duet]),
        "private": emu.add_playlist("Secret", [duet], public=False),
    }


async def test_playlist_shapes_match_spec_and_recording(shared_spotify):
    recorded = json.loads((shared_spotify / "fixtures" / "playlist_1.json").read_text())
    recorded_items = json.loads((shared_spotify / "fixtures" / "playlist_items.json").read_text())
    async with SpotifyEmulator() as emu, aiohttp.ClientSession() as session:
        cat = catalogue(emu)
        api = Api(emu, session)
        status, _, playlist = await api.get(f"/playlists/{cat['small']}", market="US")
        assert status == 200
        validate(shared_spotify, playlist, response_schema_ref(shared_spotify, "OnePlaylist"))
        assert set(playlist) == set(recorded)
        assert set(playlist["items"]) == set(recorded["items"]) and playlist["items"]["limit"] == 100
        entry, recorded_entry = playlist["items"]["items"][0], recorded["items"]["items"][0]
        assert set(entry) == set(recorded_entry)
        assert entry["item"] == entry["track"]
        removed = {"available_markets", "popularity", "linked_from"}  # 2026 Development Mode
        assert set(recorded_entry["item"]) - set(entry["item"]) <= removed
        status, _, page = await api.get(f"/playlists/{cat['big']}/items", limit=50, offset=50)
        assert status == 200
        # Local files (null id, uri, album fields) and null items are real but not in the spec:
        # validated without them.
        catalogue_entries = dict(page, items=[e for e in page["items"] if not e["is_local"] and e["item"]])
        validate(shared_spotify, catalogue_entries, response_schema_ref(shared_spotify, "PagingPlaylistTrackObject"))
        assert set(page) == set(recorded_items)
        kinds = [(e["is_local"], e["item"] and e["item"]["type"]) for e in page["items"]]
        assert kinds[-4:] == [(False, "track"), (True, "track"), (False, "episode"), (False, None)]
        # The client reads the recorded objects and the emulator's alike.
        assert PlaylistEntry.from_api(recorded_entry).kind == "track"
        assert (
            PlaylistEntry.from_api(recorded_items["items"][0]).artists[0].id
            == recorded_items["items"][0]["item"]["artists"][0]["id"]
        )
        assert [PlaylistEntry.from_api(e).kind for e in page["items"][-4:]] == [
            "track",
            "local",
            "episode",
            "unavailable",
        ]


async def test_limits_paging_and_errors():
    async with SpotifyEmulator() as emu, aiohttp.ClientSession() as session:
        cat = catalogue(emu)
        api = Api(emu, session)
        path = f"/playlists/{cat['big']}"
        _, _, page = await api.get(path + "/items")
        assert page["limit"] == 20 and len(page["items"]) == 20 and page["total"] == 64
        assert (await api.get(path + "/items", limit=51))[0] == 400
        assert (await api.get(path + "/items", limit=0))[0] == 400
        _, _, deprecated = await api.get(path + "/tracks", limit=100)
        assert len(deprecated["items"]) == 64 and deprecated["next"] is None
        assert (await api.get(path + "/tracks", limit=101))[0] == 400
        _, _, page = await api.get(path + "/items", limit=50)
        status, _, last = await api.get(page["next"], absolute=True)
        assert status == 200 and len(last["items"]) == 14 and last["next"] is None
        for playlist_id in (cat["private"], "0" * 22):
            for sub in ("", "/items"):
                status, _, body = await api.get(f"/playlists/{playlist_id}{sub}")
                assert status == 404 and body == {"error": {"status": 404, "message": "Resource not found"}}
        assert (await api.get("/playlists/not-an-id"))[0] == 400

        emu.playlist_items_owner_only = True
        status, _, body = await api.get(path + "/items")
        assert status == 403 and body["error"]["message"] == "Forbidden"
        _, _, playlist = await api.get(path)
        assert "items" not in playlist and "tracks" not in playlist and playlist["name"] == "Big"


async def test_client_reads_playlists():
    async with SpotifyEmulator() as emu:
        cat = catalogue(emu)
        async with SpotifyClient(
            client_id=emu.client_id,
            client_secret=emu.client_secret,
            api_base_url=emu.api_base_url,
            accounts_base_url=emu.accounts_base_url,
        ) as client:
            playlist = await client.get_playlist(f"{cat['big']}")
            assert playlist.name == "Big" and playlist.total == 64 and playlist.public is True
            assert playlist.first_page is not None and len(playlist.first_page.items) == 64
            page = await client.playlist_items(cat["big"], limit=500, offset=10)
            assert page.limit == 50 and len(page.items) == 50
            last = await client.playlist_items_next(page)
            assert last is not None and len(last.items) == 4 and await client.playlist_items_next(last) is None
            assert [e.kind for e in last.items] == ["track", "local", "episode", "unavailable"]
            assert {a.name for a in last.items[0].artists} == {"Nova Lights", "Guest Star"}
            assert client.requests_by_endpoint["playlist"] == 1 and client.requests_by_endpoint["playlist_items"] == 2
            with pytest.raises(SpotifyNotFound):
                await client.get_playlist(cat["private"])
            emu.playlist_items_owner_only = True
            assert (await client.get_playlist(cat["big"])).first_page is None
            with pytest.raises(SpotifyError) as err:
                await client.playlist_items(cat["big"])
            assert err.value.status == 403
