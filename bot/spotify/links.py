"""Spotify links, URIs and ids typed by users: which kind they point at and the id they carry.

Follows Spotify's URI and link formats ("Spotify URIs and IDs" in the Web API concepts):
``https://open.spotify.com/<kind>/<id>``, ``spotify:<kind>:<id>``, and the bare 22-character
base62 id. The one parser of user input in the project.
"""

from __future__ import annotations

import re

_KINDS = ("artist", "album", "track", "playlist", "show", "episode", "audiobook", "user")
_ID = r"[A-Za-z0-9]{22}"
_URL_RE = re.compile(
    r"^(?:https?://)?(?:open|play)\.spotify\.com/"
    r"(?:intl-[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]+)?/)?"
    r"(?:embed/)?"
    r"(?P<kind>[a-z]+)/(?P<id>[^/?#\s]+)/?(?:[?#]\S*)?$",
    re.IGNORECASE,
)
_URI_RE = re.compile(r"^spotify:(?P<kind>[a-z]+):(?P<id>[^:\s]+)$", re.IGNORECASE)
_BARE_ID_RE = re.compile(rf"^{_ID}$")


def _split(text: str) -> tuple[str, str] | None:
    """``(kind, id)`` of a Spotify URL/URI, or None."""
    text = text.strip().strip("<>").strip()
    match = _URL_RE.match(text) or _URI_RE.match(text)
    if not match:
        return None
    kind = match.group("kind").lower()
    if kind not in _KINDS:
        return None
    return kind, match.group("id")


def parse_spotify_id(text: str | None, kind: str = "artist") -> str | None:
    """The Spotify id of ``kind`` in ``text``, or None.

    Accepts ``https://open.spotify.com/<kind>/<id>`` (with or without scheme, a
    ``?si=…`` query, an ``intl-xx/`` path prefix, surrounding ``<…>``),
    ``spotify:<kind>:<id>``, or a bare 22-character base62 id. A link or URI of
    another kind (an album link when ``kind="artist"``) gives None; use
    :func:`detect_spotify_kind` to say what it is. None (an option left empty) gives None.
    """
    if text is None:
        return None
    stripped = text.strip()
    if _BARE_ID_RE.match(stripped):
        return stripped
    split = _split(stripped)
    if split is None:
        return None
    found_kind, found_id = split
    if found_kind != kind.lower() or not _BARE_ID_RE.match(found_id):
        return None
    return found_id


def detect_spotify_kind(text: str | None) -> str | None:
    """What a Spotify URL or URI points at: ``"artist"``, ``"album"``, ``"track"``,
    ``"playlist"`` (also ``"show"``, ``"episode"``, ``"audiobook"``, ``"user"``), or None
    for anything else, including a bare id (which carries no kind) and None.
    """
    split = _split(text) if text is not None else None
    return split[0] if split else None
