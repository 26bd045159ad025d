"""What ``/import links:`` and ``/import file:`` read: the artists a pasted text or an uploaded file
names (pure parsing: no I/O, no Spotify request).

**Plain text** (the ``links:`` option, or a text file). Entries are separated by line breaks,
commas and semicolons. Each entry is an artist link (``https://open.spotify.com/artist/<id>``,
with or without ``?si=…`` or an ``intl-xx/`` segment, or inside ``<…>``), a ``spotify:artist:<id>``
URI, a bare 22-character id — all read by the one link parser, ``bot.spotify.links`` — or else an
artist **name** (spaces allowed, at most :data:`MAX_NAME_CHARS` characters, at least one letter or
digit). A name that contains a comma or a semicolon is written in double quotes
(``"Tyler, The Creator"``; ``""`` inside quotes is a quote) or with the comma escaped as ``\\,``
(how Exportify writes it). A leading list bullet (``-``, ``*``, ``•``) is dropped. Discord turns
the line breaks of text pasted into a command option into spaces, so an entry made only of
links, URIs or ids separated by spaces is read as that many entries; names must be separated by
commas there. Links of another kind (album, track, playlist…), other web addresses and entries
too long or without a letter or digit are *not recognised*: listed, never searched.

**Exportify CSV** (a file whose name ends in ``.csv``, or whose first row is an Exportify header),
read with :mod:`csv`; a UTF-8 BOM is dropped. Both formats of the tool are read:

- watsonbox/exportify: every field quoted; ``"Artist URI(s)"`` holds the track's artist URIs,
  joined with ``", "``, and ``"Artist Name(s)"`` their names, joined the same way with a comma
  inside a name written ``\\,``. The URIs are read (no search needed); the names, when there are
  as many, give each id its name for the preview.
- pavelkomarov/exportify (exportify.net): an unquoted header, a BOM on a single playlist's
  download, no URI column; ``Artist Name(s)`` holds names joined with ``;`` (a ``;`` inside a name
  is removed by the tool). Older exports joined them with ``,``: a file whose name cells have no
  ``;`` at all is split on commas (``\\,`` kept), so there a name with a comma is cut in two.

A URI column (``Artist URI(s)``, ``Artist URIs``, ``Artist URI``, ``Artist ID(s)``…) is preferred;
names (``Artist Name(s)``, ``Artist Name``, ``Artist``, ``Artists``) are read otherwise, and also
for a row whose URI cell is empty. Rows of local files (``Track URI`` ``spotify:local:…``) have no
Spotify artist and are counted apart. A bad row — too short, an unreadable field, nothing
recognisable in its artist cell — is skipped and counted. A ``.csv`` whose first row names no
artist column is refused, unless that row is itself a list of artist links (a CSV without header).

Refused with the reason (:class:`~bot.services.errors.UserError`): an empty input, one with
nothing recognisable, a file over :data:`MAX_FILE_BYTES`, a file that is not UTF-8 text, and a
CSV without an artist column.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from bot.services.errors import UserError
from bot.spotify.links import detect_spotify_kind, parse_spotify_id

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_NAME_CHARS",
    "ArtistEntry",
    "ArtistSource",
    "check_file_size",
    "parse_file",
    "parse_text",
    "split_list",
]

MAX_FILE_BYTES = 1024 * 1024
"""The largest file ``/import file:`` reads (1 MB), checked on the attachment's size before downloading."""

MAX_NAME_CHARS = 100
"""The longest entry read as an artist name."""

URI_COLUMNS = ("artist uri(s)", "artist uris", "artist uri", "artist id(s)", "artist ids", "artist id")
"""CSV headers (case-insensitive) of a column of artist URIs, links or ids, the first found is read."""

NAME_COLUMNS = ("artist name(s)", "artist names", "artist name", "artists", "artist")
"""CSV headers (case-insensitive) of a column of artist names."""

EXPORTIFY_HEADERS = frozenset({"track uri", "artist uri(s)", "artist name(s)"})
"""A first row with one of these cells is an Exportify CSV whatever the file is called."""

_SHOWN = 60  # characters of an unrecognised entry kept for the listing
_BULLET_RE = re.compile(r"^(?:[-*•]\s+)")
_WEB_RE = re.compile(r"(?:^|\s)(?:[a-z][a-z0-9+.-]*://|www\.|spotify:)\S*", re.IGNORECASE)


@dataclass(frozen=True)
class ArtistEntry:
    """One artist an input names: ``artist_id`` (22-character Spotify id) when it gives one, and
    ``name``: the name to search when there is no id, the artist's name when the input gives it
    beside the id (an Exportify row), else ``""``."""

    artist_id: str | None
    name: str

    @property
    def key(self) -> str:
        """What makes two entries the same artist: the id, else the name (case and spacing ignored)."""
        return self.artist_id if self.artist_id is not None else "name:" + " ".join(self.name.casefold().split())


@dataclass(frozen=True)
class ArtistSource:
    """What an input names, read by :func:`parse_text` or :func:`parse_file`.

    ``entries``: the distinct artists, in order of first appearance; ``duplicates``: entries
    dropped as repeats of an earlier one; ``unrecognised``: what could not be read as an artist
    (each once, in order, cut to 60 characters). For a CSV (``kind`` ``"csv"``): ``column`` is the
    header read (``rows`` data rows), ``local_rows`` rows of local files (no Spotify artist),
    ``bad_rows`` rows skipped as unreadable or without a recognisable artist.
    """

    kind: str
    entries: tuple[ArtistEntry, ...]
    duplicates: int = 0
    unrecognised: tuple[str, ...] = ()
    column: str | None = None
    rows: int = 0
    local_rows: int = 0
    bad_rows: int = 0


@dataclass
class _Collector:
    """Entries as they are read: distinct by :attr:`ArtistEntry.key`, repeats and the unrecognised counted."""

    entries: dict[str, ArtistEntry] = field(default_factory=dict)
    duplicates: int = 0
    unrecognised: dict[str, None] = field(default_factory=dict)

    def add(self, entry: ArtistEntry) -> None:
        known = self.entries.get(entry.key)
        if known is None:
            self.entries[entry.key] = entry
            return
        self.duplicates += 1
        if not known.name and entry.name:  # a later row names an id seen bare
            self.entries[entry.key] = entry

    def reject(self, text: str) -> None:
        shown = text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"
        self.unrecognised.setdefault(shown, None)

    def source(
        self, kind: str, *, column: str | None = None, rows: int = 0, local_rows: int = 0, bad_rows: int = 0
    ) -> ArtistSource:
        return ArtistSource(
            kind,
            tuple(self.entries.values()),
            self.duplicates,
            tuple(self.unrecognised),
            column=column,
            rows=rows,
            local_rows=local_rows,
            bad_rows=bad_rows,
        )


# --- plain text -------------------------------------------------------------------------------


def split_list(text: str, separators: str = ",;") -> list[str]:
    """``text`` cut at ``separators`` and line breaks, each piece stripped, empty pieces dropped.

    A piece that starts with ``"`` and whose closing ``"`` is followed only by spaces up to a
    separator (or the end) is quoted: separators inside it are kept and ``""`` is a quote. Any other
    quote is kept as it is (``Sean "Diddy" Combs``, ``"Weird Al" Yankovic``). ``\\,``, ``\\;`` and
    ``\\"`` keep that character (Exportify writes a comma inside a name as ``\\,``).
    """
    if '"' not in text and "\\" not in text:  # no quote, no escape: a plain split
        pattern = "[" + re.escape(separators) + "\r\n]"
        return [p for p in (piece.strip() for piece in re.split(pattern, text)) if p]
    cuts = set(separators) | {"\n", "\r"}
    pieces: list[str] = []
    buf: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"' and not "".join(buf).strip():
            quoted = _quoted(text, i + 1, cuts)
            if quoted is not None:
                value, i = quoted
                buf = [value]
                continue
        if ch == "\\" and i + 1 < n and text[i + 1] in ',;"':
            buf.append(text[i + 1])
            i += 2
            continue
        if ch in cuts:
            pieces.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    pieces.append("".join(buf))
    return [p for p in (piece.strip() for piece in pieces) if p]


def _quoted(text: str, start: int, cuts: set[str]) -> tuple[str, int] | None:
    """The quoted value that starts at ``start`` (after an opening quote) and the index after its
    closing quote and the spaces that follow, when a separator or the end comes next; else None."""
    value: list[str] = []
    i, n = start, len(text)
    while i < n:
        ch = text[i]
        if ch == '"' and i + 1 < n and text[i + 1] == '"':
            value.append('"')
            i += 2
            continue
        if ch == '"':
            j = i + 1
            while j < n and text[j] in " \t":
                j += 1
            return ("".join(value), j) if j == n or text[j] in cuts else None
        if ch in "\r\n":
            return None
        value.append(ch)
        i += 1
    return None


def _classify(piece: str, out: _Collector, *, name: str = "") -> bool:
    """Read one entry into ``out``: an artist id/link/URI, links separated by spaces, or a name.
    ``name``: the artist's name when the input gives it beside an id. False when nothing was read."""
    piece = _BULLET_RE.sub("", piece.strip()).strip()
    if piece.startswith("<") and piece.endswith(">"):
        piece = piece[1:-1].strip()
    if not piece:
        return False
    artist_id = parse_spotify_id(piece, "artist")
    if artist_id is not None:
        out.add(ArtistEntry(artist_id, name))
        return True
    words = piece.split()
    if len(words) > 1 and all(parse_spotify_id(w, "artist") or detect_spotify_kind(w) for w in words):
        found = [_classify(w, out) for w in words]
        return any(found)
    if detect_spotify_kind(piece) is not None or _WEB_RE.search(piece):
        out.reject(piece)  # another kind of Spotify link, a malformed one, or another web address
        return False
    if len(piece) > MAX_NAME_CHARS or not any(c.isalnum() for c in piece):
        out.reject(piece)
        return False
    out.add(ArtistEntry(None, " ".join(piece.split())))
    return True


def parse_text(text: str) -> ArtistSource:
    """The artists of pasted text or a text file (the module docstring gives the rules).

    Raises :class:`UserError` when ``text`` holds no entry at all, or nothing recognisable
    (naming a few of the pieces that were not).
    """
    out = _Collector()
    for piece in split_list(text or ""):
        _classify(piece, out)
    source = out.source("text")
    _require_entries(source)
    return source


def _require_entries(source: ArtistSource, label: str = "") -> None:
    """Refuse (:class:`UserError`) a source without a single artist, saying what it held instead."""
    if source.entries:
        return
    if source.kind == "csv" and not source.unrecognised:
        raise UserError(
            f"`{label}` lists no Spotify artist in its `{source.column}` column ({_count(source.rows, 'row')}"
            + (f", {_count(source.local_rows, 'local file')}" if source.local_rows else "")
            + "). Nothing was changed."
        )
    if not source.unrecognised:
        raise UserError(
            "There is nothing to import: give artist links (`https://open.spotify.com/artist/…`), "
            "`spotify:artist:` URIs, ids or names, separated by commas or one per line. Nothing was changed."
        )
    shown = ", ".join(f"“{u}”" for u in source.unrecognised[:3])
    more = len(source.unrecognised) - 3
    raise UserError(
        f"Nothing there is recognisable as an artist: {shown}{f' and {more} more' if more > 0 else ''}. "
        "Give artist links (`https://open.spotify.com/artist/…`), `spotify:artist:` URIs, ids or names "
        "(album, track and playlist links are not artists; a playlist goes in `/import playlist:`). "
        "Nothing was changed."
    )


# --- files ------------------------------------------------------------------------------------


def check_file_size(filename: str, size: int) -> None:
    """Refuse (:class:`UserError`) a file of ``size`` bytes over :data:`MAX_FILE_BYTES`, before it is downloaded."""
    if size > MAX_FILE_BYTES:
        raise UserError(
            f"`{_file_label(filename)}` is {size / (1024 * 1024):.1f} MB; I read files of at most 1 MB "
            "(a playlist export of many thousand tracks). Split it, or export fewer playlists at once. "
            "Nothing was changed."
        )


def parse_file(filename: str, data: bytes, content_type: str | None = None) -> ArtistSource:
    """The artists of an uploaded file: an Exportify CSV, or plain text as :func:`parse_text` reads it.

    A CSV is a file named ``*.csv``, sent as ``text/csv``, or whose first row holds an Exportify
    header. Raises :class:`UserError` for a file over :data:`MAX_FILE_BYTES`, an empty one, one that
    is not UTF-8 text (or holds NUL characters: a binary file), a CSV without an artist column,
    and nothing recognisable.
    """
    label = _file_label(filename)
    check_file_size(filename, len(data))
    try:
        text = data.decode("utf-8-sig")  # "-sig": drops the BOM of exportify.net's downloads
    except UnicodeDecodeError as exc:
        raise UserError(
            f"`{label}` is not UTF-8 text (byte {exc.start + 1} cannot be read). Save it as UTF-8 "
            "(Exportify's CSV files are), or paste the artists into `/import links:`. Nothing was changed."
        ) from None
    if "\x00" in text:
        raise UserError(f"`{label}` is not a text file. Upload a CSV or a plain text list. Nothing was changed.")
    if not text.strip():
        raise UserError(f"`{label}` is empty. Nothing was changed.")
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    header = {cell.strip().casefold() for cell in next(csv.reader([first_line]), [])}
    is_csv = (
        filename.lower().endswith(".csv")
        or (content_type or "").split(";")[0].strip().lower() == "text/csv"
        or bool(header & EXPORTIFY_HEADERS)
    )
    source = _parse_csv(label, text) if is_csv else parse_text(text)
    _require_entries(source, label)
    return source


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def _file_label(filename: str) -> str:
    name = (filename or "the file").replace("`", "'")
    return name if len(name) <= 80 else name[:79] + "…"


def _rows(text: str) -> Iterator[list[str] | None]:
    """The CSV rows of ``text``; None for a row the reader cannot read (a field over the csv
    module's size limit), after which reading goes on with the next row."""
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield None


def _column(header: list[str], names: Iterable[str]) -> int | None:
    folded = [h.strip().casefold() for h in header]
    for wanted in names:
        if wanted in folded:
            return folded.index(wanted)
    return None


def _parse_csv(label: str, text: str) -> ArtistSource:
    """The artists of an Exportify (or similar) CSV; see the module docstring."""
    rows = _rows(text)
    header = next((row for row in rows if row and any(cell.strip() for cell in row)), [])
    uri_col = _column(header, URI_COLUMNS)
    name_col = _column(header, NAME_COLUMNS)
    track_col = _column(header, ("track uri",))
    read_col = uri_col if uri_col is not None else name_col
    if read_col is None:
        if all(parse_spotify_id(cell, "artist") for cell in header if cell.strip()):
            return parse_text(text)  # a list of artist links in CSV clothing, no header row
        columns = ", ".join(f"`{h.strip()[:30]}`" for h in header[:8] if h.strip())
        raise UserError(
            f"`{label}` has no artist column (its first row has {columns}{' …' if len(header) > 8 else ''}). "
            "Export the playlist with Exportify (its CSV has `Artist URI(s)` or `Artist Name(s)`), or upload "
            "a plain list of artist links or names. Nothing was changed."
        )
    body = list(rows)
    semicolons = name_col is not None and any(r and len(r) > name_col and ";" in r[name_col] for r in body)
    out = _Collector()
    read = local = bad = 0
    for row in body:
        if row is not None and not any(cell.strip() for cell in row):
            continue  # a blank line
        read += 1
        if row is None:
            bad += 1
        elif track_col is not None and len(row) > track_col and row[track_col].strip().startswith("spotify:local:"):
            local += 1
        elif not _read_row(row, uri_col, name_col, ";" if semicolons else ",", out):
            bad += 1
    return out.source("csv", column=header[read_col].strip(), rows=read, local_rows=local, bad_rows=bad)


def _read_row(row: list[str], uri_col: int | None, name_col: int | None, split_on: str, out: _Collector) -> bool:
    """Read one data row's artists into ``out``: its URIs when it has some, else its names (cut at
    ``split_on``). False for a bad row: too short, or nothing recognisable in the cell read."""
    names = split_list(row[name_col], split_on) if name_col is not None and len(row) > name_col else []
    if uri_col is not None and len(row) > uri_col and row[uri_col].strip():
        uris = split_list(row[uri_col], ",;")
        paired = names if len(names) == len(uris) else [""] * len(uris)
        found = [_classify(uri, out, name=name) for uri, name in zip(uris, paired, strict=True)]
    else:
        found = [_classify(name, out) for name in names]
    return any(found)
