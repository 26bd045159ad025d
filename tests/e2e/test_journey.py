"""End to end: the real discord.py bot against the Discord fake and the Spotify emulator.

A server sets its channel, follows two artists (one by link, one by name through
autocomplete), gets nothing for the baseline, gets exactly the new releases (a clean
twin folded), nothing twice, the weekly post with no command, and nothing twice after
a restart — including a run missed while the bot was down, caught up once.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from fakes.stack import Stack
from storage.models import Delivery, Run
from tests import backend

pytestmark = pytest.mark.timeout(180)


def titles(stack: Stack) -> list[str]:
    return stack.posted_titles()


async def test_follow_refresh_schedule_restart(tmp_path):
    stack = await backend.create_stack(tmp_path)
    sp = stack.spotify
    try:
        nova = sp.add_artist("Nova Lights", followers=120_000)
        harbour = sp.add_artist("The Quiet Harbour", followers=5_000)
        sp.add_artist("Quiet Riot Tribute", followers=10)
        for i in range(12):
            sp.add_album([nova], f"Nova Single {i}", album_type="single", release_date=f"2025-{i % 12 + 1:02d}-05")
        sp.add_album([nova], "First Light", album_type="album", release_date="2024-03-01")
        sp.add_album([harbour], "Harbour Songs", album_type="album", release_date="2019", release_date_precision="year")
        await stack.start_bot()

        # Channel, then follows: one by URL, one by name through autocomplete.
        reply = await stack.command("settings", {"channel": stack.channel_id}, subcommand="channel")
        assert f"<#{stack.channel_id}>" in reply.content
        reply = await stack.command("follow", {"artist": f"https://open.spotify.com/artist/{nova}?si=abc"})
        assert "Now following" in reply.content and "Nova Lights" in reply.content
        choices = await stack.discord.autocomplete(
            stack.guild_id, stack.admin_id, "follow", {"artist": "quiet harb"}, focused="artist"
        )
        assert 0 < len(choices) <= 25
        assert choices[0]["value"] == harbour and "The Quiet Harbour" in choices[0]["name"]
        reply = await stack.command("follow", {"artist": choices[0]["value"]})
        assert "The Quiet Harbour" in reply.content
        following = await stack.command("following")
        assert "Nova Lights" in str(following.final) and "The Quiet Harbour" in str(following.final)

        # Baseline: nothing already out is posted.
        reply = await stack.command("refresh")
        assert "no new releases" in reply.content and "2/2" in reply.content
        assert titles(stack) == []

        # New releases appear (one album with a clean twin): posted exactly once.
        stack.clock.advance(hours=20)
        sp.add_album([nova], "Midnight Drive", album_type="single", release_date="2026-11-17")
        sp.add_album([nova], "Afterglow", album_type="album", release_date="2026-11-17", total_tracks=11)
        sp.add_album([nova], "Afterglow (Clean)", album_type="album", release_date="2026-11-17", total_tracks=11)
        sp.add_album([harbour], "Harbour Lights", album_type="single", release_date="2026-11-17")
        reply = await stack.command("refresh")
        assert "3 new releases" in reply.content
        assert sorted(titles(stack)) == ["Afterglow", "Harbour Lights", "Midnight Drive"]
        first = stack.posted()[0]
        assert first["allowed_mentions"] == {"parse": []} or not first["allowed_mentions"].get("parse")
        embed = next(e for m in stack.posted() for e in m["embeds"] if e["title"] == "Afterglow")
        assert embed["url"].startswith("https://open.spotify.com/album/")
        assert "Nova Lights" in embed.get("description", "") + str(embed.get("fields"))
        assert "11" in str(embed.get("fields"))

        # Refresh again: nothing twice.
        reply = await stack.command("refresh")
        assert "no new releases" in reply.content
        assert len(titles(stack)) == 3

        # The weekly schedule posts a newer release with no command.
        sp.add_album([harbour], "Tides", album_type="album", release_date="2026-11-20")
        status = await stack.command("status")
        assert "Fridays at 12:00" in str(status.final)
        stack.clock.set(dt.datetime(2026, 11, 20, 12, 0, 5, tzinfo=dt.UTC))
        await stack.until(lambda: "Tides" in titles(stack), what="the weekly post")
        assert titles(stack).count("Tides") == 1

        # Restart: nothing posted twice, by the start-up scan or a refresh.
        await stack.restart_bot()
        reply = await stack.command("refresh")
        assert "no new releases" in reply.content
        assert sorted(titles(stack)) == ["Afterglow", "Harbour Lights", "Midnight Drive", "Tides"]

        # A weekly run missed while the bot was down is caught up once at start-up.
        await stack.stop_bot()
        sp.add_album([nova], "While You Were Away", album_type="single", release_date="2026-11-27")
        stack.clock.set(dt.datetime(2026, 11, 29, 8, 0, tzinfo=dt.UTC))  # Friday's slot passed
        await stack.start_bot()
        await stack.until(lambda: "While You Were Away" in titles(stack), what="catch-up post")
        await stack.restart_bot()
        reply = await stack.command("refresh")
        assert titles(stack).count("While You Were Away") == 1
        assert len(titles(stack)) == len(set(titles(stack))) == 5

        async with stack.bot.core.db.sessions() as s:
            ledger = (await s.execute(select(func.count()).select_from(Delivery))).scalar()
            runs = (await s.execute(select(Run.trigger, Run.status, Run.error).order_by(Run.id))).all()
        assert ledger == 6  # five posts + the folded clean twin
        assert ("schedule", "ok", None) in runs
        assert all(status == "ok" for _t, status, _e in runs), runs
    finally:
        await stack.close()
