"""``bot.services.import_sources``: what ``/import links:`` and ``/import file:`` read — links, URIs,
ids and names in text; both Exportify CSV styles (the samples in ``../shared/musicdata/exportify/``,
read here at test time, and rows built on their headers); and every refusal. Pure: no I/O."""

from __future__ import annotations

import csv
import io

import pytest

from bot.services.errors import UserError
from bot.services.import_sources import (
    MAX_FILE_BYTES,
    ArtistEntry,
    check_file_size,
    parse_file,
    parse_text,
    split_list,
)
from tests.conftest import shared_path

A = "4TXdHyuAOl3rAOFmZ6MeKz"  # Six by Seven, in the Exportify samples
B = "69lEbRQRe29JdyLrewNAvD"  # Ghostpoet, in the Exportify samples
C = "0TnOYISbd1XYRBk9myaseg"
BOM = b"\xef\xbb\xbf"


def entries(text: str) -> list[tuple[str | None, str]]:
    return [(e.artist_id, e.name) for e in parse_text(text).entries]


def exportify(name: str) -> bytes:
    return shared_path("musicdata", "exportify", name).read_bytes()


def watsonbox_header() -> str:
    return exportify("watsonbox_header.csv").decode("utf-8").strip()


def pavelkomarov_header() -> str:
    return exportify("pavelkomarov_header.csv").decode("utf-8").strip()


def watsonbox_row(artist_uris: str, artist_names: str, track_uri: str = "spotify:track:1GrLfs4TEvAZ86HVzXHchS") -> str:
    """A row in watsonbox/exportify's format: every field quoted, the 19 base columns."""
    fields = [track_uri, "Song", artist_uris, artist_names] + ["x"] * 15
    return ",".join('"' + f.replace('"', '""') + '"' for f in fields)


def pavelkomarov_row(artist_names: str, track_uri: str = "spotify:track:1GrLfs4TEvAZ86HVzXHchS") -> str:
    """A row in pavelkomarov/exportify's format: only text fields quoted, the 24 columns."""
    fields = [track_uri, '"Song"', '"Album"', '"' + artist_names + '"', "2017-02-17", "198093", "2", "false", "", ""]
    return ",".join(fields + ['"genre"', '"label"'] + ["0.5"] * 12)


# --- plain text ------------------------------------------------------------------------------


def test_links_uris_ids_and_names_one_per_line():
    text = f"""https://open.spotify.com/artist/{A}?si=Xb3f_91kQ
https://open.spotify.com/intl-de/artist/{B}
spotify:artist:{C}
Daft Punk
  The Quiet   Harbour  """
    assert entries(text) == [(A, ""), (B, ""), (C, ""), (None, "Daft Punk"), (None, "The Quiet Harbour")]


def test_comma_and_semicolon_separated_and_links_separated_by_spaces():
    # What Discord sends for text pasted into an option: line breaks became spaces.
    text = f"open.spotify.com/artist/{A} spotify:artist:{B}  {C}, Daft Punk; Air"
    assert entries(text) == [(A, ""), (B, ""), (C, ""), (None, "Daft Punk"), (None, "Air")]


def test_names_with_commas_quoted_or_escaped_and_quotes_inside_names():
    text = 'Daft Punk, "Tyler, The Creator", Crosby\\, Stills\\, Nash & Young\nSean "Diddy" Combs, "Weird Al" Yankovic'
    assert [name for _, name in entries(text)] == [
        "Daft Punk",
        "Tyler, The Creator",
        "Crosby, Stills, Nash & Young",
        'Sean "Diddy" Combs',
        '"Weird Al" Yankovic',
    ]
    assert entries('"She said ""hi"""; Air') == [(None, 'She said "hi"'), (None, "Air")]


def test_bullets_and_angle_brackets():
    text = f"- Daft Punk\n* Air\n• <https://open.spotify.com/artist/{A}>"
    assert entries(text) == [(None, "Daft Punk"), (None, "Air"), (A, "")]


def test_duplicates_are_counted_once():
    text = f"{A}, spotify:artist:{A}, https://open.spotify.com/artist/{A}?si=1, daft punk, Daft  Punk, DAFT PUNK, Air"
    source = parse_text(text)
    assert [(e.artist_id, e.name) for e in source.entries] == [(A, ""), (None, "daft punk"), (None, "Air")]
    assert source.duplicates == 4


def test_what_is_not_an_artist_is_listed_not_searched():
    long_name = "x" * 101
    text = "\n".join(
        [
            f"https://open.spotify.com/album/{A}",
            f"spotify:track:{B}",
            f"https://open.spotify.com/playlist/{C}",
            "https://open.spotify.com/artist/tooshort",
            "https://example.com/artists",
            "Nova https://open.spotify.com/artist/" + A,
            "---",
            long_name,
            "Air",
        ]
    )
    source = parse_text(text)
    assert [(e.artist_id, e.name) for e in source.entries] == [(None, "Air")]
    assert source.unrecognised == (
        f"https://open.spotify.com/album/{A}",
        f"spotify:track:{B}",
        f"https://open.spotify.com/playlist/{C}",
        "https://open.spotify.com/artist/tooshort",
        "https://example.com/artists",
        "Nova https://open.spotify.com/artist/" + A,
        "---",
        "x" * 59 + "…",
    )


def test_links_of_several_kinds_separated_by_spaces():
    source = parse_text(f"spotify:artist:{A} https://open.spotify.com/album/{B}")
    assert [e.artist_id for e in source.entries] == [A]
    assert source.unrecognised == (f"https://open.spotify.com/album/{B}",)


@pytest.mark.parametrize("text", ["", "   ", ",,, ;\n\n", '""'])
def test_an_empty_input_is_refused(text):
    with pytest.raises(UserError, match="nothing to import"):
        parse_text(text)


def test_nothing_recognisable_is_refused_naming_what_was_given():
    text = f"https://open.spotify.com/album/{A}, spotify:track:{B}, ???, https://example.com/x"
    with pytest.raises(UserError, match="Nothing there is recognisable") as err:
        parse_text(text)
    message = str(err.value)
    assert f"“https://open.spotify.com/album/{A}”" in message and "and 1 more" in message
    assert "`/import playlist:`" in message


@pytest.mark.parametrize(
    "text, separators, pieces",
    [
        ("a, b ;c\r\nd", ",;", ["a", "b", "c", "d"]),
        ("a;b, c", ";", ["a", "b, c"]),
        ('"a, b", c', ",", ["a, b", "c"]),
        ('"a, b" , c', ",", ["a, b", "c"]),
        ('"a" b, c', ",", ['"a" b', "c"]),
        ('"unclosed, c', ",", ['"unclosed', "c"]),
        ("a\\, b, c\\;d", ",;", ["a, b", "c;d"]),
        ("", ",", []),
    ],
)
def test_split_list(text, separators, pieces):
    assert split_list(text, separators) == pieces


# --- Exportify CSV: the samples from ../shared ---------------------------------------------


def test_watsonbox_sample_reads_the_artist_uris_with_their_names():
    source = parse_file("Road Trip.csv", exportify("watsonbox_sample.csv"))
    assert source.kind == "csv" and source.column == "Artist URI(s)"
    assert source.entries == (ArtistEntry(A, "Six by Seven"), ArtistEntry(B, "Ghostpoet"))
    # The third row is a local file ("spotify:local:…", no artist URI): counted apart, not searched.
    assert (source.rows, source.local_rows, source.bad_rows) == (3, 1, 0)


def test_pavelkomarov_sample_with_bom_reads_the_names():
    data = exportify("pavelkomarov_sample.DERIVED.csv")
    assert data.startswith(BOM)
    source = parse_file("Road_Trip.csv", data)
    assert source.column == "Artist Name(s)"  # the BOM is not part of the first header
    assert source.entries == (ArtistEntry(None, "Six by Seven"),)
    assert (source.rows, source.bad_rows) == (1, 0)


@pytest.mark.parametrize("name", ["watsonbox_header.csv", "pavelkomarov_header.csv"])
def test_an_export_without_rows_is_refused(name):
    with pytest.raises(UserError, match=r"lists no Spotify artist in its `Artist (URI|Name)\(s\)` column \(0 rows\)"):
        parse_file(name, exportify(name))


def test_an_exportify_header_makes_a_csv_whatever_the_file_is_called():
    assert parse_file("export.txt", exportify("watsonbox_sample.csv")).kind == "csv"
    assert parse_file("export", exportify("pavelkomarov_sample.DERIVED.csv")).kind == "csv"


# --- Exportify CSV: rows built on the sample headers ----------------------------------------


def test_watsonbox_several_artists_per_cell_and_commas_inside_names():
    rows = [
        watsonbox_row(f"spotify:artist:{A}, spotify:artist:{B}", "Tyler\\, The Creator, Ghostpoet"),
        watsonbox_row(f"spotify:artist:{C}", "Daft Punk"),
        watsonbox_row(f"spotify:artist:{B}, spotify:artist:{A}", "Ghostpoet, Tyler\\, The Creator"),  # repeats
        watsonbox_row(f"spotify:artist:{A};spotify:artist:{C}", "mismatched"),  # semicolons; names don't pair
    ]
    source = parse_file("x.csv", "\n".join([watsonbox_header(), *rows]).encode())
    assert source.entries == (
        ArtistEntry(A, "Tyler, The Creator"),
        ArtistEntry(B, "Ghostpoet"),
        ArtistEntry(C, "Daft Punk"),
    )
    assert source.duplicates == 4 and source.rows == 4 and source.bad_rows == 0


def test_uris_are_preferred_and_names_read_for_a_row_without_uris():
    rows = [
        watsonbox_row(f"spotify:artist:{A}", "Six by Seven"),
        watsonbox_row("", "Nameonly Artist", track_uri="spotify:track:7ATyvp3TmYBmGW7YuC8DJ3"),
    ]
    source = parse_file("x.csv", "\n".join([watsonbox_header(), *rows]).encode())
    assert source.entries == (ArtistEntry(A, "Six by Seven"), ArtistEntry(None, "Nameonly Artist"))


def test_pavelkomarov_semicolons_keep_commas_inside_names():
    rows = [
        pavelkomarov_row("Aaron Copland;London Symphony Orchestra"),
        pavelkomarov_row("Tyler, The Creator"),
        pavelkomarov_row("Air"),
    ]
    data = BOM + "\n".join([pavelkomarov_header(), *rows]).encode()
    source = parse_file("x.csv", data)
    assert [e.name for e in source.entries] == [
        "Aaron Copland",
        "London Symphony Orchestra",
        "Tyler, The Creator",
        "Air",
    ]
    assert all(e.artist_id is None for e in source.entries)


def test_pavelkomarov_older_export_joined_with_commas():
    # As in pavelkomarov_notebook_output_glimpse.txt: "Aaron Copland,London Symphony Orchestra".
    rows = [pavelkomarov_row("Aaron Copland,London Symphony Orchestra"), pavelkomarov_row("Air")]
    source = parse_file("x.csv", "\n".join([pavelkomarov_header(), *rows]).encode())
    assert [e.name for e in source.entries] == ["Aaron Copland", "London Symphony Orchestra", "Air"]


def test_bad_rows_are_skipped_and_counted():
    rows = [
        pavelkomarov_row("Air"),
        "spotify:track:1GrLfs4TEvAZ86HVzXHchS,short row",  # no artist column
        pavelkomarov_row(""),  # an empty artist cell
        pavelkomarov_row("???"),  # nothing recognisable
        pavelkomarov_row("x" * 140_000),  # a field over the csv module's limit
        "",  # a blank line: not a row
        pavelkomarov_row("Daft Punk", track_uri="spotify:local:Artist:Album:Song:128"),  # a local file
        pavelkomarov_row("Ghostpoet"),
    ]
    source = parse_file("x.csv", "\n".join([pavelkomarov_header(), *rows]).encode())
    assert [e.name for e in source.entries] == ["Air", "Ghostpoet"]
    assert (source.rows, source.bad_rows, source.local_rows) == (7, 4, 1)
    assert source.unrecognised == ("???",)  # the overlong field is unreadable: a bad row, not shown


def test_a_simple_csv_with_an_artist_column():
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerows([["Artist", "Note"], ["Daft Punk", "x"], [f"https://open.spotify.com/artist/{A}", ""]])
    source = parse_file("mine.csv", buf.getvalue().encode())
    assert source.column == "Artist" and source.entries == (ArtistEntry(None, "Daft Punk"), ArtistEntry(A, ""))


def test_a_csv_without_an_artist_column_is_refused_naming_its_columns():
    with pytest.raises(UserError, match=r"`songs.csv` has no artist column \(its first row has `Track`, `Album`\)"):
        parse_file("songs.csv", b"Track,Album\nCrying,Best of\n")
    with pytest.raises(UserError, match="no artist column"):
        parse_file("songs", b"Track,Album\nCrying,Best of\n", "text/csv; charset=utf-8")


def test_a_csv_of_links_without_header_is_a_list():
    source = parse_file("links.csv", f"spotify:artist:{A},{B}\nspotify:artist:{C}\n".encode())
    assert [e.artist_id for e in source.entries] == [A, B, C]


# --- files: text and refusals ---------------------------------------------------------------


def test_a_text_file_is_read_like_pasted_text_bom_and_crlf_too():
    data = BOM + f"Daft Punk\r\nhttps://open.spotify.com/artist/{A}\r\n\r\nAir, Ghostpoet\r\n".encode()
    source = parse_file("artists.txt", data, "text/plain; charset=utf-8")
    assert source.kind == "text"
    assert [(e.artist_id, e.name) for e in source.entries] == [
        (None, "Daft Punk"),
        (A, ""),
        (None, "Air"),
        (None, "Ghostpoet"),
    ]


def test_a_file_over_1_mb_is_refused_before_and_after_download():
    check_file_size("big.csv", MAX_FILE_BYTES)  # exactly 1 MB is fine
    with pytest.raises(UserError, match=r"`big.csv` is 1.0 MB; I read files of at most 1 MB"):
        check_file_size("big.csv", MAX_FILE_BYTES + 1)
    with pytest.raises(UserError, match="at most 1 MB"):
        parse_file("big.txt", b"Air\n" * (MAX_FILE_BYTES // 4 + 1))


@pytest.mark.parametrize(
    "data, message",
    [
        ("Beyoncé,Sigur Rós\n".encode("latin-1"), r"`f.csv` is not UTF-8 text \(byte 7 cannot be read\)"),
        ("Air\n".encode("utf-16"), "is not UTF-8 text"),
        (b"Air\x00\x00\x01", "is not a text file"),
        (b"", "is empty"),
        (b" \n\t\n", "is empty"),
        (BOM, "is empty"),
    ],
)
def test_files_that_are_not_utf8_text_are_refused(data, message):
    with pytest.raises(UserError, match=message) as err:
        parse_file("f.csv", data)
    assert "Nothing was changed" in str(err.value)


def test_a_file_name_with_backticks_is_shown_safely():
    with pytest.raises(UserError, match=r"`a'b\.csv` is empty"):
        parse_file("a`b.csv", b"")
