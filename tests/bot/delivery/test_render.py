"""Embeds and message packing within Discord's limits."""

from __future__ import annotations

import datetime as dt

from bot.delivery import Announcement, embed_size, pack_messages, release_embed, render_messages
from bot.delivery.render import format_release_date
from storage.models import Release

NOW = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def release(i: int = 1, **kw) -> Release:
    values = dict(
        id=f"r{i:021d}",
        name=f"Song {i}",
        album_type="single",
        artists=[{"id": "0TnOYISbd1XYRBk9myaseg", "name": "Pitbull"}],
        release_date="2026-11-20",
        release_date_precision="day",
        total_tracks=1,
        image_url="https://i.scdn.co/image/abc",
        first_seen_at=NOW,
    )
    values.update(kw)
    return Release(**values)


def test_release_embed_shape():
    embed = release_embed(
        release(artists=[{"id": "A1", "name": "Pitbull"}, {"id": "B2", "name": "Ne-Yo"}], total_tracks=3)
    )
    assert embed["title"] == "Song 1"
    assert embed["url"] == "https://open.spotify.com/album/r000000000000000000001"
    assert (
        embed["description"]
        == "[Pitbull](https://open.spotify.com/artist/A1), [Ne-Yo](https://open.spotify.com/artist/B2)"
    )
    assert {f["name"]: f["value"] for f in embed["fields"]} == {
        "Type": "Single",
        "Released": "20 Nov 2026",
        "Tracks": "3",
    }
    assert embed["thumbnail"] == {"url": "https://i.scdn.co/image/abc"}


def test_album_types_and_missing_bits():
    embed = release_embed(release(album_type="compilation", total_tracks=None, image_url=None))
    assert {f["name"]: f["value"] for f in embed["fields"]} == {"Type": "Compilation", "Released": "20 Nov 2026"}
    assert "thumbnail" not in embed
    assert release_embed(release(album_type="album"))["fields"][0]["value"] == "Album"


def test_release_date_at_its_precision():
    assert format_release_date("2026-11-20", "day") == "20 Nov 2026"
    assert format_release_date("2026-03-05", "day") == "5 Mar 2026"
    assert format_release_date("2026-11", "month") == "Nov 2026"
    assert format_release_date("2012", "year") == "2012"
    assert format_release_date("garbage", "day") == "garbage"


def test_markdown_in_artist_names_is_escaped():
    embed = release_embed(release(artists=[{"id": "A", "name": "[weird] *name*"}]))
    assert embed["description"] == r"[\[weird\] \*name\*](https://open.spotify.com/artist/A)"


def test_truncated_to_discord_limits():
    many = [{"id": f"{i:022d}", "name": "N" * 80} for i in range(200)]
    embed = release_embed(release(name="T" * 400, artists=many))
    assert len(embed["title"]) == 256 and embed["title"].endswith("…")
    assert len(embed["description"]) <= 4096
    assert embed["description"].endswith("more")
    assert embed_size(embed) <= 6000


def test_pack_25_releases_into_3_messages():
    embeds = [release_embed(release(i)) for i in range(25)]
    messages = pack_messages(embeds)
    assert [len(m) for m in messages] == [10, 10, 5]
    assert [e for m in messages for e in m] == embeds  # order kept
    for message in messages:
        assert sum(embed_size(e) for e in message) <= 6000


def test_pack_respects_6000_characters():
    big = [{"title": "x" * 256, "description": "y" * 1500} for _ in range(25)]
    messages = pack_messages(big)
    assert all(sum(embed_size(e) for e in m) <= 6000 and len(m) <= 10 for m in messages)
    assert [len(m) for m in messages] == [3] * 8 + [1]
    assert pack_messages([]) == []


def test_embed_size_counts_the_discord_fields():
    embed = {
        "title": "ab",
        "description": "cde",
        "fields": [{"name": "f", "value": "gh"}],
        "footer": {"text": "ij"},
        "author": {"name": "k"},
        "url": "https://ignored",
    }
    assert embed_size(embed) == 11


def test_twins_are_named_in_the_footer():
    main, clean = release(1, name="Yeehaw"), release(2, name="Yeehaw (Clean)")
    [[embed]] = render_messages([Announcement(main, [clean])])
    assert embed["title"] == "Yeehaw" and embed["footer"]["text"] == "Also: Yeehaw (Clean)"
