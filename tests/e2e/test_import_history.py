"""End to end through the fakes, with the real discord.py client: ``/import lastfm:`` with a period and a
minimum play count, and ``/import listenbrainz:`` with a range — the Last.fm, ListenBrainz and MusicBrainz
emulators beside the Spotify one. An artist with a MusicBrainz id linked to Spotify is followed without
any Spotify request to find it; the others cost one search each, as the preview says. Unknown users and
a user without statistics are refused with the reason, and nothing is followed."""

from __future__ import annotations

import uuid

import pytest

from fakes.stack import Stack
from tests import backend
from tests.e2e.test_import_links_and_files import confirm, followed, looked_up, searched

pytestmark = pytest.mark.timeout(120)


def mbid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


async def test_import_from_lastfm_and_listenbrainz(tmp_path):
    stack: Stack = await backend.create_stack(tmp_path, music=True)
    sp, lastfm, lb, mb = stack.spotify, stack.lastfm, stack.listenbrainz, stack.musicbrainz
    assert lastfm is not None and lb is not None and mb is not None
    try:
        nova = sp.add_artist("Nova Lights")
        harbour = sp.add_artist("The Quiet Harbour")
        air = sp.add_artist("Air")
        for artist in (nova, harbour, air):
            sp.add_album([artist], "Back Catalogue", release_date="2020-01-01")
        mb.add_artist(mbid("nova"), "Nova Lights", spotify_id=nova)
        lastfm.add_user("alice")
        lastfm.set_top_artists(
            "alice",
            [
                {"name": "Nova Lights", "playcount": 250, "mbid": mbid("nova")},
                {"name": "The Quiet Harbour", "playcount": 31},
                {"name": "Once Heard", "playcount": 1},
            ],
            period="3month",
        )
        await stack.start_bot()
        await stack.command("settings", {"channel": stack.channel_id}, subcommand="channel")
        sp.clear_log()

        prompt = await stack.command("import", {"lastfm": "alice", "period": "3month", "min_plays": 10})
        assert prompt.ephemeral
        text = prompt.content
        assert "**alice**'s top artists on Last.fm (`3month`, at least 10 plays): 2 artists." in text
        assert "Follow **2** of them: Nova Lights, “The Quiet Harbour”." in text
        assert "Mapped through MusicBrainz (its Spotify link): 1; by name: 1 (1 without a MusicBrainz id)." in text
        assert "mapped via MusicBrainz: 0 to read 1 artist; names: 1 to search 1 name, one each" in text
        assert sp.request_log == []  # the preview asked Spotify nothing
        assert [r.path for r in mb.request_log] == [f"/ws/2/artist/{mbid('nova')}"]  # one lookup, the one MBID
        assert all("( stack@example.org )" in (r.user_agent or "") for r in mb.request_log + lastfm.request_log)
        assert await followed(stack) == set()

        summary = await confirm(stack, prompt)
        assert "Now following **2** artists. 2 ready" in summary, summary
        assert searched(stack) == ["The Quiet Harbour"] and looked_up(stack) == []
        assert await followed(stack) == {nova, harbour}

        # ListenBrainz with a range: the followed artist counts as followed, the new one is searched.
        lb.add_user("bob")
        lb.set_artist_stats(
            "bob",
            [
                {"artist_mbid": mbid("nova"), "artist_name": "Nova Lights", "listen_count": 40},
                {"artist_mbid": None, "artist_name": "Air", "listen_count": 12},
            ],
            stats_range="this_year",
            from_ts=0,
            to_ts=1,
            last_updated=1,
        )
        sp.clear_log()
        prompt = await stack.command("import", {"listenbrainz": "bob", "range": "this_year"})
        text = prompt.content
        assert (
            "**bob**'s top artists on ListenBrainz (`this_year`, at least 1 play): 2 artists (1 already followed here)."
            in text
        )
        assert "Follow **1** of them: “Air”." in text
        summary = await confirm(stack, prompt)
        assert "Now following **1** artist. 1 ready" in summary, summary
        assert searched(stack) == ["Air"] and await followed(stack) == {nova, harbour, air}

        # Refusals: the reason, nothing followed, Spotify not asked.
        lb.add_user("newcomer")
        sp.clear_log()
        reply = await stack.command("import", {"lastfm": "ghost"})
        assert "Last.fm knows no user **ghost**" in reply.content and reply.ephemeral
        reply = await stack.command("import", {"listenbrainz": "ghost"})
        assert "ListenBrainz knows no user **ghost**" in reply.content
        reply = await stack.command("import", {"listenbrainz": "newcomer"})
        assert "ListenBrainz has no statistics for **newcomer** yet" in reply.content
        assert sp.request_log == [] and await followed(stack) == {nova, harbour, air}

        # The baselines were silent: a refresh posts nothing from the back catalogues.
        await stack.command("refresh")
        assert stack.posted() == []
    finally:
        await stack.close()
