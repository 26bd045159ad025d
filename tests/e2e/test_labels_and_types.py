"""End to end: an album carrying two singles already posted is announced as such, and
``/settings types`` decides what the real bot posts.

The bot's runner labels a run's new releases before it posts them (``bot.wiring`` gives every
runner its :class:`bot.tracking.labels.Labeler`), so a ``/refresh`` finds, labels and posts them.
"""

from __future__ import annotations

import pytest

from fakes.stack import Stack
from tests import backend

pytestmark = pytest.mark.timeout(120)


async def refresh(stack: Stack, artist_id: str):
    """``/refresh``: the runner labels the new releases (of ``artist_id``) before it posts them."""
    return await stack.command("refresh")


def embed_titled(stack: Stack, title: str) -> dict:
    return next(e for m in stack.posted() for e in m["embeds"] if e["title"] == title)


async def test_album_carrying_posted_singles_and_types(tmp_path):
    stack = await backend.create_stack(tmp_path)
    sp = stack.spotify
    try:
        # The clock stays inside Monday 16 Nov (the weekly post is Friday): every post comes from /refresh.
        nova = sp.add_artist("Nova Lights")
        sp.add_album([nova], "First Light", release_date="2024-03-01")
        await stack.start_bot()
        await stack.command("settings", {"channel": stack.channel_id}, subcommand="channel")
        await stack.command("follow", {"artist": nova})

        # Two singles come out and are posted.
        stack.clock.advance(hours=2)
        sp.add_album(
            [nova],
            "Midnight Drive",
            album_type="single",
            release_date="2026-11-13",
            tracks=[{"name": "Midnight Drive", "duration_ms": 201_000}],
        )
        stack.clock.advance(hours=2)
        sp.add_album(
            [nova],
            "Glow",
            album_type="single",
            release_date="2026-11-14",
            tracks=[{"name": "Glow", "duration_ms": 187_000}, {"name": "Glow - Acoustic", "duration_ms": 190_000}],
        )
        reply = await refresh(stack, nova)
        assert "2 new releases" in reply.content
        assert stack.posted_titles() == ["Midnight Drive", "Glow"]

        # The album carries both: announced once, as 8 new tracks and 2 already out as singles.
        stack.clock.advance(hours=2)
        sp.add_album(
            [nova],
            "Afterglow",
            release_date="2026-11-16",
            tracks=[
                {"name": "Intro", "duration_ms": 61_000},
                {"name": "Midnight Drive", "duration_ms": 202_000},
                {"name": "Glow (feat. Someone)", "duration_ms": 186_000},
                *[{"name": f"Song {i}", "duration_ms": 170_000 + i} for i in range(7)],
            ],
        )
        sp.clear_log()
        reply = await refresh(stack, nova)
        assert "1 new release" in reply.content
        assert stack.posted_titles() == ["Midnight Drive", "Glow", "Afterglow"]
        embed = embed_titled(stack, "Afterglow")
        assert embed["description"].split("\n")[1:] == ["8 new tracks, 2 already out as singles"]
        assert len(sp.requests_to("/v1/albums/")) == 1  # the one request for the album's tracks

        # An old compilation that only now appears on Spotify is posted as such, not as new.
        stack.clock.advance(hours=2)
        sp.add_album([nova], "Lost Tapes", album_type="compilation", release_date="2011", release_date_precision="year")
        await refresh(stack, nova)
        assert stack.posted_titles()[3:] == ["Lost Tapes"]
        assert embed_titled(stack, "Lost Tapes")["description"].endswith("Newly added to Spotify (released 2011)")

        # A server that no longer wants singles gets the album, not the single.
        reply = await stack.command("settings", {"single": False}, subcommand="types")
        assert reply.content == "Posting: Albums, EPs, Compilations."  # EPs are a type of their own
        status = await stack.command("status")
        assert "Albums, EPs, Compilations" in str(status.final)
        stack.clock.advance(hours=2)
        sp.add_album([nova], "B-Side", album_type="single", release_date="2026-11-17")
        sp.add_album([nova], "Encore", release_date="2026-11-17")
        await refresh(stack, nova)
        assert stack.posted_titles()[4:] == ["Encore"]

        # Singles back on: the one that came out meanwhile is not posted afterwards.
        await stack.command("settings", {"single": True}, subcommand="types")
        reply = await stack.command("refresh")
        assert "no new releases" in reply.content and "B-Side" not in stack.posted_titles()
    finally:
        await stack.close()
