"""``bot.musicdata.matching``: which Spotify release a MusicBrainz release group is — by barcode, else by a
normalised title and a date within three days; never a remix for its original, nor the reverse."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.musicdata.matching import (
    DATE_TOLERANCE_DAYS,
    TITLE_THRESHOLD,
    Match,
    normalise_barcode,
    pick_match,
    title_score,
)
from storage.models import Release

DAY = dt.date(2026, 12, 4)
SEEN = dt.datetime(2026, 12, 4, 12, tzinfo=dt.UTC)


def release(
    release_id: str,
    name: str,
    *,
    date: str = "2026-12-04",
    precision: str = "day",
    upc: str | None = None,
    album_type: str = "album",
    seen: dt.datetime = SEEN,
) -> Release:
    return Release(
        id=release_id,
        name=name,
        album_type=album_type,
        artists=[],
        release_date=date,
        release_date_precision=precision,
        upc=upc,
        first_seen_at=seen,
    )


def pick(title: str, candidates: list[Release], *, barcodes=(), primary_type: str | None = "Album") -> Match | None:
    return pick_match(
        title=title, release_date=DAY, primary_type=primary_type, barcodes=barcodes, candidates=candidates
    )


def test_a_barcode_equal_to_the_upc_matches_whatever_the_title_and_date():
    candidates = [
        release("other", "Night Drive"),
        release("sp", "Night Drive (Deluxe)", date="2027-01-15", upc="00602445791234"),
    ]
    assert pick("Night Drive", candidates, barcodes=["602445791234"]) == Match("sp", "upc", 100.0, True)


@pytest.mark.parametrize(
    "code, normal",
    [
        ("0602445791234", "602445791234"),
        ("602445791234", "602445791234"),
        (" 0 60-24 ", "6024"),
        ("", None),
        (None, None),
        ("000", None),
    ],
)
def test_barcodes_compare_as_digits_without_leading_zeros(code, normal):
    assert normalise_barcode(code) == normal


def test_the_same_title_within_three_days_matches():
    for offset in range(-DATE_TOLERANCE_DAYS, DATE_TOLERANCE_DAYS + 1):
        date = (DAY + dt.timedelta(days=offset)).isoformat()
        assert pick("Night Drive", [release("sp", "Night Drive", date=date)]) == Match("sp", "title", 100.0, True)


def test_a_date_four_days_off_does_not_match():
    for offset in (-4, 4):
        date = (DAY + dt.timedelta(days=offset)).isoformat()
        assert pick("Night Drive", [release("sp", "Night Drive", date=date)]) is None


def test_a_date_spotify_does_not_give_to_the_day_does_not_match_by_title():
    assert pick("Night Drive", [release("sp", "Night Drive", date="2026-12", precision="month")]) is None
    assert pick("Night Drive", [release("sp", "Night Drive", date="2026", precision="year")]) is None


def test_titles_are_normalised_before_they_are_compared():
    assert title_score("Don’t Stop — Part 2", "Don't Stop - Part 2") == 100.0
    assert title_score("Night Drive (feat. Someone)", "NIGHT DRIVE") == 100.0
    assert title_score("Night Drive", "Night Drive - Clean") == 100.0
    assert pick("Night Drive (feat. Someone)", [release("sp", "Night Drive - Explicit")]) == Match(
        "sp", "title", 100.0, True
    )


def test_a_slightly_different_spelling_matches_and_another_title_does_not():
    assert title_score("Colour of the Night", "Color of the Night") >= TITLE_THRESHOLD
    assert pick("Colour of the Night", [release("sp", "Color of the Night")]) is not None
    assert title_score("Night Drive", "Day Drive") < TITLE_THRESHOLD
    assert pick("Night Drive", [release("sp", "Day Drive")]) is None


def test_a_remix_title_never_matches_its_original_nor_the_reverse():
    long_title = "The Longest Title Anyone Ever Gave an Album of Songs"
    remix = f"{long_title} (Remix)"
    assert title_score(long_title, remix) == 0.0  # fuzz.ratio alone would pass it
    assert pick(long_title, [release("sp", remix)]) is None
    assert pick("Night Drive (DJ Someone Remix)", [release("sp", "Night Drive")]) is None
    assert pick("Night Drive (Remixes)", [release("sp", "Night Drive (Remixes)")]) == Match("sp", "title", 100.0, True)


def test_among_several_the_best_title_then_the_nearest_date_then_the_compatible_type_wins():
    near = release("near", "Night Drive", date="2026-12-05")
    exact = release("exact", "Night Drive", date="2026-12-04")
    assert pick("Night Drive", [near, exact]) == Match("exact", "title", 100.0, True)
    single = release("single", "Night Drive", album_type="single")
    album = release("album", "Night Drive", album_type="album")
    assert pick("Night Drive", [single, album], primary_type="Album") == Match("album", "title", 100.0, True)
    assert pick("Night Drive", [album, single], primary_type="Single") == Match("single", "title", 100.0, True)
    close = release("close", "Night Drives")
    assert pick("Night Drive", [close, release("far", "Night Drive", date="2026-12-07")]) == Match(
        "far", "title", 100.0, True
    )


def test_no_candidates_no_match():
    assert pick("Night Drive", []) is None
