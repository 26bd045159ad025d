"""End to end through the fakes, with the real discord.py client: ``/import links:`` (links, URIs and
names pasted into the option), ``/import file:`` with each Exportify CSV style uploaded as an attachment
(the samples in ``../shared/musicdata/exportify/``), Confirm, the artists followed silently and the
Spotify requests the preview announced; refused files (over 1 MB — never downloaded —, not UTF-8, no
artist column) change nothing; a playlist Spotify refuses (Development Mode) points to both."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from fakes.discord_fake import AttachmentFile
from fakes.stack import Stack
from storage.models import Follow
from tests import backend
from tests.conftest import shared_path
from tests.e2e.test_import_and_buttons import component, press

pytestmark = pytest.mark.timeout(120)

SIX_BY_SEVEN = "4TXdHyuAOl3rAOFmZ6MeKz"  # the artist ids in the Exportify samples
GHOSTPOET = "69lEbRQRe29JdyLrewNAvD"


async def followed(stack: Stack) -> set[str]:
    async with backend.running_bot(stack).core.db.sessions() as session:
        return set((await session.scalars(select(Follow.artist_id).where(Follow.guild_id == stack.guild_id))).all())


async def confirm(stack: Stack, prompt) -> str:
    """Press Confirm on an import prompt and wait for its summary."""
    await press(stack, prompt.final, component(prompt.final, label="Confirm")["custom_id"], stack.admin_id)
    await stack.until(lambda: "following" in (prompt.final or {}).get("content", ""), what="import summary")
    return prompt.final["content"]


def searched(stack: Stack) -> list[str]:
    return [r.query["q"] for r in stack.spotify.requests_to("/v1/search")]


def looked_up(stack: Stack) -> list[str]:
    return [
        r.path.rsplit("/", 1)[1] for r in stack.spotify.requests_to("/v1/artists/") if not r.path.endswith("/albums")
    ]


async def test_import_links_then_files(tmp_path):
    stack = await backend.create_stack(tmp_path)
    sp = stack.spotify
    try:
        nova = sp.add_artist("Nova Lights")
        harbour = sp.add_artist("The Quiet Harbour")
        tyler = sp.add_artist("Tyler, The Creator")
        six = sp.add_artist("Six by Seven", artist_id=SIX_BY_SEVEN)
        ghost = sp.add_artist("Ghostpoet", artist_id=GHOSTPOET)
        air = sp.add_artist("Air")
        for artist in (nova, harbour, tyler, six, ghost, air):
            sp.add_album([artist], "Back Catalogue", release_date="2020-01-01")
        await stack.start_bot()
        await stack.command("settings", {"channel": stack.channel_id}, subcommand="channel")

        # /import links: — what Discord sends for a pasted list: line breaks became spaces.
        links = (
            f"https://open.spotify.com/intl-de/artist/{nova}?si=4f2a spotify:artist:{harbour}, "
            f'"Tyler, The Creator", nobody we know, https://open.spotify.com/album/{nova}'
        )
        prompt = await stack.command("import", {"links": links})
        assert prompt.ephemeral
        text = prompt.content
        assert "Your list names 4 artists." in text
        assert f"Follow **4** of them: `{nova}`, `{harbour}`, “Tyler, The Creator”, “nobody we know”." in text
        assert "2 to look up 2 ids the bot doesn't know (one `GET /artists/{id}` each)" in text
        assert "2 to search 2 names, one each" in text and "at least 3 per artist (≥ 12 in all)" in text
        assert f"Not recognised as artists, skipped: “https://open.spotify.com/album/{nova}”" in text
        assert looked_up(stack) == [] and searched(stack) == []  # the preview asked Spotify nothing
        assert await followed(stack) == set()

        summary = await confirm(stack, prompt)
        assert "Now following **3** artists. 3 ready" in summary, summary
        assert "No Spotify artist matches “nobody we know”: not followed." in summary
        assert sorted(looked_up(stack)) == sorted([nova, harbour])
        assert searched(stack) == ["Tyler, The Creator", "nobody we know"]
        assert await followed(stack) == {nova, harbour, tyler}
        assert prompt.final["components"] == []

        # /import file: watsonbox/exportify's CSV: artist URIs with their names — no lookup, no search.
        data = shared_path("musicdata", "exportify", "watsonbox_sample.csv").read_bytes()
        sp.clear_log()
        prompt = await stack.command("import", {"file": AttachmentFile("Road Trip.csv", data, "text/csv")})
        text = prompt.content
        assert "`Road Trip.csv` (the `Artist URI(s)` column of 3 rows) names 2 artists." in text
        assert "Follow **2** of them: Six by Seven, Ghostpoet." in text and "Skipped 1 local file" in text
        assert "Cost in Spotify requests: 0 to read 2 artist ids (names known); then the silent baselines" in text
        summary = await confirm(stack, prompt)
        assert "Now following **2** artists. 2 ready" in summary, summary
        assert looked_up(stack) == [] and searched(stack) == []
        assert await followed(stack) == {nova, harbour, tyler, six, ghost}

        # /import file: pavelkomarov/exportify's CSV (BOM, unquoted header, names joined with ";").
        data = shared_path("musicdata", "exportify", "pavelkomarov_sample.DERIVED.csv").read_bytes()
        data += b'spotify:track:7ATyvp3TmYBmGW7YuC8DJ3,"One Twos","Peanut Butter","Ghostpoet;Air",2011,1,2,false,,\n'
        prompt = await stack.command("import", {"file": AttachmentFile("Road_Trip.csv", data)})
        text = prompt.content
        assert "`Road_Trip.csv` (the `Artist Name(s)` column of 2 rows) names 3 artists (2 already followed here)." in (
            text
        )
        assert "Follow **1** of them: “Air”." in text and "1 to search 1 name, one each" in text
        summary = await confirm(stack, prompt)
        assert "Now following **1** artist. 1 ready" in summary, summary
        assert searched(stack) == ["Air"] and air in await followed(stack)

        # Baselines were taken: a refresh posts nothing from the back catalogues.
        await stack.command("refresh")
        assert stack.posted() == []
    finally:
        await stack.close()


async def test_refusals_change_nothing(tmp_path):
    stack = await backend.create_stack(tmp_path)
    sp = stack.spotify
    try:
        nova = sp.add_artist("Nova Lights")
        album = sp.add_album([nova], "Songs", release_date="2024-01-01")
        await stack.start_bot()
        await stack.command("settings", {"channel": stack.channel_id}, subcommand="channel")

        big = AttachmentFile("huge.csv", b"Nova Lights\n" * 150_000, "text/csv")  # 1.8 million bytes
        reply = await stack.command("import", {"file": big})
        assert "is 1.7 MB; I read files of at most 1 MB" in reply.content and reply.ephemeral
        assert stack.discord.requests("GET", "/attachments/") == []  # refused on its size, never downloaded

        reply = await stack.command("import", {"file": AttachmentFile("list.txt", "Beyoncé, Nova".encode("cp1252"))})
        assert "`list.txt` is not UTF-8 text" in reply.content
        reply = await stack.command("import", {"file": AttachmentFile("songs.csv", b"Track,Album\nCrying,Best of\n")})
        assert "`songs.csv` has no artist column (its first row has `Track`, `Album`)" in reply.content
        reply = await stack.command("import", {"links": "https://example.com/artists, ???"})
        assert "Nothing there is recognisable as an artist" in reply.content
        reply = await stack.command("import", {"links": "Nova Lights", "playlist": "x"})
        assert "Give one source at a time (you gave playlist and links)" in reply.content
        reply = await stack.command("import")
        assert "Give one of `playlist:`" in reply.content
        reply = await stack.command("import", {"links": "Nova Lights"}, user_id=stack.member_id)
        assert "Manage Server" in reply.content

        # A Development Mode app: Spotify serves a playlist's items only to its owner.
        playlist = sp.add_playlist("Road Trip", [album])
        sp.playlist_items_owner_only = True
        reply = await stack.command("import", {"playlist": playlist})
        assert "HTTP 403" in reply.content and "Development Mode" in reply.content
        assert "Exportify" in reply.content and "`/import file:`" in reply.content
        assert "`/import links:`" in reply.content

        assert await followed(stack) == set()
        assert sp.requests_to("/v1/search") == [] and looked_up(stack) == []
    finally:
        await stack.close()
