"""``bot.spotify.links``: the one parser of user-typed Spotify links and ids (``parse_spotify_id``,
``detect_spotify_kind``)."""

from __future__ import annotations

import pytest

from bot.spotify import detect_spotify_kind, parse_spotify_id

ARTIST_ID = "0TnOYISbd1XYRBk9myaseg"
ALBUM_ID = "3IqzqH6ShrRtie9Yd2ODyG"


@pytest.mark.parametrize(
    "text",
    [
        f"https://open.spotify.com/artist/{ARTIST_ID}",
        f"https://open.spotify.com/artist/{ARTIST_ID}?si=AbCdEf123_-x",
        f"https://open.spotify.com/intl-de/artist/{ARTIST_ID}?si=abc",
        f"https://open.spotify.com/intl-pt/artist/{ARTIST_ID}/",
        f"http://open.spotify.com/artist/{ARTIST_ID}",
        f"open.spotify.com/artist/{ARTIST_ID}",
        f"<https://open.spotify.com/artist/{ARTIST_ID}>",
        f"  spotify:artist:{ARTIST_ID}  ",
        ARTIST_ID,
    ],
)
def test_parse_spotify_id_accepts_artist_forms(text: str) -> None:
    assert parse_spotify_id(text) == ARTIST_ID
    assert parse_spotify_id(text, kind="artist") == ARTIST_ID


@pytest.mark.parametrize(
    "text",
    [
        f"https://open.spotify.com/album/{ALBUM_ID}",
        f"https://open.spotify.com/track/{ALBUM_ID}?si=x",
        f"spotify:album:{ALBUM_ID}",
        f"https://open.spotify.com/playlist/{ALBUM_ID}",
        f"https://example.com/artist/{ARTIST_ID}",
        f"https://open.spotify.com.evil.example/artist/{ARTIST_ID}",
        "https://open.spotify.com/artist/tooShort",
        f"spotify:artist:{ARTIST_ID}x",
        ARTIST_ID[:-1],
        ARTIST_ID + "!",
        "Pitbull",
        "",
        "   ",
        "spotify:artist:",
    ],
)
def test_parse_spotify_id_rejects_other_things(text: str) -> None:
    assert parse_spotify_id(text) is None


def test_parse_spotify_id_other_kinds() -> None:
    assert parse_spotify_id(f"https://open.spotify.com/album/{ALBUM_ID}?si=1", kind="album") == ALBUM_ID
    assert parse_spotify_id(f"spotify:album:{ALBUM_ID}", kind="album") == ALBUM_ID
    assert parse_spotify_id(f"https://open.spotify.com/artist/{ARTIST_ID}", kind="album") is None
    assert parse_spotify_id(None) is None


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (f"https://open.spotify.com/artist/{ARTIST_ID}", "artist"),
        (f"https://open.spotify.com/intl-fr/album/{ALBUM_ID}?si=q", "album"),
        (f"https://open.spotify.com/track/{ALBUM_ID}", "track"),
        ("https://open.spotify.com/playlist/37i9dQZF1DXcBWIGoYBM5M?si=1", "playlist"),
        (f"spotify:album:{ALBUM_ID}", "album"),
        (f"spotify:track:{ALBUM_ID}", "track"),
        (f"spotify:artist:{ARTIST_ID}", "artist"),
        (ARTIST_ID, None),  # a bare id has no kind
        ("Pitbull", None),
        ("https://example.com/album/x", None),
        ("https://open.spotify.com/", None),
        ("spotify:nonsense:abc", None),
        ("", None),
    ],
)
def test_detect_spotify_kind(text: str, kind: str | None) -> None:
    assert detect_spotify_kind(text) == kind
