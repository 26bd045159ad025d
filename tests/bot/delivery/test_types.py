"""``bot.delivery.types``: Spotify's single/EP rule by track count, appearances, and the Spotify
groups each type needs."""

from __future__ import annotations

import pytest

from bot.delivery.types import release_type, spotify_groups


@pytest.mark.parametrize(
    ("album_type", "tracks", "group", "expected"),
    [
        ("single", 1, None, "single"),
        ("single", 3, "single", "single"),
        ("single", 4, "single", "ep"),
        ("single", 6, "single", "ep"),
        ("single", 7, "single", "single"),  # Spotify lists 7+ tracks as an album; keep its word
        ("single", None, "single", "single"),
        ("album", 5, "album", "album"),  # an album Spotify calls an album stays one
        ("compilation", 20, "compilation", "compilation"),
        ("single", 5, "appears_on", "appears_on"),
    ],
)
def test_release_type(album_type, tracks, group, expected):
    assert release_type(album_type, tracks, album_group=group) == expected


def test_spotify_groups_fetches_singles_for_eps_in_spotifys_order():
    assert spotify_groups(("ep",)) == ("single",)
    assert spotify_groups({"appears_on", "ep", "album"}) == ("album", "single", "appears_on")
    assert spotify_groups(()) == ()
