"""Routing, end to end with the real discord.py client against the Discord fake: with a type route
(singles → #singles) and an artist route (Guest Star → #guest-star), each new release lands in exactly
one channel — the artist's route over the type's, the type's over the default channel — and nothing
is posted twice by another refresh, a restart or the weekly run."""

from __future__ import annotations

import datetime as dt

import pytest

from fakes.stack import Stack
from tests import backend

pytestmark = pytest.mark.timeout(120)


def titles_in(stack: Stack, channel_id: int) -> list[str]:
    return [e["title"] for m in stack.discord.channel_messages(channel_id) for e in m.get("embeds") or []]


async def test_routed_types_and_artists_land_in_their_channels_each_release_once(tmp_path):
    stack = await backend.create_stack(tmp_path)
    sp, fake = stack.spotify, stack.discord
    try:
        singles = fake.add_channel(stack.guild_id, "singles")
        guest_channel = fake.add_channel(stack.guild_id, "guest-star")
        nova, guest = sp.add_artist("Nova Lights"), sp.add_artist("Guest Star")
        sp.add_album([nova], "Old Album", release_date="2023-05-05")
        await stack.start_bot()
        await stack.command("settings", {"channel": stack.channel_id}, subcommand="channel")
        for artist in (nova, guest):
            await stack.command("follow", {"artist": artist})
        reply = await stack.command("settings", {"type": "single", "channel": singles}, subcommand="route")
        assert reply.content.startswith(f"Singles will be posted in <#{singles}>"), reply.content
        reply = await stack.command("settings", {"artist": guest, "channel": guest_channel}, subcommand="route")
        assert reply.content.startswith(f"New releases of **Guest Star** will be posted in <#{guest_channel}>")

        stack.clock.advance(hours=20)
        day = "2026-11-17"
        sp.add_album([nova], "Afterglow", album_type="album", total_tracks=11, release_date=day)
        sp.add_album([nova], "Midnight Drive", album_type="single", release_date=day)
        sp.add_album([nova], "Five Songs", album_type="single", total_tracks=5, release_date=day)  # an EP
        sp.add_album([guest], "Guest Single", album_type="single", release_date=day)
        sp.add_album([guest], "Guest Album", album_type="album", total_tracks=9, release_date=day)
        sp.add_album([nova, guest], "Duet", album_type="single", release_date=day)
        reply = await stack.command("refresh")
        assert "6 new releases" in reply.content, reply.content

        expected = {
            stack.channel_id: ["Afterglow", "Five Songs"],  # no route: the default channel (an EP is no single)
            singles: ["Midnight Drive"],  # the type route
            guest_channel: ["Duet", "Guest Album", "Guest Single"],  # the artist's route wins over the type's
        }
        assert {cid: sorted(titles_in(stack, cid)) for cid in expected} == expected

        # Nothing twice: another refresh, a restart, the weekly run with one more single.
        await stack.command("refresh")
        await stack.restart_bot()
        sp.add_album([nova], "Friday Single", album_type="single", release_date="2026-11-20")
        stack.clock.set(dt.datetime(2026, 11, 20, 12, 0, 5, tzinfo=dt.UTC))
        await stack.until(lambda: "Friday Single" in titles_in(stack, singles), what="the weekly post in #singles")
        await stack.command("refresh")
        everywhere = [t for cid in expected for t in titles_in(stack, cid)]
        assert sorted(everywhere) == sorted([*(t for ts in expected.values() for t in ts), "Friday Single"])
        assert titles_in(stack, singles) == ["Midnight Drive", "Friday Single"]
    finally:
        await stack.close()
