"""Labels in posts: the wording of each label and Discord's limits kept."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.delivery import Announcement, embed_size, label_lines, release_embed, render_messages
from bot.delivery.render import CHARS_PER_MESSAGE, DESCRIPTION_LIMIT, EMBEDS_PER_MESSAGE
from storage.models import Release

NOW = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def release(i: int = 1, labels=None, **kw) -> Release:
    values = dict(
        id=f"r{i:021d}",
        name=f"Record {i}",
        album_type="album",
        artists=[{"id": "0TnOYISbd1XYRBk9myaseg", "name": "Pitbull"}],
        release_date="2026-11-20",
        release_date_precision="day",
        total_tracks=12,
        first_seen_at=NOW,
        labels=labels,
    )
    values.update(kw)
    return Release(**values)


@pytest.mark.parametrize(
    "labels,kw,expected",
    [
        (
            [{"kind": "carries_singles", "new_tracks": 3, "known_tracks": 2}],
            {},
            "3 new tracks, 2 already out as singles",
        ),
        (
            [{"kind": "carries_singles", "new_tracks": 1, "known_tracks": 1}],
            {},
            "1 new track, 1 already out as a single",
        ),
        (
            [{"kind": "edition_of", "release_id": "x", "name": "Trackhouse", "edition": "deluxe", "bonus_tracks": 4}],
            {},
            "Deluxe edition of *Trackhouse* — 4 bonus tracks",
        ),
        (
            [{"kind": "edition_of", "release_id": "x", "name": "X", "edition": "anniversary", "bonus_tracks": 1}],
            {},
            "Anniversary edition of *X* — 1 bonus track",
        ),
        (
            [{"kind": "edition_of", "release_id": "x", "name": "X", "edition": "remaster", "bonus_tracks": None}],
            {},
            "Remastered edition of *X*",
        ),
        (
            [{"kind": "edition_of", "release_id": "x", "name": "X", "edition": "special", "bonus_tracks": 0}],
            {},
            "New edition of *X* — no bonus tracks",
        ),
        (
            [{"kind": "remix_of", "release_id": "x", "name": "Now Or Never"}],
            {"total_tracks": 1},
            "Remix of *Now Or Never*",
        ),
        (
            [{"kind": "remix_of", "release_id": "x", "name": "2 The Moon"}],
            {"total_tracks": 5},
            "Remixes of *2 The Moon*",
        ),
        (
            [{"kind": "remix_of", "release_id": "x", "name": "*Tonight* (D.I.Y.A)"}],
            {"total_tracks": 1},
            r"Remix of *\*Tonight\* \(D.I.Y.A\)*",
        ),
        (
            [{"kind": "back_catalogue"}],
            {"release_date": "2011", "release_date_precision": "year"},
            "Newly added to Spotify (released 2011)",
        ),
        ([{"kind": "back_catalogue"}], {"release_date": "2011-06-17"}, "Newly added to Spotify (released 17 Jun 2011)"),
    ],
)
def test_label_wording(labels, kw, expected):
    rel = release(labels=labels, **kw)
    assert label_lines(rel) == [expected]
    assert release_embed(rel)["description"].split("\n")[1:] == [expected]


def test_no_labels_no_extra_lines_and_unknown_kinds_ignored():
    assert "\n" not in release_embed(release())["description"]
    assert label_lines(release(labels=[{"kind": "something_new"}, "junk"])) == []


def test_two_labels_in_order():
    rel = release(
        labels=[
            {"kind": "back_catalogue"},
            {"kind": "edition_of", "name": "X", "edition": "deluxe", "bonus_tracks": 2},
        ],
        release_date="2012",
        release_date_precision="year",
    )
    assert release_embed(rel)["description"].split("\n")[1:] == [
        "Newly added to Spotify (released 2012)",
        "Deluxe edition of *X* — 2 bonus tracks",
    ]


def test_twin_labels_used_when_the_main_edition_has_none():
    main = release(1, name="Yeehaw")
    clean = release(2, name="Yeehaw (Clean)", labels=[{"kind": "back_catalogue"}], release_date="2011")
    embed = render_messages([Announcement(main, [clean])])[0][0]
    assert embed["title"] == "Yeehaw" and "Newly added to Spotify" in embed["description"]
    assert embed["footer"]["text"] == "Also: Yeehaw (Clean)"


def test_labels_keep_discord_limits():
    many_artists = [{"id": f"{i:022d}", "name": "N" * 90} for i in range(60)]
    huge = [
        {"kind": "edition_of", "name": "E" * 5000, "edition": "deluxe", "bonus_tracks": 3},
        {"kind": "remix_of", "name": "R" * 5000},
        {"kind": "back_catalogue"},
        {"kind": "carries_singles", "new_tracks": 10**6, "known_tracks": 10**6},
    ] * 5
    releases = [release(i, labels=huge, name="T" * 400, artists=many_artists) for i in range(25)]
    for rel in releases:
        embed = release_embed(rel)
        assert len(embed["description"]) <= DESCRIPTION_LIMIT and len(embed["title"]) <= 256
        assert "Deluxe edition of" in embed["description"] and "… and" in embed["description"]
    messages = render_messages([Announcement(r) for r in releases])
    assert sum(len(m) for m in messages) == 25
    for message in messages:
        assert len(message) <= EMBEDS_PER_MESSAGE and sum(embed_size(e) for e in message) <= CHARS_PER_MESSAGE
