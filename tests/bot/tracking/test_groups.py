"""``bot.tracking.groups``: a guild's release types become the Spotify album groups fetched; an EP never
reaches Spotify's ``include_groups`` as ``ep`` (it is listed among singles)."""

from __future__ import annotations

import pytest

from bot.delivery import Deliverer
from bot.delivery.types import DEFAULT_RELEASE_TYPES
from bot.spotify.client import SpotifyClient
from bot.tracking import Tracker
from bot.tracking.groups import tracked_groups
from fakes.spotify_emulator import SpotifyEmulator
from storage import guilds
from storage.models import Guild
from tests.bot.helpers import FakeSender, add_guild, emulator_client, follow, ledger


async def set_types(db, guild_id: int, types: list[str]) -> None:
    async with db.sessions() as s:
        (await s.get(Guild, guild_id)).album_groups = types
        await s.commit()


async def test_types_become_spotify_groups(db, clock):
    for gid in (1, 2, 3):
        await add_guild(db, gid, now=clock())
    await set_types(db, 2, ["album", "ep"])
    await set_types(db, 3, ["ep", "appears_on"])
    await follow(db, 1, "DEF", now=clock())  # the default types
    await follow(db, 2, "ALB", now=clock())
    await follow(db, 3, "EPS", now=clock())
    await follow(db, 2, "TWO", now=clock())
    await follow(db, 3, "TWO", now=clock())
    async with db.sessions() as s:
        groups = await tracked_groups(s, ["DEF", "ALB", "EPS", "TWO", "NOBODY"])
        types = await guilds.tracked_types(s, ["EPS", "NOBODY"])
    assert groups == {
        "DEF": ("album", "single", "compilation"),  # as before EPs were a type: the same requests
        "ALB": ("album", "single"),  # EPs are fetched among singles
        "EPS": ("single", "appears_on"),
        "TWO": ("album", "single", "appears_on"),  # the union of both guilds' types
        "NOBODY": ("album", "single", "compilation"),  # release-bot check --artist: the default
    }
    assert types == {"EPS": frozenset({"ep", "appears_on"}), "NOBODY": frozenset()}
    assert DEFAULT_RELEASE_TYPES == ("album", "single", "ep", "compilation")


async def test_a_guild_posting_eps_but_not_singles(db, clock):
    async with SpotifyEmulator() as emu:
        client: SpotifyClient = emulator_client(emu, clock)
        try:
            artist = emu.add_artist("Nova")
            emu.add_album([artist], "Old LP", release_date="2020-01-01")
            await add_guild(db, 1, now=clock())
            await set_types(db, 1, ["album", "ep"])
            await follow(db, 1, artist, now=clock())
            tracker = Tracker(db, client, clock=clock)
            await tracker.baseline(artist)
            clock.advance(days=7)
            ep = emu.add_album([artist], "Five Songs", album_type="single", total_tracks=5, release_date="2026-11-20")
            single = emu.add_album([artist], "One Song", album_type="single", release_date="2026-11-20")
            result = await tracker.track([artist])
            assert sorted(result.new_releases) == sorted([ep, single])
            include = {r.query["include_groups"] for r in emu.requests_to(f"/artists/{artist}/albums")}
            assert "ep" not in ",".join(include) and "album,single" in include
            sender = FakeSender()
            delivered = await Deliverer(db, sender, clock=clock).deliver(1)
            assert sender.titles() == ["Five Songs"] and delivered.skipped == 1
            assert {r.release_id: r.status for r in await ledger(db, 1)} == {ep: "sent", single: "skipped"}
        finally:
            await client.close()


@pytest.mark.parametrize("types", [["album", "single", "compilation"], list(DEFAULT_RELEASE_TYPES)])
async def test_adding_ep_to_the_types_changes_no_request(db, clock, types):
    await add_guild(db, 1, now=clock())
    await set_types(db, 1, types)
    await follow(db, 1, "A", now=clock())
    async with db.sessions() as s:
        assert (await tracked_groups(s, ["A"]))["A"] == ("album", "single", "compilation")
